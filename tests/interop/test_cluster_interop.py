"""Cluster interop: mcrs (C ABI via ctypes) against pymemcache HashClient and pylibmc.

Several memcached servers form a cluster; a key written by one client must be
found by the other, which is only possible if both pick the same server for it:

* MCRS_DISTRIBUTION_RENDEZVOUS (default) vs pymemcache ``HashClient`` (its default
  RendezvousHash over murmur3, node ids "host:port");
* MCRS_DISTRIBUTION_KETAMA with weights vs pylibmc (libmemcached) with the
  ``ketama_weighted`` behavior (weighted consistent ketama, MD5 key hash).

Placement is also checked directly: a plain per-server pymemcache ``Client``
scans every server, and each key must sit on exactly one server, the same one
whichever client wrote it.

    cargo build --release
    pip install pymemcache pylibmc pytest
    python3 -m pytest -q tests/interop/test_cluster_interop.py

Needs the ``memcached`` binary; the module starts its own servers on free
loopback ports and stops them at teardown. MCRS_LIB overrides the location of
libmcrs.so.

Notes on the peers (learnt the hard way):

* pymemcache hashes the key object it is given: a ``bytes`` key is hashed by its
  printed form ("b'foo'"), so pymemcache always gets ``str`` keys here. Its
  murmur3 runs over the ``str`` code points (each masked to its low byte), not
  over UTF-8 bytes; mcrs must reproduce that for UTF-8 keys.
* pylibmc takes per-server weights only inside the server string,
  "host:port:weight" (a ("host:port", weight) tuple is not accepted).
  ``{"ketama_weighted": True}`` alone switches libmemcached to
  MEMCACHED_DISTRIBUTION_CONSISTENT_WEIGHTED with MD5 key and point hashes,
  which runs the same weighted-ketama continuum code as CONSISTENT_KETAMA with
  KETAMA_WEIGHTED on; both spellings are tested.
"""

import ctypes
import os
import random
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

pymemcache = pytest.importorskip("pymemcache")
pylibmc = pytest.importorskip("pylibmc")

from pymemcache.client.base import Client as PyClient  # noqa: E402
from pymemcache.client.hash import HashClient  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
LIB_PATH = Path(os.environ.get("MCRS_LIB", ROOT / "target" / "release" / "libmcrs.so"))

HOST = "127.0.0.1"
N_KEYS = 1000
KETAMA_WEIGHTS = (1, 2, 3, 1)

# mcrs_status values (never renumbered)
OK, NOT_FOUND, NOT_STORED = 0, 1, 2
NOREPLY_DEFAULT, NOREPLY_ON, NOREPLY_OFF = 0, 1, 2
DIST_RENDEZVOUS, DIST_KETAMA = 0, 1


# --------------------------------------------------------------------------------------
# ctypes binding of the parts of the C ABI these tests use


