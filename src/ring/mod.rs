//! Pure key -> server selection.
//!
//! This layer knows nothing about sockets, clocks or server health: the cluster
//! layer builds a [`Ring`] from the servers it currently considers live and
//! rebuilds it when that set changes. Building may allocate; [`Ring::pick`]
//! does not (keys are hashed from the caller's slice and stack buffers only),
//! because it runs once per key of every command.
//!
//! Two distributions exist to be bit-exact with other clients sharing the same
//! servers (see DESIGN.md, "Distributions"), one to be fast:
//!
//! - [`Distribution::Rendezvous`]: pymemcache's `HashClient` (the default).
//! - [`Distribution::Ketama`]: libmemcached's weighted ketama, as pylibmc and
//!   php-memcached use it.
//! - [`Distribution::Xxh3`]: rendezvous over xxh3, for mcrs-only clusters.
//!
//! `tests/ring_fixtures.rs` checks the first two against placements recorded
//! from the real peers by `tools/gen_ring_fixtures.py`.

mod ketama;
mod md5;
mod murmur3;
mod rendezvous;
mod xxh3;

use core::fmt;

pub use murmur3::murmur3_32;

/// How keys are spread over servers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Distribution {
    /// pymemcache `HashClient` compatible rendezvous hashing (murmur3).
    #[default]
    Rendezvous,
    /// libmemcached / pylibmc weighted ketama (MD5 continuum). The only
    /// distribution that honours [`NodeSpec::weight`].
    Ketama,
    /// Rendezvous hashing over xxh3; compatible with no other client, faster
    /// than the two above, and just as stable when a node leaves.
    Xxh3,
}

/// One server as the distributions see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeSpec {
    /// pymemcache's node id: `"{host}:{port}"` with the host as configured and
    /// no brackets (so `("::1", 11211)` is `"::1:11211"`, exactly what
    /// pymemcache's `"%s:%s" % (host, port)` yields), or the bare unix socket
    /// path (without any `unix:` prefix). Used by rendezvous and xxh3.
    pub id: String,
    /// Host as configured (no brackets), or the unix socket path; used by
    /// ketama, whose point strings are built from host and port.
    pub host: String,
    /// TCP port, 0 for unix sockets.
    pub port: u16,
    /// Ketama weight (>= 1; 0 is treated as 1, as libmemcached does); ignored
    /// by rendezvous and xxh3.
    pub weight: u32,
}

impl NodeSpec {
    /// A TCP server, with the id pymemcache would give `(host, port)`.
    /// `host` is taken without IPv6 brackets.
    pub fn tcp(host: &str, port: u16, weight: u32) -> NodeSpec {
        NodeSpec {
            id: format!("{host}:{port}"),
            host: host.to_string(),
            port,
            weight,
        }
    }

    /// A unix socket server: pymemcache's id is the path itself, and ketama
    /// hashes `"{path}:0-{i}"`.
    pub fn unix(path: &str, weight: u32) -> NodeSpec {
        NodeSpec {
            id: path.to_string(),
            host: path.to_string(),
            port: 0,
            weight,
        }
    }
}

#[derive(Clone)]
enum Inner {
    Empty,
    /// With one server there is nothing to choose; skips hashing entirely.
    Single,
    Rendezvous(rendezvous::Rendezvous),
    Ketama(ketama::Ketama),
    Xxh3(xxh3::Xxh3),
}

/// An immutable placement table for one set of live servers.
#[derive(Clone)]
pub struct Ring {
    dist: Distribution,
    len: usize,
    inner: Inner,
}

impl Ring {
    /// Builds the ring for `nodes`, the live servers. Indices returned by
    /// [`Ring::pick`] index into this slice.
    ///
    /// Leaving a dead server out matches pymemcache (`remove_node`) and
    /// libmemcached with `auto_eject_hosts` (it rebuilds the continuum from the
    /// servers not in retry, re-sharing the weights among them). Order matters
    /// for ketama only when two points collide exactly: the lower index wins,
    /// as in libmemcached, so keep the configured order.
    pub fn new(dist: Distribution, nodes: &[NodeSpec]) -> Ring {
        let inner = match (nodes.len(), dist) {
            (0, _) => Inner::Empty,
            (1, _) => Inner::Single,
            (_, Distribution::Rendezvous) => Inner::Rendezvous(rendezvous::Rendezvous::new(nodes)),
            (_, Distribution::Ketama) => Inner::Ketama(ketama::Ketama::new(nodes)),
            (_, Distribution::Xxh3) => Inner::Xxh3(xxh3::Xxh3::new(nodes)),
        };
        Ring {
            dist,
            len: nodes.len(),
            inner,
        }
    }

