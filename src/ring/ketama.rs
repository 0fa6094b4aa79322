//! Ketama consistent hashing, bit-exact with libmemcached's
//! `MEMCACHED_DISTRIBUTION_CONSISTENT_KETAMA` with `KETAMA_WEIGHTED` (pylibmc
//! `behaviors={"ketama_weighted": True}`, php-memcached "libketama compatible").
//!
//! Continuum: each server gets `floor(f32(w / total) * 160 / 4 * live + 1e-10)`
//! point groups, evaluated in `f32` exactly as libmemcached does so rounding
//! matches. Group `i` hashes `"{host}-{i}"` when the port is 11211 and
//! `"{host}:{port}-{i}"` otherwise (unix sockets: the path and port 0); its MD5
//! yields four points, the digest read as four little-endian `u32`s. Points are
//! sorted by (value, server index), which is how libmemcached's `qsort`
//! comparator orders colliding points.
//!
//! Lookup: the key's hash is the little-endian `u32` of `MD5(key)[0..4]`; the
//! owner is the first point `>= hash`, wrapping to the first point. That is one
//! MD5 over the key (stack only) and one binary search.

use super::md5::md5;
use super::NodeSpec;

/// libmemcached's `MEMCACHED_POINTS_PER_SERVER_KETAMA`.
const POINTS_PER_SERVER: f32 = 160.0;
/// libmemcached's `MEMCACHED_DEFAULT_PORT`, the one port left out of the
/// point-group string.
const DEFAULT_PORT: u16 = 11211;

#[derive(Clone)]
pub(crate) struct Ketama {
    /// Sorted point values; kept apart from `owners` so the binary search
    /// touches a dense `u32` array.
    points: Box<[u32]>,
    /// `owners[i]` is the node index of `points[i]`.
    owners: Box<[u32]>,
}

/// libmemcached stores weight 0 as 1 (its default), so we do too.
fn effective_weight(n: &NodeSpec) -> u32 {
    n.weight.max(1)
}

/// Number of continuum points for a node of `weight` out of `total`, with
/// `live` nodes, using libmemcached's float arithmetic step by step.
pub(crate) fn points_for(weight: u32, total: u64, live: u32) -> u32 {
    let pct = weight as f32 / total as f32;
    let groups = pct * POINTS_PER_SERVER / 4.0 * live as f32 + 0.000_000_000_1_f32;
    // libmemcached floors in double and multiplies before the cast; for the
    // values that occur (< 2^24) that equals the f32 floor times 4.
    (f64::from(groups).floor() * 4.0) as u32
}

/// The little-endian `u32` word `word` (0..4) of a digest: libmemcached's
/// `ketama_server_hash(.., alignment)` and, for word 0, its MD5 key hash.
#[inline]
fn word(d: &[u8; 16], word: usize) -> u32 {
    u32::from_le_bytes([
        d[4 * word],
        d[4 * word + 1],
        d[4 * word + 2],
        d[4 * word + 3],
    ])
}

impl Ketama {
    pub(crate) fn new(nodes: &[NodeSpec]) -> Self {
        let total: u64 = nodes.iter().map(|n| u64::from(effective_weight(n))).sum();
        let live = nodes.len() as u32;
        let mut items: Vec<(u32, u32)> = Vec::new();
        for (index, node) in nodes.iter().enumerate() {
            let groups = points_for(effective_weight(node), total, live) / 4;
            for g in 0..groups {
                let s = if node.port == DEFAULT_PORT {
                    format!("{}-{}", node.host, g)
                } else {
                    format!("{}:{}-{}", node.host, node.port, g)
                };
                let d = md5(s.as_bytes());
                for w in 0..4 {
                    items.push((word(&d, w), index as u32));
                }
            }
        }
        items.sort_unstable();
        let points = items.iter().map(|&(p, _)| p).collect();
        let owners = items.iter().map(|&(_, o)| o).collect();
        Ketama { points, owners }
    }

