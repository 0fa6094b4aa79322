"""Interop between mcrs (through its C ABI, loaded with ctypes) and pymemcache.

Data written by one client must read back through the other with pymemcache's
serde flag conventions: bytes -> flags 0, int -> flags 2 (ASCII decimal),
str -> flags 16 (UTF-8).

    cargo build --release
    pip install pymemcache pytest
    python3 -m pytest tests/interop -q

Needs the `memcached` binary; each test module starts its own server on a free
loopback port. MCRS_LIB (path to libmcrs.so) overrides the library location.
"""

import contextlib
import ctypes
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
from pymemcache import serde
from pymemcache.client.base import Client as PyClient

ROOT = Path(__file__).resolve().parents[2]
LIB_PATH = Path(os.environ.get("MCRS_LIB", ROOT / "target" / "release" / "libmcrs.so"))

FLAG_BYTES = 0
FLAG_INTEGER = 2
FLAG_TEXT = 16

# mcrs_status values (never renumbered)
OK, NOT_FOUND, NOT_STORED, EXISTS, INVALID_KEY = 0, 1, 2, 3, 4
NOREPLY_DEFAULT, NOREPLY_ON, NOREPLY_OFF = 0, 1, 2


# --------------------------------------------------------------------------------------
# ctypes binding of the parts of the C ABI the tests use


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
    sig = {
        "mcrs_config_new": (vp, []),
        "mcrs_config_free": (None, [vp]),
        "mcrs_config_add_server": (st, [vp, ctypes.c_char_p]),
        "mcrs_config_set_default_noreply": (st, [vp, ctypes.c_bool]),
        "mcrs_config_set_key_prefix": (st, [vp, ctypes.c_char_p, sz]),
        "mcrs_config_set_timeout_ms": (st, [vp, u32]),
        "mcrs_client_new": (st, [vp, ctypes.POINTER(vp)]),
        "mcrs_client_free": (None, [vp]),
        "mcrs_client_set": (st, [vp, ctypes.c_char_p, sz, ctypes.c_char_p, sz, u32, u32, u32]),
        "mcrs_client_get": (st, [vp, ctypes.c_char_p, sz, ctypes.POINTER(vp)]),
        "mcrs_client_get_many": (
            st,
            [vp, ctypes.POINTER(ctypes.c_char_p), ctypes.POINTER(sz), sz, ctypes.POINTER(vp)],
        ),
        "mcrs_client_delete": (st, [vp, ctypes.c_char_p, sz, u32]),
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
        fn = getattr(lib, name)
        fn.restype = res
        fn.argtypes = args
    return lib


class McrsError(Exception):
    def __init__(self, message, status):
        super().__init__(message)
        self.status = status


class Mcrs:
    """A tiny Python wrapper over the C ABI (raw bytes + flags, no serializer)."""

    def __init__(self, lib, server, key_prefix=b""):
        """server: "host:port", or a list of them (a cluster, default distribution)."""
        self.lib = lib
        cfg = lib.mcrs_config_new()
        assert cfg
        try:
            for addr in [server] if isinstance(server, str) else server:
                self._check(lib.mcrs_config_add_server(cfg, addr.encode()), f"add_server {addr}")
            self._check(lib.mcrs_config_set_default_noreply(cfg, False), "set_default_noreply")
            self._check(lib.mcrs_config_set_timeout_ms(cfg, 5000), "set_timeout_ms")
            if key_prefix:
                self._check(
                    lib.mcrs_config_set_key_prefix(cfg, key_prefix, len(key_prefix)),
                    "set_key_prefix",
                )
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

    def set(self, key, value, flags, noreply=NOREPLY_OFF):
        self._check(
            self.lib.mcrs_client_set(self.client, key, len(key), value, len(value), flags, 0, noreply),
            f"set {key!r}",
        )

    def _value(self, v):
        n = self.lib.mcrs_value_len(v)
        data = ctypes.string_at(self.lib.mcrs_value_data(v), n) if n else b""
        return data, self.lib.mcrs_value_flags(v)

    def get(self, key):
        """(bytes, flags) or None for a miss."""
        out = ctypes.c_void_p(1)
        st = self.lib.mcrs_client_get(self.client, key, len(key), ctypes.byref(out))
        if st == NOT_FOUND:
            assert not out.value, "a miss must set *out = NULL"
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

    def delete(self, key):
        st = self.lib.mcrs_client_delete(self.client, key, len(key), NOREPLY_OFF)
        if st != NOT_FOUND:
            self._check(st, f"delete {key!r}")


# --------------------------------------------------------------------------------------
# fixtures


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def _memcached_server():
    """Starts memcached on a free loopback port; yields "127.0.0.1:PORT"; stops it."""
    exe = shutil.which("memcached")
    if exe is None:
        pytest.fail("memcached not found in PATH (apt-get install memcached)", pytrace=False)
    last_err = ""
    for _attempt in range(10):
        port = _free_port()
        cmd = [exe, "-l", "127.0.0.1", "-p", str(port), "-U", "0", "-t", "1"]
        if os.geteuid() == 0:
            cmd += ["-u", "root"]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                time.sleep(0.05)
        if proc.poll() is None:
            try:
                yield f"127.0.0.1:{port}"
            finally:
                proc.terminate()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
                proc.stderr.close()
            return
        last_err = proc.stderr.read().decode(errors="replace")
        proc.stderr.close()
    pytest.fail(f"could not start memcached on a free port: {last_err}", pytrace=False)


@pytest.fixture(scope="module")
def memcached():
    with _memcached_server() as addr:
        yield addr


@pytest.fixture(scope="module")
def memcached_cluster():
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(_memcached_server()) for _ in range(3)]


