//! The server set: which server a key goes to, and which servers are in the
//! ring right now.
//!
//! Health follows pymemcache's HashClient, with one change: a dead server
//! rejoins only after a successful probe.
//! - A server that fails (connect error, timeout, closed connection, garbage)
//!   is *failing*: it stays in the ring, but is not tried again until
//!   `retry_timeout` has passed since its last failure; meanwhile its keys get
//!   [`Error::ServerDown`] (misses with `ignore_exc`).
//! - After `retry_attempts` failed retries it is *dead*: it leaves the ring and
//!   its keys rebalance over the live servers (the stand-ins). Writes routed
//!   to a stand-in get their exptime capped at `failover_ttl`, so the copies
//!   they leave age out for every client, not only this one.
//! - `dead_timeout` after that, a background probe (`version`) runs; the server
//!   rejoins the ring only when the probe succeeds, else it stays dead for
//!   another `dead_timeout`.
//!
//! - While a server is out, the keys this client routes away from it are
//!   remembered (up to `max_tracked` per server). A stalled or partitioned
//!   server comes back holding the copies it had, older than what was written
//!   to the stand-ins meanwhile; so before it takes traffic again, exactly
//!   those keys are deleted on it (the last ones while the ring switch holds
//!   routing, so none can slip between), and the rest of the cache — other
//!   clients' keys — survives. When the tracking overflowed, the server is
//!   flushed instead (the only way left to keep stale copies from being
//!   read); `flush_on_rejoin` flushes it always.
//! - The copies left on the stand-ins would be read back stale if the key
//!   later moved to them again, so they are deleted too when the server
//!   rejoins: before the ring switches back, once more after in-flight
//!   requests are done, and again at once if the server fails before that.
//!
//! The hot path costs one atomic load per routed key and one read lock on the
//! ring; the slow paths (failures, probes) take a per-server mutex.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use crate::conn::{Conn, ConnOptions, ServerAddr};
use crate::counters::Counters;
use crate::error::{Error, Result};
use crate::pool::Pool;
use crate::protocol::{encode, Response, WireKey};
use crate::ring::{Distribution, NodeSpec, Ring};

/// One configured server.
#[derive(Clone, Debug)]
pub struct ServerSpec {
    pub addr: ServerAddr,
    pub weight: u32,
}

impl ServerSpec {
    /// The server as the ring knows it (pymemcache's node id, ketama's host
    /// and port).
    fn node(&self) -> NodeSpec {
        match &self.addr {
            ServerAddr::Tcp { host, port } => NodeSpec::tcp(host, *port, self.weight),
            ServerAddr::Unix(p) => NodeSpec::unix(&p.to_string_lossy(), self.weight),
        }
    }
}

/// Pool sizing shared by every server.
#[derive(Clone, Debug)]
pub struct PoolOptions {
    pub max_size: usize,
    pub idle_timeout: Option<Duration>,
    /// how long a refused login or TLS handshake is answered from memory
    /// before the server is tried again (retry_timeout)
    pub refused_backoff: Duration,
}

/// Failure handling of a cluster (ignored with a single server, which is
/// always tried, as pymemcache's plain Client does).
#[derive(Clone, Debug)]
pub struct HealthOptions {
    pub retry_attempts: u32,
    pub retry_timeout: Duration,
    pub dead_timeout: Duration,
    /// Flush a dead server before it rejoins, instead of deleting only the
    /// keys routed away from it while it was out.
    pub flush_on_rejoin: bool,
    /// Exptime cap (seconds) of writes routed to a stand-in; 0: no cap.
    pub failover_ttl: u32,
    /// Most keys remembered per server while it is out of the ring.
    pub max_tracked: usize,
}

/// Default of [`HealthOptions::max_tracked`].
pub const MAX_TRACKED_KEYS: usize = 100_000;

const HEALTHY: u8 = 0;
const FAILING: u8 = 1;
const DEAD: u8 = 2;

#[derive(Debug)]
struct Health {
    /// failures since the server was last healthy
    failures: u32,
    last_failure: Option<Instant>,
    /// when a dead server may next be probed
    probe_at: Option<Instant>,
    probing: bool,
}

