//! The `mcrs` tool run as a program against real memcached servers: every
//! verb on one server and on a 3-server cluster, exit codes, dead and
//! stalled servers, binary-safe values, dump, and a short bench.

mod common;

use std::net::TcpListener;
use std::time::Duration;

use common::{cluster, dead_addr, expect, mcrs, mcrs_env, mcrs_in, Memcached, UnixMemcached};

/// Bytes no text tool would pass through unharmed.
fn awkward_value() -> Vec<u8> {
    let mut v: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    v.extend_from_slice(b"\r\nEND\r\nVALUE x 0 1\r\n\0");
    v
}

fn temp_file(name: &str, data: &[u8]) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!("mcrs-cli-{}-{name}", std::process::id()));
    std::fs::write(&p, data).unwrap();
    p
}

#[test]
fn get_and_set_are_binary_safe() {
    let mc = Memcached::start();
    let s = mc.addr();
    let v = awkward_value();
    expect(&mcrs_in(&s, &["set", "bin", "-"], &v), 0);
    let r = mcrs(&s, &["get", "bin"]);
    expect(&r, 0);
    assert!(
        r.stdout == v,
        "the value came back changed ({} bytes)",
        r.stdout.len()
    );

    let f = temp_file("value", &v[..1000]);
    expect(
        &mcrs(
            &s,
            &[
                "set",
                "file",
                f.to_str().unwrap(),
                "--flags",
                "42",
                "--expire",
                "100",
            ],
        ),
        0,
    );
    let r = mcrs(&s, &["get", "file"]);
    expect(&r, 0);
    assert_eq!(r.stdout, &v[..1000]);
    std::fs::remove_file(&f).unwrap();

    // several keys: the values one after the other, in key order
    expect(&mcrs_in(&s, &["set", "a", "-"], b"first"), 0);
    expect(&mcrs_in(&s, &["set", "b", "-"], b"second"), 0);
    let r = mcrs(&s, &["get", "b", "a", "b"]);
    expect(&r, 0);
    assert_eq!(r.stdout, b"secondfirstsecond");

    // an empty value is a hit
    expect(&mcrs_in(&s, &["set", "empty", "-"], b""), 0);
    let r = mcrs(&s, &["get", "empty"]);
    expect(&r, 0);
    assert!(r.stdout.is_empty());
}

#[test]
fn a_unix_socket_server() {
    let mc = UnixMemcached::start();
    let s = mc.addr();
    expect(&mcrs_in(&s, &["set", "u", "-"], b"over a unix socket"), 0);
    let r = mcrs(&s, &["get", "u"]);
    expect(&r, 0);
    assert_eq!(r.stdout, b"over a unix socket");
    let r = mcrs(&s, &["dump"]);
    expect(&r, 0);
    assert_eq!(r.out(), "u\n");
    let r = mcrs(&s, &["ping"]);
    expect(&r, 0);
    assert!(r.out().starts_with(&format!("{s} version ")), "{}", r.out());
}

#[test]
fn misses_and_not_stored_exit_1() {
    let mc = Memcached::start();
    let s = mc.addr();
    let r = mcrs(&s, &["get", "nope"]);
    expect(&r, 1);
    assert!(r.stderr.contains("nope: not found"), "{}", r.stderr);
    expect(&mcrs_in(&s, &["set", "k", "-"], b"v"), 0);
    // the hits are still written when another key misses
    let r = mcrs(&s, &["get", "k", "nope"]);
    expect(&r, 1);
    assert_eq!(r.stdout, b"v");

    expect(&mcrs_in(&s, &["set", "k", "-", "--mode", "add"], b"w"), 1);
    expect(
        &mcrs_in(&s, &["set", "absent", "-", "--mode", "replace"], b"w"),
        1,
    );
    expect(
        &mcrs_in(&s, &["set", "k", "-", "--mode", "append"], b"+"),
        0,
    );
    expect(
        &mcrs_in(&s, &["set", "k", "-", "--mode", "prepend"], b"<"),
        0,
    );
    assert_eq!(mcrs(&s, &["get", "k"]).stdout, b"<v+");

    expect(&mcrs(&s, &["touch", "k", "100"]), 0);
    expect(&mcrs(&s, &["touch", "nope", "100"]), 1);
    expect(&mcrs(&s, &["rm", "k"]), 0);
    expect(&mcrs(&s, &["rm", "k"]), 1);
    expect(&mcrs(&s, &["get", "k"]), 1);
    // touch with a past expiry makes the key go
    expect(&mcrs_in(&s, &["set", "t", "-"], b"v"), 0);
    expect(&mcrs(&s, &["touch", "t", "1"]), 0);
    std::thread::sleep(Duration::from_millis(2100));
    expect(&mcrs(&s, &["get", "t"]), 1);
}

