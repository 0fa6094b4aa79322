/* Every data command against a real memcached, with its result statuses. */
#include "test_util.h"

#include <stdint.h>

static mcrs_client *c; /* default_noreply = false: replies by default */

static void test_set_get(void) {
    CHECK_OK(mcrs_client_set(c, K("cmd:set"), K("hello"), 0, 0, MCRS_NOREPLY_OFF));
    CHECK_GET(c, K("cmd:set"), "hello", 5, 0);
    /* overwrite, other flags */
    CHECK_OK(mcrs_client_set(c, K("cmd:set"), K("world!"), 0xdeadbeefu, 0, MCRS_NOREPLY_OFF));
    CHECK_GET(c, K("cmd:set"), "world!", 6, 0xdeadbeefu);
    /* all-ones flags round-trip */
    CHECK_OK(mcrs_client_set(c, K("cmd:flags"), K("f"), UINT32_MAX, 0, MCRS_NOREPLY_OFF));
    CHECK_GET(c, K("cmd:flags"), "f", 1, UINT32_MAX);

    /* get miss: NOT_FOUND and *out = NULL */
    CHECK_MISS(c, K("cmd:never-set"));

    /* get returns cas 0, gets returns the real cas */
    mcrs_value *v = NULL;
    CHECK_OK(mcrs_client_get(c, K("cmd:set"), &v));
    CHECK(v != NULL && mcrs_value_cas(v) == 0, "get must report cas 0, got %llu",
          (unsigned long long)mcrs_value_cas(v));
    mcrs_value_free(v);
}

static void test_binary_values(void) {
    static const uint8_t bin[] = "a\0b\r\nEND\r\nVALUE x 0 1\r\n\0\0\r\n\xff\xfe";
    const size_t bin_len = sizeof bin - 1;
    CHECK_OK(mcrs_client_set(c, K("cmd:bin"), bin, bin_len, 7, 0, MCRS_NOREPLY_OFF));
    CHECK_GET(c, K("cmd:bin"), bin, bin_len, 7);

    /* a value that is exactly a protocol terminator */
    CHECK_OK(mcrs_client_set(c, K("cmd:end"), K("\r\nEND\r\n"), 0, 0, MCRS_NOREPLY_OFF));
    CHECK_GET(c, K("cmd:end"), "\r\nEND\r\n", 7, 0);

    /* empty value, with a non-NULL and a NULL pointer */
    CHECK_OK(mcrs_client_set(c, K("cmd:empty"), B(""), 0, 3, 0, MCRS_NOREPLY_OFF));
    CHECK_GET(c, K("cmd:empty"), "", 0, 3);
    CHECK_OK(mcrs_client_set(c, K("cmd:empty2"), NULL, 0, 4, 0, MCRS_NOREPLY_OFF));
    CHECK_GET(c, K("cmd:empty2"), "", 0, 4);

    /* all 256 byte values, 512 KiB of pseudo-random bytes */
    size_t big_len = 512 * 1024;
    uint8_t *big = malloc(big_len);
    REQUIRE(big != NULL, "malloc");
    uint32_t x = 12345;
    for (size_t i = 0; i < big_len; i++) {
        x = x * 1103515245u + 12345u;
        big[i] = (i < 256) ? (uint8_t)i : (uint8_t)(x >> 16);
    }
    CHECK_OK(mcrs_client_set(c, K("cmd:big"), big, big_len, 0, 0, MCRS_NOREPLY_OFF));
    CHECK_GET(c, K("cmd:big"), big, big_len, 0);
    free(big);
}

static void test_add_replace(void) {
    CHECK_OK(mcrs_client_delete(c, K("cmd:add"), MCRS_NOREPLY_ON));
    CHECK_OK(mcrs_client_add(c, K("cmd:add"), K("first"), 1, 0, MCRS_NOREPLY_OFF));
    CHECK_STATUS(mcrs_client_add(c, K("cmd:add"), K("second"), 2, 0, MCRS_NOREPLY_OFF),
                 MCRS_STATUS_NOT_STORED);
    CHECK_GET(c, K("cmd:add"), "first", 5, 1);

    CHECK_STATUS(mcrs_client_replace(c, K("cmd:replace-missing"), K("x"), 0, 0, MCRS_NOREPLY_OFF),
                 MCRS_STATUS_NOT_STORED);
    CHECK_MISS(c, K("cmd:replace-missing"));
    CHECK_OK(mcrs_client_replace(c, K("cmd:add"), K("replaced"), 9, 0, MCRS_NOREPLY_OFF));
    CHECK_GET(c, K("cmd:add"), "replaced", 8, 9);
}

