'use strict';
// mcrs for Node: a memcached client over libmcrs (Rust core, C ABI) through koffi.
//
// Every method is synchronous: it blocks the JS thread for one round trip to
// the server(s), bounded by the `timeout` option. See README.md.

const native = require('./lib/native');
const { FLAGS, defaultSerializer, defaultDeserializer, describe } = require('./lib/serde');

// ---- status codes -----------------------------------------------------------

const STATUS_NAMES = [
  'MCRS_STATUS_OK',
  'MCRS_STATUS_NOT_FOUND',
  'MCRS_STATUS_NOT_STORED',
  'MCRS_STATUS_EXISTS',
  'MCRS_STATUS_INVALID_KEY',
  'MCRS_STATUS_INVALID_ARGUMENT',
  'MCRS_STATUS_NULL_POINTER',
  'MCRS_STATUS_CLIENT_ERROR',
  'MCRS_STATUS_SERVER_ERROR',
  'MCRS_STATUS_UNKNOWN_COMMAND',
  'MCRS_STATUS_CONNECT_FAILED',
  'MCRS_STATUS_IO',
  'MCRS_STATUS_TIMEOUT',
  'MCRS_STATUS_UNEXPECTED_CLOSE',
  'MCRS_STATUS_PROTOCOL',
  'MCRS_STATUS_NO_SERVERS',
  'MCRS_STATUS_BUFFER_TOO_SMALL',
  'MCRS_STATUS_PANIC',
  'MCRS_STATUS_SERVER_DOWN',
];

/** mcrs_status values by name, e.g. Status.TIMEOUT === 12. */
const Status = Object.freeze(Object.fromEntries(
  STATUS_NAMES.map((n, i) => [n.slice('MCRS_STATUS_'.length), i])
));

const OK = Status.OK;
const NOT_FOUND = Status.NOT_FOUND;
const NOT_STORED = Status.NOT_STORED;
const EXISTS = Status.EXISTS;
const BUFFER_TOO_SMALL = Status.BUFFER_TOO_SMALL;

const NOREPLY_DEFAULT = 0;
const NOREPLY_ON = 1;
const NOREPLY_OFF = 2;

const DISTRIBUTIONS = Object.freeze({ rendezvous: 0, ketama: 1, xxh3: 2 });

const U32_MAX = 0xffffffff;
const I32_MAX = 0x7fffffff;
const U64_MAX = (1n << 64n) - 1n;

/** A failure reported by libmcrs: `.status` (number), `.code` ('MCRS_STATUS_...'). */
class McrsError extends Error {
  constructor(message, status, detail) {
    super(message);
    this.name = 'McrsError';
    this.status = status;
    this.code = STATUS_NAMES[status] || `MCRS_STATUS_${status}`;
    this.detail = detail;
  }
}

let errBuf = null;

/** This thread's mcrs_last_error() (koffi sync calls run on the JS thread). */
function lastError(fn) {
  if (errBuf === null) errBuf = Buffer.alloc(512);
  let n = Number(fn.mcrs_last_error(errBuf, errBuf.length));
  if (n >= errBuf.length) {
    errBuf = Buffer.alloc(n + 1);
    n = Number(fn.mcrs_last_error(errBuf, errBuf.length));
  }
  return errBuf.toString('utf8', 0, Math.min(n, errBuf.length - 1));
}

function fail(fn, op, status) {
  const detail = lastError(fn);
  const text = detail || fn.mcrs_status_str(status);
  const code = STATUS_NAMES[status] || `MCRS_STATUS_${status}`;
  return new McrsError(`mcrs ${op}: ${text} (${code})`, status, detail);
}

// ---- argument checks (all before any native call) ------------------------------

// koffi passes an empty Buffer as NULL, which the C API rejects for keys
// (NULL_POINTER); a one-byte buffer with length 0 lets libmcrs report the
// empty key as MCRS_STATUS_INVALID_KEY.
const EMPTY_KEY = Buffer.from(' ');

function keyBytes(op, key) {
  if (typeof key === 'string') return Buffer.from(key, 'utf8');
  if (key instanceof Uint8Array) return key;
  throw new TypeError(`mcrs ${op}: key must be a string or a Buffer, got ${describe(key)}`);
}

function keyPtr(k) {
  return k.length === 0 ? EMPTY_KEY : k;
}

