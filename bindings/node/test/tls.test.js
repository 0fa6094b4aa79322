'use strict';
// TLS and memcached -Y authentication against real `memcached -Z` / `-Y`
// servers, with certificates made by openssl at test time (support.makePki):
// each case works, or is refused quickly with the right code.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const util = require('node:util');
const { Client, McrsError } = require('..');
const { startMemcached, uniqueKey: uk, makePki } = require('./support');

let pki;
test.before(() => { pki = makePki(); });
test.after(() => pki.remove());

const base = { connectTimeout: 1000, timeout: 1000, defaultNoreply: false };
const verified = () => ({ caFile: pki.path('ca.pem') });

/** A client of address with the base options, closed by the test's end. */
function client(t, address, opts = {}) {
  const c = new Client(address, { ...base, ...opts });
  t.after(() => c.close());
  return c;
}

/** A server started for the test, stopped at its end. */
async function server(t, args = []) {
  const mc = await startMemcached(args);
  t.after(() => mc.stop());
  return mc;
}

/** Writes and reads back over c: a small value, one of many TLS records, a multi-get. */
async function roundtrip(c) {
  const k = uk('tls');
  assert.equal(await c.get(k), undefined);
  assert.equal(await c.set(k, 'over tls'), true);
  assert.equal(await c.get(k), 'over tls');
  const big = Buffer.alloc(300000, 'x');
  assert.equal(await c.set(`${k}_big`, big), true);
  assert.deepEqual(await c.get(`${k}_big`), big);
  const got = await c.getMany([k, `${k}_missing`, `${k}_big`]);
  assert.deepEqual(Object.keys(got).sort(), [k, `${k}_big`].sort());
}

/** The rejection of a get on c, which must come within `within` ms. */
async function refusal(c, within = 3000) {
  const t0 = Date.now();
  let err = null;
  try {
    await c.get('k');
  } catch (e) {
    err = e;
  }
  const took = Date.now() - t0;
  assert.ok(took < within, `the refusal took ${took} ms`);
  assert.ok(err instanceof McrsError, `expected an McrsError, got ${err}`);
  return err;
}

/** A get on c is refused with MCRS_STATUS_TLS and a detail matching re. */
async function tlsRefusal(c, re) {
  const e = await refusal(c);
  assert.equal(e.code, 'MCRS_STATUS_TLS', e.message);
  assert.match(e.detail, re);
  return e;
}

test('verified TLS by IP and by name', async (t) => {
  const mc = await server(t, pki.serverArgs('server'));
  await roundtrip(client(t, mc.address, { tls: verified() }));
  await roundtrip(client(t, `localhost:${mc.port}`, { tls: verified() }));
  // an explicit server name the certificate holds, the CA as a string and as a Buffer
  await roundtrip(client(t, mc.address, { tls: { ca: pki.read('ca.pem').toString(), serverName: 'localhost' } }));
  await roundtrip(client(t, mc.address, { tls: { ca: pki.read('ca.pem') } }));
});

test('a certificate from an untrusted CA is refused, naming the unknown CA', async (t) => {
  const mc = await server(t, pki.serverArgs('rogue'));
  await tlsRefusal(client(t, mc.address, { tls: verified() }), /unknown CA/);
});

test('a name mismatch is refused', async (t) => {
  const mc = await server(t, pki.serverArgs('server'));
  await tlsRefusal(client(t, mc.address, { tls: { ...verified(), serverName: 'cache.example.com' } }), /name mismatch/);
});

test('an expired certificate is refused', async (t) => {
  const mc = await server(t, pki.serverArgs('expired'));
  await tlsRefusal(client(t, mc.address, { tls: verified() }), /expired/);
});

test('a private CA with only the system roots is refused', async (t) => {
  const mc = await server(t, pki.serverArgs('server'));
  await tlsRefusal(client(t, mc.address, { tls: true }), /unknown CA/);
  await tlsRefusal(client(t, mc.address, { tls: {} }), /unknown CA/);
});

test('a TLS client against a plaintext server fails quickly', async (t) => {
  const mc = await server(t);
  await tlsRefusal(client(t, mc.address, { tls: verified() }), /does not speak TLS|handshake timeout/);
});

