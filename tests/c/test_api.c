/* The C ABI contract: NULL checks on every pointer argument, _free(NULL), status strings,
   mcrs_last_error, mcrs_version, config validation, connection failures, ignore_exc. */
#define _GNU_SOURCE 1 /* dladdr */
#include "test_util.h"

#include <dlfcn.h>
#include <pthread.h>
#include <sys/wait.h>
#include <time.h>

static mcrs_client *c;

/* The _shared build must really use libmcrs.so from MCRS_LIB_DIR, the _static build must
   have the library inside the executable. */
static void test_linkage(void) {
    Dl_info info;
    memset(&info, 0, sizeof info);
    const char *(*fn)(void) = mcrs_version;
    void *addr;
    memcpy(&addr, &fn, sizeof addr);
    int ok = dladdr(addr, &info);
    CHECK(ok != 0 && info.dli_fname != NULL, "dladdr(mcrs_version) failed");
    if (!ok || info.dli_fname == NULL)
        return;
    printf("   mcrs_version is in %s\n", info.dli_fname);
#ifdef MCRS_TEST_SHARED
    char expect[4096];
    snprintf(expect, sizeof expect, "%s/libmcrs.so", MCRS_TEST_LIB_DIR);
    char real_expect[4096], real_got[4096];
    CHECK(realpath(expect, real_expect) != NULL && realpath(info.dli_fname, real_got) != NULL &&
              strcmp(real_expect, real_got) == 0,
          "shared build must load %s, loaded %s", expect, info.dli_fname);
#else
    CHECK(strstr(info.dli_fname, "libmcrs.so") == NULL, "static build loaded %s", info.dli_fname);
#endif
}

static void status_str_checks(void) {
    /* every status up to PANIC (and any appended after it) has its own static string */
    enum { MAXST = 64 };
    const char *seen[MAXST];
    int s = 0;
    for (; s < MAXST; s++) {
        const char *str = mcrs_status_str((mcrs_status)s);
        CHECK(str != NULL && str[0] != '\0', "mcrs_status_str(%d) is empty", s);
        if (str == NULL)
            str = "";
        if (strcmp(str, "unknown status") == 0)
            break;
        seen[s] = str;
        for (int t = 0; t < s; t++)
            CHECK(strcmp(seen[t], str) != 0, "statuses %d and %d share the string \"%s\"", t, s,
                  str);
        CHECK(mcrs_status_str((mcrs_status)s) == str, "mcrs_status_str(%d) is not static", s);
    }
    CHECK(s > MCRS_STATUS_PANIC, "mcrs_status_str(%d) is \"unknown status\"", s);
    printf("   %d statuses known; e.g. \"%s\" / \"%s\" / \"%s\"\n", s, seen[0],
           seen[MCRS_STATUS_INVALID_KEY], seen[MCRS_STATUS_PANIC]);
    /* values outside the enum (C may pass any int) */
    const int unknown[] = {s, s + 1, 1000, 9999, 0x7fffffff, -1};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        printf("   mcrs_status_str(%d) ...\n", unknown[i]);
        fflush(stdout);
        const char *str = mcrs_status_str((mcrs_status)unknown[i]);
        CHECK(str != NULL && strcmp(str, "unknown status") == 0,
              "mcrs_status_str(%d) = \"%s\", expected \"unknown status\"", unknown[i],
              str ? str : "(null)");
    }
}

/* Run in a child process, so that a crash is reported as a failure and the other tests
   still run. */
static void test_status_str(void) {
    fflush(NULL);
    pid_t pid = fork();
    REQUIRE(pid >= 0, "fork");
    if (pid == 0) {
        int before = atomic_load(&tu_failed);
        status_str_checks();
        fflush(NULL);
        _exit(atomic_load(&tu_failed) != before ? 1 : 0);
    }
    int wst = 0;
    waitpid(pid, &wst, 0);
    CHECK(WIFEXITED(wst) && WEXITSTATUS(wst) == 0, "mcrs_status_str checks %s %d",
          WIFSIGNALED(wst) ? "crashed with signal" : "failed; exit code",
          WIFSIGNALED(wst) ? WTERMSIG(wst) : WEXITSTATUS(wst));
}

static void test_version(void) {
    const char *v = mcrs_version();
    CHECK(v != NULL && v[0] != '\0', "mcrs_version() is empty");
    CHECK(v != NULL && strpbrk(v, "0123456789") != NULL, "mcrs_version() has no digit: %s", v);
    CHECK(mcrs_version() == v || (v && strcmp(mcrs_version(), v) == 0), "mcrs_version() changes");
    printf("   mcrs_version() = %s\n", v ? v : "(null)");
}

