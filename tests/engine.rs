//! The event-loop engine against real memcached servers: pipelining,
//! reply matching, timeouts, failures, cancellation, cross-thread submission.

mod common;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use common::{FakePeer, Memcached};
use mcrs::engine::EventLoop;
use mcrs::protocol::{Retrieve, StoreCmd};
use mcrs::request::{Ack, Counter, Outcome, Request};
use mcrs::value::{KeyStatus, Summary};
use mcrs::{Client, ClientBuilder, Error};

fn client(addrs: &[String], timeout_ms: u64) -> Client {
    let mut b = ClientBuilder::new();
    for a in addrs {
        b.add_server(a).unwrap();
    }
    b.timeout(Duration::from_millis(timeout_ms)).unwrap();
    b.connect_timeout(Duration::from_millis(timeout_ms))
        .unwrap();
    b.retry_timeout(Duration::from_millis(200));
    b.build().unwrap()
}

type Log = Rc<RefCell<Vec<(usize, Outcome)>>>;

/// Submits `req` tagged `tag`; its outcome lands in `log`.
fn submit(lp: &mut EventLoop, log: &Log, tag: usize, req: &Request<'_>) {
    let log = log.clone();
    lp.submit_with(req, move |o| log.borrow_mut().push((tag, o)))
        .expect("submit");
}

/// Runs the loop until `n` outcomes are in (or `max` passes).
fn drive(lp: &mut EventLoop, log: &Log, n: usize, max: Duration) {
    let end = Instant::now() + max;
    while log.borrow().len() < n && Instant::now() < end {
        lp.wait(Duration::from_millis(50)).expect("run");
    }
}

fn get(key: &[u8]) -> Request<'_> {
    Request::Retrieve {
        cmd: Retrieve::Get,
        key,
    }
}

fn set<'a>(key: &'a [u8], value: &'a [u8], noreply: Option<bool>) -> Request<'a> {
    Request::Store {
        cmd: StoreCmd::Set,
        key,
        value,
        flags: 5,
        exptime: 0,
        noreply,
    }
}

fn value_of(o: &Outcome) -> Option<Vec<u8>> {
    match o {
        Outcome::Value(Ok(v)) => v.as_ref().map(|v| v.data().to_vec()),
        other => panic!("not a value: {other:?}"),
    }
}

#[test]
fn commands_through_the_loop() {
    let mc = Memcached::start();
    let c = client(&[mc.addr()], 1000);
    let mut lp = EventLoop::new(&c).unwrap();
    let log: Log = Rc::default();
    submit(&mut lp, &log, 0, &set(b"a", b"alpha", Some(false)));
    submit(&mut lp, &log, 1, &get(b"a"));
    submit(&mut lp, &log, 2, &get(b"missing"));
    submit(
        &mut lp,
        &log,
        3,
        &Request::Store {
            cmd: StoreCmd::Add,
            key: b"a",
            value: b"x",
            flags: 0,
            exptime: 0,
            noreply: Some(false),
        },
    );
    submit(&mut lp, &log, 4, &set(b"n", b"41", None));
    submit(
        &mut lp,
        &log,
        5,
        &Request::Arith {
            incr: true,
            key: b"n",
            delta: 1,
            noreply: None,
        },
    );
    submit(
        &mut lp,
        &log,
        6,
        &Request::Retrieve {
            cmd: Retrieve::Gets,
            key: b"a",
        },
    );
    submit(
        &mut lp,
        &log,
        7,
        &Request::Delete {
            key: b"nope",
            noreply: Some(false),
        },
    );
    submit(&mut lp, &log, 8, &Request::Version);
    submit(&mut lp, &log, 9, &Request::Stats { args: "" });
    drive(&mut lp, &log, 10, Duration::from_secs(3));
    let mut log = log.take();
    log.sort_by_key(|(t, _)| *t);
    assert_eq!(log.len(), 10, "{log:?}");
    assert!(matches!(log[0].1, Outcome::Ack(Ok(Ack::Done))));
    assert_eq!(value_of(&log[1].1).as_deref(), Some(&b"alpha"[..]));
    assert_eq!(value_of(&log[2].1), None);
    assert!(matches!(log[3].1, Outcome::Ack(Ok(Ack::NotStored))));
    assert!(matches!(log[4].1, Outcome::Ack(Ok(Ack::Done))));
    assert!(matches!(log[5].1, Outcome::Counter(Ok(Counter::Value(42)))));
    let Outcome::Value(Ok(Some(v))) = &log[6].1 else {
        panic!("{:?}", log[6].1)
    };
    assert!(v.cas() > 0 && v.flags() == 5 && v.data() == b"alpha");
    let cas = v.cas();
    assert!(matches!(log[7].1, Outcome::Ack(Ok(Ack::NotFound))));
    assert!(matches!(&log[8].1, Outcome::Version(Ok(v)) if v.starts_with("1.")));
    assert!(matches!(&log[9].1, Outcome::Stats(Ok(s)) if s.iter().any(|(_, n, _)| n == "pid")));
    // cas with the unique just read, then with a stale one
    let log: Log = Rc::default();
    for (tag, unique) in [(0, cas), (1, cas)] {
        submit(
            &mut lp,
            &log,
            tag,
            &Request::Cas {
                key: b"a",
                value: b"beta",
                flags: 0,
                exptime: 0,
                cas: unique,
                noreply: None,
            },
        );
    }
    drive(&mut lp, &log, 2, Duration::from_secs(3));
    let log = log.take();
    assert!(matches!(log[0].1, Outcome::Ack(Ok(Ack::Done))));
    assert!(matches!(log[1].1, Outcome::Ack(Ok(Ack::Exists))));
    assert_eq!(c.get(b"a").unwrap().unwrap().data, b"beta");
}