static void test_append_prepend(void) {
    CHECK_OK(mcrs_client_set(c, K("cmd:ap"), K("b"), 42, 0, MCRS_NOREPLY_OFF));
    CHECK_OK(mcrs_client_append(c, K("cmd:ap"), K("c"), 0, 0, MCRS_NOREPLY_OFF));
    CHECK_OK(mcrs_client_prepend(c, K("cmd:ap"), K("a"), 0, 0, MCRS_NOREPLY_OFF));
    /* append/prepend keep the original flags */
    CHECK_GET(c, K("cmd:ap"), "abc", 3, 42);
    CHECK_OK(mcrs_client_append(c, K("cmd:ap"), K("\0\r\n"), 0, 0, MCRS_NOREPLY_OFF));
    CHECK_GET(c, K("cmd:ap"), "abc\0\r\n", 6, 42);

    CHECK_STATUS(mcrs_client_append(c, K("cmd:ap-missing"), K("x"), 0, 0, MCRS_NOREPLY_OFF),
                 MCRS_STATUS_NOT_STORED);
    CHECK_STATUS(mcrs_client_prepend(c, K("cmd:ap-missing"), K("x"), 0, 0, MCRS_NOREPLY_OFF),
                 MCRS_STATUS_NOT_STORED);
    CHECK_MISS(c, K("cmd:ap-missing"));
}

static void test_cas_gets(void) {
    CHECK_OK(mcrs_client_set(c, K("cmd:cas"), K("v1"), 5, 0, MCRS_NOREPLY_OFF));
    mcrs_value *v = NULL;
    CHECK_OK(mcrs_client_gets(c, K("cmd:cas"), &v));
    CHECK(tu_value_is(v, "v1", 2, 5), "gets value");
    uint64_t cas1 = mcrs_value_cas(v);
    CHECK(cas1 != 0, "gets must return a non-zero cas");
    mcrs_value_free(v);

    CHECK_OK(mcrs_client_cas(c, K("cmd:cas"), K("v2"), 6, 0, cas1, MCRS_NOREPLY_OFF));
    CHECK_GET(c, K("cmd:cas"), "v2", 2, 6);
    /* the cas is stale now */
    CHECK_STATUS(mcrs_client_cas(c, K("cmd:cas"), K("v3"), 6, 0, cas1, MCRS_NOREPLY_OFF),
                 MCRS_STATUS_EXISTS);
    /* cas defaults to replies even on a default_noreply client (tested in test_noreply) */
    CHECK_STATUS(mcrs_client_cas(c, K("cmd:cas"), K("v3"), 6, 0, cas1, MCRS_NOREPLY_DEFAULT),
                 MCRS_STATUS_EXISTS);
    CHECK_GET(c, K("cmd:cas"), "v2", 2, 6);

    v = NULL;
    CHECK_OK(mcrs_client_gets(c, K("cmd:cas"), &v));
    uint64_t cas2 = mcrs_value_cas(v);
    CHECK(cas2 != 0 && cas2 != cas1, "cas must change after a store (%llu vs %llu)",
          (unsigned long long)cas2, (unsigned long long)cas1);
    mcrs_value_free(v);

    CHECK_STATUS(mcrs_client_cas(c, K("cmd:cas-missing"), K("x"), 0, 0, cas2, MCRS_NOREPLY_OFF),
                 MCRS_STATUS_NOT_FOUND);
    CHECK_MISS(c, K("cmd:cas-missing"));

    /* gets miss */
    v = TU_SENTINEL;
    CHECK_STATUS(mcrs_client_gets(c, K("cmd:cas-missing"), &v), MCRS_STATUS_NOT_FOUND);
    CHECK(v == NULL, "gets miss must set *out = NULL");
}

static void test_gat_gats(void) {
    CHECK_OK(mcrs_client_set(c, K("cmd:gat"), K("gv"), 11, 0, MCRS_NOREPLY_OFF));
    mcrs_value *v = NULL;
    CHECK_OK(mcrs_client_gat(c, K("cmd:gat"), 3600, &v));
    CHECK(tu_value_is(v, "gv", 2, 11), "gat value");
    CHECK(mcrs_value_cas(v) == 0, "gat must report cas 0");
    mcrs_value_free(v);

    v = NULL;
    CHECK_OK(mcrs_client_gats(c, K("cmd:gat"), 3600, &v));
    CHECK(tu_value_is(v, "gv", 2, 11), "gats value");
    uint64_t cas = mcrs_value_cas(v);
    CHECK(cas != 0, "gats must return a cas");
    mcrs_value_free(v);
    /* the gats cas is usable */
    CHECK_OK(mcrs_client_cas(c, K("cmd:gat"), K("gv2"), 11, 0, cas, MCRS_NOREPLY_OFF));
    CHECK_GET(c, K("cmd:gat"), "gv2", 3, 11);

    v = TU_SENTINEL;
    CHECK_STATUS(mcrs_client_gat(c, K("cmd:gat-missing"), 10, &v), MCRS_STATUS_NOT_FOUND);
    CHECK(v == NULL, "gat miss must set *out = NULL");
    v = TU_SENTINEL;
    CHECK_STATUS(mcrs_client_gats(c, K("cmd:gat-missing"), 10, &v), MCRS_STATUS_NOT_FOUND);
    CHECK(v == NULL, "gats miss must set *out = NULL");
}

