/* A memcached on a unix socket (with_memcached.sh --unix), addressed as unix:/path and /path. */
#include "test_util.h"

static void exercise(const char *addr, const char *tag) {
    printf("   server %s\n", addr);
    mcrs_client *u = tu_client_for(addr, false);
    char key[64];
    int kl = snprintf(key, sizeof key, "unix:%s", tag);
    CHECK_OK(mcrs_client_set(u, B(key), (size_t)kl, K("over unix\0\r\n"), 9, 0, MCRS_NOREPLY_OFF));
    CHECK_GET(u, B(key), (size_t)kl, "over unix\0\r\n", 12, 9);
    CHECK_STATUS(mcrs_client_add(u, B(key), (size_t)kl, K("x"), 0, 0, MCRS_NOREPLY_OFF),
                 MCRS_STATUS_NOT_STORED);
    /* noreply, then read back */
    CHECK_OK(mcrs_client_set(u, K("unix:nr"), B(tag), strlen(tag), 0, 0, MCRS_NOREPLY_ON));
    mcrs_value *v = NULL;
    CHECK_OK(mcrs_client_gets(u, K("unix:nr"), &v));
    CHECK(tu_value_is(v, tag, strlen(tag), 0), "noreply set over unix socket");
    uint64_t cas = mcrs_value_cas(v);
    mcrs_value_free(v);
    CHECK_OK(mcrs_client_cas(u, K("unix:nr"), K("cas"), 0, 0, cas, MCRS_NOREPLY_OFF));
    CHECK_STATUS(mcrs_client_cas(u, K("unix:nr"), K("cas"), 0, 0, cas, MCRS_NOREPLY_OFF),
                 MCRS_STATUS_EXISTS);
    uint64_t nv = 0;
    CHECK_OK(mcrs_client_set(u, K("unix:ctr"), K("1"), 0, 0, MCRS_NOREPLY_OFF));
    CHECK_OK(mcrs_client_incr(u, K("unix:ctr"), 41, MCRS_NOREPLY_OFF, &nv));
    CHECK(nv == 42, "incr over unix: %llu", (unsigned long long)nv);

    const uint8_t *keys[] = {B(key), B("unix:missing"), B("unix:ctr")};
    const size_t lens[] = {(size_t)kl, 12, 8};
    mcrs_values *vs = NULL;
    CHECK_OK(mcrs_client_get_many(u, keys, lens, 3, &vs));
    CHECK(vs && mcrs_values_len(vs) == 3, "get_many over unix");
    CHECK(tu_value_is(mcrs_values_get(vs, 0), "over unix\0\r\n", 12, 9), "get_many[0]");
    CHECK(mcrs_values_get(vs, 1) == NULL, "get_many[1] miss");
    CHECK(tu_value_is(mcrs_values_get(vs, 2), "42", 2, 0), "get_many[2]");
    mcrs_values_free(vs);

    char ver[64];
    CHECK_OK(mcrs_client_version(u, ver, sizeof ver));
    CHECK(ver[0] != '\0', "version over unix");

    /* stats names the server: the unix socket's domain_socket setting is our path */
    mcrs_stats *s = NULL;
    CHECK_OK(mcrs_client_stats(u, "settings", &s));
    const char *path = tu_env("MCRS_TEST_UNIX");
    bool found = false;
    for (size_t i = 0; s && i < mcrs_stats_len(s); i++) {
        const char *srv, *name, *val;
        if (mcrs_stats_get(s, i, &srv, &name, &val) == MCRS_STATUS_OK &&
            strcmp(name, "domain_socket") == 0)
            found = strcmp(val, path) == 0;
    }
    CHECK(found, "stats settings domain_socket must be %s", path);
    mcrs_stats_free(s);

    CHECK_OK(mcrs_client_quit(u));
    CHECK_GET(u, B(key), (size_t)kl, "over unix\0\r\n", 12, 9);
    CHECK_OK(mcrs_client_delete(u, B(key), (size_t)kl, MCRS_NOREPLY_OFF));
    CHECK_MISS(u, B(key), (size_t)kl);
    mcrs_client_free(u);
}

int main(void) {
    const char *path = tu_env("MCRS_TEST_UNIX");
    char addr[600];
    snprintf(addr, sizeof addr, "unix:%s", path);
    exercise(addr, "prefixed-form");
    exercise(path, "bare-path-form");

    /* the unix server and the TCP server are different servers */
    mcrs_client *u = tu_client_for(addr, false);
    mcrs_client *t = tu_client(false);
    CHECK_OK(mcrs_client_set(u, K("unix:only"), K("u"), 0, 0, MCRS_NOREPLY_OFF));
    CHECK_MISS(t, K("unix:only"));
    CHECK_GET(u, K("unix:only"), "u", 1, 0);
    mcrs_client_free(u);
    mcrs_client_free(t);
    TEST_MAIN_END();
}
