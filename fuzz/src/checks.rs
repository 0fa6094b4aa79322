//! The checks of the fuzz targets, shared by the cargo-fuzz binaries
//! (fuzz/fuzz_targets/*.rs) and the plain `cargo test` that replays the kept
//! inputs (tests/fuzz_regressions.rs, which includes this file by path).
//!
//! Each `check_*` takes the raw input, decodes it the same way in both
//! places, and panics when an invariant is broken. Only `mcrs` and std are
//! used, so the replay needs neither libFuzzer nor any other crate.

use mcrs::client::validate_key;
use mcrs::protocol::encode::{self, Retrieve, StoreCmd, WireKey};
use mcrs::protocol::parse::{MAX_LINE, MAX_VALUE};
use mcrs::protocol::{
    parse, parse_get_reply, parse_plain_hit, parse_plain_value, FastGet, GetReply, ProtocolError,
    Response,
};
use mcrs::Error;

type Parsed<'a> = Result<Option<(Response<'a>, usize)>, ProtocolError>;

/// What the reference parser says: like [`Parsed`], with no error message.
type RefParsed<'a> = Result<Option<(Response<'a>, usize)>, ()>;

/// Bytes for a panic message (long ones cut: the input file has them all).
fn show(b: &[u8]) -> String {
    if b.len() <= 160 {
        return format!("{:?}", String::from_utf8_lossy(b));
    }
    format!(
        "{:?}..{:?} ({} bytes)",
        String::from_utf8_lossy(&b[..120]),
        String::from_utf8_lossy(&b[b.len() - 32..]),
        b.len()
    )
}

/// Findings reported in /work/notes/fuzz_findings.md and not yet fixed in
/// src/ can be tolerated while fuzzing on, so that libFuzzer looks for new
/// ones: `MCRS_FUZZ_KNOWN=F1,F2,F3 cargo fuzz run ...`. Unset (as in
/// `cargo test`), every check is strict.
fn known(id: &str) -> bool {
    static KNOWN: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    KNOWN
        .get_or_init(|| {
            std::env::var("MCRS_FUZZ_KNOWN")
                .unwrap_or_default()
                .split(',')
                .map(|s| s.trim().to_string())
                .collect()
        })
        .iter()
        .any(|k| k == id)
}

// ---------------------------------------------------------------- parse_response

/// Target `parse_response`. The whole input is a byte stream from a server.
///
/// - One shot: [`parse`] is applied over the buffer, consuming `used` bytes
///   each time, until it returns `None` or `Err`. Every answer must agree with
///   a plain reference parser written here, `used` must be in `1..=len`, a
///   `VALUE`'s data must be as long as its header announced, and every proper
///   prefix of an element must give `None` (the parser keeps no state).
/// - In reads: the same bytes arrive in two reads, split at a point taken
///   from the first two bytes, and (for short inputs) in small reads of a size
///   taken from the third byte. The elements and the final outcome (waiting
///   at the same offset, or the same error) must equal the one-shot ones.
pub fn check_parse_response(data: &[u8]) {
    if known("F2") && has_max_line(data) {
        return;
    }
    let whole = parse_stream(data, &[], true);
    let split = match data {
        [a, b, ..] => usize::from(u16::from_le_bytes([*a, *b])) % (data.len() + 1),
        _ => data.len() / 2,
    };
    let two = parse_stream(data, &[split], false);
    assert_eq!(two, whole, "two reads split at {split} differ from one");
    // many small reads (at most ~40, to keep the target fast on long inputs)
    let step = data.len() / 32 + usize::from(data.get(2).copied().unwrap_or(0) % 8) + 1;
    let cuts: Vec<usize> = (step..data.len()).step_by(step).collect();
    let small = parse_stream(data, &cuts, false);
    assert_eq!(small, whole, "reads of {step} bytes differ from one");
}

/// True when some CRLF ends a line of exactly `MAX_LINE` bytes (counting
/// from the previous LF or the start): finding F2.
fn has_max_line(data: &[u8]) -> bool {
    let mut start = 0;
    for (i, &b) in data.iter().enumerate() {
        if b == b'\n' {
            if i >= 1 && data[i - 1] == b'\r' && i - 1 - start == MAX_LINE {
                return true;
            }
            start = i + 1;
        }
    }
    false
}

/// How a stream ends: waiting for more bytes at an offset, or an error.
#[derive(Debug, PartialEq, Eq)]
enum End {
    NeedMore(usize),
    Error(String),
}