def _load_lib():
    if not LIB_PATH.exists():
        pytest.fail(
            f"{LIB_PATH} does not exist: run `cargo build --release` in {ROOT} "
            "(or set MCRS_LIB to the path of libmcrs.so)",
            pytrace=False,
        )
    lib = ctypes.CDLL(str(LIB_PATH))
    u8p = ctypes.POINTER(ctypes.c_uint8)
    vp = ctypes.c_void_p
    st = ctypes.c_int
    sz = ctypes.c_size_t
    u32 = ctypes.c_uint32
    cpp = ctypes.POINTER(ctypes.c_char_p)
    szp = ctypes.POINTER(sz)
    sig = {
        "mcrs_config_new": (vp, []),
        "mcrs_config_free": (None, [vp]),
        "mcrs_config_add_server": (st, [vp, ctypes.c_char_p]),
        "mcrs_config_add_server_weighted": (st, [vp, ctypes.c_char_p, u32]),
        "mcrs_config_set_distribution": (st, [vp, u32]),
        "mcrs_config_set_allow_unicode_keys": (st, [vp, ctypes.c_bool]),
        "mcrs_config_set_default_noreply": (st, [vp, ctypes.c_bool]),
        "mcrs_config_set_timeout_ms": (st, [vp, u32]),
        "mcrs_client_new": (st, [vp, ctypes.POINTER(vp)]),
        "mcrs_client_free": (None, [vp]),
        "mcrs_client_set": (st, [vp, ctypes.c_char_p, sz, ctypes.c_char_p, sz, u32, u32, u32]),
        "mcrs_client_get": (st, [vp, ctypes.c_char_p, sz, ctypes.POINTER(vp)]),
        "mcrs_client_get_many": (st, [vp, cpp, szp, sz, ctypes.POINTER(vp)]),
        "mcrs_client_set_many": (
            st,
            [vp, cpp, szp, cpp, szp, ctypes.POINTER(u32), sz, u32, u32, szp, szp],
        ),
        "mcrs_value_data": (u8p, [vp]),
        "mcrs_value_len": (sz, [vp]),
        "mcrs_value_flags": (u32, [vp]),
        "mcrs_value_free": (None, [vp]),
        "mcrs_values_len": (sz, [vp]),
        "mcrs_values_get": (vp, [vp, sz]),
        "mcrs_values_free": (None, [vp]),
        "mcrs_status_str": (ctypes.c_char_p, [st]),
        "mcrs_last_error": (sz, [ctypes.c_char_p, sz]),
    }
    for name, (res, args) in sig.items():
        try:
            fn = getattr(lib, name)
        except AttributeError:
            pytest.fail(
                f"{LIB_PATH} has no {name}: rebuild with `cargo build --release` in {ROOT}",
                pytrace=False,
            )
        fn.restype = res
        fn.argtypes = args
    return lib


class McrsError(Exception):
    def __init__(self, message, status):
        super().__init__(message)
        self.status = status


class McrsCluster:
    """A small wrapper over a multi-server mcrs client (raw bytes + flags)."""

    def __init__(self, lib, servers, distribution, weights=None):
        """servers: "host:port" strings; weights: None or one int per server."""
        self.lib = lib
        self.client = None
        cfg = lib.mcrs_config_new()
        assert cfg, "mcrs_config_new returned NULL"
        try:
            for i, addr in enumerate(servers):
                if weights is None:
                    self._check(lib.mcrs_config_add_server(cfg, addr.encode()), f"add_server {addr}")
                else:
                    self._check(
                        lib.mcrs_config_add_server_weighted(cfg, addr.encode(), weights[i]),
                        f"add_server_weighted {addr} {weights[i]}",
                    )
            self._check(lib.mcrs_config_set_distribution(cfg, distribution), "set_distribution")
            self._check(lib.mcrs_config_set_allow_unicode_keys(cfg, True), "set_allow_unicode_keys")
            self._check(lib.mcrs_config_set_default_noreply(cfg, False), "set_default_noreply")
            self._check(lib.mcrs_config_set_timeout_ms(cfg, 5000), "set_timeout_ms")
            out = ctypes.c_void_p()
            self._check(lib.mcrs_client_new(cfg, ctypes.byref(out)), "client_new")
            self.client = out
        finally:
            lib.mcrs_config_free(cfg)

    def _check(self, status, what):
        if status != OK:
            buf = ctypes.create_string_buffer(512)
            self.lib.mcrs_last_error(buf, len(buf))
            name = self.lib.mcrs_status_str(status).decode()
            raise McrsError(
                f"mcrs {what}: {name} ({status}): {buf.value.decode(errors='replace')}", status
            )

    def close(self):
        if self.client:
            self.lib.mcrs_client_free(self.client)
            self.client = None

    def set(self, key, value, flags=0):
        self._check(
            self.lib.mcrs_client_set(
                self.client, key, len(key), value, len(value), flags, 0, NOREPLY_OFF
            ),
            f"set {key!r}",
        )

    def set_many(self, items, flags=0):
        n = len(items)
        keys = [k for k, _ in items]
        vals = [v for _, v in items]
        karr = (ctypes.c_char_p * n)(*keys)
        klen = (ctypes.c_size_t * n)(*[len(k) for k in keys])
        varr = (ctypes.c_char_p * n)(*vals)
        vlen = (ctypes.c_size_t * n)(*[len(v) for v in vals])
        farr = (ctypes.c_uint32 * n)(*([flags] * n))
        failed = (ctypes.c_size_t * max(n, 1))()
        n_failed = ctypes.c_size_t(12345)
        st = self.lib.mcrs_client_set_many(
            self.client, karr, klen, varr, vlen, farr, n, 0, NOREPLY_OFF, failed,
            ctypes.byref(n_failed),
        )
        if st == NOT_STORED:
            bad = [keys[failed[i]] for i in range(n_failed.value)]
            raise AssertionError(f"mcrs set_many did not store {len(bad)} keys: {bad[:5]!r}")
        self._check(st, "set_many")
        assert n_failed.value == 0

    def _value(self, v):
        n = self.lib.mcrs_value_len(v)
        data = ctypes.string_at(self.lib.mcrs_value_data(v), n) if n else b""
        return data, self.lib.mcrs_value_flags(v)

    def get(self, key):
        """(bytes, flags) or None for a miss."""
        out = ctypes.c_void_p()
        st = self.lib.mcrs_client_get(self.client, key, len(key), ctypes.byref(out))
        if st == NOT_FOUND:
            return None
        self._check(st, f"get {key!r}")
        try:
            return self._value(out)
        finally:
            self.lib.mcrs_value_free(out)

    def get_many(self, keys):
        """list of (bytes, flags) or None, in key order."""
        n = len(keys)
        karr = (ctypes.c_char_p * n)(*keys)
        larr = (ctypes.c_size_t * n)(*[len(k) for k in keys])
        out = ctypes.c_void_p()
        self._check(
            self.lib.mcrs_client_get_many(self.client, karr, larr, n, ctypes.byref(out)), "get_many"
        )
        try:
            assert self.lib.mcrs_values_len(out) == n
            res = []
            for i in range(n):
                v = self.lib.mcrs_values_get(out, i)
                res.append(self._value(v) if v else None)
            return res
        finally:
            self.lib.mcrs_values_free(out)