static void test_get_many(void) {
    CHECK_OK(mcrs_client_set(c, K("cmd:m1"), K("one"), 1, 0, MCRS_NOREPLY_OFF));
    CHECK_OK(mcrs_client_delete(c, K("cmd:m2"), MCRS_NOREPLY_ON));
    CHECK_OK(mcrs_client_set(c, K("cmd:m3"), K("three\r\n"), 3, 0, MCRS_NOREPLY_OFF));
    CHECK_OK(mcrs_client_set(c, K("cmd:m4"), B(""), 0, 4, 0, MCRS_NOREPLY_OFF));

    const uint8_t *keys[] = {B("cmd:m1"), B("cmd:m2"), B("cmd:m3"), B("cmd:m1"), B("cmd:m4")};
    const size_t lens[] = {6, 6, 6, 6, 6};
    const size_t n = 5;

    for (int with_cas = 0; with_cas < 2; with_cas++) {
        mcrs_values *vs = NULL;
        if (with_cas)
            CHECK_OK(mcrs_client_gets_many(c, keys, lens, n, &vs));
        else
            CHECK_OK(mcrs_client_get_many(c, keys, lens, n, &vs));
        REQUIRE(vs != NULL, "get_many returned no result");
        CHECK(mcrs_values_len(vs) == n, "values_len %zu, expected %zu", mcrs_values_len(vs), n);
        const mcrs_value *v0 = mcrs_values_get(vs, 0);
        const mcrs_value *v1 = mcrs_values_get(vs, 1);
        const mcrs_value *v2 = mcrs_values_get(vs, 2);
        const mcrs_value *v3 = mcrs_values_get(vs, 3);
        const mcrs_value *v4 = mcrs_values_get(vs, 4);
        CHECK(tu_value_is(v0, "one", 3, 1), "get_many[0] (with_cas=%d)", with_cas);
        CHECK(v1 == NULL, "get_many[1] is a miss and must be NULL (with_cas=%d)", with_cas);
        CHECK(tu_value_is(v2, "three\r\n", 7, 3), "get_many[2] (with_cas=%d)", with_cas);
        CHECK(tu_value_is(v3, "one", 3, 1), "get_many[3], a repeated key (with_cas=%d)", with_cas);
        CHECK(tu_value_is(v4, "", 0, 4), "get_many[4], an empty value (with_cas=%d)", with_cas);
        CHECK(mcrs_values_get(vs, n) == NULL, "index out of range must give NULL");
        CHECK(mcrs_values_get(vs, SIZE_MAX) == NULL, "index SIZE_MAX must give NULL");
        if (with_cas) {
            CHECK(v0 && mcrs_value_cas(v0) != 0, "gets_many must report cas");
            CHECK(v2 && mcrs_value_cas(v2) != 0, "gets_many must report cas");
            CHECK(v0 && v3 && mcrs_value_cas(v0) == mcrs_value_cas(v3), "same key, same cas");
        } else {
            CHECK(v0 && mcrs_value_cas(v0) == 0, "get_many must report cas 0");
        }
        mcrs_values_free(vs);
    }

    /* n == 0, keys may be NULL */
    mcrs_values *vs = TU_SENTINEL;
    CHECK_OK(mcrs_client_get_many(c, NULL, NULL, 0, &vs));
    CHECK(vs != NULL && vs != TU_SENTINEL && mcrs_values_len(vs) == 0, "empty get_many");
    if (vs != TU_SENTINEL)
        mcrs_values_free(vs);
    vs = TU_SENTINEL;
    CHECK_OK(mcrs_client_gets_many(c, NULL, NULL, 0, &vs));
    CHECK(vs != NULL && vs != TU_SENTINEL && mcrs_values_len(vs) == 0, "empty gets_many");
    if (vs != TU_SENTINEL)
        mcrs_values_free(vs);

    /* all misses */
    const uint8_t *miss_keys[] = {B("cmd:nx1"), B("cmd:nx2")};
    const size_t miss_lens[] = {7, 7};
    vs = NULL;
    CHECK_OK(mcrs_client_get_many(c, miss_keys, miss_lens, 2, &vs));
    CHECK(vs != NULL && mcrs_values_len(vs) == 2 && mcrs_values_get(vs, 0) == NULL &&
              mcrs_values_get(vs, 1) == NULL,
          "all-miss get_many gives n NULL entries");
    mcrs_values_free(vs);

    /* many keys in one request (more than fits one 2 KiB line) */
    enum { MANY = 300 };
    static char kbuf[MANY][32];
    const uint8_t *mk[MANY];
    size_t ml[MANY];
    for (int i = 0; i < MANY; i++) {
        int len = snprintf(kbuf[i], sizeof kbuf[i], "cmd:many:%d", i);
        mk[i] = B(kbuf[i]);
        ml[i] = (size_t)len;
        if (i % 3 != 0)
            CHECK_OK(mcrs_client_set(c, mk[i], ml[i], mk[i], ml[i], (uint32_t)i, 0, MCRS_NOREPLY_ON));
        else
            CHECK_OK(mcrs_client_delete(c, mk[i], ml[i], MCRS_NOREPLY_ON));
    }
    vs = NULL;
    CHECK_OK(mcrs_client_get_many(c, mk, ml, MANY, &vs));
    REQUIRE(vs != NULL && mcrs_values_len(vs) == MANY, "get_many of %d keys", MANY);
    int bad = 0;
    for (int i = 0; i < MANY; i++) {
        const mcrs_value *v = mcrs_values_get(vs, (size_t)i);
        if (i % 3 == 0 ? v != NULL : !tu_value_is(v, mk[i], ml[i], (uint32_t)i))
            bad++;
    }
    CHECK(bad == 0, "%d of %d get_many results wrong", bad, MANY);
    mcrs_values_free(vs);
}

