//! The meta multi-get of the blocking client (src/meta_many.rs) against real
//! memcached, and against deliberately limited fake peers: one that knows no
//! meta (classic fallback), one that answers an error line for one key, one
//! that dies part-way through a reply.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{FakePeer, Memcached};
use mcrs::protocol::Retrieve;
use mcrs::value::{KeyResults, KeyStatus};
use mcrs::{Client, ClientBuilder, Error, UseMeta, Value};

fn client(addrs: &[String], mode: UseMeta, tune: impl FnOnce(&mut ClientBuilder)) -> Client {
    let mut b = ClientBuilder::new();
    for a in addrs {
        b.add_server(a).unwrap();
    }
    b.use_meta(mode)
        .timeout(Duration::from_millis(1000))
        .unwrap();
    tune(&mut b);
    b.build().unwrap()
}

fn addrs(servers: &[Memcached]) -> Vec<String> {
    servers.iter().map(|s| s.addr()).collect()
}

fn refs(keys: &[Vec<u8>]) -> Vec<&[u8]> {
    keys.iter().map(|k| k.as_slice()).collect()
}

/// Values that would derail a parser that trusts their bytes.
fn awkward_values() -> Vec<Vec<u8>> {
    let mut v = vec![
        b"".to_vec(),
        b"\r\n".to_vec(),
        b"a\r\nVA 1 f0 O3\r\nb\r\nMN\r\n".to_vec(),
        b"END\r\nVALUE x 0 1\r\ny\r\n".to_vec(),
        (0..=255u8).collect(),
        vec![0u8; 17],
    ];
    // bigger than one read buffer (16 KiB)
    v.push((0..100_000).map(|i| (i * 7 % 251) as u8).collect());
    v
}

/// fetch_many_with: (per-key outcomes, values).
fn fetch(c: &Client, cmd: Retrieve, keys: &[&[u8]]) -> (KeyResults, Vec<Option<Value>>) {
    let mut got: Vec<Option<Value>> = vec![None; keys.len()];
    let res = c
        .fetch_many_with(cmd, keys, |i, d, f, cas| {
            assert!(got[i].is_none(), "key {i} visited twice");
            got[i] = Some(Value {
                data: d.to_vec(),
                flags: f,
                cas,
            })
        })
        .unwrap();
    (res, got)
}

#[test]
fn hits_and_misses_with_awkward_values_in_every_mode() {
    let m = Memcached::start();
    let setter = client(&[m.addr()], UseMeta::Off, |_| {});
    let values = awkward_values();
    // keys 0, 2, 4, ... hit (value i/2), the odd ones miss
    let mut keys = Vec::new();
    let mut want = Vec::new();
    for (i, v) in values.iter().enumerate() {
        let hit = format!("hit:{i}").into_bytes();
        setter
            .set(&hit, v, i as u32 * 1000 + 7, 0, Some(false))
            .unwrap();
        keys.push(hit);
        want.push(Some((v.clone(), i as u32 * 1000 + 7)));
        keys.push(format!("miss:{i}").into_bytes());
        want.push(None);
    }
    // a key asked twice is answered twice
    keys.push(b"hit:1".to_vec());
    want.push(want[2].clone());
    let ks = refs(&keys);
    for mode in [UseMeta::On, UseMeta::Auto, UseMeta::Off] {
        let c = client(&[m.addr()], mode, |_| {});
        for round in 0..2 {
            let got = c.get_many(&ks).unwrap();
            let got: Vec<_> = got
                .into_iter()
                .map(|v| v.map(|v| (v.data, v.flags)))
                .collect();
            assert_eq!(got, want, "{mode:?} round {round}");
        }
        // On forces meta without asking
        let expect = (mode == UseMeta::Auto).then_some(true);
        assert_eq!(c.meta_support()[0].1, expect, "{mode:?}");
        // the single-key reads still agree
        assert_eq!(c.get(b"hit:3").unwrap().unwrap().data, values[3]);
    }
}

