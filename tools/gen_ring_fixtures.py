#!/usr/bin/env python3
"""Regenerate tests/fixtures/ring/*: key placements recorded from real peers.

mcrs's ring must place keys exactly where other clients do, so the expected
answers come from those clients, not from a second implementation of ours:

* rendezvous: pymemcache's own HashClient (its RendezvousHash and its node ids)
  answers which server it would use for each key. No server is needed: the
  HashClient never connects just to choose.
* ketama: real memcached processes are started on loopback; every key is stored
  through pylibmc with behaviors={"ketama_weighted": True} and per-server
  weights, then each server is asked directly which keys it holds. The same is
  done through the system libmemcached (ctypes) and both must agree; IPv6 sets
  come from libmemcached alone, as pylibmc's bundled copy cannot resolve them.

Output (all deterministic, so a rerun gives identical files):

  keys.txt      one key per line, lowercase hex (shared by every set)
  <set>.txt     "#" comment lines, then
                  distribution rendezvous|ketama
                  node <id>|<host>|<port>|<weight>     (one per node, in order)
                  picks
                  <index of the owning node, or "-" when the peer cannot
                   take this key>                      (one line per key)

Usage: python3 tools/gen_ring_fixtures.py [--out tests/fixtures/ring]
Needs: pip install pymemcache pylibmc; apt-get install memcached libmemcached11.
"""

import argparse
import ctypes
import ctypes.util
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time

import pylibmc
import pymemcache
from pymemcache.client.base import Client, normalize_server_spec
from pymemcache.client.hash import HashClient

NKEYS = 2000
SEED = 20240611
# Fixed, so the unix path (which ketama hashes) is the same on every rerun.
UNIX_DIR = "/tmp/mcrs-ring-fixtures"
UNIX_SOCKS = [UNIX_DIR + "/mc%d.sock" % i for i in range(3)]


# --------------------------------------------------------------------------- keys


def make_keys():
    """ASCII, long (up to 250 bytes) and non-ASCII keys; all valid memcached keys
    (no whitespace, no control bytes). The last few are not UTF-8 at all: only
    byte-oriented peers (pylibmc) can take those."""
    rng = random.Random(SEED)
    printable = [chr(c) for c in range(0x21, 0x7F)]
    alnum = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    # Code points whose low byte covers the whole 0x00-0xFF range: Latin-1,
    # Latin Extended, Greek, Cyrillic, CJK, symbols, emoji (4-byte UTF-8).
    ranges = [(0xA1, 0xFF), (0x100, 0x17F), (0x391, 0x3C9), (0x410, 0x44F),
              (0x4E00, 0x4FFF), (0x20A0, 0x20BF), (0x1F600, 0x1F64F)]
    keys, seen = [], set()

    def add(k):
        if k not in seen and 0 < len(k) <= 250:
            seen.add(k)
            keys.append(k)

    def uni_char():
        lo, hi = rng.choice(ranges)
        return chr(rng.randint(lo, hi))

    for i in range(300):  # typical application keys
        add(f"{rng.choice(['user', 'session', 'page', 'obj'])}:{i}:{rng.randint(0, 10**9)}".encode())
    for k in ["a", "b", "foo", "bar", "baz", "key", "0", "-", ":", "~"]:
        add(k.encode())
    while len(keys) < 1100:  # short random printable ASCII
        add("".join(rng.choice(printable) for _ in range(rng.randint(1, 40))).encode())
    while len(keys) < 1400:  # long ASCII, up to the 250-byte limit
        n = rng.choice([250, 249, 248, 247, rng.randint(100, 250)])
        add("".join(rng.choice(alnum) for _ in range(n)).encode())
    while len(keys) < 1900:  # non-ASCII, mixed with ASCII
        parts = []
        for _ in range(rng.randint(1, 30)):
            parts.append(uni_char() if rng.random() < 0.6 else rng.choice(alnum))
        k = "".join(parts).encode("utf-8")
        if rng.random() < 0.1:  # some long unicode keys too
            while len(k) < 240:
                k += uni_char().encode("utf-8")
            k = k[:250].decode("utf-8", "ignore").encode("utf-8")
        add(k)
    while len(keys) < NKEYS:  # not UTF-8: high bytes in arbitrary order
        add(bytes(rng.choice([rng.randint(0x80, 0xFF), rng.randint(0x21, 0x7E)])
                  for _ in range(rng.randint(1, 60))))
    return keys