static void test_set_many(void) {
    const uint8_t *keys[] = {B("cmd:sm1"), B("cmd:sm2"), B("cmd:sm3")};
    const size_t klens[] = {7, 7, 7};
    const uint8_t *vals[] = {B("x"), B("\0\r\n"), NULL};
    const size_t vlens[] = {1, 3, 0};
    const uint32_t flags[] = {0, 2, 16};
    size_t failed[3] = {99, 99, 99};
    size_t n_failed = 99;
    CHECK_OK(mcrs_client_set_many(c, keys, klens, vals, vlens, flags, 3, 0, MCRS_NOREPLY_OFF, failed,
                                  &n_failed));
    CHECK(n_failed == 0, "n_failed %zu", n_failed);
    CHECK_GET(c, K("cmd:sm1"), "x", 1, 0);
    CHECK_GET(c, K("cmd:sm2"), "\0\r\n", 3, 2);
    CHECK_GET(c, K("cmd:sm3"), "", 0, 16);

    /* noreply: OK and n_failed 0 */
    const uint8_t *vals2[] = {B("y"), B("z"), B("w")};
    const size_t vlens2[] = {1, 1, 1};
    n_failed = 99;
    CHECK_OK(mcrs_client_set_many(c, keys, klens, vals2, vlens2, flags, 3, 0, MCRS_NOREPLY_ON, failed,
                                  &n_failed));
    CHECK(n_failed == 0, "noreply set_many: n_failed %zu", n_failed);
    CHECK_GET(c, K("cmd:sm1"), "y", 1, 0);
    CHECK_GET(c, K("cmd:sm2"), "z", 1, 2);
    CHECK_GET(c, K("cmd:sm3"), "w", 1, 16);

    /* n == 0 */
    n_failed = 99;
    CHECK_OK(mcrs_client_set_many(c, keys, klens, vals2, vlens2, flags, 0, 0, MCRS_NOREPLY_OFF, failed,
                                  &n_failed));
    CHECK(n_failed == 0, "empty set_many: n_failed %zu", n_failed);
}

/* A large multi-key round trip: 2000 keys of 250 bytes (a 500 KB get line) with 4 KiB values
   (8 MB of replies). A client that writes the whole request before reading can deadlock
   here once the socket buffers fill; a client that splits it wrongly loses order. */
static void test_large_multi(void) {
    enum { N = 2000, KL = 250, VL = 4096 };
    uint8_t *kmem = malloc((size_t)N * KL), *vmem = malloc((size_t)N * VL);
    const uint8_t **keys = malloc(N * sizeof *keys), **vals = malloc(N * sizeof *vals);
    size_t *klens = malloc(N * sizeof *klens), *vlens = malloc(N * sizeof *vlens);
    size_t *failed = malloc(N * sizeof *failed);
    uint32_t *flags = malloc(N * sizeof *flags);
    REQUIRE(kmem && vmem && keys && vals && klens && vlens && failed && flags, "malloc");
    for (int i = 0; i < N; i++) {
        uint8_t *k = kmem + (size_t)i * KL, *v = vmem + (size_t)i * VL;
        memset(k, 'k', KL);
        int n = snprintf((char *)k, KL, "cmd:large:%d:", i);
        k[n] = 'k'; /* overwrite snprintf's NUL */
        for (int j = 0; j < VL; j++)
            v[j] = (uint8_t)(i * 31 + j * 7);
        keys[i] = k;
        vals[i] = v;
        klens[i] = KL;
        vlens[i] = VL;
        flags[i] = (uint32_t)i;
    }
    size_t n_failed = 999;
    CHECK_OK(mcrs_client_set_many(c, keys, klens, vals, vlens, flags, N, 0, MCRS_NOREPLY_OFF, failed,
                                  &n_failed));
    CHECK(n_failed == 0, "large set_many: n_failed %zu", n_failed);
    /* every 5th key missing */
    for (int i = 0; i < N; i += 5)
        CHECK_OK(mcrs_client_delete(c, keys[i], klens[i], MCRS_NOREPLY_ON));
    for (int with_cas = 0; with_cas < 2; with_cas++) {
        mcrs_values *vs = NULL;
        if (with_cas)
            CHECK_OK(mcrs_client_gets_many(c, keys, klens, N, &vs));
        else
            CHECK_OK(mcrs_client_get_many(c, keys, klens, N, &vs));
        int bad = 0;
        for (int i = 0; vs && i < N; i++) {
            const mcrs_value *v = mcrs_values_get(vs, (size_t)i);
            if (i % 5 == 0 ? v != NULL : !tu_value_is(v, vals[i], VL, flags[i]))
                bad++;
        }
        CHECK(vs && mcrs_values_len(vs) == N && bad == 0, "large get(s)_many: %d of %d wrong", bad, N);
        mcrs_values_free(vs);
    }
    /* some keys are already gone: OK or NOT_FOUND, but all are deleted afterwards */
    mcrs_status st = mcrs_client_delete_many(c, keys, klens, N, MCRS_NOREPLY_OFF);
    CHECK(st == MCRS_STATUS_OK || st == MCRS_STATUS_NOT_FOUND, "large delete_many: %s",
          mcrs_status_str(st));
    mcrs_values *left = NULL;
    CHECK_OK(mcrs_client_get_many(c, keys, klens, N, &left));
    int remaining = 0;
    for (int i = 0; left && i < N; i++)
        remaining += mcrs_values_get(left, (size_t)i) != NULL;
    CHECK(left && remaining == 0, "large delete_many left %d keys", remaining);
    mcrs_values_free(left);
    /* ~1,000,000-byte value: under memcached's 1 MiB item limit, read in many chunks */
    size_t big = 1000 * 1000;
    uint8_t *bv = malloc(big);
    REQUIRE(bv != NULL, "malloc");
    for (size_t j = 0; j < big; j++)
        bv[j] = (uint8_t)(j * 131 + 7);
    CHECK_OK(mcrs_client_set(c, K("cmd:1mb"), bv, big, 77, 0, MCRS_NOREPLY_OFF));
    CHECK_GET(c, K("cmd:1mb"), bv, big, 77);
    free(bv);
    free(kmem);
    free(vmem);
    free(keys);
    free(vals);
    free(klens);
    free(vlens);
    free(failed);
    free(flags);
}

