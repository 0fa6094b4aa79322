/* stats, version, cache_memlimit, verbosity, quit. */
#include "test_util.h"

static mcrs_client *c;

/* Value of stat `name` (copied into buf) from `mcrs_client_stats(args)`; false if absent. */
static bool stat_value(const mcrs_client *cl, const char *args, const char *name, char *buf,
                       size_t cap) {
    mcrs_stats *s = NULL;
    mcrs_status st = mcrs_client_stats(cl, args, &s);
    CHECK(st == MCRS_STATUS_OK, "stats \"%s\": %s", args, mcrs_status_str(st));
    if (st != MCRS_STATUS_OK)
        return false;
    bool found = false;
    for (size_t i = 0; i < mcrs_stats_len(s); i++) {
        const char *srv = NULL, *n = NULL, *v = NULL;
        CHECK_OK(mcrs_stats_get(s, i, &srv, &n, &v));
        if (n && v && strcmp(n, name) == 0) {
            snprintf(buf, cap, "%s", v);
            found = true;
            break;
        }
    }
    mcrs_stats_free(s);
    return found;
}

static void test_stats(void) {
    const char *server = tu_server();
    mcrs_stats *s = TU_SENTINEL;
    CHECK_OK(mcrs_client_stats(c, "", &s));
    REQUIRE(s != NULL && s != TU_SENTINEL, "stats result");
    size_t n = mcrs_stats_len(s);
    CHECK(n > 20, "general stats has only %zu entries", n);
    bool have_pid = false, have_version = false, have_curr_items = false;
    char pid_str[32] = "";
    for (size_t i = 0; i < n; i++) {
        const char *srv = NULL, *name = NULL, *val = NULL;
        CHECK_OK(mcrs_stats_get(s, i, &srv, &name, &val));
        CHECK(srv != NULL && name != NULL && val != NULL, "stats entry %zu has NULL strings", i);
        if (!srv || !name || !val)
            continue;
        CHECK(strcmp(srv, server) == 0, "stats server \"%s\", expected \"%s\"", srv, server);
        CHECK(name[0] != '\0' && strpbrk(name, " \r\n") == NULL, "bad stat name \"%s\"", name);
        CHECK(strpbrk(val, "\r\n") == NULL, "stat value with CR/LF \"%s\"", val);
        if (strcmp(name, "pid") == 0) {
            have_pid = true;
            snprintf(pid_str, sizeof pid_str, "%s", val);
        }
        if (strcmp(name, "version") == 0)
            have_version = true;
        if (strcmp(name, "curr_items") == 0)
            have_curr_items = true;
    }
    CHECK(have_pid && have_version && have_curr_items, "general stats lack pid/version/curr_items");
    CHECK(atol(pid_str) > 0, "pid stat \"%s\"", pid_str);
    /* out of range */
    const char *srv = "x", *name = "x", *val = "x";
    mcrs_status st = mcrs_stats_get(s, n, &srv, &name, &val);
    CHECK(st != MCRS_STATUS_OK, "mcrs_stats_get(n) must fail, got OK");
    mcrs_stats_free(s);

    /* curr_items follows the data */
    CHECK_OK(mcrs_client_flush_all(c, 0, MCRS_NOREPLY_OFF));
    for (int i = 0; i < 7; i++) {
        char k[16];
        int kl = snprintf(k, sizeof k, "adm:%d", i);
        CHECK_OK(mcrs_client_set(c, B(k), (size_t)kl, K("v"), 0, 0, MCRS_NOREPLY_OFF));
    }
    char buf[64] = "";
    CHECK(stat_value(c, "", "curr_items", buf, sizeof buf) && strcmp(buf, "7") == 0,
          "curr_items \"%s\", expected 7", buf);

    /* sub-statistics */
    const char *subs[] = {"items", "slabs", "settings", "sizes", "conns"};
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++) {
        s = NULL;
        st = mcrs_client_stats(c, subs[i], &s);
        CHECK(st == MCRS_STATUS_OK, "stats %s: %s", subs[i], mcrs_status_str(st));
        CHECK(s != NULL && mcrs_stats_len(s) > 0, "stats %s is empty", subs[i]);
        mcrs_stats_free(s);
    }
    CHECK(stat_value(c, "settings", "tcpport", buf, sizeof buf) &&
              strcmp(buf, tu_env("MCRS_TEST_PORT")) == 0,
          "stats settings tcpport \"%s\"", buf);
    CHECK(stat_value(c, "items", "items:1:number", buf, sizeof buf) && strcmp(buf, "7") == 0,
          "stats items items:1:number \"%s\"", buf);

    /* an unknown sub-command fails, and the connection stays usable */
    s = TU_SENTINEL;
    st = mcrs_client_stats(c, "no-such-stats-group", &s);
    CHECK(st != MCRS_STATUS_OK, "stats no-such-stats-group must fail");
    CHECK(s == NULL, "failed stats must set *out = NULL");
    CHECK_GET(c, K("adm:1"), "v", 1, 0);

    /* args must not smuggle another command onto the wire */
    s = TU_SENTINEL;
    st = mcrs_client_stats(c, "items\r\nflush_all", &s);
    CHECK(st != MCRS_STATUS_OK, "stats args with CRLF must be rejected, got OK");
    if (st == MCRS_STATUS_OK)
        mcrs_stats_free(s);
    else
        CHECK(s == NULL, "failed stats must set *out = NULL");
    CHECK_GET(c, K("adm:1"), "v", 1, 0);
    s = TU_SENTINEL;
    st = mcrs_client_stats(c, "items\nflush_all", &s);
    CHECK(st != MCRS_STATUS_OK, "stats args with LF must be rejected, got OK");
    if (st == MCRS_STATUS_OK)
        mcrs_stats_free(s);
    CHECK_GET(c, K("adm:1"), "v", 1, 0);
}