# --------------------------------------------------------------------------------------
# servers


def _free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _port_is_free(port):
    with socket.socket() as s:
        # memcached binds with SO_REUSEADDR: TIME_WAIT leftovers do not count
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return False
        return True


class Memcached:
    def __init__(self, proc, port):
        self.proc = proc
        self.port = port
        self.addr = f"{HOST}:{port}"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stderr:
            self.proc.stderr.close()


def _spawn(exe, port):
    cmd = [exe, "-l", HOST, "-p", str(port), "-U", "0", "-t", "1"]
    if os.geteuid() == 0:
        cmd += ["-u", "root"]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _wait_ready(proc, port, deadline):
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                pass
            # the port answered; make sure it is our memcached and not another
            # process that holds the port while ours exits on a bind failure
            time.sleep(0.05)
            return proc.poll() is None
        except OSError:
            time.sleep(0.02)
    return False


def _memcached_exe():
    exe = shutil.which("memcached")
    if exe is None:
        pytest.fail("memcached not found in PATH (apt-get install memcached)", pytrace=False)
    return exe


def start_servers(count, ports=None):
    """Starts `count` memcached servers (in parallel) on free loopback ports."""
    exe = _memcached_exe()
    started, last_err = [], ""
    fixed = list(ports) if ports else []
    try:
        for _attempt in range(10):
            need = count - len(started)
            if need == 0:
                return started
            pending = []
            used = {s.port for s in started}
            for _ in range(need):
                port = fixed.pop(0) if fixed else _free_port()
                while port in used:
                    port = _free_port()
                used.add(port)
                pending.append((_spawn(exe, port), port))
            deadline = time.monotonic() + 10
            for proc, port in pending:
                if _wait_ready(proc, port, deadline):
                    started.append(Memcached(proc, port))
                else:
                    if proc.poll() is None:
                        proc.kill()
                        proc.wait()
                    last_err = proc.stderr.read().decode(errors="replace")
                    proc.stderr.close()
                    if ports:
                        raise RuntimeError(f"memcached on fixed port {port}: {last_err}")
        if len(started) == count:
            return started
    except BaseException:
        for s in started:
            s.stop()
        raise
    for s in started:
        s.stop()
    pytest.fail(f"could not start memcached on free ports: {last_err}", pytrace=False)


