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
    let Some(nl) = find_newline(buf) else {
        if buf.len() > MAX_LINE {
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
            match rest.iter().position(|&b| b == b' ') {
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
    // Lines are short and sit at the front; a plain scan over at most
    // MAX_LINE + 2 bytes is enough and keeps the parser dependency-free.
    let window = &buf[..buf.len().min(MAX_LINE + 2)];
    window.iter().position(|&b| b == b'\n')
}

fn parse_value<'a>(
    buf: &'a [u8],
    line: &'a [u8],
    header_len: usize,
) -> Result<Option<(Response<'a>, usize)>, ProtocolError> {
    let mut fields = line[6..].split(|&b| b == b' ');
    let key = fields.next().unwrap_or_default();
    let flags = fields.next().and_then(parse_u64);
    let len = fields.next().and_then(parse_u64);
    let cas = match fields.next() {
        None => None,
        Some(c) => match parse_u64(c) {
            Some(c) => Some(c),
            None => return err("malformed cas in VALUE line", line),
        },
    };
    if key.is_empty() || fields.next().is_some() {
        return err("malformed VALUE line", line);
    }
    let (Some(flags), Some(len)) = (flags, len) else {
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
        let junk = vec![b'x'; MAX_LINE + 1];
        assert!(parse(&junk).is_err());
        let almost = vec![b'x'; MAX_LINE];
        assert_eq!(parse(&almost).unwrap(), None);
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_u64(b"0"), Some(0));
        assert_eq!(parse_u64(b""), None);
        assert_eq!(parse_u64(b"+1"), None);
        assert_eq!(parse_u64(b"18446744073709551616"), None);
    }
}