/// Elements (compared with `==`, which compares the same fields and bytes
/// as their Debug form would, without formatting long values) and the end.
type Stream<'a> = (Vec<(Response<'a>, usize)>, End);

/// Parses `data` as it arrives in reads ending at each of `cuts` (then the
/// rest), the way a connection does: parse what is buffered, consume
/// complete elements, read more when told `None`. Returns each element
/// (with the bytes it used) and how the stream ended.
fn parse_stream<'a>(data: &'a [u8], cuts: &[usize], one_shot: bool) -> Stream<'a> {
    let mut reads = cuts.iter().copied().chain([data.len()]);
    let mut avail = reads.next().unwrap_or(data.len()).min(data.len());
    let mut at = 0;
    let mut out = Vec::new();
    loop {
        let view = &data[at..avail];
        let got = parse(view);
        // the reference checks the one-shot parse; the parses in reads are
        // checked by comparing their stream with the one-shot stream
        if one_shot {
            let want = reference_parse(view);
            assert!(
                agree(&got, &want),
                "parse({}) = {got:?}, reference says {want:?}",
                show(view)
            );
        }
        match got {
            Ok(Some((r, used))) => {
                assert!(
                    used > 0 && used <= view.len(),
                    "used {used} of {}",
                    view.len()
                );
                let bytes = &view[..used];
                check_element(&r, bytes);
                if one_shot {
                    check_prefixes(bytes);
                }
                out.push((r, used));
                at += used;
            }
            Ok(None) => match reads.next() {
                Some(next) => avail = next.clamp(avail, data.len()),
                None => return (out, End::NeedMore(at)),
            },
            Err(e) => return (out, End::Error(e.0)),
        }
    }
}

fn agree(got: &Parsed<'_>, want: &RefParsed<'_>) -> bool {
    match (got, want) {
        (Ok(g), Ok(w)) => g == w,
        (Err(_), Err(())) => true,
        _ => false,
    }
}

/// Every proper prefix of one element's bytes must be "need more" (all of
/// them for short elements; for long ones the first and last 32 and 32 in
/// between, to keep the target fast).
fn check_prefixes(bytes: &[u8]) {
    let n = bytes.len();
    let stride = if n <= 128 { 1 } else { n / 32 };
    let cuts = (0..n)
        .filter(|&c| n <= 128 || c < 32 || c + 32 >= n || c % stride == 0)
        .collect::<Vec<_>>();
    for cut in cuts {
        let got = parse(&bytes[..cut]);
        assert!(
            matches!(got, Ok(None)),
            "prefix of {cut} of the {n}-byte element {} gives {got:?}, not None",
            show(bytes)
        );
    }
}

/// Checks one element against the bytes it was parsed from, independently
/// of both parsers: a `VALUE` holds as many bytes as its header announced
/// and is followed by CRLF; anything else is exactly one CRLF-ended line.
fn check_element(r: &Response<'_>, bytes: &[u8]) {
    assert!(
        bytes.ends_with(b"\r\n"),
        "element not ended by CRLF: {}",
        show(bytes)
    );
    let nl = bytes
        .iter()
        .position(|&b| b == b'\n')
        .expect("an element has a line");
    let line = &bytes[..nl - 1];
    if let Response::Value {
        key,
        flags,
        cas,
        data,
    } = *r
    {
        let f: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
        assert!(f.len() == 4 || f.len() == 5, "VALUE header {}", show(line));
        assert_eq!(f[0], b"VALUE");
        assert_eq!(key, f[1]);
        assert_eq!(Some(u64::from(flags)), decimal(f[2]));
        let announced = decimal(f[3]).expect("length in the header");
        assert_eq!(data.len() as u64, announced, "data length vs header");
        assert_eq!(cas, f.get(4).map(|c| decimal(c).expect("cas")));
        assert_eq!(bytes.len(), nl + 1 + data.len() + 2, "bytes used by VALUE");
        assert_eq!(data, &bytes[nl + 1..bytes.len() - 2]);
    } else {
        assert_eq!(nl + 1, bytes.len(), "one line: {}", show(bytes));
        assert!(line.len() <= MAX_LINE);
    }
}