@pytest.fixture(scope="module")
def lib():
    return _load_lib()


@pytest.fixture(scope="module")
def servers():
    """Four memcached servers (rendezvous and removal tests use the first 3)."""
    srv = start_servers(4)
    try:
        yield srv
    finally:
        for s in srv:
            s.stop()


def _plain(addr):
    host, port = addr.rsplit(":", 1)
    return PyClient(
        (host, int(port)), allow_unicode_keys=True, connect_timeout=5, timeout=5,
        default_noreply=False,
    )


@pytest.fixture(scope="module")
def plain_clients(servers):
    """One plain (non-cluster) pymemcache client per server, for direct inspection."""
    clients = {s.addr: _plain(s.addr) for s in servers}
    yield clients
    for c in clients.values():
        c.close()


@pytest.fixture(autouse=True)
def _flush(plain_clients):
    for c in plain_clients.values():
        c.flush_all(noreply=False)
    yield


# --------------------------------------------------------------------------------------
# keys and values

ASCII = [chr(c) for c in range(33, 127)]
# Non-ASCII characters of every UTF-8 length, chosen so that several share a
# low byte (what pymemcache's str murmur3 mixes): e.g. U+00E9, U+03E9, U+65E9.
UNICODE = (
    [chr(c) for c in range(0xC0, 0x100)]  # Latin-1 letters (2 UTF-8 bytes)
    + [chr(c) for c in range(0x391, 0x3CA)]  # Greek (2)
    + [chr(c) for c in range(0x3E0, 0x3F0)]  # Coptic (2)
    + [chr(c) for c in range(0x410, 0x450)]  # Cyrillic (2)
    + [chr(c) for c in range(0x65E0, 0x65F0)]  # CJK (3)
    + ["\u20ac", "\u2603", "\uff21", "\ufb01"]  # euro, snowman, fullwidth A, ligature (3)
    + [chr(c) for c in range(0x1F600, 0x1F610)]  # emoji (4)
    + ["\U00010348", "\U0001d11e", "\U0002070e"]  # more 4-byte code points
)


def _utf8_len(s):
    return len(s.encode("utf-8"))


def _random_str(rng, alphabet, max_bytes, n_chars):
    out, size = [], 0
    for _ in range(n_chars):
        ch = rng.choice(alphabet)
        b = _utf8_len(ch)
        if size + b > max_bytes:
            break
        out.append(ch)
        size += b
    return "".join(out)


def make_keys(seed=20240611, n=N_KEYS):
    """n distinct str keys: short and long ASCII, 250-byte keys, UTF-8 of all widths."""
    rng = random.Random(seed)
    keys, seen = [], set()

    def add(k):
        if k and k not in seen and _utf8_len(k) <= 250:
            seen.add(k)
            keys.append(k)

    # fixed edge cases
    for k in ["a", "b", "-", ":", "foo", "bar", "baz", "127.0.0.1:11211", "x-1", "-x-",
              "\u00e9", "\u65e5\u672c", "\U0001f600", "caf\u00e9", "\u00ff" * 250]:
        add(k)
    add("\u65e5" * 83)  # 249 bytes
    add("\U0001f600" * 62 + "ab")  # 250 bytes, 64 code points
    add("L" * 250)
    while len(keys) < n:
        i = len(keys)
        kind = i % 10
        if kind < 4:  # short ASCII
            add(f"k{i}:" + _random_str(rng, ASCII, 60, rng.randint(1, 40)))
        elif kind < 6:  # long ASCII, up to 250 bytes
            target = rng.choice([rng.randint(64, 250), 250])
            add(_random_str(rng, ASCII, target, target))
        elif kind < 8:  # short mixed UTF-8
            alpha = ASCII + UNICODE * 2
            add(f"u{i}" + _random_str(rng, alpha, 80, rng.randint(1, 30)))
        elif kind == 8:  # only non-ASCII, any length up to 250 bytes
            add(_random_str(rng, UNICODE, rng.randint(2, 250), rng.randint(1, 125)))
        else:  # long mixed UTF-8 filling (almost) all 250 bytes
            add(_random_str(rng, ASCII + UNICODE, 250, 250))
    return keys