#[derive(Default)]
struct Migrated {
    keys: HashSet<Vec<u8>>,
    /// more keys were routed away than `max_tracked`: the server must be
    /// flushed when it rejoins
    overflowed: bool,
}

pub struct Server {
    pub spec: ServerSpec,
    pub pool: Pool,
    /// what happened on this server, for operators
    pub counters: Counters,
    /// whether it speaks meta (src/meta_many.rs)
    pub meta: crate::meta_many::MetaSupport,
    /// keys (before the prefix) routed to other servers while this one was out
    migrated: Mutex<Migrated>,
    /// HEALTHY / FAILING / DEAD, readable without the lock
    state: Arc<AtomicU8>,
    health: Arc<Mutex<Health>>,
}

/// The ring over the servers that are not dead.
struct LiveRing {
    ring: Ring,
    /// ring node index -> server index
    members: Vec<usize>,
}

pub struct Cluster {
    servers: Vec<Server>,
    /// the ring over every configured server: a key's home when all are up
    full_ring: Option<Ring>,
    /// prepended to keys on the wire (for the cleanup deletes)
    key_prefix: Vec<u8>,
    /// cleanups to run again once in-flight requests are over: (home server, when)
    pending_cleanups: Mutex<Vec<(usize, Instant)>>,
    dist: Distribution,
    conn: ConnOptions,
    opts: HealthOptions,
    ring: RwLock<Arc<LiveRing>>,
    /// set when some server is dead (a probe may be due)
    any_dead: AtomicBool,
    /// set by a probe that succeeded: the ring must be rebuilt
    rejoined: Arc<AtomicBool>,
    has_pending_cleanups: AtomicBool,
}

