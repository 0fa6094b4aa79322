//! Rendezvous (highest random weight) hashing, bit-exact with pymemcache's
//! `HashClient` + `RendezvousHash`.
//!
//! pymemcache scores a node as `murmur3_32(f"{node}-{key}", 0)` and keeps the
//! highest score; on a tie it keeps `max(str(node), str(winner))`, i.e. the
//! larger node id. Its murmur3 runs on a Python `str`: every unit is one code
//! point, reduced to its low byte (`ord(c) & 0xFF`; the one unmasked load,
//! `ord(c) << 24`, only spills into bits that the final 32-bit mask drops).
//! So for a non-ASCII key the hashed bytes are *not* its UTF-8 encoding; see
//! [`Rendezvous::pick`] for how byte keys are mapped onto that model.
//!
//! The node prefix `"{node}-"` is hashed once at construction, leaving a
//! 16-byte murmur state per node; a lookup continues those states with the
//! key's bytes, several nodes side by side, so no string is ever concatenated
//! and nothing is allocated.

use super::murmur3::{finalize, fold, pack, scrambled_block, Murmur3};
use super::{NodeSpec, Top};

/// pymemcache hashes keys as `str`; a key this many code points long or shorter
/// is converted once into a stack buffer instead of being decoded per node.
const UNIT_BUF: usize = 256;

/// Nodes scored side by side in one pass over the key (see [`Rendezvous::best`]).
const BATCH: usize = 16;

#[derive(Clone)]
pub(crate) struct Rendezvous {
    /// Murmur3 state after `"{id}-"` and the node's index, grouped by the
    /// state's alignment (prefix length mod 4; stable within a group) so one
    /// digest of the key serves a whole group.
    entries: Box<[(Murmur3, usize)]>,
    /// `entries[group_ends[a - 1]..group_ends[a]]` have alignment `a`.
    group_ends: [usize; 4],
    /// Node ids by node index, only read to break exact score ties.
    ids: Box<[String]>,
}

/// The low byte of a code point: what pymemcache's murmur3 actually mixes.
#[inline]
fn unit(c: char) -> u8 {
    (u32::from(c) & 0xff) as u8
}

impl Rendezvous {
    pub(crate) fn new(nodes: &[NodeSpec]) -> Self {
        let mut entries: Vec<(Murmur3, usize)> = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let mut h = Murmur3::new(0);
                for c in n.id.chars() {
                    h.write_u8(unit(c));
                }
                h.write_u8(b'-');
                (h, i)
            })
            .collect();
        entries.sort_by_key(|&(h, i)| (h.tail_len(), i));
        let mut group_ends = [0; 4];
        for (a, end) in group_ends.iter_mut().enumerate() {
            *end = entries.partition_point(|(h, _)| h.tail_len() as usize <= a);
        }
        let ids = nodes.iter().map(|n| n.id.clone()).collect();
        Rendezvous {
            entries: entries.into_boxed_slice(),
            group_ends,
            ids,
        }
    }

    /// Index of the node that owns `key`. `self` must hold at least one node.
    ///
    /// Keys are bytes here but `str` in pymemcache. ASCII keys hash as they
    /// are. Valid UTF-8 is decoded and hashed per code point, so a C or Go
    /// caller that sends the UTF-8 of a key lands on the same server as a
    /// Python caller using that `str` key with `allow_unicode_keys`. Bytes that
    /// are not UTF-8 (no Python `str` produces them) hash one unit per byte,
    /// as if decoded as Latin-1: deterministic, and the same as the ASCII path.
    /// (A Python caller passing a *bytes* key gets `f"{node}-{b'..'!r}"` hashed
    /// by pymemcache, a quirk we deliberately do not reproduce.)
    pub(crate) fn pick(&self, key: &[u8]) -> usize {
        if key.is_ascii() {
            return self.best(key);
        }
        let Ok(s) = core::str::from_utf8(key) else {
            return self.best(key);
        };
        let mut buf = [0u8; UNIT_BUF];
        let mut n = 0;
        for c in s.chars() {
            if n == UNIT_BUF {
                // Longer than any valid memcached key: decode per node instead.
                return self.best_by(|h| s.chars().for_each(|c| h.write_u8(unit(c))));
            }
            buf[n] = unit(c);
            n += 1;
        }
        self.best(&buf[..n])
    }

    /// [`Rendezvous::best_by`] for a key given as its hashed units.
    ///
    /// Scoring node by node is bound by the latency of murmur3's serial block
    /// chain. Here nodes whose prefixes share an alignment (length mod 4) see
    /// the key's blocks at the same offsets, so the key is walked once per
    /// group: each block is loaded and scrambled once, then folded into up to
    /// [`BATCH`] independent node states, which the CPU (or the vectoriser)
    /// runs in parallel.
    #[inline]
    fn best(&self, units: &[u8]) -> usize {
        let mut top = Top::new(&self.ids);
        let mut start = 0;
        for (align, &end) in self.group_ends.iter().enumerate() {
            let group = &self.entries[start..end];
            start = end;
            if group.is_empty() {
                continue;
            }
            // Bytes that complete the prefixes' partial block.
            let need = (4 - align) % 4;
            if units.len() < need {
                for &(mut h, i) in group {
                    h.write(units);
                    top.offer(h.finish(), i);
                }
                continue;
            }
            let head = pack(&units[..need], align as u32);
            let body = units[need..].chunks_exact(4);
            let tail = pack(body.remainder(), 0);
            // Truncation intended: murmur3 mixes the length mod 2^32.
            let key_len = units.len() as u32;
            for batch in group.chunks(BATCH) {
                let mut hs = [0u32; BATCH];
                let hs = &mut hs[..batch.len()];
                for (h, (state, _)) in hs.iter_mut().zip(batch) {
                    *h = state.h1_with_head(head);
                }
                for block in body.clone() {
                    let k = scrambled_block(block);
                    for h in hs.iter_mut() {
                        *h = fold(*h, k);
                    }
                }
                for (&h, &(state, i)) in hs.iter().zip(batch) {
                    let len = state.written().wrapping_add(key_len);
                    top.offer(finalize(h, tail, len), i);
                }
            }
        }
        top.winner
    }

    /// The general path: `feed` writes the key into a copy of each prefix.
    fn best_by(&self, feed: impl Fn(&mut Murmur3)) -> usize {
        let mut top = Top::new(&self.ids);
        for &(mut h, i) in self.entries.iter() {
            feed(&mut h);
            top.offer(h.finish(), i);
        }
        top.winner
    }
}

