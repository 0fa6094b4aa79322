//! Checks `mcrs::ring` against placements recorded from real peers.
//!
//! The fixtures in `tests/fixtures/ring/` come from `tools/gen_ring_fixtures.py`:
//! rendezvous sets from pymemcache's `HashClient`, ketama sets from pylibmc and
//! libmemcached storing keys on real memcached processes and reading back
//! which server holds each one. Every key of every set must be placed exactly
//! as the peer placed it.

use std::fs;
use std::path::{Path, PathBuf};

use mcrs::ring::{Distribution, NodeSpec, Ring};

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ring")
}

fn unhex(s: &str) -> Vec<u8> {
    assert!(s.len() % 2 == 0, "odd hex length: {s:?}");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digit"))
        .collect()
}

fn load_keys() -> Vec<Vec<u8>> {
    let text = fs::read_to_string(fixture_dir().join("keys.txt")).expect("keys.txt");
    text.lines().map(unhex).collect()
}

struct Fixture {
    name: String,
    dist: Distribution,
    nodes: Vec<NodeSpec>,
    /// Owner index per key of keys.txt; `None` where the peer cannot take the key.
    picks: Vec<Option<usize>>,
}

fn parse_fixture(path: &Path) -> Fixture {
    let name = path.file_stem().unwrap().to_string_lossy().into_owned();
    let text = fs::read_to_string(path).unwrap();
    let mut dist = None;
    let mut nodes = Vec::new();
    let mut picks = Vec::new();
    let mut in_picks = false;
    for line in text.lines() {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        if in_picks {
            picks.push(match line {
                "-" => None,
                n => Some(n.parse::<usize>().expect("pick index")),
            });
        } else if let Some(d) = line.strip_prefix("distribution ") {
            dist = Some(match d {
                "rendezvous" => Distribution::Rendezvous,
                "ketama" => Distribution::Ketama,
                other => panic!("{name}: unknown distribution {other}"),
            });
        } else if let Some(n) = line.strip_prefix("node ") {
            let f: Vec<&str> = n.split('|').collect();
            assert_eq!(f.len(), 4, "{name}: bad node line {line:?}");
            nodes.push(NodeSpec {
                id: f[0].to_string(),
                host: f[1].to_string(),
                port: f[2].parse().unwrap(),
                weight: f[3].parse().unwrap(),
            });
        } else if line == "picks" {
            in_picks = true;
        } else {
            panic!("{name}: unexpected line {line:?}");
        }
    }
    Fixture {
        name,
        dist: dist.expect("distribution line"),
        nodes,
        picks,
    }
}

fn load_fixtures() -> Vec<Fixture> {
    let mut paths: Vec<PathBuf> = fs::read_dir(fixture_dir())
        .expect("fixture dir")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt") && !p.ends_with("keys.txt"))
        .collect();
    paths.sort();
    paths.iter().map(|p| parse_fixture(p)).collect()
}

#[test]
fn ring_matches_peer_placements() {
    let keys = load_keys();
    assert!(keys.len() >= 1000, "only {} fixture keys", keys.len());
    let fixtures = load_fixtures();
    let count = |d| fixtures.iter().filter(|f| f.dist == d).count();
    assert!(
        count(Distribution::Rendezvous) >= 4,
        "rendezvous fixtures missing"
    );
    assert!(count(Distribution::Ketama) >= 4, "ketama fixtures missing");

    let mut failures = Vec::new();
    for f in &fixtures {
        assert_eq!(f.picks.len(), keys.len(), "{}: one pick per key", f.name);
        let ring = Ring::new(f.dist, &f.nodes);
        assert_eq!(ring.len(), f.nodes.len());
        let mut checked = 0;
        for (key, want) in keys.iter().zip(&f.picks) {
            let Some(want) = *want else { continue };
            checked += 1;
            let got = ring.pick(key);
            if got != Some(want) {
                failures.push(format!(
                    "{}: key {} -> {:?}, peer chose {} ({})",
                    f.name,
                    key.iter().map(|b| format!("{b:02x}")).collect::<String>(),
                    got,
                    want,
                    f.nodes[want].id
                ));
            }
        }
        assert!(
            checked >= keys.len() * 9 / 10,
            "{}: few keys checked",
            f.name
        );
    }
    assert!(
        failures.is_empty(),
        "{} mismatches, first ones:\n{}",
        failures.len(),
        failures[..failures.len().min(20)].join("\n")
    );
}
