"""mcrs's HashClient: pymemcache's HashClient arguments and results over one
libmcrs cluster client (rendezvous hashing with pymemcache's murmur3 node
scores, so keys land on the same servers; retries and dead servers handled by
libmcrs with the same retry_attempts / retry_timeout / dead_timeout)."""

import socket

from mcrs import _mcrs
from mcrs.client.base import (
    _address,
    _keepalive,
    _key_prefix,
    _ms,
    _refuse_tls,
    _serde_functions,
    normalize_server_spec,
)
from mcrs.client.rendezvous import RendezvousHash

__all__ = ["HashClient"]


def _is_rendezvous(hasher):
    if hasher is None or hasher is RendezvousHash:
        return True
    # pymemcache's own class (placement is the same, computed by libmcrs)
    return getattr(hasher, "__name__", "") == "RendezvousHash" and "pymemcache" in getattr(
        hasher, "__module__", ""
    )


class HashClient(_mcrs.Core):
    """A client for a cluster of memcached servers (pymemcache's HashClient).

    Failures follow pymemcache: without ``ignore_exc`` the first failure of a
    server raises; until ``retry_timeout`` has passed its keys give the
    command's default (None for get, False for set, ...); after
    ``retry_attempts`` failures it leaves the ring and its keys go to the
    others; after ``dead_timeout`` it is probed and rejoins. With
    ``ignore_exc`` every failure gives the default. ``use_pooling``,
    ``lock_generator`` and ``socket_module`` are accepted; libmcrs always
    pools (``max_pool_size`` connections per server, 32 when None).
    """

    def __init__(
        self,
        servers,
        hasher=RendezvousHash,
        serde=None,
        serializer=None,
        deserializer=None,
        connect_timeout=None,
        timeout=None,
        no_delay=False,
        socket_module=socket,
        socket_keepalive=None,
        key_prefix=b"",
        max_pool_size=None,
        pool_idle_timeout=0,
        lock_generator=None,
        retry_attempts=2,
        retry_timeout=1,
        dead_timeout=60,
        use_pooling=False,
        ignore_exc=False,
        allow_unicode_keys=False,
        default_noreply=True,
        encoding="ascii",
        tls_context=None,
    ):
        _refuse_tls(tls_context)
        if not _is_rendezvous(hasher):
            raise NotImplementedError(
                "mcrs.HashClient places keys with rendezvous hashing only "
                "(pymemcache's default RendezvousHash); a custom hasher is not supported"
            )
        self.hasher = hasher
        self.retry_attempts = retry_attempts
        self.retry_timeout = retry_timeout
        self.dead_timeout = dead_timeout
        self.use_pooling = use_pooling
        self.key_prefix = _key_prefix(key_prefix)
        self.allow_unicode_keys = allow_unicode_keys
        self.encoding = encoding
        self.tls_context = tls_context
        self.serde, ser, des = _serde_functions(serde, serializer, deserializer)
        self._settings = dict(
            connect_timeout_ms=_ms(connect_timeout, "connect_timeout"),
            timeout_ms=_ms(timeout, "timeout"),
            no_delay=True,  # always, as mcrs.Client (see its docstring)
            keepalive=_keepalive(socket_keepalive),
            key_prefix=self.key_prefix,
            allow_unicode_keys=bool(allow_unicode_keys),
            default_noreply=bool(default_noreply),
            hash_mode=True,
            retry_attempts=max(0, int(retry_attempts)),
            retry_timeout_ms=min(round(retry_timeout * 1000), 0xFFFFFFFF),
            dead_timeout_ms=min(round(dead_timeout * 1000), 0xFFFFFFFF),
            max_pool_size=min(max_pool_size, 0xFFFFFFFF) if max_pool_size else 0,
            pool_idle_timeout_ms=_ms(pool_idle_timeout, "pool_idle_timeout"),
            serializer=ser,
            deserializer=des,
            encoding=encoding,
        )
        self._ignore_exc_init = bool(ignore_exc)
        self.servers = [normalize_server_spec(s) for s in servers]
        self._rebuild()

    def _rebuild(self):
        ignore = self.ignore_exc if hasattr(self, "_built") else self._ignore_exc_init
        self._configure(
            [_address(s) for s in self.servers], ignore_exc=ignore, **self._settings
        )
        self._built = True

    @staticmethod
    def _spec(server, port):
        if port is not None:
            if not isinstance(server, str):
                raise TypeError("Server must be a string when passing port.")
            return (server, port)
        return normalize_server_spec(server)

    def add_server(self, server, port=None):
        """Adds a server to the ring (a new libmcrs client; the old one's
        connections close when the HashClient is freed)."""
        spec = self._spec(server, port)
        if spec not in self.servers:
            self.servers.append(spec)
            self._rebuild()

    def remove_server(self, server, port=None):
        """Takes a server out of the ring."""
        spec = self._spec(server, port)
        if spec in self.servers:
            self.servers.remove(spec)
            self._rebuild()

    def get_many(self, keys, gets=False, *args, **kwargs):
        if gets:
            return _mcrs.Core.gets_many(self, keys)
        return _mcrs.Core.get_many(self, keys)

    get_multi = get_many

    def close(self):
        self.quit()

    disconnect_all = close

    def flush_all(self, *args, **kwargs):
        _mcrs.Core.flush_all(self, *args, **kwargs)

    def __setitem__(self, key, value):
        self.set(key, value, noreply=True)

    def __getitem__(self, key):
        value = self.get(key)
        if value is None:
            raise KeyError
        return value

    def __delitem__(self, key):
        self.delete(key, noreply=True)