function keyString(key) {
  return typeof key === 'string' ? key : Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('utf8');
}

function keyList(op, keys) {
  if (!Array.isArray(keys)) {
    throw new TypeError(`mcrs ${op}: keys must be an array of strings or Buffers, got ${describe(keys)}`);
  }
  const bufs = new Array(keys.length);
  const ptrs = new Array(keys.length);
  const lens = new Array(keys.length);
  for (let i = 0; i < keys.length; i++) {
    const b = keyBytes(op, keys[i]);
    bufs[i] = b;
    ptrs[i] = keyPtr(b);
    lens[i] = b.length;
  }
  return { bufs, ptrs, lens };
}

function checkOptions(op, opts, allowed) {
  if (opts === undefined || opts === null) return {};
  if (typeof opts !== 'object' || Array.isArray(opts)) {
    throw new TypeError(`mcrs ${op}: options must be an object, got ${describe(opts)}`);
  }
  for (const k of Object.keys(opts)) {
    if (!allowed.includes(k)) {
      throw new TypeError(`mcrs ${op}: unknown option ${JSON.stringify(k)} (known: ${allowed.join(', ')})`);
    }
  }
  return opts;
}

function noreplyArg(op, v) {
  if (v === undefined || v === null) return NOREPLY_DEFAULT;
  if (v === true) return NOREPLY_ON;
  if (v === false) return NOREPLY_OFF;
  throw new TypeError(`mcrs ${op}: noreply must be a boolean, got ${describe(v)}`);
}

/** A trailing `noreply` argument: a boolean, or { noreply } like the other methods. */
function noreplyPositional(op, v) {
  if (v !== null && typeof v === 'object') return noreplyArg(op, checkOptions(op, v, ['noreply']).noreply);
  return noreplyArg(op, v);
}

function intArg(op, name, v, min, max, dflt) {
  if (v === undefined || v === null) return dflt;
  if (typeof v !== 'number' || !Number.isInteger(v)) {
    throw new TypeError(`mcrs ${op}: ${name} must be an integer, got ${describe(v)}`);
  }
  if (v < min || v > max) {
    throw new RangeError(`mcrs ${op}: ${name} must be between ${min} and ${max}, got ${v}`);
  }
  return v;
}

function expireArg(op, v) {
  return intArg(op, 'expire', v, 0, I32_MAX, 0);
}

function boolArg(op, name, v) {
  if (typeof v !== 'boolean') throw new TypeError(`mcrs ${op}: ${name} must be a boolean, got ${describe(v)}`);
  return v;
}

function u64Arg(op, name, v) {
  let b;
  if (typeof v === 'bigint') {
    b = v;
  } else if (typeof v === 'number') {
    if (!Number.isSafeInteger(v)) {
      throw new TypeError(`mcrs ${op}: ${name} must be a non-negative safe integer or a BigInt, got ${describe(v)}`);
    }
    b = BigInt(v);
  } else if (typeof v === 'string' && /^\d+$/.test(v)) {
    b = BigInt(v);
  } else {
    throw new TypeError(`mcrs ${op}: ${name} must be a BigInt, a decimal string or a non-negative integer, got ${describe(v)}`);
  }
  if (b < 0n || b > U64_MAX) throw new RangeError(`mcrs ${op}: ${name} must fit in 64 unsigned bits, got ${b}`);
  return b;
}

function numberOrBigInt(v) {
  // koffi returns uint64 as a Number when it fits, else as a BigInt.
  if (typeof v === 'bigint') return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  return v;
}

/** The options `new Client` knows; any other name is a TypeError (catches typos). */
const OPTION_KEYS = [
  'connectTimeout', 'timeout', 'noDelay', 'keepalive', 'ignoreExc', 'defaultNoreply',
  'keyPrefix', 'allowUnicodeKeys', 'maxPoolSize', 'poolIdleTimeout', 'retryAttempts',
  'retryTimeout', 'deadTimeout', 'distribution', 'serializer', 'deserializer', 'serde',
  'bufferNoreply',
];

