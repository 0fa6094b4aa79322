'use strict';
// Every method of Client against one real memcached.

const test = require('node:test');
const assert = require('node:assert/strict');
const { Client, McrsError, Status } = require('..');
const { startMemcached, uniqueKey: uk } = require('./support');

const PAST = 30 * 24 * 3600 + 1; // exptime past 30 days is a unix time: this one is in 1970

let mc;
let c; // defaultNoreply: false, so that results are observable
let nr; // library defaults (noreply on for storage commands)

test.before(async () => {
  mc = await startMemcached();
  c = new Client(mc.address, { defaultNoreply: false, timeout: 2000 });
  nr = new Client(mc.address);
});

test.after(async () => {
  c.close();
  nr.close();
  await mc.stop();
});

test('set and get round trip strings, integers and Buffers', async () => {
  const k = uk();
  assert.equal(await c.set(k, 'some_value'), true);
  assert.equal(await c.get(k), 'some_value');
  assert.equal(await c.set(k, 42), true);
  assert.equal(await c.get(k), 42);
  assert.equal(await c.set(k, Buffer.from([0, 1, 255])), true);
  assert.deepEqual(await c.get(k), Buffer.from([0, 1, 255]));
});

test('get of a missing key gives undefined, or the default', async () => {
  const k = uk();
  assert.equal(await c.get(k), undefined);
  assert.equal(await c.get(k, 'dflt'), 'dflt');
});

test('empty values round trip', async () => {
  const k = uk();
  await c.set(k, '');
  assert.equal(await c.get(k), '');
  await c.set(k, Buffer.alloc(0));
  assert.deepEqual(await c.get(k), Buffer.alloc(0));
});

test('large values round trip', async () => {
  const k = uk();
  const big = Buffer.alloc(512 * 1024);
  for (let i = 0; i < big.length; i++) big[i] = (i * 31) & 0xff;
  assert.equal(await c.set(k, big), true);
  assert.ok((await c.get(k)).equals(big));
});

test('Buffer keys and string keys address the same item', async () => {
  const k = uk();
  await c.set(Buffer.from(k), 'via buffer');
  assert.equal(await c.get(k), 'via buffer');
  assert.equal(await c.get(Buffer.from(`xx${k}yy`).subarray(2, 2 + k.length)), 'via buffer');
});

test('expire option and numeric shorthand', async () => {
  const k = uk();
  assert.equal(await c.set(k, 'v', { expire: 100 }), true);
  assert.equal(await c.set(k, 'v', 100), true);
  // an absolute unix time in the past (over 30 days means absolute) expires at once
  assert.equal(await c.set(k, 'v', { expire: PAST }), true);
  assert.equal(await c.get(k), undefined);
});

test('add and replace report whether they stored', async () => {
  const k = uk();
  assert.equal(await c.replace(k, 'x'), false);
  assert.equal(await c.add(k, 'first'), true);
  assert.equal(await c.add(k, 'second'), false);
  assert.equal(await c.get(k), 'first');
  assert.equal(await c.replace(k, 'third'), true);
  assert.equal(await c.get(k), 'third');
});

test('append and prepend', async () => {
  const k = uk();
  assert.equal(await c.append(k, 'x'), false);
  assert.equal(await c.prepend(k, 'x'), false);
  await c.set(k, 'middle');
  assert.equal(await c.append(k, '>'), true);
  assert.equal(await c.prepend(k, '<'), true);
  assert.equal(await c.get(k), '<middle>');
});

test('gets and cas: stored, exists, not found', async () => {
  const k = uk();
  assert.deepEqual(await c.gets(k), [undefined, undefined]);
  assert.deepEqual(await c.gets(k, 'd'), ['d', undefined]);
  await c.set(k, 'v1');
  const [v, cas] = await c.gets(k);
  assert.equal(v, 'v1');
  assert.equal(typeof cas, 'bigint');
  assert.equal(await c.cas(k, 'v2', cas), true);
  assert.equal(await c.get(k), 'v2');
  assert.equal(await c.cas(k, 'v3', cas), false, 'stale cas gives false (EXISTS)');
  assert.equal(await c.get(k), 'v2');
  assert.equal(await c.cas(uk(), 'v', cas), undefined, 'missing key gives undefined (NOT_FOUND)');
});