#[test]
fn every_verb_on_a_cluster() {
    let (_ms, list) = cluster(3);
    let keys: Vec<String> = (0..30).map(|i| format!("key{i}")).collect();
    for k in &keys {
        expect(
            &mcrs_in(&list, &["set", k, "-"], format!("value of {k}").as_bytes()),
            0,
        );
    }
    // one get over all the servers
    let mut args = vec!["get"];
    args.extend(keys.iter().map(String::as_str));
    let r = mcrs(&list, &args);
    expect(&r, 0);
    let want: String = keys.iter().map(|k| format!("value of {k}")).collect();
    assert_eq!(r.out(), want);

    // dump finds every key, spread over the servers
    let r = mcrs(&list, &["dump"]);
    expect(&r, 0);
    let mut dumped: Vec<String> = r.out().lines().map(str::to_string).collect();
    dumped.sort();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(dumped, sorted);
    let r = mcrs(&list, &["dump", "--long"]);
    expect(&r, 0);
    let long = r.out();
    let servers_used: std::collections::BTreeSet<&str> =
        long.lines().map(|l| l.split(' ').next().unwrap()).collect();
    assert!(
        servers_used.len() >= 2,
        "30 keys on one server of 3: {servers_used:?}"
    );
    let line = r
        .out()
        .lines()
        .find(|l| l.contains(" key7 "))
        .map(str::to_string);
    let line = line.expect("key7 in the long dump");
    for field in ["exp=-1", "la=", "cas=", "fetch=", "cls=", "size="] {
        assert!(line.contains(field), "{line}");
    }

    // stat: every server, one "server name value" line per statistic
    let r = mcrs(&list, &["stat"]);
    expect(&r, 0);
    for server in list.split(',') {
        assert!(
            r.out()
                .lines()
                .any(|l| l.starts_with(&format!("{server} curr_items "))),
            "no curr_items for {server}"
        );
    }
    let items: u64 = r
        .out()
        .lines()
        .filter_map(|l| {
            l.split_once(" curr_items ")
                .map(|(_, n)| n.parse::<u64>().unwrap())
        })
        .sum();
    assert_eq!(items, 30);
    let r = mcrs(&list, &["stat", "settings"]);
    expect(&r, 0);
    assert_eq!(
        r.out().lines().filter(|l| l.contains(" maxbytes ")).count(),
        3
    );
    expect(&mcrs(&list, &["stat", "bad\r\nargs"]), 2);

    // ping: a version and latencies per server
    let r = mcrs(&list, &["ping"]);
    expect(&r, 0);
    assert_eq!(r.out().lines().count(), 3);
    for (line, server) in r.out().lines().zip(list.split(',')) {
        assert!(line.starts_with(&format!("{server} version ")), "{line}");
        assert!(line.contains(" ms"), "{line}");
    }

    // touch and rm route like set
    expect(&mcrs(&list, &["touch", "key3", "1000"]), 0);
    expect(&mcrs(&list, &["rm", "key3", "key4"]), 0);
    expect(&mcrs(&list, &["get", "key3"]), 1);

    // flush reaches every server
    expect(&mcrs(&list, &["flush"]), 0);
    let mut args = vec!["get"];
    args.extend(keys.iter().map(String::as_str));
    let r = mcrs(&list, &args);
    expect(&r, 1);
    assert!(r.stdout.is_empty());
    let r = mcrs(&list, &["dump"]);
    expect(&r, 0);
    assert_eq!(r.out(), "");
}