#[test]
fn a_hundred_gets_in_flight_all_right() {
    let mc = Memcached::start();
    let c = client(&[mc.addr()], 1000);
    for i in 0..100 {
        if i % 3 != 0 {
            c.set(
                format!("k{i}").as_bytes(),
                format!("value-{i}").as_bytes(),
                0,
                0,
                Some(false),
            )
            .unwrap();
        }
    }
    let mut lp = EventLoop::new(&c).unwrap();
    let log: Log = Rc::default();
    for round in 0..20 {
        let keys: Vec<Vec<u8>> = (0..100).map(|i| format!("k{i}").into_bytes()).collect();
        for (i, k) in keys.iter().enumerate() {
            submit(&mut lp, &log, i, &get(k));
        }
        drive(&mut lp, &log, 100, Duration::from_secs(3));
        let got = log.take();
        assert_eq!(got.len(), 100, "round {round}");
        for (i, o) in got {
            let want = (i % 3 != 0).then(|| format!("value-{i}").into_bytes());
            assert_eq!(value_of(&o), want, "key {i} round {round}");
        }
    }
    assert_eq!(lp.pending(), 0);
}

#[test]
fn noreply_errors_never_shift_replies() {
    let mc = Memcached::start_with(&["-I", "1m"]);
    let c = client(&[mc.addr()], 1000);
    let mut lp = EventLoop::new(&c).unwrap();
    let log: Log = Rc::default();
    let big = vec![b'x'; 2 << 20];
    submit(&mut lp, &log, 0, &set(b"k", b"small", Some(true)));
    // too large: the server answers SERVER_ERROR even with noreply
    submit(&mut lp, &log, 1, &set(b"big", &big, Some(true)));
    submit(&mut lp, &log, 2, &get(b"k"));
    submit(&mut lp, &log, 3, &set(b"big", &big, Some(false)));
    submit(&mut lp, &log, 4, &get(b"k"));
    drive(&mut lp, &log, 5, Duration::from_secs(3));
    let mut log = log.take();
    log.sort_by_key(|(t, _)| *t);
    assert!(matches!(log[0].1, Outcome::Ack(Ok(Ack::Done))));
    assert!(
        matches!(log[1].1, Outcome::Ack(Ok(Ack::Done))),
        "noreply: sent"
    );
    assert_eq!(value_of(&log[2].1).as_deref(), Some(&b"small"[..]));
    assert!(
        matches!(log[3].1, Outcome::Ack(Err(Error::Server(_)))),
        "{:?}",
        log[3].1
    );
    assert_eq!(value_of(&log[4].1).as_deref(), Some(&b"small"[..]));
}

#[test]
fn invalid_requests_are_refused_at_submit() {
    let c = client(&["127.0.0.1:1".into()], 200);
    let mut lp = EventLoop::new(&c).unwrap();
    let called = Rc::new(RefCell::new(0));
    let n = called.clone();
    let r = lp.submit_with(&get(b"bad key"), move |_| *n.borrow_mut() += 1);
    assert!(matches!(r, Err(Error::InvalidKey(_))));
    let n = called.clone();
    let r = lp.submit_with(
        &Request::Store {
            cmd: StoreCmd::Set,
            key: b"k",
            value: b"v",
            flags: 0,
            exptime: u32::MAX,
            noreply: None,
        },
        move |_| *n.borrow_mut() += 1,
    );
    assert!(matches!(r, Err(Error::InvalidArgument(_))));
    for _ in 0..3 {
        lp.run().unwrap();
    }
    assert_eq!(*called.borrow(), 0);
    assert_eq!(lp.pending(), 0);
}

