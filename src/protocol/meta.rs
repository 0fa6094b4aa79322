//! The meta protocol (`mg ms md ma mn`), sans I/O: requests with their flags
//! encoded into a buffer, replies (`HD VA EN NF NS EX MN` and their returned
//! flags) parsed from bytes, and the base64 form of binary keys (`b`).
//!
//! Like [`parse()`](super::parse()), [`parse_meta`] keeps no state: it returns
//! one whole reply and the bytes it used, or `None` while the bytes are only a
//! prefix of one. Reference: memcached's `doc/protocol.txt` ("Meta Get" ...
//! "Meta No-Op"), checked against memcached 1.6.18.

use super::encode::{push_u64, WireKey};
use super::parse::{memchr, parse_u64, ProtocolError, MAX_LINE, MAX_VALUE};

/// Longest key token memcached accepts (for a base64 key: the encoded form).
pub const MAX_META_KEY: usize = 250;

/// The four meta commands that take a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetaCmd {
    Get,
    Set,
    Delete,
    Arithmetic,
}

impl MetaCmd {
    fn verb(self) -> &'static [u8] {
        match self {
            MetaCmd::Get => b"mg ",
            MetaCmd::Set => b"ms ",
            MetaCmd::Delete => b"md ",
            MetaCmd::Arithmetic => b"ma ",
        }
    }
}

/// The `M` mode token of `ms` (set modes) and `ma` (arithmetic modes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetaMode {
    /// `ms ME`: store only if absent.
    Add,
    /// `ms MA`
    Append,
    /// `ms MP`
    Prepend,
    /// `ms MR`: store only if present.
    Replace,
    /// `ms MS` (the default of `ms`)
    Set,
    /// `ma MI` (the default of `ma`)
    Incr,
    /// `ma MD`
    Decr,
}

impl MetaMode {
    fn letter(self) -> u8 {
        match self {
            MetaMode::Add => b'E',
            MetaMode::Append => b'A',
            MetaMode::Prepend => b'P',
            MetaMode::Replace => b'R',
            MetaMode::Set => b'S',
            MetaMode::Incr => b'I',
            MetaMode::Decr => b'D',
        }
    }
}

/// Request flags. Each set field becomes one flag on the command line, in
/// the order of the fields; which flags a command honours is the server's
/// business (see protocol.txt), so callers set only those that apply.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MetaFlags<'a> {
    /// `v`: return the value (mg, ma).
    pub value: bool,
    /// `c`: return the cas unique.
    pub cas: bool,
    /// `f`: return the client flags.
    pub flags: bool,
    /// `h`: return whether the item was hit before (0 or 1).
    pub hit_before: bool,
    /// `k`: return the key.
    pub key: bool,
    /// `l`: return the seconds since the last access.
    pub last_access: bool,
    /// `s`: return the value's size.
    pub size: bool,
    /// `t`: return the TTL left in seconds (-1: none).
    pub ttl: bool,
    /// `q`: quiet mode, the common reply (EN for mg, HD for ms/md) is not sent.
    pub quiet: bool,
    /// `u`: do not bump the item in the LRU.
    pub no_bump: bool,
    /// `I`: invalidate (md: mark stale instead of deleting; ms: store as
    /// stale when the given cas is older than the item's).
    pub invalidate: bool,
    /// `O<token>`: an opaque tag echoed in the reply.
    pub opaque: Option<u32>,
    /// `N<ttl>`: vivify on miss (mg, ma) with this TTL.
    pub vivify: Option<u32>,
    /// `R<secs>`: win the recache when the TTL left is below this (mg).
    pub recache: Option<u32>,
    /// `T<ttl>`: set the TTL (mg touches; ms, ma: the item's TTL; md with I).
    pub set_ttl: Option<u32>,
    /// `F<flags>`: the client flags to store (ms).
    pub set_flags: Option<u32>,
    /// `C<cas>`: compare the cas unique (ms, md, ma).
    pub compare_cas: Option<u64>,
    /// `E<cas>`: use this as the new cas unique.
    pub new_cas: Option<u64>,
    /// `D<delta>` (ma)
    pub delta: Option<u64>,
    /// `J<initial>`: the value of an item vivified by ma.
    pub initial: Option<u64>,
    /// `M<mode>` (ms, ma)
    pub mode: Option<MetaMode>,
    /// Extra space-separated flag tokens appended as they are (validated by
    /// the caller: printable, no whitespace).
    pub raw: &'a [u8],
}

