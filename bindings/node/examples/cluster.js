'use strict';
// A cluster: the Node version of pymemcache's HashClient example
//
//     from pymemcache.client.hash import HashClient
//     client = HashClient(['127.0.0.1:11211', '127.0.0.1:11212'])
//     client.set('some_key', 'some_value')
//     result = client.get('some_key')
//
// With several servers, libmcrs spreads the keys over them (rendezvous hashing,
// as pymemcache's HashClient; `distribution: 'ketama'` for libmemcached's ring).
// Servers come from MCRS_SERVERS (comma-separated), default
// localhost:11211,localhost:11212 (the seed's two servers).
// Run: node examples/cluster.js   (in your own project: require('mcrs'))

const { HashClient } = require('..');

const servers = (process.env.MCRS_SERVERS || 'localhost:11211,localhost:11212').split(',').filter(Boolean);

async function main() {
  const client = new HashClient(servers);
  try {
    await client.set('some_key', 'some_value');
    const result = await client.get('some_key');
    console.log(`some_key = ${JSON.stringify(result)} (from a cluster of ${servers.length})`);

    // multi-key commands are split by server and run as one pipelined request each
    await client.setMany({ a: 1, b: 'two', c: Buffer.from('three') });
    console.log(await client.getMany(['a', 'b', 'c', 'missing']));
  } finally {
    await client.close();
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