static void test_version_cmd(void) {
    char ver[128];
    memset(ver, 'X', sizeof ver);
    CHECK_OK(mcrs_client_version(c, ver, sizeof ver));
    size_t len = strnlen(ver, sizeof ver);
    CHECK(len > 0 && len < sizeof ver, "version is empty or not NUL-terminated");
    CHECK(strncmp(ver, "VERSION", 7) != 0, "version must not include the VERSION keyword: %s", ver);
    CHECK(strpbrk(ver, "\r\n ") == NULL, "version has whitespace: \"%s\"", ver);
    printf("   server version: %s\n", ver);
    char sv[128] = "";
    CHECK(stat_value(c, "", "version", sv, sizeof sv) && strcmp(sv, ver) == 0,
          "version \"%s\" vs stats version \"%s\"", ver, sv);

    /* exactly enough room (len + NUL) works; one less is BUFFER_TOO_SMALL */
    char *exact = malloc(len + 1);
    REQUIRE(exact != NULL, "malloc");
    CHECK_OK(mcrs_client_version(c, exact, len + 1));
    CHECK(strcmp(exact, ver) == 0, "exact-size version \"%s\"", exact);
    free(exact);
    char small[8];
    memset(small, 'X', sizeof small);
    if (len >= 2) {
        CHECK_STATUS(mcrs_client_version(c, small, len), MCRS_STATUS_BUFFER_TOO_SMALL);
        CHECK(mcrs_last_error(NULL, 0) > 0, "BUFFER_TOO_SMALL leaves a last error");
    }
    CHECK_STATUS(mcrs_client_version(c, small, 1), MCRS_STATUS_BUFFER_TOO_SMALL);
    CHECK_STATUS(mcrs_client_version(c, small, 0), MCRS_STATUS_BUFFER_TOO_SMALL);
    CHECK(small[1] == 'X', "a too-small version call wrote past cap");
    /* connection still in sync */
    CHECK_GET(c, K("adm:1"), "v", 1, 0);
}