function serverSpecs(servers) {
  const list = typeof servers === 'string' ? [servers] : servers;
  const bad = () => new TypeError(
    'mcrs: servers must be a "host:port" string or a non-empty array of "host:port" strings, ' +
    `[host, port] pairs or { host, port, weight } objects; got ${describe(servers)}`
  );
  if (!Array.isArray(list) || list.length === 0) throw bad();
  return list.map((s) => {
    let address;
    let weight;
    if (typeof s === 'string') {
      address = s;
    } else if (Array.isArray(s) && s.length === 2 && typeof s[0] === 'string' && Number.isInteger(s[1])) {
      address = joinHostPort(s[0], s[1]);
    } else if (s !== null && typeof s === 'object' && !Array.isArray(s) && typeof s.host === 'string') {
      address = s.port === undefined ? s.host : joinHostPort(s.host, s.port);
      if (s.weight !== undefined) weight = intArg('Client', 'server weight', s.weight, 1, U32_MAX);
    } else {
      throw bad();
    }
    if (address.length === 0 || address.includes('\0')) throw bad();
    return { address, weight };
  });
}

function joinHostPort(host, port) {
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new TypeError(`mcrs: server port must be an integer in 1..65535, got ${describe(port)}`);
  }
  return host.includes(':') && !host.startsWith('[') ? `[${host}]:${port}` : `${host}:${port}`;
}

function msArg(name, v, min) {
  if (typeof v !== 'number' || !Number.isFinite(v)) {
    throw new TypeError(`mcrs: option ${name} must be a number of milliseconds, got ${describe(v)}`);
  }
  const ms = Math.ceil(v);
  if (ms < min || ms > U32_MAX) {
    throw new RangeError(`mcrs: option ${name} must be between ${min} and ${U32_MAX} ms, got ${v}`);
  }
  return ms;
}

// Frees clients that were never closed once they are garbage collected.
const finalizer = new FinalizationRegistry((held) => {
  held.fn.mcrs_client_free(held.handle);
});

// ---- the client -------------------------------------------------------------------

/**
 * A memcached client over one server or a cluster (pymemcache's Client and
 * HashClient in one). All methods are synchronous.
 */
class Client {
  #fn;
  #koffi;
  #h = null;
  #serialize;
  #deserialize;

