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

test('set and get round trip strings, integers and Buffers', () => {
  const k = uk();
  assert.equal(c.set(k, 'some_value'), true);
  assert.equal(c.get(k), 'some_value');
  assert.equal(c.set(k, 42), true);
  assert.equal(c.get(k), 42);
  assert.equal(c.set(k, Buffer.from([0, 1, 255])), true);
  assert.deepEqual(c.get(k), Buffer.from([0, 1, 255]));
});

test('get of a missing key gives undefined, or the default', () => {
  const k = uk();
  assert.equal(c.get(k), undefined);
  assert.equal(c.get(k, 'dflt'), 'dflt');
});

test('empty values round trip', () => {
  const k = uk();
  c.set(k, '');
  assert.equal(c.get(k), '');
  c.set(k, Buffer.alloc(0));
  assert.deepEqual(c.get(k), Buffer.alloc(0));
});

test('large values round trip', () => {
  const k = uk();
  const big = Buffer.alloc(512 * 1024);
  for (let i = 0; i < big.length; i++) big[i] = (i * 31) & 0xff;
  assert.equal(c.set(k, big), true);
  assert.ok(c.get(k).equals(big));
});

test('Buffer keys and string keys address the same item', () => {
  const k = uk();
  c.set(Buffer.from(k), 'via buffer');
  assert.equal(c.get(k), 'via buffer');
  assert.equal(c.get(Buffer.from(`xx${k}yy`).subarray(2, 2 + k.length)), 'via buffer');
});

test('expire option and numeric shorthand', () => {
  const k = uk();
  assert.equal(c.set(k, 'v', { expire: 100 }), true);
  assert.equal(c.set(k, 'v', 100), true);
  // an absolute unix time in the past (over 30 days means absolute) expires at once
  assert.equal(c.set(k, 'v', { expire: PAST }), true);
  assert.equal(c.get(k), undefined);
});

test('add and replace report whether they stored', () => {
  const k = uk();
  assert.equal(c.replace(k, 'x'), false);
  assert.equal(c.add(k, 'first'), true);
  assert.equal(c.add(k, 'second'), false);
  assert.equal(c.get(k), 'first');
  assert.equal(c.replace(k, 'third'), true);
  assert.equal(c.get(k), 'third');
});

test('append and prepend', () => {
  const k = uk();
  assert.equal(c.append(k, 'x'), false);
  assert.equal(c.prepend(k, 'x'), false);
  c.set(k, 'middle');
  assert.equal(c.append(k, '>'), true);
  assert.equal(c.prepend(k, '<'), true);
  assert.equal(c.get(k), '<middle>');
});

test('gets and cas: stored, exists, not found', () => {
  const k = uk();
  assert.deepEqual(c.gets(k), [undefined, undefined]);
  assert.deepEqual(c.gets(k, 'd'), ['d', undefined]);
  c.set(k, 'v1');
  const [v, cas] = c.gets(k);
  assert.equal(v, 'v1');
  assert.equal(typeof cas, 'bigint');
  assert.equal(c.cas(k, 'v2', cas), true);
  assert.equal(c.get(k), 'v2');
  assert.equal(c.cas(k, 'v3', cas), false, 'stale cas gives false (EXISTS)');
  assert.equal(c.get(k), 'v2');
  assert.equal(c.cas(uk(), 'v', cas), undefined, 'missing key gives undefined (NOT_FOUND)');
});

test('cas accepts BigInt, decimal strings and safe integers', () => {
  const k = uk();
  c.set(k, 'a');
  let [, cas] = c.gets(k);
  assert.equal(c.cas(k, 'b', cas.toString()), true);
  [, cas] = c.gets(k);
  assert.equal(c.cas(k, 'c', Number(cas), { expire: 100 }), true);
  assert.equal(c.get(k), 'c');
  assert.throws(() => c.cas(k, 'd', -1), RangeError);
  assert.throws(() => c.cas(k, 'd', '12x'), TypeError);
  assert.throws(() => c.cas(k, 'd'), TypeError);
  assert.throws(() => c.cas(k, 'd', 2n ** 64n), RangeError);
});