KEYS = make_keys()
assert len(set(KEYS)) == N_KEYS
assert any(_utf8_len(k) == 250 for k in KEYS)
assert sum(1 for k in KEYS if not k.isascii()) > 200


def make_values(tag):
    """Distinct bytes values per key, including binary bytes and CRLF."""
    rng = random.Random(tag)
    vals = {}
    for i, k in enumerate(KEYS):
        junk = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 40)))
        vals[k] = f"{tag}:{i}:".encode() + junk + b"\r\nEND\r\n" + k.encode("utf-8")
    return vals


def bkey(k):
    return k.encode("utf-8")


def _chunks(seq, n):
    for i in range(0, len(seq), n):
        yield seq[i : i + n]


def placement(plain_clients, addrs, values):
    """Scans the servers in `addrs`; checks every key is on exactly one of them
    with its value, that the other servers are empty, and returns {key: addr}."""
    where = {}
    for addr, client in plain_clients.items():
        found = {}
        for chunk in _chunks(KEYS, 100):
            found.update(client.get_many(chunk))
        if addr not in addrs:
            assert not found, f"{len(found)} keys landed on {addr}, which is not configured"
            continue
        for k, v in found.items():
            assert k not in where, f"key {k!r} is on both {where[k]} and {addr}"
            assert v == values[k], f"key {k!r} on {addr} has a wrong value"
            where[k] = addr
    missing = [k for k in KEYS if k not in where]
    assert not missing, f"{len(missing)} keys are on no server, e.g. {missing[:3]!r}"
    return where


def _spread(where):
    counts = {}
    for addr in where.values():
        counts[addr] = counts.get(addr, 0) + 1
    return counts


def mcrs_write(m, values):
    # half one by one, half in a set_many batch: both paths route keys
    items = [(bkey(k), values[k]) for k in KEYS]
    for k, v in items[::2]:
        m.set(k, v, 0)
    m.set_many(items[1::2], 0)


def mcrs_read_all(m, values):
    got = m.get_many([bkey(k) for k in KEYS])
    bad = [(k, g) for k, g in zip(KEYS, got) if g != (values[k], 0)]
    assert not bad, f"mcrs read {len(bad)} wrong/missing values, e.g. {bad[:3]!r}"
    # single-key gets route the same way as get_many
    for k in KEYS[::25]:
        assert m.get(bkey(k)) == (values[k], 0), k


# --------------------------------------------------------------------------------------
# rendezvous vs pymemcache HashClient


def _hash_client(addrs):
    return HashClient(
        [(a.rsplit(":", 1)[0], int(a.rsplit(":", 1)[1])) for a in addrs],
        allow_unicode_keys=True, connect_timeout=5, timeout=5, default_noreply=False,
    )


def _rendezvous_roundtrip(lib, plain_clients, addrs):
    """Both directions over `addrs`; returns the placement observed."""
    m = McrsCluster(lib, addrs, DIST_RENDEZVOUS)
    hc = _hash_client(addrs)
    try:
        # mcrs writes, HashClient reads
        v1 = make_values("mcrs-rdv")
        mcrs_write(m, v1)
        where = placement(plain_clients, addrs, v1)
        wrong = [k for k in KEYS if hc.hasher.get_node(k) != where[k]]
        assert not wrong, (
            f"{len(wrong)} keys placed by mcrs where pymemcache would not, e.g. "
            + ", ".join(f"{k!r}: mcrs {where[k]} vs py {hc.hasher.get_node(k)}" for k in wrong[:3])
        )
        got = hc.get_many(KEYS)
        assert len(got) == N_KEYS
        assert all(got[k] == v1[k] for k in KEYS)
        for k in KEYS[::25]:
            assert hc.get(k) == v1[k], k

        # HashClient writes, mcrs reads
        for c in plain_clients.values():
            c.flush_all(noreply=False)
        v2 = make_values("py-rdv")
        for k in KEYS[::2]:
            assert hc.set(k, v2[k], noreply=False)
        assert hc.set_many({k: v2[k] for k in KEYS[1::2]}, noreply=False) == []
        assert placement(plain_clients, addrs, v2) == where
        mcrs_read_all(m, v2)
        return where
    finally:
        hc.close()
        m.close()


