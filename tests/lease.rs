//! Meta get, leases and stale-while-revalidate against real memcached
//! (1.6.x speaks the meta protocol).

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use common::{read_line, send, FakePeer, Memcached};
use mcrs::{Client, ClientBuilder, Error, LeaseState};

fn builder(m: &Memcached) -> ClientBuilder {
    let mut b = ClientBuilder::new();
    b.add_server(&m.addr()).unwrap();
    b
}

fn client(m: &Memcached) -> Client {
    builder(m).build().unwrap()
}

#[test]
fn meta_get_tells_ttl_last_access_and_hit_before() {
    let m = Memcached::start();
    let c = client(&m);
    assert_eq!(c.meta_get(b"nothing").unwrap(), None);
    c.set(b"k", b"value", 42, 100, Some(false)).unwrap();
    let v = c.meta_get(b"k").unwrap().unwrap();
    assert_eq!((&v.data[..], v.flags), (&b"value"[..], 42));
    assert!((98..=100).contains(&v.ttl), "ttl {}", v.ttl);
    assert_eq!(v.hit_before, Some(false));
    assert!(v.last_access.is_some());
    assert!(!v.stale);
    let again = c.meta_get(b"k").unwrap().unwrap();
    assert_eq!(again.hit_before, Some(true));
    // the cas is the one classic gets reports
    assert_eq!(c.gets(b"k").unwrap().unwrap().cas, Some(v.cas));
    c.set(b"forever", b"x", 0, 0, Some(false)).unwrap();
    assert_eq!(c.meta_get(b"forever").unwrap().unwrap().ttl, -1);
}

