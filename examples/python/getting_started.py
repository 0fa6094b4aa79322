# pymemcache's "Getting started" (basic usage), with mcrs: only the import
# differs. The server comes from MEMCACHED_SERVER (default: localhost, as in
# the original).
import os

from mcrs.client.base import Client

client = Client(os.environ.get("MEMCACHED_SERVER", "localhost"))
client.set('some_key', 'some_value')
result = client.get('some_key')
print(result)
