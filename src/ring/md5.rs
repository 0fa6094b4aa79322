//! MD5 (RFC 1321), written from the RFC's description.
//!
//! Ketama needs MD5 only as a placement function compatible with libmemcached,
//! never for security. It is implemented here rather than pulled in as a crate
//! to keep the dependency list short, and it works on a caller's slice plus one
//! stack block, so hashing a key on the lookup path allocates nothing.

/// Per-round additive constants: floor(|sin(i + 1)| * 2^32), as the RFC defines.
const K: [u32; 64] = [
    0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, //
    0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501, //
    0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, //
    0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821, //
    0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, //
    0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8, //
    0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, //
    0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a, //
    0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c, //
    0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70, //
    0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05, //
    0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665, //
    0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, //
    0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1, //
    0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, //
    0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391, //
];

/// Left-rotation amount of each step (four per round, repeated).
const S: [u32; 64] = {
    const R: [[u32; 4]; 4] = [
        [7, 12, 17, 22],
        [5, 9, 14, 20],
        [4, 11, 16, 23],
        [6, 10, 15, 21],
    ];
    let mut s = [0; 64];
    let mut i = 0;
    while i < 64 {
        s[i] = R[i / 16][i % 4];
        i += 1;
    }
    s
};

const INIT: [u32; 4] = [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476];

/// Message word used by each of the 64 steps (round 1: i, round 2: 5i + 1,
/// round 3: 3i + 5, round 4: 7i, all mod 16).
const G: [usize; 64] = {
    let mut g = [0; 64];
    let mut i = 0;
    while i < 64 {
        g[i] = match i / 16 {
            0 => i,
            1 => (5 * i + 1) % 16,
            2 => (3 * i + 5) % 16,
            _ => (7 * i) % 16,
        };
        i += 1;
    }
    g
};

/// One step of round `$r`; the four registers rotate by renaming, so the
/// compiler sees 64 straight-line steps with constant indices.
macro_rules! step {
    ($f:expr, $a:ident, $b:ident, $c:ident, $d:ident, $m:ident, $i:expr) => {
        $a = $b.wrapping_add(
            $a.wrapping_add($f($b, $c, $d))
                .wrapping_add(K[$i])
                .wrapping_add($m[G[$i]])
                .rotate_left(S[$i]),
        );
    };
}

macro_rules! round {
    ($f:expr, $a:ident, $b:ident, $c:ident, $d:ident, $m:ident, $base:expr) => {
        step!($f, $a, $b, $c, $d, $m, $base);
        step!($f, $d, $a, $b, $c, $m, $base + 1);
        step!($f, $c, $d, $a, $b, $m, $base + 2);
        step!($f, $b, $c, $d, $a, $m, $base + 3);
        step!($f, $a, $b, $c, $d, $m, $base + 4);
        step!($f, $d, $a, $b, $c, $m, $base + 5);
        step!($f, $c, $d, $a, $b, $m, $base + 6);
        step!($f, $b, $c, $d, $a, $m, $base + 7);
        step!($f, $a, $b, $c, $d, $m, $base + 8);
        step!($f, $d, $a, $b, $c, $m, $base + 9);
        step!($f, $c, $d, $a, $b, $m, $base + 10);
        step!($f, $b, $c, $d, $a, $m, $base + 11);
        step!($f, $a, $b, $c, $d, $m, $base + 12);
        step!($f, $d, $a, $b, $c, $m, $base + 13);
        step!($f, $c, $d, $a, $b, $m, $base + 14);
        step!($f, $b, $c, $d, $a, $m, $base + 15);
    };
}