#[cfg(test)]
mod tests {
    use super::super::{murmur3_32, NodeSpec};
    use super::Rendezvous;

    fn nodes(ids: &[&str]) -> Vec<NodeSpec> {
        ids.iter()
            .map(|id| NodeSpec {
                id: (*id).to_string(),
                host: (*id).to_string(),
                port: 0,
                weight: 1,
            })
            .collect()
    }

    #[test]
    fn design_vectors() {
        let ids = ["127.0.0.1:11211", "127.0.0.1:11212", "127.0.0.1:11213"];
        let r = Rendezvous::new(&nodes(&ids));
        assert_eq!(ids[r.pick(b"foo")], "127.0.0.1:11213");
        assert_eq!(ids[r.pick(b"bar")], "127.0.0.1:11211");
        assert_eq!(ids[r.pick(b"baz")], "127.0.0.1:11212");
    }

    #[test]
    fn score_is_murmur_of_node_dash_key() {
        let ids = ["n1", "some-longer-node:1", "x"];
        let r = Rendezvous::new(&nodes(&ids));
        for key in ["", "k", "ke", "key", "key1", "a-much-longer-key-0123456789"] {
            let want = (0..ids.len())
                .max_by_key(|&i| {
                    let s = format!("{}-{}", ids[i], key);
                    (murmur3_32(s.as_bytes(), 0), ids[i])
                })
                .unwrap();
            assert_eq!(r.pick(key.as_bytes()), want, "key {key:?}");
        }
    }

    #[test]
    fn unicode_keys_hash_code_point_low_bytes() {
        // "é" is U+00E9: pymemcache hashes the single unit 0xE9, not C3 A9.
        // "€" is U+20AC: the unit is 0xAC.
        let ids = ["a:1", "b:2", "c:3", "d:4", "e:5"];
        let r = Rendezvous::new(&nodes(&ids));
        for (utf8, latin) in [
            ("caf\u{e9}", &b"caf\xe9"[..]),
            ("\u{20ac}100", &b"\xac100"[..]),
            ("\u{1f600}x", &b"\x00x"[..]),
        ] {
            // The Latin-1 view of `latin` is exactly those units.
            assert_eq!(r.pick(utf8.as_bytes()), r.pick(latin), "{utf8:?}");
        }
        // Longer than the unit buffer: decoded per node, same answer.
        for n in [255, 256, 257, 300] {
            let utf8 = "\u{e9}".repeat(n);
            assert_eq!(r.pick(utf8.as_bytes()), r.pick(&vec![0xe9; n]), "{n}");
        }
    }

    #[test]
    fn ties_go_to_the_larger_id() {
        // Duplicate ids score identically for every key: the first one wins.
        let ns = nodes(&["same", "other", "same"]);
        let r = Rendezvous::new(&ns);
        for k in [&b"k"[..], b"key", b"\xff"] {
            assert_ne!(r.pick(k), 2);
        }
        // Forge a tie between different ids with equal prefix states.
        let ns = nodes(&["samf", "same"]);
        let mut r = Rendezvous::new(&ns);
        let e0 = r.entries[0].0;
        r.entries[1].0 = e0;
        let id_of = |r: &Rendezvous, k: &[u8]| r.ids[r.pick(k)].clone();
        assert_eq!(id_of(&r, b"k"), "samf");
        assert_eq!(id_of(&r, b"longer key here"), "samf");
        r.ids.swap(0, 1);
        assert_eq!(id_of(&r, b"k"), "samf");
    }

    #[test]
    fn grouped_digest_matches_plain_scoring() {
        // Ids of every length mod 4 and keys of 0 to 300 bytes: the batched
        // path must agree with one plain murmur per node.
        let ids = [
            "a",
            "ab",
            "abc",
            "abcd",
            "10.0.0.1:11211",
            "x:1",
            "::1:11211",
        ];
        let r = Rendezvous::new(&nodes(&ids));
        for len in 0..300 {
            let key: Vec<u8> = (0..len).map(|i| b'!' + (i * 7 % 90) as u8).collect();
            let want = (0..ids.len())
                .max_by_key(|&i| {
                    let mut s = format!("{}-", ids[i]).into_bytes();
                    s.extend_from_slice(&key);
                    (murmur3_32(&s, 0), ids[i])
                })
                .unwrap();
            assert_eq!(r.pick(&key), want, "len {len}");
        }
    }
}
