//! The meta multi-get, sans I/O: per key a quiet, tagged `mg` line, a chunk
//! closed by `mn`, and the reader of its reply stream ([`MgStream`]).
//!
//! Request: `mg <key> [b] v f [c] q [T<ttl>] O<tag>\r\n` per key (tag = the
//! key's position in its chunk), then `mn\r\n`. In quiet mode a miss sends
//! nothing and a hit sends `VA <size> f<flags> [c<cas>] O<tag>`, so only hits
//! cross the wire; `MN` closes the chunk once every earlier line is answered.
//! Every hit is matched by its tag, never by position, and tags must rise
//! (memcached answers in request order): a reply out of that order means the
//! stream is out of step and the connection must go. An error line
//! (`CLIENT_ERROR`, `SERVER_ERROR`, `ERROR`) carries no tag: it belongs to one
//! of the keys between the hits around it, so those keys (exactly one when
//! its neighbours hit) get the error while the stream stays in step.

use std::ops::Range;

use super::meta::{parse_meta_generic, MetaCode, MetaKey, MetaResponse};
use super::parse::ProtocolError;

/// What each key of a meta multi-get asks for besides value and flags.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MgMany {
    /// `c`: the cas unique (gets_many, gats).
    pub cas: bool,
    /// `T<ttl>`: touch (gat, gats).
    pub touch: Option<u32>,
}

/// `<tag>\r\n` for the tags of one chunk (up to 256 keys), and its length:
/// written with one 8-byte store (a tag's digits cost more to compute than
/// the rest of the line).
const TAG_LINES: [([u8; 8], usize); 256] = {
    let mut t = [([0u8; 8], 0usize); 256];
    let mut i = 0;
    while i < 256 {
        let mut d = [0u8; 8];
        let digits = if i >= 100 {
            3
        } else if i >= 10 {
            2
        } else {
            1
        };
        let mut n = i;
        let mut k = digits;
        while k > 0 {
            k -= 1;
            d[k] = b'0' + (n % 10) as u8;
            n /= 10;
        }
        d[digits] = b'\r';
        d[digits + 1] = b'\n';
        t[i] = (d, digits + 2);
        i += 1;
    }
    t
};

/// Appends `mg <key> [b] v f [c] q [T<ttl>] O<tag>\r\n`: the key base64
/// encoded (with `b`) when `key.base64`.
#[inline]
pub fn mg_many(buf: &mut Vec<u8>, key: MetaKey<'_>, tag: u32, how: MgMany) {
    let plain = !key.base64 && how == MgMany::default();
    let Some((tag_line, tag_len)) = TAG_LINES.get(tag as usize).filter(|_| plain) else {
        return mg_many_slow(buf, key, tag, how);
    };
    // the hot shape, laid out with one reservation (as encode::retrieve_one)
    let (p, k) = (key.key.prefix, key.key.key);
    const FLAGS: &[u8] = b" v f q O";
    let n = 3 + p.len() + k.len() + FLAGS.len();
    buf.reserve(n + tag_line.len());
    // SAFETY: reserve made room for the n + 8 bytes written here; the
    // length then covers only the n + tag_len initialized ones.
    unsafe {
        let start = buf.as_mut_ptr().add(buf.len());
        start.copy_from_nonoverlapping(b"mg ".as_ptr(), 3);
        if !p.is_empty() {
            start.add(3).copy_from_nonoverlapping(p.as_ptr(), p.len());
        }
        start
            .add(3 + p.len())
            .copy_from_nonoverlapping(k.as_ptr(), k.len());
        start
            .add(n - FLAGS.len())
            .copy_from_nonoverlapping(FLAGS.as_ptr(), FLAGS.len());
        start
            .add(n)
            .copy_from_nonoverlapping(tag_line.as_ptr(), tag_line.len());
        buf.set_len(buf.len() + n + tag_len);
    }
}

#[inline(never)]
fn mg_many_slow(buf: &mut Vec<u8>, key: MetaKey<'_>, tag: u32, how: MgMany) {
    buf.extend_from_slice(b"mg ");
    if key.base64 {
        super::meta::base64_encode(buf, &[key.key.prefix, key.key.key]);
        buf.extend_from_slice(b" b");
    } else {
        buf.extend_from_slice(key.key.prefix);
        buf.extend_from_slice(key.key.key);
    }
    buf.extend_from_slice(if how.cas { b" v f c q" } else { b" v f q" });
    if let Some(t) = how.touch {
        buf.extend_from_slice(b" T");
        super::encode::push_u64(buf, t.into());
    }
    buf.extend_from_slice(b" O");
    super::encode::push_u64(buf, tag.into());
    buf.extend_from_slice(b"\r\n");
}

