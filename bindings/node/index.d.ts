/// <reference types="node" />
// Types for mcrs, the Node binding of libmcrs. Every method returns a Promise
// (argument errors reject too); nothing blocks the event loop.

/** A key: a string (sent as UTF-8) or raw bytes. */
export type Key = string | Uint8Array;

/** A server: "host:port", "host" (port 11211), "[v6]:port", "unix:/path" or "/path"; or [host, port]; or { host, port, weight }. */
export type ServerSpec = string | [host: string, port: number] | { host: string; port?: number; weight?: number };

/** serializer(key, value) -> [bytes, flags] (pymemcache's hook). */
export type Serializer = (key: Key, value: any) => [Uint8Array | string, number];
/** deserializer(key, bytes, flags) -> value (pymemcache's hook). */
export type Deserializer = (key: Key, value: Buffer, flags: number) => any;

/** A value the default serializer accepts: Buffer/Uint8Array (flags 0), string (16), integer Number or BigInt (2). */
export type DefaultValue = Buffer | Uint8Array | string | number | bigint;

/** TLS of every connection (option `tls`); PEM as a string or bytes, or a file path. */
export interface TlsOptions {
  /** CA certificates (PEM) that sign the servers' certificates, instead of the system roots. */
  ca?: string | Uint8Array;
  /** A PEM file of them (instead of `ca`). */
  caFile?: string;
  /** The client's certificate chain (PEM), for servers that demand mutual TLS; needs `key`/`keyFile`. */
  cert?: string | Uint8Array;
  certFile?: string;
  /** The client certificate's private key (PEM: PKCS#8, PKCS#1 or SEC1). */
  key?: string | Uint8Array;
  keyFile?: string;
  /** The DNS name or IP address the certificates must hold, and the SNI (default: each address's host). */
  serverName?: string;
  /** Verify the servers' certificates (default true; false encrypts without authenticating the server). */
  verify?: boolean;
}

/** memcached -Y login (option `auth`). */
export interface AuthOptions {
  username: string;
  password: string;
}

export interface ClientOptions {
  /** TLS on every connection: true (verified with the system roots) or its settings (default off). Failures reject with MCRS_STATUS_TLS. */
  tls?: boolean | TlsOptions;
  /** Log in on every new connection (memcached -Y), over TLS too; a refusal rejects with MCRS_STATUS_AUTH_FAILED. */
  auth?: AuthOptions;
  /** Bound on establishing a connection, in ms (default 1000). */
  connectTimeout?: number;
  /** Bound on each operation and on waiting for a pooled connection, in ms (default 1000). */
  timeout?: number;
  /** TCP_NODELAY (default true). */
  noDelay?: boolean;
  /** SO_KEEPALIVE (default false). */
  keepalive?: boolean;
  /** Read failures (get, gets, gat, gats, getMany, getsMany) become misses (default false). */
  ignoreExc?: boolean;
  /** noreply default for set/add/replace/append/prepend/delete/touch/flushAll/verbosity (default true). */
  defaultNoreply?: boolean;
  /** Prepended to every key on the wire; counts toward the 250-byte limit. */
  keyPrefix?: string | Uint8Array;
  /** Allow UTF-8 (non-ASCII) keys (default false). */
  allowUnicodeKeys?: boolean;
  /** Accepted for compatibility; requests are always written once per turn of the event loop. */
  bufferNoreply?: boolean;
  /** Most connections per server (default 32). */
  maxPoolSize?: number;
  /** Idle pooled connections older than this (ms) are closed (0: never; the default). */
  poolIdleTimeout?: number;
  /** Failures of a server tolerated before it leaves the ring (cluster only; default 2). */
  retryAttempts?: number;
  /** Minimum ms between retries of a failing server (cluster only; default 1000). */
  retryTimeout?: number;
  /** How long (ms) a removed server stays out before it is probed (cluster only; default 60000). */
  deadTimeout?: number;
  /** Flush a server that rejoins the ring instead of deleting only the keys routed away from it (cluster only; default false). */
  flushOnRejoin?: boolean;
  /** Cap, in seconds, on the exptime of writes routed to a stand-in while their server is out (cluster only; default 60; 0: none). */
  failoverTtl?: number;
  /** Largest value accepted from a server, in bytes (default and most 1 GiB); larger replies reject with VALUE_TOO_LARGE. */
  maxValueSize?: number;
  /** Keys remembered per server while it is out of the ring before it must be flushed on rejoin (cluster only; default 100000). */
  maxTrackedKeys?: number;
  /** How keys are spread over several servers (default 'rendezvous', as pymemcache's HashClient). */
  distribution?: 'rendezvous' | 'ketama' | 'xxh3';
  serializer?: Serializer;
  deserializer?: Deserializer;
  /** pymemcache-style serde object; serializer/deserializer take precedence. */
  serde?: { serialize: Serializer; deserialize: Deserializer };
}

