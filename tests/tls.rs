//! TLS and authentication against real `memcached -Z` / `-Y` servers, with
//! certificates generated at test time (rcgen), plus a stalled peer for the
//! handshake timeout. Each case works, or is refused quickly with the right
//! error.

mod common;

use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{drain, FakePeer, Memcached};
use mcrs::conn::{Conn, ConnOptions, ServerAddr};
use mcrs::engine::EventLoop;
use mcrs::protocol::{Retrieve, StoreCmd};
use mcrs::request::{Ack, Outcome, Request};
use mcrs::{Client, ClientBuilder, Error};
use rcgen::{
    date_time_ymd, BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair,
};

/// Certificates for one test, in a fresh temp dir (removed on drop).
struct Pki {
    dir: PathBuf,
}

static UNIQUE: AtomicUsize = AtomicUsize::new(0);

fn ca_params(name: &str) -> CertificateParams {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(DnType::CommonName, name);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p
}

impl Pki {
    fn new() -> Pki {
        let dir = std::env::temp_dir().join(format!(
            "mcrs-tls-{}-{}",
            std::process::id(),
            UNIQUE.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let pki = Pki { dir };
        let ca =
            CertifiedIssuer::self_signed(ca_params("mcrs test CA"), KeyPair::generate().unwrap())
                .unwrap();
        let rogue =
            CertifiedIssuer::self_signed(ca_params("untrusted CA"), KeyPair::generate().unwrap())
                .unwrap();
        pki.write("ca.pem", &ca.pem());
        let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        let leaf = |issuer: &CertifiedIssuer<'_, KeyPair>, file: &str, expired: bool| {
            let key = KeyPair::generate().unwrap();
            let mut p = CertificateParams::new(names.clone()).unwrap();
            p.distinguished_name.push(DnType::CommonName, "memcached");
            if expired {
                p.not_before = date_time_ymd(2020, 1, 1);
                p.not_after = date_time_ymd(2021, 1, 1);
            }
            let cert = p.signed_by(&key, issuer).unwrap();
            pki.write(&format!("{file}.pem"), &cert.pem());
            pki.write(&format!("{file}.key"), &key.serialize_pem());
        };
        leaf(&ca, "server", false);
        leaf(&ca, "expired", true);
        leaf(&ca, "client", false);
        leaf(&rogue, "rogue", false);
        pki
    }

    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.dir.join(name), text).unwrap();
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    /// memcached -Z with the certificate `which` ("server", "expired", "rogue").
    fn server_args(&self, which: &str) -> Vec<String> {
        vec![
            "-Z".into(),
            "-o".into(),
            format!("ssl_chain_cert={}", self.path(&format!("{which}.pem"))),
            "-o".into(),
            format!("ssl_key={}", self.path(&format!("{which}.key"))),
        ]
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn start(args: &[String]) -> Memcached {
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    Memcached::start_with(&a)
}

/// A builder for `addr` with short timeouts and TLS verified by the test CA.
fn tls_builder(pki: &Pki, addr: &str) -> ClientBuilder {
    let mut b = ClientBuilder::new();
    b.add_server(addr).unwrap();
    b.connect_timeout(Duration::from_millis(500)).unwrap();
    b.timeout(Duration::from_millis(500)).unwrap();
    b.tls(true);
    b.tls_ca_file(&pki.path("ca.pem")).unwrap();
    b
}

fn roundtrip(c: &Client) {
    assert!(c.set(b"tls_key", b"over tls", 7, 0, Some(false)).unwrap());
    let v = c.get(b"tls_key").unwrap().unwrap();
    assert_eq!((v.data.as_slice(), v.flags), (&b"over tls"[..], 7));
    let big = vec![b'x'; 300_000]; // many TLS records each way
    c.set(b"big", &big, 0, 0, Some(false)).unwrap();
    assert_eq!(c.get(b"big").unwrap().unwrap().data, big);
    let keys: Vec<&[u8]> = vec![b"tls_key", b"missing", b"big"];
    let got = c.get_many(&keys).unwrap();
    assert!(got[0].is_some() && got[1].is_none() && got[2].is_some());
}

/// The TLS error of a get, which must come within `within`.
fn tls_error(c: &Client, within: Duration) -> String {
    let t = Instant::now();
    let r = c.get(b"k");
    assert!(t.elapsed() < within, "took {:?}", t.elapsed());
    match r {
        Err(Error::Tls(d)) => d,
        other => panic!("expected a TLS error, got {other:?}"),
    }
}

#[test]
fn verified_tls_by_ip_and_by_name() {
    let pki = Pki::new();
    let m = start(&pki.server_args("server"));
    roundtrip(&tls_builder(&pki, &m.addr()).build().unwrap());
    let by_name = format!("localhost:{}", m.port);
    roundtrip(&tls_builder(&pki, &by_name).build().unwrap());
    // an explicit server name that the certificate holds
    let mut b = tls_builder(&pki, &m.addr());
    b.tls_server_name("localhost").unwrap();
    roundtrip(&b.build().unwrap());
}

#[test]
fn untrusted_ca_is_refused() {
    let pki = Pki::new();
    let m = start(&pki.server_args("rogue"));
    let d = tls_error(
        &tls_builder(&pki, &m.addr()).build().unwrap(),
        Duration::from_secs(2),
    );
    assert!(d.contains("unknown CA"), "{d}");
}

#[test]
fn name_mismatch_is_refused() {
    let pki = Pki::new();
    let m = start(&pki.server_args("server"));
    let mut b = tls_builder(&pki, &m.addr());
    b.tls_server_name("cache.example.com").unwrap();
    let d = tls_error(&b.build().unwrap(), Duration::from_secs(2));
    assert!(d.contains("name mismatch"), "{d}");
}

#[test]
fn expired_certificate_is_refused() {
    let pki = Pki::new();
    let m = start(&pki.server_args("expired"));
    let d = tls_error(
        &tls_builder(&pki, &m.addr()).build().unwrap(),
        Duration::from_secs(2),
    );
    assert!(d.contains("expired"), "{d}");
}

#[test]
fn private_ca_with_only_system_roots_is_refused() {
    let pki = Pki::new();
    let m = start(&pki.server_args("server"));
    let mut b = ClientBuilder::new();
    b.add_server(&m.addr()).unwrap();
    b.tls(true);
    let d = tls_error(&b.build().unwrap(), Duration::from_secs(2));
    assert!(d.contains("unknown CA"), "{d}");
}

#[test]
fn verification_off_accepts_any_certificate() {
    let pki = Pki::new();
    let m = start(&pki.server_args("rogue"));
    let mut b = ClientBuilder::new();
    b.add_server(&m.addr()).unwrap();
    b.tls(true).tls_verify(false);
    roundtrip(&b.build().unwrap());
}

#[test]
fn tls_client_against_a_plaintext_server() {
    let pki = Pki::new();
    let m = Memcached::start();
    let d = tls_error(
        &tls_builder(&pki, &m.addr()).build().unwrap(),
        Duration::from_secs(2),
    );
    assert!(
        d.contains("does not speak TLS") || d.contains("handshake timeout"),
        "{d}"
    );
}

#[test]
fn plaintext_client_against_a_tls_server_fails_quickly() {
    let pki = Pki::new();
    let m = start(&pki.server_args("server"));
    let mut b = ClientBuilder::new();
    b.add_server(&m.addr()).unwrap();
    b.timeout(Duration::from_millis(500)).unwrap();
    let c = b.build().unwrap();
    let t = Instant::now();
    let r = c.get(b"k");
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "took {:?}",
        t.elapsed()
    );
    // memcached drops the connection on bytes that are not TLS
    assert!(matches!(r, Err(Error::UnexpectedClose)), "{r:?}");
}

#[test]
fn mutual_tls_with_and_without_a_client_certificate() {
    let pki = Pki::new();
    let mut args = pki.server_args("server");
    args.extend([
        "-o".to_string(),
        "ssl_verify_mode=2".to_string(),
        "-o".to_string(),
        format!("ssl_ca_cert={}", pki.path("ca.pem")),
    ]);
    let m = start(&args);
    let without = tls_builder(&pki, &m.addr()).build().unwrap();
    let d = tls_error(&without, Duration::from_secs(2));
    assert!(d.contains("client certificate"), "{d}");

    let mut b = tls_builder(&pki, &m.addr());
    b.tls_cert_file(&pki.path("client.pem")).unwrap();
    b.tls_key_file(&pki.path("client.key")).unwrap();
    let with = b.build().unwrap();
    roundtrip(&with);

    // the refusal (which TLS 1.3 delivers after the handshake) is remembered:
    // no new handshake per call
    let before = total_connections(&with);
    for _ in 0..20 {
        assert!(tls_error(&without, Duration::from_secs(1)).contains("client certificate"));
    }
    let after = total_connections(&with);
    assert!(after - before <= 2, "{before} -> {after}");

    // PEM bytes instead of files
    let mut b = ClientBuilder::new();
    b.add_server(&m.addr()).unwrap();
    b.tls(true);
    b.tls_ca_pem(&std::fs::read(pki.path("ca.pem")).unwrap())
        .unwrap();
    b.tls_cert_pem(&std::fs::read(pki.path("client.pem")).unwrap())
        .unwrap();
    b.tls_key_pem(&std::fs::read(pki.path("client.key")).unwrap())
        .unwrap();
    roundtrip(&b.build().unwrap());
}

#[test]
fn mutual_tls_reconnects() {
    // memcached -Z with ssl_verify_mode but without ssl_session_cache has no
    // session id context: OpenSSL answers a resumed handshake with an
    // internal_error alert, so a client with a certificate must not resume
    let pki = Pki::new();
    let mut args = pki.server_args("server");
    args.extend([
        "-o".to_string(),
        "ssl_verify_mode=2".to_string(),
        "-o".to_string(),
        format!("ssl_ca_cert={}", pki.path("ca.pem")),
    ]);
    let m = start(&args);
    let mut b = tls_builder(&pki, &m.addr());
    b.tls_cert_file(&pki.path("client.pem")).unwrap();
    b.tls_key_file(&pki.path("client.key")).unwrap();
    let c = b.build().unwrap();
    c.set(b"k", b"v", 0, 0, Some(false)).unwrap();
    for _ in 0..3 {
        c.quit(); // the next call connects again
        assert_eq!(c.get(b"k").unwrap().unwrap().data, b"v");
    }
    // and the event loop's connection, beside the blocking pool's
    let got = loop_gets(&c, &[b"k"]);
    assert!(matches!(&got[0], Outcome::Value(Ok(Some(_)))), "{got:?}");
}

#[test]
fn bad_settings_are_refused_before_any_io() {
    let pki = Pki::new();
    let mut b = ClientBuilder::new();
    b.add_server("127.0.0.1:1").unwrap();
    assert!(matches!(
        b.tls_ca_file("/nonexistent/ca.pem"),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        b.tls_ca_pem(b"not a pem"),
        Err(Error::InvalidArgument(_))
    ));
    let key = std::fs::read(pki.path("client.key")).unwrap();
    assert!(matches!(b.tls_ca_pem(&key), Err(Error::InvalidArgument(_))));
    assert!(matches!(
        b.tls_key_pem(b"junk"),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        b.tls_server_name("bad name!"),
        Err(Error::InvalidArgument(_))
    ));
    // TLS settings while TLS is off, a certificate without its key
    b.tls_ca_file(&pki.path("ca.pem")).unwrap();
    assert!(matches!(b.build(), Err(Error::InvalidArgument(_))));
    b.tls(true);
    b.build().unwrap();
    b.tls_cert_file(&pki.path("client.pem")).unwrap();
    assert!(matches!(b.build(), Err(Error::InvalidArgument(_))));
    // a key that does not belong to the certificate
    b.tls_key_file(&pki.path("server.key")).unwrap();
    assert!(matches!(b.build(), Err(Error::InvalidArgument(_))));
    assert!(matches!(
        b.auth("a b", "pw"),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        b.auth("a", "p\r\nw"),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(b.auth("", "pw"), Err(Error::InvalidArgument(_))));
}

#[test]
fn stalled_tls_peer_times_out_at_connect_timeout() {
    // accepts and reads, never answers the ClientHello
    let peer = FakePeer::start(|_, mut s| drain(&mut s));
    let pki = Pki::new();
    let mut b = tls_builder(&pki, &peer.addr());
    b.connect_timeout(Duration::from_millis(300)).unwrap();
    let c = b.build().unwrap();
    let t = Instant::now();
    let d = tls_error(&c, Duration::from_secs(2));
    assert!(
        t.elapsed() >= Duration::from_millis(250),
        "{:?}",
        t.elapsed()
    );
    assert!(d.contains("handshake timeout"), "{d}");
}

#[test]
fn tls_server_killed_and_restarted() {
    let pki = Pki::new();
    let mut m = start(&pki.server_args("server"));
    let c = tls_builder(&pki, &m.addr()).build().unwrap();
    c.set(b"a", b"1", 0, 0, Some(false)).unwrap();
    m.kill();
    assert!(c.get(b"a").is_err());
    m.restart();
    // the stale connection is dropped, a new handshake is made
    assert_eq!(c.get(b"a").unwrap(), None);
    c.set(b"a", b"2", 0, 0, Some(false)).unwrap();
    assert_eq!(c.get(b"a").unwrap().unwrap().data, b"2");
}

/// Options for a bare `Conn` with the TLS settings of `b`.
fn conn_options(b: &ClientBuilder) -> ConnOptions {
    ConnOptions {
        connect_timeout: Duration::from_millis(500),
        timeout: Duration::from_millis(500),
        no_delay: true,
        keepalive: false,
        max_value: 1 << 20,
        tls: b.tls_connector().unwrap(),
        auth: None,
    }
}

/// Sends `version` on `conn`: true when the server answered it.
fn version(conn: &mut Conn) -> bool {
    let d = conn.deadline();
    mcrs::protocol::encode::version(&mut conn.wbuf);
    conn.flush(d).unwrap();
    conn.read_response(d, |r| matches!(r, mcrs::protocol::Response::Version(_)))
        .unwrap()
}

#[test]
fn sessions_resume_on_reconnect() {
    let pki = Pki::new();
    let m = start(&pki.server_args("server"));
    let b = tls_builder(&pki, &m.addr());
    let opts = conn_options(&b);
    let addr = ServerAddr::parse(&m.addr()).unwrap();
    let mut first = Conn::connect(&addr, &opts).unwrap();
    assert_eq!(first.tls_resumed(), Some(false));
    // the session ticket arrives after the handshake, with the first reply
    assert!(version(&mut first));
    let mut second = Conn::connect(&addr, &opts).unwrap();
    assert!(version(&mut second));
    assert_eq!(second.tls_resumed(), Some(true));
}

/// The server's count of connections accepted so far.
fn total_connections(c: &Client) -> u64 {
    let s = c.stats("").unwrap();
    s.iter()
        .find(|(_, k, _)| k == "total_connections")
        .unwrap()
        .2
        .parse()
        .unwrap()
}

fn auth_file(pki: &Pki) -> String {
    pki.write("auth", "alice:secret\nbob:hunter2\n");
    pki.path("auth")
}

#[test]
fn auth_with_the_right_password_a_wrong_one_and_none() {
    let pki = Pki::new();
    let m = start(&["-Y".to_string(), auth_file(&pki)]);
    let with = |user: Option<(&str, &str)>| {
        let mut b = ClientBuilder::new();
        b.add_server(&m.addr()).unwrap();
        if let Some((u, p)) = user {
            b.auth(u, p).unwrap();
        }
        b.build().unwrap()
    };
    let good = with(Some(("alice", "secret")));
    good.set(b"k", b"v", 0, 0, None).unwrap();
    assert_eq!(good.get(b"k").unwrap().unwrap().data, b"v");
    assert_eq!(
        with(Some(("bob", "hunter2")))
            .get(b"k")
            .unwrap()
            .unwrap()
            .data,
        b"v"
    );

    let conns = |c: &Client| -> u64 {
        let s = c.stats("").unwrap();
        s.iter()
            .find(|(_, k, _)| k == "total_connections")
            .unwrap()
            .2
            .parse()
            .unwrap()
    };
    let before = conns(&good);
    let wrong = with(Some(("alice", "wrong-password")));
    let t = Instant::now();
    for _ in 0..50 {
        match wrong.get(b"k") {
            Err(Error::AuthFailed(d)) => {
                assert!(d.contains("alice"), "{d}");
                assert!(!d.contains("wrong-password"), "the password leaked: {d}");
            }
            other => panic!("expected AuthFailed, got {other:?}"),
        }
    }
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    // one login was tried, not fifty (the refusal is remembered)
    assert!(conns(&good) - before <= 2, "{} -> {}", before, conns(&good));

    let none = with(None);
    match none.get(b"k") {
        Err(Error::AuthFailed(d)) => assert!(d.contains("requires authentication"), "{d}"),
        other => panic!("expected AuthFailed, got {other:?}"),
    }
    // a noreply write to a server that demands a login is refused too, by
    // the next reply
    none.set(b"k2", b"v", 0, 0, None).unwrap();
    let r = none.get(b"k2");
    assert!(matches!(r, Err(Error::AuthFailed(_))), "{r:?}");
    assert_eq!(good.get(b"k2").unwrap(), None);
}

#[test]
fn the_login_leaves_nothing_on_a_server_without_auth() {
    let m = Memcached::start();
    let mut b = ClientBuilder::new();
    b.add_server(&m.addr()).unwrap();
    b.auth("alice", "secret").unwrap();
    let c = b.build().unwrap();
    assert_eq!(c.get(b"mcrs_auth").unwrap(), None);
    let plain = Client::connect(&m.addr()).unwrap();
    assert_eq!(plain.get(b"mcrs_auth").unwrap(), None);
}

#[test]
fn auth_over_tls() {
    let pki = Pki::new();
    let mut args = pki.server_args("server");
    args.extend(["-Y".to_string(), auth_file(&pki)]);
    let m = start(&args);
    let mut b = tls_builder(&pki, &m.addr());
    b.auth("alice", "secret").unwrap();
    roundtrip(&b.build().unwrap());
    let mut b = tls_builder(&pki, &m.addr());
    b.auth("alice", "nope").unwrap();
    assert!(matches!(
        b.build().unwrap().get(b"k"),
        Err(Error::AuthFailed(_))
    ));
    let c = tls_builder(&pki, &m.addr()).build().unwrap();
    assert!(matches!(c.get(b"k"), Err(Error::AuthFailed(_))));
}

/// Gets `keys` on an event loop over `c`; the outcome of each.
fn loop_gets(c: &Client, keys: &[&[u8]]) -> Vec<Outcome> {
    let mut lp = EventLoop::new(c).unwrap();
    let log: Rc<RefCell<Vec<Outcome>>> = Rc::default();
    for k in keys {
        let l = log.clone();
        lp.submit_with(
            &Request::Retrieve {
                cmd: Retrieve::Get,
                key: k,
            },
            move |o| l.borrow_mut().push(o),
        )
        .unwrap();
    }
    let end = Instant::now() + Duration::from_secs(3);
    while log.borrow().len() < keys.len() && Instant::now() < end {
        lp.wait(Duration::from_millis(20)).unwrap();
    }
    let out = std::mem::take(&mut *log.borrow_mut());
    assert_eq!(out.len(), keys.len(), "{out:?}");
    out
}

/// Runs `reqs` on `lp` (one loop: its connections persist between calls);
/// the outcome of each, in order, which must all come within `within`.
fn loop_run(lp: &mut EventLoop, reqs: &[Request<'_>], within: Duration) -> Vec<Outcome> {
    let log: Rc<RefCell<Vec<(usize, Outcome)>>> = Rc::default();
    for (i, r) in reqs.iter().enumerate() {
        let l = log.clone();
        lp.submit_with(r, move |o| l.borrow_mut().push((i, o)))
            .unwrap();
    }
    let end = Instant::now() + within;
    while log.borrow().len() < reqs.len() && Instant::now() < end {
        lp.wait(Duration::from_millis(20)).unwrap();
    }
    let mut out = std::mem::take(&mut *log.borrow_mut());
    assert_eq!(
        out.len(),
        reqs.len(),
        "not all done within {within:?}: {out:?}"
    );
    out.sort_by_key(|(i, _)| *i);
    out.into_iter().map(|(_, o)| o).collect()
}

fn get(key: &[u8]) -> Request<'_> {
    Request::Retrieve {
        cmd: Retrieve::Get,
        key,
    }
}

fn set<'a>(key: &'a [u8], value: &'a [u8], noreply: bool) -> Request<'a> {
    Request::Store {
        cmd: StoreCmd::Set,
        key,
        value,
        flags: 5,
        exptime: 0,
        noreply: Some(noreply),
    }
}

fn hit(o: &Outcome) -> Option<Vec<u8>> {
    match o {
        Outcome::Value(Ok(v)) => v.as_ref().map(|v| v.data().to_vec()),
        other => panic!("expected a value, got {other:?}"),
    }
}

/// The TLS error detail of one get on a new loop, which must come within `within`.
fn loop_tls_error(c: &Client, within: Duration) -> String {
    let mut lp = EventLoop::new(c).unwrap();
    let t = Instant::now();
    let out = loop_run(&mut lp, &[get(b"k")], within);
    assert!(t.elapsed() < within, "took {:?}", t.elapsed());
    match &out[..] {
        [Outcome::Value(Err(Error::Tls(d)))] => d.clone(),
        other => panic!("expected a TLS error, got {other:?}"),
    }
}

/// Sets, gets (a value of many records too) and a get_many on a loop.
fn loop_roundtrip(c: &Client) {
    let mut lp = EventLoop::new(c).unwrap();
    let w = Duration::from_secs(5);
    let out = loop_run(
        &mut lp,
        &[
            set(b"loop_tls", b"over tls", false),
            set(b"loop_quiet", b"noreply", true),
            get(b"loop_tls"),
            get(b"loop_missing"),
            get(b"loop_quiet"),
        ],
        w,
    );
    assert!(matches!(out[0], Outcome::Ack(Ok(Ack::Done))), "{out:?}");
    assert_eq!(hit(&out[2]).as_deref(), Some(&b"over tls"[..]));
    assert_eq!(hit(&out[3]), None);
    assert_eq!(hit(&out[4]).as_deref(), Some(&b"noreply"[..]));
    // many TLS records each way; alone, since memcached 1.6.18 stalls on
    // commands pipelined behind a big value over TLS (python's ssl too)
    let big = vec![b'y'; 300_000];
    let out = loop_run(&mut lp, &[set(b"loop_big", &big, false)], w);
    assert!(matches!(out[0], Outcome::Ack(Ok(Ack::Done))), "{out:?}");
    let out = loop_run(
        &mut lp,
        &[
            get(b"loop_big"),
            Request::RetrieveMany {
                cmd: Retrieve::Get,
                keys: vec![b"loop_tls", b"loop_missing", b"loop_big"],
            },
        ],
        w,
    );
    assert_eq!(hit(&out[0]), Some(big.clone()));
    let Outcome::Values(Ok(vs)) = &out[1] else {
        panic!("{:?}", out[1])
    };
    assert_eq!(vs.get(0).unwrap().data(), b"over tls");
    assert!(vs.get(1).is_none());
    assert_eq!(vs.get(2).unwrap().data(), &big[..]);
    // the blocking calls see what the loop stored
    assert_eq!(c.get(b"loop_tls").unwrap().unwrap().flags, 5);
}

#[test]
fn the_event_loop_speaks_tls_by_ip_and_by_name() {
    let pki = Pki::new();
    let m = start(&pki.server_args("server"));
    loop_roundtrip(&tls_builder(&pki, &m.addr()).build().unwrap());
    let by_name = format!("localhost:{}", m.port);
    loop_roundtrip(&tls_builder(&pki, &by_name).build().unwrap());
}

#[test]
fn the_event_loop_refuses_bad_certificates() {
    let pki = Pki::new();
    let rogue = start(&pki.server_args("rogue"));
    let c = tls_builder(&pki, &rogue.addr()).build().unwrap();
    let mut lp = EventLoop::new(&c).unwrap();
    let first = loop_run(&mut lp, &[get(b"k"), get(b"l")], Duration::from_secs(2));
    for o in &first {
        let d = format!("{:?}", o.error());
        assert!(d.contains("unknown CA") && d.contains(&rogue.addr()), "{d}");
    }
    // remembered by the loop's connection: the next requests fail at once,
    // without a handshake
    let mut b = ClientBuilder::new();
    b.add_server(&rogue.addr()).unwrap();
    b.tls(true).tls_verify(false);
    let observer = b.build().unwrap();
    let before = total_connections(&observer);
    for _ in 0..5 {
        let t = Instant::now();
        let out = loop_run(&mut lp, &[get(b"k")], Duration::from_secs(1));
        assert!(
            t.elapsed() < Duration::from_millis(100),
            "{:?}",
            t.elapsed()
        );
        assert!(
            matches!(&out[0], Outcome::Value(Err(Error::Tls(d))) if d.contains("unknown CA")),
            "{out:?}"
        );
    }
    assert_eq!(total_connections(&observer), before);

    let m = start(&pki.server_args("server"));
    let mut b = tls_builder(&pki, &m.addr());
    b.tls_server_name("cache.example.com").unwrap();
    let d = loop_tls_error(&b.build().unwrap(), Duration::from_secs(2));
    assert!(d.contains("name mismatch"), "{d}");

    let expired = start(&pki.server_args("expired"));
    let d = loop_tls_error(
        &tls_builder(&pki, &expired.addr()).build().unwrap(),
        Duration::from_secs(2),
    );
    assert!(d.contains("expired"), "{d}");
}

#[test]
fn the_event_loop_against_a_plaintext_server_fails_at_once() {
    let pki = Pki::new();
    let m = Memcached::start();
    let mut b = tls_builder(&pki, &m.addr());
    // far beyond the assertion below: a hang to the timeout would fail it
    b.connect_timeout(Duration::from_secs(5)).unwrap();
    let d = loop_tls_error(&b.build().unwrap(), Duration::from_secs(1));
    assert!(d.contains("does not speak TLS (it answered"), "{d}");
}

#[test]
fn a_stalled_tls_server_fails_the_loop_at_connect_timeout() {
    let pki = Pki::new();
    let m = start(&pki.server_args("server"));
    let mut b = tls_builder(&pki, &m.addr());
    b.connect_timeout(Duration::from_millis(300)).unwrap();
    b.timeout(Duration::from_secs(3)).unwrap();
    let c = b.build().unwrap();
    // the kernel still accepts the connection; nobody answers the ClientHello
    m.pause();
    let t = Instant::now();
    let d = loop_tls_error(&c, Duration::from_secs(2));
    let took = t.elapsed();
    m.resume();
    assert!(d.contains("handshake timeout"), "{d}");
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_millis(1500),
        "{took:?}"
    );
}

#[test]
fn a_tls_server_killed_and_restarted_under_the_loop() {
    let pki = Pki::new();
    let mut m = start(&pki.server_args("server"));
    let c = tls_builder(&pki, &m.addr()).build().unwrap();
    let mut lp = EventLoop::new(&c).unwrap();
    let w = Duration::from_secs(3);
    let out = loop_run(&mut lp, &[set(b"a", b"1", false), get(b"a")], w);
    assert_eq!(hit(&out[1]).as_deref(), Some(&b"1"[..]));
    m.kill();
    let out = loop_run(&mut lp, &[get(b"a")], w);
    assert!(out[0].error().is_some(), "{out:?}");
    m.restart();
    // a new connection and a new handshake, on the same loop
    let out = loop_run(&mut lp, &[get(b"a"), set(b"a", b"2", false), get(b"a")], w);
    assert_eq!(hit(&out[0]), None);
    assert_eq!(hit(&out[2]).as_deref(), Some(&b"2"[..]));
    assert!(lp.tls_resumed(0).is_some(), "a TLS connection is up");
}

#[test]
fn the_event_loop_resumes_tls_sessions() {
    let pki = Pki::new();
    let m = start(&pki.server_args("server"));
    let c = tls_builder(&pki, &m.addr()).build().unwrap();
    let w = Duration::from_secs(3);
    let mut first = EventLoop::new(&c).unwrap();
    assert_eq!(first.tls_resumed(0), None);
    assert_eq!(hit(&loop_run(&mut first, &[get(b"r")], w)[0]), None);
    assert_eq!(first.tls_resumed(0), Some(false));
    // the session ticket came with the reply: a new connection resumes
    let mut second = EventLoop::new(&c).unwrap();
    assert_eq!(hit(&loop_run(&mut second, &[get(b"r")], w)[0]), None);
    assert_eq!(second.tls_resumed(0), Some(true));
}

#[test]
fn the_event_loop_logs_in_over_tls() {
    let pki = Pki::new();
    let mut args = pki.server_args("server");
    args.extend(["-Y".to_string(), auth_file(&pki)]);
    let m = start(&args);
    let with = |pw: Option<&str>| {
        let mut b = tls_builder(&pki, &m.addr());
        if let Some(pw) = pw {
            b.auth("alice", pw).unwrap();
        }
        b.build().unwrap()
    };
    loop_roundtrip(&with(Some("secret")));
    for (pw, want) in [
        (Some("wrong-password"), "alice"),
        (None, "requires authentication"),
    ] {
        let c = with(pw);
        let mut lp = EventLoop::new(&c).unwrap();
        let out = loop_run(
            &mut lp,
            &[get(b"loop_tls"), get(b"x")],
            Duration::from_secs(3),
        );
        for o in out {
            match o {
                Outcome::Value(Err(Error::AuthFailed(d))) => {
                    assert!(d.contains(want) && !d.contains("wrong-password"), "{d}")
                }
                other => panic!("expected AuthFailed, got {other:?}"),
            }
        }
    }
}

#[test]
fn the_event_loop_logs_in() {
    let pki = Pki::new();
    let m = start(&["-Y".to_string(), auth_file(&pki)]);
    let with = |user: Option<(&str, &str)>| {
        let mut b = ClientBuilder::new();
        b.add_server(&m.addr()).unwrap();
        b.timeout(Duration::from_millis(500)).unwrap();
        if let Some((u, p)) = user {
            b.auth(u, p).unwrap();
        }
        b.build().unwrap()
    };
    let good = with(Some(("alice", "secret")));
    good.set(b"a", b"1", 0, 0, Some(false)).unwrap();
    good.set(b"b", b"2", 0, 0, Some(false)).unwrap();
    let got = loop_gets(&good, &[b"a", b"missing", b"b"]);
    let data: Vec<Option<Vec<u8>>> = got
        .iter()
        .map(|o| match o {
            Outcome::Value(Ok(v)) => v.as_ref().map(|v| v.data().to_vec()),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(data, vec![Some(b"1".to_vec()), None, Some(b"2".to_vec())]);

    // a wrong password: every request fails with AUTH_FAILED, one login
    let before = total_connections(&good);
    let wrong = with(Some(("alice", "wrong-password")));
    let keys: Vec<&[u8]> = vec![b"a"; 10];
    for _ in 0..3 {
        for o in loop_gets(&wrong, &keys) {
            match o {
                Outcome::Value(Err(Error::AuthFailed(d))) => {
                    assert!(d.contains("alice") && !d.contains("wrong-password"), "{d}")
                }
                other => panic!("{other:?}"),
            }
        }
    }
    let after = total_connections(&good);
    // one loop per round here, each with its own connection and memory
    assert!(after - before <= 4, "{before} -> {after}");

    // no credentials: the server's refusal is an auth failure, not a hang
    match &loop_gets(&with(None), &[b"a"])[..] {
        [Outcome::Value(Err(Error::AuthFailed(d)))] => {
            assert!(d.contains("requires authentication"), "{d}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_stopped_tls_server_times_out_at_the_timeout() {
    let pki = Pki::new();
    let m = start(&pki.server_args("server"));
    let c = tls_builder(&pki, &m.addr()).build().unwrap();
    c.set(b"k", b"v", 0, 0, Some(false)).unwrap();
    m.pause();
    let t = Instant::now();
    let r = c.get(b"k");
    let took = t.elapsed();
    m.resume();
    assert!(matches!(r, Err(Error::Timeout(_))), "{r:?}");
    assert!(
        took >= Duration::from_millis(450) && took < Duration::from_millis(1500),
        "{took:?}"
    );
    // the connection that timed out is dropped; a new one works
    assert_eq!(c.get(b"k").unwrap().unwrap().data, b"v");
}

/// A TLS client of servers a and b that gives up on a server at once
/// (300 ms timeouts, no retries) and retries it after `retry_timeout`.
fn two_tls_servers(pki: &Pki, a: &Memcached, b: &Memcached, retry_timeout: Duration) -> Client {
    let mut builder = ClientBuilder::new();
    builder.add_server(&a.addr()).unwrap();
    builder.add_server(&b.addr()).unwrap();
    builder.connect_timeout(Duration::from_millis(300)).unwrap();
    builder.timeout(Duration::from_millis(300)).unwrap();
    builder.retry_attempts(0).retry_timeout(retry_timeout);
    builder.tls(true);
    builder.tls_ca_file(&pki.path("ca.pem")).unwrap();
    builder.build().unwrap()
}

#[test]
fn a_stalled_tls_server_leaves_the_ring_and_its_keys_fail_over() {
    let pki = Pki::new();
    let (a, b) = (
        start(&pki.server_args("server")),
        start(&pki.server_args("server")),
    );
    let c = two_tls_servers(&pki, &a, &b, Duration::from_millis(50));
    // b accepts connections but never answers a ClientHello
    b.pause();
    let keys: Vec<Vec<u8>> = (0..20).map(|i| format!("key{i}").into_bytes()).collect();
    let mut stored = Vec::new();
    for k in &keys {
        if c.set(k, b"v", 0, 0, Some(false)).is_ok() {
            stored.push(k);
        }
    }
    b.resume();
    // one handshake timeout evicts b (retry_attempts 0); the rest go to a
    assert!(
        stored.len() >= keys.len() - 2,
        "{} of {} stored",
        stored.len(),
        keys.len()
    );
    for k in stored {
        assert_eq!(c.get(k).unwrap().map(|v| v.data), Some(b"v".to_vec()));
    }
}

#[test]
fn the_event_loop_with_mutual_tls() {
    let pki = Pki::new();
    let mut args = pki.server_args("server");
    args.extend([
        "-o".to_string(),
        "ssl_verify_mode=2".to_string(),
        "-o".to_string(),
        format!("ssl_ca_cert={}", pki.path("ca.pem")),
    ]);
    let m = start(&args);
    // no client certificate: TLS 1.3 refuses it after the handshake, in the
    // first read; the refusal is remembered by the loop's connection
    let without = tls_builder(&pki, &m.addr()).build().unwrap();
    let mut lp = EventLoop::new(&without).unwrap();
    let w = Duration::from_secs(2);
    let out = loop_run(&mut lp, &[get(b"k")], w);
    let d = format!("{:?}", out[0].error());
    assert!(d.contains("client certificate"), "{d}");
    let t = Instant::now();
    let out = loop_run(&mut lp, &[get(b"k")], w);
    assert!(
        t.elapsed() < Duration::from_millis(100),
        "{:?}",
        t.elapsed()
    );
    assert!(
        matches!(&out[0], Outcome::Value(Err(Error::Tls(d))) if d.contains("client certificate")),
        "{out:?}"
    );

    let mut b = tls_builder(&pki, &m.addr());
    b.tls_cert_file(&pki.path("client.pem")).unwrap();
    b.tls_key_file(&pki.path("client.key")).unwrap();
    loop_roundtrip(&b.build().unwrap());
}

/// memcached 1.6.18 with ssl_verify_mode set refuses every resumption with
/// an internal_error alert: the second connection (blocking or loop) must
/// still work, by connecting again with a fresh session.
#[test]
fn a_server_that_refuses_resumption_still_gets_connections() {
    let pki = Pki::new();
    let mut args = pki.server_args("server");
    args.extend([
        "-o".to_string(),
        "ssl_verify_mode=1".to_string(),
        "-o".to_string(),
        format!("ssl_ca_cert={}", pki.path("ca.pem")),
    ]);
    let m = start(&args);
    let b = tls_builder(&pki, &m.addr());
    let opts = conn_options(&b);
    let addr = ServerAddr::parse(&m.addr()).unwrap();
    for _ in 0..3 {
        // a ticket came with the first reply; the next connects resume
        // nothing, and work
        let mut c = Conn::connect(&addr, &opts).unwrap();
        assert!(version(&mut c));
        assert_eq!(c.tls_resumed(), Some(false));
    }

    let c = tls_builder(&pki, &m.addr()).build().unwrap();
    let w = Duration::from_secs(2);
    for _ in 0..3 {
        let mut lp = EventLoop::new(&c).unwrap();
        assert_eq!(hit(&loop_run(&mut lp, &[get(b"r")], w)[0]), None);
        assert_eq!(lp.tls_resumed(0), Some(false));
    }
    assert_eq!(c.get(b"r").unwrap(), None);
}

#[test]
fn a_stalled_tls_server_leaves_the_ring_under_the_loop() {
    let pki = Pki::new();
    let (a, b) = (
        start(&pki.server_args("server")),
        start(&pki.server_args("server")),
    );
    let c = two_tls_servers(&pki, &a, &b, Duration::from_secs(5));
    let mut lp = EventLoop::new(&c).unwrap();
    // b accepts connections but never answers a ClientHello
    b.pause();
    let keys: Vec<Vec<u8>> = (0..20).map(|i| format!("key{i}").into_bytes()).collect();
    let mut stored = Vec::new();
    let mut tls_failures = 0;
    for k in &keys {
        match &loop_run(&mut lp, &[set(k, b"v", false)], Duration::from_secs(2))[0] {
            Outcome::Ack(Ok(Ack::Done)) => stored.push(k),
            Outcome::Ack(Err(Error::Tls(d))) if d.contains("handshake timeout") => {
                tls_failures += 1
            }
            other => panic!("{other:?}"),
        }
    }
    b.resume();
    // one handshake timeout takes b out of the ring (retry_attempts 0); the
    // rest go to a
    assert_eq!(tls_failures, 1, "{} of {} stored", stored.len(), keys.len());
    assert_eq!(stored.len(), keys.len() - 1);
    for k in stored {
        let out = loop_run(&mut lp, &[get(k)], Duration::from_secs(2));
        assert_eq!(hit(&out[0]).as_deref(), Some(&b"v"[..]));
    }
}
