"""Fixtures of the mcrs package tests: real memcached servers on free loopback
ports (the interop suite's helper, tests/interop/mcrs_ctypes.py, starts
them), and pymemcache clients to compare with.

Run after `pip install ./bindings/python`: python3 -m pytest -q bindings/python/tests
"""

import sys
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
HERE = Path(__file__).resolve().parent
# the installed package, never the source tree (its C extension is not built there)
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE.parent]
sys.path.insert(0, str(ROOT / "tests" / "interop"))

from mcrs_ctypes import running_servers, start_servers  # noqa: E402,F401


@pytest.fixture(scope="session")
def server():
    """One memcached: (host, port)."""
    with running_servers(1) as servers:
        yield ("127.0.0.1", servers[0].port)


@pytest.fixture(scope="session")
def cluster():
    """Three memcached servers: their "host:port" addresses."""
    with running_servers(3) as servers:
        yield [s.addr for s in servers]


@pytest.fixture
def fresh_server():
    """A memcached of the test's own (it may be stopped or killed): the handle."""
    with running_servers(1) as servers:
        yield servers[0]


@pytest.fixture
def prefix(request):
    """A key prefix unique to the test (tests share the session servers)."""
    return b"t" + uuid.uuid4().hex[:12].encode() + b":"


def sigstop(proc):
    """SIGSTOPs a server and waits until every thread of it is stopped (the
    signal is asynchronous: a thread already running could still answer)."""
    import glob
    import os
    import signal
    import time

    os.kill(proc.pid, signal.SIGSTOP)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        states = []
        for stat in glob.glob(f"/proc/{proc.pid}/task/*/stat"):
            try:
                with open(stat) as f:
                    states.append(f.read().rsplit(")", 1)[1].split()[0])
            except OSError:
                pass
        if states and all(s in ("T", "t") for s in states):
            return
        time.sleep(0.01)
    raise AssertionError(f"memcached {proc.pid} did not stop")
