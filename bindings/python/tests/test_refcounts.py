"""The C extension neither leaks nor over-releases references: defaults, keys
and values keep their reference counts across many calls, and memory stays
flat over many commands (hits, misses, errors)."""

import resource
import sys

import pytest

import mcrs
from mcrs.exceptions import MemcacheIllegalInputError


def test_reference_counts_unchanged(server, prefix):
    c = mcrs.Client(server, key_prefix=prefix, default_noreply=False)
    sentinel = object()
    key = "k" + "x" * 10  # not interned by the compiler
    keys = [key, "missing"]
    value = b"v" * 100
    c.set(key, value)
    before = [sys.getrefcount(o) for o in (sentinel, key, value, keys)]
    for _ in range(2000):
        assert c.get("missing", sentinel) is sentinel
        assert c.gets("missing", sentinel, sentinel) == (sentinel, sentinel)
        assert c.get(key) == value
        assert c.get_many(keys) == {key: value}
        assert c.set(key, value) is True
        assert c.set_many({key: value}) == []
        with pytest.raises(MemcacheIllegalInputError):
            c.get("bad key", sentinel)
    after = [sys.getrefcount(o) for o in (sentinel, key, value, keys)]
    assert after == before


def rss_kb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * (resource.getpagesize() // 1024)


def test_memory_flat(server, prefix):
    c = mcrs.Client(server, key_prefix=prefix, default_noreply=False)
    value = b"v" * 1000
    keys = [f"m{i}" for i in range(50)]
    c.set_many({k: value for k in keys})

    def round_(n):
        for _ in range(n):
            c.get("m1")
            c.get("missing")
            c.gets("m2")
            c.get_many(keys)
            c.gets_many(keys[:10])
            c.set_many({"m3": value, "m4": value})
            c.delete_many(["zz1", "zz2"])
            try:
                c.get("bad key")
            except MemcacheIllegalInputError:
                pass

    round_(500)  # warm up allocators and pools
    start = rss_kb()
    round_(5000)  # a leaked value per call would be > 250 MB here
    grown = rss_kb() - start
    assert grown < 16 * 1024, f"RSS grew by {grown} kB"
