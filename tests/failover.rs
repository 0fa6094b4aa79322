//! Fleet-safe failover against real servers: one client's blip must not wipe
//! a shared server for the others, must not serve that client stale copies
//! of its own writes, and must leave only short-lived copies on stand-ins.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use common::Memcached;
use mcrs::ring::{NodeSpec, Ring};
use mcrs::{Client, ClientBuilder, Distribution};

/// A client that gives up on a server quickly and probes it back soon.
fn fast_failover(servers: &[Memcached], tune: impl FnOnce(&mut ClientBuilder)) -> Client {
    let mut b = ClientBuilder::new();
    for s in servers {
        b.add_server(&s.addr()).unwrap();
    }
    b.timeout(Duration::from_millis(200))
        .unwrap()
        .connect_timeout(Duration::from_millis(200))
        .unwrap()
        .retry_attempts(0)
        .retry_timeout(Duration::from_millis(50))
        .dead_timeout(Duration::from_millis(300));
    tune(&mut b);
    b.build().unwrap()
}

fn home(servers: &[Memcached], key: &[u8]) -> usize {
    let nodes: Vec<NodeSpec> = servers
        .iter()
        .map(|s| NodeSpec::tcp("127.0.0.1", s.port, 1))
        .collect();
    Ring::new(Distribution::Rendezvous, &nodes)
        .pick(key)
        .unwrap()
}

/// Sets until it succeeds (the first tries meet the stalled server).
fn set_until_ok(c: &Client, key: &[u8], value: &[u8], exptime: u32) {
    let t0 = Instant::now();
    while c.set(key, value, 0, exptime, Some(false)).is_err() {
        assert!(t0.elapsed() < Duration::from_secs(5), "set never succeeded");
        thread::sleep(Duration::from_millis(10));
    }
}

