'use strict';
// A cached function under a lease (stampede protection): many concurrent
// callers ask for the same expensive value, and only one of them computes
// it; after an invalidation the others are served the stale value while one
// recomputes.
//
// Servers come from MCRS_SERVERS (comma-separated), default localhost:11211.
// Run: node examples/lease.js   (in your own project: require('mcrs'))
//      examples/run_example.sh node:lease   (from the repository root, with a private memcached)

const { Client } = require('..');

const servers = (process.env.MCRS_SERVERS || 'localhost:11211').split(',').filter(Boolean);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let computations = 0;

// The expensive function: a slow query, say.
async function loadReport(version) {
  computations++;
  await sleep(50);
  return `report ${version}`;
}

// The cached function users write: the cached value when there is one
// (fresh, or stale while someone recomputes), else computed by the one
// caller that holds the lease and stored for 5 minutes.
function report(client, key, version) {
  return client.getOrCompute(key, () => loadReport(version), { leaseTtl: 10, expire: 300, wait: 2000 });
}

async function herd(client, n, key, version) {
  const seen = {};
  const values = await Promise.all(Array.from({ length: n }, () => report(client, key, version)));
  for (const v of values) seen[v] = (seen[v] || 0) + 1;
  return seen;
}

async function main() {
  const client = new Client(servers);
  try {
    const key = `example:lease:${process.pid}:${Date.now()}`;
    let seen = await herd(client, 20, key, 'v1');
    console.log(`20 callers on a cold key: computed ${computations} time(s); values ${JSON.stringify(seen)}`);

    // the source changed: mark the cached value stale instead of deleting it
    await client.invalidate(key, 30);
    computations = 0;
    seen = await herd(client, 20, key, 'v2');
    console.log(`20 callers after invalidate: computed ${computations} time(s); ${seen['report v1'] || 0} served the stale value meanwhile`);
    console.log(`example:lease = ${JSON.stringify(await client.get(key))}`);
  } finally {
    await client.close();
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
