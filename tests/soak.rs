//! Soak under faults: several threads run random operations on one client of
//! three real memcached servers while a fault loop kills, stalls (SIGSTOP)
//! and restarts them; one more thread drives an event loop over the same
//! client (shared cluster state) with batches of requests in flight. Every value read is checked against a model of what
//! may be there. A wrong value (another key's, a stale version, corrupted
//! bytes) fails the test; errors and misses during faults are expected.
//!
//! Size: MCRS_SOAK_OPS (default 100000) operations and at least
//! MCRS_SOAK_FAULTS (default 30) faults, bounded by MCRS_SOAK_SECS (120);
//! MCRS_SOAK_SEED varies the random operations and faults.

mod common;

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::Memcached;
use mcrs::engine::EventLoop;
use mcrs::protocol::{Retrieve, StoreCmd};
use mcrs::request::{Ack, Outcome, Request};
use mcrs::{CasOutcome, Client, ClientBuilder, Error};

const THREADS: usize = 4;
const KEYS_PER_THREAD: u64 = 40;
const TIMEOUT: Duration = Duration::from_millis(200);

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A small deterministic PRNG (xorshift64*), one per thread.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A value says which key and version it is and carries a checkable body.
fn value_for(key: &str, version: u64, len: usize) -> Vec<u8> {
    let mut v = format!("{key}|{version}|{len}|").into_bytes();
    v.extend((0..len).map(|i| b'a' + ((version as usize + i) % 26) as u8));
    v
}

/// Parses a value back: Some(version) when it is intact and belongs to `key`.
fn version_of(key: &str, data: &[u8]) -> Result<u64, String> {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.splitn(4, '|');
    let (k, ver, len) = (parts.next(), parts.next(), parts.next());
    if k != Some(key) {
        return Err(format!("value of another key: asked {key}, got {:?}", k));
    }
    let ver: u64 = ver.and_then(|v| v.parse().ok()).ok_or("bad version")?;
    let len: usize = len.and_then(|v| v.parse().ok()).ok_or("bad length")?;
    if data != value_for(key, ver, len).as_slice() {
        return Err(format!("corrupted value for {key} v{ver}"));
    }
    Ok(ver)
}

/// What may be stored under one key: the last version written successfully
/// (or none after a delete), plus every version whose write failed (a write
/// that timed out may still land later). Absence is always possible: servers
/// die and rejoin empty.
#[derive(Default)]
struct KeyModel {
    committed: Option<u64>,
    uncertain: Vec<u64>,
}

impl KeyModel {
    fn allows(&self, ver: u64) -> bool {
        self.committed == Some(ver) || self.uncertain.contains(&ver)
    }
}

#[derive(Default)]
struct Report {
    ops: AtomicU64,
    errors: AtomicU64,
    wrong: AtomicU64,
    worst_us: AtomicU64,
    faults: AtomicUsize,
    wrong_samples: Mutex<Vec<String>>,
}

impl Report {
    fn wrong(&self, what: String) {
        if std::env::var_os("MCRS_DEBUG").is_some() {
            eprintln!("WRONG {what}");
        }
        self.wrong.fetch_add(1, Ordering::Relaxed);
        let mut s = self.wrong_samples.lock().unwrap();
        if s.len() < 10 {
            s.push(what);
        }
    }
}