/// A hit read by [`parse_mg_hit`]: tag, flags, cas, data, bytes used.
pub type FastHit<'a> = (u32, u32, Option<u64>, &'a [u8], usize);

/// The commonest element of a multi-get reply, read with as few
/// instructions as possible: `VA <size> f<flags>[ c<cas>] O<tag>\r\n<data>\r\n`
/// with the cas exactly when `with_cas`, size and tag of 1 to 9 digits,
/// flags of 1 to 10 (at most `u32::MAX`), cas of 1 to 19, all
/// of it in `buf`. None for anything else, which [`parse_meta_generic`] then reads:
/// this is a strict subset of what it accepts, read the same way.
#[inline(always)]
pub fn parse_mg_hit(buf: &[u8], with_cas: bool) -> Option<FastHit<'_>> {
    // The line is read from a window of 64 bytes: the bytes of `buf`, or a
    // zero-padded copy of a shorter `buf` (zeros end every number and match
    // nothing). Each number stops at its digit limit, so no index read
    // passes 57 (see `at`) and the window needs no bounds checks.
    let mut pad = [0u8; WINDOW];
    let w: &[u8] = if buf.len() >= WINDOW {
        &buf[..WINDOW]
    } else {
        pad[..buf.len()].copy_from_slice(buf);
        &pad
    };
    // "VA " 0..3, size 3..=12, 'f' ..=13, flags ..=24, 'c' ..=25, cas
    // ..=45, 'O' ..=46, tag ..=56, '\n' ..=57
    let at = |i: usize| {
        debug_assert!(i < WINDOW);
        // SAFETY: w has WINDOW bytes and every index read is below 58 (above).
        unsafe { *w.get_unchecked(i) }
    };
    /// (value, index after it) of 1 to `MAX` digits from `i`, then `end`
    /// (MAX below 20: no overflow). Reads at most MAX + 1 bytes.
    #[inline(always)]
    fn digits<const MAX: usize>(
        at: impl Fn(usize) -> u8,
        start: usize,
        end: u8,
    ) -> Option<(u64, usize)> {
        let mut n: u64 = 0;
        let mut i = start;
        loop {
            let b = at(i);
            let d = b.wrapping_sub(b'0');
            if d > 9 {
                return (i > start && b == end).then_some((n, i + 1));
            }
            if i - start == MAX {
                return None;
            }
            n = n * 10 + u64::from(d);
            i += 1;
        }
    }
    if at(0) != b'V' || at(1) != b'A' || at(2) != b' ' {
        return None;
    }
    let (size, i) = digits::<9>(at, 3, b' ')?;
    if at(i) != b'f' {
        return None;
    }
    let (flags, mut i) = digits::<10>(at, i + 1, b' ')?;
    let flags = u32::try_from(flags).ok()?;
    let mut cas = None;
    if with_cas {
        if at(i) != b'c' {
            return None;
        }
        let (c, j) = digits::<19>(at, i + 1, b' ')?;
        cas = Some(c);
        i = j;
    }
    if at(i) != b'O' {
        return None;
    }
    let (tag, i) = digits::<9>(at, i + 1, b'\r')?;
    if at(i) != b'\n' {
        return None;
    }
    let data_start = i + 1;
    let data_end = data_start + size as usize;
    if buf.get(data_end..data_end + 2)? != b"\r\n" {
        return None;
    }
    Some((
        tag as u32,
        flags,
        cas,
        &buf[data_start..data_end],
        data_end + 2,
    ))
}

/// Bytes [`parse_mg_hit`] reads a line from.
const WINDOW: usize = 64;

/// An error line in a multi-get reply stream (owned: it is reported once
/// the keys it may belong to are known).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MgLineError {
    /// `CLIENT_ERROR <message>`
    Client(Vec<u8>),
    /// `SERVER_ERROR <message>`
    Server(Vec<u8>),
    /// `ERROR`
    Unknown,
}

/// Why a multi-get reply stream cannot be read on: the connection must be
/// dropped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MgError {
    /// Not a reply to the chunk that was sent (garbage, a tag out of step).
    Protocol(ProtocolError),
    /// A hit of this many bytes, over the reader's limit.
    TooLarge(u64),
}

