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
    match buf.first_chunk::<WINDOW>() {
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
