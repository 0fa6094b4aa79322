# pymemcache's "Using a memcached cluster" (HashClient), with mcrs: only the
# import differs. The servers come from MEMCACHED_SERVERS (comma-separated;
# default: the original's 127.0.0.1:11211 and 127.0.0.1:11212).
import os

from mcrs.client.hash import HashClient

servers = os.environ.get("MEMCACHED_SERVERS", "127.0.0.1:11211,127.0.0.1:11212").split(",")

client = HashClient(servers)
client.set('some_key', 'some value')
result = client.get('some_key')
print(result)
