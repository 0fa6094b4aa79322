//! The Rust API against real memcached servers (and a few broken fake peers).

mod common;

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::{drain, read_line, send, FakePeer, Memcached};
use mcrs::{CasOutcome, Client, ClientBuilder, Error, Value};

fn client(m: &Memcached) -> Client {
    Client::connect(&m.addr()).unwrap()
}

fn builder(addr: &str) -> ClientBuilder {
    let mut b = ClientBuilder::new();
    b.add_server(addr).unwrap();
    b
}

fn data(v: Option<Value>) -> Option<Vec<u8>> {
    v.map(|v| v.data)
}

#[test]
fn set_get_roundtrip_with_flags_and_binary_values() {
    let m = Memcached::start();
    let c = client(&m);
    assert!(c.set(b"some_key", b"some_value", 0, 0, None).unwrap());
    let v = c.get(b"some_key").unwrap().unwrap();
    assert_eq!(
        v,
        Value {
            data: b"some_value".to_vec(),
            flags: 0,
            cas: None
        }
    );

    let binary = b"a\r\nEND\r\n\0VALUE x 0 1\r\n\xff".to_vec();
    c.set(b"bin", &binary, 16, 0, Some(false)).unwrap();
    let v = c.get(b"bin").unwrap().unwrap();
    assert_eq!((v.data, v.flags), (binary, 16));

    c.set(b"empty", b"", u32::MAX, 0, None).unwrap();
    let v = c.get(b"empty").unwrap().unwrap();
    assert_eq!((v.data.len(), v.flags), (0, u32::MAX));

    assert_eq!(c.get(b"missing").unwrap(), None);
}

#[test]
fn noreply_defaults_follow_pymemcache() {
    let m = Memcached::start();
    let c = client(&m);
    // set/add default to noreply: they report success even when add fails
    c.set(b"k", b"1", 0, 0, None).unwrap();
    assert!(c.add(b"k", b"2", 0, 0, None).unwrap());
    // ... but with noreply off the outcome is real
    assert!(!c.add(b"k", b"2", 0, 0, Some(false)).unwrap());
    assert_eq!(data(c.get(b"k").unwrap()), Some(b"1".to_vec()));
    // incr waits for the reply by default
    assert_eq!(c.incr(b"k", 5, None).unwrap(), Some(6));
    // with default_noreply off, storage commands report NOT_STORED
    let strict = {
        let mut b = builder(&m.addr());
        b.default_noreply(false);
        b.build().unwrap()
    };
    assert!(!strict.add(b"k", b"x", 0, 0, None).unwrap());
    assert!(!strict.delete(b"nope", None).unwrap());
    assert!(strict.delete(b"k", None).unwrap());
}

#[test]
fn storage_command_outcomes() {
    let m = Memcached::start();
    let c = client(&m);
    let off = Some(false);
    assert!(!c.replace(b"r", b"x", 0, 0, off).unwrap());
    assert!(!c.append(b"r", b"x", 0, 0, off).unwrap());
    assert!(!c.prepend(b"r", b"x", 0, 0, off).unwrap());
    assert!(c.add(b"r", b"mid", 3, 0, off).unwrap());
    assert!(c.append(b"r", b">", 0, 0, off).unwrap());
    assert!(c.prepend(b"r", b"<", 0, 0, off).unwrap());
    let v = c.get(b"r").unwrap().unwrap();
    assert_eq!((v.data.as_slice(), v.flags), (&b"<mid>"[..], 3));
    assert!(c.replace(b"r", b"new", 0, 0, off).unwrap());
    assert_eq!(data(c.get(b"r").unwrap()), Some(b"new".to_vec()));
}

#[test]
fn cas_outcomes() {
    let m = Memcached::start();
    let c = client(&m);
    assert_eq!(
        c.cas(b"c", b"v", 0, 0, 1, None).unwrap(),
        CasOutcome::NotFound
    );
    c.set(b"c", b"v1", 0, 0, None).unwrap();
    let v = c.gets(b"c").unwrap().unwrap();
    let cas = v.cas.expect("gets returns cas");
    assert_eq!(
        c.cas(b"c", b"v2", 0, 0, cas, None).unwrap(),
        CasOutcome::Stored
    );
    assert_eq!(
        c.cas(b"c", b"v3", 0, 0, cas, None).unwrap(),
        CasOutcome::Exists
    );
    assert_eq!(data(c.get(b"c").unwrap()), Some(b"v2".to_vec()));
}