test('cas accepts BigInt, decimal strings and safe integers', async () => {
  const k = uk();
  await c.set(k, 'a');
  let [, cas] = await c.gets(k);
  assert.equal(await c.cas(k, 'b', cas.toString()), true);
  [, cas] = await c.gets(k);
  assert.equal(await c.cas(k, 'c', Number(cas), { expire: 100 }), true);
  assert.equal(await c.get(k), 'c');
  await assert.rejects(() => c.cas(k, 'd', -1), RangeError);
  await assert.rejects(() => c.cas(k, 'd', '12x'), TypeError);
  await assert.rejects(() => c.cas(k, 'd'), TypeError);
  await assert.rejects(() => c.cas(k, 'd', 2n ** 64n), RangeError);
});

test('getMany and getsMany return hits only, keyed by the caller key', async () => {
  const [a, b, m] = [uk(), uk(), uk()];
  await c.set(a, 'A');
  await c.set(b, 2);
  const r = await c.getMany([a, b, m, Buffer.from(a)]);
  assert.deepEqual(r, { [a]: 'A', [b]: 2 });
  assert.deepEqual(await c.getMany([]), {});
  const rs = await c.getsMany([a, m]);
  assert.deepEqual(Object.keys(rs), [a]);
  assert.equal(rs[a][0], 'A');
  assert.equal(typeof rs[a][1], 'bigint');
  assert.equal(await c.cas(a, 'A2', rs[a][1]), true);
});

test('getMany of a key named __proto__ does not touch the prototype', async () => {
  await c.set('__proto__', 'proto value');
  const r = await c.getMany(['__proto__']);
  assert.equal(Object.getPrototypeOf(r), Object.prototype);
  assert.deepEqual(Object.keys(r), ['__proto__']);
  assert.equal(Object.getOwnPropertyDescriptor(r, '__proto__').value, 'proto value');
});

test('getMany over many keys (several pipelined chunks)', async () => {
  const keys = Array.from({ length: 600 }, () => uk('many'));
  const items = Object.fromEntries(keys.map((k, i) => [k, i]));
  assert.deepEqual(await c.setMany(items), []);
  assert.deepEqual(await c.getMany(keys), items);
});

test('setMany takes objects, Maps and pairs and returns the failed keys', async () => {
  const [a, b, d] = [uk(), uk(), uk()];
  assert.deepEqual(await c.setMany({ [a]: 'x', [b]: 1 }), []);
  assert.deepEqual(await c.getMany([a, b]), { [a]: 'x', [b]: 1 });
  assert.deepEqual(await c.setMany(new Map([[Buffer.from(d), 'buf key']])), []);
  assert.equal(await c.get(d), 'buf key');
  assert.deepEqual(await c.setMany([[a, 'pair']], { expire: 100 }), []);
  assert.equal(await c.get(a), 'pair');
  assert.deepEqual(await c.setMany({}), []);
  // a value over memcached's 1 MiB item limit is not stored: its key comes back
  const tooBig = Buffer.alloc(2 * 1024 * 1024);
  const failed = await c.setMany([[a, 'small'], [b, tooBig], [d, 'small too']]);
  assert.deepEqual(failed, [b]);
  assert.equal(await c.get(a), 'small');
  assert.equal(await c.get(d), 'small too');
});

test('a too large value is a SERVER_ERROR for set', async () => {
  const k = uk();
  await assert.rejects(() => c.set(k, Buffer.alloc(2 * 1024 * 1024)), (e) => {
    assert.ok(e instanceof McrsError);
    assert.equal(e.code, 'MCRS_STATUS_SERVER_ERROR');
    assert.equal(e.status, Status.SERVER_ERROR);
    assert.match(e.message, /SERVER_ERROR/);
    return true;
  });
  // the connection is still in step
  await c.set(k, 'after');
  assert.equal(await c.get(k), 'after');
});

test('delete and deleteMany', async () => {
  const [a, b] = [uk(), uk()];
  await c.set(a, 1);
  assert.equal(await c.delete(a), true);
  assert.equal(await c.delete(a), false);
  await c.setMany({ [a]: 1, [b]: 2 });
  assert.equal(await c.deleteMany([a, b, uk()]), true);
  assert.deepEqual(await c.getMany([a, b]), {});
  assert.equal(await c.deleteMany([]), true);
});