def test_rendezvous_3_servers_matches_pymemcache(lib, servers, plain_clients):
    addrs = [s.addr for s in servers[:3]]
    where = _rendezvous_roundtrip(lib, plain_clients, addrs)
    spread = _spread(where)
    assert set(spread) == set(addrs), f"not every server got keys: {spread}"
    assert min(spread.values()) > N_KEYS // 6, f"lopsided spread: {spread}"
    # the non-ASCII keys are spread too (their hash differs from a bytes hash)
    uni = _spread({k: a for k, a in where.items() if not k.isascii()})
    assert set(uni) == set(addrs), uni


@pytest.mark.parametrize("removed", [0, 1, 2])
def test_rendezvous_removed_server(lib, servers, plain_clients, removed):
    full = [s.addr for s in servers[:3]]
    addrs = [a for i, a in enumerate(full) if i != removed]
    where = _rendezvous_roundtrip(lib, plain_clients, addrs)
    assert set(_spread(where)) == set(addrs)
    # rendezvous moves only the removed server's keys
    ref = _hash_client(full)
    try:
        moved = [k for k in KEYS if ref.hasher.get_node(k) != full[removed]
                 and ref.hasher.get_node(k) != where[k]]
    finally:
        ref.close()
    assert not moved, f"{len(moved)} keys of surviving servers moved, e.g. {moved[:3]!r}"


def test_rendezvous_server_order_does_not_matter(lib, servers, plain_clients):
    addrs = [s.addr for s in servers[:3]]
    v = make_values("order")
    m = McrsCluster(lib, list(reversed(addrs)), DIST_RENDEZVOUS)
    hc = _hash_client(addrs)
    try:
        mcrs_write(m, v)
        where = placement(plain_clients, addrs, v)
        assert all(hc.hasher.get_node(k) == where[k] for k in KEYS)
    finally:
        hc.close()
        m.close()


# --------------------------------------------------------------------------------------
# weighted ketama vs pylibmc (libmemcached)

PYLIBMC_BEHAVIORS = {
    "ketama_weighted": {"ketama_weighted": True},
    "consistent_ketama+weighted": {"distribution": "consistent ketama", "ketama_weighted": True},
}


def _pylibmc_client(addrs, weights, behaviors):
    mc = pylibmc.Client([f"{a}:{w}" for a, w in zip(addrs, weights)], behaviors=dict(behaviors))
    b = mc.get_behaviors()
    # guard the setup: weighted ketama with MD5 key hashing, no ejection
    assert b["ketama_weighted"], b
    assert b["hash"] == "md5", b
    assert b["distribution"] in ("consistent ketama", "consistent weighted"), b
    assert not b["auto_eject"], b
    return mc


def _ketama_roundtrip(lib, plain_clients, addrs, weights, behaviors):
    m = McrsCluster(lib, addrs, DIST_KETAMA, weights)
    mc = _pylibmc_client(addrs, weights, behaviors)
    try:
        # mcrs writes, pylibmc reads
        v1 = make_values("mcrs-ketama")
        mcrs_write(m, v1)
        where = placement(plain_clients, addrs, v1)
        got = {}
        for chunk in _chunks([bkey(k) for k in KEYS], 200):
            got.update(mc.get_multi(chunk))
        bad = [k for k in KEYS if got.get(bkey(k)) != v1[k]]
        assert not bad, (
            f"pylibmc could not read {len(bad)} of {N_KEYS} keys written by mcrs, e.g. "
            + ", ".join(f"{k!r} (on {where[k]})" for k in bad[:3])
        )
        for k in KEYS[::25]:
            assert mc.get(bkey(k)) == v1[k], k

        # pylibmc writes, mcrs reads
        for c in plain_clients.values():
            c.flush_all(noreply=False)
        v2 = make_values("pylibmc-ketama")
        for k in KEYS[::2]:
            assert mc.set(bkey(k), v2[k])
        assert mc.set_multi({bkey(k): v2[k] for k in KEYS[1::2]}) == []
        where2 = placement(plain_clients, addrs, v2)
        diff = [k for k in KEYS if where2[k] != where[k]]
        assert not diff, (
            f"{len(diff)} keys placed differently, e.g. "
            + ", ".join(f"{k!r}: mcrs {where[k]} vs pylibmc {where2[k]}" for k in diff[:3])
        )
        mcrs_read_all(m, v2)
        return where
    finally:
        mc.disconnect_all()
        m.close()