#[test]
fn incr_decr_touch_gat_delete() {
    let m = Memcached::start();
    let c = client(&m);
    assert_eq!(c.incr(b"n", 1, None).unwrap(), None);
    c.set(b"n", b"10", 0, 0, None).unwrap();
    assert_eq!(c.incr(b"n", 5, None).unwrap(), Some(15));
    assert_eq!(c.decr(b"n", 20, None).unwrap(), Some(0));
    assert_eq!(c.incr(b"n", u64::MAX, None).unwrap(), Some(u64::MAX));
    assert_eq!(
        c.incr(b"n", 2, None).unwrap(),
        Some(1),
        "incr wraps at 2^64"
    );
    c.set(b"s", b"abc", 0, 0, None).unwrap();
    assert!(matches!(c.incr(b"s", 1, None), Err(Error::Client(_))));
    // the connection that saw CLIENT_ERROR is dropped; the client goes on
    assert_eq!(data(c.get(b"s").unwrap()), Some(b"abc".to_vec()));

    assert!(!c.touch(b"absent", 10, Some(false)).unwrap());
    assert!(c.touch(b"s", 100, Some(false)).unwrap());
    let v = c.gat(b"s", 200).unwrap().unwrap();
    assert_eq!((v.data.as_slice(), v.cas), (&b"abc"[..], None));
    let v = c.gats(b"s", 300).unwrap().unwrap();
    assert!(v.cas.is_some());
    assert_eq!(c.gat(b"absent", 1).unwrap(), None);

    assert!(c.delete(b"s", Some(false)).unwrap());
    assert!(!c.delete(b"s", Some(false)).unwrap());
    assert_eq!(c.get(b"s").unwrap(), None);
}

#[test]
fn expiry_is_honoured() {
    let m = Memcached::start();
    let c = client(&m);
    // memcached's clock ticks once a second: exptime 2 survives at least one tick
    c.set(b"e", b"x", 0, 2, Some(false)).unwrap();
    assert!(c.get(b"e").unwrap().is_some());
    thread::sleep(Duration::from_millis(3100));
    assert_eq!(c.get(b"e").unwrap(), None);
}

#[test]
fn multi_key_commands_align_results() {
    let m = Memcached::start();
    let c = client(&m);
    let items: Vec<(Vec<u8>, Vec<u8>)> = (0..50)
        .map(|i| (format!("mk{i}").into_bytes(), format!("v{i}").into_bytes()))
        .collect();
    let refs: Vec<(&[u8], &[u8], u32)> = items.iter().map(|(k, v)| (&k[..], &v[..], 7)).collect();
    assert_eq!(
        c.set_many(&refs, 0, Some(false)).unwrap(),
        Vec::<usize>::new()
    );

    let keys: Vec<&[u8]> = vec![b"mk3", b"nope", b"mk1", b"mk3", b"mk49"];
    let got = c.get_many(&keys).unwrap();
    let want: Vec<Option<&[u8]>> = vec![Some(b"v3"), None, Some(b"v1"), Some(b"v3"), Some(b"v49")];
    assert_eq!(
        got.iter()
            .map(|v| v.as_ref().map(|v| &v.data[..]))
            .collect::<Vec<_>>(),
        want
    );
    assert!(got
        .iter()
        .flatten()
        .all(|v| v.flags == 7 && v.cas.is_none()));
    let got = c.gets_many(&keys).unwrap();
    assert!(got.iter().flatten().all(|v| v.cas.is_some()));
    assert_eq!(c.get_many(&[]).unwrap(), Vec::<Option<Value>>::new());

    let del: Vec<&[u8]> = vec![b"mk1", b"mk2", b"absent"];
    assert_eq!(c.delete_many(&del, Some(false)).unwrap(), 2);
    assert_eq!(c.get(b"mk2").unwrap(), None);
}

