//! Fast paths of the single-key meta commands: a reader for the common reply
//! shapes (`VA`/`HD`/`EN` with numeric and `W X Z` flags) and a one-reservation
//! encoder of the `mg` lines of `meta_get` and `lease_get`.
//!
//! [`parse_meta_fast`] takes a strict subset of what the generic
//! [`parse_meta_generic`](super::meta::parse_meta_generic) accepts and reads
//! it the same way (checked by unit tests and the `parse_meta` fuzz target);
//! for anything else it returns None and the generic reader decides.

use super::meta::{base64_encode, base64_len, MetaCode, MetaKey, MetaReply, MetaResponse};
use super::parse::MAX_VALUE;

/// Flags start below this offset of the line; longer lines (far below
/// `MAX_LINE`) go to the generic reader.
const FAST_LINE: usize = 64;

/// Bytes the line is read from: the front of the reply, or a zero-padded
/// copy of a shorter one (zeros end every number and match nothing).
const WINDOW: usize = 128;

/// Byte `i` of the window. No read passes 100: a flag starts below
/// `FAST_LINE` (64) and reads at most 22 bytes (letter, 19 digits, the byte
/// after them); so the mask never wraps and no bounds check is needed.
#[inline(always)]
fn at(w: &[u8; WINDOW], i: usize) -> u8 {
    debug_assert!(i < WINDOW);
    w[i & (WINDOW - 1)]
}

/// (value, index after it) of 1 to `MAX` digits from `start` (MAX below 20:
/// no overflow); the byte after them is the caller's to check.
#[inline(always)]
fn digits<const MAX: usize>(buf: &[u8; WINDOW], start: usize) -> Option<(u64, usize)> {
    let mut n: u64 = 0;
    let mut i = start;
    loop {
        let d = at(buf, i).wrapping_sub(b'0');
        if d > 9 {
            return (i > start).then_some((n, i));
        }
        if i - start == MAX {
            return None;
        }
        n = n * 10 + u64::from(d);
        i += 1;
    }
}

/// One whole `VA <size> <flags>*\r\n<data>\r\n`, `HD <flags>*\r\n` or
/// `EN <flags>*\r\n` at the front of `buf` whose flags are among
/// `c f t h l s W X Z` (numbers of at most 18 or 19 digits, `t-1`, `h0`/`h1`),
/// single spaces, flags starting in the first 64 bytes: the reply and the bytes used,
/// exactly as `parse_meta_generic` reads it. None for anything else
/// (including a reply not whole yet).
#[inline]
pub fn parse_meta_fast(buf: &[u8]) -> Option<(MetaResponse<'_>, usize)> {
    match buf
        .get(..WINDOW)
        .and_then(|w| <&[u8; WINDOW]>::try_from(w).ok())
    {
        Some(w) => parse_window(w, buf),
        None => parse_short(buf),
    }
}

/// [`parse_meta_fast`] of a reply shorter than the window (or not whole).
#[cold]
#[inline(never)]
fn parse_short(buf: &[u8]) -> Option<(MetaResponse<'_>, usize)> {
    if buf.len() < 4 {
        return None;
    }
    let mut pad = [0u8; WINDOW];
    pad[..buf.len()].copy_from_slice(buf);
    parse_window(&pad, buf)
}

