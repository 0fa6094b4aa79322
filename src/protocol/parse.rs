//! Incremental response parser.
//!
//! [`parse`] looks at the bytes received so far and either returns one complete
//! response element together with the number of bytes it used, or `None` when
//! more bytes are needed. Elements borrow from the input, so a caller can copy a
//! value straight out of its read buffer. The parser keeps no state: feeding it
//! the same bytes split at any point gives the same elements.

use std::fmt;

/// Longest line accepted before the parser gives up: real lines (a `VALUE`
/// header with a 250-byte key, a `STAT`, an error message) are far shorter, so a
/// longer one means the peer is not speaking the memcached text protocol.
pub const MAX_LINE: usize = 8192;

/// Largest data block accepted in a `VALUE` (memcached's `-I` tops out at 1 GiB).
pub const MAX_VALUE: usize = 1 << 30;

/// The data length announced by the element at the start of `buf` when it
/// is a value whose header line is complete (`VALUE <key> <flags> <bytes>`,
/// or meta's `VA <bytes> ...`), before its data has arrived: lets a reader
/// refuse an oversized value without buffering it. None otherwise (also for
/// a malformed header, which [`parse`] reports).
pub fn announced_value_len(buf: &[u8]) -> Option<u64> {
    let line_end = memchr(b'\n', &buf[..buf.len().min(MAX_LINE)])?;
    let line = buf[..line_end].strip_suffix(b"\r")?;
    let field = if let Some(rest) = line.strip_prefix(b"VALUE ") {
        // key, flags, bytes
        rest.split(|&b| b == b' ').nth(2)?
    } else {
        line.strip_prefix(b"VA ")?.split(|&b| b == b' ').next()?
    };
    if field.is_empty() || field.len() > 19 || !field.iter().all(u8::is_ascii_digit) {
        return None;
    }
    field.iter().try_fold(0u64, |n, &d| {
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

/// One element of a response stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Response<'a> {
    /// `VALUE <key> <flags> <bytes> [<cas>]\r\n<data>\r\n`
    Value {
        key: &'a [u8],
        flags: u32,
        cas: Option<u64>,
        data: &'a [u8],
    },
    /// `END`: the end of a retrieval or stats response.
    End,
    Stored,
    NotStored,
    Exists,
    NotFound,
    Deleted,
    Touched,
    /// `OK` (flush_all, verbosity, cache_memlimit)
    Ok,
    /// The new value after incr/decr.
    Number(u64),
    /// `STAT <name> <value>`
    Stat {
        name: &'a [u8],
        value: &'a [u8],
    },
    /// `VERSION <text>`
    Version(&'a [u8]),
    /// `ERROR`: unknown command.
    Error,
    /// `CLIENT_ERROR <message>`
    ClientError(&'a [u8]),
    /// `SERVER_ERROR <message>`
    ServerError(&'a [u8]),
}

impl Response<'_> {
    /// True for the three error replies that any command may get.
    pub fn is_error(&self) -> bool {
        matches!(
            self,
            Response::Error | Response::ClientError(_) | Response::ServerError(_)
        )
    }
}

/// Bytes that cannot be a memcached response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProtocolError(pub String);

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn err<T>(msg: impl Into<String>, line: &[u8]) -> Result<T, ProtocolError> {
    let shown = &line[..line.len().min(64)];
    Err(ProtocolError(format!(
        "{}: {:?}",
        msg.into(),
        String::from_utf8_lossy(shown)
    )))
}

/// Parses one response element from the front of `buf`.
///
/// Returns `Ok(None)` when `buf` holds only part of an element, `Ok(Some((r, n)))`
/// when the first `n` bytes form element `r`, and `Err` when the bytes cannot be
/// a valid response (the connection must then be dropped).
pub fn parse(buf: &[u8]) -> Result<Option<(Response<'_>, usize)>, ProtocolError> {
    // the reply of nearly every storage command, checked before any scanning
    if buf.starts_with(b"STORED\r\n") {
        return Ok(Some((Response::Stored, 8)));
    }
    let Some(nl) = find_newline(buf) else {
        // a line of MAX_LINE bytes may still be waiting for its "\r\n"
        if buf.len() > MAX_LINE + 1 {
            return err("response line too long", buf);
        }
        return Ok(None);
    };
    if nl == 0 || buf[nl - 1] != b'\r' {
        return err("line not terminated by CRLF", &buf[..nl]);
    }
    let line = &buf[..nl - 1];
    let used = nl + 1;
    if line.len() > MAX_LINE {
        return err("response line too long", line);
    }
    let r = match line.first() {
        Some(b'V') if line.starts_with(b"VALUE ") => return parse_value(buf, line, used),
        Some(b'E') if line == b"END" => Response::End,
        Some(b'E') if line == b"EXISTS" => Response::Exists,
        Some(b'E') if line == b"ERROR" || line.starts_with(b"ERROR ") => Response::Error,
        Some(b'S') if line == b"STORED" => Response::Stored,
        Some(b'S') if line.starts_with(b"STAT ") => {
            let rest = &line[5..];
            match memchr(b' ', rest) {
                Some(sp) if sp > 0 => Response::Stat {
                    name: &rest[..sp],
                    value: &rest[sp + 1..],
                },
                _ => return err("malformed STAT line", line),
            }
        }
        Some(b'S') if line.starts_with(b"SERVER_ERROR") => {
            Response::ServerError(message(&line[b"SERVER_ERROR".len()..]))
        }
        Some(b'N') if line == b"NOT_STORED" => Response::NotStored,
        Some(b'N') if line == b"NOT_FOUND" => Response::NotFound,
        Some(b'D') if line == b"DELETED" => Response::Deleted,
        Some(b'T') if line == b"TOUCHED" => Response::Touched,
        Some(b'O') if line == b"OK" => Response::Ok,
        // `stats reset` answers RESET: an OK by another name
        Some(b'R') if line == b"RESET" => Response::Ok,
        Some(b'V') if line.starts_with(b"VERSION ") => Response::Version(&line[8..]),
        Some(b'C') if line.starts_with(b"CLIENT_ERROR") => {
            Response::ClientError(message(&line[b"CLIENT_ERROR".len()..]))
        }
        Some(b'0'..=b'9') => {
            // memcached may pad an incr result with trailing spaces
            let digits = trim_trailing_spaces(line);
            match parse_u64(digits) {
                Some(n) => Response::Number(n),
                None => return err("malformed number", line),
            }
        }
        _ => return err("unexpected response", line),
    };
    Ok(Some((r, used)))
}

fn message(rest: &[u8]) -> &[u8] {
    rest.strip_prefix(b" ").unwrap_or(rest)
}

fn trim_trailing_spaces(mut s: &[u8]) -> &[u8] {
    while let [head @ .., b' '] = s {
        s = head;
    }
    s
}

fn find_newline(buf: &[u8]) -> Option<usize> {
    memchr(b'\n', &buf[..buf.len().min(MAX_LINE + 2)])
}

/// Index of the first `needle` in `hay`. libc's memchr is vectorized; for the
/// short lines of this protocol that beats a byte loop several times over.
pub(crate) fn memchr(needle: u8, hay: &[u8]) -> Option<usize> {
    if hay.is_empty() {
        return None;
    }
    // SAFETY: hay is a valid slice; memchr reads at most hay.len() bytes.
    let p = unsafe { libc::memchr(hay.as_ptr().cast(), needle.into(), hay.len()) };
    if p.is_null() {
        None
    } else {
        Some(p as usize - hay.as_ptr() as usize)
    }
}

/// Reads a decimal number starting at `s[i]`: (value, index after it).
/// At least one digit, at most 20, no overflow.
fn number_at(s: &[u8], mut i: usize) -> Option<(u64, usize)> {
    let start = i;
    let mut n: u64 = 0;
    while let Some(&b) = s.get(i) {
        if !b.is_ascii_digit() {
            break;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
        i += 1;
    }
    (i > start).then_some((n, i))
}

fn parse_value<'a>(
    buf: &'a [u8],
    line: &'a [u8],
    header_len: usize,
) -> Result<Option<(Response<'a>, usize)>, ProtocolError> {
    // VALUE <key> <flags> <bytes> [<cas>]
    let rest = &line[6..];
    let Some(sp) = memchr(b' ', rest).filter(|&sp| sp > 0) else {
        return err("malformed VALUE line", line);
    };
    let key = &rest[..sp];
    let fields = (|| {
        let (flags, i) = number_at(rest, sp + 1)?;
        if rest.get(i) != Some(&b' ') {
            return None;
        }
        let (len, i) = number_at(rest, i + 1)?;
        let cas = match rest.get(i) {
            None => None,
            Some(b' ') => {
                let (cas, j) = number_at(rest, i + 1)?;
                if j != rest.len() {
                    return None;
                }
                Some(cas)
            }
            Some(_) => return None,
        };
        Some((flags, len, cas))
    })();
    let Some((flags, len, cas)) = fields else {
        return err("malformed VALUE line", line);
    };
    let Ok(flags) = u32::try_from(flags) else {
        return err("flags out of range in VALUE line", line);
    };
    let len = match usize::try_from(len) {
        Ok(l) if l <= MAX_VALUE => l,
        _ => return err("value length out of range in VALUE line", line),
    };
    let end = header_len + len + 2;
    if buf.len() < end {
        return Ok(None);
    }
    if &buf[end - 2..end] != b"\r\n" {
        return err("value not followed by CRLF (length mismatch)", line);
    }
    Ok(Some((
        Response::Value {
            key,
            flags,
            cas,
            data: &buf[header_len..end - 2],
        },
        end,
    )))
}

/// The reply to a one-key `get`/`gets`/`gat`/`gats`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GetReply<'a> {
    Hit {
        flags: u32,
        cas: Option<u64>,
        data: &'a [u8],
    },
    Miss,
}

/// What [`parse_get_reply`] made of the bytes so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FastGet<'a> {
    /// The whole reply, and the bytes it used.
    Done(GetReply<'a>, usize),
    /// A prefix of the expected reply: read more.
    NeedMore,
    /// Not the expected shape: let the generic parser look.
    Other,
}

/// The commonest reply to a one-key get in full (the reply and the bytes it
/// used): [`parse_plain_value`] followed by `END\r\n`, all of it in `buf`.
/// None for anything else, which [`parse_get_reply`] reads: this is a strict
/// subset of what it accepts, read the same way.
#[inline(always)]
pub fn parse_plain_hit<'a>(
    buf: &'a [u8],
    prefix: &[u8],
    key: &[u8],
) -> Option<(GetReply<'a>, usize)> {
    let (flags, data, used) = parse_plain_value(buf, prefix, key)?;
    let total = used + 5;
    if buf.len() < total || !eq_short(&buf[used..total], b"END\r\n") {
        return None;
    }
    Some((
        GetReply::Hit {
            flags,
            cas: None,
            data,
        },
        total,
    ))
}

/// One `VALUE` element for exactly `prefix + key`, in its commonest form,
/// checked with as few instructions as possible:
/// `VALUE <prefix><key> <flags> <bytes>\r\n<data>\r\n` with flags and bytes
/// of 1 to 9 digits (so no overflow, and bytes below `MAX_VALUE`), no cas,
/// all of it in `buf`: (flags, data, bytes used). None for anything else,
/// which the generic [`parse`] then reads: this is a strict subset of what it
/// accepts, read the same way.
#[inline(always)]
pub fn parse_plain_value<'a>(
    buf: &'a [u8],
    prefix: &[u8],
    key: &[u8],
) -> Option<(u32, &'a [u8], usize)> {
    /// (value, index after it) of 1 to 9 digits at `s[i..]`, followed by `end`.
    #[inline(always)]
    fn small_number(s: &[u8], mut i: usize, end: u8) -> Option<(u32, usize)> {
        let start = i;
        let mut n: u32 = 0;
        loop {
            let d = s.get(i)?.wrapping_sub(b'0');
            if d > 9 {
                break;
            }
            if i - start == 9 {
                return None; // a tenth digit
            }
            n = n * 10 + u32::from(d);
            i += 1;
        }
        (i > start && s[i] == end).then_some((n, i + 1))
    }
    let head = 6 + prefix.len() + key.len() + 1;
    // head and at least "0 0\r\n\r\n"
    if buf.len() < head + 7 {
        return None;
    }
    let ours = eq_short(&buf[..6], b"VALUE ")
        && eq_short(&buf[6..6 + prefix.len()], prefix)
        && eq_short(&buf[6 + prefix.len()..head - 1], key)
        && buf[head - 1] == b' ';
    if !ours {
        return None;
    }
    let (flags, i) = small_number(buf, head, b' ')?;
    let (len, i) = small_number(buf, i, b'\r')?;
    if buf.get(i) != Some(&b'\n') {
        return None;
    }
    let data_start = i + 1;
    let data_end = data_start + len as usize;
    let total = data_end + 2;
    if buf.len() < total || buf[data_end] != b'\r' || buf[data_end + 1] != b'\n' {
        return None;
    }
    Some((flags, &buf[data_start..data_end], total))
}

/// Parses the whole reply to a one-key retrieval of `prefix + key` in one go:
/// `END`, or the `VALUE` of exactly that key followed by `END`, in any shape
/// (a reply not all here yet, gets' cas, long numbers). The expected bytes
/// are compared in place instead of being tokenized. Anything else (an error
/// reply, a value for another key, garbage) is [`FastGet::Other`]: the
/// generic [`parse`] then classifies the same bytes. [`parse_plain_hit`]
/// reads the commonest shape with fewer instructions; callers try it first.
pub fn parse_get_reply<'a>(buf: &'a [u8], prefix: &[u8], key: &[u8]) -> FastGet<'a> {
    const END: &[u8] = b"END\r\n";
    if buf.starts_with(END) {
        return FastGet::Done(GetReply::Miss, END.len());
    }
    let head = 6 + prefix.len() + key.len() + 1;
    if buf.len() < head {
        // too short to tell: keep waiting only if it can still be our reply,
        // i.e. it is a prefix of "END\r\n" or of "VALUE <prefix><key> "
        let mut rest = buf;
        let mut is_prefix = true;
        for part in [&b"VALUE "[..], prefix, key] {
            let n = rest.len().min(part.len());
            is_prefix &= rest[..n] == part[..n];
            rest = &rest[n..];
        }
        if (buf.len() < END.len() && END.starts_with(buf)) || is_prefix {
            return FastGet::NeedMore;
        }
        return FastGet::Other;
    }
    let ours = eq_short(&buf[..6], b"VALUE ")
        && eq_short(&buf[6..6 + prefix.len()], prefix)
        && eq_short(&buf[6 + prefix.len()..head - 1], key)
        && buf[head - 1] == b' ';
    if !ours {
        return FastGet::Other;
    }
    // <flags> <bytes>[ <cas>]\r\n, scanned in place (no tokenizing)
    let num = |at: usize| {
        if at >= buf.len() {
            Err(FastGet::NeedMore)
        } else {
            number_at(buf, at).ok_or(FastGet::Other)
        }
    };
    let (flags, i) = match num(head) {
        Ok(n) => n,
        Err(f) => return f,
    };
    let (len, mut i) = match buf.get(i) {
        Some(b' ') => match num(i + 1) {
            Ok(n) => n,
            Err(f) => return f,
        },
        // the flags ran to the end: more may come, unless the line is already too long
        None if i > MAX_LINE => return FastGet::Other,
        None => return FastGet::NeedMore,
        Some(_) => return FastGet::Other,
    };
    let mut cas = None;
    if buf.get(i) == Some(&b' ') {
        match num(i + 1) {
            Ok((c, j)) => {
                cas = Some(c);
                i = j;
            }
            Err(f) => return f,
        }
    }
    // the generic parser's line limit holds here too
    if i > MAX_LINE {
        return FastGet::Other;
    }
    // a number that reached the end of the buffer may still be growing
    if i >= buf.len() || (i + 1 == buf.len() && buf[i] == b'\r') {
        return FastGet::NeedMore;
    }
    if buf[i] != b'\r' || buf[i + 1] != b'\n' {
        return FastGet::Other;
    }
    let (Ok(flags), Ok(len)) = (u32::try_from(flags), usize::try_from(len)) else {
        return FastGet::Other;
    };
    if len > MAX_VALUE {
        return FastGet::Other;
    }
    let line_end = i + 1; // index of '\n'
    let data_start = line_end + 1;
    let data_end = data_start + len;
    let total = data_end + 2 + END.len();
    if buf.len() < total {
        // whatever has arrived must still fit the expected shape
        let tail = &buf[data_end.min(buf.len())..];
        let expect = &b"\r\nEND\r\n"[..];
        if expect.starts_with(&tail[..tail.len().min(expect.len())]) {
            return FastGet::NeedMore;
        }
        return FastGet::Other;
    }
    if !eq_short(&buf[data_end..total], b"\r\nEND\r\n") {
        return FastGet::Other;
    }
    FastGet::Done(
        GetReply::Hit {
            flags,
            cas,
            data: &buf[data_start..data_end],
        },
        total,
    )
}