test('a plaintext client against a TLS server fails quickly', async (t) => {
  const mc = await server(t, pki.serverArgs('server'));
  const e = await refusal(client(t, mc.address, { timeout: 500 }), 2000);
  // memcached drops a connection whose first bytes are not TLS
  assert.equal(e.code, 'MCRS_STATUS_UNEXPECTED_CLOSE', e.message);
});

test('mutual TLS required, with and without a client certificate', async (t) => {
  const mc = await server(t, pki.serverArgs('server', '-o', 'ssl_verify_mode=2', '-o', `ssl_ca_cert=${pki.path('ca.pem')}`));
  const without = client(t, mc.address, { tls: verified() });
  await tlsRefusal(without, /client certificate/);
  const withCert = client(t, mc.address, {
    tls: { ...verified(), certFile: pki.path('client.pem'), keyFile: pki.path('client.key') },
  });
  await roundtrip(withCert);
  // reconnects work (a resumed session would be refused by this memcached)
  const connects = () => Object.values(withCert.counters())[0].connects;
  const before = connects();
  for (let i = 0; i < 3; i++) {
    await withCert.quit();
    assert.equal(await withCert.get('k'), undefined);
  }
  assert.equal(connects() - before, 3, 'each get after quit() connects again');
  // PEM bytes instead of files
  await roundtrip(client(t, mc.address, {
    tls: { ca: pki.read('ca.pem'), cert: pki.read('client.pem'), key: pki.read('client.key').toString() },
  }));
  // the refusal is remembered: later calls fail at once
  const t0 = Date.now();
  for (let i = 0; i < 20; i++) await tlsRefusal(without, /client certificate/);
  assert.ok(Date.now() - t0 < 1000, `20 refused calls took ${Date.now() - t0} ms`);
});

test('verification off accepts any certificate', async (t) => {
  const mc = await server(t, pki.serverArgs('rogue'));
  await roundtrip(client(t, mc.address, { tls: { verify: false } }));
});