test('incr and decr', async () => {
  const k = uk();
  assert.equal(await c.incr(k, 1), undefined, 'missing key');
  assert.equal(await c.decr(k, 1), undefined);
  await c.set(k, 10);
  assert.equal(await c.incr(k, 5), 15);
  assert.equal(await c.incr(k), 16, 'delta defaults to 1');
  assert.equal(await c.decr(k, 6), 10);
  assert.equal(await c.decr(k, 100), 0, 'memcached stops at 0');
  assert.equal(await c.get(k), 0);
  await c.set(k, 2n ** 64n - 2n);
  assert.equal(await c.incr(k, 1n), 2n ** 64n - 1n, 'past 2^53 the result is a BigInt');
  assert.equal(await c.incr(k, 1), 0, 'wraps at 2^64 like memcached');
  await c.set(k, 'text');
  await assert.rejects(() => c.incr(k, 1), (e) => e instanceof McrsError && e.code === 'MCRS_STATUS_CLIENT_ERROR');
});

test('incr after a shrinking decr reads back as an integer', async () => {
  const k = uk();
  await c.set(k, 100);
  await c.decr(k, 95);
  assert.equal(await c.get(k), 5);
});

test('touch, gat and gats', async () => {
  const k = uk();
  assert.equal(await c.touch(k, 100), false);
  await c.set(k, 'v');
  assert.equal(await c.touch(k, 100), true);
  assert.equal(await c.gat(k, 100), 'v');
  assert.equal(await c.gat(uk(), 100), undefined);
  assert.equal(await c.gat(uk(), 100, 'd'), 'd');
  const [v, cas] = await c.gats(k, 100);
  assert.equal(v, 'v');
  assert.equal(typeof cas, 'bigint');
  // touching with a past unix time expires the item
  assert.equal(await c.touch(k, PAST), true);
  assert.equal(await c.get(k), undefined);
});

test('stats gives numbers and strings per server, with arguments', async () => {
  const s = await c.stats();
  assert.deepEqual(Object.keys(s), [mc.address]);
  const st = s[mc.address];
  assert.equal(typeof st.pid, 'number');
  assert.equal(st.pid, mc.proc.pid);
  assert.equal(typeof st.version, 'string');
  assert.equal(typeof st.rusage_user, 'number');
  const settings = (await c.stats('settings'))[mc.address];
  assert.equal(settings.tcpport, mc.port);
  assert.equal(settings.udpport, 0);
  const items = await c.stats('items');
  assert.ok(mc.address in items);
  await assert.rejects(() => c.stats(1), TypeError);
});

test('version', async () => {
  const v = await c.version();
  assert.match(v, /^\d+\.\d+\.\d+/);
  assert.equal(v, (await c.stats())[mc.address].version);
});

test('flushAll', async () => {
  const k = uk();
  await c.set(k, 'v');
  assert.equal(await c.flushAll(), true);
  assert.equal(await c.get(k), undefined);
  // noreply: the flush and the get travel on the same pooled connection, in order
  await nr.set(k, 'v');
  assert.equal(await nr.flushAll(0, true), true);
  assert.equal(await nr.get(k), undefined);
  await nr.set(k, 'v');
  assert.equal(await nr.flushAll(0, { noreply: false }), true);
  assert.equal(await nr.get(k), undefined);
});

test('verbosity, cacheMemlimit and quit', async () => {
  assert.equal(await c.verbosity(0), true);
  assert.equal(await c.cacheMemlimit(64), true);
  const k = uk();
  await c.set(k, 'v');
  await c.quit();
  assert.equal(await c.get(k), 'v', 'the client reconnects after quit');
});

test('noreply defaults: storage commands do not wait, cas/incr/decr do', async () => {
  const k = uk();
  assert.equal(await nr.add(k, 'first'), true);
  // with noreply the outcome is unknown: add of an existing key still says true
  assert.equal(await nr.add(k, 'second'), true);
  assert.equal(await nr.get(k), 'first');
  assert.equal(await nr.replace(uk(), 'x'), true);
  assert.equal(await nr.append(uk(), 'x'), true);
  assert.equal(await nr.delete(uk()), true);
  assert.equal(await nr.touch(uk(), 10), true);
  // per-call override
  assert.equal(await nr.add(k, 'third', { noreply: false }), false);
  assert.equal(await nr.delete(uk(), { noreply: false }), false);
  assert.equal(await nr.touch(uk(), 10, { noreply: false }), false);
  // cas, incr and decr wait by default
  const [, cas] = await nr.gets(k);
  assert.equal(await nr.cas(k, 'x', cas + 1000n), false);
  assert.equal(await nr.incr(uk(), 1), undefined);
  const n = uk();
  await nr.set(n, 1);
  assert.equal(await nr.incr(n, 1), 2);
  assert.equal(await nr.incr(n, 1, { noreply: true }), undefined, 'noreply incr gives undefined');
  assert.equal(await nr.decr(n, 1), 2);
  assert.equal(await nr.cas(k, 'y', 1n, { noreply: true }), true);
  // and noreply can be forced on a waiting client
  assert.equal(await c.add(k, 'z', { noreply: true }), true);
  assert.equal(await c.get(k), 'first');
});