@pytest.mark.parametrize("behaviors", list(PYLIBMC_BEHAVIORS), ids=list(PYLIBMC_BEHAVIORS))
def test_ketama_weighted_4_servers_matches_pylibmc(lib, servers, plain_clients, behaviors):
    addrs = [s.addr for s in servers]
    where = _ketama_roundtrip(lib, plain_clients, addrs, KETAMA_WEIGHTS,
                              PYLIBMC_BEHAVIORS[behaviors])
    spread = _spread(where)
    assert set(spread) == set(addrs), f"not every server got keys: {spread}"
    # weight 3 should get about 3/7 of the keys, weight 1 about 1/7
    heavy = addrs[KETAMA_WEIGHTS.index(3)]
    assert spread[heavy] == max(spread.values()), spread
    assert spread[heavy] > 2 * min(spread.values()), spread


def test_ketama_server_order_does_not_matter(lib, servers, plain_clients):
    addrs = [s.addr for s in servers]
    order = [2, 0, 3, 1]
    v = make_values("ketama-order")
    m = McrsCluster(lib, [addrs[i] for i in order], DIST_KETAMA,
                    [KETAMA_WEIGHTS[i] for i in order])
    mc = _pylibmc_client(addrs, KETAMA_WEIGHTS, PYLIBMC_BEHAVIORS["ketama_weighted"])
    try:
        mcrs_write(m, v)
        placement(plain_clients, addrs, v)
        got = mc.get_multi([bkey(k) for k in KEYS])
        assert all(got.get(bkey(k)) == v[k] for k in KEYS)
    finally:
        mc.disconnect_all()
        m.close()


@pytest.mark.parametrize("removed", [0, 1, 2])
def test_ketama_removed_server(lib, servers, plain_clients, removed):
    full = [s.addr for s in servers[:3]]
    full_w = KETAMA_WEIGHTS[:3]
    addrs = [a for i, a in enumerate(full) if i != removed]
    weights = [w for i, w in enumerate(full_w) if i != removed]
    where = _ketama_roundtrip(lib, plain_clients, addrs, weights,
                              PYLIBMC_BEHAVIORS["ketama_weighted"])
    assert set(_spread(where)) == set(addrs)


def test_ketama_unweighted_equal_weights(lib, servers, plain_clients):
    # all weights 1: still weighted ketama on both sides (pylibmc ketama_weighted)
    addrs = [s.addr for s in servers[:3]]
    _ketama_roundtrip(lib, plain_clients, addrs, [1, 1, 1], PYLIBMC_BEHAVIORS["ketama_weighted"])


def test_ketama_default_port_11211(lib, plain_clients):
    """libmemcached names the points of a server on port 11211 "host-i" (no port)."""
    if not _port_is_free(11211):
        pytest.skip("port 11211 is busy")
    try:
        extra = start_servers(1, ports=[11211])
    except RuntimeError as e:
        pytest.skip(f"cannot start memcached on 11211: {e}")
    try:
        other = next(iter(plain_clients))
        addrs = [extra[0].addr, other]
        clients = {extra[0].addr: _plain(extra[0].addr), other: plain_clients[other]}
        try:
            clients[extra[0].addr].flush_all(noreply=False)
            _ketama_roundtrip(lib, clients, addrs, [2, 1], PYLIBMC_BEHAVIORS["ketama_weighted"])
        finally:
            clients[extra[0].addr].close()
    finally:
        for s in extra:
            s.stop()
