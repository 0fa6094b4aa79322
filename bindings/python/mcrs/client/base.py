"""mcrs's Client and PooledClient: pymemcache's constructor arguments, methods
and results, over libmcrs (the commands are methods of the C type
mcrs._mcrs.Core; this module holds the configuration and the few commands
that need Python)."""

import socket

from mcrs import _mcrs
from mcrs.exceptions import MemcacheIllegalInputError
from mcrs.serde import LegacyWrappingSerde

__all__ = ["Client", "PooledClient", "KeepaliveOpts", "normalize_server_spec", "check_key_helper"]


def _parse_bool_int(value):
    return int(value) != 0


def _parse_bool_string_is_yes(value):
    return value == b"yes"


def _parse_float(value):
    return float(value.replace(b":", b"."))


def _parse_hex(value):
    return int(value, 8)


# stats values that are not plain integers (the rest go through int(), and
# stay bytes when that fails), as pymemcache converts them
STAT_TYPES = {
    b"version": bytes,
    b"rusage_user": _parse_float,
    b"rusage_system": _parse_float,
    b"hash_is_expanding": _parse_bool_int,
    b"slab_reassign_running": _parse_bool_int,
    b"inter": bytes,
    b"growth_factor": float,
    b"stat_key_prefix": bytes,
    b"umask": _parse_hex,
    b"detail_enabled": _parse_bool_int,
    b"cas_enabled": _parse_bool_int,
    b"auth_enabled_sasl": _parse_bool_string_is_yes,
    b"maxconns_fast": _parse_bool_int,
    b"slab_reassign": _parse_bool_int,
    b"slab_automove": _parse_bool_int,
}


def check_key_helper(key, allow_unicode_keys, key_prefix=b""):
    """The key as memcached gets it (bytes, prefixed), or MemcacheIllegalInputError.
    (The commands check keys in libmcrs; this is for callers of pymemcache's helper.)"""
    if isinstance(key, str):
        try:
            key = key.encode("utf8" if allow_unicode_keys else "ascii")
        except UnicodeEncodeError:
            raise MemcacheIllegalInputError("Non-ASCII key: %r" % key)
    key = key_prefix + key
    parts = key.split()
    if len(key) > 250:
        raise MemcacheIllegalInputError("Key is too long: %r" % key)
    if len(parts) > 1 or (parts and parts[0] != key):
        raise MemcacheIllegalInputError("Key contains whitespace: %r" % key)
    if b"\00" in key:
        raise MemcacheIllegalInputError("Key contains null: %r" % key)
    return key


def normalize_server_spec(server):
    """(host, port) for TCP, or a unix socket path, as pymemcache reads them."""
    if isinstance(server, tuple):
        return server
    if not isinstance(server, str):
        raise ValueError(f"Unsupported server specification: {server!r}")
    if server.startswith("unix:"):
        return server[5:]
    if server.startswith("/"):
        return server
    if ":" not in server or server.endswith("]"):
        host, port = server, 11211
    else:
        host, port_s = server.rsplit(":", 1)
        port = int(port_s)
    if host.startswith("["):
        host = host.strip("[]")
    return (host, port)


def _address(server):
    """The libmcrs address string of a normalized server spec."""
    if isinstance(server, tuple):
        host, port = server
        if ":" in host:
            return f"[{host}]:{int(port)}"
        return f"{host}:{int(port)}"
    return "unix:" + server


class KeepaliveOpts:
    """Socket keepalive (pymemcache's structure). libmcrs turns SO_KEEPALIVE on
    and keeps the system's idle/interval/count settings."""

    __slots__ = ("idle", "intvl", "cnt")

    def __init__(self, idle: int = 1, intvl: int = 1, cnt: int = 5) -> None:
        if idle < 1:
            raise ValueError("The idle parameter must be greater or equal to 1.")
        if intvl < 1:
            raise ValueError("The intvl parameter must be greater or equal to 1.")
        if cnt < 1:
            raise ValueError("The cnt parameter must be greater or equal to 1.")
        self.idle, self.intvl, self.cnt = idle, intvl, cnt


def _ms(seconds, name):
    """Seconds (pymemcache) as libmcrs milliseconds; None (no timeout) is 0."""
    if seconds is None:
        return 0
    if seconds < 0:
        raise ValueError(f"{name} must be >= 0, got {seconds!r}")
    return min(max(1, round(seconds * 1000)), 0xFFFFFFFF)


def _serde_functions(serde, serializer, deserializer):
    """(serde object, serialize callable or None, deserialize callable or None);
    None means the pass-through default, done in C."""
    if serde is not None:
        return serde, serde.serialize, serde.deserialize
    return LegacyWrappingSerde(serializer, deserializer), serializer, deserializer


def _refuse_tls(tls_context):
    if tls_context is not None:
        raise NotImplementedError(
            "mcrs: tls_context is not supported yet; connect without TLS "
            "(or use pymemcache for TLS connections until mcrs's TLS support lands)"
        )


def _keepalive(socket_keepalive):
    if socket_keepalive is None:
        return False
    if not all(hasattr(socket_keepalive, a) for a in ("idle", "intvl", "cnt")):
        raise ValueError(
            "Unsupported keepalive options: pass a KeepaliveOpts object in socket_keepalive"
        )
    return True


