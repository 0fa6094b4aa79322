'use strict';
// Basic usage: the Node version of pymemcache's first example
//
//     from pymemcache.client.base import Client
//     client = Client('localhost')
//     client.set('some_key', 'some_value')
//     result = client.get('some_key')
//
// Servers come from MCRS_SERVERS (comma-separated), default localhost:11211.
// Run: node examples/basic.js   (in your own project: require('mcrs'))

const { Client } = require('..');

const servers = (process.env.MCRS_SERVERS || 'localhost:11211').split(',').filter(Boolean);

async function main() {
  const client = new Client(servers);
  try {
    await client.set('some_key', 'some_value');
    const result = await client.get('some_key');
    console.log(`some_key = ${JSON.stringify(result)}`);
  } finally {
    await client.close();
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