@pytest.fixture(scope="module")
def lib():
    return _load_lib()


@pytest.fixture
def mcrs(lib, memcached):
    c = Mcrs(lib, memcached)
    yield c
    c.close()


@pytest.fixture
def py(memcached):
    host, port = memcached.rsplit(":", 1)
    c = PyClient((host, int(port)), serde=serde.pickle_serde, connect_timeout=5, timeout=5)
    yield c
    c.close()


# --------------------------------------------------------------------------------------
# tests


def test_flag_constants_match_pymemcache():
    assert serde.FLAG_BYTES == FLAG_BYTES
    assert serde.FLAG_INTEGER == FLAG_INTEGER
    assert serde.FLAG_TEXT == FLAG_TEXT


def test_mcrs_writes_pymemcache_reads(mcrs, py):
    mcrs.set(b"io:bytes", b"raw\x00bytes\r\n\xff", FLAG_BYTES)
    mcrs.set(b"io:int", b"42", FLAG_INTEGER)
    mcrs.set(b"io:negint", b"-17", FLAG_INTEGER)
    mcrs.set(b"io:text", "h\u00e9llo w\u00f6rld \u65e5\u672c".encode("utf-8"), FLAG_TEXT)
    mcrs.set(b"io:empty", b"", FLAG_BYTES)

    got = py.get(b"io:bytes")
    assert isinstance(got, bytes) and got == b"raw\x00bytes\r\n\xff"
    got = py.get(b"io:int")
    assert isinstance(got, int) and got == 42
    assert py.get(b"io:negint") == -17
    got = py.get(b"io:text")
    assert isinstance(got, str) and got == "h\u00e9llo w\u00f6rld \u65e5\u672c"
    assert py.get(b"io:empty") == b""
    # noreply from mcrs, then pymemcache reads it
    mcrs.set(b"io:noreply", b"7", FLAG_INTEGER, noreply=NOREPLY_ON)
    mcrs.get(b"io:noreply")  # a round trip on mcrs' connection: the set has been applied
    assert py.get(b"io:noreply") == 7


def test_pymemcache_writes_mcrs_reads(mcrs, py):
    assert py.set(b"io:py:bytes", b"\x00\x01\r\nEND\r\n", noreply=False)
    assert py.set(b"io:py:int", 123456789, noreply=False)
    assert py.set(b"io:py:str", "gr\u00fc\u00dfe \U0001f600", noreply=False)
    assert py.set(b"io:py:empty", b"", noreply=False)

    assert mcrs.get(b"io:py:bytes") == (b"\x00\x01\r\nEND\r\n", FLAG_BYTES)
    assert mcrs.get(b"io:py:int") == (b"123456789", FLAG_INTEGER)
    assert mcrs.get(b"io:py:str") == ("gr\u00fc\u00dfe \U0001f600".encode("utf-8"), FLAG_TEXT)
    assert mcrs.get(b"io:py:empty") == (b"", FLAG_BYTES)
    assert mcrs.get(b"io:py:missing") is None


def test_key_prefix_across_clients(lib, memcached, py):
    host, port = memcached.rsplit(":", 1)
    prefixed_py = PyClient((host, int(port)), serde=serde.pickle_serde, key_prefix=b"pfx:")
    m = Mcrs(lib, memcached, key_prefix=b"pfx:")
    try:
        # mcrs with prefix -> pymemcache with the same prefix, and without it
        m.set(b"k1", b"from-mcrs", FLAG_BYTES)
        assert prefixed_py.get(b"k1") == b"from-mcrs"
        assert py.get(b"pfx:k1") == b"from-mcrs"
        assert py.get(b"k1") is None
        # pymemcache with prefix -> mcrs with prefix
        assert prefixed_py.set(b"k2", 99, noreply=False)
        assert m.get(b"k2") == (b"99", FLAG_INTEGER)
        # the prefixed mcrs client does not see unprefixed keys
        assert py.set(b"k3", "plain", noreply=False)
        assert m.get(b"k3") is None
    finally:
        m.close()
        prefixed_py.close()