test('a TLS server killed and restarted works again', async (t) => {
  let mc = await startMemcached(pki.serverArgs('server'));
  t.after(() => mc.stop());
  const c = client(t, mc.address, { tls: verified() });
  assert.equal(await c.set('a', '1'), true);
  await mc.kill();
  await assert.rejects(() => c.get('a'), McrsError);
  mc = await mc.restart();
  // the stale connection is dropped and a new handshake made
  let last;
  for (const end = Date.now() + 3000; Date.now() < end;) {
    try {
      last = undefined;
      assert.equal(await c.get('a'), undefined);
      break;
    } catch (e) {
      last = e;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  if (last) throw last;
  assert.equal(await c.set('a', '2'), true);
  assert.equal(await c.get('a'), '2');
});

/** memcached -Y with alice:secret and bob:hunter2 (and more arguments). */
async function authServer(t, more = []) {
  const f = path.join(pki.dir, `auth-${uk()}`);
  fs.writeFileSync(f, 'alice:secret\nbob:hunter2\n');
  return server(t, ['-Y', f, ...more]);
}

test('auth with the right password, a wrong one and none', async (t) => {
  const mc = await authServer(t);
  await roundtrip(client(t, mc.address, { auth: { username: 'alice', password: 'secret' } }));
  assert.equal(await client(t, mc.address, { auth: { username: 'bob', password: 'hunter2' } }).get('k'), undefined);

  const opts = { auth: { username: 'alice', password: 'wrong-password' } };
  const wrong = client(t, mc.address, opts);
  const t0 = Date.now();
  for (let i = 0; i < 20; i++) {
    const e = await refusal(wrong, 1000);
    assert.equal(e.code, 'MCRS_STATUS_AUTH_FAILED', e.message);
    assert.match(e.detail, /alice/);
    assert.ok(!util.inspect(e).includes('wrong-password'), `the password leaked: ${util.inspect(e)}`);
  }
  assert.ok(Date.now() - t0 < 1000, `20 refused calls took ${Date.now() - t0} ms (a retry storm?)`);
  await assert.rejects(() => wrong.set('k', 'v'), (e) => e.code === 'MCRS_STATUS_AUTH_FAILED');
  assert.ok(!util.inspect(wrong, { showHidden: true, depth: 5 }).includes('wrong-password'));

  const none = await refusal(client(t, mc.address), 2000);
  assert.equal(none.code, 'MCRS_STATUS_AUTH_FAILED', none.message);
  assert.match(none.detail, /requires authentication/);
});

test('auth over TLS', async (t) => {
  const mc = await authServer(t, pki.serverArgs('server'));
  await roundtrip(client(t, mc.address, { tls: verified(), auth: { username: 'alice', password: 'secret' } }));
  const e = await refusal(client(t, mc.address, { tls: verified(), auth: { username: 'alice', password: 'nope' } }), 2000);
  assert.equal(e.code, 'MCRS_STATUS_AUTH_FAILED', e.message);
  assert.ok(!e.message.includes('nope') && !e.detail.includes('nope'));
  const none = await refusal(client(t, mc.address, { tls: verified() }), 2000);
  assert.equal(none.code, 'MCRS_STATUS_AUTH_FAILED', none.message);
});

test('bad TLS and auth options are refused by the constructor, never showing the password or key', () => {
  const secret = 'pa55-w0rd';
  const keyPem = pki.read('client.key').toString();
  const cases = [
    [{ tls: 'yes' }, TypeError, /option tls must be a boolean or an object/],
    [{ tls: { cafile: 'x' } }, TypeError, /unknown option tls\.cafile/],
    [{ tls: { ca: 'x', caFile: 'y' } }, TypeError, /alternatives/],
    [{ tls: { ca: 42 } }, TypeError, /tls\.ca must be PEM/],
    [{ tls: { key: '' } }, TypeError, /tls\.key must be PEM/],
    [{ tls: { caFile: 'a\0b' } }, TypeError, /tls\.caFile must be a file path/],
    [{ tls: { serverName: 7 } }, TypeError, /tls\.serverName/],
    [{ tls: { verify: 'no' } }, TypeError, /tls\.verify must be a boolean/],
    [{ tls: { caFile: '/nonexistent/ca.pem' } }, McrsError, /tls\.caFile.*MCRS_STATUS_INVALID_ARGUMENT/],
    [{ tls: { ca: 'not pem' } }, McrsError, /tls\.ca\b.*MCRS_STATUS_INVALID_ARGUMENT/],
    [{ tls: { serverName: 'no spaces allowed' } }, McrsError, /tls\.serverName.*INVALID_ARGUMENT/],
    [{ tls: { certFile: pki.path('client.pem'), key: pki.read('server.key') } }, McrsError, /INVALID_ARGUMENT/],
    [{ tls: { certFile: pki.path('client.pem'), keyFile: pki.path('ca.pem') } }, McrsError, /tls\.keyFile.*INVALID_ARGUMENT/],
    [{ auth: 'alice:secret' }, TypeError, /option auth must be an object/],
    [{ auth: { user: 'alice', password: secret } }, TypeError, /unknown option auth\.user/],
    [{ auth: { username: 'alice' } }, TypeError, /auth\.password must be a non-empty string/],
    [{ auth: { username: 'alice', password: 12345678 } }, TypeError, /auth\.password.*got number$/],
    [{ auth: { username: 'alice', password: `${secret}\0` } }, TypeError, /auth\.password/],
    [{ auth: { username: 'a user', password: secret } }, McrsError, /auth.*INVALID_ARGUMENT/],
    [{ auth: { username: 'alice', password: `${secret}\r\n` } }, McrsError, /auth.*INVALID_ARGUMENT/],
  ];
  for (const [opts, type, re] of cases) {
    assert.throws(() => new Client('127.0.0.1:1', opts), (e) => {
      assert.ok(e instanceof type, `${util.inspect(opts)}: ${e}`);
      assert.match(e.message, re);
      const shown = util.inspect(e);
      assert.ok(!shown.includes(secret) && !shown.includes('12345678'), `the password leaked: ${shown}`);
      assert.ok(!shown.includes(keyPem.split('\n')[1]), `the key leaked: ${shown}`);
      return true;
    }, util.inspect(opts));
  }
  // TLS off: the settings are not used
  new Client('127.0.0.1:1', { tls: false }).close();
  // a client shows none of its settings
  const c = new Client('127.0.0.1:1', { tls: { ca: pki.read('ca.pem'), key: keyPem, cert: pki.read('client.pem') }, auth: { username: 'alice', password: secret } });
  try {
    const shown = util.inspect(c, { showHidden: true, depth: 10 });
    assert.ok(!shown.includes(secret) && !shown.includes(keyPem.split('\n')[1]), shown);
  } finally {
    c.close();
  }
});