  constructor(servers, options = {}) {
    const specs = serverSpecs(servers);
    const opts = checkOptions('Client', options, OPTION_KEYS);
    const setters = []; // [cfg setter name, ...args], all checked before any native call

    if (opts.connectTimeout != null) setters.push(['mcrs_config_set_connect_timeout_ms', msArg('connectTimeout', opts.connectTimeout, 1)]);
    if (opts.timeout != null) setters.push(['mcrs_config_set_timeout_ms', msArg('timeout', opts.timeout, 1)]);
    if (opts.poolIdleTimeout != null) setters.push(['mcrs_config_set_pool_idle_timeout_ms', msArg('poolIdleTimeout', opts.poolIdleTimeout, 0)]);
    if (opts.retryTimeout != null) setters.push(['mcrs_config_set_retry_timeout_ms', msArg('retryTimeout', opts.retryTimeout, 0)]);
    if (opts.deadTimeout != null) setters.push(['mcrs_config_set_dead_timeout_ms', msArg('deadTimeout', opts.deadTimeout, 0)]);
    for (const [name, setter] of [
      ['noDelay', 'mcrs_config_set_no_delay'],
      ['keepalive', 'mcrs_config_set_keepalive'],
      ['ignoreExc', 'mcrs_config_set_ignore_exc'],
      ['defaultNoreply', 'mcrs_config_set_default_noreply'],
      ['allowUnicodeKeys', 'mcrs_config_set_allow_unicode_keys'],
      ['bufferNoreply', 'mcrs_config_set_buffer_noreply'],
    ]) {
      if (opts[name] != null) setters.push([setter, boolArg('Client', `option ${name}`, opts[name])]);
    }
    if (opts.maxPoolSize != null) setters.push(['mcrs_config_set_max_pool_size', intArg('Client', 'option maxPoolSize', opts.maxPoolSize, 1, U32_MAX)]);
    if (opts.retryAttempts != null) setters.push(['mcrs_config_set_retry_attempts', intArg('Client', 'option retryAttempts', opts.retryAttempts, 0, U32_MAX)]);
    if (opts.keyPrefix != null) {
      let p = opts.keyPrefix;
      if (typeof p === 'string') p = Buffer.from(p, 'utf8');
      else if (!(p instanceof Uint8Array)) throw new TypeError(`mcrs: option keyPrefix must be a string or a Buffer, got ${describe(p)}`);
      if (p.length > 0) setters.push(['mcrs_config_set_key_prefix', p, p.length]);
    }
    if (opts.distribution != null) {
      const d = typeof opts.distribution === 'string' && Object.hasOwn(DISTRIBUTIONS, opts.distribution)
        ? DISTRIBUTIONS[opts.distribution] : undefined;
      if (d === undefined) {
        throw new TypeError(`mcrs: option distribution must be one of ${Object.keys(DISTRIBUTIONS).map((x) => `'${x}'`).join(', ')}, got ${describe(opts.distribution)}`);
      }
      setters.push(['mcrs_config_set_distribution', d]);
    }

    let ser = defaultSerializer;
    let de = defaultDeserializer;
    if (opts.serde != null) {
      const s = opts.serde;
      if (typeof s !== 'object' || typeof s.serialize !== 'function' || typeof s.deserialize !== 'function') {
        throw new TypeError('mcrs: option serde must be an object with serialize(key, value) and deserialize(key, buffer, flags) methods');
      }
      ser = s.serialize.bind(s);
      de = s.deserialize.bind(s);
    }
    if (opts.serializer != null) {
      if (typeof opts.serializer !== 'function') throw new TypeError(`mcrs: option serializer must be a function (key, value) => [Buffer|string, flags], got ${describe(opts.serializer)}`);
      ser = opts.serializer;
    }
    if (opts.deserializer != null) {
      if (typeof opts.deserializer !== 'function') throw new TypeError(`mcrs: option deserializer must be a function (key, buffer, flags) => value, got ${describe(opts.deserializer)}`);
      de = opts.deserializer;
    }
    this.#serialize = ser;
    this.#deserialize = de;

    const { fn, koffi } = native.load();
    this.#fn = fn;
    this.#koffi = koffi;
    const cfg = fn.mcrs_config_new();
    if (!cfg) throw new McrsError('mcrs Client: mcrs_config_new failed', Status.PANIC, '');
    try {
      for (const { address, weight } of specs) {
        const st = weight === undefined
          ? fn.mcrs_config_add_server(cfg, address)
          : fn.mcrs_config_add_server_weighted(cfg, address, weight);
        if (st !== OK) throw fail(fn, `Client (server ${JSON.stringify(address)})`, st);
      }
      for (const [name, ...args] of setters) {
        const st = fn[name](cfg, ...args);
        if (st !== OK) throw fail(fn, `Client (${name.replace('mcrs_config_set_', '')})`, st);
      }
      const out = [null];
      const st = fn.mcrs_client_new(cfg, out);
      if (st !== OK) throw fail(fn, 'Client', st);
      this.#h = out[0];
    } finally {
      fn.mcrs_config_free(cfg);
    }
    finalizer.register(this, { fn, handle: this.#h }, this);
  }

  /** True once close() was called. */
  get closed() {
    return this.#h === null;
  }

  #handle(op) {
    if (this.#h === null) {
      const e = new Error(`mcrs ${op}: the client is closed`);
      e.code = 'ERR_MCRS_CLIENT_CLOSED';
      throw e;
    }
    return this.#h;
  }

  #encode(op, key, value) {
    if (value === undefined) throw new TypeError(`mcrs ${op}: value is missing (undefined)`);
    const r = this.#serialize(key, value);
    if (!Array.isArray(r) || r.length !== 2) {
      throw new TypeError(`mcrs ${op}: the serializer must return [Buffer|string, flags], got ${describe(r)}`);
    }
    let [data, flags] = r;
    if (typeof data === 'string') data = Buffer.from(data, 'utf8');
    else if (!(data instanceof Uint8Array)) {
      throw new TypeError(`mcrs ${op}: the serializer returned ${describe(data)} as data; it must be a Buffer or a string`);
    }
    if (!Number.isInteger(flags) || flags < 0 || flags > U32_MAX) {
      throw new TypeError(`mcrs ${op}: the serializer returned flags ${describe(flags)}; they must be an integer in 0..${U32_MAX}`);
    }
    return [data, flags];
  }