static void test_last_error(void) {
    /* provoke a failure with a detail */
    CHECK_STATUS(mcrs_client_set(c, K("bad key"), K("v"), 0, 0, MCRS_NOREPLY_OFF),
                 MCRS_STATUS_INVALID_KEY);
    size_t full = mcrs_last_error(NULL, 0);
    CHECK(full > 0, "mcrs_last_error after a failure must be non-empty");
    if (full == 0)
        return;
    char *buf = malloc(full + 16);
    REQUIRE(buf != NULL, "malloc");
    memset(buf, 'X', full + 16);
    size_t n = mcrs_last_error(buf, full + 16);
    CHECK(n == full, "full length %zu vs %zu", n, full);
    CHECK(strlen(buf) == full, "strlen %zu vs %zu", strlen(buf), full);
    printf("   last error: \"%s\"\n", buf);

    /* exactly full + 1: fits */
    char *exact = malloc(full + 1);
    REQUIRE(exact != NULL, "malloc");
    n = mcrs_last_error(exact, full + 1);
    CHECK(n == full && strcmp(exact, buf) == 0, "exact-size buffer");
    free(exact);

    /* truncation: NUL-terminated, a prefix of the full message, still returns the full length */
    char small[6];
    memset(small, 'X', sizeof small);
    n = mcrs_last_error(small, 5);
    CHECK(n == full, "truncated call must return the full length (%zu vs %zu)", n, full);
    CHECK(small[5] == 'X', "mcrs_last_error wrote past len");
    size_t expect = full < 4 ? full : 4;
    CHECK(strlen(small) == expect && memcmp(small, buf, expect) == 0,
          "truncated to \"%s\", expected the first %zu bytes of \"%s\"", small, expect, buf);
    /* len 1: only the NUL */
    small[0] = 'X';
    n = mcrs_last_error(small, 1);
    CHECK(n == full && small[0] == '\0', "len 1 must write just the NUL");
    /* len 0 with a real buffer: nothing written */
    small[0] = 'Y';
    n = mcrs_last_error(small, 0);
    CHECK(n == full && small[0] == 'Y', "len 0 must not write");

    /* reading does not clear it */
    CHECK(mcrs_last_error(NULL, 0) == full, "reading the last error must not clear it");
    free(buf);

    /* a different failure gives a different detail */
    CHECK_STATUS(mcrs_client_set(c, K("k"), K("v"), 0, 0xffffffffu, MCRS_NOREPLY_OFF),
                 MCRS_STATUS_INVALID_ARGUMENT);
    CHECK(mcrs_last_error(NULL, 0) > 0, "last error after INVALID_ARGUMENT must be non-empty");
    CHECK_STATUS(mcrs_client_get(NULL, K("k"), NULL), MCRS_STATUS_NULL_POINTER);
    CHECK(mcrs_last_error(NULL, 0) > 0, "last error after NULL_POINTER must be non-empty");
}

static void *fresh_thread_last_error(void *arg) {
    size_t *out = arg;
    *out = mcrs_last_error(NULL, 0);
    return NULL;
}

static void test_last_error_is_per_thread(void) {
    CHECK_STATUS(mcrs_client_set(c, K("bad key"), K("v"), 0, 0, MCRS_NOREPLY_OFF),
                 MCRS_STATUS_INVALID_KEY);
    size_t other = 999;
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, fresh_thread_last_error, &other) == 0, "pthread_create");
    pthread_join(t, NULL);
    CHECK(other == 0, "a fresh thread must have no last error (got length %zu)", other);
    CHECK(mcrs_last_error(NULL, 0) > 0, "this thread keeps its last error");
}

