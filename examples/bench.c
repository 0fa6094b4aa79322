/* mcrs side of the anchor benchmark: the same program as
   ../shared/bench/lmc_bench.c, written against the mcrs C API, so the two run
   side by side on one memcached.
   usage: bench HOST PORT OPS VALUE_SIZE [WORKLOAD]
   workloads: set, get, mget100, set_noreply (default: all, in that order),
   and get_into, meta_get, lease_get, mget100_meta, mget100_classic,
   reconnect, new_client (mcrs only, run
   only when named: reconnect closes the connection before each get, so each
   op reconnects with the client's TLS session cache, i.e. a resumed
   handshake; new_client makes a client per op, i.e. a full handshake)
   prints one line per workload: name ops_per_second
   environment: MCRS_BENCH_TLS_CA=ca.pem turns TLS on, verified with that CA
   (examples/bench_tls.sh) */
#include "mcrs.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

static void die(const char *what, mcrs_status st) {
  char detail[256];
  mcrs_last_error(detail, sizeof detail);
  fprintf(stderr, "%s: %s (%s)\n", what, mcrs_status_str(st), detail);
  exit(1);
}

/* A config for addr, with TLS when MCRS_BENCH_TLS_CA names a CA file. */
static mcrs_config *new_config(const char *addr) {
  mcrs_config *cfg = mcrs_config_new();
  mcrs_status st = mcrs_config_add_server(cfg, addr);
  if (st != MCRS_STATUS_OK) die("add_server", st);
  mcrs_config_set_no_delay(cfg, true);
  const char *ca = getenv("MCRS_BENCH_TLS_CA");
  if (ca && *ca) {
    if ((st = mcrs_config_set_tls(cfg, true)) != MCRS_STATUS_OK) die("set_tls", st);
    if ((st = mcrs_config_set_tls_ca_file(cfg, ca)) != MCRS_STATUS_OK) die("tls_ca_file", st);
  }
  return cfg;
}

