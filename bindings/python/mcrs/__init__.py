"""mcrs: a drop-in for pymemcache (Client, PooledClient, HashClient, serde,
exceptions) over libmcrs, the mcrs memcached client library."""

__version__ = "0.1.0"

from mcrs.client.base import Client, KeepaliveOpts, PooledClient  # noqa: F401,E402
from mcrs.client.hash import HashClient  # noqa: F401,E402
from mcrs.exceptions import (  # noqa: F401,E402
    MemcacheClientError,
    MemcacheError,
    MemcacheIllegalInputError,
    MemcacheServerError,
    MemcacheUnexpectedCloseError,
    MemcacheUnknownCommandError,
    MemcacheUnknownError,
)
