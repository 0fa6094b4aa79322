"""Serializers with pymemcache's interface and flag values, so data written by
mcrs and by pymemcache read back the same through either.

A serde object has ``serialize(key, value) -> (bytes, flags)`` and
``deserialize(key, value, flags) -> object``; pymemcache's own serde objects
(``pymemcache.serde.pickle_serde``, ``CompressedSerde``, ...) work unchanged.
"""

import logging
import pickle
import zlib
from functools import partial

FLAG_BYTES = 0
FLAG_PICKLE = 1 << 0
FLAG_INTEGER = 1 << 1
FLAG_LONG = 1 << 2
FLAG_COMPRESSED = 1 << 3
FLAG_TEXT = 1 << 4

DEFAULT_PICKLE_VERSION = pickle.HIGHEST_PROTOCOL


def _serialize(key, value, pickle_version=None):
    kind = type(value)
    if kind is bytes:
        return value, FLAG_BYTES
    if kind is str:
        return value.encode("utf8"), FLAG_TEXT
    if kind is int:
        return b"%d" % value, FLAG_INTEGER
    return pickle.dumps(value, pickle_version), FLAG_PICKLE


def get_python_memcache_serializer(pickle_version: int = DEFAULT_PICKLE_VERSION):
    """A serializer using a specific pickle protocol."""
    return partial(_serialize, pickle_version=pickle_version)


python_memcache_serializer = get_python_memcache_serializer()


def python_memcache_deserializer(key, value, flags):
    if flags == 0:
        return value
    if flags & FLAG_TEXT:
        return value.decode("utf8")
    if flags & (FLAG_INTEGER | FLAG_LONG):
        return int(value)
    if flags & FLAG_PICKLE:
        try:
            return pickle.loads(value)
        except Exception:
            logging.info("Pickle error", exc_info=True)
            return None
    return value


class PickleSerde:
    """bytes as is, str as UTF-8, int as decimal, anything else pickled."""

    def __init__(self, pickle_version: int = DEFAULT_PICKLE_VERSION) -> None:
        self._serialize_func = get_python_memcache_serializer(pickle_version)

    def serialize(self, key, value):
        return self._serialize_func(key, value)

    def deserialize(self, key, value, flags):
        return python_memcache_deserializer(key, value, flags)


pickle_serde = PickleSerde()


class CompressedSerde:
    """Another serde's output, zlib-compressed above min_compress_len bytes
    (flag FLAG_COMPRESSED)."""

    def __init__(
        self,
        compress=zlib.compress,
        decompress=zlib.decompress,
        serde=pickle_serde,
        min_compress_len=400,
    ):
        self._serde = serde
        self._compress = compress
        self._decompress = decompress
        self._min_compress_len = min_compress_len

    def serialize(self, key, value):
        value, flags = self._serde.serialize(key, value)
        if len(value) > self._min_compress_len > 0:
            packed = self._compress(value)
            if len(packed) <= len(value):
                value, flags = packed, flags | FLAG_COMPRESSED
        return value, flags

    def deserialize(self, key, value, flags):
        if flags & FLAG_COMPRESSED:
            value = self._decompress(value)
        return self._serde.deserialize(key, value, flags)


compressed_serde = CompressedSerde()


class LegacyWrappingSerde:
    """The serializer= / deserializer= functions as a serde object; a missing
    one passes values through (flags 0)."""

    def __init__(self, serializer_func, deserializer_func) -> None:
        self.serialize = serializer_func or self._default_serialize
        self.deserialize = deserializer_func or self._default_deserialize

    def _default_serialize(self, key, value):
        return value, 0

    def _default_deserialize(self, key, value, flags):
        return value