/// No flag set (a start for `MetaFlags { .., ..NO_FLAGS }`).
pub const NO_FLAGS: MetaFlags<'static> = MetaFlags {
    value: false,
    cas: false,
    flags: false,
    hit_before: false,
    key: false,
    last_access: false,
    size: false,
    ttl: false,
    quiet: false,
    no_bump: false,
    invalidate: false,
    opaque: None,
    vivify: None,
    recache: None,
    set_ttl: None,
    set_flags: None,
    compare_cas: None,
    new_cas: None,
    delta: None,
    initial: None,
    mode: None,
    raw: b"",
};

/// How the key goes on the wire.
#[derive(Clone, Copy, Debug)]
pub struct MetaKey<'a> {
    pub key: WireKey<'a>,
    /// Send the prefix and key base64-encoded with the `b` flag.
    pub base64: bool,
}

/// The standard base64 alphabet (RFC 4648), as memcached decodes it.
const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Length of the padded base64 form of `n` bytes.
pub const fn base64_len(n: usize) -> usize {
    n.div_ceil(3) * 4
}

/// Appends the padded base64 form of the concatenation of `parts`.
pub fn base64_encode(buf: &mut Vec<u8>, parts: &[&[u8]]) {
    let mut acc = [0u8; 3];
    let mut n = 0;
    let put = |acc: &[u8; 3], n: usize, buf: &mut Vec<u8>| {
        let w = (u32::from(acc[0]) << 16) | (u32::from(acc[1]) << 8) | u32::from(acc[2]);
        for i in 0..4 {
            if i <= n {
                buf.push(B64[(w >> (18 - 6 * i)) as usize & 63]);
            } else {
                buf.push(b'=');
            }
        }
    };
    for &b in parts.iter().flat_map(|p| p.iter()) {
        acc[n] = b;
        n += 1;
        if n == 3 {
            put(&acc, 3, buf);
            acc = [0; 3];
            n = 0;
        }
    }
    if n > 0 {
        put(&acc, n, buf);
    }
}

/// Decodes padded base64 (what memcached returns for a `b` key); None for
/// anything else.
pub fn base64_decode(s: &[u8]) -> Option<Vec<u8>> {
    if s.len() % 4 != 0 {
        return None;
    }
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    let chunks = s.len() / 4;
    for (ci, c) in s.chunks_exact(4).enumerate() {
        let pad = match (c[2], c[3]) {
            (b'=', b'=') => 2,
            (_, b'=') => 1,
            _ => 0,
        };
        if pad > 0 && ci + 1 != chunks {
            return None;
        }
        let mut w = 0u32;
        for (i, &b) in c.iter().enumerate() {
            let v = if i >= 4 - pad { 0 } else { val(b)? };
            w = (w << 6) | v;
        }
        let bytes = [(w >> 16) as u8, (w >> 8) as u8, w as u8];
        out.extend_from_slice(&bytes[..3 - pad]);
    }
    Some(out)
}

fn push_flag(buf: &mut Vec<u8>, letter: u8) {
    buf.push(b' ');
    buf.push(letter);
}

fn push_token(buf: &mut Vec<u8>, letter: u8, n: u64) {
    push_flag(buf, letter);
    push_u64(buf, n);
}

