'use strict';
// The promise API on the event loop: a stalled server does not block the JS
// thread, worker_threads with their own clients, getMany over three servers,
// the process lifetime.

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { Worker } = require('node:worker_threads');
const { Client, McrsError } = require('..');
const { startMemcached, uniqueKey: uk, sleep } = require('./support');

test('a timer keeps firing while the server is stopped, and the promise rejects at the timeout', async () => {
  const mc = await startMemcached();
  const c = new Client(mc.address, { timeout: 300, defaultNoreply: false });
  try {
    const k = uk();
    await c.set(k, 'v');
    mc.pause();
    await sleep(20);
    const ticks = [];
    const timer = setInterval(() => ticks.push(performance.now()), 5);
    const t0 = performance.now();
    let took = 0;
    try {
      await assert.rejects(c.get(k), (e) => {
        took = performance.now() - t0;
        assert.ok(e instanceof McrsError);
        assert.equal(e.code, 'MCRS_STATUS_TIMEOUT');
        assert.match(e.message, /^mcrs get: .*300 ms.*\(MCRS_STATUS_TIMEOUT\)$/);
        return true;
      });
    } finally {
      clearInterval(timer);
    }
    assert.ok(took >= 290 && took < 1500, `rejected after ${took.toFixed(0)} ms`);
    // the interval kept running the whole time (a blocking call would give no tick at all)
    assert.ok(ticks.length >= 20, `${ticks.length} ticks in ${took.toFixed(0)} ms`);
    assert.ok(ticks[0] - t0 < 100, `first tick after ${(ticks[0] - t0).toFixed(0)} ms`);
    let worst = 0;
    for (let i = 1; i < ticks.length; i++) worst = Math.max(worst, ticks[i] - ticks[i - 1]);
    assert.ok(worst < 100, `worst gap between ticks ${worst.toFixed(1)} ms`);
    mc.resume();
    assert.equal(await c.get(k), 'v', 'the client recovers once the server answers');
  } finally {
    mc.resume();
    c.close();
    await mc.stop();
  }
});

test('many requests in flight to a stopped server all reject, and other servers keep answering', async () => {
  const [stalled, live] = [await startMemcached(), await startMemcached()];
  const s = new Client(stalled.address, { timeout: 200, defaultNoreply: false });
  const l = new Client(live.address, { defaultNoreply: false });
  try {
    await s.version();
    stalled.pause();
    await sleep(20);
    const doomed = Array.from({ length: 100 }, () => s.get(uk()));
    const k = uk();
    assert.equal(await l.set(k, 'live'), true);
    assert.equal(await l.get(k), 'live', 'a live server answers while the other stalls');
    const outcomes = await Promise.allSettled(doomed);
    for (const o of outcomes) {
      assert.equal(o.status, 'rejected');
      assert.equal(o.reason.code, 'MCRS_STATUS_TIMEOUT');
    }
  } finally {
    stalled.resume();
    s.close();
    l.close();
    await stalled.stop();
    await live.stop();
  }
});

test('worker_threads each with their own client, beside the main thread', async () => {
  const mc = await startMemcached();
  const main = new Client(mc.address, { defaultNoreply: false });
  const workerCode = `
    const { parentPort, workerData } = require('node:worker_threads');
    const { Client } = require(${JSON.stringify(path.resolve(__dirname, '..'))});
    (async () => {
      const c = new Client(workerData.address, { defaultNoreply: false });
      const keys = Array.from({ length: 200 }, (_, i) => 'w' + workerData.id + '_' + process.pid + '_' + i);
      await Promise.all(keys.map((k, i) => c.set(k, i)));
      const one = await Promise.all(keys.map((k) => c.get(k)));
      const many = await c.getMany(keys);
      c.close();
      parentPort.postMessage({ keys, ok: one.every((v, i) => v === i) && keys.every((k, i) => many[k] === i) });
    })().catch((e) => parentPort.postMessage({ error: String(e && e.stack || e) }));
  `;
  try {
    const runWorker = (id) => new Promise((resolve, reject) => {
      const w = new Worker(workerCode, { eval: true, workerData: { address: mc.address, id } });
      w.once('message', resolve);
      w.once('error', reject);
    });
    const mainWork = (async () => {
      const keys = Array.from({ length: 200 }, () => uk('main'));
      await Promise.all(keys.map((k) => main.set(k, k)));
      return (await main.getMany(keys));
    })();
    const results = await Promise.all([runWorker(1), runWorker(2), runWorker(3)]);
    for (const r of results) {
      assert.equal(r.error, undefined, r.error);
      assert.equal(r.ok, true);
    }
    assert.equal(Object.keys(await mainWork).length, 200);
    // what the workers stored is visible from the main thread
    assert.equal(await main.get(results[1].keys[7]), 7);
  } finally {
    main.close();
    await mc.stop();
  }
});

test('a worker that exits with requests in flight tears down cleanly', async () => {
  const mc = await startMemcached();
  try {
    mc.pause();
    const code = `
      const { parentPort, workerData } = require('node:worker_threads');
      const { Client } = require(${JSON.stringify(path.resolve(__dirname, '..'))});
      const c = new Client(workerData.address, { timeout: 5000 });
      for (let i = 0; i < 50; i++) c.get('k' + i).catch(() => {});
      setTimeout(() => process.exit(0), 50);
    `;
    const exitCode = await new Promise((resolve, reject) => {
      const w = new Worker(code, { eval: true, workerData: { address: mc.address } });
      w.once('exit', resolve);
      w.once('error', reject);
    });
    assert.equal(exitCode, 0);
  } finally {
    mc.resume();
    await mc.stop();
  }
});