def test_get_many_across_clients(mcrs, py):
    # mcrs writes, pymemcache get_many
    mcrs.set(b"gm:a", b"A", FLAG_BYTES)
    mcrs.set(b"gm:b", b"2", FLAG_INTEGER)
    mcrs.set(b"gm:c", "\u00e7".encode("utf-8"), FLAG_TEXT)
    mcrs.delete(b"gm:missing")
    got = py.get_many([b"gm:a", b"gm:b", b"gm:c", b"gm:missing"])
    assert got == {b"gm:a": b"A", b"gm:b": 2, b"gm:c": "\u00e7"}

    # pymemcache writes, mcrs get_many (order kept, misses are None)
    assert py.set_many({b"gm:x": b"X", b"gm:y": 7, b"gm:z": "zed"}, noreply=False) == []
    res = mcrs.get_many([b"gm:z", b"gm:missing", b"gm:x", b"gm:y", b"gm:x"])
    assert res == [
        (b"zed", FLAG_TEXT),
        None,
        (b"X", FLAG_BYTES),
        (b"7", FLAG_INTEGER),
        (b"X", FLAG_BYTES),
    ]


def test_get_many_with_prefix_across_clients(lib, memcached):
    host, port = memcached.rsplit(":", 1)
    prefixed_py = PyClient((host, int(port)), serde=serde.pickle_serde, key_prefix=b"mp:")
    m = Mcrs(lib, memcached, key_prefix=b"mp:")
    try:
        assert prefixed_py.set_many({b"1": b"one", b"2": 2}, noreply=False) == []
        assert m.get_many([b"1", b"2", b"3"]) == [(b"one", FLAG_BYTES), (b"2", FLAG_INTEGER), None]
        m.set(b"3", "drei".encode(), FLAG_TEXT)
        assert prefixed_py.get_many([b"1", b"2", b"3"]) == {b"1": b"one", b"2": 2, b"3": "drei"}
    finally:
        m.close()
        prefixed_py.close()


def test_invalid_key_rejected_like_pymemcache(mcrs, py):
    # both refuse a key with a space before any I/O
    with pytest.raises(McrsError) as err:
        mcrs.set(b"bad key", b"x", FLAG_BYTES)
    assert err.value.status == INVALID_KEY
    with pytest.raises(Exception):
        py.set(b"bad key", b"x")


def _hostport(addr):
    host, port = addr.rsplit(":", 1)
    return host, int(port)


def test_cluster_placement_matches_pymemcache_hashclient(lib, memcached_cluster):
    """mcrs' default distribution is pymemcache HashClient's rendezvous hash: keys written by
    one cluster client are found by the other, on the same server."""
    from pymemcache.client.hash import HashClient

    servers = [_hostport(a) for a in memcached_cluster]
    hc = HashClient(servers, serde=serde.pickle_serde, connect_timeout=5, timeout=5)
    singles = [PyClient(s, serde=serde.pickle_serde) for s in servers]
    m = Mcrs(lib, memcached_cluster)
    try:
        for c in singles:
            c.flush_all(noreply=False)
        # str keys: pymemcache's RendezvousHash formats f"{node}-{key}", so a bytes key would be
        # hashed as its repr ("...-b'hc:0'"); mcrs hashes the key bytes, like str keys.
        skeys = [f"hc:{i}" for i in range(200)]
        keys = [k.encode() for k in skeys]
        # pymemcache HashClient -> mcrs
        assert hc.set_many({k: i for i, k in enumerate(skeys)}, noreply=False) == []
        assert m.get_many(keys) == [(str(i).encode(), FLAG_INTEGER) for i in range(len(keys))]
        # the keys are really spread over the servers
        per_server = [len(c.get_many(keys)) for c in singles]
        assert sum(per_server) == len(keys) and all(n > 0 for n in per_server), per_server
        # mcrs -> pymemcache HashClient, on the server HashClient picks
        for i, k in enumerate(keys):
            m.set(k, f"m{i}".encode(), FLAG_TEXT)
        assert hc.get_many(skeys) == {k: f"m{i}" for i, k in enumerate(skeys)}
        for sk, k in zip(skeys, keys):
            node = hc.hasher.get_node(sk)
            owner = [c for c, s in zip(singles, servers) if node == f"{s[0]}:{s[1]}"]
            assert len(owner) == 1, (sk, node)
            assert owner[0].get(k) is not None, f"{sk} not on {node}"
    finally:
        m.close()
        hc.close()
        for c in singles:
            c.close()


def test_cluster_with_key_prefix_matches_pymemcache_hashclient(lib, memcached_cluster):
    """Both hash the key before the prefix, and store prefix+key."""
    from pymemcache.client.hash import HashClient

    servers = [_hostport(a) for a in memcached_cluster]
    hc = HashClient(servers, serde=serde.pickle_serde, key_prefix=b"cp:")
    m = Mcrs(lib, memcached_cluster, key_prefix=b"cp:")
    try:
        skeys = [f"k{i}" for i in range(100)]
        assert hc.set_many({k: k for k in skeys}, noreply=False) == []
        assert m.get_many([k.encode() for k in skeys]) == [(k.encode(), FLAG_TEXT) for k in skeys]
        m.set(b"from-mcrs", b"1", FLAG_INTEGER)
        assert hc.get("from-mcrs") == 1
    finally:
        m.close()
        hc.close()
