'use strict';
// Misuse: wrong JS types, bad options, invalid keys, closed clients, a missing
// addon. Each must give a clear rejection (or, for the constructor, a clear
// exception), never a crash.

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { Client, McrsError, Status } = require('..');
const { startMemcached } = require('./support');

let mc;
let c;

test.before(async () => {
  mc = await startMemcached();
  c = new Client(mc.address, { defaultNoreply: false });
});

test.after(async () => {
  c.close();
  await mc.stop();
});

const BAD_KEYS = [1, 0, -1, 2 ** 40, 1n, null, undefined, true, {}, [], ['k'], () => 'k', Symbol('k'), new ArrayBuffer(2), new DataView(new ArrayBuffer(2)), new Uint16Array(2)];

test('wrong key types reject with TypeErrors before any native call', async () => {
  for (const k of BAD_KEYS) {
    const calls = [
      () => c.set(k, 'v'), () => c.add(k, 'v'), () => c.replace(k, 'v'), () => c.append(k, 'v'),
      () => c.prepend(k, 'v'), () => c.cas(k, 'v', 1n), () => c.get(k), () => c.gets(k),
      () => c.gat(k, 0), () => c.gats(k, 0), () => c.getMany([k]), () => c.getsMany(['ok', k]),
      () => c.setMany([[k, 'v']]), () => c.setMany(new Map([[k, 'v']])), () => c.delete(k),
      () => c.deleteMany([k]), () => c.incr(k, 1), () => c.decr(k, 1), () => c.touch(k, 0),
    ];
    for (const call of calls) {
      const p = call();
      assert.ok(p instanceof Promise, `${call} returns a promise`);
      await assert.rejects(p, TypeError, `${String(typeof k === 'symbol' ? 'symbol' : k)}: ${call}`);
    }
  }
});

test('wrong argument types reject with TypeErrors', async () => {
  const bad = [
    () => c.set('k'), // missing value
    () => c.set('k', undefined),
    () => c.set('k', 'v', 'opts'),
    () => c.set('k', 'v', { expire: '10' }),
    () => c.set('k', 'v', { expire: 1.5 }),
    () => c.set('k', 'v', { noreply: 'yes' }),
    () => c.set('k', 'v', { noreply: 1 }),
    () => c.set('k', 'v', { expires: 10 }), // typo is caught
    () => c.set('k', 'v', [10]),
    () => c.cas('k', 'v'),
    () => c.cas('k', 'v', 1.5),
    () => c.cas('k', 'v', {}),
    () => c.incr('k', '1x'),
    () => c.incr('k', 1.5),
    () => c.incr('k', 1, { noreply: 0 }),
    () => c.touch('k', 'soon'),
    () => c.gat('k', {}),
    () => c.getMany('k'),
    () => c.getMany(new Set(['k'])),
    () => c.getMany(null),
    () => c.deleteMany('k'),
    () => c.setMany(null),
    () => c.setMany('k'),
    () => c.setMany([['k']]),
    () => c.setMany(['k', 'v']),
    () => c.stats(1),
    () => c.stats('a\0b'),
    () => c.flushAll('now'),
    () => c.flushAll(0, 'yes'),
    () => c.verbosity(),
    () => c.verbosity('1'),
    () => c.cacheMemlimit(),
    () => c.cacheMemlimit(1.5),
  ];
  for (const call of bad) await assert.rejects(call(), TypeError, String(call));
});

test('out of range numbers reject with RangeErrors', async () => {
  for (const call of [
    () => c.set('k', 'v', { expire: -1 }),
    () => c.set('k', 'v', { expire: 2 ** 31 }),
    () => c.touch('k', -5),
    () => c.incr('k', -1),
    () => c.incr('k', 2n ** 64n),
    () => c.cas('k', 'v', -1n),
    () => c.flushAll(-1),
  ]) await assert.rejects(call(), RangeError, String(call));
});

test('invalid keys reject with McrsError INVALID_KEY, raised by libmcrs before any I/O', async () => {
  const dead = new Client('127.0.0.1:1', { connectTimeout: 100 }); // nothing listens: no I/O may happen
  try {
    for (const k of ['', 'a b', 'tab\tkey', 'new\nline', 'nul\0', 'x'.repeat(251), 'héllo', Buffer.from([0xff]), Buffer.alloc(0)]) {
      for (const call of [() => dead.get(k), () => dead.set(k, 'v'), () => dead.getMany(['ok', k]), () => dead.delete(k), () => dead.setMany([[k, 1]])]) {
        await assert.rejects(call(), (e) => {
          assert.ok(e instanceof McrsError, `${e}`);
          assert.equal(e.code, 'MCRS_STATUS_INVALID_KEY');
          assert.equal(e.status, Status.INVALID_KEY);
          assert.match(e.message, /^mcrs \w+: invalid key: /);
          return true;
        });
      }
    }
    // a 250-byte key is valid, so this one does try to connect
    await assert.rejects(dead.get('x'.repeat(250)), (e) => e.code === 'MCRS_STATUS_CONNECT_FAILED');
  } finally {
    dead.close();
  }
});