#[test]
fn the_distribution_is_the_applications() {
    let (_ms, list) = cluster(3);
    let keys: Vec<String> = (0..20).map(|i| format!("d{i}")).collect();
    for k in &keys {
        expect(
            &mcrs_in(&list, &["--distribution", "ketama", "set", k, "-"], b"v"),
            0,
        );
    }
    let mut args = vec!["--distribution", "ketama", "get"];
    args.extend(keys.iter().map(String::as_str));
    expect(&mcrs(&list, &args), 0);
    // rendezvous puts some of these keys on other servers, where they miss
    let misses = keys
        .iter()
        .filter(|k| mcrs(&list, &["get", k]).code == 1)
        .count();
    assert!(
        misses > 0,
        "rendezvous and ketama agreed on 20 keys of 3 servers"
    );
}

#[test]
fn servers_from_the_environment() {
    let mc = Memcached::start();
    let r = mcrs_env(&["set", "env", "-"], b"from env", Some(&mc.addr()));
    expect(&r, 0);
    let r = mcrs_env(&["get", "env"], b"", Some(&mc.addr()));
    expect(&r, 0);
    assert_eq!(r.stdout, b"from env");
    // --servers wins over the environment
    let r = mcrs_env(
        &["--servers", &mc.addr(), "get", "env"],
        b"",
        Some(&dead_addr()),
    );
    expect(&r, 0);

    let r = mcrs_env(&["get", "env"], b"", None);
    expect(&r, 2);
    assert!(r.stderr.contains("MEMCACHED_SERVERS"), "{}", r.stderr);
}

#[test]
fn a_dead_server_is_exit_2_within_the_connect_timeout() {
    let dead = dead_addr();
    for args in [
        vec!["get", "k"],
        vec!["set", "k", "-"],
        vec!["rm", "k"],
        vec!["touch", "k", "5"],
        vec!["stat"],
        vec!["flush"],
        vec!["ping"],
        vec!["dump"],
        vec!["bench", "--duration", "1s"],
    ] {
        let mut all = vec!["--connect-timeout", "500ms", "--timeout", "500ms"];
        all.extend(args.iter().copied());
        let r = mcrs_in(&dead, &all, b"v");
        expect(&r, 2);
        assert!(
            r.took < Duration::from_millis(1500),
            "{args:?} took {:?}",
            r.took
        );
        assert!(
            r.stderr.contains("mcrs: ") && r.stderr.contains(&dead),
            "{args:?}: {}",
            r.stderr
        );
        assert!(
            r.stderr.contains("connect") || r.stderr.contains("refused"),
            "{args:?}: {}",
            r.stderr
        );
    }
}

#[test]
fn a_stalled_server_is_exit_2_within_the_timeout() {
    // accepts connections (the kernel does) but never answers
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    for args in [vec!["get", "k"], vec!["ping"], vec!["dump"], vec!["stat"]] {
        let mut all = vec!["--timeout", "300ms"];
        all.extend(args.iter().copied());
        let r = mcrs(&addr, &all);
        expect(&r, 2);
        assert!(
            r.took < Duration::from_millis(1500),
            "{args:?} took {:?}",
            r.took
        );
        assert!(r.stderr.contains("timed out"), "{args:?}: {}", r.stderr);
    }
}