/// Strict decimal: one or more digits (leading zeros allowed), no overflow.
fn decimal(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    let mut n: u64 = 0;
    for &b in s {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(n)
}

/// The response grammar written the plain way: a line up to the first LF,
/// split on spaces. Same limits as the real parser (`MAX_LINE` for a line
/// without its CRLF, `MAX_VALUE` for a data block).
fn reference_parse(buf: &[u8]) -> RefParsed<'_> {
    let Some(nl) = buf.iter().position(|&b| b == b'\n') else {
        // no whole line yet: wait, unless even a line of MAX_LINE bytes and
        // its CR would be shorter (a buffer of exactly MAX_LINE + 1 bytes
        // not ending in CR could be refused too, but parse waits for its LF)
        return if buf.len() > MAX_LINE + 1 {
            Err(())
        } else {
            Ok(None)
        };
    };
    if nl == 0 || buf[nl - 1] != b'\r' {
        return Err(());
    }
    let line = &buf[..nl - 1];
    if line.len() > MAX_LINE {
        return Err(());
    }
    let used = nl + 1;
    if let Some(rest) = line.strip_prefix(b"VALUE ") {
        return reference_value(buf, rest, used);
    }
    let r = match line {
        b"END" => Response::End,
        b"STORED" => Response::Stored,
        b"NOT_STORED" => Response::NotStored,
        b"EXISTS" => Response::Exists,
        b"NOT_FOUND" => Response::NotFound,
        b"DELETED" => Response::Deleted,
        b"TOUCHED" => Response::Touched,
        b"OK" | b"RESET" => Response::Ok,
        b"ERROR" => Response::Error,
        _ => {
            if line.starts_with(b"ERROR ") {
                Response::Error
            } else if let Some(rest) = line.strip_prefix(b"STAT ") {
                let mut parts = rest.splitn(2, |&b| b == b' ');
                let name = parts.next().unwrap_or_default();
                match parts.next() {
                    Some(value) if !name.is_empty() => Response::Stat { name, value },
                    _ => return Err(()),
                }
            } else if let Some(m) = line.strip_prefix(b"SERVER_ERROR") {
                Response::ServerError(m.strip_prefix(b" ").unwrap_or(m))
            } else if let Some(m) = line.strip_prefix(b"CLIENT_ERROR") {
                Response::ClientError(m.strip_prefix(b" ").unwrap_or(m))
            } else if let Some(v) = line.strip_prefix(b"VERSION ") {
                Response::Version(v)
            } else if line.first().is_some_and(u8::is_ascii_digit) {
                // incr/decr: digits, possibly padded with trailing spaces
                let mut end = line.len();
                while end > 0 && line[end - 1] == b' ' {
                    end -= 1;
                }
                match decimal(&line[..end]) {
                    Some(n) if end <= 20 => Response::Number(n),
                    _ => return Err(()),
                }
            } else {
                return Err(());
            }
        }
    };
    Ok(Some((r, used)))
}

/// `VALUE <key> <flags> <bytes> [<cas>]` (`rest` is after "VALUE ").
fn reference_value<'a>(buf: &'a [u8], rest: &'a [u8], header_len: usize) -> RefParsed<'a> {
    let fields: Vec<&[u8]> = rest.split(|&b| b == b' ').collect();
    let (key, flags, len, cas) = match fields[..] {
        [k, f, l] => (k, f, l, None),
        [k, f, l, c] => (k, f, l, Some(decimal(c).ok_or(())?)),
        _ => return Err(()),
    };
    if key.is_empty() {
        return Err(());
    }
    let flags = decimal(flags).ok_or(())?;
    let len = decimal(len).ok_or(())?;
    let flags = u32::try_from(flags).map_err(|_| ())?;
    let len = usize::try_from(len)
        .ok()
        .filter(|&l| l <= MAX_VALUE)
        .ok_or(())?;
    let end = header_len + len + 2;
    if buf.len() < end {
        return Ok(None);
    }
    if &buf[end - 2..end] != b"\r\n" {
        return Err(());
    }
    let data = &buf[header_len..end - 2];
    Ok(Some((
        Response::Value {
            key,
            flags,
            cas,
            data,
        },
        end,
    )))
}

// --------------------------------------------------------------- parse_get_reply

