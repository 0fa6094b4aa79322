//! A small `cargo bench` harness with no dependencies.
//!
//! `cargo bench`: each benchmark runs in 15 batches of about 20 ms each and
//! prints the median time per operation, with the fastest and slowest batch.
//! `cargo test --benches` (no `--bench` argument): each benchmark runs a few
//! iterations only, as a smoke test that it still works.
//! A further argument filters benchmarks by substring:
//! `cargo bench --bench protocol -- parse`.

use std::hint::black_box;
use std::time::{Duration, Instant};

pub struct Bencher {
    full: bool,
    filter: Option<String>,
}

impl Bencher {
    pub fn from_args() -> Bencher {
        let args: Vec<String> = std::env::args().skip(1).collect();
        Bencher {
            full: args.iter().any(|a| a == "--bench"),
            filter: args.into_iter().find(|a| !a.starts_with('-')),
        }
    }

    /// Times `f`, one call per operation. `ops_per_call` > 1 when one call does
    /// several operations (per-key figures of a batch).
    pub fn run<R>(&self, name: &str, ops_per_call: u64, mut f: impl FnMut() -> R) {
        if self
            .filter
            .as_ref()
            .is_some_and(|p| !name.contains(p.as_str()))
        {
            return;
        }
        if !self.full {
            for _ in 0..3 {
                black_box(f());
            }
            println!("{name}: ok");
            return;
        }
        // calls per batch: enough for about 20 ms
        let mut calls: u64 = 1;
        loop {
            let t = Instant::now();
            for _ in 0..calls {
                black_box(f());
            }
            if t.elapsed() > Duration::from_millis(20) || calls > 1 << 30 {
                break;
            }
            calls *= 2;
        }
        let mut per_op: Vec<f64> = (0..15)
            .map(|_| {
                let t = Instant::now();
                for _ in 0..calls {
                    black_box(f());
                }
                t.elapsed().as_nanos() as f64 / (calls * ops_per_call) as f64
            })
            .collect();
        per_op.sort_by(f64::total_cmp);
        println!(
            "{name:<40} {:>9.1} ns/op   (fastest batch {:.1}, slowest {:.1})",
            per_op[per_op.len() / 2],
            per_op[0],
            per_op[per_op.len() - 1]
        );
    }
}
