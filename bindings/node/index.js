'use strict';
// mcrs for Node: a memcached client over libmcrs (Rust core, C ABI) through an
// N-API addon (src/addon.c) that drives libmcrs's event loop from libuv.
//
// Every method returns a Promise and never blocks the JS thread: requests
// submitted in one turn of the event loop go out in one write per server,
// and their promises settle as the replies come in. See README.md.

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
  'MCRS_STATUS_CANCELLED',
  'MCRS_STATUS_TLS',
  'MCRS_STATUS_AUTH_FAILED',
  'MCRS_STATUS_PARTIAL',
  'MCRS_STATUS_VALUE_TOO_LARGE',
];

/** mcrs_status values by name, e.g. Status.TIMEOUT === 12. */
const Status = Object.freeze(Object.fromEntries(
  STATUS_NAMES.map((n, i) => [n.slice('MCRS_STATUS_'.length), i])
));

const NOREPLY_DEFAULT = 0;
const NOREPLY_ON = 1;
const NOREPLY_OFF = 2;

const DISTRIBUTIONS = Object.freeze({ rendezvous: 0, ketama: 1, xxh3: 2 });

const U32_MAX = 0xffffffff;
const I32_MAX = 0x7fffffff;
const U64_MAX = (1n << 64n) - 1n;

/**
 * A failure reported by libmcrs: `.status` (number), `.code` ('MCRS_STATUS_...'),
 * `.detail` (libmcrs's mcrs_last_error for the request).
 */
class McrsError extends Error {
  constructor(message, status, detail) {
    super(message);
    this.name = 'McrsError';
    this.status = status;
    this.code = STATUS_NAMES[status] || `MCRS_STATUS_${status}`;
    this.detail = detail;
  }
}

/** The flags 2/4 values the addon leaves to JS (past 2^53, or malformed). */
function intDecoder(key, value, flags) {
  return defaultDeserializer(key, value, flags);
}

function addon() {
  return native.load(McrsError, intDecoder);
}

// ---- argument checks (all before any native call) ------------------------------

function checkKey(op, key) {
  if (typeof key !== 'string' && !(key instanceof Uint8Array)) {
    throw new TypeError(`mcrs ${op}: key must be a string or a Buffer, got ${describe(key)}`);
  }
  return key;
}

function keyString(key) {
  return typeof key === 'string' ? key : Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('utf8');
}

