//! A fast distribution for clusters that share no keys with other clients.
//!
//! It is rendezvous hashing again (highest score wins), but the key is hashed
//! once with xxh3-64 and each node's score is a cheap 64-bit mix of that hash
//! with a per-node seed (xxh3-64 of the node id). A lookup therefore costs one
//! xxh3 over the key plus a few multiplies per node, instead of a murmur3 over
//! the key per node (rendezvous) or an MD5 and a binary search (ketama).
//! Weights are ignored, as in pymemcache's rendezvous.
//!
//! Every mcrs client of one cluster (Rust, C, Go, Node) must agree on this
//! function, so it is frozen: the unit test below pins placements, and any
//! change to the seed derivation or [`mix`] is a breaking change.
//!
//! Why rendezvous and not jump consistent hashing: jump hash is cheaper, but it
//! only moves the minimum number of keys when the *last* bucket goes away.
//! Taking out a node in the middle renumbers every node after it and reshuffles
//! their keys. With highest-score selection, removing a node only moves the
//! keys it owned (every other key's winner is still present and still has the
//! highest score), and adding one only takes keys onto the new node. Scores
//! depend on the node id, not its position, so the order nodes are listed in
//! does not matter either.

use twox_hash::XxHash3_64;

use super::{NodeSpec, Top};

#[derive(Clone)]
pub(crate) struct Xxh3 {
    seeds: Box<[u64]>,
    /// Only read to break exact (64-bit) score ties deterministically.
    ids: Box<[String]>,
}

/// The murmur3 64-bit finalizer: a bijection with full avalanche, so scores
/// for the same key hash under different seeds behave as independent draws.
#[inline(always)]
fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

impl Xxh3 {
    pub(crate) fn new(nodes: &[NodeSpec]) -> Self {
        let seeds = nodes
            .iter()
            .map(|n| XxHash3_64::oneshot(n.id.as_bytes()))
            .collect();
        let ids = nodes.iter().map(|n| n.id.clone()).collect();
        Xxh3 { seeds, ids }
    }

    /// Index of the node that owns `key`. `self` must hold at least one node.
    #[inline]
    pub(crate) fn pick(&self, key: &[u8]) -> usize {
        let h = XxHash3_64::oneshot(key);
        let mut top = Top::new(&self.ids);
        for (i, &seed) in self.seeds.iter().enumerate() {
            top.offer(mix(h ^ seed), i);
        }
        top.winner
    }
}

#[cfg(test)]
mod tests {
    use super::super::NodeSpec;
    use super::{mix, Xxh3};
    use twox_hash::XxHash3_64;

    const GOLDEN: [usize; 16] = [2, 2, 4, 1, 3, 0, 3, 2, 2, 0, 2, 2, 0, 4, 4, 3];

    /// Golden placements: fail loudly if the function ever changes.
    #[test]
    fn placements_are_frozen() {
        let nodes: Vec<NodeSpec> = (0..5)
            .map(|i| NodeSpec::tcp("127.0.0.1", 11211 + i, 1))
            .collect();
        let x = Xxh3::new(&nodes);
        let got: Vec<usize> = (0..16)
            .map(|i| x.pick(format!("key:{i}").as_bytes()))
            .collect();
        assert_eq!(got, GOLDEN);
        // And one raw score, which pins the seed derivation and mixer exactly.
        let seed = XxHash3_64::oneshot(b"127.0.0.1:11211");
        assert_eq!(
            mix(XxHash3_64::oneshot(b"foo") ^ seed),
            0x4744_6b56_0f00_7f94
        );
    }
}