static void test_null_config(void) {
    mcrs_config_free(NULL);
    mcrs_config *cfg = mcrs_config_new();
    REQUIRE(cfg != NULL, "mcrs_config_new");
    const char *srv = tu_server();

    CHECK_STATUS(mcrs_config_add_server(NULL, srv), MCRS_STATUS_NULL_POINTER);
    CHECK_STATUS(mcrs_config_add_server(cfg, NULL), MCRS_STATUS_NULL_POINTER);
    CHECK_STATUS(mcrs_config_add_server_weighted(NULL, srv, 1), MCRS_STATUS_NULL_POINTER);
    CHECK_STATUS(mcrs_config_add_server_weighted(cfg, NULL, 1), MCRS_STATUS_NULL_POINTER);
    CHECK_STATUS(mcrs_config_set_distribution(NULL, MCRS_DISTRIBUTION_RENDEZVOUS),
                 MCRS_STATUS_NULL_POINTER);
    CHECK_STATUS(mcrs_config_set_connect_timeout_ms(NULL, 100), MCRS_STATUS_NULL_POINTER);
    CHECK_STATUS(mcrs_config_set_timeout_ms(NULL, 100), MCRS_STATUS_NULL_POINTER);
    CHECK_STATUS(mcrs_config_set_no_delay(NULL, true), MCRS_STATUS_NULL_POINTER);
    CHECK_STATUS(mcrs_config_set_keepalive(NULL, true), MCRS_STATUS_NULL_POINTER);
    CHECK_STATUS(mcrs_config_set_ignore_exc(NULL, true), MCRS_STATUS_NULL_POINTER);
    CHECK_STATUS(mcrs_config_set_default_noreply(NULL, true), MCRS_STATUS_NULL_POINTER);
    CHECK_STATUS(mcrs_config_set_key_prefix(NULL, K("p")), MCRS_STATUS_NULL_POINTER);
    CHECK_STATUS(mcrs_config_set_key_prefix(cfg, NULL, 3), MCRS_STATUS_NULL_POINTER);
    CHECK_OK(mcrs_config_set_key_prefix(cfg, NULL, 0));
    CHECK_STATUS(mcrs_config_set_allow_unicode_keys(NULL, true), MCRS_STATUS_NULL_POINTER);
    CHECK_STATUS(mcrs_config_set_retry_attempts(NULL, 2), MCRS_STATUS_NULL_POINTER);
    CHECK_STATUS(mcrs_config_set_retry_timeout_ms(NULL, 1000), MCRS_STATUS_NULL_POINTER);
    CHECK_STATUS(mcrs_config_set_dead_timeout_ms(NULL, 1000), MCRS_STATUS_NULL_POINTER);
    CHECK_STATUS(mcrs_config_set_max_pool_size(NULL, 4), MCRS_STATUS_NULL_POINTER);
    CHECK_STATUS(mcrs_config_set_pool_idle_timeout_ms(NULL, 1000), MCRS_STATUS_NULL_POINTER);

    mcrs_client *out = TU_SENTINEL;
    CHECK_STATUS(mcrs_client_new(NULL, &out), MCRS_STATUS_NULL_POINTER);
    CHECK(out == NULL, "mcrs_client_new(NULL cfg) must set *out = NULL");
    CHECK_STATUS(mcrs_client_new(cfg, NULL), MCRS_STATUS_NULL_POINTER);
    mcrs_client_free(NULL);

    /* the NULL calls did not break the config: it still builds a working client */
    CHECK_OK(mcrs_config_add_server(cfg, srv));
    CHECK_OK(mcrs_config_set_default_noreply(cfg, false));
    mcrs_client *ok = tu_client_from(cfg);
    CHECK_OK(mcrs_client_set(ok, K("api:cfgok"), K("1"), 0, 0, MCRS_NOREPLY_OFF));
    mcrs_client_free(ok);
    mcrs_config_free(cfg);
}