/// Runs gets on `c` until server `idx` serves its keys again (a key homed
/// there, written through `c`, is found on `idx` itself).
fn wait_for_rejoin(c: &Client, servers: &[Memcached], idx: usize) {
    let probe_key = (0..)
        .map(|i| format!("probe:{i}").into_bytes())
        .find(|k| home(servers, k) == idx)
        .unwrap();
    let direct = Client::connect(&servers[idx].addr()).unwrap();
    let t0 = Instant::now();
    loop {
        let _ = c.get(b"tick");
        if c.set(&probe_key, b"x", 0, 0, Some(false)).is_ok()
            && direct.get(&probe_key).ok().flatten().is_some()
        {
            return;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "server {idx} never rejoined"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// `mg <key> t` on one server: the item's remaining TTL (-1: none), None
/// for a miss.
fn ttl_on(server: &Memcached, key: &str) -> Option<i64> {
    let mut s = TcpStream::connect(server.addr()).unwrap();
    s.write_all(format!("mg {key} t\r\n").as_bytes()).unwrap();
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line).unwrap();
    let line = line.trim_end();
    if line == "EN" {
        return None;
    }
    let t = line
        .split(' ')
        .find_map(|f| f.strip_prefix('t'))
        .unwrap_or_else(|| panic!("no ttl in {line:?}"));
    Some(t.parse().unwrap())
}

/// The two-client scenario: B writes keys; A alone loses one server for a
/// second, rewrites its own keys meanwhile, and takes the server back.
fn blip(failover_ttl: u32) {
    let servers: Vec<Memcached> = (0..3).map(|_| Memcached::start()).collect();
    let a = fast_failover(&servers, |b| {
        b.failover_ttl(failover_ttl);
    });
    let b = fast_failover(&servers, |_| {});
    let x = 1;
    let b_keys: Vec<String> = (0..300).map(|i| format!("b:{i}")).collect();
    let a_keys: Vec<String> = (0..300).map(|i| format!("a:{i}")).collect();
    for k in &b_keys {
        b.set(k.as_bytes(), b"from-b", 0, 0, Some(false)).unwrap();
    }
    for k in &a_keys {
        a.set(k.as_bytes(), b"v1", 0, 0, Some(false)).unwrap();
    }
    let b_on_x = b_keys
        .iter()
        .filter(|k| home(&servers, k.as_bytes()) == x)
        .count();
    let a_on_x = a_keys
        .iter()
        .filter(|k| home(&servers, k.as_bytes()) == x)
        .count();
    assert!(b_on_x > 50 && a_on_x > 50);

    // A's blip: server x stalls for a second; A rewrites its keys meanwhile
    servers[x].pause();
    let t0 = Instant::now();
    for k in &a_keys {
        set_until_ok(&a, k.as_bytes(), b"v2", 0);
    }
    thread::sleep(Duration::from_secs(1).saturating_sub(t0.elapsed()));
    servers[x].resume();
    wait_for_rejoin(&a, &servers, x);

    // A never reads a stale copy of its own writes
    let stale = a_keys
        .iter()
        .filter(|k| {
            a.get(k.as_bytes())
                .unwrap()
                .is_some_and(|v| v.data != b"v2")
        })
        .count();
    assert_eq!(stale, 0, "stale reads of A's own writes");
    // B's keys on x survive A's rejoin
    let direct = Client::connect(&servers[x].addr()).unwrap();
    let survived = b_keys
        .iter()
        .filter(|k| home(&servers, k.as_bytes()) == x)
        .filter(|k| direct.get(k.as_bytes()).unwrap().is_some())
        .count();
    assert!(
        survived * 100 >= b_on_x * 99,
        "only {survived} of B's {b_on_x} keys on the returning server survived"
    );
    // and B, which never saw the blip, reads them all
    let b_hits = b_keys
        .iter()
        .filter(|k| b.get(k.as_bytes()).unwrap().is_some())
        .count();
    assert!(b_hits * 100 >= b_keys.len() * 99, "B has {b_hits} hits");
    println!(
        "failover_ttl {failover_ttl}: {survived}/{b_on_x} of B's keys on the returning server survived, \
         0/{} stale reads by A",
        a_keys.len()
    );
}

#[test]
fn a_blip_of_one_client_keeps_other_clients_keys_and_serves_it_nothing_stale() {
    blip(60);
}

#[test]
fn the_same_without_a_failover_ttl() {
    blip(0);
}

#[test]
fn writes_routed_to_a_stand_in_carry_at_most_failover_ttl() {
    let mut servers: Vec<Memcached> = (0..3).map(|_| Memcached::start()).collect();
    let a = fast_failover(&servers, |b| {
        b.failover_ttl(30);
    });
    let keys: Vec<String> = (0..200)
        .map(|i| format!("k:{i}"))
        .filter(|k| home(&servers, k.as_bytes()) == 0)
        .collect();
    servers[0].kill();
    // exptime 0 (never), one hour, and ten seconds
    for (i, k) in keys.iter().enumerate() {
        set_until_ok(&a, k.as_bytes(), b"v", [0, 3600, 10][i % 3]);
    }
    let mut seen = 0;
    for (i, k) in keys.iter().enumerate() {
        for s in &servers[1..] {
            if let Some(t) = ttl_on(s, k) {
                seen += 1;
                let want_max = [30, 30, 10][i % 3];
                assert!(
                    (0..=want_max).contains(&t),
                    "{k} (exptime {}) has ttl {t} on a stand-in",
                    [0, 3600, 10][i % 3]
                );
            }
        }
    }
    assert_eq!(seen, keys.len(), "every key is on exactly one stand-in");
    // a key whose own server is up keeps its exptime
    let other = (0..)
        .map(|i| format!("o:{i}"))
        .find(|k| home(&servers, k.as_bytes()) == 1)
        .unwrap();
    a.set(other.as_bytes(), b"v", 0, 0, Some(false)).unwrap();
    assert_eq!(ttl_on(&servers[1], &other), Some(-1));
    servers[0].restart();
}

#[test]
fn when_tracking_overflows_the_returning_server_is_flushed() {
    let servers: Vec<Memcached> = (0..3).map(|_| Memcached::start()).collect();
    let a = fast_failover(&servers, |b| {
        b.max_tracked_keys(5);
    });
    let x = 2;
    let a_keys: Vec<String> = (0..120)
        .map(|i| format!("a:{i}"))
        .filter(|k| home(&servers, k.as_bytes()) == x)
        .collect();
    assert!(a_keys.len() > 10);
    let other = Client::connect(&servers[x].addr()).unwrap();
    other.set(b"someone-else", b"v", 0, 0, Some(false)).unwrap();
    for k in &a_keys {
        a.set(k.as_bytes(), b"v1", 0, 0, Some(false)).unwrap();
    }
    servers[x].pause();
    for k in &a_keys {
        set_until_ok(&a, k.as_bytes(), b"v2", 0);
    }
    servers[x].resume();
    wait_for_rejoin(&a, &servers, x);
    // more keys moved than were tracked: the server was flushed, so none of
    // A's old copies (nor anyone else's keys) are left on it
    assert!(other.get(b"someone-else").unwrap().is_none());
    for k in &a_keys {
        if let Some(v) = a.get(k.as_bytes()).unwrap() {
            assert_eq!(v.data, b"v2", "{k}");
        }
    }
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap()
}

/// A hostile server: answers every get with a 300 MB value header, then
/// sends `send` bytes of it and holds the connection.
fn announces_300mb(send: usize) -> common::FakePeer {
    common::FakePeer::start(move |_, mut s| {
        while let Some(line) = common::read_line(&mut s) {
            if line.starts_with("get ") {
                common::send(&mut s, b"VALUE k 0 300000000\r\n");
                let chunk = vec![b'x'; 64 * 1024];
                let mut sent = 0;
                while sent < send {
                    common::send(&mut s, &chunk);
                    sent += chunk.len();
                }
            } else if line.starts_with("version") {
                common::send(&mut s, b"VERSION 1.6.0\r\n");
            }
        }
    })
}

#[test]
fn a_value_over_max_value_size_is_refused_before_it_is_buffered() {
    let peer = announces_300mb(4 << 20);
    let mut b = ClientBuilder::new();
    b.add_server(&peer.addr()).unwrap();
    b.timeout(Duration::from_secs(2))
        .unwrap()
        .max_value_size(1 << 20)
        .unwrap();
    let c = b.build().unwrap();
    let before = rss_kib();
    let t0 = Instant::now();
    match c.get(b"k") {
        Err(mcrs::Error::ValueTooLarge(m)) => assert!(m.contains("300000000"), "{m}"),
        other => panic!("expected ValueTooLarge, got {other:?}"),
    }
    assert!(t0.elapsed() < Duration::from_secs(1), "refused at once");
    assert!(
        rss_kib() < before + 32 * 1024,
        "the announced size was not allocated"
    );
    // the event loop refuses it the same way
    let mut lp = mcrs::engine::EventLoop::new(&c).unwrap();
    let out = std::rc::Rc::new(std::cell::RefCell::new(None));
    let o2 = out.clone();
    lp.submit_with(
        &mcrs::request::Request::Retrieve {
            cmd: mcrs::protocol::Retrieve::Get,
            key: b"k",
        },
        move |o| *o2.borrow_mut() = Some(o),
    )
    .unwrap();
    while out.borrow().is_none() && t0.elapsed() < Duration::from_secs(5) {
        lp.wait(Duration::from_millis(20)).unwrap();
    }
    match out.borrow_mut().take() {
        Some(mcrs::request::Outcome::Value(Err(mcrs::Error::ValueTooLarge(_)))) => {}
        other => panic!("loop: expected ValueTooLarge, got {other:?}"),
    }
    // an invalid limit is refused
    assert!(ClientBuilder::new().max_value_size(0).is_err());
    assert!(ClientBuilder::new().max_value_size((1 << 30) + 1).is_err());
}

#[test]
fn an_announced_size_is_not_allocated_before_the_data_arrives() {
    // within the default limit, but only 1 MiB of the 300 MB ever comes
    let peer = announces_300mb(1 << 20);
    let mut b = ClientBuilder::new();
    b.add_server(&peer.addr()).unwrap();
    b.timeout(Duration::from_millis(500)).unwrap();
    let c = b.build().unwrap();
    let before = rss_kib();
    assert!(matches!(c.get(b"k"), Err(mcrs::Error::Timeout(_))));
    assert!(
        rss_kib() < before + 32 * 1024,
        "memory follows the bytes received"
    );
}

fn counter(c: &Client, server: &Memcached, name: &str) -> u64 {
    let addr = server.addr();
    c.counters()
        .into_iter()
        .find(|(s, n, _)| *s == addr && *n == name)
        .map(|(_, _, v)| v)
        .unwrap_or_else(|| panic!("no counter {name} for {addr}"))
}

#[test]
fn counters_follow_a_kill_stop_restart_sequence() {
    let mut servers: Vec<Memcached> = (0..3).map(|_| Memcached::start()).collect();
    let a = fast_failover(&servers, |_| {});
    let x = 0;
    let on_x: Vec<String> = (0..200)
        .map(|i| format!("c:{i}"))
        .filter(|k| home(&servers, k.as_bytes()) == x)
        .take(10)
        .collect();
    for k in &on_x[..5] {
        a.set(k.as_bytes(), b"v", 0, 0, Some(false)).unwrap();
    }
    for k in &on_x {
        a.get(k.as_bytes()).unwrap();
    }
    assert_eq!(counter(&a, &servers[x], "hits"), 5);
    assert_eq!(counter(&a, &servers[x], "misses"), 5);
    assert_eq!(counter(&a, &servers[x], "commands"), 15);
    assert_eq!(counter(&a, &servers[x], "connects"), 1);
    assert_eq!(counter(&a, &servers[x], "state"), 0);

    // stall: a timeout, then the server is dead (retry_attempts 0) and its
    // keys are tracked while they go elsewhere
    servers[x].pause();
    assert!(a.get(on_x[0].as_bytes()).is_err());
    assert_eq!(counter(&a, &servers[x], "timeouts"), 1);
    for k in &on_x {
        set_until_ok(&a, k.as_bytes(), b"w", 0);
    }
    assert_eq!(counter(&a, &servers[x], "state"), 2);
    assert_eq!(counter(&a, &servers[x], "ejections"), 1);
    assert_eq!(counter(&a, &servers[x], "keys_tracked"), on_x.len() as u64);
    servers[x].resume();
    wait_for_rejoin(&a, &servers, x);
    assert_eq!(counter(&a, &servers[x], "rejoins"), 1);
    assert_eq!(counter(&a, &servers[x], "state"), 0);

    // kill and restart: a closed connection or a refused connect, a second
    // ejection, a reconnect after the restart
    servers[x].kill();
    let _ = a.get(on_x[0].as_bytes());
    let failures =
        counter(&a, &servers[x], "closed") + counter(&a, &servers[x], "connect_failures");
    assert!(failures >= 1, "the kill was counted");
    servers[x].restart();
    wait_for_rejoin(&a, &servers, x);
    assert_eq!(counter(&a, &servers[x], "ejections"), 2);
    assert_eq!(counter(&a, &servers[x], "rejoins"), 2);
    assert!(counter(&a, &servers[x], "reconnects") >= 1);
    // the other servers saw none of it
    for s in &servers[1..] {
        assert_eq!(counter(&a, s, "timeouts"), 0);
        assert_eq!(counter(&a, s, "ejections"), 0);
    }
}

#[test]
fn a_small_limit_refuses_values_that_fit_in_the_read_buffer() {
    let mc = Memcached::start();
    Client::connect(&mc.addr())
        .unwrap()
        .set(b"big", &[b'x'; 5000], 0, 0, Some(false))
        .unwrap();
    let mut b = ClientBuilder::new();
    b.add_server(&mc.addr()).unwrap();
    b.max_value_size(1000).unwrap();
    let c = b.build().unwrap();
    assert!(matches!(c.get(b"big"), Err(mcrs::Error::ValueTooLarge(_))));
    let r = c.fetch_many_with(mcrs::protocol::Retrieve::Get, &[b"big"], |_, _, _, _| {
        panic!("no value over the limit is handed out")
    });
    assert!(matches!(
        r.unwrap().error(0),
        Some(mcrs::Error::ValueTooLarge(_))
    ));
    // the loop fails that key alone and the connection stays usable
    let mut lp = mcrs::engine::EventLoop::new(&c).unwrap();
    let out = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    for key in [&b"big"[..], b"small"] {
        let o = out.clone();
        lp.submit_with(
            &mcrs::request::Request::Retrieve {
                cmd: mcrs::protocol::Retrieve::Get,
                key,
            },
            move |r| o.borrow_mut().push(r),
        )
        .unwrap();
    }
    let t0 = Instant::now();
    while out.borrow().len() < 2 && t0.elapsed() < Duration::from_secs(3) {
        lp.wait(Duration::from_millis(20)).unwrap();
    }
    let out = out.borrow();
    assert!(matches!(
        out[0],
        mcrs::request::Outcome::Value(Err(mcrs::Error::ValueTooLarge(_)))
    ));
    assert!(
        matches!(out[1], mcrs::request::Outcome::Value(Ok(None))),
        "{:?}",
        out[1]
    );
}

/// A stand-in that is itself out when its home rejoins must not keep the
/// copies it took: once it is back and the home fails again, the key moves to
/// it and must read as the home's newer value or a miss, never the old copy.
#[test]
fn a_stand_in_down_when_its_home_rejoined_serves_nothing_stale_later() {
    let servers: Vec<Memcached> = (0..3).map(|_| Memcached::start()).collect();
    let nodes: Vec<NodeSpec> = servers
        .iter()
        .map(|s| NodeSpec::tcp("127.0.0.1", s.port, 1))
        .collect();
    let (a, s) = (0, 1);
    let without_a = Ring::new(Distribution::Rendezvous, &nodes[1..]);
    let key = (0..)
        .map(|i| format!("k:{i}").into_bytes())
        .find(|k| home(&servers, k) == a && without_a.pick(k) == Some(s - 1))
        .unwrap();
    let on_s = (0..)
        .map(|i| format!("s:{i}").into_bytes())
        .find(|k| home(&servers, k) == s)
        .unwrap();
    let c = fast_failover(&servers, |_| {});

    // A out: the key goes to its stand-in S
    servers[a].pause();
    set_until_ok(&c, &key, b"old", 0);
    let direct_s = Client::connect(&servers[s].addr()).unwrap();
    assert_eq!(direct_s.get(&key).unwrap().unwrap().data, b"old");
    // S out too (the client sees it fail), then A comes back and takes the key
    servers[s].pause();
    let _ = c.get(&on_s);
    servers[a].resume();
    wait_for_rejoin(&c, &servers, a);
    set_until_ok(&c, &key, b"new", 0);
    // A's second cleanup pass (timeout + 20 ms after its rejoin) runs while
    // S is still out
    let t1 = Instant::now();
    while t1.elapsed() < Duration::from_millis(400) {
        let _ = c.get(&key);
        thread::sleep(Duration::from_millis(10));
    }
    // S comes back, then A fails again: the key moves to S
    servers[s].resume();
    wait_for_rejoin(&c, &servers, s);
    servers[a].pause();
    let t0 = Instant::now();
    let got = loop {
        if let Ok(v) = c.get(&key) {
            break v;
        }
        assert!(t0.elapsed() < Duration::from_secs(5), "the key never moved");
        thread::sleep(Duration::from_millis(10));
    };
    servers[a].resume();
    assert!(
        got.as_ref().is_none_or(|v| v.data == b"new"),
        "read the stand-in's old copy: {:?}",
        got.map(|v| String::from_utf8_lossy(&v.data).into_owned())
    );
}
