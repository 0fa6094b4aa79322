'use strict';
// The examples run as scripts against real servers given through MCRS_SERVERS.

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { startMemcached } = require('./support');

let servers;

test.before(async () => {
  servers = [await startMemcached(), await startMemcached()];
});

test.after(async () => {
  for (const s of servers) await s.stop();
});

function run(name, serverList) {
  const r = spawnSync(process.execPath, [path.join(__dirname, '..', 'examples', name)], {
    encoding: 'utf8',
    env: { ...process.env, MCRS_SERVERS: serverList.map((s) => s.address).join(',') },
    timeout: 30000,
  });
  assert.equal(r.status, 0, `${name} failed: ${r.stderr}`);
  return r.stdout;
}

test('examples/basic.js', () => {
  assert.equal(run('basic.js', servers.slice(0, 1)), 'some_key = "some_value"\n');
});

test('examples/cluster.js', () => {
  const out = run('cluster.js', servers);
  assert.match(out, /^some_key = "some_value" \(from a cluster of 2\)\n/);
  assert.match(out, /a: 1/);
  assert.match(out, /b: 'two'/);
  assert.doesNotMatch(out, /missing/);
});

test('examples/lease.js: a cached function under a lease', () => {
  assert.equal(run('lease.js', servers.slice(0, 1)),
    '20 callers on a cold key: computed 1 time(s); values {"report v1":20}\n' +
    '20 callers after invalidate: computed 1 time(s); 19 served the stale value meanwhile\n' +
    'example:lease = "report v2"\n');
});

test('examples/serde.js', () => {
  assert.equal(run('serde.js', servers.slice(0, 1)), "key = { a: 'b', c: 'd' }\n");
});
