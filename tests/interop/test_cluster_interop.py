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
loopback ports and stops them at teardown (``mcrs_ctypes.py``, shared with the
other interop tests). MCRS_LIB overrides the location of libmcrs.so.

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

import random
import socket

import pytest

pymemcache = pytest.importorskip("pymemcache")
pylibmc = pytest.importorskip("pylibmc")

from pymemcache.client.base import Client as PyClient  # noqa: E402
from pymemcache.client.hash import HashClient  # noqa: E402

from mcrs_ctypes import (  # noqa: E402
    DIST_KETAMA,
    DIST_RENDEZVOUS,
    HOST,
    Mcrs,
    load_lib,
    start_servers,
)

N_KEYS = 1000
KETAMA_WEIGHTS = (1, 2, 3, 1)


# --------------------------------------------------------------------------------------
# servers


def _port_is_free(port):
    with socket.socket() as s:
        # memcached binds with SO_REUSEADDR: TIME_WAIT leftovers do not count
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return False
        return True


@pytest.fixture(scope="module")
def lib():
    return load_lib()


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
    m = Mcrs(lib, addrs, distribution=DIST_RENDEZVOUS, allow_unicode_keys=True)
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
    m = Mcrs(lib, list(reversed(addrs)), distribution=DIST_RENDEZVOUS, allow_unicode_keys=True)
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
    m = Mcrs(lib, addrs, distribution=DIST_KETAMA, weights=weights, allow_unicode_keys=True)
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
    m = Mcrs(lib, [addrs[i] for i in order], distribution=DIST_KETAMA,
             weights=[KETAMA_WEIGHTS[i] for i in order], allow_unicode_keys=True)
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
