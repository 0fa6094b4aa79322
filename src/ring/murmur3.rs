//! MurmurHash3_x86_32, written from Austin Appleby's public description of the
//! algorithm (the hash itself is in the public domain).
//!
//! The hasher is streaming so that rendezvous hashing can precompute the state
//! after `"{node}-"` once per node and then feed only the key on every lookup,
//! without building the concatenated string on the heap.

const C1: u32 = 0xcc9e_2d51;
const C2: u32 = 0x1b87_3593;

/// Scrambles one 4-byte block before it is folded into the state.
#[inline(always)]
fn scramble(k: u32) -> u32 {
    k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2)
}

/// Folds one already scrambled block into the running hash.
#[inline(always)]
pub(crate) fn fold(h: u32, scrambled: u32) -> u32 {
    (h ^ scrambled)
        .rotate_left(13)
        .wrapping_mul(5)
        .wrapping_add(0xe654_6b64)
}

/// Folds one complete block into the running hash.
#[inline(always)]
fn mix_block(h: u32, k: u32) -> u32 {
    fold(h, scramble(k))
}

/// Final avalanche, so that every input bit affects every output bit.
#[inline(always)]
fn fmix32(mut h: u32) -> u32 {
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

/// Incremental MurmurHash3_x86_32.
///
/// `Copy` on purpose: a precomputed prefix state is copied onto the stack for
/// every lookup, which costs 16 bytes and no allocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Murmur3 {
    h1: u32,
    /// Up to three pending bytes, little-endian, that do not yet form a block.
    tail: u32,
    tail_len: u32,
    /// Total input length modulo 2^32 (the algorithm only uses the low 32 bits).
    len: u32,
}

impl Murmur3 {
    pub(crate) const fn new(seed: u32) -> Self {
        Murmur3 {
            h1: seed,
            tail: 0,
            tail_len: 0,
            len: 0,
        }
    }

    /// Feeds one input unit (one byte of the hashed sequence).
    #[inline]
    pub(crate) fn write_u8(&mut self, b: u8) {
        self.len = self.len.wrapping_add(1);
        self.tail |= u32::from(b) << (8 * self.tail_len);
        self.tail_len += 1;
        if self.tail_len == 4 {
            self.h1 = mix_block(self.h1, self.tail);
            self.tail = 0;
            self.tail_len = 0;
        }
    }

    /// Feeds a run of bytes; full blocks are read straight from `data`.
    #[inline]
    pub(crate) fn write(&mut self, mut data: &[u8]) {
        // Complete a block left half-filled by an earlier write (the node prefix
        // usually leaves one), byte by byte.
        while self.tail_len != 0 {
            match data.split_first() {
                Some((&b, rest)) => {
                    self.write_u8(b);
                    data = rest;
                }
                None => return,
            }
        }
        // Truncation is intended: only the length modulo 2^32 enters the hash.
        self.len = self.len.wrapping_add(data.len() as u32);
        let mut blocks = data.chunks_exact(4);
        for b in &mut blocks {
            self.h1 = mix_block(self.h1, u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
        }
        for (i, &b) in blocks.remainder().iter().enumerate() {
            self.tail |= u32::from(b) << (8 * i);
        }
        self.tail_len = blocks.remainder().len() as u32;
    }

    /// The hash of everything written so far (the state itself is unchanged).
    #[inline]
    pub(crate) fn finish(&self) -> u32 {
        finalize(self.h1, self.tail, self.len)
    }

    /// Number of pending tail bytes (the state's length mod 4).
    #[inline]
    pub(crate) fn tail_len(&self) -> u32 {
        self.tail_len
    }

    /// Number of bytes written so far, mod 2^32.
    #[inline]
    pub(crate) fn written(&self) -> u32 {
        self.len
    }

    /// The block state after completing the pending partial block with
    /// `head`: the next `(4 - tail_len) % 4` input bytes, already shifted into
    /// place (see [`pack`]). Building block for batched scoring.
    #[inline]
    pub(crate) fn h1_with_head(&self, head: u32) -> u32 {
        if self.tail_len == 0 {
            self.h1
        } else {
            mix_block(self.h1, self.tail | head)
        }
    }
}

/// Packs up to four bytes little-endian, starting at byte position `at`.
#[inline]
pub(crate) fn pack(bytes: &[u8], at: u32) -> u32 {
    let mut v = 0;
    for (i, &b) in bytes.iter().enumerate() {
        v |= u32::from(b) << (8 * (at as usize + i));
    }
    v
}

/// One whole block, little-endian and scrambled: what [`fold`] takes.
#[inline(always)]
pub(crate) fn scrambled_block(b: &[u8]) -> u32 {
    scramble(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// The last steps of the hash: fold in the (unscrambled, packed) trailing
/// bytes and the total length, then avalanche.
#[inline(always)]
pub(crate) fn finalize(h: u32, tail: u32, len: u32) -> u32 {
    // scramble(0) == 0, so an empty tail needs no branch.
    fmix32((h ^ scramble(tail)) ^ len)
}

/// MurmurHash3_x86_32 of `data` with `seed`.
///
/// Public so that tests (and bindings) can check the primitive against other
/// implementations; rendezvous placement uses the streaming form internally.
pub fn murmur3_32(data: &[u8], seed: u32) -> u32 {
    let mut h = Murmur3::new(seed);
    h.write(data);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_vectors() {
        // Vectors from DESIGN.md (checked against pymemcache's murmur3_32).
        assert_eq!(murmur3_32(b"a", 0), 1_009_084_850);
        assert_eq!(murmur3_32(b"abc", 0), 3_017_643_002);
        // Well-known values of the reference implementation.
        assert_eq!(murmur3_32(b"", 0), 0);
        assert_eq!(murmur3_32(b"", 1), 0x514e_28b7);
        assert_eq!(murmur3_32(b"", 0xffff_ffff), 0x81f1_6f39);
        assert_eq!(murmur3_32(b"\0\0\0\0", 0), 0x2362_f9de);
        assert_eq!(murmur3_32(b"Hello, world!", 1234), 0xfaf6_cdb3);
        assert_eq!(
            murmur3_32(b"The quick brown fox jumps over the lazy dog", 0),
            0x2e4f_f723
        );
    }

    #[test]
    fn streaming_matches_oneshot_for_every_split() {
        let data: Vec<u8> = (0u8..=40).map(|i| i.wrapping_mul(37)).collect();
        for len in 0..data.len() {
            let whole = murmur3_32(&data[..len], 7);
            for split in 0..=len {
                let mut h = Murmur3::new(7);
                h.write(&data[..split]);
                let copy = h;
                h.write(&data[split..len]);
                assert_eq!(h.finish(), whole, "len {len} split {split}");
                // finish() does not consume: a copied prefix state stays reusable.
                let mut again = copy;
                for &b in &data[split..len] {
                    again.write_u8(b);
                }
                assert_eq!(again.finish(), whole);
            }
        }
    }
}