fn push_flags(buf: &mut Vec<u8>, f: &MetaFlags<'_>) {
    if *f
        == (MetaFlags {
            raw: f.raw,
            ..NO_FLAGS
        })
    {
        // only the raw piece (the hot requests of `lease`)
        if !f.raw.is_empty() {
            buf.push(b' ');
            buf.extend_from_slice(f.raw);
        }
        return;
    }
    for (on, letter) in [
        (f.value, b'v'),
        (f.cas, b'c'),
        (f.flags, b'f'),
        (f.hit_before, b'h'),
        (f.key, b'k'),
        (f.last_access, b'l'),
        (f.size, b's'),
        (f.ttl, b't'),
        (f.quiet, b'q'),
        (f.no_bump, b'u'),
        (f.invalidate, b'I'),
    ] {
        if on {
            push_flag(buf, letter);
        }
    }
    for (v, letter) in [
        (f.opaque.map(u64::from), b'O'),
        (f.vivify.map(u64::from), b'N'),
        (f.recache.map(u64::from), b'R'),
        (f.set_ttl.map(u64::from), b'T'),
        (f.set_flags.map(u64::from), b'F'),
        (f.compare_cas, b'C'),
        (f.new_cas, b'E'),
        (f.delta, b'D'),
        (f.initial, b'J'),
    ] {
        if let Some(n) = v {
            push_token(buf, letter, n);
        }
    }
    if let Some(m) = f.mode {
        push_flag(buf, b'M');
        buf.push(m.letter());
    }
    if !f.raw.is_empty() {
        buf.push(b' ');
        buf.extend_from_slice(f.raw);
    }
}

fn push_key(buf: &mut Vec<u8>, key: MetaKey<'_>) {
    if key.base64 {
        base64_encode(buf, &[key.key.prefix, key.key.key]);
    } else {
        buf.extend_from_slice(key.key.prefix);
        buf.extend_from_slice(key.key.key);
    }
}

/// `mg|md|ma <key> <flags>*\r\n` (`cmd` other than [`MetaCmd::Set`]).
pub fn request(buf: &mut Vec<u8>, cmd: MetaCmd, key: MetaKey<'_>, flags: &MetaFlags<'_>) {
    debug_assert!(cmd != MetaCmd::Set, "ms carries a value: use meta::set");
    buf.extend_from_slice(cmd.verb());
    push_key(buf, key);
    if key.base64 {
        push_flag(buf, b'b');
    }
    push_flags(buf, flags);
    buf.extend_from_slice(b"\r\n");
}

/// `ms <key> <datalen> <flags>*\r\n<data>\r\n`
pub fn set(buf: &mut Vec<u8>, key: MetaKey<'_>, value: &[u8], flags: &MetaFlags<'_>) {
    buf.reserve(value.len() + 64);
    buf.extend_from_slice(MetaCmd::Set.verb());
    push_key(buf, key);
    buf.push(b' ');
    push_u64(buf, value.len() as u64);
    if key.base64 {
        push_flag(buf, b'b');
    }
    push_flags(buf, flags);
    buf.extend_from_slice(b"\r\n");
    buf.extend_from_slice(value);
    buf.extend_from_slice(b"\r\n");
}

/// `mn\r\n`: answered by `MN\r\n` once every earlier request is answered.
pub fn noop(buf: &mut Vec<u8>) {
    buf.extend_from_slice(b"mn\r\n");
}

// ---- replies ------------------------------------------------------------------

/// The return code of a meta reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetaCode {
    /// `HD`: success without a value.
    Hd,
    /// `VA <size>`: success with a value.
    Va,
    /// `EN`: miss (mg).
    En,
    /// `NF`: not found (ms with C, md, ma).
    Nf,
    /// `NS`: not stored (ms).
    Ns,
    /// `EX`: the cas did not match (ms, md, ma).
    Ex,
    /// `MN`: the answer to `mn`.
    Mn,
}

