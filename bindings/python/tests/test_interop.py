"""Data written by mcrs reads back through pymemcache and the other way round,
values and flags alike, with pymemcache's serde objects on both sides."""

import pytest
from pymemcache import serde as pyserde
from pymemcache.client.base import Client as PyClient
from pymemcache.client.hash import HashClient as PyHashClient

import mcrs
from mcrs import serde

VALUES = {
    "bytes": (b"raw\x00bytes\r\n\xff", 0),
    "text": ("h\u00e9llo w\u00f6rld \u65e5\u672c", 16),
    "int": (42, 2),
    "negint": (-17, 2),
    "big": (2**80, 2),
    "empty": (b"", 0),
    "obj": ({"a": [1, 2.5, None], "b": (1, "x")}, 1),
}


def flag_capture():
    seen = {}

    class Capture:
        def serialize(self, key, value):
            return pyserde.pickle_serde.serialize(key, value)

        def deserialize(self, key, value, flags):
            seen[key] = flags
            return pyserde.pickle_serde.deserialize(key, value, flags)

    return Capture(), seen


@pytest.mark.parametrize("direction", ["mcrs->pymemcache", "pymemcache->mcrs"])
def test_values_and_flags_cross(server, prefix, direction):
    m = mcrs.Client(server, key_prefix=prefix, serde=serde.pickle_serde)
    cap, seen = flag_capture()
    p = PyClient(server, key_prefix=prefix, serde=cap)
    writer, reader_serde = (m, "py") if direction == "mcrs->pymemcache" else (p, "mcrs")
    for k, (v, _) in VALUES.items():
        assert writer.set(k, v, noreply=False) is True
    if reader_serde == "py":
        reader = p
    else:
        cap, seen = flag_capture()
        reader = mcrs.Client(server, key_prefix=prefix, serde=cap)
    for k, (v, flags) in VALUES.items():
        assert reader.get(k) == v, k
        assert seen[k] == flags, k
    assert reader.get_many(list(VALUES)) == {k: v for k, (v, _) in VALUES.items()}


def test_default_serde_both_ways(server, prefix):
    # no serde: both store str(value) encoded, flags 0, and read bytes
    m = mcrs.Client(server, key_prefix=prefix)
    p = PyClient(server, key_prefix=prefix)
    m.set("a", "text", noreply=False)
    m.set("b", 12, noreply=False)
    p.set("c", "more", noreply=False)
    assert p.get_many(["a", "b"]) == {"a": b"text", "b": b"12"}
    assert m.get("c") == b"more"
    # explicit flags travel as they are
    m.set("f", b"x", flags=0xDEAD00, noreply=False)
    cap, seen = flag_capture()
    PyClient(server, key_prefix=prefix, serde=cap).get("f")
    assert seen["f"] == 0xDEAD00


def test_cas_across_clients(server, prefix):
    m = mcrs.Client(server, key_prefix=prefix)
    p = PyClient(server, key_prefix=prefix)
    p.set("k", b"1", noreply=False)
    _, cas = m.gets("k")
    _, pcas = p.gets("k")
    assert cas == pcas
    assert p.cas("k", b"2", cas) is True
    assert m.cas("k", b"3", cas) is False
    _, cas = p.gets("k")
    assert m.cas("k", b"3", cas) is True
    assert p.get("k") == b"3"


def test_compressed_serde_cross(server, prefix):
    m = mcrs.Client(server, key_prefix=prefix, serde=serde.compressed_serde)
    p = PyClient(server, key_prefix=prefix, serde=pyserde.compressed_serde)
    value = {"text": "abc" * 1000}
    m.set("z", value, noreply=False)
    assert p.get("z") == value
    p.set("y", "q" * 2000, noreply=False)
    assert m.get("y") == "q" * 2000


def test_hashclient_cross(cluster, prefix):
    m = mcrs.HashClient(cluster, key_prefix=prefix, serde=serde.pickle_serde)
    p = PyHashClient(cluster, key_prefix=prefix, serde=pyserde.pickle_serde)
    items = {f"key{i}": {"i": i} for i in range(200)}
    assert m.set_many(items, noreply=False) == []
    assert p.get_many(list(items)) == items
    p.set_many({f"p{i}": i for i in range(100)}, noreply=False)
    assert m.get_many([f"p{i}" for i in range(100)]) == {f"p{i}": i for i in range(100)}