  /** Copies a C mcrs_value out: [Buffer, flags, cas BigInt]. */
  #read(v) {
    const fn = this.#fn;
    const len = Number(fn.mcrs_value_len(v));
    let data;
    if (len === 0) {
      data = Buffer.alloc(0);
    } else {
      data = Buffer.from(new Uint8Array(this.#koffi.view(fn.mcrs_value_data(v), len)));
    }
    return [data, fn.mcrs_value_flags(v), BigInt(fn.mcrs_value_cas(v))];
  }

  #store(op, cfn, key, value, opts) {
    this.#handle(op); // closed? fail before running the serializer
    if (typeof opts === 'number') opts = { expire: opts };
    const o = checkOptions(op, opts, ['expire', 'noreply']);
    const exp = expireArg(op, o.expire);
    const nr = noreplyArg(op, o.noreply);
    const k = keyBytes(op, key);
    const [data, flags] = this.#encode(op, key, value);
    // the serializer is user code: it may have closed the client
    const st = this.#fn[cfn](this.#handle(op), keyPtr(k), k.length, data, data.length, flags, exp, nr);
    if (st === OK) return true;
    if (st === NOT_STORED) return false;
    throw fail(this.#fn, op, st);
  }

  /** Stores unconditionally. true (also with noreply, the default). */
  set(key, value, opts) { return this.#store('set', 'mcrs_client_set', key, value, opts); }
  /** Stores only if absent: false when the key exists (known only without noreply). */
  add(key, value, opts) { return this.#store('add', 'mcrs_client_add', key, value, opts); }
  /** Stores only if present: false when absent (known only without noreply). */
  replace(key, value, opts) { return this.#store('replace', 'mcrs_client_replace', key, value, opts); }
  /** Appends the serialized bytes to the stored value. */
  append(key, value, opts) { return this.#store('append', 'mcrs_client_append', key, value, opts); }
  /** Prepends the serialized bytes to the stored value. */
  prepend(key, value, opts) { return this.#store('prepend', 'mcrs_client_prepend', key, value, opts); }

  /** Check-and-set: true stored, false changed since read (EXISTS), undefined not found. */
  cas(key, value, casUnique, opts) {
    const op = 'cas';
    this.#handle(op);
    if (typeof opts === 'number') opts = { expire: opts };
    const o = checkOptions(op, opts, ['expire', 'noreply']);
    const exp = expireArg(op, o.expire);
    const nr = noreplyArg(op, o.noreply);
    const k = keyBytes(op, key);
    if (casUnique === undefined) throw new TypeError('mcrs cas: the cas unique is missing');
    const c = u64Arg(op, 'cas', casUnique);
    const [data, flags] = this.#encode(op, key, value);
    const st = this.#fn.mcrs_client_cas(this.#handle(op), keyPtr(k), k.length, data, data.length, flags, exp, c, nr);
    if (st === OK) return true;
    if (st === EXISTS) return false;
    if (st === NOT_FOUND) return undefined;
    throw fail(this.#fn, op, st);
  }

  #readOne(op, cfn, key, touch, exptime, withCas, dflt) {
    const h = this.#handle(op);
    const exp = touch ? expireArg(op, exptime) : 0;
    const k = keyBytes(op, key);
    const out = [null];
    const st = touch
      ? this.#fn[cfn](h, keyPtr(k), k.length, exp, out)
      : this.#fn[cfn](h, keyPtr(k), k.length, out);
    if (st === NOT_FOUND) return withCas ? [dflt, undefined] : dflt;
    if (st !== OK) throw fail(this.#fn, op, st);
    let data, flags, cas;
    try {
      [data, flags, cas] = this.#read(out[0]);
    } finally {
      this.#fn.mcrs_value_free(out[0]);
    }
    const value = this.#deserialize(key, data, flags);
    return withCas ? [value, cas] : value;
  }

  /** The value, or `defaultValue` (undefined) on a miss. */
  get(key, defaultValue) { return this.#readOne('get', 'mcrs_client_get', key, false, 0, false, defaultValue); }
  /**
   * The raw bytes of `key` copied into `buf` (a Buffer or Uint8Array), with
   * no serde and no allocation: { length, flags } on a hit (the value is
   * buf.subarray(0, length)), undefined on a miss. A value longer than
   * buf.length throws an MCRS_STATUS_BUFFER_TOO_SMALL error whose `needed`
   * is the value's length (the item was read and dropped).
   */
  getInto(key, buf) {
    const op = 'getInto';
    const h = this.#handle(op);
    if (!(buf instanceof Uint8Array)) throw new TypeError(`mcrs getInto: buf must be a Buffer or Uint8Array, got ${describe(buf)}`);
    const k = keyBytes(op, key);
    const len = new BigUint64Array(1);
    const flags = new Uint32Array(1);
    const st = this.#fn.mcrs_client_get_into(h, keyPtr(k), k.length, buf, buf.length, len, flags);
    if (st === NOT_FOUND) return undefined;
    if (st !== OK) {
      const e = fail(this.#fn, op, st);
      if (st === BUFFER_TOO_SMALL) e.needed = Number(len[0]);
      throw e;
    }
    return { length: Number(len[0]), flags: flags[0] };
  }

  /** [value, cas BigInt], or [defaultValue, undefined] on a miss. */
  gets(key, defaultValue) { return this.#readOne('gets', 'mcrs_client_gets', key, false, 0, true, defaultValue); }
  /** Get-and-touch: reads the value and sets its expiry. */
  gat(key, expire = 0, defaultValue) { return this.#readOne('gat', 'mcrs_client_gat', key, true, expire, false, defaultValue); }
  /** Get-and-touch with the cas unique: [value, cas] or [defaultValue, undefined]. */
  gats(key, expire = 0, defaultValue) { return this.#readOne('gats', 'mcrs_client_gats', key, true, expire, true, defaultValue); }

  #readMany(op, cfn, keys, withCas) {
    const h = this.#handle(op);
    const { ptrs, lens } = keyList(op, keys);
    const result = {};
    if (keys.length === 0) return result;
    const out = [null];
    const st = this.#fn[cfn](h, ptrs, lens, keys.length, out);
    if (st !== OK) throw fail(this.#fn, op, st);
    const vs = out[0];
    const hits = [];
    try {
      for (let i = 0; i < keys.length; i++) {
        const v = this.#fn.mcrs_values_get(vs, i);
        if (v) hits.push([keys[i], this.#read(v)]);
      }
    } finally {
      this.#fn.mcrs_values_free(vs);
    }
    for (const [key, [data, flags, cas]] of hits) {
      const value = this.#deserialize(key, data, flags);
      const name = keyString(key);
      const entry = withCas ? [value, cas] : value;
      if (name === '__proto__') {
        Object.defineProperty(result, name, { value: entry, enumerable: true, writable: true, configurable: true });
      } else {
        result[name] = entry;
      }
    }
    return result;
  }

  /** { key: value } of the hits (misses are omitted); Buffer keys appear as their UTF-8 text. */
  getMany(keys) { return this.#readMany('getMany', 'mcrs_client_get_many', keys, false); }
  /** { key: [value, cas] } of the hits. */
  getsMany(keys) { return this.#readMany('getsMany', 'mcrs_client_gets_many', keys, true); }

  /**
   * Stores many items: `items` is an object, a Map or an array of [key, value]
   * pairs. Returns the keys that were not stored ([] with noreply).
   */
  setMany(items, opts) {
    const op = 'setMany';
    this.#handle(op);
    if (typeof opts === 'number') opts = { expire: opts };
    const o = checkOptions(op, opts, ['expire', 'noreply']);
    const exp = expireArg(op, o.expire);
    const nr = noreplyArg(op, o.noreply);
    let pairs;
    if (items instanceof Map) pairs = [...items.entries()];
    else if (Array.isArray(items)) {
      pairs = items;
      for (const p of pairs) {
        if (!Array.isArray(p) || p.length !== 2) throw new TypeError(`mcrs ${op}: an array of items must hold [key, value] pairs, got ${describe(p)}`);
      }
    } else if (items !== null && typeof items === 'object') pairs = Object.entries(items);
    else throw new TypeError(`mcrs ${op}: items must be an object, a Map or an array of [key, value] pairs, got ${describe(items)}`);
    const n = pairs.length;
    if (n === 0) return [];
    const kp = new Array(n), kl = new Array(n), vp = new Array(n), vl = new Array(n);
    const flags = new Uint32Array(n);
    for (let i = 0; i < n; i++) {
      const [key, value] = pairs[i];
      const k = keyBytes(op, key);
      kp[i] = keyPtr(k);
      kl[i] = k.length;
      const [data, f] = this.#encode(op, key, value);
      vp[i] = data;
      vl[i] = data.length;
      flags[i] = f;
    }
    const failed = new BigUint64Array(n);
    const nFailed = new BigUint64Array(1);
    const st = this.#fn.mcrs_client_set_many(this.#handle(op), kp, kl, vp, vl, flags, n, exp, nr, failed, nFailed);
    if (st === OK) return [];
    if (st !== NOT_STORED) throw fail(this.#fn, op, st);
    const res = [];
    for (let i = 0; i < Number(nFailed[0]); i++) res.push(pairs[Number(failed[i])][0]);
    return res;
  }

  /** Deletes a key: true when it existed (always true with noreply, the default). */
  delete(key, opts) {
    const op = 'delete';
    const h = this.#handle(op);
    const o = checkOptions(op, opts, ['noreply']);
    const nr = noreplyArg(op, o.noreply);
    const k = keyBytes(op, key);
    const st = this.#fn.mcrs_client_delete(h, keyPtr(k), k.length, nr);
    if (st === OK) return true;
    if (st === NOT_FOUND) return false;
    throw fail(this.#fn, op, st);
  }

  /** Deletes many keys; true (whether or not they existed). */
  deleteMany(keys, opts) {
    const op = 'deleteMany';
    const h = this.#handle(op);
    const o = checkOptions(op, opts, ['noreply']);
    const nr = noreplyArg(op, o.noreply);
    const { ptrs, lens } = keyList(op, keys);
    if (keys.length === 0) return true;
    const st = this.#fn.mcrs_client_delete_many(h, ptrs, lens, keys.length, nr);
    if (st !== OK) throw fail(this.#fn, op, st);
    return true;
  }

  #arith(op, cfn, key, delta, opts) {
    const h = this.#handle(op);
    const o = checkOptions(op, opts, ['noreply']);
    const nr = noreplyArg(op, o.noreply);
    const k = keyBytes(op, key);
    const d = u64Arg(op, 'delta', delta === undefined ? 1 : delta);
    const out = new BigUint64Array(1);
    const st = this.#fn[cfn](h, keyPtr(k), k.length, d, nr, out);
    if (st === NOT_FOUND) return undefined;
    if (st !== OK) throw fail(this.#fn, op, st);
    if (nr === NOREPLY_ON) return undefined;
    return numberOrBigInt(out[0]);
  }

  /** Adds delta (default 1): the new value (Number, or BigInt past 2^53), undefined when missing. */
  incr(key, delta, opts) { return this.#arith('incr', 'mcrs_client_incr', key, delta, opts); }
  /** Subtracts delta (memcached stops at 0). Same results as incr. */
  decr(key, delta, opts) { return this.#arith('decr', 'mcrs_client_decr', key, delta, opts); }

  /** Sets a new expiry: true when found (always true with noreply, the default). */
  touch(key, expire = 0, opts) {
    const op = 'touch';
    const h = this.#handle(op);
    const exp = expireArg(op, expire);
    const o = checkOptions(op, opts, ['noreply']);
    const nr = noreplyArg(op, o.noreply);
    const k = keyBytes(op, key);
    const st = this.#fn.mcrs_client_touch(h, keyPtr(k), k.length, exp, nr);
    if (st === OK) return true;
    if (st === NOT_FOUND) return false;
    throw fail(this.#fn, op, st);
  }

  /** `stats [args]` of every server: { "host:port": { name: value } }. */
  stats(...args) {
    const op = 'stats';
    const h = this.#handle(op);
    for (const a of args) {
      if (typeof a !== 'string') throw new TypeError(`mcrs ${op}: arguments must be strings, got ${describe(a)}`);
      if (a.includes('\0')) throw new TypeError(`mcrs ${op}: arguments must not contain NUL`);
    }
    const out = [null];
    const st = this.#fn.mcrs_client_stats(h, args.join(' '), out);
    if (st !== OK) throw fail(this.#fn, op, st);
    const s = out[0];
    const result = {};
    try {
      const n = Number(this.#fn.mcrs_stats_len(s));
      const server = [null], name = [null], value = [null];
      for (let i = 0; i < n; i++) {
        const st2 = this.#fn.mcrs_stats_get(s, i, server, name, value);
        if (st2 !== OK) throw fail(this.#fn, op, st2);
        let bucket = result[server[0]];
        if (bucket === undefined) {
          bucket = {};
          Object.defineProperty(result, server[0], { value: bucket, enumerable: true, writable: true, configurable: true });
        }
        Object.defineProperty(bucket, name[0], { value: statValue(value[0]), enumerable: true, writable: true, configurable: true });
      }
    } finally {
      this.#fn.mcrs_stats_free(s);
    }
    return result;
  }

  /** The version string of the first server that answers. */
  version() {
    const op = 'version';
    const h = this.#handle(op);
    let cap = 256;
    for (;;) {
      const buf = Buffer.alloc(cap);
      const st = this.#fn.mcrs_client_version(h, buf, cap);
      if (st === OK) {
        const end = buf.indexOf(0);
        return buf.toString('utf8', 0, end < 0 ? cap : end);
      }
      if (st !== BUFFER_TOO_SMALL || cap >= 1 << 20) throw fail(this.#fn, op, st);
      cap *= 16;
    }
  }

  /** Writes the noreply commands held back by the bufferNoreply option. true. */
  flushBuffers() {
    const op = 'flushBuffers';
    const st = this.#fn.mcrs_client_flush_buffers(this.#handle(op));
    if (st !== OK) throw fail(this.#fn, op, st);
    return true;
  }

  /** flush_all on every server, after `delay` seconds (0: now). true. */
  flushAll(delay = 0, noreply) {
    const op = 'flushAll';
    const h = this.#handle(op);
    const d = intArg(op, 'delay', delay, 0, I32_MAX, 0);
    const nr = noreplyPositional(op, noreply);
    const st = this.#fn.mcrs_client_flush_all(h, d, nr);
    if (st !== OK) throw fail(this.#fn, op, st);
    return true;
  }

  /** cache_memlimit on every server (megabytes). true. */
  cacheMemlimit(megabytes, noreply) {
    const op = 'cacheMemlimit';
    const h = this.#handle(op);
    const mb = intArg(op, 'megabytes', megabytes, 0, U32_MAX, undefined);
    if (mb === undefined) throw new TypeError(`mcrs ${op}: megabytes is missing`);
    const st = this.#fn.mcrs_client_cache_memlimit(h, mb, noreplyPositional(op, noreply));
    if (st !== OK) throw fail(this.#fn, op, st);
    return true;
  }

  /** verbosity on every server. true. */
  verbosity(level, noreply) {
    const op = 'verbosity';
    const h = this.#handle(op);
    const lv = intArg(op, 'level', level, 0, U32_MAX, undefined);
    if (lv === undefined) throw new TypeError(`mcrs ${op}: level is missing`);
    const st = this.#fn.mcrs_client_verbosity(h, lv, noreplyPositional(op, noreply));
    if (st !== OK) throw fail(this.#fn, op, st);
    return true;
  }

  /** Closes the idle connections (sending quit); the client stays usable. */
  quit() {
    const op = 'quit';
    const h = this.#handle(op);
    const st = this.#fn.mcrs_client_quit(h);
    if (st !== OK) throw fail(this.#fn, op, st);
  }

  /** Frees the client and its connections. Idempotent; later calls throw. */
  close() {
    if (this.#h === null) return;
    const h = this.#h;
    this.#h = null;
    finalizer.unregister(this);
    this.#fn.mcrs_client_free(h);
  }
}

if (typeof Symbol.dispose === 'symbol') {
  Client.prototype[Symbol.dispose] = function dispose() { this.close(); };
}

const INT_RE = /^-?\d+$/;
const FLOAT_RE = /^-?\d+\.\d+$/;

/** Stats values: integers and decimals as Numbers (when exact enough), the rest as strings. */
function statValue(s) {
  if (INT_RE.test(s)) {
    const n = Number(s);
    return Number.isSafeInteger(n) ? n : s;
  }
  if (FLOAT_RE.test(s)) return Number(s);
  return s;
}

/** The loaded libmcrs version string (loads the library). */
function libraryVersion() {
  return native.load().fn.mcrs_version();
}

/** The path (or name) libmcrs was loaded from (loads the library). */
function libraryPath() {
  return native.load().path;
}

module.exports = {
  Client,
  HashClient: Client,
  McrsError,
  Status,
  FLAGS,
  defaultSerializer,
  defaultDeserializer,
  libraryVersion,
  libraryPath,
};