#[test]
fn connect_failure_completes_every_request() {
    let c = client(&["127.0.0.1:1".into()], 300);
    let mut lp = EventLoop::new(&c).unwrap();
    let log: Log = Rc::default();
    for i in 0..10 {
        submit(&mut lp, &log, i, &get(b"k"));
    }
    drive(&mut lp, &log, 10, Duration::from_secs(2));
    let log = log.take();
    assert_eq!(log.len(), 10);
    for (_, o) in log {
        assert!(
            matches!(o, Outcome::Value(Err(Error::ConnectFailed { .. }))),
            "{o:?}"
        );
    }
}

#[test]
fn a_stalled_server_times_out_and_recovers() {
    let mc = Memcached::start();
    let c = client(&[mc.addr()], 300);
    c.set(b"k", b"v", 0, 0, Some(false)).unwrap();
    let mut lp = EventLoop::new(&c).unwrap();
    let log: Log = Rc::default();
    submit(&mut lp, &log, 0, &get(b"k"));
    drive(&mut lp, &log, 1, Duration::from_secs(2));
    assert_eq!(value_of(&log.take()[0].1).as_deref(), Some(&b"v"[..]));
    mc.pause();
    let t0 = Instant::now();
    for i in 0..20 {
        submit(&mut lp, &log, i, &get(b"k"));
    }
    drive(&mut lp, &log, 20, Duration::from_secs(3));
    let took = t0.elapsed();
    let got = log.take();
    assert_eq!(got.len(), 20);
    for (_, o) in &got {
        assert!(matches!(o, Outcome::Value(Err(Error::Timeout(_)))), "{o:?}");
    }
    assert!(took < Duration::from_millis(300 + 100), "took {took:?}");
    mc.resume();
    submit(&mut lp, &log, 0, &get(b"k"));
    drive(&mut lp, &log, 1, Duration::from_secs(2));
    assert_eq!(value_of(&log.take()[0].1).as_deref(), Some(&b"v"[..]));
}

#[test]
fn reads_on_a_stale_connection_are_sent_again() {
    let mut mc = Memcached::start();
    let c = client(&[mc.addr()], 1000);
    let mut lp = EventLoop::new(&c).unwrap();
    let log: Log = Rc::default();
    submit(&mut lp, &log, 0, &set(b"k", b"v", Some(false)));
    drive(&mut lp, &log, 1, Duration::from_secs(2));
    log.take();
    // the server restarts while the loop is not looking
    mc.restart();
    c.set(b"k", b"v2", 0, 0, Some(false)).unwrap();
    submit(&mut lp, &log, 0, &get(b"k"));
    drive(&mut lp, &log, 1, Duration::from_secs(2));
    assert_eq!(value_of(&log.take()[0].1).as_deref(), Some(&b"v2"[..]));
}

#[test]
fn many_key_reads_return_what_the_live_servers_have() {
    let mut servers: Vec<Memcached> = (0..3).map(|_| Memcached::start()).collect();
    let addrs: Vec<String> = servers.iter().map(|m| m.addr()).collect();
    let c = client(&addrs, 300);
    let keys: Vec<Vec<u8>> = (0..60).map(|i| format!("key:{i}").into_bytes()).collect();
    for k in &keys {
        c.set(k, k, 0, 0, Some(false)).unwrap();
    }
    servers[1].kill();
    let mut lp = EventLoop::new(&c).unwrap();
    let log: Log = Rc::default();
    let refs: Vec<&[u8]> = keys.iter().map(|k| &k[..]).collect();
    let t0 = Instant::now();
    submit(
        &mut lp,
        &log,
        0,
        &Request::RetrieveMany {
            cmd: Retrieve::Get,
            keys: refs.clone(),
        },
    );
    drive(&mut lp, &log, 1, Duration::from_secs(2));
    assert!(t0.elapsed() < Duration::from_millis(400));
    let log = log.take();
    let Outcome::Values(Ok(vs)) = &log[0].1 else {
        panic!("{:?}", log[0].1)
    };
    assert!(matches!(vs.results().summary(), Summary::Partial));
    let (mut hits, mut failed) = (0, 0);
    for (i, k) in keys.iter().enumerate() {
        match vs.results().status[i] {
            KeyStatus::Ok => {
                hits += 1;
                assert_eq!(vs.get(i).unwrap().data(), &k[..]);
            }
            KeyStatus::Failed(_) => {
                failed += 1;
                let e = vs.results().error(i);
                assert!(
                    matches!(e, Some(Error::ConnectFailed { .. } | Error::ServerDown(_))),
                    "{e:?}"
                );
            }
            s => panic!("key {i}: {s:?}"),
        }
    }
    assert_eq!(hits + failed, 60);
    assert!(hits >= 20 && failed >= 5, "hits {hits} failed {failed}");
}

