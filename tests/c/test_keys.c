/* Key validation, key_prefix, allow_unicode_keys. */
#include "test_util.h"

static mcrs_client *c;   /* replies by default */

/* Every keyed command with this key must give INVALID_KEY, and handle outs must be NULL. */
static void check_all_commands_reject(const mcrs_client *cl, const uint8_t *key, size_t len,
                                      const char *what) {
    mcrs_status st;
    mcrs_value *v;
    mcrs_values *vs;
    uint64_t nv = 12345;
    const uint8_t *keys[] = {B("keys:good"), key};
    const size_t lens[] = {9, len};
    const uint8_t *vals[] = {B("a"), B("b")};
    const size_t vlens[] = {1, 1};
    const uint32_t flags[] = {0, 0};
    size_t failed[2], n_failed = 77;

#define REJECT(call)                                                                           \
    do {                                                                                       \
        st = (call);                                                                           \
        CHECK(st == MCRS_STATUS_INVALID_KEY, "%s: key %s: got %s", #call, what,                \
              mcrs_status_str(st));                                                            \
    } while (0)
    for (int nrm = 0; nrm < 3; nrm++) {
        mcrs_noreply m = (mcrs_noreply)nrm;
        REJECT(mcrs_client_set(cl, key, len, K("v"), 0, 0, m));
        REJECT(mcrs_client_add(cl, key, len, K("v"), 0, 0, m));
        REJECT(mcrs_client_replace(cl, key, len, K("v"), 0, 0, m));
        REJECT(mcrs_client_append(cl, key, len, K("v"), 0, 0, m));
        REJECT(mcrs_client_prepend(cl, key, len, K("v"), 0, 0, m));
        REJECT(mcrs_client_cas(cl, key, len, K("v"), 0, 0, 1, m));
        REJECT(mcrs_client_delete(cl, key, len, m));
        REJECT(mcrs_client_incr(cl, key, len, 1, m, &nv));
        REJECT(mcrs_client_decr(cl, key, len, 1, m, &nv));
        REJECT(mcrs_client_touch(cl, key, len, 0, m));
        REJECT(mcrs_client_set_many(cl, keys, lens, vals, vlens, flags, 2, 0, m, failed, &n_failed));
        REJECT(mcrs_client_delete_many(cl, keys, lens, 2, m));
    }
    CHECK(nv == 12345, "new_value written on INVALID_KEY");
    v = TU_SENTINEL;
    REJECT(mcrs_client_get(cl, key, len, &v));
    CHECK(v == NULL, "get with key %s: *out must be NULL", what);
    v = TU_SENTINEL;
    REJECT(mcrs_client_gets(cl, key, len, &v));
    CHECK(v == NULL, "gets with key %s: *out must be NULL", what);
    v = TU_SENTINEL;
    REJECT(mcrs_client_gat(cl, key, len, 0, &v));
    CHECK(v == NULL, "gat with key %s: *out must be NULL", what);
    v = TU_SENTINEL;
    REJECT(mcrs_client_gats(cl, key, len, 0, &v));
    CHECK(v == NULL, "gats with key %s: *out must be NULL", what);
    vs = TU_SENTINEL;
    REJECT(mcrs_client_get_many(cl, keys, lens, 2, &vs));
    CHECK(vs == NULL, "get_many with key %s: *out must be NULL", what);
    vs = TU_SENTINEL;
    REJECT(mcrs_client_gets_many(cl, keys, lens, 2, &vs));
    CHECK(vs == NULL, "gets_many with key %s: *out must be NULL", what);
#undef REJECT
}

struct bad_key {
    const char *what;
    const char *key;
    size_t len;
};

static uint8_t key251[251], key250[250];