#[test]
fn thousand_keys_across_three_servers() {
    let servers: Vec<Memcached> = (0..3).map(|_| Memcached::start()).collect();
    let meta = client(&addrs(&servers), UseMeta::Auto, |_| {});
    let classic = client(&addrs(&servers), UseMeta::Off, |_| {});
    let keys: Vec<Vec<u8>> = (0..1000).map(|i| format!("k:{i}").into_bytes()).collect();
    let ks = refs(&keys);
    // every third key missing
    let items: Vec<(&[u8], Vec<u8>, u32)> = ks
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 3 != 0)
        .map(|(i, k)| (*k, format!("v{i}\r\n").repeat(i % 7).into_bytes(), i as u32))
        .collect();
    let item_refs: Vec<(&[u8], &[u8], u32)> = items
        .iter()
        .map(|(k, v, f)| (*k, v.as_slice(), *f))
        .collect();
    assert!(classic
        .set_many(&item_refs, 0, Some(false))
        .unwrap()
        .is_empty());
    let (res, got) = fetch(&meta, Retrieve::Get, &ks);
    assert_eq!(res.failed(), 0);
    for (i, g) in got.iter().enumerate() {
        if i % 3 == 0 {
            assert_eq!(g, &None, "key {i}");
            assert_eq!(res.status[i], KeyStatus::NotFound);
        } else {
            let v = g.as_ref().unwrap_or_else(|| panic!("key {i} missing"));
            assert_eq!(
                (v.data.as_slice(), v.flags),
                (format!("v{i}\r\n").repeat(i % 7).as_bytes(), i as u32)
            );
            assert_eq!(res.status[i], KeyStatus::Ok);
        }
    }
    assert!(meta.meta_support().iter().all(|(_, m)| *m == Some(true)));
    // the same as the classic path, key for key
    assert_eq!(meta.get_many(&ks).unwrap(), classic.get_many(&ks).unwrap());
}

#[test]
fn gets_many_cas_values_equal_classic_gets() {
    let servers: Vec<Memcached> = (0..2).map(|_| Memcached::start()).collect();
    let meta = client(&addrs(&servers), UseMeta::On, |_| {});
    let classic = client(&addrs(&servers), UseMeta::Off, |_| {});
    let keys: Vec<Vec<u8>> = (0..50).map(|i| format!("c:{i}").into_bytes()).collect();
    let ks = refs(&keys);
    for (i, k) in ks.iter().enumerate().filter(|(i, _)| i % 5 != 0) {
        classic.set(k, b"x", i as u32, 0, Some(false)).unwrap();
        if i % 2 == 0 {
            classic.set(k, b"again", i as u32, 0, Some(false)).unwrap(); // another cas
        }
    }
    let by_meta = meta.gets_many(&ks).unwrap();
    assert_eq!(by_meta, classic.gets_many(&ks).unwrap());
    for (i, v) in by_meta.iter().enumerate() {
        assert_eq!(v, &classic.gets(ks[i]).unwrap(), "key {i}");
        if i % 5 != 0 {
            assert!(v.as_ref().unwrap().cas.is_some());
        }
    }
    // a cas read by meta works for a classic cas
    let v = by_meta[1].as_ref().unwrap();
    assert_eq!(
        classic
            .cas(ks[1], b"new", 0, 0, v.cas.unwrap(), None)
            .unwrap(),
        mcrs::CasOutcome::Stored
    );
    assert_eq!(
        meta.get_many(&ks[1..2]).unwrap()[0].as_ref().unwrap().data,
        b"new"
    );
}

