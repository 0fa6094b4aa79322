/* Meta get, leases and stale-while-revalidate through the C ABI: states, tokens,
   value accessors, invalidate, a lost lease, base64 keys, null/argument checks, and
   a herd of pthreads on one cold key making exactly one backend call. */
#include "test_util.h"

#include <pthread.h>

static char keybuf[128];
static const uint8_t *key(const char *name, size_t *len) {
    int n = snprintf(keybuf, sizeof keybuf, "%s:lease:%s", tu_run_id(), name);
    *len = (size_t)n;
    return (const uint8_t *)keybuf;
}

static void test_miss_win_wait_hit(void) {
    mcrs_client *c = tu_client(false);
    size_t kl;
    const uint8_t *k = key("cold", &kl);
    mcrs_lease st = MCRS_LEASE_HIT;
    uint64_t token = 0;
    mcrs_value *v = TU_SENTINEL;
    CHECK_OK(mcrs_client_lease_get(c, k, kl, 30, &st, &token, &v));
    CHECK(st == MCRS_LEASE_WON && token != 0 && v == NULL, "first caller wins: %d", (int)st);
    uint64_t won = token;

    mcrs_value *w = TU_SENTINEL;
    CHECK_OK(mcrs_client_lease_get(c, k, kl, 30, &st, &token, &w));
    CHECK(st == MCRS_LEASE_WAIT && token == 0 && w == NULL, "second caller waits: %d", (int)st);

    /* WAIT still after a short wait: nobody set the value */
    CHECK_OK(mcrs_client_lease_get_or_wait(c, k, kl, 30, 20, &st, &token, &w));
    CHECK(st == MCRS_LEASE_WAIT && w == NULL, "still waiting: %d", (int)st);

    CHECK_OK(mcrs_client_lease_set(c, k, kl, K("computed"), 5, 60, won));
    CHECK_OK(mcrs_client_lease_get(c, k, kl, 30, &st, &token, &w));
    CHECK(st == MCRS_LEASE_HIT && token == 0, "hit after lease_set: %d", (int)st);
    CHECK(tu_value_is(w, "computed", 8, 5), "the computed value");
    CHECK(mcrs_value_ttl(w) > 50 && mcrs_value_ttl(w) <= 60, "ttl %lld",
          (long long)mcrs_value_ttl(w));
    CHECK(mcrs_value_cas(w) != 0, "lease values carry their cas");
    mcrs_value_free(w);
    /* the lease was used: its token no longer stores */
    CHECK_STATUS(mcrs_client_lease_set(c, k, kl, K("again"), 0, 60, won), MCRS_STATUS_EXISTS);
    CHECK_GET(c, k, kl, "computed", 8, 5);
    mcrs_client_free(c);
}

static void test_meta_get_accessors(void) {
    mcrs_client *c = tu_client(false);
    size_t kl;
    const uint8_t *k = key("meta", &kl);
    mcrs_value *v = TU_SENTINEL;
    CHECK_STATUS(mcrs_client_meta_get(c, k, kl, &v), MCRS_STATUS_NOT_FOUND);
    CHECK(v == NULL, "miss sets *out = NULL");
    CHECK_OK(mcrs_client_set(c, k, kl, K("abc"), 7, 100, MCRS_NOREPLY_OFF));
    CHECK_OK(mcrs_client_meta_get(c, k, kl, &v));
    CHECK(tu_value_is(v, "abc", 3, 7), "meta get value");
    CHECK(mcrs_value_ttl(v) >= 98 && mcrs_value_ttl(v) <= 100, "ttl %lld",
          (long long)mcrs_value_ttl(v));
    CHECK(mcrs_value_hit_before(v) == 0, "first read: not hit before");
    CHECK(mcrs_value_last_access(v) >= 0, "last access known");
    mcrs_value_free(v);
    CHECK_OK(mcrs_client_meta_get(c, k, kl, &v));
    CHECK(mcrs_value_hit_before(v) == 1, "second read: hit before");
    mcrs_value_free(v);
    /* classic reads do not know */
    CHECK_OK(mcrs_client_get(c, k, kl, &v));
    CHECK(mcrs_value_ttl(v) == -2 && mcrs_value_last_access(v) == -1 &&
              mcrs_value_hit_before(v) == -1,
          "classic get: meta fields unknown");
    mcrs_value_free(v);
    CHECK(mcrs_value_ttl(NULL) == -2 && mcrs_value_last_access(NULL) == -1 &&
              mcrs_value_hit_before(NULL) == -1,
          "NULL value accessors");
    mcrs_client_free(c);
}