function keyList(op, keys) {
  if (!Array.isArray(keys)) {
    throw new TypeError(`mcrs ${op}: keys must be an array of strings or Buffers, got ${describe(keys)}`);
  }
  for (let i = 0; i < keys.length; i++) checkKey(op, keys[i]);
  return keys;
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

/** The options `new Client` knows; any other name is a TypeError (catches typos). */
const OPTION_KEYS = [
  'connectTimeout', 'timeout', 'noDelay', 'keepalive', 'ignoreExc', 'defaultNoreply',
  'keyPrefix', 'allowUnicodeKeys', 'maxPoolSize', 'poolIdleTimeout', 'retryAttempts',
  'retryTimeout', 'deadTimeout', 'distribution', 'serializer', 'deserializer', 'serde',
  'bufferNoreply', 'flushOnRejoin', 'failoverTtl', 'maxValueSize', 'maxTrackedKeys',
  'tls', 'auth',
];

// ---- TLS and memcached -Y authentication options -----------------------------------

const TLS_KEYS = ['ca', 'caFile', 'cert', 'certFile', 'key', 'keyFile', 'serverName', 'verify'];

function nonEmptyString(v) {
  return typeof v === 'string' && v.length > 0 && !v.includes('\0');
}

/**
 * The settings of option `tls`: true (verified against the system roots), false /
 * absent (off), or { ca, caFile, cert, certFile, key, keyFile, serverName, verify }
 * (ca / cert / key: PEM as a string or a Buffer). Errors never show a key's bytes.
 */
function tlsSettings(tls) {
  if (tls === undefined || tls === null || tls === false) return [];
  if (tls === true) return [['tls', true]];
  if (typeof tls !== 'object' || Array.isArray(tls)) {
    throw new TypeError(`mcrs: option tls must be a boolean or an object { ${TLS_KEYS.join(', ')} }, got ${describe(tls)}`);
  }
  for (const k of Object.keys(tls)) {
    if (!TLS_KEYS.includes(k)) {
      throw new TypeError(`mcrs: unknown option tls.${k} (known: ${TLS_KEYS.join(', ')})`);
    }
  }
  const out = [['tls', true]];
  for (const [pem, file, what] of [['ca', 'caFile', 'ca'], ['cert', 'certFile', 'cert'], ['key', 'keyFile', 'key']]) {
    const p = tls[pem];
    const f = tls[file];
    if (p != null && f != null) {
      throw new TypeError(`mcrs: options tls.${pem} and tls.${file} are alternatives; give one`);
    }
    if (p != null) {
      if (!(typeof p === 'string' || p instanceof Uint8Array) || p.length === 0) {
        // the value is not shown: it may be a private key
        throw new TypeError(`mcrs: option tls.${pem} must be PEM as a non-empty string or Buffer, got ${p === null ? 'null' : typeof p}`);
      }
      out.push([`tls_${what}_pem`, p]);
    }
    if (f != null) {
      if (!nonEmptyString(f)) throw new TypeError(`mcrs: option tls.${file} must be a file path (a non-empty string without NUL), got ${describe(f)}`);
      out.push([`tls_${what}_file`, f]);
    }
  }
  if (tls.serverName != null) {
    if (!nonEmptyString(tls.serverName)) throw new TypeError(`mcrs: option tls.serverName must be a non-empty string, got ${describe(tls.serverName)}`);
    out.push(['tls_server_name', tls.serverName]);
  }
  if (tls.verify != null) out.push(['tls_verify', boolArg('Client', 'option tls.verify', tls.verify)]);
  return out;
}

/** The setting of option `auth`: { username, password }. Errors never show the password. */
function authSettings(auth) {
  if (auth === undefined || auth === null) return [];
  if (typeof auth !== 'object' || Array.isArray(auth)) {
    throw new TypeError(`mcrs: option auth must be an object { username, password }, got ${auth === null ? 'null' : typeof auth}`);
  }
  for (const k of Object.keys(auth)) {
    if (k !== 'username' && k !== 'password') {
      throw new TypeError(`mcrs: unknown option auth.${k} (known: username, password)`);
    }
  }
  if (!nonEmptyString(auth.username)) {
    throw new TypeError(`mcrs: option auth.username must be a non-empty string without NUL, got ${describe(auth.username)}`);
  }
  if (!nonEmptyString(auth.password)) {
    throw new TypeError(`mcrs: option auth.password must be a non-empty string without NUL, got ${typeof auth.password}`);
  }
  return [['auth', [auth.username, auth.password]]];
}

function serverSpecs(servers) {
  const list = typeof servers === 'string' ? [servers] : servers;
  const bad = () => new TypeError(
    'mcrs: servers must be a "host:port" string or a non-empty array of "host:port" strings, ' +
    `[host, port] pairs or { host, port, weight } objects; got ${describe(servers)}`
  );
  if (!Array.isArray(list) || list.length === 0) throw bad();
  return list.map((s) => {
    let address;
    let weight = 0;
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
    if (address.length === 0 || address.includes('\0') || Buffer.byteLength(address) > 500) throw bad();
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

function closedError(op) {
  const e = new Error(`mcrs ${op}: the client is closed`);
  e.code = 'ERR_MCRS_CLIENT_CLOSED';
  return e;
}

const STORE_OPS = { set: 0, add: 1, replace: 2, append: 3, prepend: 4 };
const LEASE_STATES = ['hit', 'won', 'stale', 'wait'];
const READ_OPS = { get: 0, gets: 1, gat: 2, gats: 3 };

// ---- the client -------------------------------------------------------------------

/**
 * A memcached client over one server or a cluster (pymemcache's Client and
 * HashClient in one). Every method returns a Promise; argument errors reject
 * too (TypeError / RangeError), before anything is sent.
 */
class Client {
  #n;
  #h = null;
  #serialize;
  #deserialize;
  #raw; // a custom deserializer: the addon hands over bytes and flags

  constructor(servers, options = {}) {
    const specs = serverSpecs(servers);
    const opts = checkOptions('Client', options, OPTION_KEYS);
    const settings = []; // [native setting name, value], all checked before any native call

    if (opts.connectTimeout != null) settings.push(['connect_timeout_ms', msArg('connectTimeout', opts.connectTimeout, 1)]);
    if (opts.timeout != null) settings.push(['timeout_ms', msArg('timeout', opts.timeout, 1)]);
    if (opts.poolIdleTimeout != null) settings.push(['pool_idle_timeout_ms', msArg('poolIdleTimeout', opts.poolIdleTimeout, 0)]);
    if (opts.retryTimeout != null) settings.push(['retry_timeout_ms', msArg('retryTimeout', opts.retryTimeout, 0)]);
    if (opts.deadTimeout != null) settings.push(['dead_timeout_ms', msArg('deadTimeout', opts.deadTimeout, 0)]);
    for (const [name, setting] of [
      ['noDelay', 'no_delay'],
      ['keepalive', 'keepalive'],
      ['ignoreExc', 'ignore_exc'],
      ['defaultNoreply', 'default_noreply'],
      ['allowUnicodeKeys', 'allow_unicode_keys'],
      ['bufferNoreply', 'buffer_noreply'],
    ]) {
      if (opts[name] != null) settings.push([setting, boolArg('Client', `option ${name}`, opts[name])]);
    }
    if (opts.maxPoolSize != null) settings.push(['max_pool_size', intArg('Client', 'option maxPoolSize', opts.maxPoolSize, 1, U32_MAX)]);
    if (opts.retryAttempts != null) settings.push(['retry_attempts', intArg('Client', 'option retryAttempts', opts.retryAttempts, 0, U32_MAX)]);
    if (opts.flushOnRejoin != null) settings.push(['flush_on_rejoin', boolArg('Client', 'option flushOnRejoin', opts.flushOnRejoin)]);
    if (opts.failoverTtl != null) settings.push(['failover_ttl', intArg('Client', 'option failoverTtl (seconds)', opts.failoverTtl, 0, U32_MAX)]);
    if (opts.maxValueSize != null) settings.push(['max_value_size', intArg('Client', 'option maxValueSize (bytes)', opts.maxValueSize, 1, 2 ** 30)]);
    if (opts.maxTrackedKeys != null) settings.push(['max_tracked_keys', intArg('Client', 'option maxTrackedKeys', opts.maxTrackedKeys, 0, U32_MAX)]);
    settings.push(...tlsSettings(opts.tls), ...authSettings(opts.auth));
    if (opts.keyPrefix != null) {
      const p = opts.keyPrefix;
      if (typeof p !== 'string' && !(p instanceof Uint8Array)) throw new TypeError(`mcrs: option keyPrefix must be a string or a Buffer, got ${describe(p)}`);
      if (p.length > 0) settings.push(['key_prefix', p]);
    }
    if (opts.distribution != null) {
      const d = typeof opts.distribution === 'string' && Object.hasOwn(DISTRIBUTIONS, opts.distribution)
        ? DISTRIBUTIONS[opts.distribution] : undefined;
      if (d === undefined) {
        throw new TypeError(`mcrs: option distribution must be one of ${Object.keys(DISTRIBUTIONS).map((x) => `'${x}'`).join(', ')}, got ${describe(opts.distribution)}`);
      }
      settings.push(['distribution', d]);
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
    this.#raw = de !== defaultDeserializer;

    this.#n = addon();
    this.#h = this.#n.create(specs.map((s) => s.address), specs.map((s) => s.weight), settings, this.#raw);
  }

  /** True once close() was called. */
  get closed() {
    return this.#h === null;
  }

  /**
   * This client's own counters for every server, without I/O:
   * { server: { commands, hits, misses, timeouts, connect_failures, closed,
   * protocol_errors, skipped, connects, reconnects, ejections, rejoins, state,
   * keys_tracked } }. Failures count events (one timeout failing a pipeline is one).
   */
  counters() {
    const flat = this.#n.counters(this.#handle('stats'));
    const out = {};
    for (let i = 0; i < flat.length; i += 3) {
      (out[flat[i]] ??= {})[flat[i + 1]] = flat[i + 2];
    }
    return out;
  }

  /** Requests whose promises have not settled yet. */
  get pending() {
    return this.#h === null ? 0 : this.#n.pending(this.#h);
  }

  #handle(op) {
    if (this.#h === null) throw closedError(op);
    return this.#h;
  }

  /** [data (string or bytes), flags] of value. */
  #encode(op, key, value) {
    if (value === undefined) throw new TypeError(`mcrs ${op}: value is missing (undefined)`);
    if (this.#serialize === defaultSerializer && typeof value === 'string') return [value, FLAGS.TEXT];
    const r = this.#serialize(key, value);
    if (!Array.isArray(r) || r.length !== 2) {
      throw new TypeError(`mcrs ${op}: the serializer must return [Buffer|string, flags], got ${describe(r)}`);
    }
    const [data, flags] = r;
    if (typeof data !== 'string' && !(data instanceof Uint8Array)) {
      throw new TypeError(`mcrs ${op}: the serializer returned ${describe(data)} as data; it must be a Buffer or a string`);
    }
    if (!Number.isInteger(flags) || flags < 0 || flags > U32_MAX) {
      throw new TypeError(`mcrs ${op}: the serializer returned flags ${describe(flags)}; they must be an integer in 0..${U32_MAX}`);
    }
    return [data, flags];
  }

  /** The checked { expire, noreply } of a write of `key` (a bare number is the expire). */
  #writeOptions(op, key, opts) {
    this.#handle(op);
    if (typeof opts === 'number') opts = { expire: opts };
    const o = checkOptions(op, opts, ['expire', 'noreply']);
    const exp = expireArg(op, o.expire);
    const nr = noreplyArg(op, o.noreply);
    checkKey(op, key);
    return [exp, nr];
  }

  #store(op, key, value, opts) {
    try {
      const [exp, nr] = this.#writeOptions(op, key, opts);
      const [data, flags] = this.#encode(op, key, value);
      return this.#n.store(this.#handle(op), STORE_OPS[op], key, data, flags, exp, nr);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Stores unconditionally. true (also with noreply, the default). */
  set(key, value, opts) { return this.#store('set', key, value, opts); }
  /** Stores only if absent: false when the key exists (known only without noreply). */
  add(key, value, opts) { return this.#store('add', key, value, opts); }
  /** Stores only if present: false when absent (known only without noreply). */
  replace(key, value, opts) { return this.#store('replace', key, value, opts); }
  /** Appends the serialized bytes to the stored value. */
  append(key, value, opts) { return this.#store('append', key, value, opts); }
  /** Prepends the serialized bytes to the stored value. */
  prepend(key, value, opts) { return this.#store('prepend', key, value, opts); }

  /** Check-and-set: true stored, false changed since read (EXISTS), undefined not found. */
  cas(key, value, casUnique, opts) {
    const op = 'cas';
    try {
      const [exp, nr] = this.#writeOptions(op, key, opts);
      if (casUnique === undefined) throw new TypeError('mcrs cas: the cas unique is missing');
      const c = u64Arg(op, 'cas', casUnique);
      const [data, flags] = this.#encode(op, key, value);
      return this.#n.cas(this.#handle(op), key, data, flags, exp, c, nr);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  #readOne(op, key, exptime, dflt) {
    try {
      const h = this.#handle(op);
      const opc = READ_OPS[op];
      const exp = opc >= 2 ? expireArg(op, exptime) : 0;
      checkKey(op, key);
      const p = this.#n.read(h, opc, key, exp);
      const withCas = (opc & 1) === 1;
      if (this.#raw) {
        const de = this.#deserialize;
        return p.then((r) => {
          if (r === undefined) return withCas ? [dflt, undefined] : dflt;
          const v = de(key, r[0], r[1]);
          return withCas ? [v, r[2]] : v;
        });
      }
      if (dflt === undefined) return p;
      return withCas
        ? p.then((r) => (r[1] === undefined ? [dflt, undefined] : r))
        : p.then((v) => (v === undefined ? dflt : v));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** The value, or `defaultValue` (undefined) on a miss. */
  get(key, defaultValue) { return this.#readOne('get', key, 0, defaultValue); }
  /** [value, cas BigInt], or [defaultValue, undefined] on a miss. */
  gets(key, defaultValue) { return this.#readOne('gets', key, 0, defaultValue); }
  /** Get-and-touch: reads the value and sets its expiry. */
  gat(key, expire = 0, defaultValue) { return this.#readOne('gat', key, expire, defaultValue); }
  /** Get-and-touch with the cas unique: [value, cas] or [defaultValue, undefined]. */
  gats(key, expire = 0, defaultValue) { return this.#readOne('gats', key, expire, defaultValue); }

  // ---- leases: stampede protection (memcached meta commands) ----------------------

  /**
   * Lease get (meta `mg` with vivify-on-miss): { state, token, value, ttl }.
   * state: 'hit' (a fresh value), 'won' (a miss or a stale value, and this
   * caller holds the lease: compute, then leaseSet with the token), 'stale'
   * (a stale value; another caller is recomputing), 'wait' (a miss; another
   * caller holds the lease: retry shortly). token is a BigInt (0n unless
   * 'won'); value is the decoded value for 'hit' and 'stale' (and 'won' on a
   * stale item), else undefined; ttl its seconds left (-1: none). A lease
   * nobody fulfils expires after leaseTtl seconds (default 30).
   */
  leaseGet(key, opts) {
    const op = 'leaseGet';
    try {
      const h = this.#handle(op);
      const o = checkOptions(op, opts, ['leaseTtl']);
      const ttl = intArg(op, 'leaseTtl', o.leaseTtl, 1, I32_MAX, 30);
      checkKey(op, key);
      const de = this.#raw ? this.#deserialize : null;
      return this.#n.leaseGet(h, key, ttl).then((r) => ({
        state: LEASE_STATES[r[0]],
        token: r[1],
        value: r[2] !== undefined && de ? de(key, r[2][0], r[2][1]) : r[2],
        ttl: r[3],
      }));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * Stores the value computed under a lease (meta `ms` with the token): true
   * when stored, false when the lease was lost (the item was invalidated,
   * replaced or expired meanwhile: the value is not stored, so a recompute
   * that lost a race never reads as fresh). Token 0n stores unconditionally.
   * opts: { expire } (or a bare number).
   */
  leaseSet(key, value, token, opts) {
    const op = 'leaseSet';
    try {
      this.#handle(op);
      if (typeof opts === 'number') opts = { expire: opts };
      const o = checkOptions(op, opts, ['expire']);
      const exp = expireArg(op, o.expire);
      checkKey(op, key);
      if (token === undefined) throw new TypeError('mcrs leaseSet: the lease token is missing');
      const t = u64Arg(op, 'token', token);
      const [data, flags] = this.#encode(op, key, value);
      return this.#n.leaseSet(this.#handle(op), key, data, flags, exp, t);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * Marks `key` stale instead of deleting it (meta `md` with `I`): the next
   * leaseGet wins with the stale value, the others get it as 'stale' until
   * the new value lands. staleTtl > 0 also sets how many seconds the stale
   * item lives (0: keeps its TTL). true, or false when the key was not there.
   */
  invalidate(key, staleTtl = 0) {
    const op = 'invalidate';
    try {
      const h = this.#handle(op);
      const t = intArg(op, 'staleTtl', staleTtl, 0, I32_MAX, 0);
      checkKey(op, key);
      return this.#n.invalidate(h, key, t);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * A cached function under a lease: the value of `key`, computed by
   * `await fn(key)` only when this caller wins the lease (so a herd of
   * callers on a cold key makes one call of fn), then stored with leaseSet.
   * 'hit' and 'stale' return the cached value; 'wait' retries with backoff
   * (1 ms, doubling up to 50 ms) for up to opts.wait ms (default 5000), after
   * which fn runs without the lease and its value is returned, not stored.
   * opts: { leaseTtl (s, default 30), expire (s, default 0), wait (ms) }.
   */
  async getOrCompute(key, fn, opts) {
    const op = 'getOrCompute';
    if (typeof fn !== 'function') throw new TypeError(`mcrs ${op}: fn must be a function, got ${describe(fn)}`);
    const o = checkOptions(op, opts, ['leaseTtl', 'expire', 'wait']);
    const leaseTtl = intArg(op, 'leaseTtl', o.leaseTtl, 1, I32_MAX, 30);
    const expire = expireArg(op, o.expire);
    const wait = intArg(op, 'wait', o.wait, 0, U32_MAX, 5000);
    const deadline = Date.now() + wait;
    let backoff = 1;
    for (;;) {
      const l = await this.leaseGet(key, { leaseTtl });
      if (l.state === 'hit' || l.state === 'stale') return l.value;
      if (l.state === 'won') {
        const v = await fn(key);
        await this.leaseSet(key, v, l.token, { expire });
        return v;
      }
      const left = deadline - Date.now();
      if (left <= 0) return fn(key);
      await new Promise((r) => setTimeout(r, Math.min(backoff, left)));
      backoff = Math.min(backoff * 2, 50);
    }
  }

  /**
   * The raw bytes of `key` copied into `buf` (a Buffer or Uint8Array), with
   * no serde: { length, flags } on a hit (the value is buf.subarray(0,
   * length)), undefined on a miss. A value longer than buf.length rejects
   * with an MCRS_STATUS_BUFFER_TOO_SMALL error whose `needed` is its length.
   * Do not touch buf until the promise settles.
   */
  getInto(key, buf) {
    const op = 'getInto';
    try {
      const h = this.#handle(op);
      if (!(buf instanceof Uint8Array)) throw new TypeError(`mcrs getInto: buf must be a Buffer or Uint8Array, got ${describe(buf)}`);
      checkKey(op, key);
      return this.#n.getInto(h, key, buf);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  #readMany(op, keys, withCas) {
    try {
      const h = this.#handle(op);
      keyList(op, keys);
      if (keys.length === 0) return Promise.resolve({});
      const p = this.#n.readMany(h, withCas, keys);
      if (!this.#raw) return p;
      const de = this.#deserialize;
      const decode = (flat) => {
        const result = {};
        for (let i = 0; i < flat.length; i += 4) {
          const key = keys[flat[i]];
          const value = de(key, flat[i + 1], flat[i + 2]);
          Object.defineProperty(result, keyString(key), {
            value: withCas ? [value, flat[i + 3]] : value, enumerable: true, writable: true, configurable: true,
          });
        }
        return result;
      };
      return p.then(decode, (e) => {
        // MCRS_STATUS_PARTIAL carries the hits of the servers that answered
        if (e && Array.isArray(e.hits)) e.hits = decode(e.hits);
        throw e;
      });
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** { key: value } of the hits (misses are omitted); Buffer keys appear as their UTF-8 text. */
  getMany(keys) { return this.#readMany('getMany', keys, false); }
  /** { key: [value, cas] } of the hits. */
  getsMany(keys) { return this.#readMany('getsMany', keys, true); }

  /**
   * Stores many items: `items` is an object, a Map or an array of [key, value]
   * pairs. Resolves to the keys that were not stored ([] with noreply).
   */
  setMany(items, opts) {
    const op = 'setMany';
    try {
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
      if (n === 0) return Promise.resolve([]);
      const keys = new Array(n);
      const datas = new Array(n);
      const flags = new Uint32Array(n);
      for (let i = 0; i < n; i++) {
        const [key, value] = pairs[i];
        keys[i] = checkKey(op, key);
        const [data, f] = this.#encode(op, key, value);
        datas[i] = data;
        flags[i] = f;
      }
      return this.#n.setMany(this.#handle(op), keys, datas, flags, exp, nr)
        .then((failed) => failed.map((i) => pairs[i][0]));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Deletes a key: true when it existed (always true with noreply, the default). */
  delete(key, opts) {
    const op = 'delete';
    try {
      const h = this.#handle(op);
      const nr = noreplyArg(op, checkOptions(op, opts, ['noreply']).noreply);
      checkKey(op, key);
      return this.#n.del(h, key, nr);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Deletes many keys; true (whether or not they existed). */
  deleteMany(keys, opts) {
    const op = 'deleteMany';
    try {
      const h = this.#handle(op);
      const nr = noreplyArg(op, checkOptions(op, opts, ['noreply']).noreply);
      keyList(op, keys);
      if (keys.length === 0) return Promise.resolve(true);
      return this.#n.keysMany(h, 0, keys, 0, nr);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Sets a new expiry on many keys; true (whether or not they existed). */
  touchMany(keys, expire = 0, opts) {
    const op = 'touchMany';
    try {
      const h = this.#handle(op);
      const exp = expireArg(op, expire);
      const nr = noreplyArg(op, checkOptions(op, opts, ['noreply']).noreply);
      keyList(op, keys);
      if (keys.length === 0) return Promise.resolve(true);
      return this.#n.keysMany(h, 1, keys, exp, nr);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  #arith(op, key, delta, opts) {
    try {
      const h = this.#handle(op);
      const nr = noreplyArg(op, checkOptions(op, opts, ['noreply']).noreply);
      checkKey(op, key);
      const d = u64Arg(op, 'delta', delta === undefined ? 1 : delta);
      return this.#n.arith(h, op === 'incr' ? 1 : 0, key, d, nr);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Adds delta (default 1): the new value (Number, or BigInt past 2^53), undefined when missing. */
  incr(key, delta, opts) { return this.#arith('incr', key, delta, opts); }
  /** Subtracts delta (memcached stops at 0). Same results as incr. */
  decr(key, delta, opts) { return this.#arith('decr', key, delta, opts); }

  /** Sets a new expiry: true when found (always true with noreply, the default). */
  touch(key, expire = 0, opts) {
    const op = 'touch';
    try {
      const h = this.#handle(op);
      const exp = expireArg(op, expire);
      const nr = noreplyArg(op, checkOptions(op, opts, ['noreply']).noreply);
      checkKey(op, key);
      return this.#n.touch(h, key, exp, nr);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** `stats [args]` of every server: { "host:port": { name: value } }. */
  stats(...args) {
    const op = 'stats';
    try {
      const h = this.#handle(op);
      for (const a of args) {
        if (typeof a !== 'string') throw new TypeError(`mcrs ${op}: arguments must be strings, got ${describe(a)}`);
        if (a.includes('\0')) throw new TypeError(`mcrs ${op}: arguments must not contain NUL`);
      }
      return this.#n.stats(h, args.join(' ')).then((flat) => {
        const result = {};
        for (let i = 0; i < flat.length; i += 3) {
          let bucket = result[flat[i]];
          if (bucket === undefined || !Object.hasOwn(result, flat[i])) {
            bucket = {};
            Object.defineProperty(result, flat[i], { value: bucket, enumerable: true, writable: true, configurable: true });
          }
          Object.defineProperty(bucket, flat[i + 1], { value: statValue(flat[i + 2]), enumerable: true, writable: true, configurable: true });
        }
        return result;
      });
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** The version string of the first server that answers. */
  version() {
    try {
      return this.#n.version(this.#handle('version'));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Writes the requests submitted so far now instead of at the end of this turn. true. */
  flushBuffers() {
    try {
      return Promise.resolve(this.#n.send(this.#handle('flushBuffers')));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** flush_all on every server, after `delay` seconds (0: now). true. */
  flushAll(delay = 0, noreply) {
    const op = 'flushAll';
    try {
      const h = this.#handle(op);
      const d = intArg(op, 'delay', delay, 0, I32_MAX, 0);
      return this.#n.flushAll(h, d, noreplyPositional(op, noreply));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  #admin(op, which, name, v, noreply) {
    try {
      const h = this.#handle(op);
      const x = intArg(op, name, v, 0, U32_MAX, undefined);
      if (x === undefined) throw new TypeError(`mcrs ${op}: ${name} is missing`);
      return this.#n.admin(h, which, x, noreplyPositional(op, noreply));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** cache_memlimit on every server (megabytes). true. (Runs on libuv's thread pool.) */
  cacheMemlimit(megabytes, noreply) { return this.#admin('cacheMemlimit', 0, 'megabytes', megabytes, noreply); }
  /** verbosity on every server. true. (Runs on libuv's thread pool.) */
  verbosity(level, noreply) { return this.#admin('verbosity', 1, 'level', level, noreply); }

  /**
   * Closes the connections: requests in flight complete on the old ones,
   * later requests open new ones; the client stays usable.
   */
  quit() {
    try {
      this.#n.quit(this.#handle('quit'));
      return Promise.resolve();
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * Frees the client and its connections. Requests in flight reject with
   * MCRS_STATUS_CANCELLED; later calls reject with ERR_MCRS_CLIENT_CLOSED.
   * Idempotent. The returned promise resolves once closed (at once).
   */
  close() {
    if (this.#h !== null) {
      const h = this.#h;
      this.#h = null;
      this.#n.close(h);
    }
    return Promise.resolve();
  }
}

if (typeof Symbol.asyncDispose === 'symbol') {
  Client.prototype[Symbol.asyncDispose] = function asyncDispose() { return this.close(); };
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

/** The linked libmcrs version string (loads the addon). */
function libraryVersion() {
  return addon().libraryVersion();
}

/** The path of the native addon (build/Release/mcrs.node). */
function libraryPath() {
  addon();
  return native.ADDON;
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