#[test]
fn classic_writes_meta_reads_and_back() {
    let m = Memcached::start();
    let meta = client(&[m.addr()], UseMeta::On, |b| {
        b.base64_keys(true);
    });
    let classic = client(&[m.addr()], UseMeta::Off, |_| {});
    classic.set(b"a", b"by set", 5, 0, Some(false)).unwrap();
    classic.add(b"b", b"by add", 6, 0, Some(false)).unwrap();
    classic.set(b"c", b"x", 0, 0, Some(false)).unwrap();
    classic.append(b"c", b"yz", 0, 0, Some(false)).unwrap();
    // a meta write (ms) read by a classic get_many
    assert!(meta.lease_set(b"d", b"by ms", 9, 0, 0).unwrap());
    let ks: [&[u8]; 5] = [b"a", b"b", b"c", b"d", b"none"];
    let m_got = meta.get_many(&ks).unwrap();
    assert_eq!(m_got, classic.get_many(&ks).unwrap());
    let data: Vec<Option<&[u8]>> = m_got
        .iter()
        .map(|v| v.as_ref().map(|v| &v.data[..]))
        .collect();
    assert_eq!(
        data,
        [
            Some(&b"by set"[..]),
            Some(b"by add"),
            Some(b"xyz"),
            Some(b"by ms"),
            None
        ]
    );
    assert_eq!(m_got[3].as_ref().unwrap().flags, 9);
    // gat by meta (T): the TTL is set, as classic gat does
    let (res, got) = fetch(&meta, Retrieve::Gat(100), &ks);
    assert_eq!(res.count(KeyStatus::Ok), 4);
    assert_eq!(got[0].as_ref().unwrap().data, b"by set");
    let ttl = meta.meta_get(b"a").unwrap().unwrap().ttl;
    assert!((98..=100).contains(&ttl), "ttl {ttl}");
    let (_, got) = fetch(&meta, Retrieve::Gats(0), &ks[..1]);
    assert_eq!(
        got[0].as_ref().unwrap().cas,
        classic.gets(b"a").unwrap().unwrap().cas
    );
    assert_eq!(meta.meta_get(b"a").unwrap().unwrap().ttl, -1);
}

#[test]
fn base64_keys_by_meta_multi_get() {
    let m = Memcached::start();
    let binary: Vec<Vec<u8>> = vec![
        b"with space".to_vec(),
        b"line\r\nbreak".to_vec(),
        vec![0, 1, 2, 255],
        "é unicode".as_bytes().to_vec(),
        vec![1; 184], // the longest: with "p:", 248 bytes in base64
    ];
    for mode in [UseMeta::Auto, UseMeta::On] {
        let c = client(&[m.addr()], mode, |b| {
            b.base64_keys(true).key_prefix(b"p:").unwrap();
        });
        for (i, k) in binary.iter().enumerate() {
            assert!(c
                .lease_set(k, format!("bin{i}").as_bytes(), i as u32, 0, 0)
                .unwrap());
        }
        c.set(b"text", b"plain", 1, 0, Some(false)).unwrap();
        let mut keys: Vec<&[u8]> = binary.iter().map(|k| k.as_slice()).collect();
        keys.push(b"text");
        keys.push(b"missing key");
        let got = c.get_many(&keys).unwrap();
        for (i, g) in got.iter().take(binary.len()).enumerate() {
            let g = g.as_ref().unwrap_or_else(|| panic!("{mode:?} key {i}"));
            assert_eq!(
                (g.data.clone(), g.flags),
                (format!("bin{i}").into_bytes(), i as u32)
            );
        }
        assert_eq!(got[binary.len()].as_ref().unwrap().data, b"plain");
        assert_eq!(got[binary.len() + 1], None);
        // too long once encoded with the prefix: refused before any I/O
        let too_long = [1u8; 185];
        assert!(matches!(
            c.get_many(&[&too_long[..]]),
            Err(Error::InvalidKey(_))
        ));
    }
    // meta off: such keys are invalid as before
    let off = client(&[m.addr()], UseMeta::Off, |b| {
        b.base64_keys(true);
    });
    assert!(matches!(
        off.get_many(&[b"with space"]),
        Err(Error::InvalidKey(_))
    ));
    let no_b64 = client(&[m.addr()], UseMeta::On, |_| {});
    assert!(matches!(
        no_b64.get_many(&[b"with space"]),
        Err(Error::InvalidKey(_))
    ));
}

/// What a limited fake peer saw.
#[derive(Default)]
struct Seen {
    probes: AtomicUsize,
    meta_lines: AtomicUsize,
    get_lines: AtomicUsize,
}