fn out_of_step<T>(msg: String) -> Result<T, MgError> {
    Err(MgError::Protocol(ProtocolError(msg)))
}

/// Reads the replies to one chunk of `n` quiet gets tagged `O0`..`O<n-1>`
/// and its closing `mn`, from bytes handed over as they arrive.
#[derive(Debug)]
pub struct MgStream {
    n: u32,
    /// the lowest tag that may still be answered
    next: u32,
    with_cas: bool,
    max_value: usize,
    /// an error line since the last hit: it belongs to one of the keys from
    /// `next` up to the next tag answered
    pending: Option<MgLineError>,
    /// replies read (hits, misses, error lines): once they number n + 1
    /// without an `MN`, every line was answered and `mn`'s answer was an
    /// error line (a server without meta answers each line `ERROR`)
    answered: u32,
    done: bool,
}

impl MgStream {
    /// The reader for `n` keys (`with_cas`: asked with `c`), refusing hits
    /// over `max_value` bytes.
    pub fn new(n: u32, with_cas: bool, max_value: usize) -> MgStream {
        MgStream {
            n,
            next: 0,
            with_cas,
            max_value,
            pending: None,
            answered: 0,
            done: false,
        }
    }

    /// True once `MN` was read.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Keys `next..upto` got no reply of their own: misses, or, after an
    /// error line, the keys that error may belong to (none: the line answers
    /// nothing that was asked, so the stream is out of step).
    #[inline(always)]
    fn close_gap(
        &mut self,
        upto: u32,
        fail: &mut impl FnMut(Range<u32>, MgLineError),
    ) -> Result<(), MgError> {
        if self.pending.is_none() {
            self.next = upto + 1;
            return Ok(());
        }
        self.close_failed_gap(upto, fail)
    }

    #[cold]
    #[inline(never)]
    fn close_failed_gap(
        &mut self,
        upto: u32,
        fail: &mut impl FnMut(Range<u32>, MgLineError),
    ) -> Result<(), MgError> {
        if let Some(e) = self.pending.take() {
            if upto == self.next {
                return out_of_step(format!("{e:?} where no key is left unanswered"));
            }
            fail(self.next..upto, e);
        }
        self.next = upto + 1;
        Ok(())
    }

    /// The tag of a reply checked against the chunk.
    #[inline]
    fn check_tag(&self, tag: u32) -> Result<(), MgError> {
        if tag < self.next || tag >= self.n {
            return out_of_step(format!(
                "meta reply tagged O{tag} where O{}..O{} may come",
                self.next,
                self.n.saturating_sub(1)
            ));
        }
        Ok(())
    }

    /// Reads whole replies from the front of `buf`: each hit goes to
    /// `hit(tag, data, flags, cas)`, each failure to `fail(tags, error)`.
    /// Returns the bytes used (the caller drops them and hands over the
    /// rest, with more, next time) and whether `MN` was among them (the
    /// chunk is over; nothing after it was used).
    pub fn feed(
        &mut self,
        buf: &[u8],
        hit: &mut impl FnMut(u32, &[u8], u32, Option<u64>),
        fail: &mut impl FnMut(Range<u32>, MgLineError),
    ) -> Result<(usize, bool), MgError> {
        let mut at = 0;
        while !self.done {
            let rest = &buf[at..];
            if let Some((tag, flags, cas, data, used)) = parse_mg_hit(rest, self.with_cas) {
                self.check_tag(tag)?;
                if data.len() > self.max_value {
                    return Err(MgError::TooLarge(data.len() as u64));
                }
                self.close_gap(tag, fail)?;
                self.answered += 1;
                hit(tag, data, flags, cas);
                at += used;
                continue;
            }
            if rest.is_empty() {
                break;
            }
            if !self.generic(rest, &mut at, hit, fail)? {
                break;
            }
        }
        Ok((at, self.done))
    }