static void test_delete(void) {
    CHECK_OK(mcrs_client_set(c, K("cmd:del"), K("x"), 0, 0, MCRS_NOREPLY_OFF));
    CHECK_OK(mcrs_client_delete(c, K("cmd:del"), MCRS_NOREPLY_OFF));
    CHECK_MISS(c, K("cmd:del"));
    CHECK_STATUS(mcrs_client_delete(c, K("cmd:del"), MCRS_NOREPLY_OFF), MCRS_STATUS_NOT_FOUND);
    /* noreply delete of a missing key is OK (nothing to read) */
    CHECK_OK(mcrs_client_delete(c, K("cmd:del"), MCRS_NOREPLY_ON));

    const uint8_t *keys[] = {B("cmd:dm1"), B("cmd:dm2"), B("cmd:dm3")};
    const size_t lens[] = {7, 7, 7};
    for (int i = 0; i < 3; i++)
        CHECK_OK(mcrs_client_set(c, keys[i], lens[i], K("v"), 0, 0, MCRS_NOREPLY_OFF));
    CHECK_OK(mcrs_client_delete_many(c, keys, lens, 3, MCRS_NOREPLY_OFF));
    for (int i = 0; i < 3; i++)
        CHECK_MISS(c, keys[i], lens[i]);

    /* with one key missing: the others are still deleted */
    CHECK_OK(mcrs_client_set(c, keys[0], lens[0], K("v"), 0, 0, MCRS_NOREPLY_OFF));
    CHECK_OK(mcrs_client_set(c, keys[2], lens[2], K("v"), 0, 0, MCRS_NOREPLY_OFF));
    mcrs_status st = mcrs_client_delete_many(c, keys, lens, 3, MCRS_NOREPLY_OFF);
    CHECK(st == MCRS_STATUS_OK || st == MCRS_STATUS_NOT_FOUND,
          "delete_many with a missing key: got %s", mcrs_status_str(st));
    CHECK_MISS(c, keys[0], lens[0]);
    CHECK_MISS(c, keys[2], lens[2]);

    /* noreply */
    for (int i = 0; i < 3; i++)
        CHECK_OK(mcrs_client_set(c, keys[i], lens[i], K("v"), 0, 0, MCRS_NOREPLY_OFF));
    CHECK_OK(mcrs_client_delete_many(c, keys, lens, 3, MCRS_NOREPLY_ON));
    for (int i = 0; i < 3; i++)
        CHECK_MISS(c, keys[i], lens[i]);

    CHECK_OK(mcrs_client_delete_many(c, NULL, NULL, 0, MCRS_NOREPLY_OFF));
}

/* memcached's decr pads a shorter result with trailing spaces ("12" - 12 -> "0 "): compare the
   number only. */
static void check_number(const char *key, size_t key_len, const char *expect, uint32_t flags,
                         int line) {
    mcrs_value *v = NULL;
    mcrs_status st = mcrs_client_get(c, B(key), key_len, &v);
    size_t n = mcrs_value_len(v);
    const char *d = (const char *)mcrs_value_data(v);
    while (n > 0 && d[n - 1] == ' ')
        n--;
    CHECK(st == MCRS_STATUS_OK && n == strlen(expect) && memcmp(d, expect, n) == 0 &&
              mcrs_value_flags(v) == flags,
          "line %d: %s is \"%.*s\" flags %u (%s), expected \"%s\" flags %u", line, key,
          (int)mcrs_value_len(v), d ? d : "", (unsigned)mcrs_value_flags(v), mcrs_status_str(st),
          expect, (unsigned)flags);
    mcrs_value_free(v);
}