/// Cluster health events (failures, evictions, rejoins, cleanups) go to
/// stderr when the environment has MCRS_DEBUG set: the trail to read when a
/// failover misbehaves.
fn dbg(msg: std::fmt::Arguments) {
    use std::sync::OnceLock;
    static ON: OnceLock<Option<Instant>> = OnceLock::new();
    if let Some(t0) = ON.get_or_init(|| std::env::var_os("MCRS_DEBUG").map(|_| Instant::now())) {
        eprintln!("mcrs [{:>8.3}] {msg}", t0.elapsed().as_secs_f64());
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Cluster {
    pub fn new(
        specs: &[ServerSpec],
        dist: Distribution,
        conn: &ConnOptions,
        pool: &PoolOptions,
        health: &HealthOptions,
        key_prefix: &[u8],
    ) -> Result<Cluster> {
        if specs.is_empty() {
            return Err(Error::NoServers);
        }
        let servers: Vec<Server> = specs
            .iter()
            .map(|s| Server {
                spec: s.clone(),
                pool: Pool::new(
                    s.addr.clone(),
                    conn.clone(),
                    pool.max_size,
                    pool.idle_timeout,
                )
                .with_refused_backoff(pool.refused_backoff),
                counters: Counters::default(),
                meta: Default::default(),
                migrated: Mutex::new(Migrated::default()),
                state: Arc::new(AtomicU8::new(HEALTHY)),
                health: Arc::new(Mutex::new(Health {
                    failures: 0,
                    last_failure: None,
                    probe_at: None,
                    probing: false,
                })),
            })
            .collect();
        let c = Cluster {
            ring: RwLock::new(Arc::new(LiveRing {
                ring: Ring::new(dist, &[]),
                members: Vec::new(),
            })),
            full_ring: (servers.len() > 1).then(|| {
                let nodes: Vec<NodeSpec> = servers.iter().map(|s| s.spec.node()).collect();
                Ring::new(dist, &nodes)
            }),
            key_prefix: key_prefix.to_vec(),
            pending_cleanups: Mutex::new(Vec::new()),
            servers,
            dist,
            conn: conn.clone(),
            opts: health.clone(),
            any_dead: AtomicBool::new(false),
            rejoined: Arc::new(AtomicBool::new(false)),
            has_pending_cleanups: AtomicBool::new(false),
        };
        c.rebuild_ring();
        Ok(c)
    }

    /// Socket options of every connection to the servers.
    pub(crate) fn conn_options(&self) -> &ConnOptions {
        &self.conn
    }

    /// Minimum time between tries of a failing server.
    pub(crate) fn retry_timeout(&self) -> std::time::Duration {
        self.opts.retry_timeout
    }

    pub fn servers(&self) -> &[Server] {
        &self.servers
    }

    fn is_cluster(&self) -> bool {
        self.servers.len() > 1
    }

    fn rebuild_ring(&self) {
        let live = self.build_ring();
        *self.ring.write().unwrap_or_else(|p| p.into_inner()) = live;
    }

    /// The ring over the servers that are not dead.
    fn build_ring(&self) -> Arc<LiveRing> {
        let members: Vec<usize> = (0..self.servers.len())
            .filter(|&i| self.servers[i].state.load(Ordering::Acquire) != DEAD)
            .collect();
        let nodes: Vec<NodeSpec> = members
            .iter()
            .map(|&i| self.servers[i].spec.node())
            .collect();
        Arc::new(LiveRing {
            ring: Ring::new(self.dist, &nodes),
            members,
        })
    }

    /// Index of the server that owns `key` (the caller's key, before the
    /// prefix), or `ServerDown` when that server is failing and not yet due
    /// for a retry, or `NoServers` when every server is dead.
    #[inline]
    pub fn route(&self, key: &[u8]) -> Result<usize> {
        if !self.is_cluster() {
            return Ok(0);
        }
        self.route_in_ring(key)
    }

    fn route_in_ring(&self, key: &[u8]) -> Result<usize> {
        self.maintain();
        let idx = {
            let live = self.ring.read().unwrap_or_else(|p| p.into_inner());
            let idx = match live.ring.pick(key) {
                Some(n) => live.members[n],
                None => return Err(Error::NoServers),
            };
            // noted under the read lock: once a ring switch holds the write
            // lock, every key routed by the old ring is in the set
            if self.any_dead.load(Ordering::Relaxed) {
                self.note_migration(key, idx);
            }
            idx
        };
        self.check_usable(idx)?;
        Ok(idx)
    }

    /// The exptime a write of `key` goes out with: capped at `failover_ttl`
    /// when the key is served by a stand-in because its server is out.
    #[inline]
    pub fn write_exptime(&self, key: &[u8], exptime: u32) -> u32 {
        if self.opts.failover_ttl == 0 || !self.any_dead.load(Ordering::Relaxed) {
            return exptime;
        }
        let home = self.full_ring.as_ref().and_then(|r| r.pick(key));
        let live = {
            let live = self.ring.read().unwrap_or_else(|p| p.into_inner());
            live.ring.pick(key).map(|n| live.members[n])
        };
        if home == live {
            exptime
        } else {
            cap_exptime(exptime, self.opts.failover_ttl)
        }
    }

    /// Remembers `key` when it is served by `idx` only because its home
    /// server is out of the ring.
    fn note_migration(&self, key: &[u8], idx: usize) {
        let Some(home) = self.full_ring.as_ref().and_then(|r| r.pick(key)) else {
            return;
        };
        if home == idx {
            return;
        }
        let mut m = lock(&self.servers[home].migrated);
        if m.keys.len() < self.opts.max_tracked {
            if !m.keys.contains(key) {
                m.keys.insert(key.to_vec());
            }
        } else {
            m.overflowed = true;
        }
    }

    /// Deletes, on every live server but `home`, the copies of the keys that
    /// were served elsewhere while `home` was out (noreply, pipelined). With
    /// `keep`, the keys stay remembered for a later pass: a request routed
    /// before the ring switched may still write after this pass. When a
    /// stand-in cannot be reached, the keys are kept and the cleanup is tried
    /// again after `retry_timeout`.
    fn clean_up_migrated(&self, home: usize, keep: bool) {
        let keys = {
            let mut m = lock(&self.servers[home].migrated);
            if keep {
                m.keys.clone()
            } else {
                m.overflowed = false;
                std::mem::take(&mut m.keys)
            }
        };
        if keys.is_empty() {
            return;
        }
        dbg(format_args!("cleanup for home {home}: {} keys", keys.len()));
        let mut all_done = true;
        // a dead stand-in may be stalled, not gone: it can come back holding
        // the copies it took, so the keys stay remembered until it rejoins
        // (rejoin cleans up for every home whose keys are remembered)
        let mut dead_stand_in = false;
        for (i, s) in self.servers.iter().enumerate() {
            if i == home {
                continue;
            }
            if s.state.load(Ordering::Acquire) == DEAD {
                dead_stand_in = true;
                continue;
            }
            let r = self.delete_on(s, &keys);
            dbg(format_args!(
                "  delete {} keys of home {home} on server {i}: {r:?}",
                keys.len()
            ));
            all_done &= r.is_ok();
        }
        if keep {
            return;
        }
        if !all_done || dead_stand_in {
            lock(&self.servers[home].migrated).keys.extend(keys);
        }
        if !all_done {
            let due = Instant::now() + self.opts.retry_timeout;
            lock(&self.pending_cleanups).push((home, due));
            self.has_pending_cleanups.store(true, Ordering::Release);
        }
    }

    fn delete_on(&self, s: &Server, keys: &HashSet<Vec<u8>>) -> Result<()> {
        self.delete_keys(s, keys.iter(), false)
    }

    /// Deletes `keys` on `s` (noreply, pipelined); with `confirm`, waits
    /// until the server has processed them (a `version` after them answers),
    /// so that no request on another connection can be served before.
    fn delete_keys<'k>(
        &self,
        s: &Server,
        keys: impl Iterator<Item = &'k Vec<u8>>,
        confirm: bool,
    ) -> Result<()> {
        let mut conn = s.pool.get(self.conn.timeout)?;
        let deadline = conn.deadline();
        for k in keys {
            let wk = WireKey {
                prefix: &self.key_prefix,
                key: k,
            };
            encode::delete(&mut conn.wbuf, wk, true);
            if conn.wbuf.len() >= 64 * 1024 {
                conn.flush(deadline)?;
            }
        }
        conn.note_noreply_sent();
        if !confirm {
            return conn.flush(deadline);
        }
        conn.begin_reply_request();
        encode::version(&mut conn.wbuf);
        conn.flush(deadline)?;
        let ok = conn.read_response(deadline, |r| matches!(r, Response::Version(_)))?;
        if ok {
            Ok(())
        } else {
            conn.poison();
            Err(Error::Protocol("delete: unexpected reply".into()))
        }
    }

    /// Flushes `s` and waits for its answer.
    fn flush_server(&self, s: &Server) -> Result<()> {
        let mut conn = s.pool.get(self.conn.timeout)?;
        let deadline = conn.deadline();
        conn.begin_reply_request();
        encode::flush_all(&mut conn.wbuf, 0, false);
        conn.flush(deadline)?;
        if conn.read_response(deadline, |r| matches!(r, Response::Ok))? {
            Ok(())
        } else {
            conn.poison();
            Err(Error::Protocol("flush_all: unexpected reply".into()))
        }
    }

    /// Makes server `i`, back from a successful probe, safe to route to:
    /// deletes on it the keys routed away while it was out (the copies it
    /// holds of them are older than the stand-ins'), or flushes it when
    /// that tracking overflowed or `flush_on_rejoin` is set. Returns the
    /// keys deleted, to tell later additions apart.
    fn purge_returning(&self, i: usize) -> Result<HashSet<Vec<u8>>> {
        let s = &self.servers[i];
        let (keys, overflowed) = {
            let m = lock(&s.migrated);
            (m.keys.clone(), m.overflowed)
        };
        if self.opts.flush_on_rejoin || overflowed {
            dbg(format_args!(
                "server {i} flushed before it rejoins (tracking overflowed: {overflowed})"
            ));
            self.flush_server(s)?;
        } else if !keys.is_empty() {
            dbg(format_args!(
                "server {i}: {} keys routed away while it was out deleted on it",
                keys.len()
            ));
            self.delete_keys(s, keys.iter(), true)?;
        }
        Ok(keys)
    }

    /// A returning server that failed while being made safe: dead again.
    fn back_to_dead(&self, i: usize) {
        let s = &self.servers[i];
        let mut h = lock(&s.health);
        h.failures = self.opts.retry_attempts + 1;
        h.last_failure = Some(Instant::now());
        h.probe_at = Some(Instant::now() + self.opts.dead_timeout);
        s.state.store(DEAD, Ordering::Release);
        dbg(format_args!(
            "server {i} DEAD again (failed while rejoining)"
        ));
    }

    /// A failing server is skipped until `retry_timeout` after its last failure.
    pub(crate) fn check_usable(&self, idx: usize) -> Result<()> {
        let s = &self.servers[idx];
        if s.state.load(Ordering::Relaxed) == HEALTHY {
            return Ok(());
        }
        let h = lock(&s.health);
        match h.last_failure {
            Some(t) if t.elapsed() < self.opts.retry_timeout => Err(self.skip(
                s,
                format!(
                    "{} failed {} time(s); next retry in {} ms",
                    s.spec.addr,
                    h.failures,
                    self.opts
                        .retry_timeout
                        .saturating_sub(t.elapsed())
                        .as_millis()
                ),
            )),
            _ => Ok(()),
        }
    }

    /// The error for a request refused because its server is failing.
    #[cold]
    fn skip(&self, s: &Server, why: String) -> Error {
        s.counters.skipped();
        Error::ServerDown(why)
    }

    /// Every server's counters: (server address, name, value), plus its
    /// state (0 healthy, 1 failing, 2 dead) and the keys tracked for it.
    pub fn counters(&self) -> Vec<(String, &'static str, u64)> {
        let mut out = Vec::new();
        for s in &self.servers {
            let name = s.spec.addr.to_string();
            for (k, v) in s.counters.snapshot(s.pool.connects()) {
                out.push((name.clone(), k, v));
            }
            out.push((
                name.clone(),
                "state",
                u64::from(s.state.load(Ordering::Relaxed)),
            ));
            out.push((name, "keys_tracked", lock(&s.migrated).keys.len() as u64));
        }
        out
    }

    /// Records the outcome of an operation on server `idx`: a server failure
    /// counts toward its eviction, a success makes it healthy again.
    #[inline]
    pub fn report<T>(&self, idx: usize, r: &Result<T>) {
        match r {
            // the hot path: one load
            Ok(_)
                if !self.is_cluster()
                    || self.servers[idx].state.load(Ordering::Relaxed) == HEALTHY => {}
            Ok(_) => self.answered(idx),
            Err(e) => self.report_error(idx, e),
        }
    }

    #[cold]
    #[inline(never)]
    fn report_error(&self, idx: usize, e: &Error) {
        self.servers[idx].counters.failure(e);
        if !self.is_cluster() {
            return;
        }
        if e.is_server_failure() {
            self.failed(idx)
        } else if self.servers[idx].state.load(Ordering::Relaxed) != HEALTHY {
            // an error reply still proves the server is up
            self.answered(idx)
        }
    }

    /// Any answer (even an error reply) proves a failing server is up.
    #[cold]
    fn answered(&self, idx: usize) {
        let s = &self.servers[idx];
        let mut h = lock(&s.health);
        if s.state.load(Ordering::Relaxed) == FAILING {
            dbg(format_args!("server {idx} healthy again"));
            h.failures = 0;
            h.last_failure = None;
            s.state.store(HEALTHY, Ordering::Release);
        }
    }

    fn failed(&self, idx: usize) {
        let s = &self.servers[idx];
        let died = {
            let mut h = lock(&s.health);
            let state = s.state.load(Ordering::Relaxed);
            if state == DEAD {
                return;
            }
            // requests that were in flight when the server first failed fail
            // together: they are one failure, not several retries
            if state == FAILING
                && h.last_failure
                    .is_some_and(|t| t.elapsed() < self.opts.retry_timeout)
            {
                return;
            }
            h.failures += 1;
            h.last_failure = Some(Instant::now());
            dbg(format_args!("server {idx} failure {}", h.failures));
            if h.failures > self.opts.retry_attempts {
                dbg(format_args!("server {idx} DEAD"));
                s.counters.ejected();
                h.probe_at = Some(Instant::now() + self.opts.dead_timeout);
                s.state.store(DEAD, Ordering::Release);
                true
            } else {
                s.state.store(FAILING, Ordering::Release);
                false
            }
        };
        if died {
            // copies left on stand-ins by its previous absence go first, or
            // they would be read back once its keys move to them again
            lock(&self.pending_cleanups).retain(|&(home, _)| home != idx);
            self.clean_up_migrated(idx, false);
            // its keys move to the live servers; idle sockets to it are useless
            self.any_dead.store(true, Ordering::Release);
            self.rebuild_ring();
            s.pool.close_idle();
        }
    }

    /// Rebuilds the ring after a successful probe and starts probes that are due.
    fn maintain(&self) {
        // a plain load first: this runs on every routed key, and a swap would
        // write the shared cache line each time
        if self.rejoined.load(Ordering::Acquire) && self.rejoined.swap(false, Ordering::AcqRel) {
            self.rejoin();
        }
        if self.has_pending_cleanups.load(Ordering::Acquire) {
            self.run_due_cleanups();
        }
        if !self.any_dead.load(Ordering::Acquire) {
            return;
        }
        let now = Instant::now();
        let mut still_dead = false;
        for s in &self.servers {
            if s.state.load(Ordering::Acquire) != DEAD {
                continue;
            }
            still_dead = true;
            let mut h = lock(&s.health);
            if h.probing || h.probe_at.is_some_and(|t| t > now) {
                continue;
            }
            h.probing = true;
            drop(h);
            self.spawn_probe(s);
        }
        // keep noting migrations until the ring holds every server again
        // (a server whose probe succeeded is not dead but may not be back yet)
        let ring_full = self
            .ring
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .members
            .len()
            == self.servers.len();
        if !still_dead && ring_full {
            self.any_dead.store(false, Ordering::Release);
        }
    }

    /// The servers in the ring now (indices into `servers`).
    fn members(&self) -> Vec<usize> {
        self.ring
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .members
            .clone()
    }

    /// Brings servers whose probe succeeded back into the ring. Any change of
    /// the ring can move a migrated key from one stand-in to another, and the
    /// first may keep an older copy; so the copies of *every* remembered key
    /// are deleted from the servers that are not its home (a miss is fine, a
    /// stale value is not), before the switch and once more after it.
    fn rejoin(&self) {
        let members = self.members();
        let back: Vec<usize> = (0..self.servers.len())
            .filter(|&i| {
                self.servers[i].state.load(Ordering::Acquire) != DEAD && !members.contains(&i)
            })
            .collect();
        let homes: Vec<usize> = (0..self.servers.len())
            .filter(|&i| back.contains(&i) || !lock(&self.servers[i].migrated).keys.is_empty())
            .collect();
        // the returning servers' stale copies go first; one that fails
        // meanwhile stays out
        let mut purged = Vec::new();
        for &i in &back {
            dbg(format_args!("server {i} rejoining"));
            match self.purge_returning(i) {
                Ok(keys) => {
                    self.servers[i].counters.rejoined();
                    purged.push((i, keys))
                }
                Err(e) => {
                    dbg(format_args!("server {i}: {e}"));
                    self.back_to_dead(i);
                }
            }
        }
        for &i in &homes {
            self.clean_up_migrated(i, true);
        }
        {
            // the switch: with routing held, the keys routed away since the
            // purge are deleted on their returning server too
            let mut ring = self.ring.write().unwrap_or_else(|p| p.into_inner());
            for (i, done) in &purged {
                let late: Vec<Vec<u8>> = lock(&self.servers[*i].migrated)
                    .keys
                    .iter()
                    .filter(|k| !done.contains(*k))
                    .cloned()
                    .collect();
                if late.is_empty() || self.opts.flush_on_rejoin {
                    continue;
                }
                if let Err(e) = self.delete_keys(&self.servers[*i], late.iter(), true) {
                    dbg(format_args!("server {i}: {e}"));
                    self.back_to_dead(*i);
                }
            }
            *ring = self.build_ring();
        }
        if self
            .servers
            .iter()
            .any(|s| s.state.load(Ordering::Acquire) == DEAD)
        {
            self.any_dead.store(true, Ordering::Release);
        }
        // requests routed with the old ring may still write to stand-ins:
        // clean up again once they are over
        let due = Instant::now() + self.conn.timeout + Duration::from_millis(20);
        let mut p = lock(&self.pending_cleanups);
        for i in homes {
            p.push((i, due));
        }
        if !p.is_empty() {
            self.has_pending_cleanups.store(true, Ordering::Release);
        }
    }

    fn run_due_cleanups(&self) {
        let now = Instant::now();
        let due: Vec<usize> = {
            let mut p = lock(&self.pending_cleanups);
            let due = p
                .iter()
                .filter(|&&(_, t)| t <= now)
                .map(|&(i, _)| i)
                .collect();
            p.retain(|&(_, t)| t > now);
            if p.is_empty() {
                self.has_pending_cleanups.store(false, Ordering::Release);
            }
            due
        };
        let members = self.members();
        for i in due {
            // a home still out of the ring keeps its keys for its own return
            self.clean_up_migrated(i, !members.contains(&i));
        }
    }

    /// Probes a dead server with `version` on a fresh connection, off the
    /// caller's thread; on success the server rejoins the ring.
    fn spawn_probe(&self, s: &Server) {
        let addr = s.spec.addr.clone();
        let conn = self.conn.clone();
        let state = s.state.clone();
        let health = s.health.clone();
        let rejoined = self.rejoined.clone();
        let dead_timeout = self.opts.dead_timeout;
        let spawned = std::thread::Builder::new()
            .name("mcrs-probe".into())
            .spawn(move || {
                let ok = probe(&addr, &conn).is_ok();
                let mut h = lock(&health);
                h.probing = false;
                if ok {
                    h.failures = 0;
                    h.last_failure = None;
                    h.probe_at = None;
                    state.store(HEALTHY, Ordering::Release);
                    rejoined.store(true, Ordering::Release);
                } else {
                    h.probe_at = Some(Instant::now() + dead_timeout);
                }
            });
        if spawned.is_err() {
            let mut h = lock(&s.health);
            h.probing = false;
            h.probe_at = Some(Instant::now() + dead_timeout);
        }
    }
}

/// `exptime` capped at `ttl` seconds from now. memcached reads exptimes
/// above 30 days as unix times, and 0 as never.
fn cap_exptime(exptime: u32, ttl: u32) -> u32 {
    const MONTH: u32 = 30 * 24 * 3600;
    match exptime {
        0 => ttl,
        e if e <= MONTH => e.min(ttl),
        e => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            if u64::from(e) > now + u64::from(ttl) {
                ttl
            } else {
                e
            }
        }
    }
}