test('getMany and getsMany return hits only, keyed by the caller key', () => {
  const [a, b, m] = [uk(), uk(), uk()];
  c.set(a, 'A');
  c.set(b, 2);
  const r = c.getMany([a, b, m, Buffer.from(a)]);
  assert.deepEqual(r, { [a]: 'A', [b]: 2 });
  assert.deepEqual(c.getMany([]), {});
  const rs = c.getsMany([a, m]);
  assert.deepEqual(Object.keys(rs), [a]);
  assert.equal(rs[a][0], 'A');
  assert.equal(typeof rs[a][1], 'bigint');
  assert.equal(c.cas(a, 'A2', rs[a][1]), true);
});

test('getMany of a key named __proto__ does not touch the prototype', () => {
  c.set('__proto__', 'proto value');
  const r = c.getMany(['__proto__']);
  assert.equal(Object.getPrototypeOf(r), Object.prototype);
  assert.deepEqual(Object.keys(r), ['__proto__']);
  assert.equal(Object.getOwnPropertyDescriptor(r, '__proto__').value, 'proto value');
});

test('getMany over many keys (several pipelined chunks)', () => {
  const keys = Array.from({ length: 600 }, () => uk('many'));
  const items = Object.fromEntries(keys.map((k, i) => [k, i]));
  assert.deepEqual(c.setMany(items), []);
  assert.deepEqual(c.getMany(keys), items);
});

test('setMany takes objects, Maps and pairs and returns the failed keys', () => {
  const [a, b, d] = [uk(), uk(), uk()];
  assert.deepEqual(c.setMany({ [a]: 'x', [b]: 1 }), []);
  assert.deepEqual(c.getMany([a, b]), { [a]: 'x', [b]: 1 });
  assert.deepEqual(c.setMany(new Map([[Buffer.from(d), 'buf key']])), []);
  assert.equal(c.get(d), 'buf key');
  assert.deepEqual(c.setMany([[a, 'pair']], { expire: 100 }), []);
  assert.equal(c.get(a), 'pair');
  assert.deepEqual(c.setMany({}), []);
  // a value over memcached's 1 MiB item limit is not stored: its key comes back
  const tooBig = Buffer.alloc(2 * 1024 * 1024);
  const failed = c.setMany([[a, 'small'], [b, tooBig], [d, 'small too']]);
  assert.deepEqual(failed, [b]);
  assert.equal(c.get(a), 'small');
  assert.equal(c.get(d), 'small too');
});

test('a too large value is a SERVER_ERROR for set', () => {
  const k = uk();
  assert.throws(() => c.set(k, Buffer.alloc(2 * 1024 * 1024)), (e) => {
    assert.ok(e instanceof McrsError);
    assert.equal(e.code, 'MCRS_STATUS_SERVER_ERROR');
    assert.equal(e.status, Status.SERVER_ERROR);
    assert.match(e.message, /SERVER_ERROR/);
    return true;
  });
  // the connection is still in step
  c.set(k, 'after');
  assert.equal(c.get(k), 'after');
});

test('delete and deleteMany', () => {
  const [a, b] = [uk(), uk()];
  c.set(a, 1);
  assert.equal(c.delete(a), true);
  assert.equal(c.delete(a), false);
  c.setMany({ [a]: 1, [b]: 2 });
  assert.equal(c.deleteMany([a, b, uk()]), true);
  assert.deepEqual(c.getMany([a, b]), {});
  assert.equal(c.deleteMany([]), true);
});

test('incr and decr', () => {
  const k = uk();
  assert.equal(c.incr(k, 1), undefined, 'missing key');
  assert.equal(c.decr(k, 1), undefined);
  c.set(k, 10);
  assert.equal(c.incr(k, 5), 15);
  assert.equal(c.incr(k), 16, 'delta defaults to 1');
  assert.equal(c.decr(k, 6), 10);
  assert.equal(c.decr(k, 100), 0, 'memcached stops at 0');
  assert.equal(c.get(k), 0);
  c.set(k, 2n ** 64n - 2n);
  assert.equal(c.incr(k, 1n), 2n ** 64n - 1n, 'past 2^53 the result is a BigInt');
  assert.equal(c.incr(k, 1), 0, 'wraps at 2^64 like memcached');
  c.set(k, 'text');
  assert.throws(() => c.incr(k, 1), (e) => e instanceof McrsError && e.code === 'MCRS_STATUS_CLIENT_ERROR');
});

