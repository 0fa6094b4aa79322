'use strict';
// The default serializer / deserializer: pymemcache's flag values
// (pymemcache.serde), so that values written from Node read back as the same
// type from Python, Go and C, and the reverse.

/** pymemcache.serde flag values. */
const FLAGS = Object.freeze({
  BYTES: 0,
  PICKLE: 1,
  INTEGER: 2,
  LONG: 4,
  COMPRESSED: 8,
  TEXT: 16,
});

function describe(v) {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return `an object (${(v.constructor && v.constructor.name) || 'Object'})`;
  if (typeof v === 'number') return `the number ${v}`;
  return `a ${typeof v}`;
}

function keyText(key) {
  return typeof key === 'string' ? key : Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('utf8');
}

/**
 * Default serializer: Buffer / Uint8Array -> flags 0 (bytes as they are),
 * string -> flags 16 (UTF-8), integer Number or BigInt -> flags 2 (ASCII
 * decimal). Anything else (floats, booleans, objects, null) is a TypeError:
 * pass a serializer (e.g. JSON) to store other types.
 */
function defaultSerializer(key, value) {
  if (value instanceof Uint8Array) return [value, FLAGS.BYTES];
  switch (typeof value) {
    case 'string':
      return [Buffer.from(value, 'utf8'), FLAGS.TEXT];
    case 'bigint':
      return [Buffer.from(value.toString(), 'latin1'), FLAGS.INTEGER];
    case 'number':
      if (Number.isInteger(value)) {
        // BigInt() gives the exact decimal digits also past 2^53 (String(1e21) is "1e+21").
        return [Buffer.from(BigInt(value).toString(), 'latin1'), FLAGS.INTEGER];
      }
      break;
    default:
      break;
  }
  throw new TypeError(
    `mcrs: the default serializer stores Buffer (flags 0), string (flags 16) and integer ` +
    `Number/BigInt (flags 2) values; got ${describe(value)} for key ${JSON.stringify(keyText(key))}. ` +
    'Pass the serializer/deserializer options (e.g. JSON) to store other types.'
  );
}

const INTEGER_RE = /^[+-]?\d+$/;

function parseInteger(key, buf) {
  const text = buf.toString('latin1').trim();
  if (!INTEGER_RE.test(text)) {
    throw new TypeError(
      `mcrs: the value of key ${JSON.stringify(keyText(key))} has flags 2 (integer) but is not a decimal integer`
    );
  }
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : BigInt(text);
}

/**
 * Default deserializer: flags 0 -> Buffer, 16 -> string (UTF-8), 2 (and
 * pymemcache's legacy 4) -> Number, or BigInt when the integer is outside
 * Number's safe range. Other flags (e.g. 1, a Python pickle) -> the raw
 * Buffer, as pymemcache does for flags it does not know.
 */
function defaultDeserializer(key, value, flags) {
  switch (flags) {
    case FLAGS.TEXT:
      return value.toString('utf8');
    case FLAGS.INTEGER:
    case FLAGS.LONG:
      return parseInteger(key, value);
    default:
      return value;
  }
}

module.exports = { FLAGS, defaultSerializer, defaultDeserializer, describe, keyText };