    /// The index of the server owning `key` (the caller's key, before any key
    /// prefix is applied), or `None` when there are no nodes.
    #[inline]
    pub fn pick(&self, key: &[u8]) -> Option<usize> {
        match &self.inner {
            Inner::Empty => None,
            Inner::Single => Some(0),
            Inner::Rendezvous(r) => Some(r.pick(key)),
            Inner::Ketama(k) => k.pick(key),
            Inner::Xxh3(x) => Some(x.pick(key)),
        }
    }

    /// Number of nodes the ring was built from.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the ring has no nodes and [`Ring::pick`] returns `None`.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The distribution this ring implements.
    pub fn distribution(&self) -> Distribution {
        self.dist
    }
}

impl fmt::Debug for Ring {
    /// Summarised on purpose: a ketama continuum has 160 points per server.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ring")
            .field("distribution", &self.dist)
            .field("len", &self.len)
            .finish()
    }
}

/// Running winner of a highest-score-wins scan (rendezvous and xxh3).
///
/// The highest score wins; an exact tie goes to the larger node id
/// (pymemcache's `max(str(node), str(winner))`), and between duplicate ids to
/// the lower index. Ties are rare enough to live on a cold path, so the common
/// step is a compare and two conditional moves rather than an unpredictable
/// branch per node.
struct Top<'a, S> {
    ids: &'a [String],
    score: S,
    /// `usize::MAX` until the first offer.
    winner: usize,
}

impl<'a, S: Copy + Ord + Default> Top<'a, S> {
    #[inline]
    fn new(ids: &'a [String]) -> Self {
        Top {
            ids,
            score: S::default(),
            winner: usize::MAX,
        }
    }

    #[inline(always)]
    fn offer(&mut self, score: S, i: usize) {
        if score == self.score {
            self.tie(i);
        }
        let better = score > self.score;
        self.winner = if better { i } else { self.winner };
        self.score = if better { score } else { self.score };
    }

