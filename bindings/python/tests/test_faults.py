"""Timeouts against a SIGSTOPped memcached, ignore_exc, refused connections,
and threads sharing one client (the GIL is released while a call waits)."""

import os
import signal
import socket
import threading
import time

import pytest

import mcrs
from conftest import sigstop
from mcrs.exceptions import MemcacheError


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def stopped(fresh_server):
    """A memcached holding a key, then SIGSTOPped (resumed at the end)."""
    c = mcrs.Client(("127.0.0.1", fresh_server.port))
    c.set("k", b"v", noreply=False)
    c.close()
    sigstop(fresh_server.proc)
    try:
        yield fresh_server
    finally:
        os.kill(fresh_server.proc.pid, signal.SIGCONT)


def test_timeout_raises_socket_timeout(stopped):
    c = mcrs.Client(("127.0.0.1", stopped.port), timeout=0.3, connect_timeout=0.3)
    for call in (lambda: c.get("k"), lambda: c.get_many(["k", "j"]), lambda: c.set("k", b"v", noreply=False),
                 lambda: c.incr("n", 1), lambda: c.version()):
        t0 = time.monotonic()
        with pytest.raises(socket.timeout):
            call()
        elapsed = time.monotonic() - t0
        assert 0.25 <= elapsed < 2.0, elapsed


def test_timeout_with_ignore_exc(stopped):
    c = mcrs.Client(("127.0.0.1", stopped.port), timeout=0.3, ignore_exc=True)
    t0 = time.monotonic()
    assert c.get("k") is None
    assert c.get("k", "d") == "d"
    assert c.gets("k") == (None, None)
    assert c.get_many(["k"]) == {}
    assert c.gets_many(["k"]) == {}
    assert c.stats() == {}
    assert time.monotonic() - t0 < 6
    # writes still raise with ignore_exc (as pymemcache's Client)
    with pytest.raises(socket.timeout):
        c.set("k", b"v", noreply=False)


def test_resumed_server_answers_again(stopped):
    c = mcrs.Client(("127.0.0.1", stopped.port), timeout=0.3)
    with pytest.raises(socket.timeout):
        c.get("k")
    os.kill(stopped.proc.pid, signal.SIGCONT)
    deadline = time.monotonic() + 5
    while True:
        try:
            # replies to the timed-out request must never be taken for this one
            assert c.get("k") == b"v"
            break
        except socket.timeout:
            assert time.monotonic() < deadline


def test_connection_refused():
    port = free_port()
    c = mcrs.Client(("127.0.0.1", port), connect_timeout=1)
    with pytest.raises(ConnectionRefusedError):
        c.get("k")
    with pytest.raises(OSError):
        c.set("k", b"v")
    assert mcrs.Client(("127.0.0.1", port), ignore_exc=True).get("k", 3) == 3
    h = mcrs.HashClient([f"127.0.0.1:{port}"], ignore_exc=True)
    assert h.get("k") is None and h.set("k", b"v") is False
    with pytest.raises((OSError, MemcacheError)):
        mcrs.HashClient([f"127.0.0.1:{port}"]).get("k")


def test_hashclient_stalled_server(stopped, server, prefix):
    addrs = [f"127.0.0.1:{stopped.port}", f"{server[0]}:{server[1]}"]
    from pymemcache.client.hash import HashClient as PyHashClient

    ref = PyHashClient(addrs)
    keys = [f"{prefix.decode()}{i}" for i in range(40)]
    healthy = [k for k in keys if ref.hasher.get_node(k) == addrs[1]]
    c = mcrs.HashClient(addrs, timeout=0.3, ignore_exc=True, retry_attempts=100, retry_timeout=0)
    assert c.set_many({k: b"h" for k in healthy}, noreply=False) == []
    t0 = time.monotonic()
    assert c.get_many(keys) == {k: b"h" for k in healthy}
    assert time.monotonic() - t0 < 3


def test_threads_share_a_client(server, prefix):
    c = mcrs.Client(server, key_prefix=prefix, timeout=5)
    errors = []

    def work(t):
        try:
            for i in range(300):
                k = f"t{t}:{i}"
                # a noreply write and this thread's next read may go out on two
                # pooled connections, so read-your-writes needs a reply here
                assert c.set(k, f"{t}-{i}", noreply=False) is True
                assert c.get(k) == f"{t}-{i}".encode()
                assert c.set(f"nr{t}:{i}", b"x") is True  # noreply, checked below
                if i % 50 == 0:
                    many = {f"t{t}:{j}": f"{t}-{j}".encode() for j in range(i + 1)}
                    assert c.get_many(list(many)) == many
                assert c.incr(f"n{t}", 1) in (None, i)
                if i == 0:
                    c.set(f"n{t}", b"0", noreply=False)
        except BaseException as e:  # reported by the main thread
            errors.append(e)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert not errors, errors[0]
    assert all(not th.is_alive() for th in threads)
    want = {f"nr{t}:{i}": b"x" for t in range(8) for i in range(300)}
    deadline = time.monotonic() + 5
    while c.get_many(list(want)) != want:
        assert time.monotonic() < deadline, "noreply writes from threads were lost"
        time.sleep(0.05)


def test_gil_released_while_waiting(stopped):
    c = mcrs.Client(("127.0.0.1", stopped.port), timeout=2)
    done = threading.Event()
    outcome = []

    def blocked():
        try:
            c.get("k")
        except socket.timeout:
            outcome.append("timeout")
        done.set()

    th = threading.Thread(target=blocked)
    th.start()
    time.sleep(0.1)
    t0 = time.monotonic()
    n = 0
    while time.monotonic() - t0 < 0.5:
        n += 1  # pure Python: runs only if the waiting thread dropped the GIL
    assert not done.is_set(), "the get returned before its timeout"
    assert n > 10000, n
    th.join(10)
    assert outcome == ["timeout"]


def test_retrying_client(fresh_server):
    from mcrs.client.retrying import RetryingClient
    from mcrs.exceptions import MemcacheIllegalInputError

    addr = ("127.0.0.1", fresh_server.port)
    with pytest.raises(ValueError):
        RetryingClient(mcrs.Client(addr), attempts=0)
    with pytest.raises(ValueError):
        RetryingClient(mcrs.Client(addr), retry_for=[OSError], do_not_retry_for=[OSError])
    rc = RetryingClient(mcrs.Client(addr, timeout=0.2), attempts=3, retry_delay=0.1,
                        do_not_retry_for=[MemcacheIllegalInputError])
    assert rc.set("k", b"v", noreply=False) is True
    rc["j"] = b"w"
    assert rc.get("k") == b"v" and rc["k"] == b"v"
    with pytest.raises(MemcacheIllegalInputError):
        rc.get("bad key")
    # a stalled server: three attempts, each running out of time, then the error
    sigstop(fresh_server.proc)
    try:
        t0 = time.monotonic()
        with pytest.raises(socket.timeout):
            rc.get("k")
        assert time.monotonic() - t0 >= 3 * 0.2 + 2 * 0.1 - 0.05
        # resumed during the retries: a later attempt succeeds
        threading.Timer(0.25, os.kill, (fresh_server.proc.pid, signal.SIGCONT)).start()
        assert rc.get("k") == b"v"
    finally:
        os.kill(fresh_server.proc.pid, signal.SIGCONT)