#[test]
fn sixteen_callers_on_a_cold_key_one_wins_the_rest_wait() {
    let m = Memcached::start();
    let c = Arc::new(client(&m));
    let n = 16;
    let barrier = Arc::new(Barrier::new(n));
    let states: Vec<_> = (0..n)
        .map(|_| {
            let (c, barrier) = (c.clone(), barrier.clone());
            thread::spawn(move || {
                barrier.wait();
                c.lease_get(b"cold", 30).unwrap()
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    let won: Vec<_> = states
        .iter()
        .filter(|l| l.state == LeaseState::Won)
        .collect();
    assert_eq!(won.len(), 1, "{states:?}");
    assert!(won[0].token != 0 && won[0].value.is_none());
    assert_eq!(
        states
            .iter()
            .filter(|l| l.state == LeaseState::Wait)
            .count(),
        n - 1
    );
    assert!(states
        .iter()
        .all(|l| l.state == LeaseState::Won || (l.token == 0 && l.value.is_none())));
    // the winner's value is a fresh hit for everyone
    assert!(c
        .lease_set(b"cold", b"computed", 7, 60, won[0].token)
        .unwrap());
    let hit = c.lease_get(b"cold", 30).unwrap();
    assert_eq!(hit.state, LeaseState::Hit);
    let v = hit.value.unwrap();
    assert_eq!((&v.data[..], v.flags), (&b"computed"[..], 7));
    assert_eq!(c.get(b"cold").unwrap().unwrap().data, b"computed");
}

/// Each of `n` threads reads the cold key `key` at once and computes it on a
/// miss (50 ms), either under a lease or with plain get + set. Returns the
/// backend calls made and the values the threads ended with.
fn herd(c: &Arc<Client>, n: usize, key: &'static [u8], lease: bool) -> (usize, Vec<Vec<u8>>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(Barrier::new(n));
    let handles: Vec<_> = (0..n)
        .map(|_| {
            let (c, barrier, calls) = (c.clone(), barrier.clone(), calls.clone());
            thread::spawn(move || {
                let compute = || {
                    calls.fetch_add(1, Ordering::SeqCst);
                    thread::sleep(Duration::from_millis(50));
                    b"expensive".to_vec()
                };
                barrier.wait();
                if !lease {
                    if let Some(v) = c.get(key).unwrap() {
                        return v.data;
                    }
                    let v = compute();
                    c.set(key, &v, 0, 60, Some(false)).unwrap();
                    return v;
                }
                let l = c
                    .lease_get_or_wait(key, 10, Duration::from_secs(2))
                    .unwrap();
                match l.state {
                    LeaseState::Hit | LeaseState::Stale => l.value.unwrap().data,
                    LeaseState::Won => {
                        let v = compute();
                        assert!(c.lease_set(key, &v, 0, 60, l.token).unwrap());
                        v
                    }
                    LeaseState::Wait => panic!("still waiting after 2 s"),
                }
            })
        })
        .collect();
    let values = handles.into_iter().map(|h| h.join().unwrap()).collect();
    (calls.load(Ordering::SeqCst), values)
}

#[test]
fn stampede_makes_one_backend_call_under_a_lease() {
    let m = Memcached::start();
    let c = Arc::new(client(&m));
    let n = 32;
    let (with_lease, values) = herd(&c, n, b"herd:lease", true);
    assert_eq!(with_lease, 1, "backend calls under a lease");
    assert!(values.iter().all(|v| v == b"expensive"));
    let (without, values) = herd(&c, n, b"herd:plain", false);
    assert!(values.iter().all(|v| v == b"expensive"));
    eprintln!("{n} callers on one cold key: {with_lease} backend call(s) with a lease, {without} with get+set");
    assert!(without > 1, "plain get+set made {without} backend calls");
}

#[test]
fn after_invalidate_one_wins_with_the_stale_value_the_rest_get_it_stale() {
    let m = Memcached::start();
    let c = Arc::new(client(&m));
    c.set(b"item", b"old", 3, 300, Some(false)).unwrap();
    assert!(c.invalidate(b"item", 30).unwrap());
    assert!(!c.invalidate(b"absent", 30).unwrap());
    let n = 16;
    let barrier = Arc::new(Barrier::new(n));
    let leases: Vec<_> = (0..n)
        .map(|_| {
            let (c, barrier) = (c.clone(), barrier.clone());
            thread::spawn(move || {
                barrier.wait();
                c.lease_get(b"item", 30).unwrap()
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    let won: Vec<_> = leases
        .iter()
        .filter(|l| l.state == LeaseState::Won)
        .collect();
    assert_eq!(won.len(), 1, "{leases:?}");
    assert_eq!(
        leases
            .iter()
            .filter(|l| l.state == LeaseState::Stale)
            .count(),
        n - 1
    );
    for l in &leases {
        let v = l.value.as_ref().expect("the stale value");
        assert_eq!((&v.data[..], v.flags, v.stale), (&b"old"[..], 3, true));
    }
    // the stale TTL was applied
    assert!(won[0].value.as_ref().unwrap().ttl <= 30);
    assert!(c.lease_set(b"item", b"new", 4, 300, won[0].token).unwrap());
    let fresh = c.lease_get(b"item", 30).unwrap();
    assert_eq!(fresh.state, LeaseState::Hit);
    let v = fresh.value.unwrap();
    assert_eq!((&v.data[..], v.stale), (&b"new"[..], false));
}

#[test]
fn a_lease_nobody_fulfils_expires_after_lease_ttl() {
    let m = Memcached::start();
    let c = client(&m);
    let first = c.lease_get(b"abandoned", 2).unwrap();
    assert_eq!(first.state, LeaseState::Won);
    assert_eq!(
        c.lease_get(b"abandoned", 2).unwrap().state,
        LeaseState::Wait
    );
    // memcached's clock ticks in whole seconds
    thread::sleep(Duration::from_millis(3200));
    let next = c.lease_get(b"abandoned", 2).unwrap();
    assert_eq!(next.state, LeaseState::Won);
    assert_ne!(next.token, first.token);
    // the first holder's lease is gone
    assert!(!c
        .lease_set(b"abandoned", b"late", 0, 60, first.token)
        .unwrap());
    assert!(c.lease_set(b"abandoned", b"v", 0, 60, next.token).unwrap());
}

#[test]
fn a_recompute_that_lost_a_race_never_comes_back_as_fresh() {
    let m = Memcached::start();
    let c = client(&m);
    c.set(b"race", b"v1", 0, 300, Some(false)).unwrap();
    c.invalidate(b"race", 60).unwrap();
    let a = c.lease_get(b"race", 30).unwrap();
    assert_eq!(a.state, LeaseState::Won);
    // the source changes again while A recomputes
    c.invalidate(b"race", 60).unwrap();
    let b = c.lease_get(b"race", 30).unwrap();
    assert_eq!(
        b.state,
        LeaseState::Won,
        "the new invalidation hands out a new lease"
    );
    assert!(!c.lease_set(b"race", b"from-a", 0, 300, a.token).unwrap());
    let now = c.lease_get(b"race", 30).unwrap();
    assert_eq!(now.state, LeaseState::Stale);
    assert_eq!(now.value.unwrap().data, b"v1");
    assert_ne!(c.get(b"race").unwrap().unwrap().data, b"from-a");
    assert!(c.lease_set(b"race", b"from-b", 0, 300, b.token).unwrap());
    let fresh = c.lease_get(b"race", 30).unwrap();
    assert_eq!(
        (fresh.state, fresh.value.unwrap().data),
        (LeaseState::Hit, b"from-b".to_vec())
    );
    // a token of an older lease cannot overwrite the fresh value either
    assert!(!c.lease_set(b"race", b"from-a", 0, 300, a.token).unwrap());
    assert_eq!(c.get(b"race").unwrap().unwrap().data, b"from-b");
}

#[test]
fn early_recache_makes_one_caller_won_before_expiry() {
    let m = Memcached::start();
    let c = builder(&m).recache_threshold(30).build().unwrap();
    c.set(b"soon", b"v", 0, 10, Some(false)).unwrap();
    c.set(b"later", b"v", 0, 100, Some(false)).unwrap();
    let first = c.lease_get(b"soon", 30).unwrap();
    assert_eq!(first.state, LeaseState::Won);
    assert_eq!(first.value.as_ref().unwrap().data, b"v");
    let second = c.lease_get(b"soon", 30).unwrap();
    assert_eq!(second.state, LeaseState::Hit);
    assert_eq!(second.value.unwrap().data, b"v");
    assert_eq!(c.lease_get(b"later", 30).unwrap().state, LeaseState::Hit);
    assert!(c.lease_set(b"soon", b"v2", 0, 100, first.token).unwrap());
    assert_eq!(c.lease_get(b"soon", 30).unwrap().state, LeaseState::Hit);
}

#[test]
fn base64_keys_round_trip_and_match_classic_keys() {
    let m = Memcached::start();
    let c = builder(&m).base64_keys(true).build().unwrap();
    let keys: [&[u8]; 4] = [
        b"\x00\x01\x02\xff",
        b"with space",
        "café".as_bytes(),
        &[0xab; 186],
    ];
    for (i, k) in keys.iter().enumerate() {
        let v = format!("value {i}");
        assert!(c.lease_set(k, v.as_bytes(), i as u32, 0, 0).unwrap());
        let got = c.meta_get(k).unwrap().unwrap();
        assert_eq!((got.data, got.flags), (v.into_bytes(), i as u32));
        assert_eq!(c.lease_get(k, 30).unwrap().state, LeaseState::Hit);
        assert!(c.invalidate(k, 30).unwrap());
        assert_eq!(c.lease_get(k, 30).unwrap().state, LeaseState::Won);
    }
    // a base64 key names the same item as the text key of the same bytes
    let classic = builder(&m).allow_unicode_keys(true).build().unwrap();
    c.lease_set("café".as_bytes(), b"same", 0, 0, 0).unwrap();
    assert_eq!(
        classic.get("café".as_bytes()).unwrap().unwrap().data,
        b"same"
    );
    assert!(matches!(
        c.meta_get(&[0xab; 187]),
        Err(Error::InvalidKey(_))
    ));
    assert!(matches!(c.meta_get(b""), Err(Error::InvalidKey(_))));
    // without the option a binary key is refused before any I/O
    assert!(matches!(
        client(&m).meta_get(b"\x00"),
        Err(Error::InvalidKey(_))
    ));
}

#[test]
fn classic_and_meta_share_items() {
    let m = Memcached::start();
    let c = builder(&m).key_prefix(b"app:").unwrap().build().unwrap();
    c.set(b"shared", b"classic", 9, 0, Some(false)).unwrap();
    let l = c.lease_get(b"shared", 30).unwrap();
    assert_eq!(l.state, LeaseState::Hit);
    let v = l.value.unwrap();
    assert_eq!((&v.data[..], v.flags), (&b"classic"[..], 9));
    assert_eq!(c.gets(b"shared").unwrap().unwrap().cas, Some(v.cas));
    // meta writes are read back by classic reads (prefix applied both ways)
    assert!(c.lease_set(b"shared", b"meta", 1, 0, 0).unwrap());
    let got = c.get(b"shared").unwrap().unwrap();
    assert_eq!((&got.data[..], got.flags), (&b"meta"[..], 1));
    let raw = client(&m);
    assert_eq!(raw.get(b"app:shared").unwrap().unwrap().data, b"meta");
    // a lease's token is a cas: classic cas and lease_set agree
    let w = c.lease_get(b"fresh", 30).unwrap();
    assert_eq!(w.state, LeaseState::Won);
    c.set(b"fresh", b"someone else", 0, 0, Some(false)).unwrap();
    assert!(!c.lease_set(b"fresh", b"late", 0, 0, w.token).unwrap());
    // classic delete of an invalidated item makes the next lease get a miss
    c.invalidate(b"shared", 30).unwrap();
    c.delete(b"shared", Some(false)).unwrap();
    let after = c.lease_get(b"shared", 30).unwrap();
    assert_eq!((after.state, after.value), (LeaseState::Won, None));
    // noreply classic commands before a meta command are fenced off
    c.set(b"nr", b"1", 0, 0, Some(true)).unwrap();
    assert_eq!(c.meta_get(b"nr").unwrap().unwrap().data, b"1");
}

#[test]
fn ignore_exc_turns_a_failed_lease_get_into_a_lease_free_win() {
    let c = ClientBuilder::new()
        .add_server("127.0.0.1:1")
        .unwrap()
        .ignore_exc(true)
        .build()
        .unwrap();
    let l = c.lease_get(b"k", 30).unwrap();
    assert_eq!((l.state, l.token, l.value), (LeaseState::Won, 0, None));
    assert_eq!(c.meta_get(b"k").unwrap(), None);
}

#[test]
fn a_server_without_meta_commands_is_a_clear_error() {
    let peer = FakePeer::start(|_, mut s| {
        while let Some(line) = read_line(&mut s) {
            if line.starts_with("mg ") {
                send(&mut s, b"ERROR\r\n");
            } else {
                send(&mut s, b"garbage\r\n");
            }
        }
    });
    let c = ClientBuilder::new()
        .add_server(&peer.addr())
        .unwrap()
        .build()
        .unwrap();
    assert!(matches!(c.lease_get(b"k", 30), Err(Error::UnknownCommand)));
    assert!(matches!(c.meta_get(b"k"), Err(Error::UnknownCommand)));
}

// ---- the same on the event loop -----------------------------------------------

mod on_the_loop {
    use super::*;
    use std::cell::RefCell;
    use std::rc::Rc;
    use std::time::Instant;

    use mcrs::engine::EventLoop;
    use mcrs::lease::{Lease, MetaOp};
    use mcrs::request::{Ack, Outcome, Request};
    use mcrs::value::OwnedValue;

    type Log = Rc<RefCell<Vec<(usize, Outcome)>>>;

    fn submit(lp: &mut EventLoop, log: &Log, tag: usize, req: &Request<'_>) {
        let log = log.clone();
        lp.submit_with(req, move |o| log.borrow_mut().push((tag, o)))
            .expect("submit");
    }

    fn drive(lp: &mut EventLoop, log: &Log, n: usize) {
        let end = Instant::now() + Duration::from_secs(5);
        while log.borrow().len() < n && Instant::now() < end {
            lp.wait(Duration::from_millis(50)).expect("run");
        }
        assert_eq!(log.borrow().len(), n, "outcomes in time");
    }

    fn lease_get(key: &[u8], lease_ttl: u32) -> Request<'_> {
        Request::Meta {
            op: MetaOp::LeaseGet { lease_ttl },
            key,
            value: b"",
        }
    }

    fn lease_set<'a>(key: &'a [u8], value: &'a [u8], token: u64) -> Request<'a> {
        Request::Meta {
            op: MetaOp::LeaseSet {
                flags: 9,
                exptime: 300,
                token,
            },
            key,
            value,
        }
    }

    fn invalidate(key: &[u8], stale_ttl: u32) -> Request<'_> {
        Request::Meta {
            op: MetaOp::Invalidate { stale_ttl },
            key,
            value: b"",
        }
    }

    /// Runs one request to completion.
    fn one(lp: &mut EventLoop, req: &Request<'_>) -> Outcome {
        let log: Log = Rc::default();
        submit(lp, &log, 0, req);
        drive(lp, &log, 1);
        let o = log.borrow_mut().pop().unwrap().1;
        o
    }

    fn lease_of(o: Outcome) -> Lease<OwnedValue> {
        match o {
            Outcome::Lease(Ok(l)) => l,
            other => panic!("not a lease: {other:?}"),
        }
    }

    fn ack_of(o: Outcome) -> Ack {
        match o {
            Outcome::Ack(Ok(a)) => a,
            other => panic!("not an ack: {other:?}"),
        }
    }

    /// `n` lease gets of `key` submitted in one turn (one write), half of
    /// them from another thread.
    fn many_lease_gets(lp: &mut EventLoop, n: usize, key: &'static [u8]) -> Vec<Lease<OwnedValue>> {
        let log: Log = Rc::default();
        for i in 0..n / 2 {
            submit(lp, &log, i, &lease_get(key, 30));
        }
        let sub = lp.submitter();
        let remote: Arc<std::sync::Mutex<Vec<Outcome>>> = Arc::default();
        let r2 = remote.clone();
        thread::spawn(move || {
            for _ in n / 2..n {
                let r = r2.clone();
                sub.submit(&lease_get(key, 30), move |o| r.lock().unwrap().push(o))
                    .unwrap();
            }
        })
        .join()
        .unwrap();
        let end = Instant::now() + Duration::from_secs(5);
        while log.borrow().len() + remote.lock().unwrap().len() < n && Instant::now() < end {
            lp.wait(Duration::from_millis(50)).unwrap();
        }
        let mut all: Vec<Outcome> = log.borrow_mut().drain(..).map(|(_, o)| o).collect();
        all.extend(remote.lock().unwrap().drain(..));
        assert_eq!(all.len(), n);
        all.into_iter().map(lease_of).collect()
    }

    #[test]
    fn sixteen_loop_callers_on_a_cold_key_one_wins_the_rest_wait() {
        let m = Memcached::start();
        let c = client(&m);
        let mut lp = EventLoop::new(&c).unwrap();
        let leases = many_lease_gets(&mut lp, 16, b"loop:cold");
        let won: Vec<_> = leases
            .iter()
            .filter(|l| l.state == LeaseState::Won)
            .collect();
        assert_eq!(won.len(), 1, "{leases:?}");
        assert!(won[0].token != 0 && won[0].value.is_none());
        let wait = leases.iter().filter(|l| l.state == LeaseState::Wait);
        assert_eq!(wait.clone().count(), 15);
        assert!(wait.clone().all(|l| l.token == 0 && l.value.is_none()));
        let token = won[0].token;
        assert_eq!(
            ack_of(one(&mut lp, &lease_set(b"loop:cold", b"computed", token))),
            Ack::Done
        );
        let hit = lease_of(one(&mut lp, &lease_get(b"loop:cold", 30)));
        assert_eq!(hit.state, LeaseState::Hit);
        let v = hit.value.unwrap();
        assert_eq!((v.data(), v.flags()), (&b"computed"[..], 9));
        assert!((298..=300).contains(&v.ttl()), "ttl {}", v.ttl());
        // the blocking client sees the same item
        assert_eq!(c.get(b"loop:cold").unwrap().unwrap().data, b"computed");
    }

    #[test]
    fn loop_invalidate_one_wins_with_the_stale_value_the_rest_get_it_stale() {
        let m = Memcached::start();
        let c = client(&m);
        let mut lp = EventLoop::new(&c).unwrap();
        c.set(b"loop:item", b"old", 3, 300, Some(false)).unwrap();
        assert_eq!(
            ack_of(one(&mut lp, &invalidate(b"loop:item", 30))),
            Ack::Done
        );
        assert_eq!(
            ack_of(one(&mut lp, &invalidate(b"loop:absent", 30))),
            Ack::NotFound
        );
        let leases = many_lease_gets(&mut lp, 16, b"loop:item");
        let won: Vec<_> = leases
            .iter()
            .filter(|l| l.state == LeaseState::Won)
            .collect();
        assert_eq!(won.len(), 1, "{leases:?}");
        assert_eq!(
            leases
                .iter()
                .filter(|l| l.state == LeaseState::Stale)
                .count(),
            15
        );
        for l in &leases {
            let v = l.value.as_ref().expect("the stale value");
            assert_eq!((v.data(), v.flags()), (&b"old"[..], 3));
            assert!(v.ttl() <= 30);
        }
        let token = won[0].token;
        assert_eq!(
            ack_of(one(&mut lp, &lease_set(b"loop:item", b"new", token))),
            Ack::Done
        );
        let fresh = lease_of(one(&mut lp, &lease_get(b"loop:item", 30)));
        assert_eq!(
            (fresh.state, fresh.value.unwrap().data()),
            (LeaseState::Hit, &b"new"[..])
        );
    }

    #[test]
    fn a_loop_lease_nobody_fulfils_expires_after_lease_ttl() {
        let m = Memcached::start();
        let c = client(&m);
        let mut lp = EventLoop::new(&c).unwrap();
        let first = lease_of(one(&mut lp, &lease_get(b"loop:abandoned", 2)));
        assert_eq!(first.state, LeaseState::Won);
        let second = lease_of(one(&mut lp, &lease_get(b"loop:abandoned", 2)));
        assert_eq!(second.state, LeaseState::Wait);
        thread::sleep(Duration::from_millis(3200));
        let next = lease_of(one(&mut lp, &lease_get(b"loop:abandoned", 2)));
        assert_eq!(next.state, LeaseState::Won);
        assert_ne!(next.token, first.token);
        let late = lease_set(b"loop:abandoned", b"late", first.token);
        assert_eq!(ack_of(one(&mut lp, &late)), Ack::Exists);
        let on_time = lease_set(b"loop:abandoned", b"v", next.token);
        assert_eq!(ack_of(one(&mut lp, &on_time)), Ack::Done);
    }

    #[test]
    fn a_loop_recompute_that_lost_a_race_is_refused() {
        let m = Memcached::start();
        let c = client(&m);
        let mut lp = EventLoop::new(&c).unwrap();
        c.set(b"loop:race", b"v1", 0, 300, Some(false)).unwrap();
        one(&mut lp, &invalidate(b"loop:race", 60));
        let a = lease_of(one(&mut lp, &lease_get(b"loop:race", 30)));
        assert_eq!(a.state, LeaseState::Won);
        one(&mut lp, &invalidate(b"loop:race", 60));
        let b = lease_of(one(&mut lp, &lease_get(b"loop:race", 30)));
        assert_eq!(b.state, LeaseState::Won);
        assert_eq!(
            ack_of(one(&mut lp, &lease_set(b"loop:race", b"from-a", a.token))),
            Ack::Exists
        );
        let now = lease_of(one(&mut lp, &lease_get(b"loop:race", 30)));
        assert_eq!(
            (now.state, now.value.unwrap().data()),
            (LeaseState::Stale, &b"v1"[..])
        );
        assert_eq!(
            ack_of(one(&mut lp, &lease_set(b"loop:race", b"from-b", b.token))),
            Ack::Done
        );
        let got = Request::Meta {
            op: MetaOp::Get,
            key: b"loop:race",
            value: b"",
        };
        match one(&mut lp, &got) {
            Outcome::Value(Ok(Some(v))) => {
                assert_eq!(v.data(), b"from-b");
                assert_eq!(v.hit_before(), Some(false));
                assert!((298..=300).contains(&v.ttl()));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            one(
                &mut lp,
                &Request::Meta {
                    op: MetaOp::Get,
                    key: b"loop:none",
                    value: b""
                }
            ),
            Outcome::Value(Ok(None))
        ));
    }

    #[test]
    fn loop_meta_arguments_are_checked_at_submission() {
        let m = Memcached::start();
        let c = client(&m);
        let mut lp = EventLoop::new(&c).unwrap();
        let bad =
            |lp: &mut EventLoop, r: &Request<'_>| lp.submit_with(r, |_| panic!("ran")).unwrap_err();
        assert!(matches!(
            bad(&mut lp, &lease_get(b"k", 0)),
            Error::InvalidArgument(_)
        ));
        assert!(matches!(
            bad(&mut lp, &lease_get(b"a b", 5)),
            Error::InvalidKey(_)
        ));
        assert_eq!(lp.pending(), 0);
    }

    fn meta_get(key: &[u8]) -> Request<'_> {
        Request::Meta {
            op: MetaOp::Get,
            key,
            value: b"",
        }
    }

    #[test]
    fn loop_base64_keys_prefix_and_noreply_writes_before_meta() {
        let m = Memcached::start();
        let c = builder(&m)
            .base64_keys(true)
            .key_prefix(b"app:")
            .unwrap()
            .build()
            .unwrap();
        let mut lp = EventLoop::new(&c).unwrap();
        let k: &[u8] = b"\x00\x01 binary\xff";
        assert_eq!(ack_of(one(&mut lp, &lease_set(k, b"bin", 0))), Ack::Done);
        match one(&mut lp, &meta_get(k)) {
            Outcome::Value(Ok(Some(v))) => assert_eq!((v.data(), v.flags()), (&b"bin"[..], 9)),
            other => panic!("{other:?}"),
        }
        // the blocking client reads the same item
        assert_eq!(c.meta_get(k).unwrap().unwrap().data, b"bin");
        // a noreply classic write submitted before a meta read is fenced off
        let log: Log = Rc::default();
        let set = Request::Store {
            cmd: mcrs::protocol::StoreCmd::Set,
            key: b"nr",
            value: b"1",
            flags: 0,
            exptime: 0,
            noreply: Some(true),
        };
        submit(&mut lp, &log, 0, &set);
        submit(&mut lp, &log, 1, &meta_get(b"nr"));
        submit(&mut lp, &log, 2, &lease_get(b"nr", 30));
        drive(&mut lp, &log, 3);
        let mut got = std::mem::take(&mut *log.borrow_mut());
        got.sort_by_key(|(t, _)| *t);
        assert!(matches!(got[0].1, Outcome::Ack(Ok(Ack::Done))));
        assert!(matches!(&got[1].1, Outcome::Value(Ok(Some(v))) if v.data() == b"1"));
        assert!(matches!(&got[2].1, Outcome::Lease(Ok(l)) if l.state == LeaseState::Hit));
        assert_eq!(client(&m).get(b"app:nr").unwrap().unwrap().data, b"1");
    }

    #[test]
    fn loop_ignore_exc_lease_get_is_a_lease_free_win() {
        let c = ClientBuilder::new()
            .add_server("127.0.0.1:1")
            .unwrap()
            .ignore_exc(true)
            .build()
            .unwrap();
        let mut lp = EventLoop::new(&c).unwrap();
        let l = lease_of(one(&mut lp, &lease_get(b"k", 30)));
        assert_eq!(
            (l.state, l.token, l.value.is_none()),
            (LeaseState::Won, 0, true)
        );
        assert!(matches!(
            one(&mut lp, &meta_get(b"k")),
            Outcome::Value(Ok(None))
        ));
        // without ignore_exc the failure is the caller's
        let strict = ClientBuilder::new()
            .add_server("127.0.0.1:1")
            .unwrap()
            .build()
            .unwrap();
        let mut lp = EventLoop::new(&strict).unwrap();
        assert!(matches!(
            one(&mut lp, &lease_get(b"k", 30)),
            Outcome::Lease(Err(Error::ConnectFailed { .. }))
        ));
    }

    #[test]
    fn loop_server_without_meta_or_with_garbage_is_a_clear_error() {
        let peer = FakePeer::start(|_, mut s| {
            while let Some(line) = read_line(&mut s) {
                if line.starts_with("mg bad") {
                    send(&mut s, b"VA x\r\n");
                } else if line.starts_with("mg ") || line.starts_with("md ") {
                    send(&mut s, b"ERROR\r\n");
                } else {
                    send(&mut s, b"garbage\r\n");
                }
            }
        });
        let c = ClientBuilder::new()
            .add_server(&peer.addr())
            .unwrap()
            .build()
            .unwrap();
        let mut lp = EventLoop::new(&c).unwrap();
        // one line refused: the connection stays in step for the next
        assert!(matches!(
            one(&mut lp, &lease_get(b"k", 30)),
            Outcome::Lease(Err(Error::UnknownCommand))
        ));
        assert!(matches!(
            one(&mut lp, &meta_get(b"k")),
            Outcome::Value(Err(Error::UnknownCommand))
        ));
        assert!(matches!(
            one(&mut lp, &invalidate(b"k", 0)),
            Outcome::Ack(Err(Error::UnknownCommand))
        ));
        assert!(matches!(
            one(&mut lp, &lease_get(b"bad", 30)),
            Outcome::Lease(Err(Error::Protocol(_)))
        ));
    }

    #[test]
    fn loop_lease_after_a_server_restart_fails_once_cleanly_then_works() {
        let mut m = Memcached::start();
        let c = builder(&m)
            .retry_timeout(Duration::from_millis(10))
            .build()
            .unwrap();
        let mut lp = EventLoop::new(&c).unwrap();
        assert_eq!(
            lease_of(one(&mut lp, &lease_get(b"r", 30))).state,
            LeaseState::Won
        );
        m.restart();
        // the loop usually sees the idle connection close and reconnects; when
        // the request goes out first on the stale connection, it fails with
        // the connection (meta requests are not sent again): never a hang
        match one(&mut lp, &lease_get(b"r", 30)) {
            Outcome::Lease(Ok(l)) => assert_eq!(l.state, LeaseState::Won),
            Outcome::Lease(Err(e)) => {
                eprintln!("after the restart: {e}");
                assert!(e.is_server_failure(), "{e:?}")
            }
            other => panic!("{other:?}"),
        }
        thread::sleep(Duration::from_millis(20));
        let end = Instant::now() + Duration::from_secs(3);
        loop {
            match one(&mut lp, &lease_get(b"r2", 30)) {
                Outcome::Lease(Ok(l)) => {
                    assert_eq!(l.state, LeaseState::Won);
                    break;
                }
                other if Instant::now() > end => panic!("{other:?}"),
                _ => thread::sleep(Duration::from_millis(20)),
            }
        }
    }

    /// `n` callers of a cached function on one loop: lease get; HIT/STALE
    /// take the value, WON computes (50 ms) then lease-sets, WAIT retries
    /// after a backoff. Returns the backend calls made.
    fn loop_herd(c: &Client, n: usize, key: &'static [u8]) -> usize {
        let mut lp = EventLoop::new(c).unwrap();
        let log: Log = Rc::default();
        let mut retry_at: Vec<(Instant, usize)> = Vec::new();
        let mut compute_done: Vec<(Instant, u64)> = Vec::new();
        let mut calls = 0;
        let mut done = 0;
        for i in 0..n {
            submit(&mut lp, &log, i, &lease_get(key, 10));
        }
        let end = Instant::now() + Duration::from_secs(10);
        while done < n && Instant::now() < end {
            lp.wait(Duration::from_millis(2)).unwrap();
            let now = Instant::now();
            for (i, o) in std::mem::take(&mut *log.borrow_mut()) {
                match o {
                    Outcome::Lease(Ok(l)) => match l.state {
                        LeaseState::Hit | LeaseState::Stale => {
                            assert_eq!(l.value.unwrap().data(), b"expensive");
                            done += 1;
                        }
                        LeaseState::Won => {
                            calls += 1;
                            compute_done.push((now + Duration::from_millis(50), l.token));
                        }
                        LeaseState::Wait => retry_at.push((now + Duration::from_millis(5), i)),
                    },
                    Outcome::Ack(Ok(a)) => {
                        assert_eq!(a, Ack::Done);
                        done += 1;
                    }
                    other => panic!("{other:?}"),
                }
            }
            let (due, later): (Vec<_>, Vec<_>) = retry_at.drain(..).partition(|(t, _)| *t <= now);
            retry_at = later;
            for (_, i) in due {
                submit(&mut lp, &log, i, &lease_get(key, 10));
            }
            let (due, later): (Vec<_>, Vec<_>) =
                compute_done.drain(..).partition(|(t, _)| *t <= now);
            compute_done = later;
            for (_, token) in due {
                submit(
                    &mut lp,
                    &log,
                    usize::MAX,
                    &lease_set(key, b"expensive", token),
                );
            }
        }
        assert_eq!(done, n, "every caller got the value");
        calls
    }

    #[test]
    fn loop_herd_of_64_makes_one_backend_call() {
        let m = Memcached::start();
        let c = client(&m);
        let calls = loop_herd(&c, 64, b"loop:herd");
        eprintln!("64 loop callers on one cold key under a lease: {calls} backend call(s)");
        assert_eq!(calls, 1);
    }
}