/// [`parse_meta_fast`] with the line read from `buf`, the front of `whole`
/// (zero-padded when `whole` is shorter).
#[inline(always)]
fn parse_window<'a>(buf: &[u8; WINDOW], whole: &'a [u8]) -> Option<(MetaResponse<'a>, usize)> {
    let code = match (at(buf, 0), at(buf, 1)) {
        (b'V', b'A') => MetaCode::Va,
        (b'H', b'D') => MetaCode::Hd,
        (b'E', b'N') => MetaCode::En,
        _ => return None,
    };
    let mut reply = MetaReply {
        code: Some(code),
        ..MetaReply::default()
    };
    let mut i = 2;
    let mut size = 0usize;
    if code == MetaCode::Va {
        if at(buf, 2) != b' ' {
            return None;
        }
        let (n, j) = digits::<9>(buf, 3)?;
        if n > MAX_VALUE as u64 {
            return None;
        }
        size = n as usize;
        i = j;
    }
    loop {
        match at(buf, i) {
            b'\r' => break,
            b' ' if i < FAST_LINE => {}
            _ => return None,
        }
        let letter = at(buf, i + 1);
        i += 2;
        match letter {
            b'c' => {
                let (n, j) = digits::<19>(buf, i)?;
                reply.cas = Some(n);
                i = j;
            }
            b'f' => {
                let (n, j) = digits::<10>(buf, i)?;
                reply.flags = Some(u32::try_from(n).ok()?);
                i = j;
            }
            b't' => {
                if at(buf, i) == b'-' && at(buf, i + 1) == b'1' {
                    reply.ttl = Some(-1);
                    i += 2;
                } else {
                    let (n, j) = digits::<18>(buf, i)?;
                    reply.ttl = Some(n as i64);
                    i = j;
                }
            }
            b'l' => {
                let (n, j) = digits::<19>(buf, i)?;
                reply.last_access = Some(n);
                i = j;
            }
            b's' => {
                let (n, j) = digits::<19>(buf, i)?;
                reply.size = Some(n);
                i = j;
            }
            b'h' => {
                reply.hit_before = Some(match at(buf, i) {
                    b'0' => false,
                    b'1' => true,
                    _ => return None,
                });
                i += 1;
            }
            b'W' => reply.win = true,
            b'X' => reply.stale = true,
            b'Z' => reply.won_already = true,
            _ => return None,
        }
    }
    if at(buf, i + 1) != b'\n' {
        return None;
    }
    let used = i + 2;
    if code != MetaCode::Va {
        return Some((MetaResponse::Reply(reply), used));
    }
    let end = used + size;
    if whole.get(end..end + 2)? != b"\r\n" {
        return None;
    }
    reply.data = Some(&whole[used..end]);
    Some((MetaResponse::Reply(reply), end + 2))
}

