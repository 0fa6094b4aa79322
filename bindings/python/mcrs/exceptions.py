"""pymemcache's exception classes, with the same names and hierarchy.

Network failures are raised as the built-in OSError family, as pymemcache's
sockets raise them: socket.timeout (TimeoutError) when a command or a connect
runs out of time, ConnectionRefusedError / ConnectionError when no connection
can be made, OSError for other socket errors.
"""


class MemcacheError(Exception):
    "Base exception class"


class MemcacheClientError(MemcacheError):
    """Raised when memcached fails to parse the arguments to a request, likely
    due to a malformed key and/or value, or a version mismatch with memcached."""


class MemcacheUnknownCommandError(MemcacheClientError):
    """Raised when memcached does not know a command (it answered ERROR)."""


class MemcacheIllegalInputError(MemcacheClientError):
    """Raised when a key or value is not legal for memcached (checked before
    anything is sent)."""


class MemcacheServerError(MemcacheError):
    """Raised when memcached reports a failure while processing a request
    (SERVER_ERROR), e.g. an object too large for the cache."""


class MemcacheUnknownError(MemcacheError):
    """Raised when the reply from memcached cannot be parsed."""


class MemcacheUnexpectedCloseError(MemcacheServerError):
    "Raised when the connection with memcached closes unexpectedly."