static void test_invalid_keys(void) {
    const struct bad_key bad[] = {
        {"empty", "", 0},
        {"251 bytes", (const char *)key251, 251},
        {"with space", "a b", 3},
        {"leading space", " ab", 3},
        {"with newline", "a\nb", 3},
        {"with CR", "a\rb", 3},
        {"CRLF injection", "a\r\nflush_all", 12},
        {"with tab", "a\tb", 3},
        {"with 0x01", "a\x01" "b", 3},
        {"with 0x1f", "a\x1f", 2},
        {"with DEL 0x7f", "a\x7f" "b", 3},
        {"with NUL", "a\0b", 3},
        {"only NUL", "\0", 1},
        {"non-ASCII (UTF-8) without allow_unicode_keys", "caf\xc3\xa9", 5},
        {"non-ASCII byte 0x80", "a\x80", 2},
        {"non-ASCII byte 0xff", "\xff", 1},
    };
    const size_t nbad = sizeof bad / sizeof bad[0];

    /* against the real server, and against a closed port: the check happens before any I/O */
    mcrs_config *cfg = tu_config_for(tu_closed_port_addr());
    CHECK_OK(mcrs_config_set_default_noreply(cfg, false));
    mcrs_client *closed = tu_client_from(cfg);
    mcrs_config_free(cfg);
    for (size_t i = 0; i < nbad; i++) {
        check_all_commands_reject(c, (const uint8_t *)bad[i].key, bad[i].len, bad[i].what);
        check_all_commands_reject(closed, (const uint8_t *)bad[i].key, bad[i].len, bad[i].what);
    }
    mcrs_client_free(closed);

    /* the server is untouched and the connection still in sync */
    CHECK_MISS(c, K("a"));
    CHECK_MISS(c, K("keys:good"));
}

static void test_valid_keys(void) {
    CHECK_OK(mcrs_client_set(c, key250, 250, K("max"), 1, 0, MCRS_NOREPLY_OFF));
    CHECK_GET(c, key250, 250, "max", 3, 1);
    CHECK_OK(mcrs_client_delete(c, key250, 250, MCRS_NOREPLY_OFF));
    /* single byte, all printable ASCII punctuation */
    CHECK_OK(mcrs_client_set(c, K("x"), K("1"), 0, 0, MCRS_NOREPLY_OFF));
    CHECK_GET(c, K("x"), "1", 1, 0);
    static const char punct[] = "!\"#$%&'()*+,-./0123456789:;<=>?@[\\]^_`{|}~";
    CHECK_OK(mcrs_client_set(c, B(punct), sizeof punct - 1, K("p"), 0, 0, MCRS_NOREPLY_OFF));
    CHECK_GET(c, B(punct), sizeof punct - 1, "p", 1, 0);
    /* the key bytes are taken by length: bytes after key_len are ignored */
    CHECK_OK(mcrs_client_set(c, B("lenkey and more"), 6, K("L"), 0, 0, MCRS_NOREPLY_OFF));
    CHECK_GET(c, K("lenkey"), "L", 1, 0);
}

static void test_unicode_keys(void) {
    mcrs_config *cfg = tu_config_for(tu_server());
    CHECK_OK(mcrs_config_set_default_noreply(cfg, false));
    CHECK_OK(mcrs_config_set_allow_unicode_keys(cfg, true));
    mcrs_client *u = tu_client_from(cfg);
    mcrs_config_free(cfg);

    CHECK_OK(mcrs_client_set(u, K("keys:caf\xc3\xa9"), K("coffee"), 16, 0, MCRS_NOREPLY_OFF));
    CHECK_GET(u, K("keys:caf\xc3\xa9"), "coffee", 6, 16);
    CHECK_OK(mcrs_client_set(u, K("keys:\xe6\x97\xa5\xe6\x9c\xac\xf0\x9f\x98\x80"), K("jp"), 0, 0,
                             MCRS_NOREPLY_OFF));
    CHECK_GET(u, K("keys:\xe6\x97\xa5\xe6\x9c\xac\xf0\x9f\x98\x80"), "jp", 2, 0);
    /* 250 bytes of UTF-8 are fine, 251 are not (the limit is in bytes) */
    uint8_t k[251];
    for (int i = 0; i < 250; i += 2) {
        k[i] = 0xc3;
        k[i + 1] = 0xa9;
    }
    CHECK_OK(mcrs_client_set(u, k, 250, K("e"), 0, 0, MCRS_NOREPLY_OFF));
    CHECK_GET(u, k, 250, "e", 1, 0);
    k[250] = 'a';
    CHECK_STATUS(mcrs_client_set(u, k, 251, K("e"), 0, 0, MCRS_NOREPLY_OFF), MCRS_STATUS_INVALID_KEY);
    /* still rejected: invalid UTF-8, whitespace, control bytes, empty */
    check_all_commands_reject(u, B("\xff\xfe"), 2, "invalid UTF-8 (unicode allowed)");
    check_all_commands_reject(u, B("caf\xc3"), 4, "truncated UTF-8 (unicode allowed)");
    check_all_commands_reject(u, B("caf\xc3\xa9 x"), 7, "UTF-8 with space (unicode allowed)");
    check_all_commands_reject(u, B("caf\xc3\xa9\n"), 6, "UTF-8 with newline (unicode allowed)");
    check_all_commands_reject(u, B("a\0"), 2, "NUL (unicode allowed)");
    check_all_commands_reject(u, B(""), 0, "empty (unicode allowed)");
    /* the client without allow_unicode_keys still rejects it */
    CHECK_STATUS(mcrs_client_set(c, K("keys:caf\xc3\xa9"), K("x"), 0, 0, MCRS_NOREPLY_OFF),
                 MCRS_STATUS_INVALID_KEY);
    mcrs_client_free(u);
}

