'use strict';
// Leases on the event loop (leaseGet, leaseSet, invalidate, getOrCompute)
// against a real memcached: a herd on a cold key computes once, invalidate
// serves the stale value while one caller recomputes, a lost race is refused.

const test = require('node:test');
const assert = require('node:assert/strict');
const { Client } = require('..');
const { startMemcached, uniqueKey: uk } = require('./support');

let mc;
let c;

test.before(async () => {
  mc = await startMemcached();
  c = new Client(mc.address, { defaultNoreply: false, timeout: 2000 });
});

test.after(async () => {
  c.close();
  await mc.stop();
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

test('16 concurrent leaseGet on a cold key: one won, the rest wait', async () => {
  const k = uk();
  const all = await Promise.all(Array.from({ length: 16 }, () => c.leaseGet(k, { leaseTtl: 30 })));
  const won = all.filter((l) => l.state === 'won');
  assert.equal(won.length, 1, JSON.stringify(all, (_, v) => (typeof v === 'bigint' ? `${v}` : v)));
  assert.equal(typeof won[0].token, 'bigint');
  assert.ok(won[0].token > 0n);
  assert.equal(won[0].value, undefined);
  const wait = all.filter((l) => l.state === 'wait');
  assert.equal(wait.length, 15);
  assert.ok(wait.every((l) => l.token === 0n && l.value === undefined));
  assert.equal(await c.leaseSet(k, 'computed', won[0].token, { expire: 60 }), true);
  const hit = await c.leaseGet(k);
  assert.deepEqual([hit.state, hit.value, hit.token], ['hit', 'computed', 0n]);
  assert.ok(hit.ttl > 55 && hit.ttl <= 60, `ttl ${hit.ttl}`);
  assert.equal(await c.get(k), 'computed');
});

async function herd(n, key) {
  let calls = 0;
  const fn = async () => {
    calls++;
    await sleep(50);
    return 'answer-42';
  };
  const values = await Promise.all(Array.from({ length: n }, () => c.getOrCompute(key, fn, { leaseTtl: 10, expire: 60 })));
  return { calls, values };
}

test('16 concurrent getOrCompute on a cold key: fn runs once', async () => {
  const { calls, values } = await herd(16, uk());
  assert.equal(calls, 1);
  assert.ok(values.every((v) => v === 'answer-42'));
});

test('64 concurrent getOrCompute: one backend call (plain get+set makes many)', async () => {
  const { calls } = await herd(64, uk());
  assert.equal(calls, 1);
  const k = uk();
  let plain = 0;
  await Promise.all(Array.from({ length: 64 }, async () => {
    const v = await c.get(k);
    if (v !== undefined) return v;
    plain++;
    await sleep(50);
    await c.set(k, 'x', { expire: 60 });
    return 'x';
  }));
  console.log(`64 Node callers on one cold key: ${calls} backend call(s) under a lease, ${plain} with get+set`);
  assert.ok(plain > 1);
});

test('after invalidate: one won with the stale value, the rest stale with it', async () => {
  const k = uk();
  await c.set(k, 'old', { expire: 300 });
  assert.equal(await c.invalidate(k, 30), true);
  assert.equal(await c.invalidate(uk(), 30), false);
  const all = await Promise.all(Array.from({ length: 16 }, () => c.leaseGet(k)));
  const won = all.filter((l) => l.state === 'won');
  assert.equal(won.length, 1);
  assert.equal(all.filter((l) => l.state === 'stale').length, 15);
  assert.ok(all.every((l) => l.value === 'old' && l.ttl <= 30));
  // getOrCompute serves the stale value meanwhile, without computing
  let ran = 0;
  assert.equal(await c.getOrCompute(k, () => { ran++; return 'new'; }), 'old');
  assert.equal(ran, 0);
  assert.equal(await c.leaseSet(k, 'new', won[0].token, 300), true);
  assert.equal(await c.getOrCompute(k, () => { ran++; return 'x'; }), 'new');
  assert.equal(ran, 0);
});

test('a recompute that lost a race is refused (never fresh)', async () => {
  const k = uk();
  await c.set(k, 'v1', { expire: 300 });
  await c.invalidate(k, 60);
  const a = await c.leaseGet(k);
  assert.equal(a.state, 'won');
  await c.invalidate(k, 60);
  const b = await c.leaseGet(k);
  assert.equal(b.state, 'won');
  assert.equal(await c.leaseSet(k, 'from-a', a.token), false);
  const now = await c.leaseGet(k);
  assert.deepEqual([now.state, now.value], ['stale', 'v1']);
  assert.equal(await c.leaseSet(k, 'from-b', b.token), true);
  assert.equal(await c.get(k), 'from-b');
});

test('a lease nobody fulfils expires after leaseTtl', async () => {
  const k = uk();
  const first = await c.leaseGet(k, { leaseTtl: 2 });
  assert.equal(first.state, 'won');
  assert.equal((await c.leaseGet(k, { leaseTtl: 2 })).state, 'wait');
  await sleep(3200);
  const next = await c.leaseGet(k, { leaseTtl: 2 });
  assert.equal(next.state, 'won');
  assert.notEqual(next.token, first.token);
  assert.equal(await c.leaseSet(k, 'late', first.token), false);
});

test('lease arguments are checked before anything is sent', async () => {
  await assert.rejects(c.leaseGet('k', { leaseTtl: 0 }), RangeError);
  await assert.rejects(c.leaseGet('k', { lease: 5 }), TypeError);
  await assert.rejects(c.leaseGet('a b'), { code: 'MCRS_STATUS_INVALID_KEY' });
  await assert.rejects(c.leaseSet('k', 'v'), TypeError);
  await assert.rejects(c.leaseSet('k', 'v', -1n), RangeError);
  await assert.rejects(c.invalidate('k', -1), RangeError);
  await assert.rejects(c.getOrCompute('k', 'not a function'), TypeError);
});

test('getOrCompute with a custom serde round-trips through the lease', async () => {
  const j = new Client(mc.address, {
    serde: {
      serialize: (_k, v) => [Buffer.from(JSON.stringify(v)), 7],
      deserialize: (_k, b, f) => (f === 7 ? JSON.parse(b.toString()) : b),
    },
  });
  try {
    const k = uk();
    assert.deepEqual(await j.getOrCompute(k, () => ({ a: [1, 2] })), { a: [1, 2] });
    assert.deepEqual(await j.getOrCompute(k, () => { throw new Error('not again'); }), { a: [1, 2] });
    const l = await j.leaseGet(k);
    assert.deepEqual([l.state, l.value], ['hit', { a: [1, 2] }]);
  } finally {
    j.close();
  }
});