/// A server of the classic protocol only (an older memcached, a proxy):
/// `ERROR` to every meta command; `get`/`gets` answer keys starting with
/// "hit" with the key as the value (flags 3, cas 77).
fn classic_only(seen: Arc<Seen>) -> FakePeer {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    serve_classic_only(l, seen);
    FakePeer { port }
}

/// `classic_only` on a given port.
fn classic_only_on(port: u16, seen: Arc<Seen>) -> FakePeer {
    let l = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    serve_classic_only(l, seen);
    FakePeer { port }
}

fn serve_classic_only(l: std::net::TcpListener, seen: Arc<Seen>) {
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(s) = s else { return };
            let seen = seen.clone();
            std::thread::spawn(move || classic_conn(s, &seen));
        }
    });
}

fn classic_conn(s: TcpStream, seen: &Seen) {
    {
        let mut w = s.try_clone().unwrap();
        for line in BufReader::new(s).lines() {
            let Ok(line) = line else { return };
            let mut words = line.trim_end().split(' ');
            let verb = words.next().unwrap_or("");
            let mut out = Vec::new();
            match verb {
                "mn" => {
                    seen.probes.fetch_add(1, Ordering::SeqCst);
                    out.extend_from_slice(b"ERROR\r\n");
                }
                "mg" | "ms" | "md" | "ma" => {
                    seen.meta_lines.fetch_add(1, Ordering::SeqCst);
                    out.extend_from_slice(b"ERROR\r\n");
                }
                "get" | "gets" => {
                    seen.get_lines.fetch_add(1, Ordering::SeqCst);
                    for k in words.filter(|k| k.starts_with("hit")) {
                        let cas = if verb == "gets" { " 77" } else { "" };
                        out.extend_from_slice(
                            format!("VALUE {k} 3 {}{cas}\r\n{k}\r\n", k.len()).as_bytes(),
                        );
                    }
                    out.extend_from_slice(b"END\r\n");
                }
                "version" => out.extend_from_slice(b"VERSION 1.4.0\r\n"),
                _ => out.extend_from_slice(b"ERROR\r\n"),
            }
            if w.write_all(&out).is_err() {
                return;
            }
        }
    }
}

#[test]
fn a_server_without_meta_keeps_the_classic_path() {
    let seen = Arc::new(Seen::default());
    let peer = classic_only(seen.clone());
    let c = client(&[peer.addr()], UseMeta::Auto, |b| {
        b.base64_keys(true);
    });
    assert_eq!(c.meta_support()[0].1, None);
    let ks: [&[u8]; 4] = [b"hit1", b"nope", b"hit2", b"hit1"];
    for _ in 0..3 {
        let got = c.get_many(&ks).unwrap();
        let data: Vec<Option<Vec<u8>>> = got.into_iter().map(|v| v.map(|v| v.data)).collect();
        assert_eq!(
            data,
            [
                Some(b"hit1".to_vec()),
                None,
                Some(b"hit2".to_vec()),
                Some(b"hit1".to_vec())
            ]
        );
    }
    let cas: Vec<_> = c
        .gets_many(&ks[..1])
        .unwrap()
        .into_iter()
        .map(|v| v.unwrap().cas)
        .collect();
    assert_eq!(cas, [Some(77)]);
    // asked once, remembered
    assert_eq!(seen.probes.load(Ordering::SeqCst), 1);
    assert_eq!(seen.meta_lines.load(Ordering::SeqCst), 0);
    assert_eq!(seen.get_lines.load(Ordering::SeqCst), 4);
    assert_eq!(c.meta_support()[0].1, Some(false));
    // a key only base64 (meta) can carry fails alone; the others are read
    let mixed: [&[u8]; 3] = [b"hit1", b"has space", b"nope"];
    let (res, got) = fetch(&c, Retrieve::Get, &mixed);
    assert_eq!(res.status[0], KeyStatus::Ok);
    assert_eq!(got[0].as_ref().unwrap().data, b"hit1");
    assert!(
        matches!(res.error(1), Some(Error::InvalidKey(_))),
        "{:?}",
        res.error(1)
    );
    assert_eq!(res.status[2], KeyStatus::NotFound);

    // forced meta: every line is answered ERROR, the keys fail with it
    // (no wait for an MN that never comes), and the connection stays in step
    let forced = client(&[peer.addr()], UseMeta::On, |_| {});
    let t0 = std::time::Instant::now();
    let (res, _) = fetch(&forced, Retrieve::Get, &ks);
    assert!(
        t0.elapsed() < Duration::from_millis(500),
        "{:?}",
        t0.elapsed()
    );
    for i in 0..ks.len() {
        assert!(
            matches!(res.error(i), Some(Error::UnknownCommand)),
            "{:?}",
            res.error(i)
        );
    }
    assert_eq!(forced.get(b"hit9").unwrap().unwrap().data, b"hit9");
}