static void test_incr_decr(void) {
    uint64_t nv = 777;
    CHECK_OK(mcrs_client_set(c, K("cmd:ctr"), K("10"), 2, 0, MCRS_NOREPLY_OFF));
    CHECK_OK(mcrs_client_incr(c, K("cmd:ctr"), 5, MCRS_NOREPLY_OFF, &nv));
    CHECK(nv == 15, "incr 10+5 gave %llu", (unsigned long long)nv);
    CHECK_OK(mcrs_client_decr(c, K("cmd:ctr"), 3, MCRS_NOREPLY_DEFAULT, &nv));
    CHECK(nv == 12, "decr 15-3 gave %llu", (unsigned long long)nv);
    /* decr clamps at 0 */
    CHECK_OK(mcrs_client_decr(c, K("cmd:ctr"), 100, MCRS_NOREPLY_OFF, &nv));
    CHECK(nv == 0, "decr below zero gave %llu", (unsigned long long)nv);
    /* incr keeps the flags */
    check_number("cmd:ctr", 7, "0", 2, __LINE__);

    /* incr wraps at 2^64 */
    CHECK_OK(mcrs_client_set(c, K("cmd:ctr"), K("18446744073709551615"), 0, 0, MCRS_NOREPLY_OFF));
    nv = 777;
    CHECK_OK(mcrs_client_incr(c, K("cmd:ctr"), 1, MCRS_NOREPLY_OFF, &nv));
    CHECK(nv == 0, "incr wrap gave %llu", (unsigned long long)nv);
    CHECK_OK(mcrs_client_incr(c, K("cmd:ctr"), UINT64_MAX, MCRS_NOREPLY_OFF, &nv));
    CHECK(nv == UINT64_MAX, "incr by UINT64_MAX gave %llu", (unsigned long long)nv);

    /* noreply: OK, new_value untouched, and the value changed */
    CHECK_OK(mcrs_client_set(c, K("cmd:ctr"), K("100"), 0, 0, MCRS_NOREPLY_OFF));
    nv = 777;
    CHECK_OK(mcrs_client_incr(c, K("cmd:ctr"), 1, MCRS_NOREPLY_ON, &nv));
    CHECK(nv == 777, "noreply incr must not write new_value (got %llu)", (unsigned long long)nv);
    CHECK_OK(mcrs_client_decr(c, K("cmd:ctr"), 11, MCRS_NOREPLY_ON, &nv));
    CHECK(nv == 777, "noreply decr must not write new_value (got %llu)", (unsigned long long)nv);
    check_number("cmd:ctr", 7, "90", 0, __LINE__);

    /* missing key */
    nv = 777;
    CHECK_STATUS(mcrs_client_incr(c, K("cmd:ctr-missing"), 1, MCRS_NOREPLY_OFF, &nv),
                 MCRS_STATUS_NOT_FOUND);
    CHECK_STATUS(mcrs_client_decr(c, K("cmd:ctr-missing"), 1, MCRS_NOREPLY_OFF, &nv),
                 MCRS_STATUS_NOT_FOUND);
    CHECK(nv == 777, "new_value must not be written on NOT_FOUND");

    /* non-numeric value */
    CHECK_OK(mcrs_client_set(c, K("cmd:abc"), K("abc"), 0, 0, MCRS_NOREPLY_OFF));
    CHECK_STATUS(mcrs_client_incr(c, K("cmd:abc"), 1, MCRS_NOREPLY_OFF, &nv), MCRS_STATUS_CLIENT_ERROR);
    CHECK_STATUS(mcrs_client_decr(c, K("cmd:abc"), 1, MCRS_NOREPLY_OFF, &nv), MCRS_STATUS_CLIENT_ERROR);
    CHECK(nv == 777, "new_value must not be written on CLIENT_ERROR");
    /* the connection is still in sync after the error */
    CHECK_GET(c, K("cmd:abc"), "abc", 3, 0);
}