#[test]
fn set_many_reports_items_not_stored() {
    let m = Memcached::start();
    let c = client(&m);
    let big = vec![b'x'; 2 * 1024 * 1024]; // over the default 1 MiB item limit
    let items: Vec<(&[u8], &[u8], u32)> = vec![(b"a", b"1", 0), (b"b", &big, 0), (b"c", b"3", 0)];
    assert_eq!(c.set_many(&items, 0, Some(false)).unwrap(), vec![1]);
    assert_eq!(data(c.get(b"c").unwrap()), Some(b"3".to_vec()));
    assert_eq!(
        c.set_many(&items, 0, Some(true)).unwrap(),
        Vec::<usize>::new()
    );
    assert_eq!(data(c.get(b"a").unwrap()), Some(b"1".to_vec()));
}

#[test]
fn huge_get_many_does_not_deadlock() {
    let m = Memcached::start();
    let c = client(&m);
    let keys: Vec<Vec<u8>> = (0..100_000).map(|i| format!("h{i}").into_bytes()).collect();
    let value = vec![b'v'; 100];
    let items: Vec<(&[u8], &[u8], u32)> = keys.iter().map(|k| (&k[..], &value[..], 0)).collect();
    assert!(c.set_many(&items, 0, Some(false)).unwrap().is_empty());
    let refs: Vec<&[u8]> = keys.iter().map(|k| &k[..]).collect();
    let got = c.get_many(&refs).unwrap();
    assert_eq!(got.len(), 100_000);
    assert!(got
        .iter()
        .all(|v| v.as_ref().is_some_and(|v| v.data == value)));
}

/// A noreply command the server still answers with an error must not shift
/// the replies of later commands.
#[test]
fn noreply_errors_never_shift_later_replies() {
    let m = Memcached::start();
    let c = {
        let mut b = builder(&m.addr());
        b.max_pool_size(1).unwrap(); // one connection: every command shares the stream
        b.build().unwrap()
    };
    c.set(b"small", b"right", 0, 0, Some(false)).unwrap();
    let big = vec![b'x'; 2 * 1024 * 1024];
    for _ in 0..3 {
        // memcached answers "SERVER_ERROR object too large for cache" despite noreply
        c.set(b"big", &big, 0, 0, Some(true)).unwrap();
    }
    assert_eq!(data(c.get(b"small").unwrap()), Some(b"right".to_vec()));
    c.set(b"big", &big, 0, 0, Some(true)).unwrap();
    assert!(!c.add(b"small", b"x", 0, 0, Some(false)).unwrap());
    c.set(b"big", &big, 0, 0, Some(true)).unwrap();
    assert_eq!(
        c.incr(b"small", 1, None)
            .err()
            .map(|e| e.to_string().contains("CLIENT_ERROR")),
        Some(true)
    );
    c.set(b"big", &big, 0, 0, Some(true)).unwrap();
    let got = c.get_many(&[b"small", b"big"]).unwrap();
    assert_eq!(data(got[0].clone()), Some(b"right".to_vec()));
    assert_eq!(got[1], None);
    // and a reply-mode too-large set is a clear SERVER_ERROR
    assert!(matches!(
        c.set(b"big", &big, 0, 0, Some(false)),
        Err(Error::Server(_))
    ));
    assert_eq!(data(c.get(b"small").unwrap()), Some(b"right".to_vec()));
}

#[test]
fn server_wide_commands() {
    let m = Memcached::start();
    let c = client(&m);
    let v = c.version().unwrap();
    assert!(v.starts_with("1."), "{v}");
    c.set(b"k", b"v", 0, 0, Some(false)).unwrap();
    let stats = c.stats("").unwrap();
    let get = |n: &str| {
        stats
            .iter()
            .find(|(_, name, _)| name == n)
            .map(|(_, _, v)| v.clone())
    };
    assert_eq!(get("curr_items").as_deref(), Some("1"));
    assert!(stats.iter().all(|(s, _, _)| *s == m.addr()));
    assert!(c
        .stats("settings")
        .unwrap()
        .iter()
        .any(|(_, n, _)| n == "maxconns"));
    assert!(c.stats("reset").unwrap().is_empty());
    c.cache_memlimit(100, None).unwrap();
    c.verbosity(0, Some(false)).unwrap();
    c.flush_all(0, Some(false)).unwrap();
    assert_eq!(c.get(b"k").unwrap(), None);
    c.set(b"k", b"v", 0, 0, None).unwrap();
    c.flush_all(0, None).unwrap(); // noreply by default
    assert_eq!(c.get(b"k").unwrap(), None);
    c.quit();
    // the client reconnects after quit
    c.set(b"after", b"quit", 0, 0, Some(false)).unwrap();
    assert_eq!(data(c.get(b"after").unwrap()), Some(b"quit".to_vec()));
}