int main(int argc, char **argv) {
  const char *host = argc > 1 ? argv[1] : "127.0.0.1";
  int port = argc > 2 ? atoi(argv[2]) : 11211;
  long ops = argc > 3 ? atol(argv[3]) : 100000;
  size_t vsz = argc > 4 ? (size_t)atol(argv[4]) : 100;
  const char *only = argc > 5 ? argv[5] : NULL;
#define RUN(name) if (!only || !strcmp(only, name))
  char addr[300];
  snprintf(addr, sizeof addr, strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);
  mcrs_config *cfg = new_config(addr);
  mcrs_client *mc;
  mcrs_status st = mcrs_client_new(cfg, &mc);
  if (st != MCRS_STATUS_OK) die("client_new", st);
  mcrs_config_free(cfg);
  uint8_t *val = malloc(vsz);
  memset(val, 'v', vsz);
  char key[64];
  double t0, t1;
  /* set with reply (as libmemcached's default) */
  RUN("set") {
    t0 = now();
    for (long i = 0; i < ops; i++) {
      int kl = snprintf(key, sizeof key, "bench:key:%ld", i % 1000);
      st = mcrs_client_set(mc, (const uint8_t *)key, (size_t)kl, val, vsz, 0, 0, MCRS_NOREPLY_OFF);
      if (st != MCRS_STATUS_OK) die("set", st);
    }
    t1 = now();
    printf("set %.0f\n", ops / (t1 - t0));
  }
  /* get hit */
  RUN("get") {
    t0 = now();
    for (long i = 0; i < ops; i++) {
      int kl = snprintf(key, sizeof key, "bench:key:%ld", i % 1000);
      mcrs_value *v;
      st = mcrs_client_get(mc, (const uint8_t *)key, (size_t)kl, &v);
      if (st != MCRS_STATUS_OK || mcrs_value_len(v) != vsz) die("get miss", st);
      mcrs_value_free(v);
    }
    t1 = now();
    printf("get %.0f\n", ops / (t1 - t0));
  }
  /* get into a caller's buffer (no allocation): an mcrs-only workload, run
     only when named (lmc_bench has no counterpart) */
  if (only && !strcmp(only, "get_into")) {
    uint8_t *buf = malloc(vsz);
    t0 = now();
    for (long i = 0; i < ops; i++) {
      int kl = snprintf(key, sizeof key, "bench:key:%ld", i % 1000);
      size_t len;
      uint32_t fl;
      st = mcrs_client_get_into(mc, (const uint8_t *)key, (size_t)kl, buf, vsz, &len, &fl);
      if (st != MCRS_STATUS_OK || len != vsz) die("get_into miss", st);
    }
    t1 = now();
    free(buf);
    printf("get_into %.0f\n", ops / (t1 - t0));
  }
  /* meta get (mg v f c t l h: value, flags, cas, TTL left, last access,
     hit-before) and lease get (mg v f c t N30) of the same hits: mcrs-only
     workloads, run only when named */
  if (only && (!strcmp(only, "meta_get") || !strcmp(only, "lease_get"))) {
    int lease = !strcmp(only, "lease_get");
    t0 = now();
    for (long i = 0; i < ops; i++) {
      int kl = snprintf(key, sizeof key, "bench:key:%ld", i % 1000);
      mcrs_value *v = NULL;
      if (lease) {
        mcrs_lease state;
        uint64_t token;
        st = mcrs_client_lease_get(mc, (const uint8_t *)key, (size_t)kl, 30, &state, &token, &v);
        if (st == MCRS_STATUS_OK && state != MCRS_LEASE_HIT) st = MCRS_STATUS_NOT_FOUND;
      } else {
        st = mcrs_client_meta_get(mc, (const uint8_t *)key, (size_t)kl, &v);
      }
      if (st != MCRS_STATUS_OK || mcrs_value_len(v) != vsz) die("meta get miss", st);
      mcrs_value_free(v);
    }
    t1 = now();
    printf("%s %.0f\n", only, ops / (t1 - t0));
  }
  /* a reconnect per op (the pool's connection closed first): with TLS, a
     resumed handshake per op */
  if (only && !strcmp(only, "reconnect")) {
    t0 = now();
    for (long i = 0; i < ops; i++) {
      int kl = snprintf(key, sizeof key, "bench:key:%ld", i % 1000);
      mcrs_value *v;
      mcrs_client_quit(mc);
      st = mcrs_client_get(mc, (const uint8_t *)key, (size_t)kl, &v);
      if (st != MCRS_STATUS_OK || mcrs_value_len(v) != vsz) die("reconnect get", st);
      mcrs_value_free(v);
    }
    t1 = now();
    printf("reconnect %.0f\n", ops / (t1 - t0));
  }
  /* a new client per op: with TLS, a full handshake per op */
  if (only && !strcmp(only, "new_client")) {
    mcrs_config *c2 = new_config(addr);
    t0 = now();
    for (long i = 0; i < ops; i++) {
      int kl = snprintf(key, sizeof key, "bench:key:%ld", i % 1000);
      mcrs_client *m2;
      if ((st = mcrs_client_new(c2, &m2)) != MCRS_STATUS_OK) die("client_new", st);
      mcrs_value *v;
      st = mcrs_client_get(m2, (const uint8_t *)key, (size_t)kl, &v);
      if (st != MCRS_STATUS_OK || mcrs_value_len(v) != vsz) die("new_client get", st);
      mcrs_value_free(v);
      mcrs_client_free(m2);
    }
    t1 = now();
    mcrs_config_free(c2);
    printf("new_client %.0f\n", ops / (t1 - t0));
  }
  /* multi-get of 100 keys */
  const uint8_t *keys[100];
  size_t klens[100];
  char kb[100][32];
  for (int j = 0; j < 100; j++) {
    klens[j] = (size_t)snprintf(kb[j], 32, "bench:key:%d", j);
    keys[j] = (const uint8_t *)kb[j];
  }
  long rounds = ops / 100, got = 0;
  /* mget100 with the default protocol (classic get lines); mget100_meta
     and mget100_classic force one (mcrs only, run only when named), so both
     paths are measured on one server */
  int forced = only && (!strcmp(only, "mget100_meta") || !strcmp(only, "mget100_classic"));
  if (forced) {
    mcrs_client_free(mc);
    cfg = new_config(addr);
    st = mcrs_config_set_meta(cfg, !strcmp(only, "mget100_meta") ? MCRS_META_ON : MCRS_META_OFF);
    if (st != MCRS_STATUS_OK) die("set_meta", st);
    if ((st = mcrs_client_new(cfg, &mc)) != MCRS_STATUS_OK) die("client_new", st);
    mcrs_config_free(cfg);
  }
  if (!only || !strcmp(only, "mget100") || forced) {
    t0 = now();
    for (long r = 0; r < rounds; r++) {
      mcrs_values *vs;
      st = mcrs_client_get_many(mc, keys, klens, 100, &vs);
      if (st != MCRS_STATUS_OK) die("mget", st);
      for (size_t j = 0; j < mcrs_values_len(vs); j++)
        if (mcrs_values_get(vs, j)) got++;
      mcrs_values_free(vs);
    }
    t1 = now();
    if (got != rounds * 100) {
      fprintf(stderr, "mget got %ld\n", got);
      return 1;
    }
    printf("%s_keys %.0f\n", forced ? only : "mget100", got / (t1 - t0));
  }
  /* set noreply stream, then one get, as lmc_bench does. lmc_bench turns on
     MEMCACHED_BEHAVIOR_NOREPLY and BUFFER_REQUESTS for the stream (the mcrs
     counterpart is a client with buffer_noreply), flushes, and turns NOREPLY
     off again, which makes libmemcached send `quit` and reconnect: its get
     runs on a new connection, so it does not wait for memcached to work
     through the stream. The same steps here: flush, close (quit), a get from
     a fresh client. */
  RUN("set_noreply") {
    mcrs_client_free(mc);
    cfg = new_config(addr);
    mcrs_config_set_buffer_noreply(cfg, true);
    st = mcrs_client_new(cfg, &mc);
    if (st != MCRS_STATUS_OK) die("client_new", st);
    t0 = now();
    for (long i = 0; i < ops; i++) {
      int kl = snprintf(key, sizeof key, "bench:nr:%ld", i % 1000);
      st = mcrs_client_set(mc, (const uint8_t *)key, (size_t)kl, val, vsz, 0, 0, MCRS_NOREPLY_ON);
      if (st != MCRS_STATUS_OK) die("set noreply", st);
    }
    st = mcrs_client_flush_buffers(mc);
    if (st != MCRS_STATUS_OK) die("flush_buffers", st);
    mcrs_client_free(mc);
    mcrs_config_set_buffer_noreply(cfg, false);
    st = mcrs_client_new(cfg, &mc);
    if (st != MCRS_STATUS_OK) die("client_new", st);
    mcrs_value *v;
    st = mcrs_client_get(mc, (const uint8_t *)"bench:nr:999", 12, &v);
    if (st == MCRS_STATUS_OK) mcrs_value_free(v);
    t1 = now();
    mcrs_config_free(cfg);
    printf("set_noreply %.0f\n", ops / (t1 - t0));
  }
  mcrs_client_free(mc);
  free(val);
  return 0;
}