test('incr after a shrinking decr reads back as an integer', () => {
  const k = uk();
  c.set(k, 100);
  c.decr(k, 95);
  assert.equal(c.get(k), 5);
});

test('touch, gat and gats', () => {
  const k = uk();
  assert.equal(c.touch(k, 100), false);
  c.set(k, 'v');
  assert.equal(c.touch(k, 100), true);
  assert.equal(c.gat(k, 100), 'v');
  assert.equal(c.gat(uk(), 100), undefined);
  assert.equal(c.gat(uk(), 100, 'd'), 'd');
  const [v, cas] = c.gats(k, 100);
  assert.equal(v, 'v');
  assert.equal(typeof cas, 'bigint');
  // touching with a past unix time expires the item
  assert.equal(c.touch(k, PAST), true);
  assert.equal(c.get(k), undefined);
});

test('stats gives numbers and strings per server, with arguments', () => {
  const s = c.stats();
  assert.deepEqual(Object.keys(s), [mc.address]);
  const st = s[mc.address];
  assert.equal(typeof st.pid, 'number');
  assert.equal(st.pid, mc.proc.pid);
  assert.equal(typeof st.version, 'string');
  assert.equal(typeof st.rusage_user, 'number');
  const settings = c.stats('settings')[mc.address];
  assert.equal(settings.tcpport, mc.port);
  assert.equal(settings.udpport, 0);
  const items = c.stats('items');
  assert.ok(mc.address in items);
  assert.throws(() => c.stats(1), TypeError);
});

test('version', () => {
  const v = c.version();
  assert.match(v, /^\d+\.\d+\.\d+/);
  assert.equal(v, c.stats()[mc.address].version);
});

test('flushAll', async () => {
  const k = uk();
  c.set(k, 'v');
  assert.equal(c.flushAll(), true);
  assert.equal(c.get(k), undefined);
  // noreply: the flush and the get travel on the same pooled connection, in order
  nr.set(k, 'v');
  assert.equal(nr.flushAll(0, true), true);
  assert.equal(nr.get(k), undefined);
  nr.set(k, 'v');
  assert.equal(nr.flushAll(0, { noreply: false }), true);
  assert.equal(nr.get(k), undefined);
});

test('verbosity, cacheMemlimit and quit', () => {
  assert.equal(c.verbosity(0), true);
  assert.equal(c.cacheMemlimit(64), true);
  const k = uk();
  c.set(k, 'v');
  c.quit();
  assert.equal(c.get(k), 'v', 'the client reconnects after quit');
});

test('noreply defaults: storage commands do not wait, cas/incr/decr do', () => {
  const k = uk();
  assert.equal(nr.add(k, 'first'), true);
  // with noreply the outcome is unknown: add of an existing key still says true
  assert.equal(nr.add(k, 'second'), true);
  assert.equal(nr.get(k), 'first');
  assert.equal(nr.replace(uk(), 'x'), true);
  assert.equal(nr.append(uk(), 'x'), true);
  assert.equal(nr.delete(uk()), true);
  assert.equal(nr.touch(uk(), 10), true);
  // per-call override
  assert.equal(nr.add(k, 'third', { noreply: false }), false);
  assert.equal(nr.delete(uk(), { noreply: false }), false);
  assert.equal(nr.touch(uk(), 10, { noreply: false }), false);
  // cas, incr and decr wait by default
  const [, cas] = nr.gets(k);
  assert.equal(nr.cas(k, 'x', cas + 1000n), false);
  assert.equal(nr.incr(uk(), 1), undefined);
  const n = uk();
  nr.set(n, 1);
  assert.equal(nr.incr(n, 1), 2);
  assert.equal(nr.incr(n, 1, { noreply: true }), undefined, 'noreply incr gives undefined');
  assert.equal(nr.decr(n, 1), 2);
  assert.equal(nr.cas(k, 'y', 1n, { noreply: true }), true);
  // and noreply can be forced on a waiting client
  assert.equal(c.add(k, 'z', { noreply: true }), true);
  assert.equal(c.get(k), 'first');
});

