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