/// Appends the decimal digits of `n`.
#[inline(always)]
fn push_u32(buf: &mut Vec<u8>, n: u32) {
    let mut tmp = [0u8; 10];
    let mut i = tmp.len();
    let mut n = n;
    loop {
        i -= 1;
        tmp[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    buf.extend_from_slice(&tmp[i..]);
}

/// `mg <key>[ b][ N<vivify>][ R<recache>] <read>\r\n`: the bytes
/// `meta::request(buf, MetaCmd::Get, key, &MetaFlags { vivify, recache, raw:
/// read, ..NO_FLAGS })` writes, with one reservation (`read` non-empty).
#[inline]
pub fn get_request(
    buf: &mut Vec<u8>,
    key: MetaKey<'_>,
    vivify: Option<u32>,
    recache: Option<u32>,
    read: &[u8],
) {
    let klen = key.key.prefix.len() + key.key.key.len();
    let wire = if key.base64 {
        base64_len(klen) + 2
    } else {
        klen
    };
    // "mg " + key [+ " b"] + " N" 10 digits + " R" 10 + " " + read + CRLF
    buf.reserve(3 + wire + 24 + 1 + read.len() + 2);
    buf.extend_from_slice(b"mg ");
    if key.base64 {
        base64_encode(buf, &[key.key.prefix, key.key.key]);
        buf.extend_from_slice(b" b");
    } else {
        buf.extend_from_slice(key.key.prefix);
        buf.extend_from_slice(key.key.key);
    }
    if let Some(n) = vivify {
        buf.extend_from_slice(b" N");
        push_u32(buf, n);
    }
    if let Some(n) = recache {
        buf.extend_from_slice(b" R");
        push_u32(buf, n);
    }
    buf.push(b' ');
    buf.extend_from_slice(read);
    buf.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::encode::WireKey;
    use crate::protocol::meta::{parse_meta_generic, request, MetaCmd, MetaFlags, NO_FLAGS};

    /// The fast reader's answer, checked against the generic one's when it
    /// has one (and against every proper prefix: a reply not whole is None).
    fn fast(bytes: &[u8]) -> Option<(MetaResponse<'_>, usize)> {
        let f = parse_meta_fast(bytes);
        if let Some(got) = f {
            assert_eq!(
                parse_meta_generic(bytes).ok().flatten(),
                Some(got),
                "fast vs generic: {:?}",
                String::from_utf8_lossy(bytes)
            );
            for cut in 0..got.1 {
                assert_eq!(parse_meta_fast(&bytes[..cut]), None, "prefix {cut}");
            }
        }
        f
    }

    /// Every shape the fast reader must take, with long and short data and
    /// trailing bytes of a next reply.
    #[test]
    fn takes_the_common_shapes_as_the_generic_reader() {
        let lines: &[&[u8]] = &[
            b"VA 100 c12345 f0 t-1 h1 l0",
            b"VA 5 c1 f4294967295 t30 h0 l99",
            b"VA 0 c1 f0 t-1 W",
            b"VA 0 c1 f0 t30 Z",
            b"VA 2 c3 f5 t30 X W",
            b"VA 2 c3 f5 t29 Z X",
            b"VA 1 t10 c18 W",
            b"VA 3",
            b"VA 3 s3",
            b"VA 7 c9999999999999999999 l9999999999999999999 t999999999999999999",
            b"VA 4 f1 f2 c3 c4",
            b"VA 000000002 c007 f00",
            b"HD",
            b"HD c77",
            b"HD t-1 W X Z",
            b"EN",
            b"EN W",
        ];
        for line in lines {
            let size: usize = if line.starts_with(b"VA") {
                std::str::from_utf8(&line[3..])
                    .unwrap()
                    .split(' ')
                    .next()
                    .unwrap()
                    .parse()
                    .unwrap()
            } else {
                0
            };
            for tail in [&b""[..], b"EN\r\n", &[b'x'; 200]] {
                let mut b = line.to_vec();
                b.extend_from_slice(b"\r\n");
                if line.starts_with(b"VA") {
                    b.extend((0..size).map(|i| b"a\r\n\0"[i % 4]));
                    b.extend_from_slice(b"\r\n");
                }
                let whole = b.len();
                b.extend_from_slice(tail);
                let got = fast(&b);
                assert!(
                    matches!(got, Some((_, n)) if n == whole),
                    "{:?}: {got:?}",
                    String::from_utf8_lossy(line)
                );
            }
        }
    }

    /// Shapes left to the generic reader: what it refuses, and what it reads
    /// but the fast reader does not (keys, opaques, unknown flags).
    #[test]
    fn leaves_the_rest_to_the_generic_reader() {
        for bytes in [
            &b""[..],
            b"VA",
            b"VA 5 c1\r\nabc",
            b"VA 5 c1\r\nabcdefg",
            b"VA 1 c1\r\nab\r\n",
            b"VA 1 c1\r\n\r\n",
            b"VA 1  c1\r\nx\r\n",
            b"VA 1 c1 \r\nx\r\n",
            b"VA 1 c\r\nx\r\n",
            b"VA 1 c1x\r\nx\r\n",
            b"VA 1 c1\nx\r\n",
            b"VA 1 c1\rx\r\n",
            b"VA x c1\r\nx\r\n",
            b"VA 1 c99999999999999999999\r\nx\r\n",
            b"VA 1 f4294967296\r\nx\r\n",
            b"VA 1 t-2\r\nx\r\n",
            b"VA 1 t-12\r\nx\r\n",
            b"VA 1 t9999999999999999999\r\nx\r\n",
            b"VA 1 h2\r\nx\r\n",
            b"VA 1 h10\r\nx\r\n",
            b"VA 1 Wx\r\nx\r\n",
            b"VA 1 kfoo\r\nx\r\n",
            b"VA 1 O5\r\nx\r\n",
            b"VA 1 b\r\nx\r\n",
            b"VA 1 q\r\nx\r\n",
            b"VA 1000000000 c1\r\n",
            b"VA1 c1\r\nx\r\n",
            b"HDc1\r\n",
            b"HD \r\n",
            b"HD c1",
            b"EN\r",
            b"EN\n",
            b"NF\r\n",
            b"NS\r\n",
            b"EX\r\n",
            b"MN\r\n",
            b"ERROR\r\n",
            b"SERVER_ERROR out of memory\r\n",
            b"HD W W W W W W W W W W W W W W W W W W W W W W W W W W W W W W W W W\r\n",
        ] {
            assert_eq!(fast(bytes), None, "{:?}", String::from_utf8_lossy(bytes));
        }
    }

    #[test]
    fn get_request_writes_what_request_does() {
        for (prefix, key, base64) in [
            (&b""[..], &b"foo"[..], false),
            (b"app:", b"k", false),
            (b"", b"\x00\x01\xff", true),
            (b"p", b"ab cd", true),
        ] {
            let mk = MetaKey {
                key: WireKey { prefix, key },
                base64,
            };
            for (vivify, recache) in [
                (None, None),
                (Some(30), None),
                (Some(0), Some(5)),
                (Some(u32::MAX), Some(u32::MAX)),
                (None, Some(1)),
            ] {
                for read in [&b"v c f t h l"[..], b"v c f t"] {
                    let flags = MetaFlags {
                        vivify,
                        recache,
                        raw: read,
                        ..NO_FLAGS
                    };
                    let mut want = b"xy".to_vec();
                    request(&mut want, MetaCmd::Get, mk, &flags);
                    let mut got = b"xy".to_vec();
                    get_request(&mut got, mk, vivify, recache, read);
                    assert_eq!(
                        String::from_utf8_lossy(&got),
                        String::from_utf8_lossy(&want)
                    );
                }
            }
        }
    }
}