/// One meta reply with the flags it returned. Numbers are checked when
/// parsed; flags the parser does not know are skipped (they must still be
/// well-formed tokens).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MetaReply<'a> {
    pub code: Option<MetaCode>,
    /// The value (`VA` only).
    pub data: Option<&'a [u8]>,
    /// `c`
    pub cas: Option<u64>,
    /// `f`
    pub flags: Option<u32>,
    /// `t`: seconds left; -1 for an item that does not expire.
    pub ttl: Option<i64>,
    /// `s`
    pub size: Option<u64>,
    /// `k`: the key as sent back (base64 when `base64`).
    pub key: Option<&'a [u8]>,
    /// `O`
    pub opaque: Option<&'a [u8]>,
    /// `h`
    pub hit_before: Option<bool>,
    /// `l`: seconds since the last access.
    pub last_access: Option<u64>,
    /// `b`: the returned key is base64.
    pub base64: bool,
    /// `W`: this client won the right to recompute the item.
    pub win: bool,
    /// `X`: the item is stale (invalidated).
    pub stale: bool,
    /// `Z`: a win token was already handed to another client.
    pub won_already: bool,
}

impl MetaReply<'_> {
    /// The reply's return code (always set by [`parse_meta`]).
    pub fn code(&self) -> MetaCode {
        self.code.expect("parsed replies have a code")
    }

    /// The opaque tag as a number, when it is one.
    pub fn opaque_u32(&self) -> Option<u32> {
        self.opaque
            .and_then(parse_u64)
            .and_then(|n| u32::try_from(n).ok())
    }
}

/// One element of a meta reply stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetaResponse<'a> {
    Reply(MetaReply<'a>),
    /// `ERROR`: the server does not know the command (no meta support).
    Error,
    /// `CLIENT_ERROR <message>`
    ClientError(&'a [u8]),
    /// `SERVER_ERROR <message>`
    ServerError(&'a [u8]),
}

type Parsed<'a> = Result<Option<(MetaResponse<'a>, usize)>, ProtocolError>;

fn bad<T>(msg: &str, line: &[u8]) -> Result<T, ProtocolError> {
    let shown = &line[..line.len().min(64)];
    Err(ProtocolError(format!(
        "{msg}: {:?}",
        String::from_utf8_lossy(shown)
    )))
}

/// Parses one meta reply (or error line) from the front of `buf`: `Ok(None)`
/// while `buf` holds only part of it, `Ok(Some((reply, used)))` when the first
/// `used` bytes are one, `Err` when they cannot be one (the connection must
/// then be dropped). The common shapes are read by
/// [`parse_meta_fast`](super::meta_fast::parse_meta_fast), the rest by
/// [`parse_meta_generic`]; both read a reply the same way.
#[inline]
pub fn parse_meta(buf: &[u8]) -> Parsed<'_> {
    match super::meta_fast::parse_meta_fast(buf) {
        Some(r) => Ok(Some(r)),
        None => parse_meta_generic(buf),
    }
}

