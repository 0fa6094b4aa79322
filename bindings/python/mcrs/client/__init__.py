"""mcrs.client: pymemcache.client's names (Client, PooledClient, HashClient,
RetryingClient, the exceptions)."""

from mcrs.client.base import Client, PooledClient  # noqa: F401
from mcrs.client.hash import HashClient  # noqa: F401
from mcrs.client.retrying import RetryingClient  # noqa: F401
from mcrs.exceptions import (  # noqa: F401
    MemcacheClientError,
    MemcacheError,
    MemcacheIllegalInputError,
    MemcacheServerError,
    MemcacheUnexpectedCloseError,
    MemcacheUnknownCommandError,
    MemcacheUnknownError,
)
