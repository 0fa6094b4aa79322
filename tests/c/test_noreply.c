/* noreply defaults and the integrity of the reply stream. */
#include "test_util.h"

static mcrs_client *nr; /* default_noreply = true (the default) */
static mcrs_client *rp; /* default_noreply = false */

static void test_default_is_noreply(void) {
    /* a client built without set_default_noreply uses noreply by default */
    mcrs_config *cfg = tu_config_for(tu_server());
    mcrs_client *d = tu_client_from(cfg);
    mcrs_config_free(cfg);
    CHECK_OK(mcrs_client_set(d, K("nr:def"), K("v"), 0, 0, MCRS_NOREPLY_DEFAULT));
    /* add on an existing key: a noreply add cannot know, so it reports OK ... */
    CHECK_OK(mcrs_client_add(d, K("nr:def"), K("other"), 0, 0, MCRS_NOREPLY_DEFAULT));
    /* ... while with replies it is NOT_STORED */
    CHECK_STATUS(mcrs_client_add(d, K("nr:def"), K("other"), 0, 0, MCRS_NOREPLY_OFF),
                 MCRS_STATUS_NOT_STORED);
    CHECK_GET(d, K("nr:def"), "v", 1, 0);
    mcrs_client_free(d);
}

static void test_noreply_set_then_get(void) {
    CHECK_OK(mcrs_client_set(nr, K("nr:a"), K("value-a"), 5, 0, MCRS_NOREPLY_DEFAULT));
    CHECK_GET(nr, K("nr:a"), "value-a", 7, 5);
    /* and another client sees it too */
    CHECK_GET(rp, K("nr:a"), "value-a", 7, 5);

    /* noreply replace/append/prepend */
    CHECK_OK(mcrs_client_replace(nr, K("nr:a"), K("b"), 6, 0, MCRS_NOREPLY_DEFAULT));
    CHECK_OK(mcrs_client_append(nr, K("nr:a"), K("c"), 0, 0, MCRS_NOREPLY_DEFAULT));
    CHECK_OK(mcrs_client_prepend(nr, K("nr:a"), K("a"), 0, 0, MCRS_NOREPLY_DEFAULT));
    CHECK_GET(nr, K("nr:a"), "abc", 3, 6);
    /* noreply ops that fail on the server still report OK, and leave the stream in sync */
    CHECK_OK(mcrs_client_replace(nr, K("nr:missing"), K("x"), 0, 0, MCRS_NOREPLY_DEFAULT));
    CHECK_OK(mcrs_client_append(nr, K("nr:missing"), K("x"), 0, 0, MCRS_NOREPLY_DEFAULT));
    CHECK_OK(mcrs_client_delete(nr, K("nr:missing"), MCRS_NOREPLY_DEFAULT));
    CHECK_OK(mcrs_client_touch(nr, K("nr:missing"), 10, MCRS_NOREPLY_DEFAULT));
    CHECK_MISS(nr, K("nr:missing"));
    CHECK_GET(nr, K("nr:a"), "abc", 3, 6);

    /* explicit OFF on a noreply client gets the real statuses */
    CHECK_STATUS(mcrs_client_add(nr, K("nr:a"), K("x"), 0, 0, MCRS_NOREPLY_OFF), MCRS_STATUS_NOT_STORED);
    CHECK_STATUS(mcrs_client_replace(nr, K("nr:missing"), K("x"), 0, 0, MCRS_NOREPLY_OFF),
                 MCRS_STATUS_NOT_STORED);
    CHECK_STATUS(mcrs_client_delete(nr, K("nr:missing"), MCRS_NOREPLY_OFF), MCRS_STATUS_NOT_FOUND);
    CHECK_STATUS(mcrs_client_touch(nr, K("nr:missing"), 1, MCRS_NOREPLY_OFF), MCRS_STATUS_NOT_FOUND);
}