test('bad constructor arguments are TypeErrors or RangeErrors', () => {
  const typeErrors = [
    () => new Client(),
    () => new Client(11211),
    () => new Client([]),
    () => new Client([1]),
    () => new Client(['host\0:1']),
    () => new Client(''),
    () => new Client([['127.0.0.1', '11211']]),
    () => new Client([['127.0.0.1', 70000]]),
    () => new Client({ host: 1 }),
    () => new Client(mc.address, 'opts'),
    () => new Client(mc.address, { timout: 100 }),
    () => new Client(mc.address, { timeout: '100' }),
    () => new Client(mc.address, { noDelay: 1 }),
    () => new Client(mc.address, { ignoreExc: 'yes' }),
    () => new Client(mc.address, { keyPrefix: 5 }),
    () => new Client(mc.address, { maxPoolSize: 1.5 }),
    () => new Client(mc.address, { distribution: 'modula' }),
    () => new Client(mc.address, { distribution: 0 }),
    () => new Client(mc.address, { distribution: 'toString' }),
    () => new Client(mc.address, { serializer: 'json' }),
    () => new Client(mc.address, { deserializer: {} }),
    () => new Client(mc.address, { serde: { serialize() {} } }),
    () => new Client([{ host: '127.0.0.1', port: mc.port, weight: 'heavy' }]),
  ];
  for (const call of typeErrors) assert.throws(call, TypeError, String(call));
  for (const call of [
    () => new Client(mc.address, { timeout: 0 }),
    () => new Client(mc.address, { connectTimeout: -1 }),
    () => new Client(mc.address, { timeout: 2 ** 32 }),
    () => new Client(mc.address, { maxPoolSize: 0 }),
    () => new Client(mc.address, { retryAttempts: -1 }),
    () => new Client([{ host: '127.0.0.1', port: mc.port, weight: 0 }]),
    () => new Client(mc.address, { maxValueSize: 0 }),
    () => new Client(mc.address, { maxValueSize: 2 ** 30 + 1 }),
    () => new Client(mc.address, { failoverTtl: -1 }),
  ]) assert.throws(call, RangeError, String(call));
});

test('what libmcrs rejects in the configuration is a McrsError', () => {
  assert.throws(() => new Client('not a valid:address:at all'), (e) => e instanceof McrsError && e.code === 'MCRS_STATUS_INVALID_ARGUMENT');
  assert.throws(() => new Client(mc.address, { keyPrefix: 'bad prefix' }), (e) => e instanceof McrsError && e.code === 'MCRS_STATUS_INVALID_KEY');
});

test('a closed client rejects with a clear Error for every method, never crashes', async () => {
  const o = new Client(mc.address);
  o.close();
  const calls = [
    () => o.set('k', 'v'), () => o.add('k', 'v'), () => o.replace('k', 'v'), () => o.append('k', 'v'),
    () => o.prepend('k', 'v'), () => o.cas('k', 'v', 1n), () => o.get('k'), () => o.gets('k'),
    () => o.gat('k'), () => o.gats('k'), () => o.getMany(['k']), () => o.getsMany(['k']),
    () => o.setMany({ k: 'v' }), () => o.delete('k'), () => o.deleteMany(['k']), () => o.incr('k'),
    () => o.decr('k'), () => o.touch('k'), () => o.stats(), () => o.version(), () => o.flushAll(),
    () => o.cacheMemlimit(1), () => o.verbosity(1), () => o.quit(),
  ];
  for (const call of calls) {
    await assert.rejects(call(), (e) => {
      assert.ok(!(e instanceof McrsError));
      assert.equal(e.code, 'ERR_MCRS_CLIENT_CLOSED');
      assert.match(e.message, /^mcrs \w+: the client is closed$/);
      return true;
    }, String(call));
  }
  o.close(); // still idempotent
});

test('a client that is never closed is freed by the garbage collector', () => {
  // Only checks that finalization does not crash: run in a child with --expose-gc.
  const script = `
    const { Client } = require(${JSON.stringify(path.resolve(__dirname, '..'))});
    (async () => {
      for (let i = 0; i < 200; i++) { const c = new Client(${JSON.stringify(mc.address)}); if (i % 50 === 0) await c.version(); }
      global.gc();
      await new Promise((r) => setTimeout(r, 50));
      global.gc();
      await new Promise((r) => setTimeout(r, 50));
      console.log('ok');
    })();
  `;
  const r = spawnSync(process.execPath, ['--expose-gc', '-e', script], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'ok');
});

test('a missing addon gives a clear message naming the build steps', () => {
  const native = require('../lib/native');
  const script = `
    const Module = require('module');
    const orig = Module._load;
    Module._load = function (req, ...rest) {
      if (req === ${JSON.stringify(native.ADDON)}) throw new Error('simulated: no such file');
      return orig.call(this, req, ...rest);
    };
    const m = require(${JSON.stringify(path.resolve(__dirname, '..'))});
    if (typeof m.McrsError !== 'function') throw new Error('require failed');
    try { new m.Client('127.0.0.1:11211'); console.log('LOADED'); } catch (e) { console.log(e.message); }
  `;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /cannot load the native addon .*mcrs\.node \(simulated: no such file\)/);
  assert.match(r.stdout, /cargo build --release/);
  assert.match(r.stdout, /npm install/);
});

test('libraryVersion and libraryPath', () => {
  const { libraryVersion, libraryPath } = require('..');
  assert.match(libraryVersion(), /^\d+\.\d+\.\d+/);
  assert.equal(libraryPath(), process.env.MCRS_NODE_ADDON || path.resolve(__dirname, '..', 'build', 'Release', 'mcrs.node'));
});

test('a serializer that closes the client gives a clear Error, not a use-after-free', async () => {
  let victim;
  const ser = (key, value) => { victim.close(); return [String(value), 0]; };
  for (const call of [(o) => o.set('k', 'v'), (o) => o.cas('k', 'v', 1n), (o) => o.setMany({ k: 'v' })]) {
    victim = new Client(mc.address, { serializer: ser });
    await assert.rejects(call(victim), (e) => e.code === 'ERR_MCRS_CLIENT_CLOSED');
  }
  let reader;
  reader = new Client(mc.address, { deserializer: () => { reader.close(); return 'x'; } });
  await c.set('k', 'v');
  assert.deepEqual(await reader.getMany(['k', 'k']), { k: 'x' });
  assert.equal(reader.closed, true);
});