/// Target `parse_get_reply`. Input: a control byte `c`, then a key prefix of
/// `(c >> 4) & 7` bytes, a key of `(c & 15) + 1` bytes, then the reply bytes.
/// Prefix and key must hold no byte <= 0x20 nor 0x7f (the client validates
/// them before sending a get), else the input is skipped.
///
/// - `Done(Miss, 5)`: the generic parser reads `END` from the same bytes.
/// - `Done(Hit, used)`: the generic parser reads `VALUE <prefix+key>` with the
///   same flags, cas and data, then `END`, the two using `used` bytes; every
///   proper prefix of those bytes gives `NeedMore`, and the bytes alone give
///   the same answer.
/// - `NeedMore`: the generic parser also waits (`None`), possibly after a
///   `VALUE` of our key: it sees neither an error nor another element.
/// - `Other`: the generic parser does not see our whole reply either.
///
/// And the shortcuts read what the full readers read: when
/// `parse_plain_hit` (get) takes the reply, `parse_get_reply` gives the same
/// `Done`; when `parse_plain_value` (multi-get) takes a first element, the
/// generic parser reads the same `VALUE` with the same length.
pub fn check_parse_get_reply(data: &[u8]) {
    let Some((&ctl, rest)) = data.split_first() else {
        return;
    };
    let plen = usize::from((ctl >> 4) & 7);
    let klen = usize::from(ctl & 15) + 1;
    if rest.len() < plen + klen {
        return;
    }
    let (prefix, rest) = rest.split_at(plen);
    let (key, buf) = rest.split_at(klen);
    if !prefix.iter().chain(key).all(|&b| b > b' ' && b != 0x7f) {
        return;
    }
    let wk = [prefix, key].concat();
    // the one-element shortcut of multi-get reads exactly what parse() reads
    if let Some((flags, data, used)) = parse_plain_value(buf, prefix, key) {
        let want = Response::Value {
            key: &wk,
            flags,
            cas: None,
            data,
        };
        assert_eq!(
            parse(buf),
            Ok(Some((want, used))),
            "plain VALUE of key {}: {}",
            show(&wk),
            show(buf)
        );
    }
    let fast = parse_get_reply(buf, prefix, key);
    // the one-read shortcut of get reads exactly what parse_get_reply reads
    if let Some((reply, used)) = parse_plain_hit(buf, prefix, key) {
        assert_eq!(
            fast,
            FastGet::Done(reply, used),
            "plain hit of key {}: {}",
            show(&wk),
            show(buf)
        );
    }
    let first = parse(buf);
    let ctx = || format!("key {} reply {}: fast path {fast:?}", show(&wk), show(buf));
    let long_header = !buf[..buf.len().min(MAX_LINE + 2)].contains(&b'\n');
    match fast {
        // F1: a reply shorter than our VALUE header waits when it only starts
        // with "VALUE "
        FastGet::NeedMore if known("F1") && buf.len() < 6 + wk.len() + 1 => {}
        // F3: a VALUE header longer than any line the generic parser accepts
        FastGet::Done(..) if known("F3") && long_header => {}
        FastGet::Done(reply, used) => {
            assert!(used <= buf.len(), "{}", ctx());
            let Ok(Some((r1, n1))) = first else {
                panic!("{}, generic parser {first:?}", ctx());
            };
            match reply {
                GetReply::Miss => {
                    assert_eq!((r1, n1, used), (Response::End, 5, 5), "{}", ctx());
                }
                GetReply::Hit { flags, cas, data } => {
                    let want = Response::Value {
                        key: &wk,
                        flags,
                        cas,
                        data,
                    };
                    assert_eq!(r1, want, "{}", ctx());
                    let second = parse(&buf[n1..]);
                    assert_eq!(second, Ok(Some((Response::End, 5))), "{}", ctx());
                    assert_eq!(n1 + 5, used, "{}", ctx());
                }
            }
            for cut in 0..used {
                let got = parse_get_reply(&buf[..cut], prefix, key);
                assert_eq!(got, FastGet::NeedMore, "{}, prefix of {cut}", ctx());
            }
            assert_eq!(
                parse_get_reply(&buf[..used], prefix, key),
                fast,
                "{}",
                ctx()
            );
        }
        FastGet::NeedMore => match first {
            Ok(None) => {}
            Ok(Some((Response::Value { key: k, .. }, n1))) if k == &wk[..] => {
                let second = parse(&buf[n1..]);
                assert_eq!(second, Ok(None), "{}, after the VALUE", ctx());
            }
            _ => panic!("{}, generic parser {first:?}", ctx()),
        },
        FastGet::Other => {
            if let Ok(Some((r1, n1))) = first {
                let whole_reply = match r1 {
                    Response::End => true,
                    Response::Value { key: k, .. } if k == &wk[..] => {
                        matches!(parse(&buf[n1..]), Ok(Some((Response::End, _))))
                    }
                    _ => false,
                };
                assert!(!whole_reply, "{}, generic parser {first:?}", ctx());
            }
        }
    }
}

// ---------------------------------------------------------------- key_validation