test('keyPrefix is applied on the wire and not seen by the caller', () => {
  const p = new Client(mc.address, { keyPrefix: 'pfx:', defaultNoreply: false });
  try {
    const k = uk();
    p.set(k, 'prefixed');
    assert.equal(p.get(k), 'prefixed');
    assert.equal(c.get(`pfx:${k}`), 'prefixed');
    assert.equal(c.get(k), undefined);
    assert.deepEqual(p.getMany([k]), { [k]: 'prefixed' });
    assert.throws(() => p.set('x'.repeat(247), 'v'), (e) => e.code === 'MCRS_STATUS_INVALID_KEY');
    p.set('x'.repeat(246), 'v');
  } finally {
    p.close();
  }
});

test('allowUnicodeKeys', () => {
  const u = new Client(mc.address, { allowUnicodeKeys: true, defaultNoreply: false });
  try {
    assert.equal(u.set('clé_ünïcode', 'v'), true);
    assert.equal(u.get('clé_ünïcode'), 'v');
    assert.deepEqual(u.getMany(['clé_ünïcode']), { 'clé_ünïcode': 'v' });
    assert.throws(() => c.get('clé'), (e) => e.code === 'MCRS_STATUS_INVALID_KEY');
  } finally {
    u.close();
  }
});

test('every option is accepted', () => {
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
  });
  try {
    o.set('opt', 'v');
    assert.equal(o.get('opt'), 'v');
  } finally {
    o.close();
  }
});

test('servers as [host, port] pairs and objects', () => {
  for (const servers of [[['127.0.0.1', mc.port]], [{ host: '127.0.0.1', port: mc.port }], [{ host: '127.0.0.1', port: mc.port, weight: 2 }]]) {
    const o = new Client(servers, { defaultNoreply: false });
    try {
      const k = uk();
      o.set(k, 'v');
      assert.equal(c.get(k), 'v');
    } finally {
      o.close();
    }
  }
});

test('close is idempotent and the client reports it', () => {
  const o = new Client(mc.address);
  assert.equal(o.closed, false);
  o.close();
  assert.equal(o.closed, true);
  o.close();
});

test('getInto copies the raw bytes into the caller\'s buffer', () => {
  const k = uk();
  assert.equal(c.set(k, Buffer.from('hello into')), true);
  const buf = Buffer.alloc(16);
  const got = c.getInto(k, buf);
  assert.equal(got.length, 10);
  assert.equal(buf.subarray(0, got.length).toString(), 'hello into');
  assert.equal(got.flags, 0); // a Buffer is stored with pymemcache's bytes flag 0
  // exactly the value's size fits; one byte less throws and says how much is needed
  assert.equal(c.getInto(k, new Uint8Array(10)).length, 10);
  assert.throws(() => c.getInto(k, Buffer.alloc(9)), (e) => e instanceof McrsError && e.status === Status.BUFFER_TOO_SMALL && e.needed === 10);
  // misses, empty values, bad arguments
  assert.equal(c.getInto(uk(), buf), undefined);
  const empty = uk();
  assert.equal(c.set(empty, Buffer.alloc(0)), true);
  assert.deepEqual(c.getInto(empty, Buffer.alloc(0)), { length: 0, flags: 0 });
  assert.throws(() => c.getInto(k, 'not a buffer'), TypeError);
  assert.throws(() => c.getInto('bad key', buf), (e) => e.status === Status.INVALID_KEY);
});

test('bufferNoreply holds noreply sets until flushBuffers', async () => {
  const buffered = new Client(mc.address, { bufferNoreply: true });
  try {
    const k = uk();
    buffered.set(k, 'later');
    assert.equal(c.get(k), undefined);
    assert.equal(buffered.flushBuffers(), true);
    for (let i = 0; i < 200 && c.get(k) === undefined; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(c.get(k), 'later');
  } finally {
    buffered.close();
  }
});