    /// One element in any other shape, read with [`parse_meta_generic`]: false when
    /// it is not all here yet.
    #[inline(never)]
    fn generic(
        &mut self,
        rest: &[u8],
        at: &mut usize,
        hit: &mut impl FnMut(u32, &[u8], u32, Option<u64>),
        fail: &mut impl FnMut(Range<u32>, MgLineError),
    ) -> Result<bool, MgError> {
        // a hit over the limit is refused from its header, before its data
        // is waited for
        if let Some(n) = super::parse::announced_value_len(rest) {
            if rest.starts_with(b"VA ") && n > self.max_value as u64 {
                return Err(MgError::TooLarge(n));
            }
        }
        let (resp, used) = match parse_meta_generic(rest) {
            Ok(Some(r)) => r,
            Ok(None) => return Ok(false),
            Err(e) => return Err(MgError::Protocol(e)),
        };
        match resp {
            MetaResponse::Reply(r) => {
                let code = r.code();
                if code == MetaCode::Mn {
                    self.close_gap(self.n, fail)?;
                    self.done = true;
                } else {
                    let Some(tag) = r.opaque_u32() else {
                        return out_of_step(format!("meta reply {code:?} without a numeric tag"));
                    };
                    self.check_tag(tag)?;
                    match code {
                        MetaCode::Va => {
                            let Some(flags) = r.flags else {
                                return out_of_step("VA without client flags".into());
                            };
                            if self.with_cas && r.cas.is_none() {
                                return out_of_step("VA without cas for gets".into());
                            }
                            let data = r.data.expect("VA has data");
                            if data.len() > self.max_value {
                                return Err(MgError::TooLarge(data.len() as u64));
                            }
                            self.close_gap(tag, fail)?;
                            self.answered += 1;
                            hit(tag, data, flags, r.cas);
                        }
                        // a miss answered although quiet mode was asked
                        MetaCode::En => {
                            self.close_gap(tag, fail)?;
                            self.answered += 1;
                        }
                        other => {
                            return out_of_step(format!("meta reply {other:?} to a get"));
                        }
                    }
                }
            }
            MetaResponse::Error => self.note(MgLineError::Unknown, fail)?,
            MetaResponse::ClientError(m) => self.note(MgLineError::Client(m.to_vec()), fail)?,
            MetaResponse::ServerError(m) => self.note(MgLineError::Server(m.to_vec()), fail)?,
        }
        *at += used;
        Ok(true)
    }