static void test_invalidate_serves_stale(void) {
    mcrs_client *c = tu_client(false);
    size_t kl;
    const uint8_t *k = key("stale", &kl);
    CHECK_OK(mcrs_client_set(c, k, kl, K("old"), 1, 300, MCRS_NOREPLY_OFF));
    CHECK_OK(mcrs_client_invalidate(c, k, kl, 30));
    mcrs_lease st;
    uint64_t token = 0, t2 = 0;
    mcrs_value *v = NULL, *s = NULL;
    CHECK_OK(mcrs_client_lease_get(c, k, kl, 30, &st, &token, &v));
    CHECK(st == MCRS_LEASE_WON && token != 0, "one wins: %d", (int)st);
    CHECK(tu_value_is(v, "old", 3, 1), "the winner gets the stale value");
    CHECK_OK(mcrs_client_lease_get(c, k, kl, 30, &st, &t2, &s));
    CHECK(st == MCRS_LEASE_STALE && t2 == 0, "the rest get it stale: %d", (int)st);
    CHECK(tu_value_is(s, "old", 3, 1), "the stale value");
    CHECK(mcrs_value_ttl(s) <= 30, "the stale ttl applies");
    mcrs_value_free(v);
    mcrs_value_free(s);
    /* invalidated again while recomputing: the lease is lost */
    CHECK_OK(mcrs_client_invalidate(c, k, kl, 30));
    CHECK_STATUS(mcrs_client_lease_set(c, k, kl, K("late"), 0, 300, token), MCRS_STATUS_EXISTS);
    CHECK_OK(mcrs_client_lease_get(c, k, kl, 30, &st, &token, &v));
    CHECK(st == MCRS_LEASE_WON && tu_value_is(v, "old", 3, 1), "a new lease on the stale value");
    mcrs_value_free(v);
    CHECK_OK(mcrs_client_lease_set(c, k, kl, K("new"), 2, 300, token));
    CHECK_GET(c, k, kl, "new", 3, 2);
    CHECK_STATUS(mcrs_client_invalidate(c, K("absent:lease:key"), 30), MCRS_STATUS_NOT_FOUND);
    mcrs_client_free(c);
}

static void test_base64_keys(void) {
    mcrs_config *cfg = tu_config_for(tu_server());
    CHECK_OK(mcrs_config_set_base64_keys(cfg, true));
    CHECK_OK(mcrs_config_set_recache_threshold(cfg, 0));
    CHECK_STATUS(mcrs_config_set_recache_threshold(cfg, 60u * 60 * 24 * 31),
                 MCRS_STATUS_INVALID_ARGUMENT);
    mcrs_client *c = tu_client_from(cfg);
    mcrs_config_free(cfg);
    uint8_t bin[40];
    for (size_t i = 0; i < sizeof bin; i++)
        bin[i] = (uint8_t)(i * 37 + getpid());
    bin[0] = 0;
    bin[1] = ' ';
    CHECK_OK(mcrs_client_lease_set(c, bin, sizeof bin, K("binary"), 3, 0, 0));
    mcrs_value *v = NULL;
    CHECK_OK(mcrs_client_meta_get(c, bin, sizeof bin, &v));
    CHECK(tu_value_is(v, "binary", 6, 3), "binary key round-trips");
    mcrs_value_free(v);
    /* classic commands still refuse it */
    CHECK_STATUS(mcrs_client_get(c, bin, sizeof bin, &v), MCRS_STATUS_INVALID_KEY);
    uint8_t big[187] = {0};
    CHECK_STATUS(mcrs_client_meta_get(c, big, sizeof big, &v), MCRS_STATUS_INVALID_KEY);
    CHECK(v == NULL, "*out = NULL on failure");
    mcrs_client_free(c);

    mcrs_client *plain = tu_client(false);
    CHECK_STATUS(mcrs_client_meta_get(plain, bin, sizeof bin, &v), MCRS_STATUS_INVALID_KEY);
    mcrs_client_free(plain);
}