#[test]
fn a_server_replaced_by_one_without_meta_goes_classic() {
    // found to speak meta, then the port is taken over by a classic server
    let mut m = Memcached::start();
    let port = m.port;
    let c = client(&[m.addr()], UseMeta::Auto, |b| {
        b.retry_timeout(Duration::from_millis(1));
    });
    c.set(b"hit1", b"v", 0, 0, Some(false)).unwrap();
    assert!(c.get_many(&[b"hit1"]).unwrap()[0].is_some());
    assert_eq!(c.meta_support()[0].1, Some(true));
    m.kill();
    let seen = Arc::new(Seen::default());
    let _peer = classic_only_on(port, seen.clone());
    // the first read after the swap: the pooled connection is stale, the
    // fresh one's mg lines are answered ERROR (the keys fail with it) ...
    let (res, _) = fetch(&c, Retrieve::Get, &[b"hit1", b"hit2"]);
    assert!(
        (0..2).all(|i| matches!(res.error(i), Some(Error::UnknownCommand))),
        "{:?}",
        res.errors
    );
    assert_eq!(c.meta_support()[0].1, Some(false));
    // ... and the next one goes classic
    let got = c.get_many(&[b"hit1", b"nope"]).unwrap();
    assert_eq!(got[0].as_ref().unwrap().data, b"hit1");
    assert_eq!(got[1], None);
    assert_eq!(seen.get_lines.load(Ordering::SeqCst), 1);
}

#[test]
fn real_memcached_is_detected_once() {
    let m = Memcached::start();
    let c = client(&[m.addr()], UseMeta::Auto, |_| {});
    c.set(b"k", b"v", 0, 0, Some(false)).unwrap();
    assert_eq!(c.meta_support()[0].1, None);
    // a single-key get does not probe
    c.get(b"k").unwrap();
    assert_eq!(c.meta_support()[0].1, None);
    assert_eq!(c.get_many(&[b"k"]).unwrap()[0].as_ref().unwrap().data, b"v");
    assert_eq!(c.meta_support()[0].1, Some(true));
    // buffered noreply writes ahead of a meta multi-get: their barrier is
    // consumed first
    for i in 0..10 {
        c.set(format!("n{i}").as_bytes(), b"w", 0, 0, Some(true))
            .unwrap();
    }
    let got = c.get_many(&[b"n0", b"n9", b"k"]).unwrap();
    assert!(got.iter().all(|v| v.is_some()));
}

/// A meta server (MN to mn) that answers keys starting with "hit" (value
/// = key, flags 3), sends nothing for the others (quiet misses), and a
/// CLIENT_ERROR for keys starting with "bad".
fn meta_with_errors() -> FakePeer {
    FakePeer::start(move |_, s| {
        let mut w = s.try_clone().unwrap();
        for line in BufReader::new(s).lines() {
            let Ok(line) = line else { return };
            let words: Vec<&str> = line.trim_end().split(' ').collect();
            let out = match words[0] {
                "mn" => "MN\r\n".to_string(),
                "mg" => {
                    let key = words[1];
                    let tag = words.iter().find(|w| w.starts_with('O')).unwrap_or(&"");
                    if key.starts_with("hit") {
                        format!("VA {} f3 {tag}\r\n{key}\r\n", key.len())
                    } else if key.starts_with("bad") {
                        "CLIENT_ERROR bad command line format\r\n".to_string()
                    } else {
                        String::new()
                    }
                }
                _ => "ERROR\r\n".to_string(),
            };
            if w.write_all(out.as_bytes()).is_err() {
                return;
            }
        }
    })
}

