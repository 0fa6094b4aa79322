"""RetryingClient: pymemcache's retrying wrapper around any mcrs client —
each command is tried up to `attempts` times, `retry_delay` seconds apart,
for the exceptions in `retry_for` (all when None) and never for those in
`do_not_retry_for`."""

import time

__all__ = ["RetryingClient"]


def _exception_classes(name, value):
    if value is None:
        return ()
    if not isinstance(value, (tuple, set, list)):
        raise ValueError(f"{name} must be either a tuple, a set or a list.")
    classes = tuple(value)
    if not all(isinstance(c, type) and issubclass(c, Exception) for c in classes):
        raise ValueError(
            f"{name} is only allowed to contain elements that are subclasses of Exception."
        )
    return classes


class RetryingClient:
    """Wraps a Client, PooledClient or HashClient; every attribute of the inner
    client is reached through it, its commands retried."""

    def __init__(self, client, attempts=2, retry_delay=0, retry_for=None, do_not_retry_for=None):
        if attempts < 1:
            raise ValueError(
                "`attempts` argument must be at least 1. Otherwise no attempts are made."
            )
        self._client = client
        self._attempts = attempts
        self._retry_delay = retry_delay
        self._retry_for = _exception_classes("retry_for", retry_for)
        self._do_not_retry_for = _exception_classes("do_not_retry_for", do_not_retry_for)
        both = [c for c in self._retry_for if c in self._do_not_retry_for]
        if both:
            raise ValueError(
                f'Exception class "{both[0]!r}" was present in both `retry_for` and '
                "`do_not_retry_for`. Any exception class is only allowed in a single argument."
            )
        self._client_dir = dir(client)

    def _call(self, name, func, *args, **kwargs):
        attempt = 0
        while True:
            attempt += 1
            try:
                return func(*args, **kwargs)
            except Exception as exc:
                give_up = (
                    attempt >= self._attempts
                    or (self._retry_for and not isinstance(exc, self._retry_for))
                    or (self._do_not_retry_for and isinstance(exc, self._do_not_retry_for))
                    or name not in self._client_dir
                )
                if give_up:
                    raise
            time.sleep(self._retry_delay)

    def __getattr__(self, name):
        func = getattr(self._client, name)
        return lambda *args, **kwargs: self._call(name, func, *args, **kwargs)

    def __dir__(self):
        return self._client_dir

    def __setitem__(self, key, value):
        self.set(key, value, noreply=True)

    def __getitem__(self, key):
        value = self.get(key)
        if value is None:
            raise KeyError
        return value

    def __delitem__(self, key):
        self.delete(key, noreply=True)