#[test]
fn key_prefix_and_unicode_keys() {
    let m = Memcached::start();
    let plain = client(&m);
    let prefixed = {
        let mut b = builder(&m.addr());
        b.key_prefix(b"app:").unwrap().allow_unicode_keys(true);
        b.build().unwrap()
    };
    prefixed.set(b"user", b"1", 0, 0, Some(false)).unwrap();
    assert_eq!(data(plain.get(b"app:user").unwrap()), Some(b"1".to_vec()));
    assert_eq!(plain.get(b"user").unwrap(), None);
    let got = prefixed.get_many(&[b"user", b"x"]).unwrap();
    assert_eq!(data(got[0].clone()), Some(b"1".to_vec()));
    assert!(matches!(
        prefixed.get(&[b'k'; 247]),
        Err(Error::InvalidKey(_))
    ));
    prefixed.get(&[b'k'; 246]).unwrap();

    let key = "caf\u{e9}-\u{1f600}".as_bytes();
    prefixed.set(key, b"u", 0, 0, Some(false)).unwrap();
    assert_eq!(data(prefixed.get(key).unwrap()), Some(b"u".to_vec()));
    assert!(matches!(plain.get(key), Err(Error::InvalidKey(_))));
}

#[test]
fn invalid_keys_fail_before_io() {
    // nothing listens on port 1: any I/O would give ConnectFailed
    let c = Client::connect("127.0.0.1:1").unwrap();
    for bad in [&b""[..], b"a b", b"a\nb", b"a\0b", &[b'k'; 251]] {
        assert!(matches!(c.get(bad), Err(Error::InvalidKey(_))), "{bad:?}");
        assert!(matches!(
            c.set(bad, b"v", 0, 0, None),
            Err(Error::InvalidKey(_))
        ));
        assert!(matches!(
            c.delete_many(&[b"ok", bad], None),
            Err(Error::InvalidKey(_))
        ));
    }
    assert!(matches!(c.get(b"ok"), Err(Error::ConnectFailed { .. })));
}

#[test]
fn unix_socket_server() {
    let m = Memcached::start_unix();
    let c = client(&m);
    c.set(b"u", b"over unix", 5, 0, Some(false)).unwrap();
    let v = c.get(b"u").unwrap().unwrap();
    assert_eq!((v.data.as_slice(), v.flags), (&b"over unix"[..], 5));
}

#[test]
fn ignore_exc_turns_read_failures_into_misses() {
    let mut m = Memcached::start();
    let c = {
        let mut b = builder(&m.addr());
        b.ignore_exc(true)
            .connect_timeout(Duration::from_millis(200))
            .unwrap();
        b.build().unwrap()
    };
    c.set(b"k", b"v", 0, 0, Some(false)).unwrap();
    m.kill();
    assert_eq!(c.get(b"k").unwrap(), None);
    assert_eq!(c.get_many(&[b"k", b"j"]).unwrap(), vec![None, None]);
    assert_eq!(c.gets(b"k").unwrap(), None);
    // writes still report the failure
    assert!(c.set(b"k", b"v", 0, 0, Some(false)).is_err());
    // and invalid keys are still the caller's error
    assert!(matches!(c.get(b"bad key"), Err(Error::InvalidKey(_))));
}

