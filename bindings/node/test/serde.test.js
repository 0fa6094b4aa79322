'use strict';
// Serialization: the default serde (pymemcache flags) and custom hooks.

const test = require('node:test');
const assert = require('node:assert/strict');
const { Client, FLAGS, defaultSerializer, defaultDeserializer } = require('..');
const { startMemcached, uniqueKey: uk } = require('./support');

let mc;
let c;
let raw; // reads bytes and flags as stored

test.before(async () => {
  mc = await startMemcached();
  c = new Client(mc.address, { defaultNoreply: false });
  raw = new Client(mc.address, {
    defaultNoreply: false,
    serializer: (key, value) => value,
    deserializer: (key, value, flags) => ({ value, flags }),
  });
});

test.after(async () => {
  c.close();
  raw.close();
  await mc.stop();
});

test('default serializer: pymemcache flags', async () => {
  assert.deepEqual(defaultSerializer('k', Buffer.from('ab')), [Buffer.from('ab'), 0]);
  assert.deepEqual(defaultSerializer('k', 'é'), [Buffer.from('é', 'utf8'), 16]);
  assert.deepEqual(defaultSerializer('k', 42), [Buffer.from('42'), 2]);
  assert.deepEqual(defaultSerializer('k', -7), [Buffer.from('-7'), 2]);
  assert.deepEqual(defaultSerializer('k', 1e21), [Buffer.from('1000000000000000000000'), 2]);
  assert.deepEqual(defaultSerializer('k', 2n ** 70n), [Buffer.from((2n ** 70n).toString()), 2]);
  const u8 = new Uint8Array([1, 2]);
  assert.deepEqual(defaultSerializer('k', u8), [u8, 0]);
  assert.equal(FLAGS.TEXT, 16);
  assert.equal(FLAGS.INTEGER, 2);
  assert.equal(FLAGS.BYTES, 0);
});

test('default serializer rejects other types with a clear TypeError', async () => {
  for (const v of [1.5, NaN, Infinity, true, null, {}, [1], new Date(0), Symbol('s'), () => 1]) {
    assert.throws(() => defaultSerializer('k', v), (e) => {
      assert.ok(e instanceof TypeError);
      assert.match(e.message, /default serializer stores Buffer \(flags 0\), string \(flags 16\) and integer/);
      return true;
    }, String(typeof v === 'symbol' ? 'symbol' : v));
    await assert.rejects(() => c.set(uk(), v), TypeError);
  }
});

test('default deserializer', async () => {
  assert.equal(defaultDeserializer('k', Buffer.from('é'), 16), 'é');
  assert.equal(defaultDeserializer('k', Buffer.from('42'), 2), 42);
  assert.equal(defaultDeserializer('k', Buffer.from('42'), 4), 42, 'pymemcache FLAG_LONG');
  assert.equal(defaultDeserializer('k', Buffer.from('5   '), 2), 5, 'memcached may space-pad after decr');
  assert.equal(defaultDeserializer('k', Buffer.from('-3'), 2), -3);
  assert.equal(defaultDeserializer('k', Buffer.from('18446744073709551615'), 2), 18446744073709551615n);
  assert.deepEqual(defaultDeserializer('k', Buffer.from([1]), 0), Buffer.from([1]));
  assert.deepEqual(defaultDeserializer('k', Buffer.from([0x80]), 1), Buffer.from([0x80]), 'unknown flags: raw bytes');
  assert.throws(() => defaultDeserializer('k', Buffer.from('x1'), 2), TypeError);
});

test('values are stored with the pymemcache flags', async () => {
  const k = uk();
  await c.set(k, 'text');
  assert.deepEqual(await raw.get(k), { value: Buffer.from('text'), flags: 16 });
  await c.set(k, 12345);
  assert.deepEqual(await raw.get(k), { value: Buffer.from('12345'), flags: 2 });
  await c.set(k, Buffer.from([9, 8]));
  assert.deepEqual(await raw.get(k), { value: Buffer.from([9, 8]), flags: 0 });
});