#[test]
fn an_error_line_fails_only_the_keys_it_may_belong_to() {
    let peer = meta_with_errors();
    let c = client(&[peer.addr()], UseMeta::Auto, |_| {});
    let ks: [&[u8]; 7] = [
        b"hit1", b"bad1", b"hit2", b"miss1", b"hit3", b"miss2", b"bad2",
    ];
    for _ in 0..2 {
        let (res, got) = fetch(&c, Retrieve::Get, &ks);
        assert_eq!(res.status[0], KeyStatus::Ok);
        // between two hits: exactly that key
        assert!(matches!(res.error(1), Some(Error::Client(m)) if m == "bad command line format"));
        assert_eq!(res.status[2], KeyStatus::Ok);
        assert_eq!(res.status[3], KeyStatus::NotFound);
        assert_eq!(res.status[4], KeyStatus::Ok);
        // after the last hit the error may be either key's: both fail
        assert!(matches!(res.error(5), Some(Error::Client(_))));
        assert!(matches!(res.error(6), Some(Error::Client(_))));
        assert_eq!(got[4].as_ref().unwrap().data, b"hit3");
        assert_eq!(got[4].as_ref().unwrap().flags, 3);
    }
    // the stream stayed in step: the same connection serves on
    assert_eq!(
        c.counters()
            .iter()
            .find(|(_, n, _)| *n == "connects")
            .map(|t| t.2),
        Some(1)
    );
    // the whole-call API fails on a failed key, as classic does
    assert!(c.get_many(&ks).is_err());
    assert_eq!(
        c.get_many(&ks[..1]).unwrap()[0].as_ref().unwrap().data,
        b"hit1"
    );
}

/// A meta server that answers the first key of a batch and then closes the
/// connection (a server dying part-way through a reply).
fn meta_dies_midway(conns: Arc<AtomicUsize>) -> FakePeer {
    FakePeer::start(move |_, s| {
        conns.fetch_add(1, Ordering::SeqCst);
        let mut w: TcpStream = s.try_clone().unwrap();
        for line in BufReader::new(s).lines() {
            let Ok(line) = line else { return };
            let words: Vec<&str> = line.trim_end().split(' ').collect();
            match words[0] {
                "mn" => {
                    let _ = w.write_all(b"MN\r\n");
                }
                "mg" => {
                    let key = words[1];
                    let _ = w.write_all(format!("VA {} f0 O0\r\n{key}\r\n", key.len()).as_bytes());
                    let _ = w.shutdown(std::net::Shutdown::Both);
                    return;
                }
                _ => {
                    let _ = w.write_all(b"ERROR\r\n");
                }
            }
        }
    })
}

