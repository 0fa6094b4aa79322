//! Several real memcached servers behind one client: placement, multi-key
//! fan-out, and failover when servers are killed, stalled and restarted.

mod common;

use std::cell::RefCell;
use std::rc::Rc;
use std::thread;
use std::time::{Duration, Instant};

use common::Memcached;
use mcrs::engine::EventLoop;
use mcrs::request::{Outcome, Request};
use mcrs::ring::{NodeSpec, Ring};
use mcrs::value::KeyStatus;
use mcrs::{Client, ClientBuilder, Distribution, Error};

fn cluster(servers: &[Memcached], tune: impl FnOnce(&mut ClientBuilder)) -> Client {
    let mut b = ClientBuilder::new();
    for s in servers {
        b.add_server(&s.addr()).unwrap();
    }
    tune(&mut b);
    b.build().unwrap()
}

/// A client of one server alone, to see where keys really are.
fn direct(s: &Memcached) -> Client {
    Client::connect(&s.addr()).unwrap()
}

fn keys(n: usize) -> Vec<Vec<u8>> {
    (0..n).map(|i| format!("key:{i}").into_bytes()).collect()
}

fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let t0 = Instant::now();
    while t0.elapsed() < limit {
        if f() {
            return true;
        }
        thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn keys_land_where_the_ring_says() {
    let servers: Vec<Memcached> = (0..3).map(|_| Memcached::start()).collect();
    for dist in [
        Distribution::Rendezvous,
        Distribution::Ketama,
        Distribution::Xxh3,
    ] {
        let c = cluster(&servers, |b| {
            b.distribution(dist);
        });
        c.flush_all(0, Some(false)).unwrap();
        let nodes: Vec<NodeSpec> = servers
            .iter()
            .map(|s| NodeSpec::tcp("127.0.0.1", s.port, 1))
            .collect();
        let ring = Ring::new(dist, &nodes);
        let ks = keys(300);
        for k in &ks {
            c.set(k, k, 0, 0, Some(false)).unwrap();
        }
        let mut per_server = [0; 3];
        for k in &ks {
            let owner = ring.pick(k).unwrap();
            per_server[owner] += 1;
            for (i, s) in servers.iter().enumerate() {
                let there = direct(s).get(k).unwrap().is_some();
                assert_eq!(
                    there,
                    i == owner,
                    "{dist:?}: key {:?} on server {i}",
                    String::from_utf8_lossy(k)
                );
            }
            assert_eq!(c.get(k).unwrap().unwrap().data, *k);
        }
        assert!(
            per_server.iter().all(|&n| n > 50),
            "{dist:?}: uneven spread {per_server:?}"
        );
    }
}

#[test]
fn multi_key_commands_span_servers() {
    let servers: Vec<Memcached> = (0..3).map(|_| Memcached::start()).collect();
    let c = cluster(&servers, |_| {});
    let ks = keys(500);
    let items: Vec<(&[u8], &[u8], u32)> = ks.iter().map(|k| (&k[..], &k[..], 3)).collect();
    assert!(c.set_many(&items, 0, Some(false)).unwrap().is_empty());
    let mut ask: Vec<&[u8]> = ks.iter().map(|k| &k[..]).collect();
    ask.insert(7, b"missing");
    let got = c.get_many(&ask).unwrap();
    for (k, v) in ask.iter().zip(&got) {
        match v {
            Some(v) => assert_eq!((&v.data[..], v.flags), (*k, 3)),
            None => assert_eq!(*k, b"missing"),
        }
    }
    let got = c.gets_many(&ask).unwrap();
    assert_eq!(
        got.iter()
            .filter(|v| v.as_ref().is_some_and(|v| v.cas.is_some()))
            .count(),
        500
    );
    assert_eq!(c.touch_many(&ask, 3600, Some(false)).unwrap(), 500);
    assert_eq!(c.delete_many(&ask, Some(false)).unwrap(), 500);
    assert_eq!(c.touch_many(&ask, 3600, Some(false)).unwrap(), 0);
    assert!(c.get_many(&ask).unwrap().iter().all(Option::is_none));
    // server-wide commands reach every server
    let stats = c.stats("").unwrap();
    for s in &servers {
        assert!(stats
            .iter()
            .any(|(srv, n, _)| *srv == s.addr() && n == "pid"));
    }
    assert_eq!(c.versions().unwrap().len(), 3);
}

/// Which of `servers` owns `key` under the default distribution.
fn owner(servers: &[Memcached], key: &[u8]) -> usize {
    let nodes: Vec<NodeSpec> = servers
        .iter()
        .map(|s| NodeSpec::tcp("127.0.0.1", s.port, 1))
        .collect();
    Ring::new(Distribution::Rendezvous, &nodes)
        .pick(key)
        .unwrap()
}

#[test]
fn killed_server_is_evicted_its_keys_rebalance_and_it_rejoins() {
    let mut servers: Vec<Memcached> = (0..3).map(|_| Memcached::start()).collect();
    let c = cluster(&servers, |b| {
        b.retry_attempts(1)
            .retry_timeout(Duration::from_millis(100))
            .dead_timeout(Duration::from_millis(600))
            .timeout(Duration::from_millis(300))
            .unwrap();
    });
    let ks = keys(200);
    for k in &ks {
        c.set(k, k, 0, 0, Some(false)).unwrap();
    }
    let victim = 1;
    let victims: Vec<&Vec<u8>> = ks.iter().filter(|k| owner(&servers, k) == victim).collect();
    let survivors: Vec<&Vec<u8>> = ks.iter().filter(|k| owner(&servers, k) != victim).collect();
    assert!(!victims.is_empty());
    servers[victim].kill();

    // first failure: the caller learns it (the stale pooled connection is
    // retried once on a fresh one, which is refused); then the server is
    // skipped until retry_timeout
    let k = victims[0];
    assert!(matches!(c.get(k), Err(Error::ConnectFailed { .. })));
    assert!(matches!(c.get(k), Err(Error::ServerDown(_))));
    // keys of live servers are unaffected all along
    for k in &survivors {
        assert_eq!(c.get(k).unwrap().unwrap().data, **k);
    }
    // after retry_attempts failed retries the server leaves the ring
    assert!(wait_until(Duration::from_secs(3), || c
        .set(k, b"moved", 0, 0, Some(false))
        .is_ok()));
    for k in &victims {
        // rebalanced: a miss (the data died with the server), never an error or a wrong value
        match c.get(k).unwrap() {
            None => {}
            Some(v) => assert_eq!(
                v.data,
                b"moved".to_vec(),
                "only the rewritten key has a value"
            ),
        }
        c.set(k, b"elsewhere", 0, 0, Some(false)).unwrap();
    }
    for k in &survivors {
        assert_eq!(c.get(k).unwrap().unwrap().data, **k);
    }

    // restart on the same port: after dead_timeout a probe brings it back
    servers[victim].restart();
    let back = wait_until(Duration::from_secs(5), || {
        // any routed call gives the cluster a chance to start the probe
        let _ = c.get(b"tick");
        c.set(victims[0], b"home", 0, 0, Some(false)).is_ok()
            && direct(&servers[victim]).get(victims[0]).unwrap().is_some()
    });
    assert!(back, "the restarted server never rejoined the ring");
    for k in &victims[1..] {
        // the rejoined server is empty: misses, never the copies written elsewhere
        assert_eq!(c.get(k).unwrap(), None);
    }
}

#[test]
fn stalled_server_costs_one_timeout_then_fails_fast_and_never_serves_stale_data() {
    let servers: Vec<Memcached> = (0..3).map(|_| Memcached::start()).collect();
    let timeout = Duration::from_millis(250);
    let c = cluster(&servers, |b| {
        b.retry_attempts(1)
            .retry_timeout(Duration::from_millis(200))
            .dead_timeout(Duration::from_millis(500))
            .timeout(timeout)
            .unwrap();
    });
    let ks = keys(100);
    let victim = 2;
    let k = ks
        .iter()
        .find(|k| owner(&servers, k) == victim)
        .unwrap()
        .clone();
    c.set(&k, b"old", 0, 0, Some(false)).unwrap();

    servers[victim].pause();
    let t0 = Instant::now();
    let r = c.get(&k);
    assert!(matches!(r, Err(Error::Timeout(_))), "{r:?}");
    let first = t0.elapsed();
    assert!(first < timeout * 3, "{first:?}");
    let t1 = Instant::now();
    assert!(matches!(c.get(&k), Err(Error::ServerDown(_))));
    assert!(
        t1.elapsed() < timeout / 2,
        "a failing server is skipped, not waited for"
    );

    // evicted after the failed retry; the key is written to a live server
    assert!(wait_until(Duration::from_secs(3), || c
        .set(&k, b"new", 0, 0, Some(false))
        .is_ok()));
    assert_eq!(c.get(&k).unwrap().unwrap().data, b"new".to_vec());

    // the stalled server wakes up holding "old"; it rejoins flushed
    servers[victim].resume();
    let rejoined = wait_until(Duration::from_secs(5), || {
        let _ = c.get(b"tick");
        direct(&servers[victim]).get(&k).unwrap().is_none() && c.get(&k).unwrap().is_none()
    });
    assert!(rejoined, "the server did not rejoin flushed");
    for _ in 0..20 {
        let v = c.get(&k).unwrap();
        assert_ne!(
            v.map(|v| v.data),
            Some(b"old".to_vec()),
            "stale value served"
        );
    }
}

#[test]
fn ignore_exc_makes_a_dead_servers_keys_misses() {
    let mut servers: Vec<Memcached> = (0..2).map(|_| Memcached::start()).collect();
    let c = cluster(&servers, |b| {
        b.ignore_exc(true)
            .retry_attempts(5)
            .retry_timeout(Duration::from_secs(10));
    });
    let ks = keys(50);
    for k in &ks {
        c.set(k, k, 0, 0, Some(false)).unwrap();
    }
    servers[0].kill();
    let refs: Vec<&[u8]> = ks.iter().map(|k| &k[..]).collect();
    let got = c.get_many(&refs).unwrap();
    for (k, v) in ks.iter().zip(&got) {
        match owner(&servers, k) {
            0 => assert!(v.is_none()),
            _ => assert_eq!(v.as_ref().unwrap().data, *k),
        }
    }
    for k in &ks {
        let v = c.get(k).unwrap();
        assert!(v.is_none() || v.unwrap().data == *k);
    }
}

#[test]
fn all_servers_dead_is_no_servers() {
    let mut servers: Vec<Memcached> = (0..2).map(|_| Memcached::start()).collect();
    let c = cluster(&servers, |b| {
        b.retry_attempts(0);
    });
    for s in &mut servers {
        s.kill();
    }
    let ks = keys(50);
    let mut saw_no_servers = false;
    for k in &ks {
        match c.get(k) {
            Err(Error::NoServers) => saw_no_servers = true,
            Err(Error::ConnectFailed { .. }) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(saw_no_servers);
    assert!(matches!(
        c.set(b"x", b"y", 0, 0, None),
        Err(Error::NoServers)
    ));
}

/// One server dead, one stalled, one healthy: a multi-key read returns every
/// hit of the healthy server within the timeout, and each other key says why
/// it has no value (blocking client and event loop alike).
#[test]
fn get_many_returns_the_hits_it_can_with_a_status_per_failed_key() {
    let mut servers: Vec<Memcached> = (0..3).map(|_| Memcached::start()).collect();
    let timeout = Duration::from_millis(300);
    let c = cluster(&servers, |b| {
        b.timeout(timeout)
            .unwrap()
            .connect_timeout(timeout)
            .unwrap();
    });
    let ks = keys(60);
    let refs: Vec<&[u8]> = ks.iter().map(|k| k.as_slice()).collect();
    for k in &refs {
        c.set(k, k, 0, 0, Some(false)).unwrap();
    }
    servers[0].kill();
    servers[1].pause();
    let home: Vec<usize> = refs.iter().map(|k| owner(&servers, k)).collect();
    assert!((0..3).all(|s| home.contains(&s)), "keys on every server");

    let check = |what: &str,
                 status: &[KeyStatus],
                 errors: &[Error],
                 value: &dyn Fn(usize) -> Option<Vec<u8>>| {
        for (i, st) in status.iter().enumerate() {
            match (home[i], *st) {
                (2, KeyStatus::Ok) => {
                    assert_eq!(value(i).as_deref(), Some(refs[i]), "{what}: key {i}")
                }
                (0, KeyStatus::Failed(e)) => assert!(
                    matches!(
                        errors[e as usize],
                        Error::ConnectFailed { .. } | Error::ServerDown(_)
                    ),
                    "{what}: dead server's key {i}: {:?}",
                    errors[e as usize]
                ),
                (1, KeyStatus::Failed(e)) => assert!(
                    matches!(errors[e as usize], Error::Timeout(_) | Error::ServerDown(_)),
                    "{what}: stalled server's key {i}: {:?}",
                    errors[e as usize]
                ),
                (h, st) => panic!("{what}: key {i} on server {h}: {st:?}"),
            }
        }
    };

    let t0 = Instant::now();
    let mut got: Vec<Option<Vec<u8>>> = vec![None; refs.len()];
    let res = c
        .fetch_many_with(mcrs::protocol::Retrieve::Get, &refs, |i, d, _, _| {
            got[i] = Some(d.to_vec())
        })
        .unwrap();
    let took = t0.elapsed();
    assert!(
        took < timeout + Duration::from_millis(150),
        "blocking took {took:?}"
    );
    check("blocking", &res.status, &res.errors, &|i| got[i].clone());
    // the whole-call API keeps its meaning: a failed server fails it
    assert!(c.get_many(&refs).is_err());

    // the event loop, on fresh connections of its own
    let mut lp = EventLoop::new(&c).unwrap();
    let out: Rc<RefCell<Option<Outcome>>> = Rc::default();
    let o2 = out.clone();
    let t0 = Instant::now();
    lp.submit_with(
        &Request::RetrieveMany {
            cmd: mcrs::protocol::Retrieve::Get,
            keys: refs.clone(),
        },
        move |o| *o2.borrow_mut() = Some(o),
    )
    .unwrap();
    while out.borrow().is_none() && t0.elapsed() < timeout * 5 {
        lp.wait(Duration::from_millis(20)).unwrap();
    }
    let took = t0.elapsed();
    assert!(
        took < timeout + Duration::from_millis(150),
        "loop took {took:?}"
    );
    match out.borrow_mut().take() {
        Some(Outcome::Values(Ok(vs))) => {
            let r = vs.results();
            check("loop", &r.status, &r.errors, &|i| {
                vs.get(i).map(|v| v.data().to_vec())
            });
        }
        other => panic!("loop: {other:?}"),
    }
    servers[1].resume();
}