test('getMany over three servers: every key from its server, misses left out', async () => {
  const servers = [await startMemcached(), await startMemcached(), await startMemcached()];
  const cluster = new Client(servers.map((s) => s.address), { defaultNoreply: false });
  const direct = servers.map((s) => new Client(s.address, { defaultNoreply: false }));
  try {
    const keys = Array.from({ length: 300 }, () => uk('three'));
    const items = Object.fromEntries(keys.map((k, i) => [k, i % 2 ? `v${i}` : i]));
    assert.deepEqual(await cluster.setMany(items), []);
    const perServer = await Promise.all(direct.map((d) => d.getMany(keys)));
    const counts = perServer.map((r) => Object.keys(r).length);
    assert.equal(counts[0] + counts[1] + counts[2], keys.length, `counts ${counts}`);
    for (const n of counts) assert.ok(n > 50, `unbalanced: ${counts}`);
    const missing = [uk('miss'), uk('miss')];
    assert.deepEqual(await cluster.getMany([...missing, ...keys]), items);
    const withCas = await cluster.getsMany(keys.slice(0, 30));
    assert.equal(Object.keys(withCas).length, 30);
    for (const k of keys.slice(0, 30)) {
      assert.deepEqual(withCas[k][0], items[k]);
      assert.equal(typeof withCas[k][1], 'bigint');
    }
    // many getMany calls in flight at once
    const batches = await Promise.all(Array.from({ length: 20 }, (_, i) => cluster.getMany(keys.slice(i * 15, i * 15 + 15))));
    for (const [i, b] of batches.entries()) assert.equal(Object.keys(b).length, 15, `batch ${i}`);
  } finally {
    cluster.close();
    for (const d of direct) d.close();
    for (const s of servers) await s.stop();
  }
});

async function partialRound(opts) {
  const servers = [await startMemcached(), await startMemcached(), await startMemcached()];
  const cluster = new Client(servers.map((s) => s.address),
    { defaultNoreply: false, timeout: 300, connectTimeout: 300, ...opts });
  const direct = servers.map((s) => new Client(s.address, { defaultNoreply: false }));
  try {
    const keys = Array.from({ length: 60 }, () => uk('part'));
    await cluster.setMany(Object.fromEntries(keys.map((k) => [k, `v-${k}`])));
    const where = await Promise.all(direct.map((d) => d.getMany(keys)));
    const home = (k) => where.findIndex((r) => k in r);
    await servers[0].stop();
    servers[1].pause();
    const t0 = performance.now();
    await assert.rejects(cluster.getMany(keys), (e) => {
      const took = performance.now() - t0;
      assert.ok(took < 300 + 250, `took ${took.toFixed(0)} ms`);
      assert.equal(e.code, 'MCRS_STATUS_PARTIAL');
      const live = keys.filter((k) => home(k) === 2);
      assert.ok(live.length > 5 && live.length < keys.length);
      assert.deepEqual(Object.keys(e.hits).sort(), live.sort());
      for (const k of live) assert.equal(e.hits[k], `v-${k}`);
      const failed = new Map(e.failed.map((f) => [f.key, f]));
      for (const k of keys.filter((k) => home(k) !== 2)) {
        const f = failed.get(k);
        assert.ok(f, `${k} is listed as failed`);
        assert.equal(keys[f.index], k);
        const want = home(k) === 1 ? ['MCRS_STATUS_TIMEOUT', 'MCRS_STATUS_SERVER_DOWN']
          : ['MCRS_STATUS_CONNECT_FAILED', 'MCRS_STATUS_SERVER_DOWN'];
        assert.ok(want.includes(f.code), `${k} on server ${home(k)}: ${f.code}`);
        assert.ok(f.message.length > 0);
      }
      assert.equal(e.failed.length, keys.length - live.length);
      return true;
    });
  } finally {
    servers[1].resume();
    cluster.close();
    for (const d of direct) d.close();
    for (const s of servers) await s.stop();
  }
}

test('getMany with one server dead and one stalled: the hits of the live one, each failed key with its code', async () => {
  await partialRound({});
  // the same with a custom deserializer (values decoded in JS)
  await partialRound({ serializer: (k, v) => [Buffer.from(String(v)), 0], deserializer: (k, v) => v.toString() });
});

test('an idle client does not keep the process alive; one with requests in flight does', () => {
  const mcPath = path.resolve(__dirname, '..');
  const script = `
    const { Client } = require(${JSON.stringify(mcPath)});
    const c = new Client('127.0.0.1:1', { connectTimeout: 300 });
    // the only thing keeping the process alive is this request
    c.get('k').then(() => console.log('resolved'), (e) => console.log('rejected ' + e.code));
  `;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 10000 });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'rejected MCRS_STATUS_CONNECT_FAILED');
});

test('counters: this client\'s own numbers per server, without I/O', async () => {
  const mc = await startMemcached();
  const c = new Client(mc.address, { defaultNoreply: false, failoverTtl: 30, maxTrackedKeys: 1000 });
  try {
    const k = uk('ctr');
    await c.set(k, 'v');
    assert.equal(await c.get(k), 'v');
    assert.equal(await c.get(uk('missing')), undefined);
    const m = c.counters()[mc.address];
    assert.ok(m, JSON.stringify(c.counters()));
    assert.equal(m.hits, 1);
    assert.equal(m.misses, 1);
    assert.ok(m.commands >= 3, `commands ${m.commands}`);
    assert.equal(m.state, 0);
    assert.equal(m.timeouts, 0);
  } finally {
    c.close();
    await mc.stop();
  }
  assert.throws(() => c.counters(), (e) => e.code === 'MCRS_STATUS_CLIENT_CLOSED' || /closed/i.test(e.message));
});