test('keyPrefix is applied on the wire and not seen by the caller', async () => {
  const p = new Client(mc.address, { keyPrefix: 'pfx:', defaultNoreply: false });
  try {
    const k = uk();
    await p.set(k, 'prefixed');
    assert.equal(await p.get(k), 'prefixed');
    assert.equal(await c.get(`pfx:${k}`), 'prefixed');
    assert.equal(await c.get(k), undefined);
    assert.deepEqual(await p.getMany([k]), { [k]: 'prefixed' });
    await assert.rejects(() => p.set('x'.repeat(247), 'v'), (e) => e.code === 'MCRS_STATUS_INVALID_KEY');
    await p.set('x'.repeat(246), 'v');
  } finally {
    p.close();
  }
});

test('allowUnicodeKeys', async () => {
  const u = new Client(mc.address, { allowUnicodeKeys: true, defaultNoreply: false });
  try {
    assert.equal(await u.set('clé_ünïcode', 'v'), true);
    assert.equal(await u.get('clé_ünïcode'), 'v');
    assert.deepEqual(await u.getMany(['clé_ünïcode']), { 'clé_ünïcode': 'v' });
    await assert.rejects(() => c.get('clé'), (e) => e.code === 'MCRS_STATUS_INVALID_KEY');
  } finally {
    u.close();
  }
});

test('every option is accepted', async () => {
  const o = new Client([mc.address], {
    connectTimeout: 500,
    timeout: 1500,
    noDelay: true,
    keepalive: true,
    ignoreExc: false,
    defaultNoreply: true,
    keyPrefix: Buffer.from('p_'),
    allowUnicodeKeys: false,
    maxPoolSize: 4,
    poolIdleTimeout: 10000,
    retryAttempts: 3,
    retryTimeout: 500,
    deadTimeout: 5000,
    distribution: 'ketama',
    flushOnRejoin: false,
    failoverTtl: 30,
    maxValueSize: 1024 * 1024,
    maxTrackedKeys: 1000,
  });
  try {
    await o.set('opt', 'v');
    assert.equal(await o.get('opt'), 'v');
  } finally {
    o.close();
  }
});

test('servers as [host, port] pairs and objects', async () => {
  for (const servers of [[['127.0.0.1', mc.port]], [{ host: '127.0.0.1', port: mc.port }], [{ host: '127.0.0.1', port: mc.port, weight: 2 }]]) {
    const o = new Client(servers, { defaultNoreply: false });
    try {
      const k = uk();
      await o.set(k, 'v');
      assert.equal(await c.get(k), 'v');
    } finally {
      o.close();
    }
  }
});

test('close is idempotent and the client reports it', async () => {
  const o = new Client(mc.address);
  assert.equal(o.closed, false);
  o.close();
  assert.equal(o.closed, true);
  o.close();
});

test('getInto copies the raw bytes into the caller\'s buffer', async () => {
  const k = uk();
  assert.equal(await c.set(k, Buffer.from('hello into')), true);
  const buf = Buffer.alloc(16);
  const got = await c.getInto(k, buf);
  assert.equal(got.length, 10);
  assert.equal(buf.subarray(0, got.length).toString(), 'hello into');
  assert.equal(got.flags, 0); // a Buffer is stored with pymemcache's bytes flag 0
  // exactly the value's size fits; one byte less throws and says how much is needed
  assert.equal((await c.getInto(k, new Uint8Array(10))).length, 10);
  await assert.rejects(() => c.getInto(k, Buffer.alloc(9)), (e) => e instanceof McrsError && e.status === Status.BUFFER_TOO_SMALL && e.needed === 10);
  // misses, empty values, bad arguments
  assert.equal(await c.getInto(uk(), buf), undefined);
  const empty = uk();
  assert.equal(await c.set(empty, Buffer.alloc(0)), true);
  assert.deepEqual(await c.getInto(empty, Buffer.alloc(0)), { length: 0, flags: 0 });
  await assert.rejects(() => c.getInto(k, 'not a buffer'), TypeError);
  await assert.rejects(() => c.getInto('bad key', buf), (e) => e.status === Status.INVALID_KEY);
});