#[test]
fn stalled_server_costs_about_the_timeout_then_recovers() {
    let m = Memcached::start();
    let timeout = Duration::from_millis(300);
    let c = {
        let mut b = builder(&m.addr());
        b.timeout(timeout).unwrap();
        b.build().unwrap()
    };
    c.set(b"k", b"v", 0, 0, Some(false)).unwrap();
    m.pause();
    let t0 = Instant::now();
    let r = c.get(b"k");
    let took = t0.elapsed();
    m.resume();
    assert!(matches!(r, Err(Error::Timeout(_))), "{r:?}");
    assert!(
        took >= timeout - Duration::from_millis(20),
        "gave up early: {took:?}"
    );
    assert!(took < timeout * 4, "hung past the timeout: {took:?}");
    // the timed-out connection is not reused: its late reply cannot leak
    assert_eq!(data(c.get(b"k").unwrap()), Some(b"v".to_vec()));
    c.set(b"k2", b"v2", 0, 0, Some(false)).unwrap();
    assert_eq!(data(c.get(b"k2").unwrap()), Some(b"v2".to_vec()));
}

#[test]
fn peer_that_never_answers_times_out() {
    let peer = FakePeer::start(|_, mut s| drain(&mut s));
    let timeout = Duration::from_millis(200);
    let c = {
        let mut b = builder(&peer.addr());
        b.timeout(timeout).unwrap();
        b.build().unwrap()
    };
    let t0 = Instant::now();
    assert!(matches!(c.get(b"k"), Err(Error::Timeout(_))));
    assert!(t0.elapsed() < timeout * 4);
    assert!(matches!(
        c.set(b"k", b"v", 0, 0, Some(false)),
        Err(Error::Timeout(_))
    ));
}

#[test]
fn peer_that_trickles_cannot_extend_the_deadline() {
    let peer = FakePeer::start(|_, mut s| {
        if read_line(&mut s).is_some() {
            for b in b"VALUE k 0 5\r\nhello\r\nEND\r\n" {
                send(&mut s, &[*b]);
                thread::sleep(Duration::from_millis(40));
            }
        }
        drain(&mut s);
    });
    let timeout = Duration::from_millis(300);
    let c = {
        let mut b = builder(&peer.addr());
        b.timeout(timeout).unwrap();
        b.build().unwrap()
    };
    let t0 = Instant::now();
    let r = c.get(b"k");
    assert!(matches!(r, Err(Error::Timeout(_))), "{r:?}");
    assert!(
        t0.elapsed() < timeout + Duration::from_millis(150),
        "{:?}",
        t0.elapsed()
    );
}

#[test]
fn peer_that_closes_mid_value_then_a_healthy_connection() {
    // first connection: announce 10 bytes, send 3, close; later ones answer well
    let peer = FakePeer::start(|i, mut s| {
        while read_line(&mut s).is_some() {
            if i == 0 {
                send(&mut s, b"VALUE k 0 10\r\nabc");
                return;
            }
            send(&mut s, b"VALUE k 0 3\r\nabc\r\nEND\r\n");
        }
    });
    let c = Client::connect(&peer.addr()).unwrap();
    assert!(matches!(c.get(b"k"), Err(Error::UnexpectedClose)));
    assert_eq!(data(c.get(b"k").unwrap()), Some(b"abc".to_vec()));
}

#[test]
fn peer_sending_garbage_or_wrong_keys_is_a_protocol_error() {
    for reply in [
        &b"HTTP/1.1 400 Bad Request\r\n\r\n"[..],
        b"VALUE other 0 1\r\nx\r\nEND\r\n",
        b"VALUE k 0 2\r\nabc\r\nEND\r\n",
        b"STORED\r\n",
    ] {
        let peer = FakePeer::start(move |_, mut s| {
            if read_line(&mut s).is_some() {
                send(&mut s, reply);
            }
            drain(&mut s);
        });
        let c = Client::connect(&peer.addr()).unwrap();
        let r = c.get(b"k");
        assert!(
            matches!(r, Err(Error::Protocol(_))),
            "{:?}: {r:?}",
            String::from_utf8_lossy(reply)
        );
    }
}