fn worker(
    c: &Client,
    tid: usize,
    keep_going: impl Fn(u64) -> bool,
    report: &Report,
    ring: &mcrs::ring::Ring,
) {
    let mut rng =
        Rng(0x9e37_79b9_7f4a_7c15 ^ (tid as u64 + 1) ^ (env_or("MCRS_SOAK_SEED", 1) << 8));
    let keys: Vec<String> = (0..KEYS_PER_THREAD)
        .map(|i| format!("t{tid}:k{i}"))
        .collect();
    let mut model: HashMap<String, KeyModel> = HashMap::new();
    let mut version = 0u64;
    let counter = format!("t{tid}:ctr");
    let mut incr_bound = 0u64; // increments issued since the counter was last reset
    let check = |model: &HashMap<String, KeyModel>, key: &str, data: Option<&[u8]>| {
        if let Some(d) = data {
            match version_of(key, d) {
                Ok(v) if model.get(key).is_some_and(|m| m.allows(v)) => {}
                Ok(v) => {
                    let m = model.get(key);
                    report.wrong(format!(
                        "stale or unknown version {v} for {key} home {:?} (committed {:?}, uncertain {:?})",
                        ring.pick(key.as_bytes()),
                        m.and_then(|m| m.committed),
                        m.map(|m| &m.uncertain[m.uncertain.len().saturating_sub(5)..])
                    ))
                }
                Err(e) => report.wrong(e),
            }
        }
    };
    let mut done = 0;
    while keep_going(done) {
        done += 1;
        let key = keys[rng.below(KEYS_PER_THREAD) as usize].clone();
        let t0 = Instant::now();
        let failed = match rng.below(100) {
            0..=29 => {
                version += 1;
                let v = value_for(&key, version, rng.below(300) as usize);
                let m = model.entry(key.clone()).or_default();
                match c.set(key.as_bytes(), &v, 0, 0, Some(false)) {
                    Ok(_) => {
                        m.committed = Some(version);
                        false
                    }
                    Err(_) => {
                        m.uncertain.push(version);
                        true
                    }
                }
            }
            30..=64 => match c.get(key.as_bytes()) {
                Ok(v) => {
                    check(&model, &key, v.as_ref().map(|v| &v.data[..]));
                    false
                }
                Err(_) => true,
            },
            65..=79 => {
                let ks: Vec<&String> = (0..8)
                    .map(|_| &keys[rng.below(KEYS_PER_THREAD) as usize])
                    .collect();
                let refs: Vec<&[u8]> = ks.iter().map(|k| k.as_bytes()).collect();
                match c.get_many(&refs) {
                    Ok(vals) => {
                        for (k, v) in ks.iter().zip(&vals) {
                            check(&model, k, v.as_ref().map(|v| &v.data[..]));
                        }
                        false
                    }
                    Err(_) => true,
                }
            }
            80..=86 => match c.delete(key.as_bytes(), Some(false)) {
                Ok(_) => {
                    model.entry(key.clone()).or_default().committed = None;
                    false
                }
                Err(_) => true,
            },
            87..=93 => match c.gets(key.as_bytes()) {
                Ok(Some(v)) => {
                    check(&model, &key, Some(&v.data));
                    version += 1;
                    let new = value_for(&key, version, rng.below(100) as usize);
                    let m = model.entry(key.clone()).or_default();
                    match c.cas(key.as_bytes(), &new, 0, 0, v.cas.unwrap(), None) {
                        Ok(CasOutcome::Stored) => {
                            m.committed = Some(version);
                            false
                        }
                        Ok(_) => false,
                        Err(_) => {
                            m.uncertain.push(version);
                            true
                        }
                    }
                }
                Ok(None) => false,
                Err(_) => true,
            },
            _ => match c.incr(counter.as_bytes(), 1, None) {
                Ok(Some(n)) => {
                    incr_bound += 1;
                    if n > incr_bound {
                        report.wrong(format!(
                            "counter {counter} at {n}, only {incr_bound} increments issued"
                        ));
                    }
                    false
                }
                Ok(None) => {
                    if c.set(counter.as_bytes(), b"0", 0, 0, Some(false)).is_ok() {
                        incr_bound = 0;
                    }
                    false
                }
                Err(Error::Client(m)) => {
                    report.wrong(format!("counter {counter} not numeric: {m}"));
                    false
                }
                Err(_) => {
                    incr_bound += 1;
                    true
                }
            },
        };
        let us = t0.elapsed().as_micros() as u64;
        report.worst_us.fetch_max(us, Ordering::Relaxed);
        report.ops.fetch_add(1, Ordering::Relaxed);
        if failed {
            report.errors.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Tid of the event-loop worker's keys (the blocking workers use 0..THREADS).
const LOOP_TID: usize = 9;
/// Requests in flight per batch of the event-loop worker.
const LOOP_BATCH: usize = 24;

/// The event-loop worker: batches of requests in flight at once through an
/// [`EventLoop`] over the shared client. Within a batch every request has
/// keys of its own, so the model is checked as of the batch's start and
/// updated when the batch completes.
fn loop_worker(c: &Client, keep_going: impl Fn(u64) -> bool, report: &Report) {
    let mut rng = Rng(0x51ed_270b ^ (env_or("MCRS_SOAK_SEED", 1) << 8));
    let keys: Vec<String> = (0..KEYS_PER_THREAD * 2)
        .map(|i| format!("t{LOOP_TID}:k{i}"))
        .collect();
    let mut model: HashMap<String, KeyModel> = HashMap::new();
    let mut version = 0u64;
    let mut lp = EventLoop::new(c).expect("event loop");
    type Log = Rc<RefCell<Vec<(usize, Outcome, Duration)>>>;
    enum Op {
        Set(String, u64, Vec<u8>),
        Get(String),
        GetMany(Vec<String>),
        Delete(String),
    }
    let mut done = 0u64;
    while keep_going(done) {
        // distinct keys for this batch
        let mut free: Vec<usize> = (0..keys.len()).collect();
        let mut take = |rng: &mut Rng| free.swap_remove(rng.below(free.len() as u64) as usize);
        let mut ops = Vec::with_capacity(LOOP_BATCH);
        for _ in 0..LOOP_BATCH {
            let op = match rng.below(100) {
                0..=34 => {
                    version += 1;
                    let key = keys[take(&mut rng)].clone();
                    let v = value_for(&key, version, rng.below(300) as usize);
                    Op::Set(key, version, v)
                }
                35..=74 => Op::Get(keys[take(&mut rng)].clone()),
                75..=89 => Op::GetMany((0..4).map(|_| keys[take(&mut rng)].clone()).collect()),
                _ => Op::Delete(keys[take(&mut rng)].clone()),
            };
            ops.push(op);
        }
        let log: Log = Rc::default();
        let t0 = Instant::now();
        for (i, op) in ops.iter().enumerate() {
            let many: Vec<&[u8]>;
            let req = match op {
                Op::Set(k, _, v) => Request::Store {
                    cmd: StoreCmd::Set,
                    key: k.as_bytes(),
                    value: v,
                    flags: 0,
                    exptime: 0,
                    noreply: Some(false),
                },
                Op::Get(k) => Request::Retrieve {
                    cmd: Retrieve::Get,
                    key: k.as_bytes(),
                },
                Op::GetMany(ks) => {
                    many = ks.iter().map(|k| k.as_bytes()).collect();
                    Request::RetrieveMany {
                        cmd: Retrieve::Get,
                        keys: many,
                    }
                }
                Op::Delete(k) => Request::Delete {
                    key: k.as_bytes(),
                    noreply: Some(false),
                },
            };
            let log = log.clone();
            lp.submit_with(&req, move |o| log.borrow_mut().push((i, o, t0.elapsed())))
                .expect("submit");
        }
        // every callback runs exactly once, and within the deadline bound
        let end = Instant::now() + TIMEOUT * 10;
        while log.borrow().len() < ops.len() && Instant::now() < end {
            lp.wait(Duration::from_millis(20)).expect("loop run");
        }
        let log = std::mem::take(&mut *log.borrow_mut());
        if log.len() != ops.len() {
            report.wrong(format!(
                "event loop: {} of {} callbacks ran within {:?}",
                log.len(),
                ops.len(),
                TIMEOUT * 10
            ));
        }
        let mut seen = vec![false; ops.len()];
        let check =
            |model: &HashMap<String, KeyModel>, key: &str, data: &[u8]| match version_of(key, data)
            {
                Ok(v) if model.get(key).is_some_and(|m| m.allows(v)) => {}
                Ok(v) => report.wrong(format!(
                    "event loop: stale or unknown version {v} for {key}"
                )),
                Err(e) => report.wrong(format!("event loop: {e}")),
            };
        for (i, outcome, took) in log {
            if std::mem::replace(&mut seen[i], true) {
                report.wrong(format!("event loop: callback {i} ran twice"));
            }
            report
                .worst_us
                .fetch_max(took.as_micros() as u64, Ordering::Relaxed);
            report.ops.fetch_add(1, Ordering::Relaxed);
            if outcome.error().is_some() {
                report.errors.fetch_add(1, Ordering::Relaxed);
            }
            match (&ops[i], outcome) {
                (Op::Set(k, ver, _), Outcome::Ack(r)) => {
                    let m = model.entry(k.clone()).or_default();
                    match r {
                        Ok(_) => m.committed = Some(*ver),
                        Err(_) => m.uncertain.push(*ver),
                    }
                }
                (Op::Get(k), Outcome::Value(r)) => {
                    if let Ok(Some(v)) = r {
                        check(&model, k, v.data())
                    }
                }
                (Op::GetMany(ks), Outcome::Values(r)) => {
                    if let Ok(vs) = r {
                        for (j, k) in ks.iter().enumerate() {
                            if let Some(v) = vs.get(j) {
                                check(&model, k, v.data())
                            }
                        }
                    }
                }
                (Op::Delete(k), Outcome::Ack(r)) => {
                    if matches!(r, Ok(Ack::Done) | Ok(Ack::NotFound)) {
                        model.entry(k.clone()).or_default().committed = None;
                    }
                }
                (_, o) => report.wrong(format!("event loop: outcome {o:?} for request {i}")),
            }
        }
        done += ops.len() as u64;
    }
}

fn fault_loop(servers: &Mutex<Vec<Memcached>>, stop: &AtomicBool, report: &Report) {
    let mut rng = Rng(0xdead_beef ^ env_or("MCRS_SOAK_SEED", 1));
    while !stop.load(Ordering::Relaxed) {
        thread::sleep(Duration::from_millis(80 + rng.below(120)));
        let i = rng.below(3) as usize;
        let kind = rng.below(3);
        let down = Duration::from_millis(150 + rng.below(500));
        if std::env::var_os("MCRS_DEBUG").is_some() {
            eprintln!("FAULT kind {kind} on server {i} for {down:?}");
        }
        match kind {
            0 => {
                servers.lock().unwrap()[i].kill();
                thread::sleep(down);
                servers.lock().unwrap()[i].restart();
            }
            1 => {
                servers.lock().unwrap()[i].pause();
                thread::sleep(down);
                servers.lock().unwrap()[i].resume();
            }
            _ => servers.lock().unwrap()[i].restart(),
        }
        report.faults.fetch_add(1, Ordering::Relaxed);
    }
}

#[test]
fn soak_under_faults_returns_no_wrong_values() {
    let total_ops = env_or("MCRS_SOAK_OPS", 100_000);
    let min_faults = env_or("MCRS_SOAK_FAULTS", 30) as usize;
    let max_time = Duration::from_secs(env_or("MCRS_SOAK_SECS", 120));

    let servers: Vec<Memcached> = (0..3).map(|_| Memcached::start()).collect();
    let mut b = ClientBuilder::new();
    for s in &servers {
        b.add_server(&s.addr()).unwrap();
    }
    b.timeout(TIMEOUT)
        .unwrap()
        .connect_timeout(TIMEOUT)
        .unwrap()
        .retry_attempts(1)
        .retry_timeout(Duration::from_millis(100))
        .dead_timeout(Duration::from_millis(500));
    let client = Arc::new(b.build().unwrap());
    let nodes: Vec<mcrs::ring::NodeSpec> = servers
        .iter()
        .map(|s| mcrs::ring::NodeSpec::tcp("127.0.0.1", s.port, 1))
        .collect();
    let servers = Arc::new(Mutex::new(servers));
    let report = Arc::new(Report::default());
    let stop_faults = Arc::new(AtomicBool::new(false));
    let stop_workers = Arc::new(AtomicBool::new(false));

    let t0 = Instant::now();
    let faults = {
        let (s, st, r) = (servers.clone(), stop_faults.clone(), report.clone());
        thread::spawn(move || fault_loop(&s, &st, &r))
    };
    let workers: Vec<_> = (0..THREADS)
        .map(|tid| {
            let (c, st, r) = (client.clone(), stop_workers.clone(), report.clone());
            let ring = mcrs::ring::Ring::new(mcrs::Distribution::Rendezvous, &nodes);
            let per = total_ops / THREADS as u64;
            thread::spawn(move || {
                // keep going until enough faults were injected, within the time bound
                let go = |done: u64| {
                    (done < per || r.faults.load(Ordering::Relaxed) < min_faults)
                        && t0.elapsed() < max_time
                        && !st.load(Ordering::Relaxed)
                };
                worker(&c, tid, go, &r, &ring)
            })
        })
        .collect();
    let looper = {
        let (c, st, r) = (client.clone(), stop_workers.clone(), report.clone());
        let per = total_ops / THREADS as u64;
        thread::spawn(move || {
            let go = |done: u64| {
                (done < per || r.faults.load(Ordering::Relaxed) < min_faults)
                    && t0.elapsed() < max_time
                    && !st.load(Ordering::Relaxed)
            };
            loop_worker(&c, go, &r)
        })
    };
    let mut crashed = 0;
    for w in workers.into_iter().chain([looper]) {
        if w.join().is_err() {
            crashed += 1;
        }
    }
    stop_faults.store(true, Ordering::Relaxed);
    faults.join().unwrap();
    let elapsed = t0.elapsed();

    let worst = Duration::from_micros(report.worst_us.load(Ordering::Relaxed));
    let wrong = report.wrong.load(Ordering::Relaxed);
    println!(
        "soak: {} ops in {:.1} s, {} faults injected, {} errors (expected under faults), \
         {} wrong values, {} crashed threads, worst latency {:.0} ms (timeout {} ms)",
        report.ops.load(Ordering::Relaxed),
        elapsed.as_secs_f64(),
        report.faults.load(Ordering::Relaxed),
        report.errors.load(Ordering::Relaxed),
        wrong,
        crashed,
        worst.as_secs_f64() * 1e3,
        TIMEOUT.as_millis()
    );
    for s in report.wrong_samples.lock().unwrap().iter() {
        println!("  wrong: {s}");
    }
    assert_eq!(crashed, 0);
    assert_eq!(wrong, 0, "wrong values were returned");
    assert!(report.ops.load(Ordering::Relaxed) >= total_ops.min(1000));
    assert!(
        report.faults.load(Ordering::Relaxed) >= min_faults,
        "too few faults injected"
    );
    // a call may meet one stalled connection (timeout) and then a connect to a
    // stalled server (connect_timeout) before it gives up
    assert!(
        worst <= TIMEOUT * 2 + Duration::from_millis(150),
        "worst latency {worst:?}"
    );
}