#[test]
fn freeing_the_loop_cancels_each_request_once() {
    let peer = FakePeer::start(|_, mut s| common::drain(&mut s));
    let c = client(&[peer.addr()], 1000);
    let mut lp = EventLoop::new(&c).unwrap();
    let log: Log = Rc::default();
    for i in 0..50 {
        submit(&mut lp, &log, i, &get(b"k"));
    }
    lp.run().unwrap();
    drop(lp);
    let log = log.take();
    assert_eq!(log.len(), 50);
    let mut seen = [false; 50];
    for (t, o) in log {
        assert!(!seen[t], "request {t} completed twice");
        seen[t] = true;
        assert!(
            matches!(o, Outcome::Value(Err(Error::Cancelled(_)))),
            "{o:?}"
        );
    }
}

#[test]
fn other_threads_submit_through_a_submitter() {
    let mc = Memcached::start();
    let c = client(&[mc.addr()], 1000);
    c.set(b"shared", b"yes", 0, 0, Some(false)).unwrap();
    let mut lp = EventLoop::new(&c).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let s = lp.submitter();
            let tx = tx.clone();
            std::thread::spawn(move || {
                for i in 0..100 {
                    let tx = tx.clone();
                    s.submit(&get(b"shared"), move |o| {
                        tx.send((t, i, value_of(&o))).unwrap();
                    })
                    .unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let mut got = 0;
    let end = Instant::now() + Duration::from_secs(5);
    while got < 400 && Instant::now() < end {
        lp.wait(Duration::from_millis(50)).unwrap();
        while let Ok((_, _, v)) = rx.try_recv() {
            assert_eq!(v.as_deref(), Some(&b"yes"[..]));
            got += 1;
        }
    }
    assert_eq!(got, 400);
}

#[test]
fn names_unix_sockets_and_many_key_writes() {
    let mc = Memcached::start();
    let by_name = format!("localhost:{}", mc.port);
    let ux = Memcached::start_unix();
    for addr in [by_name, ux.addr()] {
        let c = client(std::slice::from_ref(&addr), 1000);
        let mut lp = EventLoop::new(&c).unwrap();
        let log: Log = Rc::default();
        submit(
            &mut lp,
            &log,
            0,
            &Request::SetMany {
                items: vec![(b"m1", b"one", 0), (b"m2", b"two", 0)],
                exptime: 0,
                noreply: Some(false),
            },
        );
        submit(
            &mut lp,
            &log,
            1,
            &Request::RetrieveMany {
                cmd: Retrieve::Gets,
                keys: vec![b"m1", b"zz", b"m2"],
            },
        );
        submit(
            &mut lp,
            &log,
            2,
            &Request::DeleteMany {
                keys: vec![b"m1", b"zz"],
                noreply: Some(false),
            },
        );
        submit(
            &mut lp,
            &log,
            3,
            &Request::FlushAll {
                delay: 0,
                noreply: None,
            },
        );
        drive(&mut lp, &log, 4, Duration::from_secs(3));
        let mut log = log.take();
        log.sort_by_key(|(t, _)| *t);
        assert_eq!(log.len(), 4, "{addr}: {log:?}");
        let Outcome::Keys(Ok(k)) = &log[0].1 else {
            panic!("{:?}", log[0].1)
        };
        assert_eq!(k.status, vec![KeyStatus::Ok, KeyStatus::Ok]);
        let Outcome::Values(Ok(vs)) = &log[1].1 else {
            panic!("{:?}", log[1].1)
        };
        assert_eq!(vs.get(0).unwrap().data(), b"one");
        assert!(vs.get(0).unwrap().cas() > 0);
        assert!(vs.get(1).is_none());
        assert_eq!(vs.get(2).unwrap().data(), b"two");
        let Outcome::Keys(Ok(k)) = &log[2].1 else {
            panic!("{:?}", log[2].1)
        };
        assert_eq!(k.status, vec![KeyStatus::Ok, KeyStatus::NotFound]);
        assert!(matches!(log[3].1, Outcome::Ack(Ok(Ack::Done))));
    }
}
