'use strict';
// Serialization hooks: the Node version of pymemcache's JSON example
//
//     def json_serializer(key, value):
//         if type(value) == str:
//             return value, 1
//         return json.dumps(value), 2
//
//     def json_deserializer(key, value, flags):
//         if flags == 1:
//             return value.decode('utf-8')
//         if flags == 2:
//             return json.loads(value.decode('utf-8'))
//         raise Exception("Unknown serialization format")
//
//     client = Client('localhost', serializer=json_serializer,
//                     deserializer=json_deserializer)
//     client.set('key', {'a':'b', 'c':'d'})
//     result = client.get('key')
//
// Servers come from MCRS_SERVERS (comma-separated), default localhost:11211.
// Run: node examples/serde.js   (in your own project: require('mcrs'))

const { Client } = require('..');

function jsonSerializer(key, value) {
  if (typeof value === 'string') return [value, 1];
  return [JSON.stringify(value), 2];
}

function jsonDeserializer(key, value, flags) {
  if (flags === 1) return value.toString('utf8');
  if (flags === 2) return JSON.parse(value.toString('utf8'));
  throw new Error('Unknown serialization format');
}

const servers = (process.env.MCRS_SERVERS || 'localhost:11211').split(',').filter(Boolean);

async function main() {
  const client = new Client(servers, { serializer: jsonSerializer, deserializer: jsonDeserializer });
  try {
    await client.set('key', { a: 'b', c: 'd' });
    const result = await client.get('key');
    console.log('key =', result);
  } finally {
    await client.close();
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
