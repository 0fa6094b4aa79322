'use strict';
// Loads libmcrs.so through koffi and declares the C API (include/mcrs.h).
//
// Pointers are BigInt values in koffi 3 and carry no C type, so every handle
// is declared as `void *` here; the JS layer (index.js) never passes a user
// value to a pointer parameter without checking its type first (a Number in a
// pointer slot would be taken as an address).

const fs = require('fs');
const path = require('path');

const LOCAL_LIB = path.resolve(__dirname, '..', '..', '..', 'target', 'release', 'libmcrs.so');

// Every function of the C API that the binding uses, as koffi prototypes.
const PROTOTYPES = [
  'const char *mcrs_version(void)',
  'const char *mcrs_status_str(int status)',
  'size_t mcrs_last_error(uint8_t *buf, size_t len)',

  'void *mcrs_config_new(void)',
  'void mcrs_config_free(void *cfg)',
  'int mcrs_config_add_server(void *cfg, const char *address)',
  'int mcrs_config_add_server_weighted(void *cfg, const char *address, uint32_t weight)',
  'int mcrs_config_set_distribution(void *cfg, uint32_t distribution)',
  'int mcrs_config_set_connect_timeout_ms(void *cfg, uint32_t ms)',
  'int mcrs_config_set_timeout_ms(void *cfg, uint32_t ms)',
  'int mcrs_config_set_pool_idle_timeout_ms(void *cfg, uint32_t ms)',
  'int mcrs_config_set_retry_timeout_ms(void *cfg, uint32_t ms)',
  'int mcrs_config_set_dead_timeout_ms(void *cfg, uint32_t ms)',
  'int mcrs_config_set_no_delay(void *cfg, bool on)',
  'int mcrs_config_set_keepalive(void *cfg, bool on)',
  'int mcrs_config_set_ignore_exc(void *cfg, bool on)',
  'int mcrs_config_set_default_noreply(void *cfg, bool on)',
  'int mcrs_config_set_allow_unicode_keys(void *cfg, bool on)',
  'int mcrs_config_set_buffer_noreply(void *cfg, bool on)',
  'int mcrs_config_set_key_prefix(void *cfg, const uint8_t *prefix, size_t len)',
  'int mcrs_config_set_retry_attempts(void *cfg, uint32_t n)',
  'int mcrs_config_set_max_pool_size(void *cfg, uint32_t n)',

  'int mcrs_client_new(const void *cfg, _Out_ void **out)',
  'void mcrs_client_free(void *client)',

  'int mcrs_client_set(const void *c, const uint8_t *key, size_t key_len, const uint8_t *value, size_t value_len, uint32_t flags, uint32_t exptime, uint32_t noreply)',
  'int mcrs_client_add(const void *c, const uint8_t *key, size_t key_len, const uint8_t *value, size_t value_len, uint32_t flags, uint32_t exptime, uint32_t noreply)',
  'int mcrs_client_replace(const void *c, const uint8_t *key, size_t key_len, const uint8_t *value, size_t value_len, uint32_t flags, uint32_t exptime, uint32_t noreply)',
  'int mcrs_client_append(const void *c, const uint8_t *key, size_t key_len, const uint8_t *value, size_t value_len, uint32_t flags, uint32_t exptime, uint32_t noreply)',
  'int mcrs_client_prepend(const void *c, const uint8_t *key, size_t key_len, const uint8_t *value, size_t value_len, uint32_t flags, uint32_t exptime, uint32_t noreply)',
  'int mcrs_client_cas(const void *c, const uint8_t *key, size_t key_len, const uint8_t *value, size_t value_len, uint32_t flags, uint32_t exptime, uint64_t cas, uint32_t noreply)',

  'int mcrs_client_get(const void *c, const uint8_t *key, size_t key_len, _Out_ void **out)',
  'int mcrs_client_get_into(const void *c, const uint8_t *key, size_t key_len, uint8_t *buf, size_t cap, size_t *len, uint32_t *flags)',
  'int mcrs_client_gets(const void *c, const uint8_t *key, size_t key_len, _Out_ void **out)',
  'int mcrs_client_gat(const void *c, const uint8_t *key, size_t key_len, uint32_t exptime, _Out_ void **out)',
  'int mcrs_client_gats(const void *c, const uint8_t *key, size_t key_len, uint32_t exptime, _Out_ void **out)',
  'int mcrs_client_get_many(const void *c, const uint8_t **keys, const size_t *key_lens, size_t n, _Out_ void **out)',
  'int mcrs_client_gets_many(const void *c, const uint8_t **keys, const size_t *key_lens, size_t n, _Out_ void **out)',
  'int mcrs_client_set_many(const void *c, const uint8_t **keys, const size_t *key_lens, const uint8_t **values, const size_t *value_lens, const uint32_t *flags, size_t n, uint32_t exptime, uint32_t noreply, uint64_t *failed, uint64_t *n_failed)',

  'int mcrs_client_delete(const void *c, const uint8_t *key, size_t key_len, uint32_t noreply)',
  'int mcrs_client_delete_many(const void *c, const uint8_t **keys, const size_t *key_lens, size_t n, uint32_t noreply)',
  'int mcrs_client_incr(const void *c, const uint8_t *key, size_t key_len, uint64_t delta, uint32_t noreply, uint64_t *new_value)',
  'int mcrs_client_decr(const void *c, const uint8_t *key, size_t key_len, uint64_t delta, uint32_t noreply, uint64_t *new_value)',
  'int mcrs_client_touch(const void *c, const uint8_t *key, size_t key_len, uint32_t exptime, uint32_t noreply)',
  'int mcrs_client_flush_all(const void *c, uint32_t delay, uint32_t noreply)',
  'int mcrs_client_stats(const void *c, const char *args, _Out_ void **out)',
  'int mcrs_client_version(const void *c, uint8_t *buf, size_t cap)',
  'int mcrs_client_cache_memlimit(const void *c, uint32_t megabytes, uint32_t noreply)',
  'int mcrs_client_verbosity(const void *c, uint32_t level, uint32_t noreply)',
  'int mcrs_client_quit(const void *c)',
  'int mcrs_client_flush_buffers(const void *c)',

  'const void *mcrs_value_data(const void *v)',
  'size_t mcrs_value_len(const void *v)',
  'uint32_t mcrs_value_flags(const void *v)',
  'uint64_t mcrs_value_cas(const void *v)',
  'void mcrs_value_free(void *v)',
  'size_t mcrs_values_len(const void *vs)',
  'const void *mcrs_values_get(const void *vs, size_t i)',
  'void mcrs_values_free(void *vs)',

  'size_t mcrs_stats_len(const void *s)',
  'int mcrs_stats_get(const void *s, size_t i, _Out_ const char **server, _Out_ const char **name, _Out_ const char **value)',
  'void mcrs_stats_free(void *s)',
];