static void test_exptime(void) {
    const uint32_t too_big = (uint32_t)INT32_MAX + 1u;
    mcrs_value *v;
    uint64_t cas = 1;
    size_t failed[1], n_failed = 0;
    const uint8_t *keys[] = {B("cmd:exp")};
    const size_t lens[] = {7};
    const uint8_t *vals[] = {B("x")};
    const uint32_t flags[] = {0};

    CHECK_OK(mcrs_client_set(c, K("cmd:exp"), K("orig"), 0, 0, MCRS_NOREPLY_OFF));
    CHECK_STATUS(mcrs_client_set(c, K("cmd:exp"), K("x"), 0, too_big, MCRS_NOREPLY_OFF),
                 MCRS_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(mcrs_client_set(c, K("cmd:exp"), K("x"), 0, UINT32_MAX, MCRS_NOREPLY_ON),
                 MCRS_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(mcrs_client_add(c, K("cmd:exp"), K("x"), 0, too_big, MCRS_NOREPLY_OFF),
                 MCRS_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(mcrs_client_replace(c, K("cmd:exp"), K("x"), 0, too_big, MCRS_NOREPLY_OFF),
                 MCRS_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(mcrs_client_append(c, K("cmd:exp"), K("x"), 0, too_big, MCRS_NOREPLY_OFF),
                 MCRS_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(mcrs_client_prepend(c, K("cmd:exp"), K("x"), 0, too_big, MCRS_NOREPLY_OFF),
                 MCRS_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(mcrs_client_cas(c, K("cmd:exp"), K("x"), 0, too_big, cas, MCRS_NOREPLY_OFF),
                 MCRS_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(mcrs_client_set_many(c, keys, lens, vals, lens, flags, 1, too_big, MCRS_NOREPLY_OFF,
                                      failed, &n_failed),
                 MCRS_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(mcrs_client_touch(c, K("cmd:exp"), too_big, MCRS_NOREPLY_OFF),
                 MCRS_STATUS_INVALID_ARGUMENT);
    v = TU_SENTINEL;
    CHECK_STATUS(mcrs_client_gat(c, K("cmd:exp"), too_big, &v), MCRS_STATUS_INVALID_ARGUMENT);
    CHECK(v == NULL, "gat failure must set *out = NULL");
    v = TU_SENTINEL;
    CHECK_STATUS(mcrs_client_gats(c, K("cmd:exp"), too_big, &v), MCRS_STATUS_INVALID_ARGUMENT);
    CHECK(v == NULL, "gats failure must set *out = NULL");
    /* nothing was changed by the rejected calls */
    CHECK_GET(c, K("cmd:exp"), "orig", 4, 0);

    /* INT32_MAX itself is fine (an absolute time in 2038) */
    CHECK_OK(mcrs_client_set(c, K("cmd:exp"), K("max"), 0, (uint32_t)INT32_MAX, MCRS_NOREPLY_OFF));
    CHECK_GET(c, K("cmd:exp"), "max", 3, 0);
}

static void test_touch_and_expiry(void) {
    /* k1: set with exptime 1; k2: touch to 1; k3: gat to 1; k4: gats to 1;
       k5: set with exptime 1 then touched to 0 (never expires); k6: no exptime */
    CHECK_OK(mcrs_client_set(c, K("cmd:e1"), K("1"), 0, 1, MCRS_NOREPLY_OFF));
    CHECK_OK(mcrs_client_set(c, K("cmd:e2"), K("2"), 0, 0, MCRS_NOREPLY_OFF));
    CHECK_OK(mcrs_client_touch(c, K("cmd:e2"), 1, MCRS_NOREPLY_OFF));
    CHECK_OK(mcrs_client_set(c, K("cmd:e3"), K("3"), 0, 0, MCRS_NOREPLY_OFF));
    mcrs_value *v = NULL;
    CHECK_OK(mcrs_client_gat(c, K("cmd:e3"), 1, &v));
    mcrs_value_free(v);
    CHECK_OK(mcrs_client_set(c, K("cmd:e4"), K("4"), 0, 0, MCRS_NOREPLY_OFF));
    v = NULL;
    CHECK_OK(mcrs_client_gats(c, K("cmd:e4"), 1, &v));
    mcrs_value_free(v);
    CHECK_OK(mcrs_client_set(c, K("cmd:e5"), K("5"), 0, 1, MCRS_NOREPLY_OFF));
    CHECK_OK(mcrs_client_touch(c, K("cmd:e5"), 0, MCRS_NOREPLY_DEFAULT));
    CHECK_OK(mcrs_client_set(c, K("cmd:e6"), K("6"), 0, 0, MCRS_NOREPLY_OFF));

    CHECK_STATUS(mcrs_client_touch(c, K("cmd:touch-missing"), 10, MCRS_NOREPLY_OFF),
                 MCRS_STATUS_NOT_FOUND);
    CHECK_OK(mcrs_client_touch(c, K("cmd:touch-missing"), 10, MCRS_NOREPLY_ON));

    /* memcached's clock ticks once a second; 2.5 s is past any 1 s expiry */
    usleep(2500 * 1000);
    CHECK_MISS(c, K("cmd:e1"));
    CHECK_MISS(c, K("cmd:e2"));
    CHECK_MISS(c, K("cmd:e3"));
    CHECK_MISS(c, K("cmd:e4"));
    CHECK_GET(c, K("cmd:e5"), "5", 1, 0);
    CHECK_GET(c, K("cmd:e6"), "6", 1, 0);
}

static void test_flush_all(void) {
    CHECK_OK(mcrs_client_set(c, K("cmd:fl"), K("x"), 0, 0, MCRS_NOREPLY_OFF));
    /* a delayed flush leaves the item for now */
    CHECK_OK(mcrs_client_flush_all(c, 100, MCRS_NOREPLY_OFF));
    CHECK_GET(c, K("cmd:fl"), "x", 1, 0);
    CHECK_OK(mcrs_client_flush_all(c, 0, MCRS_NOREPLY_OFF));
    CHECK_MISS(c, K("cmd:fl"));

    CHECK_OK(mcrs_client_set(c, K("cmd:fl"), K("y"), 0, 0, MCRS_NOREPLY_OFF));
    CHECK_OK(mcrs_client_flush_all(c, 0, MCRS_NOREPLY_ON));
    CHECK_MISS(c, K("cmd:fl"));

    CHECK_OK(mcrs_client_set(c, K("cmd:fl"), K("z"), 0, 0, MCRS_NOREPLY_OFF));
    CHECK_OK(mcrs_client_flush_all(c, 0, MCRS_NOREPLY_DEFAULT));
    CHECK_MISS(c, K("cmd:fl"));
}

static void test_invalid_noreply_value(void) {
    uint64_t nv = 0;
    size_t failed[1], n_failed;
    const uint8_t *keys[] = {B("cmd:nr")};
    const size_t lens[] = {6};
    const uint32_t flags[] = {0};
    const mcrs_noreply bad = 3;
    CHECK_STATUS(mcrs_client_set(c, K("cmd:nr"), K("x"), 0, 0, bad), MCRS_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(mcrs_client_add(c, K("cmd:nr"), K("x"), 0, 0, bad), MCRS_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(mcrs_client_replace(c, K("cmd:nr"), K("x"), 0, 0, bad), MCRS_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(mcrs_client_append(c, K("cmd:nr"), K("x"), 0, 0, bad), MCRS_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(mcrs_client_prepend(c, K("cmd:nr"), K("x"), 0, 0, bad), MCRS_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(mcrs_client_cas(c, K("cmd:nr"), K("x"), 0, 0, 1, 0xffffffffu),
                 MCRS_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(mcrs_client_set_many(c, keys, lens, keys, lens, flags, 1, 0, bad, failed, &n_failed),
                 MCRS_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(mcrs_client_delete(c, K("cmd:nr"), bad), MCRS_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(mcrs_client_delete_many(c, keys, lens, 1, bad), MCRS_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(mcrs_client_incr(c, K("cmd:nr"), 1, bad, &nv), MCRS_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(mcrs_client_decr(c, K("cmd:nr"), 1, bad, &nv), MCRS_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(mcrs_client_touch(c, K("cmd:nr"), 0, bad), MCRS_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(mcrs_client_flush_all(c, 0, bad), MCRS_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(mcrs_client_cache_memlimit(c, 64, bad), MCRS_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(mcrs_client_verbosity(c, 0, bad), MCRS_STATUS_INVALID_ARGUMENT);
    /* none of them reached the server */
    CHECK_MISS(c, K("cmd:nr"));
}

/* get_into: the value lands in the caller's buffer; too small a buffer says
   how much is needed and writes nothing into it */
static void test_get_into(void) {
    uint8_t buf[16];
    size_t len = 12345;
    uint32_t flags = 777;
    CHECK_OK(mcrs_client_set(c, K("cmd:into"), K("hello into"), 42, 0, MCRS_NOREPLY_OFF));
    CHECK_OK(mcrs_client_get_into(c, K("cmd:into"), buf, sizeof buf, &len, &flags));
    CHECK(len == 10 && memcmp(buf, "hello into", 10) == 0 && flags == 42, "got %zu bytes, flags %u",
          len, flags);
    /* exactly the value's size fits; flags may be NULL */
    len = 0;
    CHECK_OK(mcrs_client_get_into(c, K("cmd:into"), buf, 10, &len, NULL));
    CHECK(len == 10);
    /* one byte short: BUFFER_TOO_SMALL, *len = the size needed, buf untouched */
    memset(buf, 'x', sizeof buf);
    len = 0;
    flags = 777;
    CHECK_STATUS(mcrs_client_get_into(c, K("cmd:into"), buf, 9, &len, &flags),
                 MCRS_STATUS_BUFFER_TOO_SMALL);
    CHECK(len == 10 && flags == 777 && buf[0] == 'x', "len %zu", len);
    /* the connection is still in step after the refused value */
    CHECK_OK(mcrs_client_get_into(c, K("cmd:into"), buf, sizeof buf, &len, &flags));
    CHECK(len == 10 && memcmp(buf, "hello into", 10) == 0);
    /* a miss writes nothing */
    len = 99;
    CHECK_STATUS(mcrs_client_get_into(c, K("cmd:into-miss"), buf, sizeof buf, &len, &flags),
                 MCRS_STATUS_NOT_FOUND);
    CHECK(len == 99);
    /* an empty value with no buffer at all */
    CHECK_OK(mcrs_client_set(c, K("cmd:into-empty"), NULL, 0, 5, 0, MCRS_NOREPLY_OFF));
    len = 99;
    CHECK_OK(mcrs_client_get_into(c, K("cmd:into-empty"), NULL, 0, &len, &flags));
    CHECK(len == 0 && flags == 5);
    /* NULLs and bad keys */
    CHECK_STATUS(mcrs_client_get_into(NULL, K("cmd:into"), buf, sizeof buf, &len, NULL),
                 MCRS_STATUS_NULL_POINTER);
    CHECK_STATUS(mcrs_client_get_into(c, K("cmd:into"), buf, sizeof buf, NULL, NULL),
                 MCRS_STATUS_NULL_POINTER);
    CHECK_STATUS(mcrs_client_get_into(c, K("cmd:into"), NULL, 4, &len, NULL),
                 MCRS_STATUS_NULL_POINTER);
    CHECK_STATUS(mcrs_client_get_into(c, K("bad key"), buf, sizeof buf, &len, NULL),
                 MCRS_STATUS_INVALID_KEY);
}

int main(void) {
    c = tu_client(false);
    RUN(test_set_get);
    RUN(test_binary_values);
    RUN(test_get_into);
    RUN(test_add_replace);
    RUN(test_append_prepend);
    RUN(test_cas_gets);
    RUN(test_gat_gats);
    RUN(test_get_many);
    RUN(test_set_many);
    RUN(test_large_multi);
    RUN(test_delete);
    RUN(test_incr_decr);
    RUN(test_exptime);
    RUN(test_invalid_noreply_value);
    RUN(test_touch_and_expiry);
    RUN(test_flush_all);
    mcrs_client_free(c);
    TEST_MAIN_END();
}