static void test_reply_client(void) {
    /* on a default_noreply=false client, DEFAULT means replies */
    CHECK_OK(mcrs_client_set(rp, K("nr:r"), K("1"), 0, 0, MCRS_NOREPLY_DEFAULT));
    CHECK_STATUS(mcrs_client_add(rp, K("nr:r"), K("2"), 0, 0, MCRS_NOREPLY_DEFAULT),
                 MCRS_STATUS_NOT_STORED);
    CHECK_STATUS(mcrs_client_delete(rp, K("nr:missing"), MCRS_NOREPLY_DEFAULT), MCRS_STATUS_NOT_FOUND);
    CHECK_STATUS(mcrs_client_touch(rp, K("nr:missing"), 1, MCRS_NOREPLY_DEFAULT), MCRS_STATUS_NOT_FOUND);
    /* explicit ON overrides */
    CHECK_OK(mcrs_client_add(rp, K("nr:r"), K("2"), 0, 0, MCRS_NOREPLY_ON));
    CHECK_OK(mcrs_client_delete(rp, K("nr:missing"), MCRS_NOREPLY_ON));
    CHECK_GET(rp, K("nr:r"), "1", 1, 0);
}

static void test_cas_incr_default_to_replies(void) {
    /* cas, incr, decr default to replies even when default_noreply is on */
    CHECK_OK(mcrs_client_set(nr, K("nr:cas"), K("x"), 0, 0, MCRS_NOREPLY_OFF));
    mcrs_value *v = NULL;
    CHECK_OK(mcrs_client_gets(nr, K("nr:cas"), &v));
    uint64_t cas = mcrs_value_cas(v);
    mcrs_value_free(v);
    CHECK_OK(mcrs_client_cas(nr, K("nr:cas"), K("y"), 0, 0, cas, MCRS_NOREPLY_DEFAULT));
    CHECK_STATUS(mcrs_client_cas(nr, K("nr:cas"), K("z"), 0, 0, cas, MCRS_NOREPLY_DEFAULT),
                 MCRS_STATUS_EXISTS);
    CHECK_STATUS(mcrs_client_cas(nr, K("nr:cas-missing"), K("z"), 0, 0, cas, MCRS_NOREPLY_DEFAULT),
                 MCRS_STATUS_NOT_FOUND);
    /* with noreply ON a stale cas reports OK and changes nothing */
    CHECK_OK(mcrs_client_cas(nr, K("nr:cas"), K("z"), 0, 0, cas, MCRS_NOREPLY_ON));
    CHECK_GET(nr, K("nr:cas"), "y", 1, 0);

    CHECK_OK(mcrs_client_set(nr, K("nr:ctr"), K("41"), 0, 0, MCRS_NOREPLY_DEFAULT));
    uint64_t n = 0;
    CHECK_OK(mcrs_client_incr(nr, K("nr:ctr"), 1, MCRS_NOREPLY_DEFAULT, &n));
    CHECK(n == 42, "incr with DEFAULT on a noreply client must reply: got %llu", (unsigned long long)n);
    n = 0;
    CHECK_OK(mcrs_client_decr(nr, K("nr:ctr"), 2, MCRS_NOREPLY_DEFAULT, &n));
    CHECK(n == 40, "decr with DEFAULT on a noreply client must reply: got %llu", (unsigned long long)n);
    CHECK_STATUS(mcrs_client_incr(nr, K("nr:missing"), 1, MCRS_NOREPLY_DEFAULT, &n),
                 MCRS_STATUS_NOT_FOUND);
    /* noreply incr on a non-numeric value: OK, and the stream stays in sync */
    CHECK_OK(mcrs_client_set(nr, K("nr:abc"), K("abc"), 0, 0, MCRS_NOREPLY_DEFAULT));
    CHECK_OK(mcrs_client_incr(nr, K("nr:abc"), 1, MCRS_NOREPLY_ON, &n));
    CHECK_GET(nr, K("nr:abc"), "abc", 3, 0);
    CHECK_GET(nr, K("nr:ctr"), "40", 2, 0);
}