/** What leaseGet found. */
export interface Lease<T = any> {
  /** hit: fresh; won: compute and leaseSet; stale: a stale value, another caller recomputes; wait: retry shortly. */
  state: 'hit' | 'won' | 'stale' | 'wait';
  /** The lease token for 'won' (pass it to leaseSet); 0n otherwise. */
  token: bigint;
  /** The value for 'hit' and 'stale' (and 'won' on a stale item). */
  value: T | undefined;
  /** Seconds of TTL the value had left (-1: none; -2: no value). */
  ttl: number;
}

export interface GetOrComputeOptions {
  /** Seconds a lease lasts when its holder never sets (default 30). */
  leaseTtl?: number;
  /** Expiry of the stored value in seconds (default 0: none). */
  expire?: number;
  /** Milliseconds a WAIT is retried before fn runs without the lease (default 5000). */
  wait?: number;
}

export interface StoreOptions {
  /** Seconds (up to 30 days), else a unix time; 0 (default) never expires. */
  expire?: number;
  /** Do not wait for the reply (default: the client's defaultNoreply; false for cas). */
  noreply?: boolean;
}

export interface NoreplyOptions {
  noreply?: boolean;
}

/** mcrs_status values by name (Status.TIMEOUT === 12). */
export declare const Status: Readonly<{
  OK: 0; NOT_FOUND: 1; NOT_STORED: 2; EXISTS: 3; INVALID_KEY: 4; INVALID_ARGUMENT: 5;
  NULL_POINTER: 6; CLIENT_ERROR: 7; SERVER_ERROR: 8; UNKNOWN_COMMAND: 9; CONNECT_FAILED: 10;
  IO: 11; TIMEOUT: 12; UNEXPECTED_CLOSE: 13; PROTOCOL: 14; NO_SERVERS: 15;
  BUFFER_TOO_SMALL: 16; PANIC: 17; SERVER_DOWN: 18; CANCELLED: 19; TLS: 20; AUTH_FAILED: 21;
  PARTIAL: 22; VALUE_TOO_LARGE: 23;
}>;

/** pymemcache.serde flag values. */
export declare const FLAGS: Readonly<{ BYTES: 0; PICKLE: 1; INTEGER: 2; LONG: 4; COMPRESSED: 8; TEXT: 16 }>;

/** A failure reported by libmcrs. */
export declare class McrsError extends Error {
  readonly name: 'McrsError';
  /** The mcrs_status value. */
  readonly status: number;
  /** getInto only, with BUFFER_TOO_SMALL: the value's length. */
  readonly needed?: number;
  /** e.g. 'MCRS_STATUS_TIMEOUT'. */
  readonly code: string;
  /** mcrs_last_error() for the failed call. */
  readonly detail: string;
  /** getMany/getsMany with MCRS_STATUS_PARTIAL: the hits of the servers that answered. */
  readonly hits?: Record<string, any>;
  /** getMany/getsMany with MCRS_STATUS_PARTIAL: each key whose server failed, and why. */
  readonly failed?: Array<{ key: string; index: number; code: string; message: string }>;
}

export declare class Client {
  /** This client's own per-server counters (no I/O): server -> name -> value. */
  counters(): Record<string, Record<string, number>>;
  /** Throws (synchronously) a TypeError/RangeError for bad options, an McrsError for what libmcrs rejects; does no I/O. */
  constructor(servers: ServerSpec | ServerSpec[], options?: ClientOptions);

  /** True once close() was called. */
  readonly closed: boolean;
  /** Requests whose promises have not settled yet. */
  readonly pending: number;

  /** true (also with noreply). */
  set(key: Key, value: any, options?: StoreOptions | number): Promise<boolean>;
  /** false when the key exists (known only without noreply). */
  add(key: Key, value: any, options?: StoreOptions | number): Promise<boolean>;
  /** false when the key is absent (known only without noreply). */
  replace(key: Key, value: any, options?: StoreOptions | number): Promise<boolean>;
  append(key: Key, value: any, options?: StoreOptions | number): Promise<boolean>;
  prepend(key: Key, value: any, options?: StoreOptions | number): Promise<boolean>;
  /** true stored, false changed since read (EXISTS), undefined not found. */
  cas(key: Key, value: any, cas: bigint | string | number, options?: StoreOptions | number): Promise<boolean | undefined>;