#[inline(always)]
fn f1(b: u32, c: u32, d: u32) -> u32 {
    // (b & c) | (!b & d), written as a select.
    d ^ (b & (c ^ d))
}
#[inline(always)]
fn f2(b: u32, c: u32, d: u32) -> u32 {
    // (b & d) | (c & !d)
    c ^ (d & (b ^ c))
}
#[inline(always)]
fn f3(b: u32, c: u32, d: u32) -> u32 {
    b ^ c ^ d
}
#[inline(always)]
fn f4(b: u32, c: u32, d: u32) -> u32 {
    c ^ (b | !d)
}

/// Applies the compression function to one 64-byte block.
#[inline]
fn compress(state: &mut [u32; 4], block: &[u8]) {
    debug_assert_eq!(block.len(), 64);
    let mut m = [0u32; 16];
    for (w, c) in m.iter_mut().zip(block.chunks_exact(4)) {
        *w = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
    }
    let [mut a, mut b, mut c, mut d] = *state;
    round!(f1, a, b, c, d, m, 0);
    round!(f2, a, b, c, d, m, 16);
    round!(f3, a, b, c, d, m, 32);
    round!(f4, a, b, c, d, m, 48);
    state[0] = state[0].wrapping_add(a);
    state[1] = state[1].wrapping_add(b);
    state[2] = state[2].wrapping_add(c);
    state[3] = state[3].wrapping_add(d);
}

/// The 16-byte MD5 digest of `data`.
pub(crate) fn md5(data: &[u8]) -> [u8; 16] {
    let mut state = INIT;
    let mut blocks = data.chunks_exact(64);
    for block in &mut blocks {
        compress(&mut state, block);
    }
    // Padding: 0x80, zeros, then the bit length as a little-endian u64 in the
    // last 8 bytes; that takes one more block, or two when fewer than 9 bytes
    // are free after the message tail.
    let rest = blocks.remainder();
    let mut tail = [0u8; 128];
    tail[..rest.len()].copy_from_slice(rest);
    tail[rest.len()] = 0x80;
    let total = if rest.len() < 56 { 64 } else { 128 };
    let bits = (data.len() as u64).wrapping_mul(8);
    tail[total - 8..total].copy_from_slice(&bits.to_le_bytes());
    for block in tail[..total].chunks_exact(64) {
        compress(&mut state, block);
    }
    let mut out = [0u8; 16];
    for (o, s) in out.chunks_exact_mut(4).zip(state) {
        o.copy_from_slice(&s.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::md5;

    fn hex(d: [u8; 16]) -> String {
        d.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn rfc1321_test_suite() {
        let cases: [(&str, &str); 7] = [
            ("", "d41d8cd98f00b204e9800998ecf8427e"),
            ("a", "0cc175b9c0f1b6a831c399e269772661"),
            ("abc", "900150983cd24fb0d6963f7d28e17f72"),
            ("message digest", "f96b697d7cb7938d525a2f31aaf161d0"),
            (
                "abcdefghijklmnopqrstuvwxyz",
                "c3fcd3d76192e4007dfb496cca67e13b",
            ),
            (
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
                "d174ab98d277d9f5a5611c2c9f419d9f",
            ),
            (
                "12345678901234567890123456789012345678901234567890123456789012345678901234567890",
                "57edf4a22be3c955ac49da2e2107b67a",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(hex(md5(input.as_bytes())), want, "md5({input:?})");
        }
    }

    #[test]
    fn padding_boundaries() {
        // Lengths around the 55/56/64-byte padding edges, checked with Python's
        // hashlib.md5(b"x" * n).hexdigest().
        let cases: [(usize, &str); 5] = [
            (55, "04364420e25c512fd958a70738aa8f72"),
            (56, "668a72d5ba17f08e62dabcafad6db14b"),
            (63, "7dc2ca208106a2f703567bdff99d8981"),
            (64, "c1bb4f81d892b2d57947682aeb252456"),
            (65, "1bc932052302d074bdec39795fe00cf6"),
        ];
        for (n, want) in cases {
            assert_eq!(hex(md5(&vec![b'x'; n])), want, "md5(x * {n})");
        }
    }
}