test('default serde round trips through memcached', async () => {
  const cases = ['', 'plain', 'ünïcødé ✓ 😀', 0, -1, 2 ** 53 - 1, -(2 ** 53) + 1, 2n ** 63n, Buffer.from([0, 13, 10, 255])];
  for (const v of cases) {
    const k = uk();
    await c.set(k, v);
    assert.deepEqual(await c.get(k), v);
  }
  // unsafe Numbers come back as BigInt (exact value)
  const k = uk();
  await c.set(k, 2 ** 60);
  assert.equal(await c.get(k), 2n ** 60n);
  // Uint8Array comes back as a Buffer
  await c.set(k, new Uint8Array([1, 2, 3]));
  assert.deepEqual(await c.get(k), Buffer.from([1, 2, 3]));
});

test('JSON serializer round trips an object (the seed example)', async () => {
  const json = new Client(mc.address, {
    defaultNoreply: false,
    serializer: (key, value) => (typeof value === 'string' ? [value, 1] : [JSON.stringify(value), 2]),
    deserializer: (key, value, flags) => {
      if (flags === 1) return value.toString('utf8');
      if (flags === 2) return JSON.parse(value.toString('utf8'));
      throw new Error('Unknown serialization format');
    },
  });
  try {
    const k = uk();
    const obj = { a: 'b', c: 'd', n: [1, 2.5, null], nested: { t: true } };
    assert.equal(await json.set(k, obj), true);
    assert.deepEqual(await json.get(k), obj);
    await json.set(k, 'a string');
    assert.equal(await json.get(k), 'a string');
    assert.deepEqual(await raw.get(k), { value: Buffer.from('a string'), flags: 1 });
    assert.deepEqual(await json.getMany([k]), { [k]: 'a string' });
    assert.deepEqual(await json.setMany({ [k]: [1, 2] }), []);
    assert.deepEqual(await json.get(k), [1, 2]);
    const [v, cas] = await json.gets(k);
    assert.deepEqual(v, [1, 2]);
    assert.equal(await json.cas(k, { x: 1 }, cas), true);
    assert.deepEqual(await json.get(k), { x: 1 });
    // the deserializer's error reaches the caller
    await c.set(k, Buffer.from('raw'));
    await assert.rejects(() => json.get(k), /Unknown serialization format/);
  } finally {
    json.close();
  }
});

test('serde object (pymemcache style) and hook arguments', async () => {
  const seen = [];
  const o = new Client(mc.address, {
    defaultNoreply: false,
    serde: {
      serialize(key, value) { seen.push(['s', key, value]); return [String(value), 77]; },
      deserialize(key, value, flags) { seen.push(['d', key, value.toString(), flags]); return `<${value}>`; },
    },
  });
  try {
    const k = uk();
    await o.set(k, 'v');
    assert.equal(await o.get(k), '<v>');
    const bk = Buffer.from(k);
    assert.equal(await o.get(bk), '<v>');
    assert.deepEqual(seen, [['s', k, 'v'], ['d', k, 'v', 77], ['d', bk, 'v', 77]]);
  } finally {
    o.close();
  }
});

test('a serializer that returns the wrong shape is a TypeError', async () => {
  for (const bad of [() => 'x', () => ['x'], () => [1, 0], () => ['x', -1], () => ['x', 2 ** 32], () => ['x', 1.5], () => null]) {
    const o = new Client(mc.address, { serializer: bad });
    try {
      await assert.rejects(() => o.set('k', 'v'), TypeError);
      await assert.rejects(() => o.setMany({ k: 'v' }), TypeError);
    } finally {
      o.close();
    }
  }
});

test('flags use all 32 bits', async () => {
  const k = uk();
  await raw.set(k, [Buffer.from('x'), 0xffffffff]);
  assert.deepEqual(await raw.get(k), { value: Buffer.from('x'), flags: 0xffffffff });
});
