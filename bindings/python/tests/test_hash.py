"""HashClient: keys on the servers pymemcache's HashClient picks, and
pymemcache's failure behaviour (retry_attempts, retry_timeout, dead_timeout,
ignore_exc) over real servers, one of them killed."""

import time

import pytest
from pymemcache.client.base import Client as PyClient
from pymemcache.client.hash import HashClient as PyHashClient

import mcrs
from mcrs.exceptions import MemcacheIllegalInputError


def per_server(cluster):
    out = {}
    for addr in cluster:
        host, port = addr.rsplit(":", 1)
        out[addr] = PyClient((host, int(port)))
    return out


@pytest.mark.parametrize("spec", ["str", "tuple"])
def test_placement_equals_pymemcache(cluster, prefix, spec):
    servers = cluster if spec == "str" else [(a.rsplit(":", 1)[0], int(a.rsplit(":", 1)[1])) for a in cluster]
    m = mcrs.HashClient(servers, key_prefix=prefix)
    ref = PyHashClient(servers, key_prefix=prefix)
    direct = per_server(cluster)
    keys = [f"k{i}" for i in range(300)] + ["foo", "bar", "baz", "caf", "x" * 200]
    assert m.set_many({k: k.encode() for k in keys}, noreply=False) == []
    placed = {a: 0 for a in cluster}
    for k in keys:
        node = ref.hasher.get_node(k)
        holders = [a for a, c in direct.items() if c.get(prefix + k.encode()) is not None]
        assert holders == [node], (k, holders, node)
        placed[node] += 1
    assert all(n > 50 for n in placed.values()), placed
    # and pymemcache finds what mcrs wrote
    assert ref.get_many(keys) == {k: k.encode() for k in keys}


def test_every_command(cluster, prefix):
    c = mcrs.HashClient(cluster, key_prefix=prefix, default_noreply=False)
    assert c.set("a", b"1") is True
    assert c.add("a", b"2") is False
    assert c.replace("a", b"3") is True
    assert c.append("a", b"4") is True
    assert c.prepend("a", b"0") is True
    assert c.get("a") == b"034"
    v, cas = c.gets("a")
    assert c.cas("a", b"n", cas) is True
    assert c.incr("n", 1) is None
    c.set("n", 5)
    assert c.incr("n", 2) == 7 and c.decr("n", 10) == 0
    assert c.touch("a", 100) is True and c.touch("zz", 1) is False
    assert c.gat("a", 100) == b"n"
    assert c.get_many(["a", "n", "zz"]) == {"a": b"n", "n": b"0"}
    assert set(c.get_many(["a", "n"], gets=True)) == {"a", "n"}
    assert set(c.gets_many(["a", "n"])) == {"a", "n"}
    assert c.delete("a") is True and c.delete("a") is False
    assert c.delete_many(["n", "zz"]) is True
    assert c.get_many(["a", "n"]) == {}
    assert c.flush_all() is None
    assert c.quit() is None and c.close() is None
    c["x"] = b"y"
    assert c["x"] == b"y"
    with pytest.raises(KeyError):
        c["missing"]
    with pytest.raises(MemcacheIllegalInputError):
        c.get("bad key")
    with pytest.raises(NotImplementedError):
        mcrs.HashClient(cluster, hasher=dict)


def test_add_remove_server(cluster, prefix):
    c = mcrs.HashClient(cluster[:2], key_prefix=prefix)
    ref = PyHashClient(cluster[:2], key_prefix=prefix)
    c.add_server(*cluster[2].rsplit(":", 1)[0:1], int(cluster[2].rsplit(":", 1)[1]))
    ref.add_server(cluster[2].rsplit(":", 1)[0], int(cluster[2].rsplit(":", 1)[1]))
    direct = per_server(cluster)
    for i in range(60):
        k = f"r{i}"
        c.set(k, b"v", noreply=False)
        holders = [a for a, cl in direct.items() if cl.get(prefix + k.encode()) is not None]
        assert holders == [ref.hasher.get_node(k)]
    c.remove_server(cluster[2])
    assert len(c.servers) == 2


def test_dead_server_like_pymemcache(start3):
    servers, addrs = start3
    keys = [f"d{i}" for i in range(60)]
    ref = PyHashClient(addrs)
    dead = servers[0]
    on_dead = [k for k in keys if ref.hasher.get_node(k) == dead.addr]
    assert on_dead
    k = on_dead[0]
    clients = {
        "mcrs": mcrs.HashClient(addrs, retry_attempts=1, retry_timeout=0.2, dead_timeout=60, timeout=2, connect_timeout=2),
        "pymemcache": PyHashClient(addrs, retry_attempts=1, retry_timeout=0.2, dead_timeout=60, timeout=2, connect_timeout=2),
    }
    for c in clients.values():
        c.set(k, b"v", noreply=False)
        c.close()  # no open connection: the next one is refused
    dead.stop()
    for name, c in clients.items():
        # the first failure raises a socket error
        with pytest.raises(OSError):
            c.get(k)
        # until retry_timeout passes, the dead server's keys give the default
        assert c.get(k) is None, name
        assert c.get(k, "d") == "d", name
        assert c.set(k, b"v") is False, name
    # mcrs: after retry_attempts failed retries the server leaves the ring and
    # its keys are served by the others
    c = clients["mcrs"]
    deadline = time.monotonic() + 10
    while True:
        time.sleep(0.25)
        try:
            if c.set(k, b"moved", noreply=False) and c.get(k) == b"moved":
                break
        except OSError:
            pass
        assert time.monotonic() < deadline, "the dead server never left the ring"
    live = [k2 for k2 in keys if k2 not in on_dead]
    assert c.set_many({k2: b"x" for k2 in live}, noreply=False) == []


def test_ignore_exc_dead_server(start3):
    servers, addrs = start3
    ref = PyHashClient(addrs)
    keys = [f"i{i}" for i in range(60)]
    c = mcrs.HashClient(addrs, ignore_exc=True, retry_attempts=100, retry_timeout=0, timeout=2)
    assert c.set_many({k: b"v" for k in keys}, noreply=False) == []
    servers[1].stop()
    on_dead = {k for k in keys if ref.hasher.get_node(k) == servers[1].addr}
    # never raises: misses for the dead server's keys, hits for the others
    for _ in range(3):
        got = c.get_many(keys)
        assert set(got) == set(keys) - on_dead
        assert sorted(c.set_many({k: b"w" for k in keys}, noreply=False)) == sorted(on_dead)
        k = next(iter(on_dead))
        assert c.get(k) is None
        assert c.set(k, b"x", noreply=False) is False
        assert c.incr(k, 1) is False
        assert c.delete(k, noreply=False) is False
        assert c.gets(k) is None
        assert c.delete_many(list(on_dead)) is True


def test_get_many_raises_without_ignore_exc(start3):
    servers, addrs = start3
    keys = [f"g{i}" for i in range(60)]
    c = mcrs.HashClient(addrs, retry_attempts=100, retry_timeout=0, timeout=2)
    c.set_many({k: b"v" for k in keys}, noreply=False)
    servers[2].stop()
    with pytest.raises(OSError):
        c.get_many(keys)


@pytest.fixture
def start3():
    from conftest import start_servers

    servers = start_servers(3)
    try:
        yield servers, [s.addr for s in servers]
    finally:
        for s in servers:
            s.stop()
