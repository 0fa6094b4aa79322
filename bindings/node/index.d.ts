/// <reference types="node" />
// Types for mcrs, the Node binding of libmcrs. Every method is synchronous.

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

export interface ClientOptions {
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
  /** Hold noreply commands back until 64 KiB gather, a command that waits is sent, flushBuffers() or close() (default false). */
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
  /** How keys are spread over several servers (default 'rendezvous', as pymemcache's HashClient). */
  distribution?: 'rendezvous' | 'ketama' | 'xxh3';
  serializer?: Serializer;
  deserializer?: Deserializer;
  /** pymemcache-style serde object; serializer/deserializer take precedence. */
  serde?: { serialize: Serializer; deserialize: Deserializer };
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
  BUFFER_TOO_SMALL: 16; PANIC: 17; SERVER_DOWN: 18;
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
}

export declare class Client {
  constructor(servers: ServerSpec | ServerSpec[], options?: ClientOptions);

  /** True once close() was called. */
  readonly closed: boolean;

  /** true (also with noreply). */
  set(key: Key, value: any, options?: StoreOptions | number): boolean;
  /** false when the key exists (known only without noreply). */
  add(key: Key, value: any, options?: StoreOptions | number): boolean;
  /** false when the key is absent (known only without noreply). */
  replace(key: Key, value: any, options?: StoreOptions | number): boolean;
  append(key: Key, value: any, options?: StoreOptions | number): boolean;
  prepend(key: Key, value: any, options?: StoreOptions | number): boolean;
  /** true stored, false changed since read (EXISTS), undefined not found. */
  cas(key: Key, value: any, cas: bigint | string | number, options?: StoreOptions | number): boolean | undefined;

  get<T = any>(key: Key): T | undefined;
  get<T = any, D = T>(key: Key, defaultValue: D): T | D;
  gets<T = any>(key: Key): [T, bigint] | [undefined, undefined];
  gets<T = any, D = T>(key: Key, defaultValue: D): [T, bigint] | [D, undefined];
  gat<T = any>(key: Key, expire?: number): T | undefined;
  gat<T = any, D = T>(key: Key, expire: number, defaultValue: D): T | D;
  gats<T = any>(key: Key, expire?: number): [T, bigint] | [undefined, undefined];
  gats<T = any, D = T>(key: Key, expire: number, defaultValue: D): [T, bigint] | [D, undefined];
  /** Hits only, keyed by the key's string (Buffer keys as their UTF-8 text). */
  getMany<T = any>(keys: Key[]): Record<string, T>;
  getsMany<T = any>(keys: Key[]): Record<string, [T, bigint]>;
  /** Returns the keys that were not stored ([] with noreply). */
  setMany<K extends Key>(items: Record<string, any> | Map<K, any> | Array<[K, any]>, options?: StoreOptions | number): K[];

  /** true when the key existed (always true with noreply, the default). */
  delete(key: Key, options?: NoreplyOptions): boolean;
  deleteMany(keys: Key[], options?: NoreplyOptions): true;
  /** The new value (BigInt past 2^53), or undefined when the key is missing or with noreply. */
  incr(key: Key, delta?: number | bigint | string, options?: NoreplyOptions): number | bigint | undefined;
  decr(key: Key, delta?: number | bigint | string, options?: NoreplyOptions): number | bigint | undefined;
  /** true when found (always true with noreply, the default). */
  touch(key: Key, expire?: number, options?: NoreplyOptions): boolean;

  /** { "host:port": { name: value } }; integer and decimal values as numbers. */
  stats(...args: string[]): Record<string, Record<string, string | number>>;
  version(): string;
  /** Writes the noreply commands held back by bufferNoreply. */
  flushBuffers(): true;
  /** Raw bytes of key copied into buf (no serde, no allocation); undefined on a miss. Too small a buf throws BUFFER_TOO_SMALL with `needed`. */
  getInto(key: Key, buf: Uint8Array): { length: number; flags: number } | undefined;
  flushAll(delay?: number, noreply?: boolean | NoreplyOptions): true;
  cacheMemlimit(megabytes: number, noreply?: boolean | NoreplyOptions): true;
  verbosity(level: number, noreply?: boolean | NoreplyOptions): true;
  /** Closes idle connections; the client stays usable. */
  quit(): void;
  /** Frees the client; idempotent. Later calls throw (code 'ERR_MCRS_CLIENT_CLOSED'). */
  close(): void;
}

/** The same class as Client (pymemcache's HashClient name). */
export declare const HashClient: typeof Client;

export declare function defaultSerializer(key: Key, value: DefaultValue): [Uint8Array, number];
export declare function defaultDeserializer(key: Key, value: Buffer, flags: number): Buffer | string | number | bigint;

/** libmcrs's version (loads the library). */
export declare function libraryVersion(): string;
/** Where libmcrs was loaded from (loads the library). */
export declare function libraryPath(): string;
