'use strict';
// Server failures: a killed server, a stopped (SIGSTOP) server, ignoreExc.

const test = require('node:test');
const assert = require('node:assert/strict');
const { Client, McrsError } = require('..');
const { startMemcached, uniqueKey: uk } = require('./support');

test('ignoreExc turns read failures against a killed server into misses', async () => {
  const mc = await startMemcached();
  const opts = { connectTimeout: 300, timeout: 300, defaultNoreply: false };
  const ig = new Client(mc.address, { ...opts, ignoreExc: true });
  const strict = new Client(mc.address, opts);
  try {
    const k = uk();
    assert.equal(await ig.set(k, 'v'), true);
    assert.equal(await ig.get(k), 'v');
    await mc.kill();

    assert.equal(await ig.get(k), undefined);
    assert.equal(await ig.get(k, 'fallback'), 'fallback');
    assert.deepEqual(await ig.gets(k), [undefined, undefined]);
    assert.deepEqual(await ig.getMany([k, uk()]), {});
    assert.deepEqual(await ig.getsMany([k]), {});
    assert.equal(await ig.gat(k, 10), undefined);

    // without ignoreExc the same read is an error
    await assert.rejects(() => strict.get(k), (e) => {
      assert.ok(e instanceof McrsError);
      assert.ok(['MCRS_STATUS_CONNECT_FAILED', 'MCRS_STATUS_UNEXPECTED_CLOSE', 'MCRS_STATUS_IO'].includes(e.code), e.code);
      assert.match(e.message, /^mcrs get: /);
      return true;
    });
    await assert.rejects(() => strict.getMany([k]), McrsError);

    // ignoreExc covers reads only (as pymemcache's Client): writes still fail loudly
    await assert.rejects(() => ig.set(k, 'v'), (e) => e instanceof McrsError && e.code === 'MCRS_STATUS_CONNECT_FAILED');
    await assert.rejects(() => ig.incr(k, 1), McrsError);
    await assert.rejects(() => ig.version(), McrsError);
  } finally {
    ig.close();
    strict.close();
    await mc.stop();
  }
});

test('a stopped server gives MCRS_STATUS_TIMEOUT within the timeout, or a miss with ignoreExc', async () => {
  const mc = await startMemcached();
  const strict = new Client(mc.address, { timeout: 200, defaultNoreply: false });
  const ig = new Client(mc.address, { timeout: 200, ignoreExc: true });
  try {
    const k = uk();
    await strict.set(k, 'v');
    assert.equal(await ig.get(k), 'v'); // opens ig's connection while the server runs
    mc.pause();
    let t = Date.now();
    await assert.rejects(() => strict.get(k), (e) => {
      assert.ok(e instanceof McrsError);
      assert.equal(e.code, 'MCRS_STATUS_TIMEOUT');
      assert.equal(e.status, 12);
      assert.match(e.message, /timed out after 200 ms/);
      return true;
    });
    let took = Date.now() - t;
    assert.ok(took >= 150 && took < 2000, `took ${took} ms`);
    t = Date.now();
    assert.equal(await ig.get(k), undefined);
    took = Date.now() - t;
    assert.ok(took < 2000, `took ${took} ms`);
    mc.resume();
    // the client recovers once the server answers again
    assert.equal(await strict.get(k), 'v');
  } finally {
    mc.resume();
    strict.close();
    ig.close();
    await mc.stop();
  }
});

test('nothing listening: MCRS_STATUS_CONNECT_FAILED names the server', async () => {
  const mc = await startMemcached();
  const addr = mc.address;
  await mc.stop();
  const c = new Client(addr, { connectTimeout: 200 });
  try {
    await assert.rejects(() => c.get('k'), (e) => {
      assert.ok(e instanceof McrsError);
      assert.equal(e.code, 'MCRS_STATUS_CONNECT_FAILED');
      assert.ok(e.message.includes(addr), e.message);
      assert.ok(e.detail.includes(addr), e.detail);
      return true;
    });
  } finally {
    c.close();
  }
});