test('flushBuffers writes the requests submitted so far; bufferNoreply is accepted', async () => {
  const buffered = new Client(mc.address, { bufferNoreply: true });
  try {
    const k = uk();
    const stored = buffered.set(k, 'later');
    assert.equal(await buffered.flushBuffers(), true);
    assert.equal(await stored, true);
    // a noreply set resolves once written; another connection's get may be
    // served first, so read back through the same client (same connection)
    assert.equal(await buffered.get(k), 'later');
  } finally {
    buffered.close();
  }
});

test('requests of one turn are pipelined and settle in any mix', async () => {
  const keys = Array.from({ length: 300 }, () => uk('mix'));
  const sets = keys.map((k, i) => c.set(k, i % 3 === 0 ? `s${i}` : i));
  assert.deepEqual(await Promise.all(sets), keys.map(() => true));
  const reads = keys.map((k, i) => (i % 2 ? c.get(k) : c.gets(k)));
  const got = await Promise.all(reads);
  for (const [i, v] of got.entries()) {
    const want = i % 3 === 0 ? `s${i}` : i;
    if (i % 2) assert.equal(v, want);
    else { assert.equal(v[0], want); assert.equal(typeof v[1], 'bigint'); }
  }
  assert.equal(c.pending, 0);
});

test('close() rejects the requests in flight with MCRS_STATUS_CANCELLED', async () => {
  const o = new Client(mc.address, { defaultNoreply: false });
  const k = uk();
  await o.set(k, 'v');
  const inflight = [o.get(k), o.set(k, 'w'), o.getMany([k]), o.incr(k), o.version()];
  assert.equal(o.pending, inflight.length);
  await o.close();
  for (const p of inflight) {
    await assert.rejects(p, (e) => {
      assert.ok(e instanceof McrsError);
      assert.equal(e.code, 'MCRS_STATUS_CANCELLED');
      assert.equal(e.status, Status.CANCELLED);
      assert.match(e.message, /^mcrs \w+: .*cancelled/);
      return true;
    });
  }
  assert.equal(o.pending, 0);
  await assert.rejects(o.get(k), (e) => e.code === 'ERR_MCRS_CLIENT_CLOSED');
});

test('a client dropped without close() still settles its promises', async () => {
  const k = uk();
  await c.set(k, 'kept');
  const p = new Client(mc.address).get(k);
  if (global.gc) global.gc();
  assert.equal(await p, 'kept');
});

test('quit with requests in flight: they complete, later requests use new connections', async () => {
  const o = new Client(mc.address, { defaultNoreply: false });
  try {
    const k = uk();
    await o.set(k, 'before');
    const before = (await c.stats())[mc.address].total_connections;
    const inflight = Array.from({ length: 20 }, () => o.get(k));
    await o.quit();
    const after = o.get(k);
    assert.deepEqual(await Promise.all(inflight), Array(20).fill('before'));
    assert.equal(await after, 'before');
    const now = (await c.stats())[mc.address].total_connections;
    assert.ok(now > before, `a new connection was opened (${before} -> ${now})`);
    assert.equal(o.pending, 0);
  } finally {
    o.close();
  }
});

test('maxValueSize: a larger value rejects with VALUE_TOO_LARGE, the client goes on', async () => {
  // the event loop refuses a value before its read buffer (64 KiB) would grow for it
  const small = new Client(mc.address, { maxValueSize: 1000, defaultNoreply: false });
  try {
    const [k, k2] = [uk(), uk()];
    await c.set(k, Buffer.alloc(512 * 1024, 1));
    await c.set(k2, 'small');
    await assert.rejects(small.get(k), (e) => e instanceof McrsError && e.code === 'MCRS_STATUS_VALUE_TOO_LARGE' && e.status === Status.VALUE_TOO_LARGE);
    assert.equal(await small.get(k2), 'small');
  } finally {
    small.close();
  }
});
