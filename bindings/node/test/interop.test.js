'use strict';
// Interop with Python's pymemcache (serde = pymemcache.serde.pickle_serde):
// values written from Node with the default serde read back as the same type
// in Python, and the reverse; the rendezvous placement matches HashClient.
// Skipped, with the reason, when python3 or pymemcache is missing.

const test = require('node:test');
const assert = require('node:assert/strict');
const { Client } = require('..');
const { startMemcached, uniqueKey: uk, pymemcacheMissing, python } = require('./support');

const missing = pymemcacheMissing();
if (missing) {
  test(`pymemcache interop (skipped: ${missing})`, { skip: missing }, async () => {});
  return;
}

const PY = String.raw`
import json, sys
from pymemcache.client.base import Client
from pymemcache.client.hash import HashClient
from pymemcache import serde

def describe(v):
    if v is None: return None
    if isinstance(v, bool): return ['bool', v]
    if isinstance(v, bytes): return ['bytes', v.hex()]
    if isinstance(v, str): return ['str', v]
    if isinstance(v, int): return ['int', str(v)]
    return ['other', repr(v)]

def build(t, v):
    if t == 'str': return v
    if t == 'int': return int(v)
    if t == 'bytes': return bytes.fromhex(v)
    if t == 'float': return float(v)
    if t == 'dict': return dict(v)
    raise ValueError(t)

req = json.load(sys.stdin)
servers = [tuple(s) for s in req['servers']]
if len(servers) == 1:
    c = Client(servers[0], serde=serde.pickle_serde, connect_timeout=2, timeout=2)
else:
    c = HashClient(servers, serde=serde.pickle_serde, connect_timeout=2, timeout=2)
out = {}
if req['op'] == 'write':
    for k, (t, v) in req['items']:
        assert c.set(k, build(t, v), noreply=False)
elif req['op'] == 'read':
    for k in req['keys']:
        out[k] = describe(c.get(k))
elif req['op'] == 'get_many':
    out = {k: describe(v) for k, v in c.get_many(req['keys']).items()}
print(json.dumps(out))
`;

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

const servers = () => [['127.0.0.1', mc.port]];

test('Node writes str, int and bytes; pymemcache reads the same types', async () => {
  const cases = {
    [uk('s')]: ['some_value', ['str', 'some_value']],
    [uk('u')]: ['ünïcødé 😀', ['str', 'ünïcødé 😀']],
    [uk('e')]: ['', ['str', '']],
    [uk('i')]: [42, ['int', '42']],
    [uk('n')]: [-17, ['int', '-17']],
    [uk('z')]: [0, ['int', '0']],
    [uk('b')]: [2n ** 70n, ['int', (2n ** 70n).toString()]],
    [uk('x')]: [Buffer.from([0, 1, 0xfe, 0xff]), ['bytes', '0001feff']],
    [uk('y')]: [Buffer.alloc(0), ['bytes', '']],
  };
  for (const [k, [v]] of Object.entries(cases)) assert.equal(await c.set(k, v), true);
  const got = python(PY, { servers: servers(), op: 'read', keys: Object.keys(cases) });
  for (const [k, [, want]] of Object.entries(cases)) assert.deepEqual(got[k], want, k);
  const many = python(PY, { servers: servers(), op: 'get_many', keys: Object.keys(cases) });
  assert.deepEqual(Object.keys(many).sort(), Object.keys(cases).sort());
});

test('pymemcache writes str, int and bytes; Node reads the same types', async () => {
  const items = [
    [uk('s'), ['str', 'from python'], 'from python'],
    [uk('u'), ['str', 'ünïcødé 😀'], 'ünïcødé 😀'],
    [uk('i'), ['int', '1234'], 1234],
    [uk('n'), ['int', '-5'], -5],
    [uk('b'), ['int', (2n ** 80n).toString()], 2n ** 80n],
    [uk('x'), ['bytes', '00ff10'], Buffer.from([0, 0xff, 0x10])],
  ];
  python(PY, { servers: servers(), op: 'write', items: items.map(([k, tv]) => [k, tv]) });
  for (const [k, , want] of items) assert.deepEqual(await c.get(k), want, k);
  assert.deepEqual(await c.getMany(items.map(([k]) => k)), Object.fromEntries(items.map(([k, , w]) => [k, w])));
});

test('a value pickled by pymemcache (flags 1) reads back as its raw bytes', async () => {
  const k = uk('p');
  python(PY, { servers: servers(), op: 'write', items: [[k, ['dict', { a: 1 }]]] });
  const raw = new Client(mc.address, { deserializer: (key, value, flags) => flags });
  try {
    assert.equal(await raw.get(k), 1);
  } finally {
    raw.close();
  }
  const v = await c.get(k);
  assert.ok(Buffer.isBuffer(v));
  assert.equal(v[0], 0x80, 'a pickle starts with the PROTO opcode');
});

test('rendezvous placement matches pymemcache HashClient', async () => {
  const second = await startMemcached();
  try {
    const addrs = [mc.address, second.address];
    const pyServers = [['127.0.0.1', mc.port], ['127.0.0.1', second.port]];
    const cluster = new Client(addrs, { defaultNoreply: false });
    const keys = Array.from({ length: 100 }, () => uk('ring'));
    try {
      // Node places, HashClient finds every key on the server it computes
      await cluster.setMany(Object.fromEntries(keys.map((k, i) => [k, i])));
      const got = python(PY, { servers: pyServers, op: 'read', keys });
      for (const [i, k] of keys.entries()) assert.deepEqual(got[k], ['int', String(i)], k);
      // and the reverse
      const keys2 = Array.from({ length: 100 }, () => uk('ring2'));
      python(PY, { servers: pyServers, op: 'write', items: keys2.map((k) => [k, ['str', k]]) });
      assert.deepEqual(await cluster.getMany(keys2), Object.fromEntries(keys2.map((k) => [k, k])));
    } finally {
      cluster.close();
    }
  } finally {
    await second.stop();
  }
});
