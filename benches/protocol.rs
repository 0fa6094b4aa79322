//! ns per operation of the sans-I/O protocol layer and the key check: what a
//! get or set costs before any syscall. `cargo bench --bench protocol`.

mod common;

use std::hint::black_box;

use mcrs::client::validate_key;
use mcrs::protocol::encode::{self, StoreCmd};
use mcrs::protocol::{
    parse, parse_get_reply, parse_plain_value, FastGet, Response, Retrieve, WireKey,
};

fn wire(key: &[u8]) -> WireKey<'_> {
    WireKey { prefix: b"", key }
}

fn main() {
    let b = common::Bencher::from_args();
    let key = b"bench:key:123".as_slice();
    let value = vec![b'v'; 100];
    let keys: Vec<Vec<u8>> = (0..100)
        .map(|i| format!("bench:key:{i}").into_bytes())
        .collect();
    let mut buf = Vec::with_capacity(64 * 1024);

    // ---- encoding into a reused buffer
    b.run("encode get (13-byte key)", 1, || {
        buf.clear();
        encode::retrieve_one(&mut buf, Retrieve::Get, wire(black_box(key)));
        buf.len()
    });
    b.run("encode set (100-byte value)", 1, || {
        buf.clear();
        encode::store(
            &mut buf,
            StoreCmd::Set,
            wire(black_box(key)),
            0,
            0,
            &value,
            false,
        );
        buf.len()
    });
    b.run("encode get of 100 keys (per key)", 100, || {
        buf.clear();
        encode::retrieve(&mut buf, Retrieve::Get, keys.iter().map(|k| wire(k)));
        buf.len()
    });

    // ---- parsing replies in place
    let hit = [
        &b"VALUE bench:key:123 0 100\r\n"[..],
        &value,
        b"\r\nEND\r\n",
    ]
    .concat();
    b.run(
        "parse get reply, hit (100-byte value)",
        1,
        || match parse_get_reply(black_box(&hit), b"", key) {
            FastGet::Done(_, used) => used,
            other => panic!("{other:?}"),
        },
    );
    b.run("parse get reply, miss", 1, || {
        match parse_get_reply(black_box(b"END\r\n"), b"", key) {
            FastGet::Done(_, used) => used,
            other => panic!("{other:?}"),
        }
    });
    b.run("parse STORED", 1, || {
        match parse(black_box(b"STORED\r\n")) {
            Ok(Some((Response::Stored, used))) => used,
            other => panic!("{other:?}"),
        }
    });
    b.run("parse VALUE element (generic parser)", 1, || {
        match parse(black_box(&hit)) {
            Ok(Some((Response::Value { data, .. }, used))) => used + data.len(),
            other => panic!("{other:?}"),
        }
    });
    let mut multi = Vec::new();
    for k in &keys {
        multi.extend_from_slice(b"VALUE ");
        multi.extend_from_slice(k);
        multi.extend_from_slice(b" 0 100\r\n");
        multi.extend_from_slice(&value);
        multi.extend_from_slice(b"\r\n");
    }
    multi.extend_from_slice(b"END\r\n");
    b.run(
        "parse multi-get reply of 100, shortcut (per key)",
        100,
        || {
            let mut at = 0;
            for k in &keys {
                let (_, _, used) = parse_plain_value(&multi[at..], b"", k).expect("plain VALUE");
                at += used;
            }
            at
        },
    );
    b.run(
        "parse multi-get reply of 100, generic (per key)",
        100,
        || {
            let mut at = 0;
            let mut n = 0;
            loop {
                match parse(&multi[at..]) {
                    Ok(Some((Response::Value { .. }, used))) => {
                        at += used;
                        n += 1;
                    }
                    Ok(Some((Response::End, _))) => break n,
                    other => panic!("{other:?}"),
                }
            }
        },
    );

    // ---- key rules
    b.run("validate key (13 bytes)", 1, || {
        validate_key(black_box(key), 0, false).is_ok()
    });
    let long_key = vec![b'k'; 250];
    b.run("validate key (250 bytes)", 1, || {
        validate_key(black_box(&long_key), 0, false).is_ok()
    });
}