/// Target `key_validation`. Input: a flags byte (bit 0: allow_unicode), the
/// prefix length (0..=255), then the key. `validate_key` must accept exactly
/// the keys the reference predicate accepts, and reject the others with
/// `Error::InvalidKey`.
pub fn check_key_validation(data: &[u8]) {
    let [flags, prefix_len, key @ ..] = data else {
        return;
    };
    let unicode = flags & 1 != 0;
    let prefix_len = usize::from(*prefix_len);
    let want = reference_key_ok(key, prefix_len, unicode);
    let got = validate_key(key, prefix_len, unicode);
    let ctx = format!(
        "key {} ({} bytes), prefix_len {prefix_len}, allow_unicode {unicode}",
        show(key),
        key.len()
    );
    match got {
        Ok(()) => assert!(want, "{ctx}: accepted, should be refused"),
        Err(Error::InvalidKey(_)) => assert!(!want, "{ctx}: refused, should be accepted"),
        Err(e) => panic!("{ctx}: not an InvalidKey error: {e:?}"),
    }
}

/// Non-empty, at most 250 bytes with the prefix, no byte <= 0x20, no 0x7f,
/// and bytes >= 0x80 only when unicode keys are allowed and the key is UTF-8.
fn reference_key_ok(key: &[u8], prefix_len: usize, unicode: bool) -> bool {
    if key.is_empty() || key.len() + prefix_len > 250 {
        return false;
    }
    let mut non_ascii = false;
    for &b in key {
        if b <= 0x20 || b == 0x7f {
            return false;
        }
        if b >= 0x80 {
            non_ascii = true;
        }
    }
    !non_ascii || (unicode && utf8(key))
}

/// UTF-8 validity byte by byte (Unicode table 3-7: no overlong forms, no
/// surrogates, nothing past U+10FFFF).
fn utf8(s: &[u8]) -> bool {
    let mut i = 0;
    while i < s.len() {
        let b = s[i];
        // (number of continuation bytes, allowed range of the first one)
        let (n, lo, hi) = match b {
            0x00..=0x7f => (0, 0, 0),
            0xc2..=0xdf => (1, 0x80, 0xbf),
            0xe0 => (2, 0xa0, 0xbf),
            0xe1..=0xec | 0xee..=0xef => (2, 0x80, 0xbf),
            0xed => (2, 0x80, 0x9f),
            0xf0 => (3, 0x90, 0xbf),
            0xf1..=0xf3 => (3, 0x80, 0xbf),
            0xf4 => (3, 0x80, 0x8f),
            _ => return false,
        };
        if i + n >= s.len() && n > 0 {
            return false;
        }
        for k in 1..=n {
            let c = s[i + k];
            let (lo, hi) = if k == 1 { (lo, hi) } else { (0x80, 0xbf) };
            if c < lo || c > hi {
                return false;
            }
        }
        i += n + 1;
    }
    true
}

// -------------------------------------------------------------- encode_roundtrip

/// Reads fields from the front of the input; past its end every read is 0.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> &'a [u8] {
        let (a, b) = self.0.split_at(n.min(self.0.len()));
        self.0 = b;
        a
    }
    fn u8(&mut self) -> u8 {
        self.take(1).first().copied().unwrap_or(0)
    }
    fn bytes<const N: usize>(&mut self) -> [u8; N] {
        let mut a = [0; N];
        let t = self.take(N);
        a[..t.len()].copy_from_slice(t);
        a
    }
}

/// Makes a byte acceptable in a key (printable ASCII or >= 0x80).
fn key_byte(b: u8) -> u8 {
    if b <= b' ' || b == 0x7f {
        b'!' + b % 94
    } else {
        b
    }
}

