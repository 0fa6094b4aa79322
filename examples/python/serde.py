# pymemcache's "Serialization" examples (serde.pickle_serde and a JSON serde
# object), with mcrs: only the imports differ. The server comes from
# MEMCACHED_SERVER (default: localhost, as in the original).
import json
import os

from mcrs.client.base import Client
from mcrs import serde

SERVER = os.environ.get("MEMCACHED_SERVER", "localhost")


class Foo(object):
    pass


client = Client(SERVER, serde=serde.pickle_serde)
client.set('key', Foo())
result = client.get('key')
print(type(result).__name__)


class JsonSerde(object):
    def serialize(self, key, value):
        if isinstance(value, str):
            return value.encode('utf-8'), 1
        return json.dumps(value).encode('utf-8'), 2

    def deserialize(self, key, value, flags):
        if flags == 1:
            return value.decode('utf-8')
        if flags == 2:
            return json.loads(value.decode('utf-8'))
        raise Exception("Unknown serialization format")


client = Client(SERVER, serde=JsonSerde())
client.set('key', {'a': 'b', 'c': 'd'})
result = client.get('key')
print(result)