#[test]
fn one_dead_server_of_a_cluster() {
    let (_ms, live) = cluster(2);
    let dead = dead_addr();
    let list = format!("{live},{dead}");
    // the per-server verbs report the live servers and fail naming the dead one
    let r = mcrs(&list, &["ping"]);
    expect(&r, 2);
    assert_eq!(r.out().lines().count(), 2, "{}", r.out());
    assert!(r.stderr.contains(&dead), "{}", r.stderr);
    let r = mcrs(&list, &["stat"]);
    expect(&r, 2);
    assert!(r.out().contains(" curr_items "));
    // a key of the dead server fails; one of a live server works
    let mut codes = std::collections::BTreeSet::new();
    for i in 0..20 {
        codes.insert(mcrs_in(&list, &["set", &format!("k{i}"), "-"], b"v").code);
    }
    assert_eq!(
        codes,
        [0, 2].into_iter().collect(),
        "both live and dead servers were chosen"
    );
}

#[test]
fn bad_input_is_exit_2_with_a_message() {
    let mc = Memcached::start();
    let s = mc.addr();
    let r = mcrs(&s, &["get", "has space"]);
    expect(&r, 2);
    assert!(r.stderr.contains("invalid key"), "{}", r.stderr);
    let long = "k".repeat(251);
    expect(&mcrs(&s, &["get", &long]), 2);
    let r = mcrs(&s, &["set", "k", "/nonexistent/file"]);
    expect(&r, 2);
    assert!(r.stderr.contains("/nonexistent/file"), "{}", r.stderr);
    expect(&mcrs(&s, &["--timeout", "0", "get", "k"]), 2);
    expect(&mcrs(&s, &["--timeout", "soon", "get", "k"]), 2);
    expect(&mcrs(&s, &["touch", "k", "-5"]), 2);
    expect(&mcrs("no:port:here", &["get", "k"]), 2);
    expect(&mcrs(&s, &["bench", "--ratio", "0:0"]), 2);
    expect(
        &mcrs(&s, &["bench", "--threads", "4", "--connections", "2"]),
        2,
    );
    expect(&mcrs(&s, &["frobnicate"]), 2);
    expect(&mcrs(&s, &["get"]), 2);
}

#[test]
fn help_for_the_tool_and_each_verb() {
    let r = mcrs_env(&["--help"], b"", None);
    expect(&r, 0);
    for verb in [
        "get", "set", "rm", "touch", "stat", "flush", "ping", "dump", "bench",
    ] {
        assert!(r.out().contains(verb), "{verb} in --help");
        let r = mcrs_env(&[verb, "--help"], b"", None);
        expect(&r, 0);
        assert!(
            r.out().contains("Usage: mcrs"),
            "{verb} --help: {}",
            r.out()
        );
    }
    let r = mcrs_env(&["bench", "--help"], b"", None);
    for opt in [
        "--threads",
        "--connections",
        "--depth",
        "--keys",
        "--value-size",
        "--ratio",
        "--duration",
        "--json",
    ] {
        assert!(r.out().contains(opt), "bench --help lacks {opt}");
    }
    assert!(mcrs_env(&["set", "--help"], b"", None)
        .out()
        .contains("--expire"));
}

/// The number after `"name":` in a flat JSON object.
fn json_num(j: &str, name: &str) -> f64 {
    let pat = format!("\"{name}\":");
    let at = j.find(&pat).unwrap_or_else(|| panic!("{name} in {j}")) + pat.len();
    let end = j[at..].find([',', '}']).unwrap() + at;
    j[at..end]
        .parse()
        .unwrap_or_else(|_| panic!("{name} is a number in {j}"))
}