fn probe(addr: &ServerAddr, opts: &ConnOptions) -> Result<()> {
    let mut conn = Conn::connect(addr, opts)?;
    let deadline = conn.deadline();
    encode::version(&mut conn.wbuf);
    conn.flush(deadline)?;
    let ok = conn.read_response(deadline, |r| matches!(r, Response::Version(_)))?;
    conn.quit();
    if ok {
        Ok(())
    } else {
        Err(Error::Protocol("probe: unexpected reply".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(addr: &str) -> String {
        let addr = ServerAddr::parse(addr).unwrap();
        ServerSpec { addr, weight: 1 }.node().id
    }

    /// The ids pymemcache's HashClient hashes: "{host}:{port}" (host as
    /// configured, without brackets), or the unix socket's path.
    #[test]
    fn exptime_cap() {
        assert_eq!(cap_exptime(0, 60), 60);
        assert_eq!(cap_exptime(10, 60), 10);
        assert_eq!(cap_exptime(3600, 60), 60);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as u32;
        assert_eq!(cap_exptime(now + 3600, 60), 60);
        assert_eq!(cap_exptime(now + 30, 60), now + 30);
    }

    #[test]
    fn node_ids() {
        assert_eq!(id("127.0.0.1:11211"), "127.0.0.1:11211");
        assert_eq!(id("[::1]:11211"), "::1:11211");
        assert_eq!(id("unix:/s"), "/s");
        assert_eq!(id("/s"), "/s");
    }
}