static void test_cache_memlimit(void) {
    char buf[64] = "";
    CHECK_OK(mcrs_client_cache_memlimit(c, 100, MCRS_NOREPLY_OFF));
    CHECK(stat_value(c, "settings", "maxbytes", buf, sizeof buf) && strcmp(buf, "104857600") == 0,
          "maxbytes \"%s\" after cache_memlimit 100", buf);
    CHECK(stat_value(c, "", "limit_maxbytes", buf, sizeof buf) && strcmp(buf, "104857600") == 0,
          "limit_maxbytes \"%s\" after cache_memlimit 100", buf);
    /* noreply */
    CHECK_OK(mcrs_client_cache_memlimit(c, 80, MCRS_NOREPLY_ON));
    CHECK(stat_value(c, "settings", "maxbytes", buf, sizeof buf) && strcmp(buf, "83886080") == 0,
          "maxbytes \"%s\" after noreply cache_memlimit 80", buf);
    /* the default for cache_memlimit is replies */
    CHECK_OK(mcrs_client_cache_memlimit(c, 64, MCRS_NOREPLY_DEFAULT));
    CHECK(stat_value(c, "settings", "maxbytes", buf, sizeof buf) && strcmp(buf, "67108864") == 0,
          "maxbytes \"%s\" after cache_memlimit 64", buf);
    /* memcached refuses less than 8 MB: a failure, and the stream stays in sync */
    mcrs_status st = mcrs_client_cache_memlimit(c, 4, MCRS_NOREPLY_OFF);
    CHECK(st != MCRS_STATUS_OK, "cache_memlimit 4 must fail (memcached: MEMLIMIT_TOO_SMALL)");
    CHECK(stat_value(c, "settings", "maxbytes", buf, sizeof buf) && strcmp(buf, "67108864") == 0,
          "maxbytes \"%s\" after refused cache_memlimit", buf);
    CHECK_GET(c, K("adm:1"), "v", 1, 0);
}

static void test_verbosity(void) {
    char buf[64] = "";
    CHECK_OK(mcrs_client_verbosity(c, 1, MCRS_NOREPLY_OFF));
    CHECK(stat_value(c, "settings", "verbosity", buf, sizeof buf) && strcmp(buf, "1") == 0,
          "verbosity \"%s\", expected 1", buf);
    CHECK_OK(mcrs_client_verbosity(c, 0, MCRS_NOREPLY_ON));
    CHECK(stat_value(c, "settings", "verbosity", buf, sizeof buf) && strcmp(buf, "0") == 0,
          "verbosity \"%s\", expected 0", buf);
    CHECK_OK(mcrs_client_verbosity(c, 1, MCRS_NOREPLY_DEFAULT));
    CHECK(stat_value(c, "settings", "verbosity", buf, sizeof buf) && strcmp(buf, "1") == 0,
          "verbosity \"%s\", expected 1", buf);
    CHECK_OK(mcrs_client_verbosity(c, 0, MCRS_NOREPLY_OFF));
}

static long stat_long(const char *name) {
    char buf[64] = "";
    bool ok = stat_value(c, "", name, buf, sizeof buf);
    CHECK(ok, "stat %s missing", name);
    return ok ? atol(buf) : -1;
}

static void test_quit(void) {
    CHECK_OK(mcrs_client_set(c, K("adm:q"), K("before"), 0, 0, MCRS_NOREPLY_OFF));
    long t1 = stat_long("total_connections");
    long t2 = stat_long("total_connections");
    CHECK(t1 > 0 && t2 == t1, "pooled connection is reused (total_connections %ld -> %ld)", t1, t2);
    CHECK_OK(mcrs_client_quit(c));
    /* the client reconnects on the next use */
    CHECK_GET(c, K("adm:q"), "before", 6, 0);
    long t3 = stat_long("total_connections");
    CHECK(t3 > t2, "quit must close the connection (total_connections %ld -> %ld)", t2, t3);
    /* quit twice, and on an idle client */
    CHECK_OK(mcrs_client_quit(c));
    CHECK_OK(mcrs_client_quit(c));
    CHECK_OK(mcrs_client_set(c, K("adm:q"), K("after"), 0, 0, MCRS_NOREPLY_OFF));
    CHECK_GET(c, K("adm:q"), "after", 5, 0);
    mcrs_client *fresh = tu_client(false);
    CHECK_OK(mcrs_client_quit(fresh));
    CHECK_GET(fresh, K("adm:q"), "after", 5, 0);
    mcrs_client_free(fresh);
}

/* Value of this client's counter `name` (for its only server); -1 if absent. */
static long long counter(const mcrs_client *cl, const char *name) {
    mcrs_stats *s = TU_SENTINEL;
    CHECK_OK(mcrs_client_counters(cl, &s));
    if (s == NULL || s == TU_SENTINEL)
        return -1;
    long long v = -1;
    for (size_t i = 0; i < mcrs_stats_len(s); i++) {
        const char *srv = NULL, *n = NULL, *val = NULL;
        CHECK_OK(mcrs_stats_get(s, i, &srv, &n, &val));
        CHECK(srv != NULL && strcmp(srv, tu_server()) == 0, "counter of server %s", srv ? srv : "?");
        if (strcmp(n, name) == 0)
            v = atoll(val);
    }
    mcrs_stats_free(s);
    return v;
}

