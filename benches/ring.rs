//! ns per key lookup of each distribution, for 3 and 10 servers:
//! `cargo bench --bench ring`.

mod common;

use std::hint::black_box;

use mcrs::ring::{NodeSpec, Ring};
use mcrs::Distribution;

fn main() {
    let b = common::Bencher::from_args();
    // 4096 distinct keys of about 20 bytes, looked up in turn
    let keys: Vec<Vec<u8>> = (0..4096)
        .map(|i| format!("user:{i}:profile:{}", i * 7919).into_bytes())
        .collect();
    for dist in [
        Distribution::Xxh3,
        Distribution::Rendezvous,
        Distribution::Ketama,
    ] {
        for n in [3u16, 10] {
            let nodes: Vec<NodeSpec> = (0..n)
                .map(|i| NodeSpec::tcp("10.0.0.1", 11211 + i, 1))
                .collect();
            let ring = Ring::new(dist, &nodes);
            b.run(
                &format!("ring {dist:?}, {n} servers (per key)"),
                keys.len() as u64,
                || {
                    keys.iter()
                        .map(|k| ring.pick(black_box(k)).expect("servers"))
                        .fold(0usize, usize::wrapping_add)
                },
            );
        }
    }
}