/// Target `encode_roundtrip`. Input: selector byte (low bits: set, add,
/// replace, append, prepend or cas; bit 7: noreply; bits 3..=6: retrieval
/// command), flags u32 LE, exptime u32 LE, cas u64 LE, prefix length
/// (0..=15), key length (1..=250), bytes already in the buffer (0..=63), spare
/// capacity (0..=255), then the prefix and key bytes (made valid) and the
/// value (the rest). Missing bytes read as 0.
///
/// The storage command must come out as exactly
/// `<verb> <key> <flags> <exptime> <len>[ <cas>][ noreply]\r\n<value>\r\n`
/// after the bytes already in the buffer, which stay untouched; the one-key
/// retrieval fast encoder must produce the same bytes as the general one.
pub fn check_encode_roundtrip(data: &[u8]) {
    let mut r = Reader(data);
    let sel = r.u8();
    let flags = u32::from_le_bytes(r.bytes());
    let exptime = u32::from_le_bytes(r.bytes());
    let cas_unique = u64::from_le_bytes(r.bytes());
    let plen = usize::from(r.u8() % 16);
    let klen = usize::from(r.u8()) % 250 + 1;
    let pre = usize::from(r.u8() % 64);
    let spare = usize::from(r.u8());
    let prefix: Vec<u8> = r.take(plen).iter().map(|&b| key_byte(b)).collect();
    let mut key: Vec<u8> = r.take(klen).iter().map(|&b| key_byte(b)).collect();
    if key.is_empty() {
        key.push(b'k');
    }
    let value = r.0;
    let noreply = sel & 0x80 != 0;
    let wk = WireKey {
        prefix: &prefix,
        key: &key,
    };

    let mut buf = Vec::with_capacity(pre + spare);
    buf.resize(pre, b'#');
    let cmds = [
        ("set", StoreCmd::Set),
        ("add", StoreCmd::Add),
        ("replace", StoreCmd::Replace),
        ("append", StoreCmd::Append),
        ("prepend", StoreCmd::Prepend),
    ];
    let (verb, cas) = match cmds.get(usize::from(sel % 6)) {
        Some(&(verb, cmd)) => {
            encode::store(&mut buf, cmd, wk, flags, exptime, value, noreply);
            (verb, None)
        }
        None => {
            encode::cas(&mut buf, wk, flags, exptime, value, cas_unique, noreply);
            ("cas", Some(cas_unique))
        }
    };
    assert!(
        buf[..pre].iter().all(|&b| b == b'#'),
        "earlier bytes changed"
    );
    let out = &buf[pre..];

    // parse it back: header line up to the first CRLF (a key has no CR/LF)
    let hdr_end = out
        .windows(2)
        .position(|w| w == b"\r\n")
        .expect("a header line");
    let (header, body) = (&out[..hdr_end], &out[hdr_end + 2..]);
    let f: Vec<&[u8]> = header.split(|&b| b == b' ').collect();
    let mut want: Vec<Vec<u8>> = vec![
        verb.into(),
        wk_bytes(&prefix, &key),
        flags.to_string().into(),
        exptime.to_string().into(),
        value.len().to_string().into(),
    ];
    if let Some(c) = cas {
        want.push(c.to_string().into());
    }
    if noreply {
        want.push(b"noreply".to_vec());
    }
    assert_eq!(
        f,
        want.iter().map(Vec::as_slice).collect::<Vec<_>>(),
        "header {}",
        show(header)
    );
    assert_eq!(body.len(), value.len() + 2, "body length");
    assert_eq!(&body[..value.len()], value, "value bytes");
    assert_eq!(&body[value.len()..], b"\r\n", "value terminator");

    // one-key retrieval: the fast encoder equals the general one
    let cmd = match (sel >> 3) & 3 {
        0 => Retrieve::Get,
        1 => Retrieve::Gets,
        2 => Retrieve::Gat(exptime),
        _ => Retrieve::Gats(exptime),
    };
    let mut one = vec![b'#'; pre];
    encode::retrieve_one(&mut one, cmd, wk);
    let mut general = vec![b'#'; pre];
    encode::retrieve(&mut general, cmd, [wk]);
    assert_eq!(show(&one), show(&general), "retrieve_one vs retrieve");
    let verb = match cmd {
        Retrieve::Get => "get".to_string(),
        Retrieve::Gets => "gets".to_string(),
        Retrieve::Gat(e) => format!("gat {e}"),
        Retrieve::Gats(e) => format!("gats {e}"),
    };
    let mut line = vec![b'#'; pre];
    line.extend_from_slice(verb.as_bytes());
    line.push(b' ');
    line.extend_from_slice(&wk_bytes(&prefix, &key));
    line.extend_from_slice(b"\r\n");
    assert_eq!(show(&one), show(&line), "retrieval line");
}

fn wk_bytes(prefix: &[u8], key: &[u8]) -> Vec<u8> {
    [prefix, key].concat()
}

// ---------------------------------------------------------------- parse_meta