def utf8_or_none(k):
    try:
        return k.decode("utf-8")
    except UnicodeDecodeError:
        return None


# ---------------------------------------------------------------------- rendezvous

RENDEZVOUS_SETS = {
    "rendezvous_3": [("127.0.0.1", 11211), ("127.0.0.1", 11212), ("127.0.0.1", 11213)],
    "rendezvous_5": ["10.0.0.1:11211", "10.0.0.2:11211", "cache-a.example.com:11211",
                     "localhost", "[::1]:11300"],
    # rendezvous_5 after HashClient dropped its third server.
    "rendezvous_5_minus_one": ["10.0.0.1:11211", "10.0.0.2:11211", "localhost",
                               "[::1]:11300"],
    "rendezvous_unix": ["unix:/var/run/memcached/memcached.sock", "/tmp/mc2.sock",
                        "127.0.0.1:11211", ("::1", 11211)],
    "rendezvous_10": [("10.1.2.%d" % i, 11211 + i) for i in range(8)]
    + [("m\u00e9mcache.local", 11211), "[fe80::1]"],
}


def rendezvous_fixture(name, servers, keys):
    hc = HashClient(servers, allow_unicode_keys=True)
    nodes = []
    for s in servers:
        spec = normalize_server_spec(s)
        node_id = hc._make_client_key(spec)
        host, port = (spec[0], int(spec[1])) if isinstance(spec, tuple) else (spec, 0)
        nodes.append((node_id, host, port, 1))
    index = {n[0]: i for i, n in enumerate(nodes)}
    assert len(index) == len(nodes), "duplicate node ids"
    picks = []
    for k in keys:
        text = utf8_or_none(k)
        if text is None:
            picks.append("-")  # pymemcache takes str keys; no str gives these bytes
            continue
        # The same path a get/set takes: key checks, then the hasher.
        client = hc._get_client(text)
        picks.append(str(index[hc._make_client_key(client.server)]))
    comment = [
        f"pymemcache {pymemcache.__version__} HashClient({servers!r}, allow_unicode_keys=True)",
        "keys passed as str (the UTF-8 decoding of each key)",
    ]
    return comment, nodes, picks


# -------------------------------------------------------------------------- ketama

# (pylibmc server spec, memcached listen args)
KETAMA_SETS = {
    # "host:port-i" point strings (ports other than 11211), equal weights.
    "ketama_3": ["127.0.0.1:21211", "127.0.0.1:21212", "127.0.0.1:21213"],
    # "host-i" point strings (port 11211) on several loopback addresses.
    "ketama_5_default_port": ["127.0.0.%d:11211" % i for i in range(11, 16)],
    # Mixed weights and both point-string forms.
    "ketama_mixed_weights": ["127.0.0.11:11211:1", "127.0.0.12:11211:3",
                             "127.0.0.1:21214:2", "127.0.0.1:21215:5"],
    # libmemcached's own weighted test topology, on loopback.
    "ketama_weighted_8": ["127.0.0.%d:11211:%d" % (11 + i, w) for i, w in
                          enumerate([600, 300, 200, 350, 1000, 800, 950, 100])],
    # The same after the third server left: every weight share changes.
    "ketama_weighted_8_minus_one": ["127.0.0.%d:11211:%d" % (11 + i, w) for i, w in
                                    enumerate([600, 300, 200, 350, 1000, 800, 950, 100])
                                    if i != 2],
    # Unix sockets: "path:0-i" (pylibmc gives unix paths weight 1 and cannot
    # mix them with TCP servers in one client).
    "ketama_unix": UNIX_SOCKS,
    # IPv6 ("::1-i" on 11211, "::1:port-i" elsewhere; no brackets) beside IPv4.
    "ketama_ipv6": ["[::1]:21216:2", "127.0.0.1:21211:1", "[::1]:11211:1"],
}
PYLIBMC_CANNOT = {"ketama_ipv6"}