/* A prefixed client applies its prefix to every command: check each through an
   unprefixed client. */
static void test_key_prefix(void) {
    mcrs_config *cfg = tu_config_for(tu_server());
    CHECK_OK(mcrs_config_set_default_noreply(cfg, false));
    /* prefix validation */
    CHECK_STATUS(mcrs_config_set_key_prefix(cfg, K("bad prefix")), MCRS_STATUS_INVALID_KEY);
    CHECK_STATUS(mcrs_config_set_key_prefix(cfg, K("bad\r\n")), MCRS_STATUS_INVALID_KEY);
    CHECK_STATUS(mcrs_config_set_key_prefix(cfg, K("nul\0")), MCRS_STATUS_INVALID_KEY);
    CHECK_OK(mcrs_config_set_key_prefix(cfg, NULL, 0)); /* no prefix */
    CHECK_OK(mcrs_config_set_key_prefix(cfg, K("pfx:")));
    mcrs_client *p = tu_client_from(cfg);
    mcrs_config_free(cfg);
    mcrs_value *v;
    uint64_t nv;

    /* set through the prefix, visible under pfx:k without it */
    CHECK_OK(mcrs_client_set(p, K("k"), K("pv"), 3, 0, MCRS_NOREPLY_OFF));
    CHECK_GET(c, K("pfx:k"), "pv", 2, 3);
    CHECK_MISS(c, K("k"));
    CHECK_GET(p, K("k"), "pv", 2, 3);
    /* and the other way round */
    CHECK_OK(mcrs_client_set(c, K("pfx:other"), K("ov"), 4, 0, MCRS_NOREPLY_OFF));
    CHECK_GET(p, K("other"), "ov", 2, 4);
    CHECK_OK(mcrs_client_set(c, K("unprefixed"), K("u"), 0, 0, MCRS_NOREPLY_OFF));
    CHECK_MISS(p, K("unprefixed"));

    /* default noreply path applies the prefix too */
    CHECK_OK(mcrs_client_set(p, K("nr"), K("n"), 0, 0, MCRS_NOREPLY_ON));
    CHECK_GET(c, K("pfx:nr"), "n", 1, 0);

    CHECK_OK(mcrs_client_add(p, K("add"), K("a"), 0, 0, MCRS_NOREPLY_OFF));
    CHECK_STATUS(mcrs_client_add(p, K("add"), K("a"), 0, 0, MCRS_NOREPLY_OFF), MCRS_STATUS_NOT_STORED);
    CHECK_OK(mcrs_client_replace(p, K("add"), K("b"), 0, 0, MCRS_NOREPLY_OFF));
    CHECK_OK(mcrs_client_append(p, K("add"), K("c"), 0, 0, MCRS_NOREPLY_OFF));
    CHECK_OK(mcrs_client_prepend(p, K("add"), K("a"), 0, 0, MCRS_NOREPLY_OFF));
    CHECK_GET(c, K("pfx:add"), "abc", 3, 0);

    v = NULL;
    CHECK_OK(mcrs_client_gets(p, K("add"), &v));
    uint64_t cas = mcrs_value_cas(v);
    CHECK(tu_value_is(v, "abc", 3, 0), "prefixed gets");
    mcrs_value_free(v);
    CHECK_OK(mcrs_client_cas(p, K("add"), K("cas"), 0, 0, cas, MCRS_NOREPLY_OFF));
    CHECK_GET(c, K("pfx:add"), "cas", 3, 0);

    v = NULL;
    CHECK_OK(mcrs_client_gat(p, K("add"), 0, &v));
    CHECK(tu_value_is(v, "cas", 3, 0), "prefixed gat");
    mcrs_value_free(v);
    v = NULL;
    CHECK_OK(mcrs_client_gats(p, K("add"), 0, &v));
    CHECK(tu_value_is(v, "cas", 3, 0), "prefixed gats");
    mcrs_value_free(v);
    CHECK_OK(mcrs_client_touch(p, K("add"), 0, MCRS_NOREPLY_OFF));

    CHECK_OK(mcrs_client_set(c, K("pfx:ctr"), K("5"), 0, 0, MCRS_NOREPLY_OFF));
    nv = 0;
    CHECK_OK(mcrs_client_incr(p, K("ctr"), 2, MCRS_NOREPLY_OFF, &nv));
    CHECK(nv == 7, "prefixed incr gave %llu", (unsigned long long)nv);
    CHECK_OK(mcrs_client_decr(p, K("ctr"), 3, MCRS_NOREPLY_OFF, &nv));
    CHECK(nv == 4, "prefixed decr gave %llu", (unsigned long long)nv);
    CHECK_GET(c, K("pfx:ctr"), "4", 1, 0);

    /* multi-key commands */
    const uint8_t *keys[] = {B("m1"), B("m2"), B("m3")};
    const size_t lens[] = {2, 2, 2};
    const uint8_t *vals[] = {B("v1"), B("v2"), B("v3")};
    const uint32_t flags[] = {1, 2, 3};
    size_t failed[3], n_failed = 9;
    CHECK_OK(mcrs_client_set_many(p, keys, lens, vals, lens, flags, 3, 0, MCRS_NOREPLY_OFF, failed,
                                  &n_failed));
    CHECK(n_failed == 0, "prefixed set_many n_failed %zu", n_failed);
    CHECK_GET(c, K("pfx:m1"), "v1", 2, 1);
    CHECK_GET(c, K("pfx:m2"), "v2", 2, 2);
    CHECK_GET(c, K("pfx:m3"), "v3", 2, 3);
    CHECK_OK(mcrs_client_delete(c, K("pfx:m2"), MCRS_NOREPLY_OFF));
    CHECK_OK(mcrs_client_set(c, K("m3"), K("unprefixed"), 0, 0, MCRS_NOREPLY_OFF));
    for (int with_cas = 0; with_cas < 2; with_cas++) {
        mcrs_values *vs = NULL;
        if (with_cas)
            CHECK_OK(mcrs_client_gets_many(p, keys, lens, 3, &vs));
        else
            CHECK_OK(mcrs_client_get_many(p, keys, lens, 3, &vs));
        CHECK(vs != NULL && mcrs_values_len(vs) == 3, "prefixed get_many length");
        CHECK(tu_value_is(mcrs_values_get(vs, 0), "v1", 2, 1), "prefixed get_many[0]");
        CHECK(mcrs_values_get(vs, 1) == NULL, "prefixed get_many[1] is a miss");
        CHECK(tu_value_is(mcrs_values_get(vs, 2), "v3", 2, 3), "prefixed get_many[2]");
        mcrs_values_free(vs);
    }
    CHECK_OK(mcrs_client_delete_many(p, keys, lens, 3, MCRS_NOREPLY_ON));
    CHECK_MISS(c, K("pfx:m1"));
    CHECK_MISS(c, K("pfx:m3"));
    CHECK_GET(c, K("m3"), "unprefixed", 10, 0);

    CHECK_OK(mcrs_client_delete(p, K("k"), MCRS_NOREPLY_OFF));
    CHECK_MISS(c, K("pfx:k"));

    /* 250-byte limit applies after the prefix: 4 + 246 ok, 4 + 247 not */
    CHECK_OK(mcrs_client_set(p, key250, 246, K("l"), 0, 0, MCRS_NOREPLY_OFF));
    uint8_t full[250];
    memcpy(full, "pfx:", 4);
    memset(full + 4, 'k', 246);
    CHECK_GET(c, full, 250, "l", 1, 0);
    check_all_commands_reject(p, key250, 247, "247 bytes + 4-byte prefix");
    /* an empty key is invalid even with a prefix */
    check_all_commands_reject(p, B(""), 0, "empty key with prefix");
    mcrs_client_free(p);
}

int main(void) {
    memset(key250, 'k', sizeof key250);
    memset(key251, 'k', sizeof key251);
    c = tu_client(false);
    RUN(test_invalid_keys);
    RUN(test_valid_keys);
    RUN(test_unicode_keys);
    RUN(test_key_prefix);
    mcrs_client_free(c);
    TEST_MAIN_END();
}
