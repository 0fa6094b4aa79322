'use strict';
// Several servers: keys are distributed by libmcrs (pymemcache HashClient's role).

const test = require('node:test');
const assert = require('node:assert/strict');
const { Client, HashClient } = require('..');
const { startMemcached, uniqueKey: uk } = require('./support');

let servers;
let direct; // one single-server client per server

test.before(async () => {
  servers = [await startMemcached(), await startMemcached()];
  direct = servers.map((s) => new Client(s.address, { defaultNoreply: false }));
});

test.after(async () => {
  for (const d of direct) d.close();
  for (const s of servers) await s.stop();
});

for (const distribution of ['rendezvous', 'ketama', 'xxh3']) {
  test(`${distribution}: every key lives on exactly one server, both servers get keys`, async () => {
    const c = new Client(servers.map((s) => s.address), { distribution, defaultNoreply: false });
    try {
      const keys = Array.from({ length: 200 }, () => uk(distribution));
      const items = Object.fromEntries(keys.map((k, i) => [k, `v${i}`]));
      assert.deepEqual(await c.setMany(items), []);
      const perServer = await Promise.all(direct.map((d) => d.getMany(keys)));
      const counts = perServer.map((r) => Object.keys(r).length);
      assert.equal(counts[0] + counts[1], keys.length, `counts ${counts}`);
      assert.ok(counts[0] > 20 && counts[1] > 20, `unbalanced: ${counts}`);
      for (const k of keys) assert.ok((k in perServer[0]) !== (k in perServer[1]), k);

      // single-key commands agree with the multi-key placement
      for (const k of keys.slice(0, 20)) {
        assert.equal(await c.get(k), items[k]);
        assert.equal(await c.delete(k), true);
        assert.equal(await c.add(k, 'again'), true);
        const owner = k in perServer[0] ? direct[0] : direct[1];
        assert.equal(await owner.get(k), 'again');
      }
      assert.deepEqual(await c.getMany(keys.slice(20)), Object.fromEntries(keys.slice(20).map((k) => [k, items[k]])));
      const withCas = await c.getsMany(keys.slice(0, 5));
      assert.equal(Object.keys(withCas).length, 5);
      assert.equal(await c.deleteMany(keys), true);
      assert.deepEqual(await c.getMany(keys), {});
    } finally {
      c.close();
    }
  });
}

test('the same key set gives the same placement to every client (deterministic)', async () => {
  const a = new HashClient(servers.map((s) => s.address), { defaultNoreply: false });
  const b = new Client([...servers].reverse().map((s) => s.address), { defaultNoreply: false });
  try {
    for (let i = 0; i < 50; i++) {
      const k = uk('det');
      await a.set(k, i);
      assert.equal(await b.get(k), i, 'placement depends on the addresses, not their order');
    }
  } finally {
    a.close();
    b.close();
  }
});

test('stats, version and flushAll cover every server', async () => {
  const c = new Client(servers.map((s) => s.address), { defaultNoreply: false });
  try {
    const st = await c.stats();
    assert.deepEqual(Object.keys(st).sort(), servers.map((s) => s.address).sort());
    for (const s of servers) assert.equal(st[s.address].pid, s.proc.pid);
    assert.match(await c.version(), /^\d+\.\d+/);
    const keys = Array.from({ length: 20 }, () => uk('flush'));
    await c.setMany(Object.fromEntries(keys.map((k) => [k, 1])));
    assert.equal(await c.flushAll(), true);
    for (const d of direct) assert.deepEqual(await d.getMany(keys), {});
  } finally {
    c.close();
  }
});

test('incr, decr, touch and cas are routed to the key owner', async () => {
  const c = new Client(servers.map((s) => s.address), { defaultNoreply: false });
  try {
    for (let i = 0; i < 10; i++) {
      const k = uk('arith');
      await c.set(k, 10);
      assert.equal(await c.incr(k, 5), 15);
      assert.equal(await c.decr(k, 1), 14);
      assert.equal(await c.touch(k, 100), true);
      const [v, cas] = await c.gets(k);
      assert.equal(v, 14);
      assert.equal(await c.cas(k, 'done', cas), true);
      assert.equal(await c.get(k), 'done');
    }
  } finally {
    c.close();
  }
});