def parse_pylibmc(spec):
    """(id, host, port, weight) as mcrs would be configured for this server:
    pylibmc's own parse of the spec (a unix path gets port 0, weight 1)."""
    stype, host, port, weight = pylibmc.client.translate_server_spec(spec)
    if stype == pylibmc.client.server_type_map["unix"]:
        return (host, host, 0, weight)
    return (f"{host}:{port}", host, port, weight)


class Servers:
    """memcached processes started (and always stopped) by this script."""

    def __init__(self):
        self.procs = {}

    def start(self, host, port):
        key = (host, port)
        if key in self.procs:
            return
        args = ["memcached", "-U", "0", "-m", "64", "-t", "1", "-c", "64", "-u", "nobody"]
        if port == 0:
            os.makedirs(UNIX_DIR, exist_ok=True)
            os.chmod(UNIX_DIR, 0o777)
            if os.path.exists(host):
                os.unlink(host)
            args += ["-s", host, "-a", "0666"]
        else:
            args += ["-l", host, "-p", str(port)]
        self.procs[key] = subprocess.Popen(args, stdin=subprocess.DEVNULL)
        deadline = time.time() + 10
        while True:
            if self.procs[key].poll() is not None:
                raise SystemExit(f"memcached on {host}:{port} exited; is the address in use?")
            try:
                if port == 0:
                    s = socket.socket(socket.AF_UNIX)
                    s.connect(host)
                else:
                    s = socket.create_connection((host, port), timeout=1)
                s.close()
                return
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.05)

    def stop_all(self):
        for p in self.procs.values():
            p.send_signal(signal.SIGTERM)
        for p in self.procs.values():
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.procs.clear()
        shutil.rmtree(UNIX_DIR, ignore_errors=True)


def direct_client(host, port):
    server = host if port == 0 else (host, port)
    return Client(server, connect_timeout=2, timeout=5, default_noreply=False)


class PylibmcPeer:
    """pylibmc with behaviors={"ketama_weighted": True} (its bundled libmemcached)."""

    behaviors = {"ketama_weighted": True}

    def __init__(self, specs, nodes):
        self.mc = pylibmc.Client(specs, behaviors=self.behaviors)

    def set(self, key):
        return self.mc.set(key, b"1")

    def close(self):
        self.mc.disconnect_all()

    @staticmethod
    def describe():
        return (f"pylibmc {pylibmc.__version__} (bundled libmemcached "
                f"{pylibmc.libmemcached_version}), behaviors={PylibmcPeer.behaviors!r}")


class LibmemcachedPeer:
    """The system libmemcached (libmemcached-awesome, Debian's libmemcached11)
    through ctypes, with MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED: the C reference.
    pylibmc's bundled 1.0.16 cannot resolve IPv6 literals, so IPv6 sets come
    from here; every other set is cross-checked against it."""

    KETAMA_WEIGHTED = 16  # index in enum memcached_behavior_t
    lib = None

    @classmethod
    def load(cls):
        if cls.lib is None:
            lib = ctypes.CDLL(ctypes.util.find_library("memcached") or "libmemcached.so.11")
            P, c = ctypes.c_void_p, ctypes
            lib.memcached_create.argtypes, lib.memcached_create.restype = [P], P
            lib.memcached_free.argtypes = [P]
            lib.memcached_behavior_set.argtypes = [P, c.c_int, c.c_uint64]
            lib.memcached_server_add_with_weight.argtypes = [P, c.c_char_p, c.c_uint16,
                                                             c.c_uint32]
            lib.memcached_server_add_unix_socket_with_weight.argtypes = [P, c.c_char_p,
                                                                         c.c_uint32]
            lib.memcached_set.argtypes = [P, c.c_char_p, c.c_size_t, c.c_char_p,
                                          c.c_size_t, c.c_long, c.c_uint32]
            lib.memcached_strerror.argtypes = [P, c.c_int]
            lib.memcached_strerror.restype = c.c_char_p
            lib.memcached_lib_version.restype = c.c_char_p
            cls.lib = lib
        return cls.lib

    def __init__(self, specs, nodes):
        lib = self.load()
        self.memc = lib.memcached_create(None)
        self.check(lib.memcached_behavior_set(self.memc, self.KETAMA_WEIGHTED, 1))
        for _, host, port, weight in nodes:
            if port == 0:
                rc = lib.memcached_server_add_unix_socket_with_weight(
                    self.memc, host.encode(), weight)
            else:
                rc = lib.memcached_server_add_with_weight(self.memc, host.encode(), port,
                                                          weight)
            self.check(rc)

    def check(self, rc):
        if rc != 0:
            raise SystemExit("libmemcached: " + self.lib.memcached_strerror(self.memc, rc).decode())

    def set(self, key):
        return self.lib.memcached_set(self.memc, key, len(key), b"1", 1, 0, 0) == 0

    def close(self):
        self.lib.memcached_free(self.memc)

    @classmethod
    def describe(cls):
        return (f"system libmemcached {cls.load().memcached_lib_version().decode()} via ctypes, "
                "MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED=1")