static void test_null_client_calls(void) {
    const mcrs_noreply OFF = MCRS_NOREPLY_OFF;
    mcrs_value *v;
    mcrs_values *vs;
    uint64_t nv = 5;
    const uint8_t *keys[] = {B("api:n1"), B("api:n2")};
    const uint8_t *keys_with_null[] = {B("api:n1"), NULL};
    const size_t lens[] = {6, 6};
    const uint32_t flags[] = {0, 0};
    size_t failed[2];
    size_t n_failed = 77;

    CHECK_OK(mcrs_client_set(c, K("api:n1"), K("v"), 0, 0, OFF));

    /* set-shaped commands */
    typedef mcrs_status (*store_fn)(const mcrs_client *, const uint8_t *, size_t, const uint8_t *,
                                    size_t, uint32_t, uint32_t, mcrs_noreply);
    const store_fn store[] = {mcrs_client_set, mcrs_client_add, mcrs_client_replace,
                              mcrs_client_append, mcrs_client_prepend};
    const char *store_names[] = {"set", "add", "replace", "append", "prepend"};
    for (int i = 0; i < 5; i++) {
        for (int m = 0; m < 3; m++) {
            mcrs_status st = store[i](NULL, K("api:n1"), K("v"), 0, 0, (mcrs_noreply)m);
            CHECK(st == MCRS_STATUS_NULL_POINTER, "%s(NULL client): %s", store_names[i],
                  mcrs_status_str(st));
            st = store[i](c, NULL, 6, K("v"), 0, 0, (mcrs_noreply)m);
            CHECK(st == MCRS_STATUS_NULL_POINTER, "%s(NULL key): %s", store_names[i],
                  mcrs_status_str(st));
            st = store[i](c, K("api:n1"), NULL, 1, 0, 0, (mcrs_noreply)m);
            CHECK(st == MCRS_STATUS_NULL_POINTER, "%s(NULL value, len 1): %s", store_names[i],
                  mcrs_status_str(st));
        }
    }
    CHECK_GET(c, K("api:n1"), "v", 1, 0);
    /* NULL value with len 0 is an empty value */
    CHECK_OK(mcrs_client_set(c, K("api:empty"), NULL, 0, 0, 0, OFF));
    CHECK_GET(c, K("api:empty"), "", 0, 0);

    CHECK_STATUS(mcrs_client_cas(NULL, K("api:n1"), K("v"), 0, 0, 1, OFF), MCRS_STATUS_NULL_POINTER);
    CHECK_STATUS(mcrs_client_cas(c, NULL, 6, K("v"), 0, 0, 1, OFF), MCRS_STATUS_NULL_POINTER);
    CHECK_STATUS(mcrs_client_cas(c, K("api:n1"), NULL, 1, 0, 0, 1, OFF), MCRS_STATUS_NULL_POINTER);

    /* single-key reads: NULL client / key / out; *out = NULL on failure */
    typedef mcrs_status (*get_fn)(const mcrs_client *, const uint8_t *, size_t, mcrs_value **);
    const get_fn gets[] = {mcrs_client_get, mcrs_client_gets};
    for (int i = 0; i < 2; i++) {
        v = TU_SENTINEL;
        CHECK_STATUS(gets[i](NULL, K("api:n1"), &v), MCRS_STATUS_NULL_POINTER);
        CHECK(v == NULL, "get/gets[%d](NULL client) must set *out = NULL", i);
        v = TU_SENTINEL;
        CHECK_STATUS(gets[i](c, NULL, 6, &v), MCRS_STATUS_NULL_POINTER);
        CHECK(v == NULL, "get/gets[%d](NULL key) must set *out = NULL", i);
        CHECK_STATUS(gets[i](c, K("api:n1"), NULL), MCRS_STATUS_NULL_POINTER);
    }
    typedef mcrs_status (*gat_fn)(const mcrs_client *, const uint8_t *, size_t, uint32_t,
                                  mcrs_value **);
    const gat_fn gats[] = {mcrs_client_gat, mcrs_client_gats};
    for (int i = 0; i < 2; i++) {
        v = TU_SENTINEL;
        CHECK_STATUS(gats[i](NULL, K("api:n1"), 0, &v), MCRS_STATUS_NULL_POINTER);
        CHECK(v == NULL, "gat/gats[%d](NULL client) must set *out = NULL", i);
        v = TU_SENTINEL;
        CHECK_STATUS(gats[i](c, NULL, 6, 0, &v), MCRS_STATUS_NULL_POINTER);
        CHECK(v == NULL, "gat/gats[%d](NULL key) must set *out = NULL", i);
        CHECK_STATUS(gats[i](c, K("api:n1"), 0, NULL), MCRS_STATUS_NULL_POINTER);
    }

    /* value accessors with NULL */
    CHECK(mcrs_value_data(NULL) == NULL, "mcrs_value_data(NULL)");
    CHECK(mcrs_value_len(NULL) == 0, "mcrs_value_len(NULL)");
    CHECK(mcrs_value_flags(NULL) == 0, "mcrs_value_flags(NULL)");
    CHECK(mcrs_value_cas(NULL) == 0, "mcrs_value_cas(NULL)");
    mcrs_value_free(NULL);

    /* multi-key reads */
    typedef mcrs_status (*many_fn)(const mcrs_client *, const uint8_t *const *, const size_t *,
                                   size_t, mcrs_values **);
    const many_fn many[] = {mcrs_client_get_many, mcrs_client_gets_many};
    for (int i = 0; i < 2; i++) {
        vs = TU_SENTINEL;
        CHECK_STATUS(many[i](NULL, keys, lens, 2, &vs), MCRS_STATUS_NULL_POINTER);
        CHECK(vs == NULL, "get(s)_many[%d](NULL client) must set *out = NULL", i);
        vs = TU_SENTINEL;
        CHECK_STATUS(many[i](c, NULL, lens, 2, &vs), MCRS_STATUS_NULL_POINTER);
        CHECK(vs == NULL, "get(s)_many[%d](NULL keys) must set *out = NULL", i);
        vs = TU_SENTINEL;
        CHECK_STATUS(many[i](c, keys, NULL, 2, &vs), MCRS_STATUS_NULL_POINTER);
        CHECK(vs == NULL, "get(s)_many[%d](NULL key_lens) must set *out = NULL", i);
        vs = TU_SENTINEL;
        CHECK_STATUS(many[i](c, keys_with_null, lens, 2, &vs), MCRS_STATUS_NULL_POINTER);
        CHECK(vs == NULL, "get(s)_many[%d](keys[1] NULL) must set *out = NULL", i);
        CHECK_STATUS(many[i](c, keys, lens, 2, NULL), MCRS_STATUS_NULL_POINTER);
        CHECK_STATUS(many[i](c, NULL, NULL, 0, NULL), MCRS_STATUS_NULL_POINTER);
    }
    CHECK(mcrs_values_len(NULL) == 0, "mcrs_values_len(NULL)");
    CHECK(mcrs_values_get(NULL, 0) == NULL, "mcrs_values_get(NULL, 0)");
    mcrs_values_free(NULL);

    /* set_many: every pointer argument */
    const uint8_t *vals[] = {B("x"), B("y")};
    const uint8_t *vals_with_null[] = {B("x"), NULL};
    const size_t vlens[] = {1, 1};
#define SM(cl, k, kl, vv, vl, fl, fa, nf)                                                      \
    mcrs_client_set_many((cl), (k), (kl), (vv), (vl), (fl), 2, 0, OFF, (fa), (nf))
    CHECK_STATUS(SM(NULL, keys, lens, vals, vlens, flags, failed, &n_failed), MCRS_STATUS_NULL_POINTER);
    CHECK_STATUS(SM(c, NULL, lens, vals, vlens, flags, failed, &n_failed), MCRS_STATUS_NULL_POINTER);
    CHECK_STATUS(SM(c, keys_with_null, lens, vals, vlens, flags, failed, &n_failed),
                 MCRS_STATUS_NULL_POINTER);
    CHECK_STATUS(SM(c, keys, NULL, vals, vlens, flags, failed, &n_failed), MCRS_STATUS_NULL_POINTER);
    CHECK_STATUS(SM(c, keys, lens, NULL, vlens, flags, failed, &n_failed), MCRS_STATUS_NULL_POINTER);
    CHECK_STATUS(SM(c, keys, lens, vals_with_null, vlens, flags, failed, &n_failed),
                 MCRS_STATUS_NULL_POINTER);
    CHECK_STATUS(SM(c, keys, lens, vals, NULL, flags, failed, &n_failed), MCRS_STATUS_NULL_POINTER);
    CHECK_STATUS(SM(c, keys, lens, vals, vlens, NULL, failed, &n_failed), MCRS_STATUS_NULL_POINTER);
    CHECK_STATUS(SM(c, keys, lens, vals, vlens, flags, NULL, &n_failed), MCRS_STATUS_NULL_POINTER);
    CHECK_STATUS(SM(c, keys, lens, vals, vlens, flags, failed, NULL), MCRS_STATUS_NULL_POINTER);
#undef SM
    /* nothing was stored by the rejected calls */
    CHECK_MISS(c, K("api:n2"));
    CHECK_GET(c, K("api:n1"), "v", 1, 0);

    CHECK_STATUS(mcrs_client_delete(NULL, K("api:n1"), OFF), MCRS_STATUS_NULL_POINTER);
    CHECK_STATUS(mcrs_client_delete(c, NULL, 6, OFF), MCRS_STATUS_NULL_POINTER);
    CHECK_STATUS(mcrs_client_delete_many(NULL, keys, lens, 2, OFF), MCRS_STATUS_NULL_POINTER);
    CHECK_STATUS(mcrs_client_delete_many(c, NULL, lens, 2, OFF), MCRS_STATUS_NULL_POINTER);
    CHECK_STATUS(mcrs_client_delete_many(c, keys, NULL, 2, OFF), MCRS_STATUS_NULL_POINTER);
    CHECK_STATUS(mcrs_client_delete_many(c, keys_with_null, lens, 2, OFF), MCRS_STATUS_NULL_POINTER);
    CHECK_GET(c, K("api:n1"), "v", 1, 0);

    typedef mcrs_status (*arith_fn)(const mcrs_client *, const uint8_t *, size_t, uint64_t,
                                    mcrs_noreply, uint64_t *);
    const arith_fn arith[] = {mcrs_client_incr, mcrs_client_decr};
    CHECK_OK(mcrs_client_set(c, K("api:ctr"), K("10"), 0, 0, OFF));
    for (int i = 0; i < 2; i++) {
        nv = 5;
        CHECK_STATUS(arith[i](NULL, K("api:ctr"), 1, OFF, &nv), MCRS_STATUS_NULL_POINTER);
        CHECK_STATUS(arith[i](c, NULL, 7, 1, OFF, &nv), MCRS_STATUS_NULL_POINTER);
        CHECK_STATUS(arith[i](c, K("api:ctr"), 1, OFF, NULL), MCRS_STATUS_NULL_POINTER);
        CHECK(nv == 5, "new_value written on failure");
    }
    CHECK_GET(c, K("api:ctr"), "10", 2, 0);

    CHECK_STATUS(mcrs_client_touch(NULL, K("api:n1"), 0, OFF), MCRS_STATUS_NULL_POINTER);
    CHECK_STATUS(mcrs_client_touch(c, NULL, 6, 0, OFF), MCRS_STATUS_NULL_POINTER);
    CHECK_STATUS(mcrs_client_flush_all(NULL, 0, OFF), MCRS_STATUS_NULL_POINTER);
    CHECK_STATUS(mcrs_client_flush_all(NULL, 0, MCRS_NOREPLY_ON), MCRS_STATUS_NULL_POINTER);

    /* stats */
    mcrs_stats *s = TU_SENTINEL;
    CHECK_STATUS(mcrs_client_stats(NULL, "", &s), MCRS_STATUS_NULL_POINTER);
    CHECK(s == NULL, "stats(NULL client) must set *out = NULL");
    s = TU_SENTINEL;
    CHECK_STATUS(mcrs_client_stats(c, NULL, &s), MCRS_STATUS_NULL_POINTER);
    CHECK(s == NULL, "stats(NULL args) must set *out = NULL");
    CHECK_STATUS(mcrs_client_stats(c, "", NULL), MCRS_STATUS_NULL_POINTER);
    CHECK(mcrs_stats_len(NULL) == 0, "mcrs_stats_len(NULL)");
    const char *srv = "x", *name = "x", *val = "x";
    CHECK_STATUS(mcrs_stats_get(NULL, 0, &srv, &name, &val), MCRS_STATUS_NULL_POINTER);
    mcrs_stats_free(NULL);
    s = NULL;
    CHECK_OK(mcrs_client_stats(c, "", &s));
    REQUIRE(s != NULL && mcrs_stats_len(s) > 0, "stats");
    CHECK_STATUS(mcrs_stats_get(s, 0, NULL, &name, &val), MCRS_STATUS_NULL_POINTER);
    CHECK_STATUS(mcrs_stats_get(s, 0, &srv, NULL, &val), MCRS_STATUS_NULL_POINTER);
    CHECK_STATUS(mcrs_stats_get(s, 0, &srv, &name, NULL), MCRS_STATUS_NULL_POINTER);
    mcrs_stats_free(s);

    char buf[64];
    CHECK_STATUS(mcrs_client_version(NULL, buf, sizeof buf), MCRS_STATUS_NULL_POINTER);
    CHECK_STATUS(mcrs_client_version(c, NULL, 64), MCRS_STATUS_NULL_POINTER);
    CHECK_STATUS(mcrs_client_cache_memlimit(NULL, 64, OFF), MCRS_STATUS_NULL_POINTER);
    CHECK_STATUS(mcrs_client_verbosity(NULL, 0, OFF), MCRS_STATUS_NULL_POINTER);
    CHECK_STATUS(mcrs_client_quit(NULL), MCRS_STATUS_NULL_POINTER);

    /* last_error with buf NULL and len 0 is allowed */
    (void)mcrs_last_error(NULL, 0);
}