/// Target `parse_meta`. The whole input is a meta reply stream from a server.
///
/// - [`mcrs::protocol::meta::parse_meta`] is applied over the buffer,
///   consuming `used` bytes each time, until `None` or `Err`; `used` must be
///   in `1..=len`, every element must end in CRLF, a `VA`'s data must be as
///   long as its size token, and every proper prefix of an element (all of
///   them for short elements) must give `None`.
/// - Wherever the fast reader
///   [`parse_meta_fast`](mcrs::protocol::meta_fast::parse_meta_fast) takes an
///   element, the generic
///   [`parse_meta_generic`](mcrs::protocol::meta::parse_meta_generic) reads
///   the same reply (every field) in the same bytes.
/// - The same bytes in two reads, split at a point taken from the first two
///   bytes, must give the same elements and the same end.
/// - Base64: the input encoded and decoded again is the input.
pub fn check_parse_meta(data: &[u8]) {
    use mcrs::protocol::meta::{base64_decode, base64_encode, base64_len};
    let whole = meta_stream(data, &[], true);
    let split = match data {
        [a, b, ..] => usize::from(u16::from_le_bytes([*a, *b])) % (data.len() + 1),
        _ => data.len() / 2,
    };
    let two = meta_stream(data, &[split], false);
    assert_eq!(two, whole, "two reads split at {split} differ from one");
    let mut coded = Vec::new();
    base64_encode(&mut coded, &[data]);
    assert_eq!(coded.len(), base64_len(data.len()));
    assert_eq!(
        base64_decode(&coded).as_deref(),
        Some(data),
        "base64 of {}",
        show(data)
    );
}

type MetaStream = (Vec<(String, usize)>, End);

fn meta_stream(data: &[u8], cuts: &[usize], one_shot: bool) -> MetaStream {
    use mcrs::protocol::meta::{parse_meta, parse_meta_generic, MetaResponse};
    use mcrs::protocol::meta_fast::parse_meta_fast;
    let mut reads = cuts.iter().copied().chain([data.len()]);
    let mut avail = reads.next().unwrap_or(data.len()).min(data.len());
    let mut at = 0;
    let mut out = Vec::new();
    loop {
        let view = &data[at..avail];
        if let Some(fast) = parse_meta_fast(view) {
            // the fast reader takes only what the generic one reads the same
            let generic = parse_meta_generic(view);
            assert!(
                matches!(&generic, Ok(Some(g)) if *g == fast),
                "fast {fast:?} vs generic {generic:?}: {}",
                show(view)
            );
        }
        match parse_meta(view) {
            Ok(Some((r, used))) => {
                assert!(
                    used > 0 && used <= view.len(),
                    "used {used} of {}",
                    view.len()
                );
                let bytes = &view[..used];
                assert!(
                    bytes.ends_with(b"\r\n"),
                    "element not ended by CRLF: {}",
                    show(bytes)
                );
                if let MetaResponse::Reply(m) = &r {
                    if let Some(d) = m.data {
                        let line_end = bytes.iter().position(|&b| b == b'\n').expect("a line");
                        assert_eq!(line_end + 1 + d.len() + 2, used, "VA data length");
                        let size: usize = std::str::from_utf8(&bytes[3..line_end - 1])
                            .ok()
                            .and_then(|s| s.split(' ').next())
                            .and_then(|s| s.parse().ok())
                            .expect("a VA size");
                        assert_eq!(size, d.len(), "VA size token vs data");
                    }
                }
                if one_shot {
                    let n = bytes.len();
                    for cut in (0..n).filter(|&c| n <= 128 || c < 32 || c + 32 >= n) {
                        let got = parse_meta(&bytes[..cut]);
                        assert!(
                            matches!(got, Ok(None)),
                            "prefix {cut} of {} gives {got:?}",
                            show(bytes)
                        );
                    }
                }
                out.push((format!("{r:?}"), used));
                at += used;
            }
            Ok(None) => match reads.next() {
                Some(next) => avail = next.clamp(avail, data.len()),
                None => return (out, End::NeedMore(at)),
            },
            Err(e) => return (out, End::Error(e.0)),
        }
    }
}

// ---------------------------------------------------------------- parse_meta_many

