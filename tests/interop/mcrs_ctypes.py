"""Shared plumbing of the interop tests: the parts of mcrs's C ABI they use,
loaded with ctypes, a small client wrapper (raw bytes + flags, no serializer),
and memcached servers on free loopback ports.

MCRS_LIB (path to libmcrs.so) overrides the library location.
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

ROOT = Path(__file__).resolve().parents[2]
LIB_PATH = Path(os.environ.get("MCRS_LIB", ROOT / "target" / "release" / "libmcrs.so"))
HOST = "127.0.0.1"

# mcrs_status values (never renumbered)
OK, NOT_FOUND, NOT_STORED, EXISTS, INVALID_KEY = 0, 1, 2, 3, 4
NOREPLY_DEFAULT, NOREPLY_ON, NOREPLY_OFF = 0, 1, 2
DIST_RENDEZVOUS, DIST_KETAMA = 0, 1


# --------------------------------------------------------------------------------------
# the C ABI


def load_lib():
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
        "mcrs_config_set_key_prefix": (st, [vp, ctypes.c_char_p, sz]),
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


class Mcrs:
    """An mcrs client over one server or several (raw bytes + flags). Replies
    are waited for (default_noreply off), with a 5 s timeout."""

    def __init__(self, lib, servers, key_prefix=b"", distribution=None, weights=None,
                 allow_unicode_keys=False):
        """servers: "host:port" or a list of them; weights: None or one int per server."""
        self.lib = lib
        self.client = None
        cfg = lib.mcrs_config_new()
        assert cfg, "mcrs_config_new returned NULL"
        try:
            servers = [servers] if isinstance(servers, str) else servers
            for i, addr in enumerate(servers):
                if weights is None:
                    self._check(lib.mcrs_config_add_server(cfg, addr.encode()), f"add_server {addr}")
                else:
                    self._check(
                        lib.mcrs_config_add_server_weighted(cfg, addr.encode(), weights[i]),
                        f"add_server_weighted {addr} {weights[i]}",
                    )
            if distribution is not None:
                self._check(lib.mcrs_config_set_distribution(cfg, distribution), "set_distribution")
            if allow_unicode_keys:
                self._check(lib.mcrs_config_set_allow_unicode_keys(cfg, True), "set_allow_unicode_keys")
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

    def set(self, key, value, flags=0, noreply=NOREPLY_OFF):
        self._check(
            self.lib.mcrs_client_set(self.client, key, len(key), value, len(value), flags, 0, noreply),
            f"set {key!r}",
        )

    def set_many(self, items, flags=0):
        """items: (key, value) pairs; every one must be stored."""
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
# memcached servers


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


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


def start_servers(count, ports=None):
    """Starts `count` memcached servers (in parallel) on free loopback ports,
    or on `ports`; returns their `Memcached` handles (stop them when done)."""
    exe = shutil.which("memcached")
    if exe is None:
        pytest.fail("memcached not found in PATH (apt-get install memcached)", pytrace=False)
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
                port = fixed.pop(0) if fixed else free_port()
                while port in used:
                    port = free_port()
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


@contextlib.contextmanager
def running_servers(count):
    """`start_servers(count)` as a context: yields the handles, stops them."""
    servers = start_servers(count)
    try:
        yield servers
    finally:
        for s in servers:
            s.stop()