#[test]
fn a_server_failing_part_way_fails_its_keys_only() {
    // real servers: one killed after it was found to speak meta
    let mut servers: Vec<Memcached> = (0..3).map(|_| Memcached::start()).collect();
    let c = client(&addrs(&servers), UseMeta::Auto, |b| {
        b.connect_timeout(Duration::from_millis(300)).unwrap();
    });
    let keys: Vec<Vec<u8>> = (0..90).map(|i| format!("p:{i}").into_bytes()).collect();
    let ks = refs(&keys);
    for k in &ks {
        c.set(k, k, 0, 0, Some(false)).unwrap();
    }
    let (res, _) = fetch(&c, Retrieve::Get, &ks);
    assert_eq!(res.count(KeyStatus::Ok), 90);
    // where each key lives, from each server alone
    let home: Vec<usize> = ks
        .iter()
        .map(|k| {
            (0..3)
                .find(|&s| {
                    Client::connect(&servers[s].addr())
                        .unwrap()
                        .get(k)
                        .unwrap()
                        .is_some()
                })
                .expect("stored somewhere")
        })
        .collect();
    servers[1].kill();
    let (res, got) = fetch(&c, Retrieve::Get, &ks);
    for (i, st) in res.status.iter().enumerate() {
        if home[i] == 1 {
            assert!(
                matches!(
                    res.error(i),
                    Some(Error::ConnectFailed { .. } | Error::UnexpectedClose)
                ),
                "key {i}: {st:?} {:?}",
                res.error(i)
            );
            assert!(got[i].is_none() || matches!(st, KeyStatus::Failed(_)));
        } else {
            assert_eq!(*st, KeyStatus::Ok, "key {i}");
            assert_eq!(got[i].as_ref().unwrap().data, ks[i]);
        }
    }
    assert!(matches!(res.summary(), mcrs::value::Summary::Partial));

    // a fake that dies after the first hit of a reply: the hit it sent is
    // not trusted, every key of the server fails
    let conns = Arc::new(AtomicUsize::new(0));
    let peer = meta_dies_midway(conns.clone());
    let c = client(&[peer.addr()], UseMeta::Auto, |_| {});
    let (res, _) = fetch(&c, Retrieve::Get, &[b"a", b"b", b"c"]);
    for i in 0..3 {
        assert!(
            matches!(res.error(i), Some(Error::UnexpectedClose)),
            "{:?}",
            res.error(i)
        );
    }
    assert!(conns.load(Ordering::SeqCst) >= 1);
    assert_eq!(c.meta_support()[0].1, Some(true));
}

#[test]
fn the_c_option() {
    use mcrs::ffi::client::{mcrs_client_free, mcrs_client_get_many, mcrs_client_new};
    use mcrs::ffi::config::{mcrs_config_add_server, mcrs_config_free, mcrs_config_new};
    use mcrs::ffi::mcrs_status;
    use mcrs::ffi::meta_many::{mcrs_config_set_meta, MCRS_META_AUTO, MCRS_META_OFF, MCRS_META_ON};
    use mcrs::ffi::value::{mcrs_values_free, mcrs_values_get, mcrs_values_len};
    let m = Memcached::start();
    Client::connect(&m.addr())
        .unwrap()
        .set(b"ck", b"cv", 0, 0, Some(false))
        .unwrap();
    let addr = std::ffi::CString::new(m.addr()).unwrap();
    for mode in [MCRS_META_AUTO, MCRS_META_OFF, MCRS_META_ON] {
        let cfg = mcrs_config_new();
        assert_eq!(
            mcrs_config_add_server(cfg, addr.as_ptr()),
            mcrs_status::MCRS_STATUS_OK
        );
        assert_eq!(mcrs_config_set_meta(cfg, mode), mcrs_status::MCRS_STATUS_OK);
        let mut c = std::ptr::null_mut();
        assert_eq!(mcrs_client_new(cfg, &mut c), mcrs_status::MCRS_STATUS_OK);
        mcrs_config_free(cfg);
        let keys = [b"ck".as_ptr(), b"zz".as_ptr()];
        let lens = [2usize, 2];
        let mut vs = std::ptr::null_mut();
        let st = mcrs_client_get_many(c, keys.as_ptr(), lens.as_ptr(), 2, &mut vs);
        assert_eq!(st, mcrs_status::MCRS_STATUS_OK);
        assert_eq!(mcrs_values_len(vs), 2);
        assert!(!mcrs_values_get(vs, 0).is_null());
        assert!(mcrs_values_get(vs, 1).is_null());
        mcrs_values_free(vs);
        mcrs_client_free(c);
    }
    let cfg = mcrs_config_new();
    assert_eq!(
        mcrs_config_set_meta(cfg, 3),
        mcrs_status::MCRS_STATUS_INVALID_ARGUMENT
    );
    assert_eq!(
        mcrs_config_set_meta(std::ptr::null_mut(), MCRS_META_ON),
        mcrs_status::MCRS_STATUS_NULL_POINTER
    );
    mcrs_config_free(cfg);
}