def _key_prefix(key_prefix):
    if isinstance(key_prefix, str):
        key_prefix = key_prefix.encode("ascii")
    if not isinstance(key_prefix, bytes):
        raise TypeError("key_prefix should be bytes.")
    return key_prefix


class Client(_mcrs.Core):
    """A client for one memcached server, with pymemcache's arguments, defaults
    and results. Unlike pymemcache's Client it is thread-safe (libmcrs pools
    connections) and it releases the GIL while it waits for the server.

    ``socket_module`` is accepted and not used (libmcrs does its own I/O);
    ``tls_context`` is refused for now. ``no_delay`` is accepted and TCP_NODELAY
    is always set: with Nagle's algorithm (pymemcache's default no_delay=False)
    a command sent after a noreply write waits for the server's delayed ACK,
    about 40 ms (45 ms per set+get measured with pymemcache here).
    """

    def __init__(
        self,
        server,
        serde=None,
        serializer=None,
        deserializer=None,
        connect_timeout=None,
        timeout=None,
        no_delay=False,
        ignore_exc=False,
        socket_module=socket,
        socket_keepalive=None,
        key_prefix=b"",
        default_noreply=True,
        allow_unicode_keys=False,
        encoding="ascii",
        tls_context=None,
        *,
        _pool=(0, 0),
        _pooled=False,
    ):
        _refuse_tls(tls_context)
        self.server = normalize_server_spec(server)
        self.serde, ser, des = _serde_functions(serde, serializer, deserializer)
        self.connect_timeout = connect_timeout
        self.timeout = timeout
        self.no_delay = no_delay
        self.socket_module = socket_module
        self.socket_keepalive = socket_keepalive
        self.key_prefix = _key_prefix(key_prefix)
        self.allow_unicode_keys = allow_unicode_keys
        self.encoding = encoding
        self.tls_context = tls_context
        self._configure(
            [_address(self.server)],
            connect_timeout_ms=_ms(connect_timeout, "connect_timeout"),
            timeout_ms=_ms(timeout, "timeout"),
            no_delay=True,  # see the class docstring
            keepalive=_keepalive(socket_keepalive),
            key_prefix=self.key_prefix,
            allow_unicode_keys=bool(allow_unicode_keys),
            default_noreply=bool(default_noreply),
            ignore_exc=bool(ignore_exc),
            max_pool_size=_pool[0],
            pool_idle_timeout_ms=_pool[1],
            pooled=_pooled,
            serializer=ser,
            deserializer=des,
            encoding=encoding,
        )

    def check_key(self, key, key_prefix=None):
        """Checks key and adds key_prefix (pymemcache's helper)."""
        return check_key_helper(
            key, self.allow_unicode_keys, self.key_prefix if key_prefix is None else key_prefix
        )

    def close(self):
        """Closes the idle connections; the next command reconnects."""
        self.quit()

    disconnect_all = close

    def stats(self, *args):
        """The "stats" command: a dict of stat name (bytes) to value, converted
        to int/float/bool where pymemcache converts it."""
        try:
            entries = self._stats(" ".join(a.decode() if isinstance(a, bytes) else str(a) for a in args))
        except Exception:
            if self.ignore_exc:
                return {}
            raise
        result = {}
        for _server, name, value in entries:
            converter = STAT_TYPES.get(name, int)
            try:
                result[name] = converter(value)
            except Exception:
                result[name] = value
        return result

    def raw_command(self, command, end_tokens="\r\n"):
        raise NotImplementedError("mcrs does not send raw commands")

    def shutdown(self, graceful=False):
        raise NotImplementedError("mcrs does not send the shutdown command")

    def __setitem__(self, key, value):
        self.set(key, value, noreply=True)

    def __getitem__(self, key):
        value = self.get(key)
        if value is None:
            raise KeyError
        return value

    def __delitem__(self, key):
        self.delete(key, noreply=True)


class PooledClient(Client):
    """pymemcache's PooledClient: the same commands, thread-safe. libmcrs keeps
    the pool (at most ``max_pool_size`` connections, 32 when None; idle ones
    closed after ``pool_idle_timeout`` seconds, never when 0); ``lock_generator``
    is accepted and not needed."""

    def __init__(
        self,
        server,
        serde=None,
        serializer=None,
        deserializer=None,
        connect_timeout=None,
        timeout=None,
        no_delay=False,
        ignore_exc=False,
        socket_module=socket,
        socket_keepalive=None,
        key_prefix=b"",
        max_pool_size=None,
        pool_idle_timeout=0,
        lock_generator=None,
        default_noreply=True,
        allow_unicode_keys=False,
        encoding="ascii",
        tls_context=None,
    ):
        self.max_pool_size = max_pool_size
        self.pool_idle_timeout = pool_idle_timeout
        self.lock_generator = lock_generator
        pool = (min(max_pool_size, 0xFFFFFFFF) if max_pool_size else 0, _ms(pool_idle_timeout, "pool_idle_timeout"))
        super().__init__(
            server,
            serde=serde,
            serializer=serializer,
            deserializer=deserializer,
            connect_timeout=connect_timeout,
            timeout=timeout,
            no_delay=no_delay,
            ignore_exc=ignore_exc,
            socket_module=socket_module,
            socket_keepalive=socket_keepalive,
            key_prefix=key_prefix,
            default_noreply=default_noreply,
            allow_unicode_keys=allow_unicode_keys,
            encoding=encoding,
            tls_context=tls_context,
            _pool=pool,
            _pooled=True,
        )
