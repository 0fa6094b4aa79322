"""Interop between mcrs (through its C ABI, loaded with ctypes) and pymemcache.

Data written by one client must read back through the other with pymemcache's
serde flag conventions: bytes -> flags 0, int -> flags 2 (ASCII decimal),
str -> flags 16 (UTF-8).

    cargo build --release
    pip install pymemcache pytest
    python3 -m pytest tests/interop -q

Needs the `memcached` binary; each test module starts its own server on a free
loopback port (`mcrs_ctypes.py` holds the C ABI binding and the server helpers
the interop tests share). MCRS_LIB (path to libmcrs.so) overrides the library
location.
"""


import pytest
from pymemcache import serde
from pymemcache.client.base import Client as PyClient

from mcrs_ctypes import INVALID_KEY, NOREPLY_ON, Mcrs, McrsError, load_lib, running_servers

FLAG_BYTES = 0
FLAG_INTEGER = 2
FLAG_TEXT = 16


# --------------------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="module")
def memcached():
    with running_servers(1) as servers:
        yield servers[0].addr


@pytest.fixture(scope="module")
def memcached_cluster():
    with running_servers(3) as servers:
        yield [s.addr for s in servers]


@pytest.fixture(scope="module")
def lib():
    return load_lib()


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