def place_through(peer_class, name, specs, nodes, keys, directs):
    """Store every key through the peer, then ask each server which it holds."""
    for d in directs:
        d.flush_all(noreply=False)
    peer = peer_class(specs, nodes)
    for k in keys:
        if not peer.set(k):
            raise SystemExit(f"{name}: {peer_class.__name__} could not set {k!r}")
    peer.close()
    found = [d.get_many(keys) for d in directs]
    picks = []
    for k in keys:
        holders = [i for i, f in enumerate(found) if k in f]
        if len(holders) != 1:
            raise SystemExit(f"{name}: key {k!r} found on servers {holders}")
        picks.append(str(holders[0]))
    return picks


def ketama_fixture(name, specs, keys, servers, pylibmc_ok=True):
    nodes = [parse_pylibmc(s) for s in specs]
    for _, host, port, _ in nodes:
        servers.start(host, port)
    directs = [direct_client(host, port) for _, host, port, _ in nodes]
    reference = place_through(LibmemcachedPeer, name, specs, nodes, keys, directs)
    comment = []
    if pylibmc_ok:
        picks = place_through(PylibmcPeer, name, specs, nodes, keys, directs)
        if picks != reference:
            diff = sum(a != b for a, b in zip(picks, reference))
            raise SystemExit(f"{name}: pylibmc and libmemcached disagree on {diff} keys")
        comment.append(PylibmcPeer.describe())
        comment.append("agrees with " + LibmemcachedPeer.describe())
    else:
        comment.append(LibmemcachedPeer.describe())
        comment.append("(pylibmc's bundled libmemcached cannot resolve IPv6 literals)")
    for d in directs:
        d.close()
    comment.append(f"servers {specs!r}: placement read back from real memcached processes")
    return comment, nodes, reference


# ---------------------------------------------------------------------------- main


def write_set(out, name, dist, comment, nodes, picks):
    with open(os.path.join(out, name + ".txt"), "w", encoding="utf-8", newline="\n") as f:
        f.write("# generated by tools/gen_ring_fixtures.py; do not edit\n")
        for c in comment:
            f.write(f"# {c}\n")
        f.write(f"distribution {dist}\n")
        for node in nodes:
            f.write("node %s|%s|%d|%d\n" % node)
        f.write("picks\n")
        f.write("\n".join(picks) + "\n")
    counts = {i: picks.count(str(i)) for i in range(len(nodes))}
    print(f"{name}: {len(nodes)} nodes, keys per node {counts}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--out", default=os.path.join(here, "..", "tests", "fixtures", "ring"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)

    keys = make_keys()
    with open(os.path.join(args.out, "keys.txt"), "w", newline="\n") as f:
        f.write("".join(k.hex() + "\n" for k in keys))

    for name, servers in RENDEZVOUS_SETS.items():
        write_set(args.out, name, "rendezvous", *rendezvous_fixture(name, servers, keys))

    servers = Servers()
    try:
        for name, specs in KETAMA_SETS.items():
            fixture = ketama_fixture(name, specs, keys, servers,
                                     pylibmc_ok=name not in PYLIBMC_CANNOT)
            write_set(args.out, name, "ketama", *fixture)
    finally:
        servers.stop_all()


if __name__ == "__main__":
    sys.exit(main())
