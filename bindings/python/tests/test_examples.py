"""The seed's examples (examples/python: pymemcache's "Getting started",
HashClient and serde examples with mcrs imports) run against test servers."""

import os
import subprocess
import sys

from conftest import ROOT

EXAMPLES = ROOT / "examples" / "python"


def run(name, env):
    p = subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 0, p.stderr
    return p.stdout.splitlines()


def test_getting_started(server):
    assert run("getting_started.py", {"MEMCACHED_SERVER": "%s:%d" % server}) == ["b'some_value'"]


def test_hash_client(cluster):
    assert run("hash_client.py", {"MEMCACHED_SERVERS": ",".join(cluster[:2])}) == ["b'some value'"]


def test_serde(server):
    assert run("serde.py", {"MEMCACHED_SERVER": "%s:%d" % server}) == ["Foo", "{'a': 'b', 'c': 'd'}"]


def test_same_output_with_pymemcache(server, cluster):
    # each example with its imports put back to pymemcache prints the same
    env = {**os.environ, "MEMCACHED_SERVER": "%s:%d" % server, "MEMCACHED_SERVERS": ",".join(cluster[:2])}
    for path in sorted(EXAMPLES.glob("*.py")):
        text = path.read_text()
        assert "from mcrs" in text, path
        original = text.replace("from mcrs", "from pymemcache")
        outs = []
        for src in (text, original):
            p = subprocess.run([sys.executable, "-c", src], env=env, capture_output=True, text=True, timeout=60)
            assert p.returncode == 0, p.stderr
            outs.append(p.stdout)
        assert outs[0] == outs[1], path