    /// Index of the node that owns `key`.
    ///
    /// `None` only when no node earned a point, which cannot happen for a
    /// non-empty node list: the heaviest node always gets at least 40 groups.
    #[inline]
    pub(crate) fn pick(&self, key: &[u8]) -> Option<usize> {
        let hash = word(&md5(key), 0);
        let i = self.points.partition_point(|&p| p < hash);
        let i = if i == self.points.len() { 0 } else { i };
        self.owners.get(i).map(|&o| o as usize)
    }

    #[cfg(test)]
    pub(crate) fn point_counts(&self, n: usize) -> Vec<usize> {
        let mut c = vec![0; n];
        for &o in self.owners.iter() {
            c[o as usize] += 1;
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::super::NodeSpec;
    use super::*;

    fn node(host: &str, port: u16, weight: u32) -> NodeSpec {
        NodeSpec {
            id: format!("{host}:{port}"),
            host: host.into(),
            port,
            weight,
        }
    }

    #[test]
    fn equal_weights_give_160_points_each() {
        for n in 1..=12u16 {
            let nodes: Vec<_> = (0..n).map(|i| node("10.0.0.1", 11211 + i, 1)).collect();
            let k = Ketama::new(&nodes);
            assert_eq!(k.point_counts(nodes.len()), vec![160; nodes.len()], "n={n}");
        }
    }

    #[test]
    fn weighted_point_counts_follow_libmemcached_rounding() {
        // libmemcached's own weighted test set (weights 600 .. 100, total 4300).
        let weights = [600, 300, 200, 350, 1000, 800, 950, 100];
        let total: u64 = weights.iter().map(|&w| u64::from(w)).sum();
        // floor(w / 4300 * 40 * 8) * 4, in f32.
        let want: Vec<u32> = vec![176, 88, 56, 104, 296, 236, 280, 28];
        let got: Vec<u32> = weights.iter().map(|&w| points_for(w, total, 8)).collect();
        assert_eq!(got, want);
        // Flooring loses points: the continuum is smaller than 160 * live.
        assert!(got.iter().sum::<u32>() <= 160 * 8);
        // A tiny weight next to a huge one can get no point at all.
        assert_eq!(points_for(1, 100_001, 2), 0);
        assert_eq!(points_for(100_000, 100_001, 2), 316);
    }

    #[test]
    fn weight_zero_counts_as_one() {
        let a = Ketama::new(&[node("h", 1, 0), node("h", 2, 1)]);
        let b = Ketama::new(&[node("h", 1, 1), node("h", 2, 1)]);
        assert_eq!(a.points, b.points);
        assert_eq!(a.owners, b.owners);
    }

    #[test]
    fn point_strings_omit_the_default_port() {
        // A node on 11211 hashes "host-i"; on any other port "host:port-i".
        let k = Ketama::new(&[node("10.0.1.1", 11211, 1)]);
        let d = md5(b"10.0.1.1-0");
        assert!(k.points.contains(&word(&d, 0)) && k.points.contains(&word(&d, 3)));
        let k = Ketama::new(&[node("10.0.1.1", 11212, 1)]);
        let d = md5(b"10.0.1.1:11212-39");
        assert!(k.points.contains(&word(&d, 2)));
        assert!(!k.points.contains(&word(&md5(b"10.0.1.1:11212-40"), 0)));
    }

    #[test]
    fn lookup_takes_first_point_at_or_after_hash_and_wraps() {
        let nodes = [node("a", 1, 1), node("b", 2, 1), node("c", 3, 1)];
        let k = Ketama::new(&nodes);
        for i in 0..2000u32 {
            let key = format!("key{i}");
            let h = word(&md5(key.as_bytes()), 0);
            let want = k
                .points
                .iter()
                .position(|&p| p >= h)
                .map_or(k.owners[0], |j| k.owners[j]);
            assert_eq!(k.pick(key.as_bytes()), Some(want as usize));
        }
    }
}