/// Target `parse_meta_many`. Input: a control byte `c` (bit 0: the gets
/// form, with cas; the chunk has `(c >> 1) + 1` keys, 1 to 128), then the
/// reply stream of one chunk of a meta multi-get.
///
/// - Where the fast reader `parse_mg_hit` takes an element, the generic
///   `parse_meta` reads the same `VA`: same tag (opaque), flags, cas, data
///   and length.
/// - [`MgStream`](mcrs::protocol::meta_many::MgStream) over the bytes in one
///   read, in two reads (split point from the next two bytes) and in up to
///   ~40 small reads gives the same hits, failures and end (the same bytes
///   used, or the same error).
/// - Hits have rising tags below the key count; each failure covers a
///   non-empty run of tags after the previous hit and before the next one;
///   when the stream ends, the bytes it used end in CRLF.
pub fn check_parse_meta_many(data: &[u8]) {
    use mcrs::protocol::meta::{parse_meta, MetaResponse};
    use mcrs::protocol::meta_many::parse_mg_hit;
    let Some((&ctl, buf)) = data.split_first() else {
        return;
    };
    let with_cas = ctl & 1 == 1;
    let n = u32::from(ctl >> 1) + 1;
    // the fast reader agrees with the generic one at every element it takes
    let mut at = 0;
    while at < buf.len() {
        let rest = &buf[at..];
        let fast = parse_mg_hit(rest, with_cas);
        let Ok(Some((generic, used))) = parse_meta(rest) else {
            assert_eq!(fast, None, "fast read of {}", show(rest));
            break;
        };
        if let Some((tag, flags, cas, d, fused)) = fast {
            let MetaResponse::Reply(r) = generic else {
                panic!("fast hit, generic {generic:?}: {}", show(rest));
            };
            assert_eq!(
                (r.opaque_u32(), r.flags, r.cas, r.data, used),
                (Some(tag), Some(flags), cas, Some(d), fused),
                "fast vs generic: {}",
                show(&rest[..used])
            );
            assert_eq!(cas.is_some(), with_cas);
        }
        at += used;
    }
    let split = match buf {
        [a, b, ..] => usize::from(u16::from_le_bytes([*a, *b])) % (buf.len() + 1),
        _ => buf.len() / 2,
    };
    let whole = mg_stream(buf, n, with_cas, &[]);
    assert_eq!(
        mg_stream(buf, n, with_cas, &[split]),
        whole,
        "two reads at {split}"
    );
    let step = (buf.len() / 40).max(1);
    let small: Vec<usize> = (step..buf.len()).step_by(step).collect();
    assert_eq!(
        mg_stream(buf, n, with_cas, &small),
        whole,
        "reads of {step}"
    );
    // the invariants of what was read
    let (hits, fails, end) = &whole;
    let mut events: Vec<(u32, u32)> = hits.iter().map(|h| (h.0, h.0 + 1)).collect();
    events.extend(fails.iter().map(|f| (f.0.start, f.0.end)));
    events.sort();
    for (i, &(from, to)) in events.iter().enumerate() {
        assert!(from < to && to <= n, "tags {from}..{to} of {n}");
        if i > 0 {
            assert!(events[i - 1].1 <= from, "overlap at {from}: {events:?}");
        }
    }
    for w in hits.windows(2) {
        assert!(w[0].0 < w[1].0, "tags not rising: {hits:?}");
    }
    if let MgEnd::Done(used) = end {
        assert!(buf[..*used].ends_with(b"\r\n"), "ends without CRLF");
    }
}

#[derive(Debug, PartialEq)]
enum MgEnd {
    /// MN (or n + 1 answers): the bytes used
    Done(usize),
    /// all bytes read, waiting for more after the bytes used
    NeedMore(usize),
    Error(String),
}

type MgSeen = (
    Vec<(u32, Vec<u8>, u32, Option<u64>)>,
    Vec<(std::ops::Range<u32>, String)>,
    MgEnd,
);

/// `MgStream` over `buf` handed over in reads ending at `cuts`.
fn mg_stream(buf: &[u8], n: u32, with_cas: bool, cuts: &[usize]) -> MgSeen {
    use mcrs::protocol::meta_many::MgStream;
    let mut s = MgStream::new(n, with_cas, 1 << 20);
    let (mut hits, mut fails) = (Vec::new(), Vec::new());
    let mut at = 0;
    for &end in cuts.iter().chain([&buf.len()]) {
        let end = end.clamp(at, buf.len());
        loop {
            let r = s.feed(
                &buf[at..end],
                &mut |t, d, f, c| hits.push((t, d.to_vec(), f, c)),
                &mut |r, e| fails.push((r, format!("{e:?}"))),
            );
            match r {
                Ok((used, done)) => {
                    assert!(used <= end - at, "used {used} of {}", end - at);
                    at += used;
                    if done {
                        assert!(s.is_done());
                        return (hits, fails, MgEnd::Done(at));
                    }
                    if used == 0 {
                        break;
                    }
                }
                Err(e) => return (hits, fails, MgEnd::Error(format!("{e:?}"))),
            }
        }
    }
    (hits, fails, MgEnd::NeedMore(at))
}