static void test_config_validation(void) {
    mcrs_config *cfg = mcrs_config_new();
    REQUIRE(cfg != NULL, "mcrs_config_new");
    const char *srv = tu_server();
    CHECK_STATUS(mcrs_config_add_server_weighted(cfg, srv, 0), MCRS_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(mcrs_config_set_connect_timeout_ms(cfg, 0), MCRS_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(mcrs_config_set_timeout_ms(cfg, 0), MCRS_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(mcrs_config_set_max_pool_size(cfg, 0), MCRS_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(mcrs_config_set_distribution(cfg, 3), MCRS_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(mcrs_config_set_distribution(cfg, 0xffffffffu), MCRS_STATUS_INVALID_ARGUMENT);

    /* no servers yet: NO_SERVERS, *out = NULL */
    mcrs_client *out = TU_SENTINEL;
    CHECK_STATUS(mcrs_client_new(cfg, &out), MCRS_STATUS_NO_SERVERS);
    CHECK(out == NULL, "mcrs_client_new without servers must set *out = NULL");

    /* every setter accepts a valid value, and the client works with them */
    CHECK_OK(mcrs_config_add_server_weighted(cfg, srv, 3));
    CHECK_OK(mcrs_config_set_distribution(cfg, MCRS_DISTRIBUTION_RENDEZVOUS));
    CHECK_OK(mcrs_config_set_distribution(cfg, MCRS_DISTRIBUTION_KETAMA));
    CHECK_OK(mcrs_config_set_distribution(cfg, MCRS_DISTRIBUTION_XXH3));
    CHECK_OK(mcrs_config_set_connect_timeout_ms(cfg, 1500));
    CHECK_OK(mcrs_config_set_timeout_ms(cfg, 4000));
    CHECK_OK(mcrs_config_set_no_delay(cfg, true));
    CHECK_OK(mcrs_config_set_no_delay(cfg, false));
    CHECK_OK(mcrs_config_set_keepalive(cfg, true));
    CHECK_OK(mcrs_config_set_ignore_exc(cfg, false));
    CHECK_OK(mcrs_config_set_default_noreply(cfg, false));
    CHECK_OK(mcrs_config_set_allow_unicode_keys(cfg, false));
    CHECK_OK(mcrs_config_set_retry_attempts(cfg, 0));
    CHECK_OK(mcrs_config_set_retry_attempts(cfg, 5));
    CHECK_OK(mcrs_config_set_retry_timeout_ms(cfg, 500));
    CHECK_OK(mcrs_config_set_dead_timeout_ms(cfg, 30000));
    CHECK_OK(mcrs_config_set_max_pool_size(cfg, 1));
    CHECK_OK(mcrs_config_set_pool_idle_timeout_ms(cfg, 10000));
    CHECK_OK(mcrs_config_set_key_prefix(cfg, K("cv:")));
    mcrs_client *cl = tu_client_from(cfg);
    /* the client owns its settings: freeing / changing the config does not affect it */
    CHECK_OK(mcrs_config_set_key_prefix(cfg, K("changed:")));
    mcrs_config_free(cfg);
    CHECK_OK(mcrs_client_set(cl, K("k"), K("v"), 0, 0, MCRS_NOREPLY_DEFAULT));
    CHECK_GET(c, K("cv:k"), "v", 1, 0);
    CHECK_GET(cl, K("k"), "v", 1, 0);
    mcrs_client_free(cl);
}

static void test_bad_addresses(void) {
    mcrs_config *cfg = mcrs_config_new();
    REQUIRE(cfg != NULL, "mcrs_config_new");
    const char *bad[] = {"",           "127.0.0.1:",      "127.0.0.1:abc", "127.0.0.1:99999",
                         "127.0.0.1:-1", "[::1",          "[::1]:x",       "unix:",
                         ":11211",     "127.0.0.1:11211:1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        mcrs_status st = mcrs_config_add_server(cfg, bad[i]);
        CHECK(st == MCRS_STATUS_INVALID_ARGUMENT, "add_server(\"%s\"): %s", bad[i],
              mcrs_status_str(st));
        st = mcrs_config_add_server_weighted(cfg, bad[i], 1);
        CHECK(st == MCRS_STATUS_INVALID_ARGUMENT, "add_server_weighted(\"%s\"): %s", bad[i],
              mcrs_status_str(st));
    }
    /* none of them were added */
    mcrs_client *out = TU_SENTINEL;
    CHECK_STATUS(mcrs_client_new(cfg, &out), MCRS_STATUS_NO_SERVERS);
    CHECK(out == NULL, "*out = NULL");
    /* well-formed forms are accepted (connection is lazy) */
    const char *good[] = {"127.0.0.1:11211", "localhost", "localhost:1", "[::1]:11211",
                          "unix:/tmp/mcrs-no-such.sock", "/tmp/mcrs-no-such.sock"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        mcrs_status st = mcrs_config_add_server(cfg, good[i]);
        CHECK(st == MCRS_STATUS_OK, "add_server(\"%s\"): %s", good[i], mcrs_status_str(st));
    }
    mcrs_config_free(cfg);
}

static mcrs_client *client_for_closed_port(void) {
    mcrs_config *cfg = tu_config_for(tu_closed_port_addr());
    CHECK_OK(mcrs_config_set_default_noreply(cfg, false));
    mcrs_client *cl = tu_client_from(cfg);
    mcrs_config_free(cfg);
    return cl;
}

static void test_connect_failed(void) {
    /* fresh clients, so that no server-health bookkeeping interferes */
    mcrs_client *cl = client_for_closed_port();
    mcrs_value *v = TU_SENTINEL;
    CHECK_STATUS(mcrs_client_get(cl, K("k"), &v), MCRS_STATUS_CONNECT_FAILED);
    CHECK(v == NULL, "failed get must set *out = NULL");
    char err[256];
    size_t n = mcrs_last_error(err, sizeof err);
    CHECK(n > 0, "CONNECT_FAILED must leave a last error");
    printf("   connect error: \"%s\"\n", err);
    mcrs_client_free(cl);

    cl = client_for_closed_port();
    CHECK_STATUS(mcrs_client_set(cl, K("k"), K("v"), 0, 0, MCRS_NOREPLY_OFF),
                 MCRS_STATUS_CONNECT_FAILED);
    mcrs_client_free(cl);

    cl = client_for_closed_port();
    CHECK_STATUS(mcrs_client_set(cl, K("k"), K("v"), 0, 0, MCRS_NOREPLY_ON),
                 MCRS_STATUS_CONNECT_FAILED);
    mcrs_client_free(cl);

    cl = client_for_closed_port();
    char ver[64];
    CHECK_STATUS(mcrs_client_version(cl, ver, sizeof ver), MCRS_STATUS_CONNECT_FAILED);
    mcrs_client_free(cl);

    /* a unix socket path that does not exist */
    mcrs_config *cfg = tu_config_for("unix:/nonexistent-dir-mcrs/memcached.sock");
    cl = tu_client_from(cfg);
    mcrs_config_free(cfg);
    v = TU_SENTINEL;
    CHECK_STATUS(mcrs_client_get(cl, K("k"), &v), MCRS_STATUS_CONNECT_FAILED);
    CHECK(v == NULL, "failed get must set *out = NULL");
    mcrs_client_free(cl);
}

static void test_ignore_exc(void) {
    mcrs_config *cfg = tu_config_for(tu_closed_port_addr());
    CHECK_OK(mcrs_config_set_ignore_exc(cfg, true));
    mcrs_client *cl = tu_client_from(cfg);
    mcrs_config_free(cfg);

    /* reads become misses */
    mcrs_value *v = TU_SENTINEL;
    CHECK_STATUS(mcrs_client_get(cl, K("k"), &v), MCRS_STATUS_NOT_FOUND);
    CHECK(v == NULL, "ignore_exc get miss: *out = NULL");
    v = TU_SENTINEL;
    CHECK_STATUS(mcrs_client_gets(cl, K("k"), &v), MCRS_STATUS_NOT_FOUND);
    CHECK(v == NULL, "ignore_exc gets miss: *out = NULL");
    const uint8_t *keys[] = {B("a"), B("b")};
    const size_t lens[] = {1, 1};
    mcrs_values *vs = NULL;
    CHECK_OK(mcrs_client_get_many(cl, keys, lens, 2, &vs));
    CHECK(vs != NULL && mcrs_values_len(vs) == 2 && mcrs_values_get(vs, 0) == NULL &&
              mcrs_values_get(vs, 1) == NULL,
          "ignore_exc get_many: all misses");
    mcrs_values_free(vs);
    vs = NULL;
    CHECK_OK(mcrs_client_gets_many(cl, keys, lens, 2, &vs));
    CHECK(vs != NULL && mcrs_values_len(vs) == 2 && mcrs_values_get(vs, 0) == NULL &&
              mcrs_values_get(vs, 1) == NULL,
          "ignore_exc gets_many: all misses");
    mcrs_values_free(vs);
    /* key validation still applies */
    CHECK_STATUS(mcrs_client_get(cl, K("bad key"), &v), MCRS_STATUS_INVALID_KEY);
    mcrs_client_free(cl);
}

/* ---- deliberately broken peers (not memcached): a silent listener and a garbage sender */

static int listen_loopback(unsigned *port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd >= 0, "socket");
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof sa;
    REQUIRE(bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0, "bind");
    REQUIRE(listen(fd, 16) == 0, "listen");
    REQUIRE(getsockname(fd, (struct sockaddr *)&sa, &sl) == 0, "getsockname");
    *port = ntohs(sa.sin_port);
    return fd;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_timeout_silent_peer(void) {
    /* the kernel completes the handshake, nobody ever answers */
    unsigned port;
    int lfd = listen_loopback(&port);
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%u", port);
    mcrs_config *cfg = tu_config_for(addr);
    CHECK_OK(mcrs_config_set_timeout_ms(cfg, 300));
    CHECK_OK(mcrs_config_set_default_noreply(cfg, false));
    mcrs_client *cl = tu_client_from(cfg);
    mcrs_config_free(cfg);
    mcrs_value *v = TU_SENTINEL;
    double t0 = now_s();
    CHECK_STATUS(mcrs_client_get(cl, K("k"), &v), MCRS_STATUS_TIMEOUT);
    double dt = now_s() - t0;
    CHECK(v == NULL, "timed-out get must set *out = NULL");
    CHECK(dt >= 0.25 && dt < 3.0, "timeout 300 ms took %.3f s", dt);
    CHECK(mcrs_last_error(NULL, 0) > 0, "TIMEOUT leaves a last error");
    mcrs_client_free(cl);
    close(lfd);
}

struct garbage_peer {
    int lfd;
    const char *reply;
};

static void *garbage_peer_main(void *arg) {
    struct garbage_peer *g = arg;
    int fd = accept(g->lfd, NULL, NULL);
    if (fd < 0)
        return NULL;
    char buf[4096];
    ssize_t n = read(fd, buf, sizeof buf); /* the request */
    (void)n;
    ssize_t w = write(fd, g->reply, strlen(g->reply));
    (void)w;
    usleep(200 * 1000);
    close(fd);
    return NULL;
}

static void garbage_case(const char *reply, int expect1, int expect2, const char *what) {
    unsigned port;
    struct garbage_peer g;
    g.lfd = listen_loopback(&port);
    g.reply = reply;
    pthread_t th;
    REQUIRE(pthread_create(&th, NULL, garbage_peer_main, &g) == 0, "pthread_create");
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%u", port);
    mcrs_config *cfg = tu_config_for(addr);
    CHECK_OK(mcrs_config_set_timeout_ms(cfg, 2000));
    CHECK_OK(mcrs_config_set_default_noreply(cfg, false));
    mcrs_client *cl = tu_client_from(cfg);
    mcrs_config_free(cfg);
    mcrs_value *v = TU_SENTINEL;
    mcrs_status st = mcrs_client_get(cl, K("k"), &v);
    CHECK((int)st == expect1 || (int)st == expect2, "%s: get gave %s, expected %s or %s", what,
          mcrs_status_str(st), mcrs_status_str((mcrs_status)expect1),
          mcrs_status_str((mcrs_status)expect2));
    CHECK(v == NULL, "%s: failed get must set *out = NULL", what);
    if (v != NULL && v != TU_SENTINEL)
        mcrs_value_free(v);
    pthread_join(th, NULL);
    mcrs_client_free(cl);
    close(g.lfd);
}

static void test_garbage_peers(void) {
    garbage_case("HELLO WORLD\r\n", MCRS_STATUS_PROTOCOL, MCRS_STATUS_PROTOCOL, "garbage line");
    garbage_case("VALUE k 0 999999\r\nshort", MCRS_STATUS_UNEXPECTED_CLOSE, MCRS_STATUS_PROTOCOL,
                 "truncated value then close");
    garbage_case("VALUE k zero 1\r\nx\r\nEND\r\n", MCRS_STATUS_PROTOCOL, MCRS_STATUS_PROTOCOL,
                 "non-numeric flags");
    garbage_case("VALUE other 0 1\r\nx\r\nEND\r\n", MCRS_STATUS_PROTOCOL, MCRS_STATUS_PROTOCOL,
                 "value for a key not asked for");
    garbage_case("", MCRS_STATUS_UNEXPECTED_CLOSE, MCRS_STATUS_IO, "close without reply");
}

int main(void) {
    c = tu_client(false);
    RUN(test_linkage);
    RUN(test_status_str);
    RUN(test_version);
    RUN(test_last_error);
    RUN(test_last_error_is_per_thread);
    RUN(test_null_config);
    RUN(test_null_client_calls);
    RUN(test_config_validation);
    RUN(test_bad_addresses);
    RUN(test_connect_failed);
    RUN(test_ignore_exc);
    RUN(test_timeout_silent_peer);
    RUN(test_garbage_peers);
    mcrs_client_free(c);
    TEST_MAIN_END();
}