let cached = null;

function candidates() {
  const env = process.env.MCRS_LIB;
  if (env !== undefined && env !== '') {
    return [{ label: `MCRS_LIB=${env}`, file: env, mustExist: true }];
  }
  return [
    { label: LOCAL_LIB, file: LOCAL_LIB, mustExist: true },
    { label: 'libmcrs.so (system loader path)', file: 'libmcrs.so', mustExist: false },
  ];
}

function describeError(e) {
  return String((e && e.message) || e).split('\n')[0];
}

/** Loads the library once and returns { koffi, path, fn: { name: function } }. */
function load() {
  if (cached) return cached;
  let koffi;
  try {
    koffi = require('koffi');
  } catch (e) {
    throw new Error(`mcrs: cannot load the koffi package (${describeError(e)}); run \`npm install\` in ${path.resolve(__dirname, '..')}`);
  }
  const tried = [];
  for (const c of candidates()) {
    if (c.mustExist && !fs.existsSync(c.file)) {
      tried.push(`${c.label}: not found`);
      continue;
    }
    let lib;
    try {
      lib = koffi.load(c.file);
    } catch (e) {
      tried.push(`${c.label}: ${describeError(e)}`);
      continue;
    }
    const fn = Object.create(null);
    try {
      for (const proto of PROTOTYPES) {
        const f = lib.func(proto);
        fn[proto.match(/(mcrs_\w+)\(/)[1]] = f;
      }
    } catch (e) {
      // A library that lacks a symbol is too old (or not libmcrs): say so
      // instead of falling back to another copy silently.
      throw new Error(`mcrs: ${c.label} was loaded but does not provide the mcrs C API (${describeError(e)}); rebuild it with \`cargo build --release\``);
    }
    cached = { koffi, path: c.file, fn };
    return cached;
  }
  throw new Error(
    'mcrs: could not load the native library libmcrs.so. Tried:\n  ' + tried.join('\n  ') +
    '\nBuild it with `cargo build --release` in the mcrs repository, or set MCRS_LIB to the full path of libmcrs.so.'
  );
}

module.exports = { load, LOCAL_LIB };