  get<T = any>(key: Key): Promise<T | undefined>;
  get<T = any, D = T>(key: Key, defaultValue: D): Promise<T | D>;
  gets<T = any>(key: Key): Promise<[T, bigint] | [undefined, undefined]>;
  gets<T = any, D = T>(key: Key, defaultValue: D): Promise<[T, bigint] | [D, undefined]>;
  gat<T = any>(key: Key, expire?: number): Promise<T | undefined>;
  gat<T = any, D = T>(key: Key, expire: number, defaultValue: D): Promise<T | D>;
  gats<T = any>(key: Key, expire?: number): Promise<[T, bigint] | [undefined, undefined]>;
  gats<T = any, D = T>(key: Key, expire: number, defaultValue: D): Promise<[T, bigint] | [D, undefined]>;

  /** Lease get (meta mg with vivify-on-miss): see README "Leases". */
  leaseGet<T = any>(key: Key, opts?: { leaseTtl?: number }): Promise<Lease<T>>;
  /** Stores a value computed under a lease: true stored, false the lease was lost. */
  leaseSet(key: Key, value: any, token: bigint | number | string, opts?: number | { expire?: number }): Promise<boolean>;
  /** Marks key stale (meta md I): true, or false when absent. */
  invalidate(key: Key, staleTtl?: number): Promise<boolean>;
  /** A cached function under a lease: fn runs once for a herd of callers on a cold key. */
  getOrCompute<T = any>(key: Key, fn: (key: Key) => T | Promise<T>, opts?: GetOrComputeOptions): Promise<T>;
  /** Hits only, keyed by the key's string (Buffer keys as their UTF-8 text). Rejects with MCRS_STATUS_PARTIAL when some servers failed (unless ignoreExc); the error's `hits` holds what the others had and `failed` each failed key with its code. */
  getMany<T = any>(keys: Key[]): Promise<Record<string, T>>;
  getsMany<T = any>(keys: Key[]): Promise<Record<string, [T, bigint]>>;
  /** Resolves to the keys that were not stored ([] with noreply). */
  setMany<K extends Key>(items: Record<string, any> | Map<K, any> | Array<[K, any]>, options?: StoreOptions | number): Promise<K[]>;

  /** true when the key existed (always true with noreply, the default). */
  delete(key: Key, options?: NoreplyOptions): Promise<boolean>;
  deleteMany(keys: Key[], options?: NoreplyOptions): Promise<true>;
  /** The new value (BigInt past 2^53), or undefined when the key is missing or with noreply. */
  incr(key: Key, delta?: number | bigint | string, options?: NoreplyOptions): Promise<number | bigint | undefined>;
  decr(key: Key, delta?: number | bigint | string, options?: NoreplyOptions): Promise<number | bigint | undefined>;
  /** true when found (always true with noreply, the default). */
  touch(key: Key, expire?: number, options?: NoreplyOptions): Promise<boolean>;
  touchMany(keys: Key[], expire?: number, options?: NoreplyOptions): Promise<true>;

  /** { "host:port": { name: value } }; integer and decimal values as numbers. */
  stats(...args: string[]): Promise<Record<string, Record<string, string | number>>>;
  version(): Promise<string>;
  /** Writes the requests submitted so far now rather than at the end of this turn. */
  flushBuffers(): Promise<true>;
  /** Raw bytes of key copied into buf (no serde); undefined on a miss. Too small a buf rejects with BUFFER_TOO_SMALL and `needed`. Leave buf alone until it settles. */
  getInto(key: Key, buf: Uint8Array): Promise<{ length: number; flags: number } | undefined>;
  flushAll(delay?: number, noreply?: boolean | NoreplyOptions): Promise<true>;
  /** Runs on libuv's thread pool (the event-loop API has no counterpart). */
  cacheMemlimit(megabytes: number, noreply?: boolean | NoreplyOptions): Promise<true>;
  /** Runs on libuv's thread pool (the event-loop API has no counterpart). */
  verbosity(level: number, noreply?: boolean | NoreplyOptions): Promise<true>;
  /** Closes the connections once the requests in flight are done; later requests open new ones. */
  quit(): Promise<void>;
  /** Frees the client; requests in flight reject with MCRS_STATUS_CANCELLED; idempotent. Later calls reject (code 'ERR_MCRS_CLIENT_CLOSED'). */
  close(): Promise<void>;
}

/** The same class as Client (pymemcache's HashClient name). */
export declare const HashClient: typeof Client;

export declare function defaultSerializer(key: Key, value: DefaultValue): [Uint8Array, number];
export declare function defaultDeserializer(key: Key, value: Buffer, flags: number): Buffer | string | number | bigint;

/** The linked libmcrs's version (loads the addon). */
export declare function libraryVersion(): string;
/** The path of the native addon, build/Release/mcrs.node (loads it). */
export declare function libraryPath(): string;