static void test_arguments(void) {
    mcrs_client *c = tu_client(false);
    mcrs_lease st;
    uint64_t token;
    mcrs_value *v = TU_SENTINEL;
    CHECK_STATUS(mcrs_client_lease_get(NULL, K("k"), 30, &st, &token, &v),
                 MCRS_STATUS_NULL_POINTER);
    CHECK(v == NULL, "*out cleared before the other checks");
    CHECK_STATUS(mcrs_client_lease_get(c, K("k"), 30, NULL, &token, &v), MCRS_STATUS_NULL_POINTER);
    CHECK_STATUS(mcrs_client_lease_get(c, K("k"), 30, &st, NULL, &v), MCRS_STATUS_NULL_POINTER);
    CHECK_STATUS(mcrs_client_lease_get(c, K("k"), 30, &st, &token, NULL), MCRS_STATUS_NULL_POINTER);
    CHECK_STATUS(mcrs_client_lease_get(c, NULL, 1, 30, &st, &token, &v), MCRS_STATUS_NULL_POINTER);
    CHECK_STATUS(mcrs_client_lease_get(c, K("k"), 0, &st, &token, &v),
                 MCRS_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(mcrs_client_lease_get(c, K("bad key"), 30, &st, &token, &v),
                 MCRS_STATUS_INVALID_KEY);
    CHECK_STATUS(mcrs_client_lease_get_or_wait(c, K("k"), 30, 10, &st, &token, NULL),
                 MCRS_STATUS_NULL_POINTER);
    CHECK_STATUS(mcrs_client_lease_set(NULL, K("k"), K("v"), 0, 0, 1), MCRS_STATUS_NULL_POINTER);
    CHECK_STATUS(mcrs_client_lease_set(c, K("k"), NULL, 1, 0, 0, 1), MCRS_STATUS_NULL_POINTER);
    CHECK_STATUS(mcrs_client_invalidate(NULL, K("k"), 0), MCRS_STATUS_NULL_POINTER);
    CHECK_STATUS(mcrs_client_meta_get(c, K("k"), NULL), MCRS_STATUS_NULL_POINTER);
    CHECK_STATUS(mcrs_config_set_base64_keys(NULL, true), MCRS_STATUS_NULL_POINTER);
    CHECK_STATUS(mcrs_config_set_recache_threshold(NULL, 1), MCRS_STATUS_NULL_POINTER);
    mcrs_client_free(c);
}

/* ---- a herd of threads on one cold key ---- */

enum { HERD = 16 };
static atomic_int backend_calls;
static pthread_barrier_t herd_start;

struct herd_arg {
    const mcrs_client *c;
    const uint8_t *key;
    size_t key_len;
    int ok;
};

static void *herd_main(void *p) {
    struct herd_arg *a = p;
    pthread_barrier_wait(&herd_start);
    mcrs_lease st;
    uint64_t token;
    mcrs_value *v = NULL;
    if (mcrs_client_lease_get_or_wait(a->c, a->key, a->key_len, 10, 3000, &st, &token, &v) !=
        MCRS_STATUS_OK)
        return NULL;
    if (st == MCRS_LEASE_WON) {
        atomic_fetch_add(&backend_calls, 1);
        usleep(50 * 1000); /* the expensive recompute */
        a->ok = mcrs_client_lease_set(a->c, a->key, a->key_len, K("expensive"), 0, 60, token) ==
                MCRS_STATUS_OK;
    } else {
        a->ok = st == MCRS_LEASE_HIT && tu_value_is(v, "expensive", 9, 0);
    }
    mcrs_value_free(v);
    return NULL;
}

static void test_herd_one_backend_call(void) {
    mcrs_client *c = tu_client(false);
    size_t kl;
    const uint8_t *k = key("herd", &kl);
    pthread_t t[HERD];
    struct herd_arg args[HERD];
    pthread_barrier_init(&herd_start, NULL, HERD);
    for (int i = 0; i < HERD; i++) {
        args[i] = (struct herd_arg){c, k, kl, 0};
        REQUIRE(pthread_create(&t[i], NULL, herd_main, &args[i]) == 0, "pthread_create");
    }
    int ok = 0;
    for (int i = 0; i < HERD; i++) {
        pthread_join(t[i], NULL);
        ok += args[i].ok;
    }
    pthread_barrier_destroy(&herd_start);
    CHECK(atomic_load(&backend_calls) == 1, "%d backend calls", atomic_load(&backend_calls));
    CHECK(ok == HERD, "%d of %d callers got the value", ok, HERD);
    mcrs_client_free(c);
}

int main(void) {
    RUN(test_miss_win_wait_hit);
    RUN(test_meta_get_accessors);
    RUN(test_invalidate_serves_stale);
    RUN(test_base64_keys);
    RUN(test_arguments);
    RUN(test_herd_one_backend_call);
    TEST_MAIN_END();
}