static void test_too_large_value(void) {
    /* memcached's default item size limit is 1 MiB: 2 MiB is rejected by the server */
    size_t big_len = 2 * 1024 * 1024;
    uint8_t *big = malloc(big_len);
    REQUIRE(big != NULL, "malloc");
    /* the payload looks like protocol to catch a shifted reply stream */
    static const char pattern[] = "VALUE nr:other 0 5\r\nWRONG\r\nEND\r\nSTORED\r\n";
    for (size_t i = 0; i < big_len; i++)
        big[i] = (uint8_t)pattern[i % (sizeof pattern - 1)];

    CHECK_OK(mcrs_client_set(rp, K("nr:other"), K("right"), 1, 0, MCRS_NOREPLY_OFF));

    /* noreply (explicit and default): OK once written; the next get reads the right value */
    for (int round = 0; round < 2; round++) {
        mcrs_noreply mode = round == 0 ? MCRS_NOREPLY_ON : MCRS_NOREPLY_DEFAULT;
        CHECK_OK(mcrs_client_set(nr, K("nr:big"), big, big_len, 0, 0, mode));
        CHECK_GET(nr, K("nr:other"), "right", 5, 1);
        CHECK_MISS(nr, K("nr:big"));
    }
    /* several in a row, then a get */
    for (int i = 0; i < 3; i++)
        CHECK_OK(mcrs_client_set(nr, K("nr:big"), big, big_len, 0, 0, MCRS_NOREPLY_ON));
    CHECK_OK(mcrs_client_set(nr, K("nr:after"), K("after"), 2, 0, MCRS_NOREPLY_ON));
    CHECK_GET(nr, K("nr:after"), "after", 5, 2);
    CHECK_GET(nr, K("nr:other"), "right", 5, 1);

    /* with replies: SERVER_ERROR, and the stream stays in sync as well */
    CHECK_STATUS(mcrs_client_set(rp, K("nr:big"), big, big_len, 0, 0, MCRS_NOREPLY_OFF),
                 MCRS_STATUS_SERVER_ERROR);
    CHECK_GET(rp, K("nr:other"), "right", 5, 1);
    CHECK_MISS(rp, K("nr:big"));
    free(big);
}

static void test_pipelined_noreply_order(void) {
    /* 1000 noreply writes to one key; the last one wins and a get sees it */
    char val[32];
    for (int i = 0; i < 1000; i++) {
        int n = snprintf(val, sizeof val, "v%d", i);
        CHECK_OK(mcrs_client_set(nr, K("nr:seq"), B(val), (size_t)n, (uint32_t)i, 0,
                                 MCRS_NOREPLY_DEFAULT));
    }
    CHECK_GET(nr, K("nr:seq"), "v999", 4, 999);
    /* noreply delete followed by add with reply */
    CHECK_OK(mcrs_client_delete(nr, K("nr:seq"), MCRS_NOREPLY_DEFAULT));
    CHECK_OK(mcrs_client_add(nr, K("nr:seq"), K("new"), 0, 0, MCRS_NOREPLY_OFF));
    CHECK_GET(nr, K("nr:seq"), "new", 3, 0);
}

static void test_noreply_admin(void) {
    CHECK_OK(mcrs_client_set(nr, K("nr:fl"), K("x"), 0, 0, MCRS_NOREPLY_DEFAULT));
    CHECK_OK(mcrs_client_flush_all(nr, 0, MCRS_NOREPLY_DEFAULT));
    CHECK_MISS(nr, K("nr:fl"));
    CHECK_OK(mcrs_client_verbosity(nr, 0, MCRS_NOREPLY_DEFAULT));
    CHECK_OK(mcrs_client_cache_memlimit(nr, 64, MCRS_NOREPLY_DEFAULT));
    CHECK_OK(mcrs_client_set(nr, K("nr:fl"), K("y"), 0, 0, MCRS_NOREPLY_DEFAULT));
    CHECK_GET(nr, K("nr:fl"), "y", 1, 0);
}

int main(void) {
    nr = tu_client(true);
    rp = tu_client(false);
    RUN(test_default_is_noreply);
    RUN(test_noreply_set_then_get);
    RUN(test_reply_client);
    RUN(test_cas_incr_default_to_replies);
    RUN(test_too_large_value);
    RUN(test_pipelined_noreply_order);
    RUN(test_noreply_admin);
    mcrs_client_free(nr);
    mcrs_client_free(rp);
    TEST_MAIN_END();
}