/// [`parse_meta`] for every shape: a tokenizer of the flags, each checked.
pub fn parse_meta_generic(buf: &[u8]) -> Parsed<'_> {
    let window = &buf[..buf.len().min(MAX_LINE + 2)];
    let Some(nl) = memchr(b'\n', window) else {
        if buf.len() > MAX_LINE + 1 {
            return bad("response line too long", buf);
        }
        return Ok(None);
    };
    if nl == 0 || buf[nl - 1] != b'\r' {
        return bad("line not terminated by CRLF", &buf[..nl]);
    }
    let line = &buf[..nl - 1];
    let used = nl + 1;
    if line.len() > MAX_LINE {
        return bad("response line too long", line);
    }
    if line == b"ERROR" || line.starts_with(b"ERROR ") {
        return Ok(Some((MetaResponse::Error, used)));
    }
    let message = |word: &[u8]| {
        let rest = line.strip_prefix(word)?;
        (rest.is_empty() || rest[0] == b' ').then(|| rest.strip_prefix(b" ").unwrap_or(rest))
    };
    if let Some(m) = message(b"CLIENT_ERROR") {
        return Ok(Some((MetaResponse::ClientError(m), used)));
    }
    if let Some(m) = message(b"SERVER_ERROR") {
        return Ok(Some((MetaResponse::ServerError(m), used)));
    }
    let code = match line.get(..2) {
        Some(b"HD") => MetaCode::Hd,
        Some(b"VA") => MetaCode::Va,
        Some(b"EN") => MetaCode::En,
        Some(b"NF") => MetaCode::Nf,
        Some(b"NS") => MetaCode::Ns,
        Some(b"EX") => MetaCode::Ex,
        Some(b"MN") => MetaCode::Mn,
        _ => return bad("unexpected meta response", line),
    };
    let rest = &line[2..];
    if !rest.is_empty() && rest[0] != b' ' {
        return bad("unexpected meta response", line);
    }
    // the flag tokens after the code, found with memchr (a split iterator
    // costs a meta get about 200 instructions)
    let mut at = usize::from(!rest.is_empty()); // past the space after the code
    let mut tokens = std::iter::from_fn(|| {
        if at == 0 || at > rest.len() {
            return None;
        }
        let tail = &rest[at..];
        let end = memchr(b' ', tail).unwrap_or(tail.len());
        at += end + 1;
        Some(&tail[..end])
    });
    let mut reply = MetaReply {
        code: Some(code),
        ..MetaReply::default()
    };
    let mut size = None;
    if code == MetaCode::Va {
        let Some(n) = tokens.next().and_then(parse_u64) else {
            return bad("malformed VA size", line);
        };
        match usize::try_from(n) {
            Ok(n) if n <= MAX_VALUE => size = Some(n),
            _ => return bad("value length out of range in VA line", line),
        }
    }
    if code == MetaCode::Mn && !rest.is_empty() {
        return bad("MN with flags", line);
    }
    for t in tokens {
        let Some((&letter, arg)) = t.split_first() else {
            return bad("empty flag in meta response", line);
        };
        if !letter.is_ascii_alphabetic() {
            return bad("malformed flag in meta response", line);
        }
        // numbers are checked digit by digit; other arguments here
        let graphic = || arg.iter().all(|b| b.is_ascii_graphic());
        let num = || parse_u64(arg);
        let ok = match letter {
            b'c' => num().map(|n| reply.cas = Some(n)),
            b'f' => num()
                .and_then(|n| u32::try_from(n).ok())
                .map(|n| reply.flags = Some(n)),
            b't' if arg == b"-1" => {
                reply.ttl = Some(-1);
                Some(())
            }
            b't' => num()
                .and_then(|n| i64::try_from(n).ok())
                .map(|n| reply.ttl = Some(n)),
            b's' => num().map(|n| reply.size = Some(n)),
            b'l' => num().map(|n| reply.last_access = Some(n)),
            b'h' => match arg {
                b"0" | b"1" => {
                    reply.hit_before = Some(arg == b"1");
                    Some(())
                }
                _ => None,
            },
            b'k' | b'O' if !arg.is_empty() && graphic() => {
                *(if letter == b'k' {
                    &mut reply.key
                } else {
                    &mut reply.opaque
                }) = Some(arg);
                Some(())
            }
            b'b' | b'W' | b'X' | b'Z' if arg.is_empty() => {
                *match letter {
                    b'b' => &mut reply.base64,
                    b'W' => &mut reply.win,
                    b'X' => &mut reply.stale,
                    _ => &mut reply.won_already,
                } = true;
                Some(())
            }
            b'k' | b'O' | b'b' | b'W' | b'X' | b'Z' => None,
            // a flag of a newer server: skipped
            _ => graphic().then_some(()),
        };
        if ok.is_none() {
            return bad("malformed flag in meta response", line);
        }
    }
    let Some(len) = size else {
        return Ok(Some((MetaResponse::Reply(reply), used)));
    };
    let end = used + len + 2;
    if buf.len() < end {
        return Ok(None);
    }
    if &buf[end - 2..end] != b"\r\n" {
        return bad("value not followed by CRLF (length mismatch)", line);
    }
    reply.data = Some(&buf[used..end - 2]);
    Ok(Some((MetaResponse::Reply(reply), end)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(k: &'static [u8]) -> MetaKey<'static> {
        MetaKey {
            key: WireKey {
                prefix: b"",
                key: k,
            },
            base64: false,
        }
    }

    fn enc(f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let mut b = Vec::new();
        f(&mut b);
        b
    }

    fn reply(bytes: &[u8]) -> MetaReply<'_> {
        match parse_meta(bytes).unwrap().unwrap() {
            (MetaResponse::Reply(r), n) => {
                assert_eq!(n, bytes.len(), "whole input used");
                r
            }
            other => panic!("not a reply: {other:?}"),
        }
    }

    #[test]
    fn requests() {
        let lease = MetaFlags {
            value: true,
            cas: true,
            flags: true,
            ttl: true,
            vivify: Some(30),
            recache: Some(5),
            ..MetaFlags::default()
        };
        assert_eq!(
            enc(|b| request(b, MetaCmd::Get, key(b"foo"), &lease)),
            b"mg foo v c f t N30 R5\r\n"
        );
        let inval = MetaFlags {
            invalidate: true,
            set_ttl: Some(30),
            quiet: true,
            opaque: Some(7),
            ..MetaFlags::default()
        };
        assert_eq!(
            enc(|b| request(b, MetaCmd::Delete, key(b"k"), &inval)),
            b"md k q I O7 T30\r\n"
        );
        let store = MetaFlags {
            set_ttl: Some(0),
            set_flags: Some(16),
            compare_cas: Some(99),
            mode: Some(MetaMode::Add),
            ..MetaFlags::default()
        };
        assert_eq!(
            enc(|b| set(b, key(b"k"), b"a\r\nb", &store)),
            b"ms k 4 T0 F16 C99 ME\r\na\r\nb\r\n"
        );
        let arith = MetaFlags {
            value: true,
            vivify: Some(0),
            initial: Some(5),
            delta: Some(3),
            mode: Some(MetaMode::Decr),
            new_cas: Some(1),
            hit_before: true,
            last_access: true,
            size: true,
            key: true,
            no_bump: true,
            raw: b"x y",
            ..MetaFlags::default()
        };
        assert_eq!(
            enc(|b| request(b, MetaCmd::Arithmetic, key(b"n"), &arith)),
            b"ma n v h k l s u N0 E1 D3 J5 MD x y\r\n"
        );
        assert_eq!(enc(noop), b"mn\r\n");
        let b64 = MetaKey {
            key: WireKey {
                prefix: b"p:",
                key: b"\x00\xff",
            },
            base64: true,
        };
        assert_eq!(
            enc(|b| request(b, MetaCmd::Get, b64, &MetaFlags::default())),
            b"mg cDoA/w== b\r\n"
        );
        assert_eq!(
            enc(|b| set(b, b64, b"v", &MetaFlags::default())),
            b"ms cDoA/w== 1 b\r\nv\r\n"
        );
    }

    #[test]
    fn base64_roundtrip() {
        let cases: [(&[u8], &[u8]); 6] = [
            (b"", b""),
            (b"f", b"Zg=="),
            (b"fo", b"Zm8="),
            (b"foo", b"Zm9v"),
            (b"foob", b"Zm9vYg=="),
            (b"\x00\x01\x02\xff", b"AAEC/w=="),
        ];
        for (raw, coded) in cases {
            assert_eq!(enc(|b| base64_encode(b, &[raw])), coded);
            assert_eq!(base64_decode(coded).as_deref(), Some(raw));
            assert_eq!(base64_len(raw.len()), coded.len());
        }
        // split across parts the same as whole
        assert_eq!(enc(|b| base64_encode(b, &[b"fo", b"ob"])), b"Zm9vYg==");
        for bad in [&b"Zm9"[..], b"Zm9v=", b"Zg==Zm9v", b"Z===", b"Zm9*"] {
            assert_eq!(base64_decode(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn replies() {
        let r = reply(b"VA 2 c3 f5 t30 X W\r\nhi\r\n");
        assert_eq!(r.code(), MetaCode::Va);
        assert_eq!(r.data, Some(&b"hi"[..]));
        assert_eq!((r.cas, r.flags, r.ttl), (Some(3), Some(5), Some(30)));
        assert!(r.stale && r.win && !r.won_already);
        let r = reply(b"VA 0 c1 f0 t-1 Z\r\n\r\n");
        assert_eq!(
            (r.data, r.ttl, r.won_already),
            (Some(&b""[..]), Some(-1), true)
        );
        let r = reply(b"HD kZm9v b O123 h1 l7 s4\r\n");
        assert_eq!(r.code(), MetaCode::Hd);
        assert_eq!(r.key, Some(&b"Zm9v"[..]));
        assert!(r.base64);
        assert_eq!(r.opaque_u32(), Some(123));
        assert_eq!(
            (r.hit_before, r.last_access, r.size),
            (Some(true), Some(7), Some(4))
        );
        assert_eq!(r.data, None);
        for (bytes, code) in [
            (&b"EN\r\n"[..], MetaCode::En),
            (b"NF\r\n", MetaCode::Nf),
            (b"NS\r\n", MetaCode::Ns),
            (b"EX\r\n", MetaCode::Ex),
            (b"MN\r\n", MetaCode::Mn),
            (b"HD\r\n", MetaCode::Hd),
            (b"EN knope O55\r\n", MetaCode::En),
        ] {
            assert_eq!(reply(bytes).code(), code);
        }
        // a flag of a newer server is skipped
        assert_eq!(reply(b"HD Q9 c1\r\n").cas, Some(1));
        assert_eq!(
            parse_meta(b"CLIENT_ERROR bad command line format\r\n").unwrap(),
            Some((MetaResponse::ClientError(b"bad command line format"), 38))
        );
        assert_eq!(
            parse_meta(b"SERVER_ERROR\r\n").unwrap(),
            Some((MetaResponse::ServerError(b""), 14))
        );
        assert_eq!(
            parse_meta(b"ERROR\r\n").unwrap(),
            Some((MetaResponse::Error, 7))
        );
    }

    /// Every proper prefix of a stream of replies waits for more, and the
    /// whole stream gives the same replies read at once or in pieces.
    #[test]
    fn split_at_every_byte() {
        let stream: &[u8] = b"VA 4 c9 t-1\r\na\r\nb\r\nHD c1\r\nEN\r\nVA 0 W\r\n\r\nMN\r\n";
        let mut at = 0;
        let mut n = 0;
        while at < stream.len() {
            let (_, used) = parse_meta(&stream[at..]).unwrap().unwrap();
            for cut in 0..used {
                assert_eq!(
                    parse_meta(&stream[at..at + cut]).unwrap(),
                    None,
                    "cut {cut}"
                );
            }
            at += used;
            n += 1;
        }
        assert_eq!(n, 5);
    }

    #[test]
    fn garbage_is_an_error() {
        for bad in [
            &b"HI\r\n"[..],
            b"HDX\r\n",
            b"VA\r\n",
            b"VA x\r\n",
            b"VA -1\r\n",
            b"VA 99999999999\r\n",
            b"VA 1\r\nab\r\n",
            b"HD c\r\n",
            b"HD cx\r\n",
            b"HD f4294967296\r\n",
            b"HD t-2\r\n",
            b"HD h2\r\n",
            b"HD Wx\r\n",
            b"HD  c1\r\n",
            b"HD c1 \r\n",
            b"HD 1\r\n",
            b"MN c1\r\n",
            b"HD\n",
            b"\r\n",
            b"HD k\r\n",
        ] {
            assert!(
                parse_meta(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let junk = vec![b'x'; MAX_LINE + 2];
        assert!(parse_meta(&junk).is_err());
    }
}
