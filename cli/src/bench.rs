//! `mcrs bench`: a load generator in the spirit of memaslap and mc-crusher.
//! Each thread drives its share of the connections, one event loop
//! (`mcrs::engine::EventLoop`, one pipelined connection per server) per
//! connection, keeping `depth` requests in flight on each; latency is the
//! time from submission to completion, recorded in an HDR histogram.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::io::{self, IsTerminal, Write};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use hdrhistogram::Histogram;
use mcrs::engine::EventLoop;
use mcrs::protocol::{Retrieve, StoreCmd};
use mcrs::request::{Ack, Outcome as Reply, Request};
use mcrs::Client;

use crate::{parse_duration, ConnArgs, Fail, Outcome};

#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    /// Threads, each driving its share of the connections
    #[arg(short, long, default_value_t = 1)]
    pub threads: usize,
    /// Connections to each server in all, split over the threads (default: one per thread)
    #[arg(short, long)]
    pub connections: Option<usize>,
    /// Requests in flight on each connection (pipeline depth)
    #[arg(short, long, default_value_t = 8)]
    pub depth: usize,
    /// Distinct keys, chosen uniformly at random
    #[arg(long, default_value_t = 10_000)]
    pub keys: u64,
    /// Bytes per value
    #[arg(long, default_value_t = 100)]
    pub value_size: usize,
    /// Gets to sets, e.g. 9:1 (1:0 gets only, 0:1 sets only)
    #[arg(long, default_value = "9:1", value_parser = parse_ratio)]
    pub ratio: (u32, u32),
    /// How long to run, e.g. 10s, 1m
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Prefix of the bench's keys
    #[arg(long, default_value = "mcrs-bench:")]
    pub key_prefix: String,
    /// Do not store the key space before the run (gets miss until a set hits their key)
    #[arg(long)]
    pub no_prefill: bool,
    /// Print the result as JSON on stdout
    #[arg(long)]
    pub json: bool,
    /// No progress line on stderr
    #[arg(short, long)]
    pub quiet: bool,
}

/// Parses `GETS:SETS`, e.g. `9:1`.
pub fn parse_ratio(s: &str) -> Result<(u32, u32), String> {
    let bad = || format!("{s:?} is not a get:set ratio such as 9:1");
    let (g, st) = s.split_once(':').ok_or_else(bad)?;
    let g: u32 = g.trim().parse().map_err(|_| bad())?;
    let st: u32 = st.trim().parse().map_err(|_| bad())?;
    if g == 0 && st == 0 {
        return Err("the get:set ratio cannot be 0:0".into());
    }
    if g.checked_add(st).is_none() {
        return Err(bad());
    }
    Ok((g, st))
}

/// xorshift64*: enough randomness to pick keys and commands.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// What one thread saw.
struct Tally {
    /// latency of each successful request, in nanoseconds
    hist: Histogram<u64>,
    gets: u64,
    sets: u64,
    hits: u64,
    misses: u64,
    not_stored: u64,
    errors: u64,
    first_error: Option<String>,
    /// completions after the end are not counted
    closed: bool,
    /// completions not yet added to the shared progress counter
    unreported: u64,
}

impl Tally {
    fn new() -> Tally {
        Tally {
            hist: Histogram::new_with_bounds(1, 3_600_000_000_000, 3).expect("valid bounds"),
            gets: 0,
            sets: 0,
            hits: 0,
            misses: 0,
            not_stored: 0,
            errors: 0,
            first_error: None,
            closed: false,
            unreported: 0,
        }
    }

    fn done(&mut self, is_get: bool, took: Duration, o: Reply) {
        if self.closed {
            return;
        }
        self.unreported += 1;
        let ok = match o {
            Reply::Value(Ok(Some(_))) => {
                self.hits += 1;
                true
            }
            Reply::Value(Ok(None)) => {
                self.misses += 1;
                true
            }
            Reply::Ack(Ok(Ack::Done)) => true,
            Reply::Ack(Ok(_)) => {
                self.not_stored += 1;
                true
            }
            other => {
                self.errors += 1;
                if self.first_error.is_none() {
                    self.first_error = Some(match other.error() {
                        Some(e) => e.to_string(),
                        None => format!("unexpected outcome {other:?}"),
                    });
                }
                false
            }
        };
        if ok {
            if is_get {
                self.gets += 1;
            } else {
                self.sets += 1;
            }
            self.hist
                .saturating_record(took.as_nanos().min(u64::MAX as u128).max(1) as u64);
        }
    }