    fn note(
        &mut self,
        e: MgLineError,
        fail: &mut impl FnMut(Range<u32>, MgLineError),
    ) -> Result<(), MgError> {
        // the first error line since the last hit stands for the gap
        self.pending.get_or_insert(e);
        self.answered += 1;
        if self.answered > self.n {
            // every line, `mn` too, was answered: the chunk is over
            if self.next < self.n {
                self.close_gap(self.n, fail)?;
            } else {
                self.pending = None; // the error was mn's own
            }
            self.done = true;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::encode::WireKey;

    fn key<'a>(p: &'a [u8], k: &'a [u8], base64: bool) -> MetaKey<'a> {
        MetaKey {
            key: WireKey { prefix: p, key: k },
            base64,
        }
    }

    fn enc(k: MetaKey<'_>, tag: u32, how: MgMany) -> Vec<u8> {
        let mut b = b"#".to_vec();
        mg_many(&mut b, k, tag, how);
        b.split_off(1)
    }

    #[test]
    fn requests() {
        let plain = MgMany::default();
        assert_eq!(
            enc(key(b"", b"foo", false), 0, plain),
            b"mg foo v f q O0\r\n"
        );
        assert_eq!(
            enc(key(b"p:", b"foo", false), 4_294_967_295, plain),
            b"mg p:foo v f q O4294967295\r\n"
        );
        let gets = MgMany {
            cas: true,
            touch: None,
        };
        assert_eq!(
            enc(key(b"", b"k", false), 12, gets),
            b"mg k v f c q O12\r\n"
        );
        let gats = MgMany {
            cas: true,
            touch: Some(30),
        };
        assert_eq!(
            enc(key(b"p:", b"\x00\xff", true), 7, gats),
            b"mg cDoA/w== b v f c q T30 O7\r\n"
        );
        let gat = MgMany {
            cas: false,
            touch: Some(0),
        };
        assert_eq!(enc(key(b"", b"k", false), 1, gat), b"mg k v f q T0 O1\r\n");
    }

    /// What a stream gives: hits (tag, data, flags, cas), failures, the
    /// bytes used and whether it ended.
    type Seen = (
        Vec<(u32, Vec<u8>, u32, Option<u64>)>,
        Vec<(Range<u32>, MgLineError)>,
    );

    fn run(bytes: &[u8], n: u32, cas: bool, cuts: &[usize]) -> Result<(Seen, usize), MgError> {
        let mut s = MgStream::new(n, cas, 1 << 20);
        let mut seen: Seen = Default::default();
        let mut at = 0;
        for &end in cuts.iter().chain([&bytes.len()]) {
            let end = end.max(at);
            loop {
                let (used, done) = s.feed(
                    &bytes[at..end],
                    &mut |t, d, f, c| seen.0.push((t, d.to_vec(), f, c)),
                    &mut |r, e| seen.1.push((r, e)),
                )?;
                at += used;
                if done {
                    return Ok((seen, at));
                }
                if used == 0 {
                    break;
                }
            }
        }
        Ok((seen, at))
    }

    #[test]
    fn hits_misses_and_the_end() {
        let stream: &[u8] =
            b"VA 3 f5 O0\r\na\r\n\r\nVA 0 f4294967295 O3\r\n\r\nMN\r\nVA 1 f0 O9\r\nx\r\n";
        let end = stream.len() - 15; // MN's end: the rest belongs to later
        let (seen, used) = run(stream, 4, false, &[]).unwrap();
        assert_eq!(used, end);
        assert_eq!(
            seen.0,
            vec![
                (0, b"a\r\n".to_vec(), 5, None),
                (3, Vec::new(), u32::MAX, None)
            ]
        );
        assert!(seen.1.is_empty());
        // the same at every split, and in byte-sized reads
        for cut in 0..stream.len() {
            assert_eq!(run(stream, 4, false, &[cut]).unwrap(), (seen.clone(), end));
        }
        let bytewise: Vec<usize> = (0..stream.len()).collect();
        assert_eq!(run(stream, 4, false, &bytewise).unwrap(), (seen, end));
        // gets: the cas comes along
        let (seen, _) = run(b"VA 2 f1 c99 O1\r\nhi\r\nMN\r\n", 2, true, &[]).unwrap();
        assert_eq!(seen.0, vec![(1, b"hi".to_vec(), 1, Some(99))]);
    }

    #[test]
    fn other_shapes_go_the_generic_way() {
        // flags in another order, an unknown flag, EN despite quiet, a cas
        // when none was asked: all read by parse_meta, the same way
        let stream: &[u8] = b"VA 2 O0 f7 t-1\r\nhi\r\nEN O1\r\nVA 1 c5 f2 O2\r\nx\r\nMN\r\n";
        let (seen, used) = run(stream, 3, false, &[]).unwrap();
        assert_eq!(used, stream.len());
        assert_eq!(
            seen.0,
            vec![(0, b"hi".to_vec(), 7, None), (2, b"x".to_vec(), 2, Some(5))]
        );
        // the fast parser agrees with the generic one where it answers
        for (bytes, cas) in [
            (&b"VA 2 f7 O0\r\nhi\r\n"[..], false),
            (b"VA 2 f7 c9999999999999999999 O12\r\nhi\r\n", true),
        ] {
            let (tag, flags, c, data, used) = parse_mg_hit(bytes, cas).unwrap();
            let (MetaResponse::Reply(r), n) = parse_meta_generic(bytes).unwrap().unwrap() else {
                panic!("a reply");
            };
            assert_eq!(
                (Some(tag), Some(flags), c, Some(data), used),
                (r.opaque_u32(), r.flags, r.cas, r.data, n)
            );
        }
        for not_fast in [
            &b"VA 2 f7 O0\r\nhi\r"[..],
            b"VA 2 f7 O0 \r\nhi\r\n",
            b"VA 2 f4294967296 O0\r\nhi\r\n",
            b"VA 1234567890 f0 O0\r\n",
            b"VA 2 f7 O1234567890\r\nhi\r\n",
            b"VA 2 f7 c1 O0\r\nhi\r\n",
            b"VA 2 f O0\r\nhi\r\n",
            b"VA 2 f99999999999999999999999 O0\r\nhi\r\n",
        ] {
            assert_eq!(parse_mg_hit(not_fast, false), None, "{not_fast:?}");
        }
        assert_eq!(parse_mg_hit(b"VA 2 f7 O0\r\nhi\r\n", true), None);
        // a 20-digit cas is the generic parser's
        let long_cas = b"VA 2 f7 c18446744073709551615 O1\r\nhi\r\n";
        assert_eq!(parse_mg_hit(long_cas, true), None);
        let mut s = MgStream::new(2, true, 10);
        let mut got = None;
        s.feed(
            long_cas,
            &mut |t, _, _, c| got = Some((t, c)),
            &mut |_, _| {},
        )
        .unwrap();
        assert_eq!(got, Some((1, Some(u64::MAX))));
    }

    #[test]
    fn error_lines_fail_the_keys_they_may_belong_to() {
        // between O0 and O2: exactly key 1
        let (seen, _) = run(
            b"VA 1 f0 O0\r\na\r\nCLIENT_ERROR bad command line format\r\nVA 1 f0 O2\r\nb\r\nMN\r\n",
            3,
            false,
            &[],
        )
        .unwrap();
        assert_eq!(seen.0.len(), 2);
        assert_eq!(
            seen.1,
            vec![(
                1..2,
                MgLineError::Client(b"bad command line format".to_vec())
            )]
        );
        // after the last hit: any key up to the end; two lines, one failure
        let (seen, _) = run(
            b"VA 1 f0 O0\r\na\r\nSERVER_ERROR out of memory\r\nERROR\r\nMN\r\n",
            4,
            false,
            &[],
        )
        .unwrap();
        assert_eq!(
            seen.1,
            vec![(1..4, MgLineError::Server(b"out of memory".to_vec()))]
        );
        let (seen, _) = run(b"ERROR\r\nEN O1\r\nMN\r\n", 2, false, &[]).unwrap();
        assert_eq!(seen.1, vec![(0..1, MgLineError::Unknown)]);
        // a server without meta: every line, mn too, answered ERROR; the
        // chunk ends there (no MN will come), later bytes are not used
        let all = b"ERROR\r\nERROR\r\nERROR\r\nEND\r\n";
        for cut in 0..all.len() {
            let (seen, used) = run(all, 2, false, &[cut]).unwrap();
            assert_eq!(used, 21);
            assert_eq!(seen.1, vec![(0..2, MgLineError::Unknown)]);
        }
        // n + 1 answers with hits among them: the last was mn's
        let (seen, used) = run(b"VA 1 f0 O0\r\na\r\nERROR\r\nERROR\r\n", 2, false, &[]).unwrap();
        assert_eq!(
            (seen.0.len(), &seen.1[..], used),
            (1, &[(1..2, MgLineError::Unknown)][..], 29)
        );
        let (seen, used) = run(
            b"VA 1 f0 O0\r\na\r\nVA 1 f0 O1\r\nb\r\nERROR\r\n",
            2,
            false,
            &[],
        )
        .unwrap();
        assert_eq!((seen.0.len(), seen.1.len(), used), (2, 0, 37));
    }

    #[test]
    fn out_of_step_is_an_error() {
        for bad in [
            &b"VA 1 f0 O2\r\na\r\n"[..],               // tag past the chunk
            b"VA 1 f0 O1\r\na\r\nVA 1 f0 O1\r\nb\r\n", // a tag twice
            b"VA 1 f0 O1\r\na\r\nVA 1 f0 O0\r\nb\r\n", // going back
            b"VA 1 f0\r\na\r\n",                       // no tag
            b"VA 1 f0 Ox\r\na\r\n",                    // not a number
            b"VA 1 O0\r\na\r\n",                       // no flags
            b"HD O0\r\n",
            b"END\r\n",
            b"VALUE k 0 1\r\na\r\n",
            b"VA 1 f0 O0\r\nab\r\n",
            b"ERROR\r\nEN O0\r\n",                 // an error for no key
            b"VA 1 f0 O1\r\na\r\nERROR\r\nMN\r\n", // the same at the end
        ] {
            assert!(
                matches!(run(bad, 2, false, &[]), Err(MgError::Protocol(_))),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert!(matches!(
            run(b"VA 1 f0 O0\r\na\r\n", 2, true, &[]),
            Err(MgError::Protocol(_))
        ));
        let mut s = MgStream::new(2, false, 3);
        let r = s.feed(b"VA 4 f0 O0\r\n", &mut |_, _, _, _| {}, &mut |_, _| {});
        assert_eq!(r, Err(MgError::TooLarge(4)));
        let mut s = MgStream::new(2, false, 3);
        let r = s.feed(
            b"VA 4 f0 O0\r\nabcd\r\n",
            &mut |_, _, _, _| {},
            &mut |_, _| {},
        );
        assert_eq!(r, Err(MgError::TooLarge(4)));
    }
}