    #[cold]
    #[inline(never)]
    fn tie(&mut self, i: usize) {
        let take = match self.ids.get(self.winner) {
            None => true,
            Some(w) => match self.ids[i].cmp(w) {
                core::cmp::Ordering::Greater => true,
                core::cmp::Ordering::Equal => i < self.winner,
                core::cmp::Ordering::Less => false,
            },
        };
        if take {
            self.winner = i;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Distribution; 3] = [
        Distribution::Rendezvous,
        Distribution::Ketama,
        Distribution::Xxh3,
    ];

    fn cluster(n: u16) -> Vec<NodeSpec> {
        (0..n)
            .map(|i| NodeSpec::tcp("127.0.0.1", 11211 + i, 1))
            .collect()
    }

    fn keys(n: usize) -> impl Iterator<Item = Vec<u8>> {
        (0..n).map(|i| format!("user:{i}:profile").into_bytes())
    }

    #[test]
    fn empty_ring_picks_nothing() {
        for d in ALL {
            let r = Ring::new(d, &[]);
            assert!(r.is_empty());
            assert_eq!(r.len(), 0);
            assert_eq!(r.pick(b"key"), None);
        }
    }

    #[test]
    fn one_node_gets_every_key() {
        for d in ALL {
            let r = Ring::new(d, &cluster(1));
            assert_eq!(r.len(), 1);
            assert!(keys(100).all(|k| r.pick(&k) == Some(0)));
            assert_eq!(r.pick(b""), Some(0));
        }
    }

    #[test]
    fn default_is_rendezvous() {
        assert_eq!(Distribution::default(), Distribution::Rendezvous);
    }

    #[test]
    fn node_ids_match_pymemcache() {
        assert_eq!(NodeSpec::tcp("::1", 11211, 1).id, "::1:11211");
        assert_eq!(NodeSpec::tcp("localhost", 11212, 1).id, "localhost:11212");
        let u = NodeSpec::unix("/tmp/mc.sock", 1);
        assert_eq!((u.id.as_str(), u.port), ("/tmp/mc.sock", 0));
    }

    #[test]
    fn design_rendezvous_vectors() {
        let r = Ring::new(Distribution::Rendezvous, &cluster(3));
        assert_eq!(r.pick(b"foo"), Some(2));
        assert_eq!(r.pick(b"bar"), Some(0));
        assert_eq!(r.pick(b"baz"), Some(1));
    }

    #[test]
    fn every_distribution_spreads_keys_evenly() {
        let n = 30_000;
        for d in ALL {
            for size in [2u16, 3, 5, 10] {
                let r = Ring::new(d, &cluster(size));
                let mut counts = vec![0usize; usize::from(size)];
                for k in keys(n) {
                    counts[r.pick(&k).unwrap()] += 1;
                }
                let fair = n / usize::from(size);
                // Ketama with 160 points per server is the lumpiest of the three.
                let slack = if d == Distribution::Ketama {
                    0.25
                } else {
                    0.06
                };
                for &c in &counts {
                    let off = (c as f64 - fair as f64).abs() / fair as f64;
                    assert!(off < slack, "{d:?} {size} nodes: {counts:?}");
                }
            }
        }
    }

    /// Removing a node must move only that node's keys. For ketama this holds
    /// with equal weights (every other server keeps its 160 points); with
    /// unequal weights each survivor's share, hence its point count, changes.
    #[test]
    fn removing_a_node_moves_only_its_keys() {
        let full = cluster(6);
        for d in ALL {
            let before = Ring::new(d, &full);
            for gone in 0..full.len() {
                let mut rest = full.clone();
                rest.remove(gone);
                let after = Ring::new(d, &rest);
                let mut orphans = 0;
                for k in keys(6000) {
                    let b = before.pick(&k).unwrap();
                    let a = after.pick(&k).unwrap();
                    // Map the index in `rest` back to the index in `full`.
                    let a = if a >= gone { a + 1 } else { a };
                    if b == gone {
                        orphans += 1;
                    } else {
                        assert_eq!(a, b, "{d:?}: a key of node {b} moved when {gone} left");
                    }
                }
                assert!(orphans > 0, "{d:?}: node {gone} owned nothing");
            }
        }
    }

    #[test]
    fn ketama_weighted_removal_moves_a_minority() {
        let mut full = cluster(6);
        for (i, n) in full.iter_mut().enumerate() {
            n.weight = 1 + i as u32 * 3;
        }
        let before = Ring::new(Distribution::Ketama, &full);
        let mut rest = full.clone();
        rest.remove(2);
        let after = Ring::new(Distribution::Ketama, &rest);
        let moved = keys(6000)
            .filter(|k| {
                let b = before.pick(k).unwrap();
                let a = after.pick(k).unwrap();
                b != 2 && (if a >= 2 { a + 1 } else { a }) != b
            })
            .count();
        assert!(moved < 6000 / 10, "{moved} keys of surviving nodes moved");
    }

    /// Scores depend on node ids, not positions: listing the same servers in
    /// another order must not move any key (rendezvous and xxh3; ketama's
    /// tie-break on the server index makes order matter on exact collisions).
    #[test]
    fn node_order_does_not_matter_for_rendezvous_styles() {
        let a = cluster(5);
        let mut b = a.clone();
        b.reverse();
        for d in [Distribution::Rendezvous, Distribution::Xxh3] {
            let ra = Ring::new(d, &a);
            let rb = Ring::new(d, &b);
            for k in keys(3000) {
                let ia = ra.pick(&k).unwrap();
                let ib = rb.pick(&k).unwrap();
                assert_eq!(a[ia], b[ib]);
            }
        }
    }

    #[test]
    fn ring_is_send_sync_and_debug_is_short() {
        fn check<T: Send + Sync + Clone>() {}
        check::<Ring>();
        let r = Ring::new(Distribution::Ketama, &cluster(3));
        assert_eq!(format!("{r:?}"), "Ring { distribution: Ketama, len: 3 }");
    }
}