static void test_counters(void) {
    mcrs_client *cl = tu_client(false);
    CHECK(counter(cl, "commands") == 0 && counter(cl, "connects") == 0, "a new client counts nothing");
    CHECK_OK(mcrs_client_set(cl, K("ctr:a"), (const uint8_t *)"1", 1, 0, 0, MCRS_NOREPLY_OFF));
    mcrs_value *v = NULL;
    CHECK_OK(mcrs_client_get(cl, K("ctr:a"), &v));
    mcrs_value_free(v);
    CHECK_STATUS(mcrs_client_delete(cl, K("ctr:missing"), MCRS_NOREPLY_OFF), MCRS_STATUS_NOT_FOUND);
    CHECK_STATUS(mcrs_client_get(cl, K("ctr:missing"), &v), MCRS_STATUS_NOT_FOUND);
    CHECK(counter(cl, "commands") == 4, "commands %lld", counter(cl, "commands"));
    CHECK(counter(cl, "hits") == 1 && counter(cl, "misses") == 1, "hits %lld misses %lld",
          counter(cl, "hits"), counter(cl, "misses"));
    CHECK(counter(cl, "connects") == 1 && counter(cl, "reconnects") == 0, "one connection");
    CHECK(counter(cl, "timeouts") == 0 && counter(cl, "state") == 0, "healthy");
    CHECK(counter(cl, "keys_tracked") == 0, "nothing tracked");
    mcrs_stats *s = TU_SENTINEL;
    CHECK_STATUS(mcrs_client_counters(NULL, &s), MCRS_STATUS_NULL_POINTER);
    CHECK(s == NULL, "out cleared on failure");
    CHECK_STATUS(mcrs_client_counters(cl, NULL), MCRS_STATUS_NULL_POINTER);
    mcrs_client_free(cl);
}

static void test_failover_options(void) {
    mcrs_config *cfg = tu_config_for(tu_server());
    CHECK_OK(mcrs_config_set_failover_ttl(cfg, 30));
    CHECK_OK(mcrs_config_set_failover_ttl(cfg, 0));
    CHECK_OK(mcrs_config_set_max_tracked_keys(cfg, 10));
    CHECK_OK(mcrs_config_set_max_value_size(cfg, 512 * 1024));
    CHECK_STATUS(mcrs_config_set_max_value_size(cfg, 0), MCRS_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(mcrs_config_set_max_value_size(cfg, (1ull << 30) + 1), MCRS_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(mcrs_config_set_failover_ttl(NULL, 1), MCRS_STATUS_NULL_POINTER);
    CHECK_STATUS(mcrs_config_set_max_value_size(NULL, 1), MCRS_STATUS_NULL_POINTER);
    mcrs_client *cl = tu_client_from(cfg);
    mcrs_config_free(cfg);
    /* a value over the limit is refused with its own status */
    uint8_t *big = calloc(1, 600 * 1024);
    REQUIRE(big != NULL, "alloc");
    mcrs_client *w = tu_client(false);
    CHECK_OK(mcrs_client_set(w, K("big:over"), big, 600 * 1024, 0, 0, MCRS_NOREPLY_OFF));
    mcrs_client_free(w);
    mcrs_value *v = TU_SENTINEL;
    CHECK_STATUS(mcrs_client_get(cl, K("big:over"), &v), MCRS_STATUS_VALUE_TOO_LARGE);
    CHECK(v == NULL, "no value");
    CHECK(counter(cl, "protocol_errors") == 1, "counted");
    free(big);
    mcrs_client_free(cl);
}

int main(void) {
    c = tu_client(false);
    RUN(test_stats); /* first: it counts the items the others store */
    RUN(test_counters);
    RUN(test_failover_options);
    RUN(test_version_cmd);
    RUN(test_cache_memlimit);
    RUN(test_verbosity);
    RUN(test_quit);
    mcrs_client_free(c);
    TEST_MAIN_END();
}