#[test]
fn bench_reports_sane_numbers() {
    let (_ms, list) = cluster(2);
    let r = mcrs(
        &list,
        &[
            "bench",
            "--json",
            "--duration",
            "1s",
            "--threads",
            "2",
            "--connections",
            "3",
            "--depth",
            "4",
            "--keys",
            "500",
            "--value-size",
            "64",
            "--ratio",
            "3:1",
        ],
    );
    expect(&r, 0);
    let j = r.out();
    assert!(j.trim().starts_with('{') && j.trim().ends_with('}'), "{j}");
    let ops = json_num(&j, "ops");
    let (gets, sets, hits) = (
        json_num(&j, "gets"),
        json_num(&j, "sets"),
        json_num(&j, "hits"),
    );
    assert!(ops > 100.0, "{j}");
    assert_eq!(gets + sets, ops);
    assert_eq!(hits, gets, "the key space was stored first: {j}");
    assert!(sets > 0.0 && gets > sets, "3:1 gets to sets: {j}");
    assert_eq!(json_num(&j, "errors"), 0.0);
    let d = json_num(&j, "duration_s");
    assert!((0.9..1.5).contains(&d), "{j}");
    let rate = json_num(&j, "ops_per_sec");
    assert!((rate - ops / d).abs() < rate * 0.01 + 1.0, "{j}");
    let (p50, p90, p99, p999, max) = (
        json_num(&j, "p50"),
        json_num(&j, "p90"),
        json_num(&j, "p99"),
        json_num(&j, "p99_9"),
        json_num(&j, "max"),
    );
    assert!(
        p50 > 0.0 && p50 <= p90 && p90 <= p99 && p99 <= p999 && p999 <= max,
        "{j}"
    );
    assert!(p50 < 1_000_000.0, "a median under a second: {j}");
    assert_eq!(json_num(&j, "connections"), 3.0);
    assert!(j.contains("\"first_error\":null"));
    // both servers served commands
    assert_eq!(j.matches("\"commands\":").count(), 2);
    assert!(!j.contains("\"commands\":0"), "{j}");

    // the text report, sets only, with a progress line on stderr
    let r = mcrs(
        &list,
        &[
            "bench",
            "--duration",
            "1.2s",
            "--ratio",
            "0:1",
            "--no-prefill",
        ],
    );
    expect(&r, 0);
    assert!(
        r.out().contains("ops/s") && r.out().contains("p99.9"),
        "{}",
        r.out()
    );
    assert!(r.stderr.contains("ops/s"), "progress: {}", r.stderr);
}

/// A CA and a server certificate for 127.0.0.1, made with openssl in `dir`.
fn make_certs(dir: &std::path::Path) {
    let run = |args: &[&str]| {
        let ok = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stderr(std::process::Stdio::null())
            .status()
            .expect("openssl (apt-get install openssl)")
            .success();
        assert!(ok, "openssl {args:?}");
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=mcrs test ca",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "srv.key",
        "-out",
        "srv.csr",
        "-subj",
        "/CN=localhost",
    ]);
    std::fs::write(
        dir.join("ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "srv.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "srv.pem",
        "-days",
        "2",
        "-extfile",
        "ext",
    ]);
}

#[test]
fn tls_options_reach_a_tls_server() {
    let dir = std::env::temp_dir().join(format!("mcrs-cli-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    make_certs(&dir);
    let d = |f: &str| dir.join(f).to_string_lossy().into_owned();
    let ssl = format!("ssl_chain_cert={},ssl_key={}", d("srv.pem"), d("srv.key"));
    let mc = Memcached::start_with(&["-Z", "-o", &ssl]);
    let ca = d("ca.pem");
    let tls = ["--tls", "--tls-ca", ca.as_str()];
    let with =
        |more: &[&str]| -> Vec<String> { tls.iter().chain(more).map(|s| s.to_string()).collect() };
    let args = with(&["set", "k", "-"]);
    let r = mcrs_in(
        &mc.addr(),
        &args.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        b"over tls",
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let args = with(&["get", "k"]);
    let r = mcrs(
        &mc.addr(),
        &args.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
    );
    assert_eq!(
        (r.code, r.stdout.as_slice()),
        (0, &b"over tls"[..]),
        "{}",
        r.stderr
    );
    // without the CA the server is not trusted; without --tls it is not understood
    let r = mcrs(&mc.addr(), &["--tls", "get", "k"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("TLS"), "{}", r.stderr);
    let r = mcrs(&mc.addr(), &["get", "k"]);
    assert_eq!(r.code, 2);
    // options that need --tls say so
    let r = mcrs(&mc.addr(), &["--tls-ca", &ca, "get", "k"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("need --tls"), "{}", r.stderr);
    let _ = std::fs::remove_dir_all(&dir);
}
