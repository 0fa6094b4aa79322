//! Per-server counters for operators: commands, hits, misses, failures by
//! kind, connects, ejections, rejoins. Relaxed atomics bumped on paths that
//! already know the server, read as a snapshot of (name, value) pairs.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::Error;

/// The counters of one server, shared by the blocking client, its pool and
/// every event loop of the client.
#[derive(Debug, Default)]
pub struct Counters {
    /// commands sent (a multi-key command's share of this server counts once)
    commands: AtomicU64,
    hits: AtomicU64,
    misses: AtomicU64,
    /// failures, one per event (a timeout that fails a whole pipeline is one)
    timeouts: AtomicU64,
    connect_failures: AtomicU64,
    /// closed by the server, reset, or another socket error mid-request
    closed: AtomicU64,
    /// replies that were not the memcached protocol (garbage, oversized)
    protocol_errors: AtomicU64,
    /// requests refused at once because the server was failing
    skipped: AtomicU64,
    /// connections opened by event loops (the pool counts its own)
    connects: AtomicU64,
    /// times the server left the ring (dead)
    ejections: AtomicU64,
    /// times it came back after a successful probe
    rejoins: AtomicU64,
}

fn bump(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

impl Counters {
    #[inline]
    pub fn command(&self) {
        bump(&self.commands, 1);
    }
    /// One key read: a hit or a miss.
    #[inline]
    pub fn read(&self, hit: bool) {
        bump(if hit { &self.hits } else { &self.misses }, 1);
    }
    #[inline]
    pub fn hits(&self, n: u64) {
        bump(&self.hits, n);
    }
    #[inline]
    pub fn misses(&self, n: u64) {
        bump(&self.misses, n);
    }
    pub fn connected(&self) {
        bump(&self.connects, 1);
    }
    pub fn skipped(&self) {
        bump(&self.skipped, 1);
    }
    pub fn ejected(&self) {
        bump(&self.ejections, 1);
    }
    pub fn rejoined(&self) {
        bump(&self.rejoins, 1);
    }

    /// Counts a server failure by its kind (other errors are not the
    /// server's: invalid keys, error replies, caller timeouts waiting for a
    /// pooled connection are counted as timeouts too).
    pub fn failure(&self, e: &Error) {
        let c = match e {
            Error::Timeout(_) => &self.timeouts,
            Error::ConnectFailed { .. } | Error::Tls(_) | Error::AuthFailed(_) => {
                &self.connect_failures
            }
            Error::UnexpectedClose | Error::Io(_) => &self.closed,
            Error::Protocol(_) | Error::ValueTooLarge(_) => &self.protocol_errors,
            _ => return,
        };
        bump(c, 1);
    }

    /// The counters as (name, value) pairs, in a fixed order;
    /// `pool_connects` are the connections the blocking pool opened.
    pub fn snapshot(&self, pool_connects: u64) -> Vec<(&'static str, u64)> {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let connects = g(&self.connects) + pool_connects;
        vec![
            ("commands", g(&self.commands)),
            ("hits", g(&self.hits)),
            ("misses", g(&self.misses)),
            ("timeouts", g(&self.timeouts)),
            ("connect_failures", g(&self.connect_failures)),
            ("closed", g(&self.closed)),
            ("protocol_errors", g(&self.protocol_errors)),
            ("skipped", g(&self.skipped)),
            ("connects", connects),
            ("reconnects", connects.saturating_sub(1)),
            ("ejections", g(&self.ejections)),
            ("rejoins", g(&self.rejoins)),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_counted_by_kind() {
        let c = Counters::default();
        c.failure(&Error::Timeout(5));
        c.failure(&Error::UnexpectedClose);
        c.failure(&Error::Protocol("x".into()));
        c.failure(&Error::InvalidKey("k".into())); // not the server's
        c.command();
        c.hits(3);
        c.connected();
        c.read(false);
        let s: std::collections::HashMap<_, _> = c.snapshot(1).into_iter().collect();
        assert_eq!(s["timeouts"], 1);
        assert_eq!(s["closed"], 1);
        assert_eq!(s["protocol_errors"], 1);
        assert_eq!(s["connect_failures"], 0);
        assert_eq!(s["commands"], 1);
        assert_eq!(s["hits"], 3);
        assert_eq!(s["misses"], 1);
        assert_eq!(s["reconnects"], 1);
    }
}