    fn merge(&mut self, o: &Tally) {
        self.hist.add(&o.hist).expect("same bounds");
        self.gets += o.gets;
        self.sets += o.sets;
        self.hits += o.hits;
        self.misses += o.misses;
        self.not_stored += o.not_stored;
        self.errors += o.errors;
        if self.first_error.is_none() {
            self.first_error.clone_from(&o.first_error);
        }
    }
}

struct Shared {
    completed: AtomicU64,
    errors: AtomicU64,
    stop: AtomicBool,
}

/// The settings one worker thread needs.
struct Plan {
    loops: usize,
    depth: usize,
    keys: u64,
    prefix: String,
    value: Arc<Vec<u8>>,
    ratio: (u32, u32),
    end: Instant,
}

fn worker(client: &Client, plan: &Plan, seed: u64, shared: &Shared) -> Result<Tally, String> {
    let mut loops = Vec::with_capacity(plan.loops);
    for _ in 0..plan.loops {
        let mut lp = EventLoop::new(client).map_err(|e| format!("event loop: {e}"))?;
        // submissions are flushed explicitly below, saving a wake-up per turn
        lp.set_auto_wake(false);
        loops.push(lp);
    }
    let tally = Rc::new(RefCell::new(Tally::new()));
    let mut rng = Rng(seed | 1);
    let mut key = String::with_capacity(plan.prefix.len() + 20);
    let (g, s) = plan.ratio;
    let total = u64::from(g) + u64::from(s);
    let mut pfds: Vec<libc::pollfd> = loops
        .iter()
        .map(|lp| libc::pollfd {
            fd: lp.fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    loop {
        let now = Instant::now();
        if now >= plan.end || shared.stop.load(Ordering::Relaxed) {
            break;
        }
        for lp in loops.iter_mut() {
            while lp.pending() < plan.depth {
                key.clear();
                let _ = write!(key, "{}{}", plan.prefix, rng.next() % plan.keys);
                let is_get = rng.next() % total < u64::from(g);
                let req = if is_get {
                    Request::Retrieve {
                        cmd: Retrieve::Get,
                        key: key.as_bytes(),
                    }
                } else {
                    Request::Store {
                        cmd: StoreCmd::Set,
                        key: key.as_bytes(),
                        value: &plan.value,
                        flags: 0,
                        exptime: 0,
                        noreply: Some(false),
                    }
                };
                let t = Instant::now();
                let tl = Rc::clone(&tally);
                lp.submit_with(&req, move |o| tl.borrow_mut().done(is_get, t.elapsed(), o))
                    .map_err(|e| format!("submitting {key:?}: {e}"))?;
            }
            lp.flush();
        }
        // wait for any loop to have work, at most until the nearest deadline
        let mut wait = plan
            .end
            .saturating_duration_since(now)
            .min(Duration::from_millis(10));
        for lp in &loops {
            if let Some(t) = lp.timeout() {
                wait = wait.min(t);
            }
        }
        if !wait.is_zero() {
            let ms = wait.as_nanos().div_ceil(1_000_000) as i32;
            // SAFETY: pfds is a valid array of pollfd of the given length.
            unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, ms) };
        }
        for lp in loops.iter_mut() {
            lp.run().map_err(|e| format!("event loop: {e}"))?;
        }
        let mut t = tally.borrow_mut();
        shared.completed.fetch_add(t.unreported, Ordering::Relaxed);
        t.unreported = 0;
        shared.errors.store(t.errors, Ordering::Relaxed);
        for p in pfds.iter_mut() {
            p.revents = 0;
        }
    }
    tally.borrow_mut().closed = true;
    // the requests still in flight are cancelled with their loops
    drop(loops);
    let t = Rc::try_unwrap(tally)
        .map_err(|_| "a request outlived its event loop".to_string())?
        .into_inner();
    Ok(t)
}

/// The client's per-server counters, by (server, name).
fn counters(c: &Client) -> Vec<(String, &'static str, u64)> {
    c.counters()
}