/// Slice equality without a call into memcmp: keys are short, and the call
/// costs more than comparing a few (possibly overlapping) words in place.
#[inline]
fn eq_short(a: &[u8], b: &[u8]) -> bool {
    #[inline]
    fn word<const N: usize>(s: &[u8], at: usize) -> [u8; N] {
        s[at..at + N].try_into().expect("in range")
    }
    let n = a.len();
    if n != b.len() {
        return false;
    }
    match n {
        0 => true,
        1 => a[0] == b[0],
        2..=3 => word::<2>(a, 0) == word::<2>(b, 0) && word::<2>(a, n - 2) == word::<2>(b, n - 2),
        4..=7 => word::<4>(a, 0) == word::<4>(b, 0) && word::<4>(a, n - 4) == word::<4>(b, n - 4),
        _ => {
            let mut i = 0;
            while i + 8 <= n {
                if word::<8>(a, i) != word::<8>(b, i) {
                    return false;
                }
                i += 8;
            }
            i == n || word::<8>(a, n - 8) == word::<8>(b, n - 8)
        }
    }
}

/// Strict unsigned decimal: digits only, no sign, no overflow, not empty.
pub fn parse_u64(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 20 {
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

#[cfg(test)]
mod tests {
    #[test]
    fn announced_lengths() {
        assert_eq!(announced_value_len(b"VALUE k 0 5\r\nab"), Some(5));
        assert_eq!(
            announced_value_len(b"VALUE k 7 123456789012 99\r\n"),
            Some(123456789012)
        );
        assert_eq!(
            announced_value_len(b"VA 300000000 f0 t-1\r\n"),
            Some(300000000)
        );
        assert_eq!(announced_value_len(b"VALUE k 0 5"), None); // line incomplete
        assert_eq!(announced_value_len(b"END\r\n"), None);
        assert_eq!(announced_value_len(b"VALUE k 0 x\r\n"), None);
        assert_eq!(
            announced_value_len(b"VALUE k 0 99999999999999999999\r\n"),
            None
        );
    }

    use super::*;

    fn one(bytes: &[u8]) -> Response<'_> {
        let (r, n) = parse(bytes).unwrap().unwrap();
        assert_eq!(n, bytes.len(), "whole input consumed");
        r
    }

    #[test]
    fn simple_lines() {
        assert_eq!(one(b"END\r\n"), Response::End);
        assert_eq!(one(b"STORED\r\n"), Response::Stored);
        assert_eq!(one(b"NOT_STORED\r\n"), Response::NotStored);
        assert_eq!(one(b"EXISTS\r\n"), Response::Exists);
        assert_eq!(one(b"NOT_FOUND\r\n"), Response::NotFound);
        assert_eq!(one(b"DELETED\r\n"), Response::Deleted);
        assert_eq!(one(b"TOUCHED\r\n"), Response::Touched);
        assert_eq!(one(b"OK\r\n"), Response::Ok);
        assert_eq!(one(b"ERROR\r\n"), Response::Error);
        assert_eq!(one(b"42\r\n"), Response::Number(42));
        assert_eq!(one(b"7   \r\n"), Response::Number(7));
        assert_eq!(one(b"18446744073709551615\r\n"), Response::Number(u64::MAX));
        assert_eq!(one(b"VERSION 1.6.18\r\n"), Response::Version(b"1.6.18"));
        assert_eq!(
            one(b"STAT pid 1234\r\n"),
            Response::Stat {
                name: b"pid",
                value: b"1234"
            }
        );
        assert_eq!(
            one(b"STAT version 1.6 x\r\n"),
            Response::Stat {
                name: b"version",
                value: b"1.6 x"
            }
        );
        assert_eq!(
            one(b"SERVER_ERROR object too large for cache\r\n"),
            Response::ServerError(b"object too large for cache")
        );
        assert_eq!(
            one(b"CLIENT_ERROR bad data chunk\r\n"),
            Response::ClientError(b"bad data chunk")
        );
        assert_eq!(one(b"SERVER_ERROR\r\n"), Response::ServerError(b""));
    }

    #[test]
    fn values() {
        assert_eq!(
            one(b"VALUE foo 16 3\r\nbar\r\n"),
            Response::Value {
                key: b"foo",
                flags: 16,
                cas: None,
                data: b"bar"
            }
        );
        assert_eq!(
            one(b"VALUE k 0 4 99\r\na\r\nb\r\n"),
            Response::Value {
                key: b"k",
                flags: 0,
                cas: Some(99),
                data: b"a\r\nb"
            }
        );
        assert_eq!(
            one(b"VALUE e 4294967295 0\r\n\r\n"),
            Response::Value {
                key: b"e",
                flags: u32::MAX,
                cas: None,
                data: b""
            }
        );
    }

    #[test]
    fn stream_of_elements() {
        let s = b"VALUE a 0 1\r\n1\r\nVALUE b 2 2\r\n22\r\nEND\r\nSTORED\r\n";
        let mut at = 0;
        let mut got = Vec::new();
        while at < s.len() {
            let (r, n) = parse(&s[at..]).unwrap().unwrap();
            got.push(format!("{r:?}"));
            at += n;
        }
        assert_eq!(got.len(), 4);
        assert!(got[3].contains("Stored"));
    }

    /// Every prefix of a valid stream is "need more" or a whole element, never an
    /// error and never a different element: responses may arrive split anywhere.
    #[test]
    fn split_at_every_byte() {
        let stream: &[u8] = b"VALUE key 5 10 77\r\n0123\r\n6789\r\nVALUE k2 0 0\r\n\r\nEND\r\n\
            STORED\r\nNOT_STORED\r\n12345\r\nSTAT curr_items 3\r\nEND\r\nVERSION 1.6.18\r\n\
            SERVER_ERROR out of memory storing object\r\nTOUCHED\r\nDELETED\r\nOK\r\n";
        let mut whole = Vec::new();
        let mut at = 0;
        while at < stream.len() {
            let (r, n) = parse(&stream[at..]).unwrap().unwrap();
            whole.push((format!("{r:?}"), n));
            at += n;
        }
        assert_eq!(whole.len(), 13);
        let mut at = 0;
        for (expect, n) in &whole {
            for cut in 0..*n {
                assert_eq!(
                    parse(&stream[at..at + cut]).unwrap(),
                    None,
                    "cut {cut} of {expect}"
                );
            }
            let (r, used) = parse(&stream[at..at + n]).unwrap().unwrap();
            assert_eq!((format!("{r:?}"), used), (expect.clone(), *n));
            at += n;
        }
    }

    #[test]
    fn garbage_is_an_error() {
        for bad in [
            &b"HELLO\r\n"[..],
            b"VALUE\r\n",
            b"VALUE k\r\n",
            b"VALUE k x 1\r\n",
            b"VALUE k 0 x\r\n",
            b"VALUE k 0 1 2 3\r\n",
            b"VALUE k 4294967296 1\r\na\r\n",
            b"VALUE k 0 1 -5\r\nx\r\n",
            b"VALUE  0 1\r\nx\r\n",
            b"VALUE k 0 99999999999\r\n",
            b"END\n",
            b"\n",
            b"12a\r\n",
            b"99999999999999999999999\r\n",
            b"STAT novalue\r\n",
            b"\0\0\0\r\n",
        ] {
            assert!(parse(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn value_longer_than_announced() {
        assert!(parse(b"VALUE k 0 2\r\nabc\r\n").is_err());
        // shorter than announced just waits for more bytes
        assert_eq!(parse(b"VALUE k 0 5\r\nabc\r\n").unwrap(), None);
    }

    #[test]
    fn endless_line_is_refused() {
        let junk = vec![b'x'; MAX_LINE + 2];
        assert!(parse(&junk).is_err());
        let almost = vec![b'x'; MAX_LINE + 1]; // the last byte may be the '\r'
        assert_eq!(parse(&almost).unwrap(), None);
    }

    /// The one-key fast path agrees with the generic parser on every prefix
    /// of every reply, and defers to it for anything unexpected.
    #[test]
    fn get_reply_fast_path() {
        let cases: [(&[u8], Option<GetReply<'static>>); 4] = [
            (b"END\r\n", Some(GetReply::Miss)),
            (
                b"VALUE p:key 7 3\r\nabc\r\nEND\r\n",
                Some(GetReply::Hit {
                    flags: 7,
                    cas: None,
                    data: b"abc",
                }),
            ),
            (
                b"VALUE p:key 0 4 99\r\nEND\r\r\nEND\r\n",
                Some(GetReply::Hit {
                    flags: 0,
                    cas: Some(99),
                    data: b"END\r",
                }),
            ),
            (
                b"VALUE p:key 0 0\r\n\r\nEND\r\n",
                Some(GetReply::Hit {
                    flags: 0,
                    cas: None,
                    data: b"",
                }),
            ),
        ];
        for (bytes, want) in cases {
            for cut in 0..bytes.len() {
                assert_eq!(
                    parse_get_reply(&bytes[..cut], b"p:", b"key"),
                    FastGet::NeedMore,
                    "cut {cut}"
                );
            }
            let FastGet::Done(got, used) = parse_get_reply(bytes, b"p:", b"key") else {
                panic!("not parsed: {:?}", String::from_utf8_lossy(bytes));
            };
            assert_eq!((Some(got), used), (want, bytes.len()));
        }
        for other in [
            &b"VALUE p:kez 0 1\r\nx\r\nEND\r\n"[..],
            b"VALUE p:key 0 1\r\nx\r\nVALUE p:key 0 1\r\nx\r\nEND\r\n",
            b"VALUE p:key 0 2\r\nabc\r\nEND\r\n",
            b"SERVER_ERROR out of memory\r\n",
            b"ERROR\r\n",
            b"VALUE p:key x 1\r\n",
            b"garbage\r\n",
        ] {
            assert_eq!(
                parse_get_reply(other, b"p:", b"key"),
                FastGet::Other,
                "{:?}",
                String::from_utf8_lossy(other)
            );
        }
    }

    /// The one-read shortcut takes only replies the full reader reads the
    /// same way; at its edges (10-digit numbers, leading zeros, a cas, the
    /// largest flags) it leaves the reply to the full reader.
    #[test]
    fn plain_hit_shortcut_agrees_with_the_full_reader() {
        let cases: [(&[u8], bool); 9] = [
            (b"VALUE k 0 3\r\nabc\r\nEND\r\n", true),
            (b"VALUE k 999999999 1\r\nx\r\nEND\r\n", true),
            (b"VALUE k 0000000001 1\r\nx\r\nEND\r\n", false),
            (b"VALUE k 4294967295 1\r\nx\r\nEND\r\n", false),
            (b"VALUE k 4294967296 1\r\nx\r\nEND\r\n", false),
            (b"VALUE k 1 0000000002\r\nxy\r\nEND\r\n", false),
            (b"VALUE k 1 2 3\r\nxy\r\nEND\r\n", false),
            (b"VALUE k 1 2\r\nxy\r\nEND\r\nextra", true),
            (b"VALUE k 1 2\r\nxy\r\nEND\r", false),
        ];
        for (bytes, shortcut) in cases {
            let show = String::from_utf8_lossy(bytes);
            let quick = parse_plain_hit(bytes, b"", b"k");
            assert_eq!(quick.is_some(), shortcut, "{show}");
            let full = parse_get_reply(bytes, b"", b"k");
            if let Some((reply, used)) = quick {
                assert_eq!(full, FastGet::Done(reply, used), "{show}");
            }
        }
        // past the shortcut, 4294967296 does not fit the flags
        assert_eq!(
            parse_get_reply(b"VALUE k 4294967296 1\r\nx\r\nEND\r\n", b"", b"k"),
            FastGet::Other
        );
    }

    /// The multi-get shortcut reads one element exactly as `parse` does, and
    /// leaves everything else to it.
    #[test]
    fn plain_value_shortcut_agrees_with_parse() {
        let value = |b: &'static [u8]| parse_plain_value(b, b"p:", b"key");
        let reply = b"VALUE p:key 7 3\r\nabc\r\nVALUE p:kez 0 1\r\nx\r\nEND\r\n";
        let (flags, data, used) = value(reply).expect("plain value");
        assert_eq!((flags, data, used), (7, &b"abc"[..], 22));
        assert_eq!(
            parse(reply),
            Ok(Some((
                Response::Value {
                    key: b"p:key",
                    flags: 7,
                    cas: None,
                    data: b"abc"
                },
                used
            )))
        );
        // the next element is another key's; incomplete, cas and bad ends are not taken
        assert_eq!(parse_plain_value(&reply[used..], b"p:", b"key"), None);
        for other in [
            &b"VALUE p:key 7 3\r\nabc\r"[..],
            b"VALUE p:key 7 3\r\nab",
            b"VALUE p:key 7 3 9\r\nabc\r\n",
            b"VALUE p:key 7 3\r\nabcd\r\n",
            b"VALUE p:key 7 0000000003\r\nabc\r\n",
            b"END\r\n",
        ] {
            assert_eq!(value(other), None, "{:?}", String::from_utf8_lossy(other));
        }
    }

    #[test]
    fn short_equality() {
        let pool = b"abcdefghijklmnopqrstuvwxyz0123456789";
        for n in 0..pool.len() {
            let a = &pool[..n];
            assert!(eq_short(a, a));
            for i in 0..n {
                let mut b = a.to_vec();
                b[i] ^= 1;
                assert!(!eq_short(a, &b), "len {n} differs at {i}");
            }
            assert!(!eq_short(a, &pool[..n + 1]));
        }
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_u64(b"0"), Some(0));
        assert_eq!(parse_u64(b""), None);
        assert_eq!(parse_u64(b"+1"), None);
        assert_eq!(parse_u64(b"18446744073709551616"), None);
    }
}