#[test]
fn server_error_in_the_middle_of_a_multi_get() {
    let peer = FakePeer::start(|i, mut s| {
        while read_line(&mut s).is_some() {
            if i == 0 {
                send(
                    &mut s,
                    b"VALUE a 0 1\r\n1\r\nSERVER_ERROR out of memory\r\n",
                );
            } else {
                send(&mut s, b"VALUE a 0 1\r\n1\r\nVALUE b 0 1\r\n2\r\nEND\r\n");
            }
        }
    });
    // the classic path, pinned (this peer answers every line with get
    // replies, a meta probe too)
    let c = builder(&peer.addr())
        .use_meta(mcrs::UseMeta::Off)
        .build()
        .unwrap();
    assert!(matches!(c.get_many(&[b"a", b"b"]), Err(Error::Server(_))));
    let got = c.get_many(&[b"a", b"b"]).unwrap();
    assert_eq!(data(got[1].clone()), Some(b"2".to_vec()));
}

#[test]
fn closed_port_is_connect_failed() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let c = Client::connect(&format!("127.0.0.1:{port}")).unwrap();
    assert!(matches!(c.get(b"k"), Err(Error::ConnectFailed { .. })));
    assert!(matches!(
        c.set(b"k", b"v", 0, 0, None),
        Err(Error::ConnectFailed { .. })
    ));
}

#[test]
fn many_threads_share_one_client() {
    let m = Memcached::start();
    let c = Arc::new({
        let mut b = builder(&m.addr());
        b.max_pool_size(4).unwrap();
        b.build().unwrap()
    });
    let handles: Vec<_> = (0..8)
        .map(|t| {
            let c = c.clone();
            thread::spawn(move || {
                for i in 0..500 {
                    let k = format!("t{t}:{i}");
                    let v = format!("value {t} {i}");
                    // reply mode: a noreply set on one pooled connection may be
                    // overtaken by a get on another
                    c.set(k.as_bytes(), v.as_bytes(), t, 0, Some(false))
                        .unwrap();
                    let got = c.get(k.as_bytes()).unwrap().unwrap();
                    assert_eq!((got.data, got.flags), (v.into_bytes(), t));
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

#[test]
fn reads_survive_a_server_restart_transparently() {
    let mut m = Memcached::start();
    let c = client(&m);
    c.set(b"k", b"v", 0, 0, Some(false)).unwrap();
    m.restart();
    // the pooled connection is stale; the read is retried on a fresh one
    assert_eq!(c.get(b"k").unwrap(), None);
    c.set(b"k", b"v2", 0, 0, Some(false)).unwrap();
    assert_eq!(data(c.get(b"k").unwrap()), Some(b"v2".to_vec()));
}

#[test]
fn buffered_noreply_is_written_on_flush_on_reply_and_on_drop() {
    let m = Memcached::start();
    let observer = client(&m);
    let c = {
        let mut b = builder(&m.addr());
        b.buffer_noreply(true);
        b.build().unwrap()
    };
    c.set(b"b1", b"1", 0, 0, Some(true)).unwrap();
    // still in the client's buffer: another connection cannot see it
    assert_eq!(observer.get(b"b1").unwrap(), None);
    c.flush_buffers().unwrap();
    // written: the server applies it (on its own connection, so allow it a moment)
    assert!(eventually(
        || data(observer.get(b"b1").unwrap()) == Some(b"1".to_vec())
    ));
    // a command that waits for a reply writes the buffer first, in order
    c.set(b"b2", b"2", 0, 0, Some(true)).unwrap();
    assert_eq!(data(c.get(b"b2").unwrap()), Some(b"2".to_vec()));
    // a big stream goes out in 64 KiB writes without any flush
    let v = vec![b'x'; 1000];
    for i in 0..200 {
        c.set(format!("s{i}").as_bytes(), &v, 0, 0, Some(true))
            .unwrap();
    }
    assert!(eventually(|| observer.get(b"s0").unwrap().is_some()));
    // and dropping the client writes what is left
    c.set(b"b3", b"3", 0, 0, Some(true)).unwrap();
    drop(c);
    assert!(eventually(
        || data(observer.get(b"b3").unwrap()) == Some(b"3".to_vec())
    ));
}

/// Polls `f` for up to a second: for effects that cross connections.
fn eventually(mut f: impl FnMut() -> bool) -> bool {
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(1) {
        if f() {
            return true;
        }
        thread::sleep(Duration::from_millis(5));
    }
    false
}