fn check(a: &BenchArgs) -> Result<usize, Fail> {
    let err = |m: &str| Err(Fail::Error(m.to_string()));
    if a.threads == 0 {
        return err("--threads must be at least 1");
    }
    let conns = a.connections.unwrap_or(a.threads);
    if conns < a.threads {
        return err("--connections must be at least --threads (each thread needs one)");
    }
    if a.depth == 0 {
        return err("--depth must be at least 1");
    }
    if a.keys == 0 {
        return err("--keys must be at least 1");
    }
    if a.value_size > mcrs::client::MAX_VALUE_LEN {
        return err("--value-size is larger than the protocol can carry");
    }
    let longest = a.key_prefix.len() + (a.keys - 1).to_string().len();
    if longest > mcrs::client::MAX_KEY_LEN {
        return err("--key-prefix is too long: keys would exceed 250 bytes");
    }
    Ok(conns)
}

pub fn run(conn: &ConnArgs, a: &BenchArgs) -> Outcome {
    let conns = check(a)?;
    let servers = conn.servers()?;
    // every server must answer before the run: a dead one fails at once
    for (server, c) in conn.per_server()? {
        c.version()
            .map_err(|e| Fail::Error(format!("{server}: {e}")))?;
    }
    let client = conn.builder(&servers)?.max_pool_size(64)?.build()?;
    let value: Arc<Vec<u8>> = Arc::new((0..a.value_size).map(|i| b'a' + (i % 26) as u8).collect());
    if !a.no_prefill && a.ratio.0 > 0 {
        prefill(&client, a, &value)?;
    }
    let before = counters(&client);

    let shared = Arc::new(Shared {
        completed: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        stop: AtomicBool::new(false),
    });
    let start = Instant::now();
    let end = start + a.duration;
    let handles: Vec<_> = (0..a.threads)
        .map(|t| {
            let plan = Plan {
                loops: conns / a.threads + usize::from(t < conns % a.threads),
                depth: a.depth,
                keys: a.keys,
                prefix: a.key_prefix.clone(),
                value: Arc::clone(&value),
                ratio: a.ratio,
                end,
            };
            let client = client.clone();
            let shared = Arc::clone(&shared);
            let seed = (start.elapsed().as_nanos() as u64)
                ^ (t as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            std::thread::spawn(move || {
                let r = worker(&client, &plan, seed, &shared);
                if r.is_err() {
                    shared.stop.store(true, Ordering::Relaxed);
                }
                r
            })
        })
        .collect();

    progress(a, &shared, start, end);
    let elapsed = start
        .elapsed()
        .min(a.duration.max(Duration::from_millis(1)));
    let mut total = Tally::new();
    let mut failure = None;
    for h in handles {
        match h.join() {
            Ok(Ok(t)) => total.merge(&t),
            Ok(Err(e)) => failure = Some(e),
            Err(_) => failure = Some("a bench thread panicked".into()),
        }
    }
    if let Some(e) = failure {
        return Err(Fail::Error(e));
    }
    let after = counters(&client);
    let report = Report {
        args: a,
        conns,
        servers: &servers,
        elapsed,
        t: &total,
        per_server: per_server(&servers, &before, &after),
    };
    let mut out = io::stdout().lock();
    if a.json {
        writeln!(out, "{}", report.json())?;
    } else {
        report.text(&mut out)?;
    }
    out.flush()?;
    let ops = total.gets + total.sets;
    match (&total.first_error, ops) {
        (_, 0) => Err(Fail::Error(match &total.first_error {
            Some(e) => format!("no request succeeded: {e}"),
            None => "no request completed".into(),
        })),
        (Some(e), _) => Err(Fail::Error(format!(
            "{} requests failed, the first with: {e}",
            total.errors
        ))),
        (None, _) => Ok(()),
    }
}

/// Stores every key of the key space (pipelined, 1000 keys a call).
fn prefill(client: &Client, a: &BenchArgs, value: &[u8]) -> Result<(), Fail> {
    let mut start = 0u64;
    while start < a.keys {
        let stop = (start + 1000).min(a.keys);
        let keys: Vec<String> = (start..stop)
            .map(|i| format!("{}{i}", a.key_prefix))
            .collect();
        let items: Vec<(&[u8], &[u8], u32)> =
            keys.iter().map(|k| (k.as_bytes(), value, 0)).collect();
        let refused = client
            .set_many(&items, 0, Some(false))
            .map_err(|e| Fail::Error(format!("storing the key space: {e}")))?;
        if !refused.is_empty() {
            return Err(Fail::Error(format!(
                "storing the key space: the server refused {} values of {} bytes (memcached -I?)",
                refused.len(),
                a.value_size
            )));
        }
        start = stop;
    }
    Ok(())
}

/// Prints a progress line once a second until the end (or a thread stops).
fn progress(a: &BenchArgs, shared: &Shared, start: Instant, end: Instant) {
    let tty = io::stderr().is_terminal();
    let mut last = (start, 0u64);
    let mut printed = false;
    loop {
        let now = Instant::now();
        if now >= end || shared.stop.load(Ordering::Relaxed) {
            break;
        }
        let next = (last.0 + Duration::from_secs(1)).min(end);
        std::thread::sleep(next.saturating_duration_since(now));
        if a.quiet || Instant::now() >= end {
            continue;
        }
        let now = Instant::now();
        let done = shared.completed.load(Ordering::Relaxed);
        let rate = (done - last.1) as f64 / now.duration_since(last.0).as_secs_f64();
        let line = format!(
            "[{:>5.1}s] {:>10.0} ops/s  {} ops  {} errors",
            now.duration_since(start).as_secs_f64(),
            rate,
            done,
            shared.errors.load(Ordering::Relaxed)
        );
        if tty {
            eprint!("\r{line}  ");
        } else {
            eprintln!("{line}");
        }
        printed = true;
        last = (now, done);
    }
    if tty && printed {
        eprintln!();
    }
}

/// Per server: (server, commands, hits, misses, timeouts, other failures) during the run.
type ServerLine = (String, [u64; 5]);

fn per_server(
    servers: &[String],
    before: &[(String, &'static str, u64)],
    after: &[(String, &'static str, u64)],
) -> Vec<ServerLine> {
    let get = |list: &[(String, &'static str, u64)], idx: usize, name: &str| -> u64 {
        // counters() lists every server's counters in configuration order
        let names: Vec<&(String, &'static str, u64)> =
            list.iter().filter(|c| c.1 == name).collect();
        names.get(idx).map_or(0, |c| c.2)
    };
    servers
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let d = |n: &str| get(after, i, n).saturating_sub(get(before, i, n));
            let failures = d("connect_failures") + d("closed") + d("protocol_errors");
            (
                s.clone(),
                [
                    d("commands"),
                    d("hits"),
                    d("misses"),
                    d("timeouts"),
                    failures,
                ],
            )
        })
        .collect()
}

struct Report<'a> {
    args: &'a BenchArgs,
    conns: usize,
    servers: &'a [String],
    elapsed: Duration,
    t: &'a Tally,
    per_server: Vec<ServerLine>,
}

fn json_str(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

impl Report<'_> {
    fn ops(&self) -> u64 {
        self.t.gets + self.t.sets
    }
    fn rate(&self, n: u64) -> f64 {
        n as f64 / self.elapsed.as_secs_f64()
    }
    /// Latency at quantile `q`, in microseconds.
    fn us(&self, q: f64) -> f64 {
        if self.t.hist.is_empty() {
            return 0.0;
        }
        self.t.hist.value_at_quantile(q) as f64 / 1e3
    }

    fn text(&self, o: &mut impl Write) -> io::Result<()> {
        let a = self.args;
        writeln!(
            o,
            "mcrs bench: {} servers, {} threads, {} connections per server, depth {}, {} keys, {}-byte values, get:set {}:{}",
            self.servers.len(), a.threads, self.conns, a.depth, a.keys, a.value_size, a.ratio.0, a.ratio.1
        )?;
        writeln!(
            o,
            "ops        {} in {:.2} s: {:.0} ops/s (get {:.0}/s, set {:.0}/s)",
            self.ops(),
            self.elapsed.as_secs_f64(),
            self.rate(self.ops()),
            self.rate(self.t.gets),
            self.rate(self.t.sets)
        )?;
        let pct = if self.t.gets > 0 {
            100.0 * self.t.hits as f64 / self.t.gets as f64
        } else {
            0.0
        };
        writeln!(
            o,
            "gets       {} hits, {} misses ({pct:.1}% hits); {} sets not stored; {} errors",
            self.t.hits, self.t.misses, self.t.not_stored, self.t.errors
        )?;
        writeln!(
            o,
            "latency    p50 {:.1} us  p90 {:.1} us  p99 {:.1} us  p99.9 {:.1} us  max {:.1} us  mean {:.1} us",
            self.us(0.5),
            self.us(0.9),
            self.us(0.99),
            self.us(0.999),
            self.t.hist.max() as f64 / 1e3,
            self.t.hist.mean() / 1e3
        )?;
        for (s, [cmds, hits, misses, timeouts, fails]) in &self.per_server {
            writeln!(
                o,
                "server     {s}: {cmds} commands, {hits} hits, {misses} misses, {timeouts} timeouts, {fails} connection failures"
            )?;
        }
        Ok(())
    }

    fn json(&self) -> String {
        let a = self.args;
        let mut j = String::from("{");
        let _ = write!(
            j,
            "\"servers\":[{}],\"threads\":{},\"connections\":{},\"depth\":{},\"keys\":{},\"value_size\":{},\"ratio\":[{},{}],",
            self.servers.iter().map(|s| json_str(s)).collect::<Vec<_>>().join(","),
            a.threads, self.conns, a.depth, a.keys, a.value_size, a.ratio.0, a.ratio.1
        );
        let _ = write!(
            j,
            "\"duration_s\":{:.3},\"ops\":{},\"ops_per_sec\":{:.1},\"gets\":{},\"sets\":{},\"hits\":{},\"misses\":{},\"not_stored\":{},\"errors\":{},",
            self.elapsed.as_secs_f64(),
            self.ops(),
            self.rate(self.ops()),
            self.t.gets,
            self.t.sets,
            self.t.hits,
            self.t.misses,
            self.t.not_stored,
            self.t.errors
        );
        let _ = write!(
            j,
            "\"latency_us\":{{\"p50\":{:.2},\"p90\":{:.2},\"p99\":{:.2},\"p99_9\":{:.2},\"max\":{:.2},\"mean\":{:.2}}},",
            self.us(0.5),
            self.us(0.9),
            self.us(0.99),
            self.us(0.999),
            self.t.hist.max() as f64 / 1e3,
            if self.t.hist.is_empty() { 0.0 } else { self.t.hist.mean() / 1e3 }
        );
        let per: Vec<String> = self
            .per_server
            .iter()
            .map(|(s, [c, h, m, t, f])| {
                format!(
                    "{{\"server\":{},\"commands\":{c},\"hits\":{h},\"misses\":{m},\"timeouts\":{t},\"connection_failures\":{f}}}",
                    json_str(s)
                )
            })
            .collect();
        let _ = write!(j, "\"per_server\":[{}],", per.join(","));
        let _ = write!(
            j,
            "\"first_error\":{}}}",
            self.t
                .first_error
                .as_deref()
                .map_or("null".to_string(), json_str)
        );
        j
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios() {
        assert_eq!(parse_ratio("9:1"), Ok((9, 1)));
        assert_eq!(parse_ratio("0:1"), Ok((0, 1)));
        assert_eq!(parse_ratio(" 1 : 0 "), Ok((1, 0)));
        for bad in ["0:0", "9", "a:b", "1:-1", "4294967295:1", ""] {
            assert!(parse_ratio(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(json_str("a\"b\\c\n"), "\"a\\\"b\\\\c\\u000a\"");
    }

    #[test]
    fn tally_counts_and_records() {
        let mut t = Tally::new();
        t.done(true, Duration::from_micros(50), Reply::Value(Ok(None)));
        t.done(false, Duration::from_micros(70), Reply::Ack(Ok(Ack::Done)));
        t.done(
            false,
            Duration::from_micros(70),
            Reply::Ack(Err(mcrs::Error::Timeout(5))),
        );
        assert_eq!((t.gets, t.sets, t.misses, t.errors), (1, 1, 1, 1));
        assert_eq!(t.hist.len(), 2);
        assert!(t.first_error.as_deref().unwrap().contains("timed out"));
        t.closed = true;
        t.done(true, Duration::from_micros(1), Reply::Value(Ok(None)));
        assert_eq!(t.gets, 1);
    }
}
