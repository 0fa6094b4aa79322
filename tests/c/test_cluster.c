/* Several servers (with_memcached.sh --servers 3): key placement per distribution, and the
   multi-key / broadcast commands across servers. */
#include "test_util.h"

enum { MAXS = 8, NKEYS = 300 };

static char servers[MAXS][64];
static int nservers;
static mcrs_client *direct[MAXS]; /* one single-server client per server */

static uint32_t rotl32(uint32_t x, int r) { return (x << r) | (x >> (32 - r)); }

/* MurmurHash3_x86_32, seed 0 (pymemcache's RendezvousHash). */
static uint32_t murmur3_32(const uint8_t *data, size_t len) {
    const uint32_t c1 = 0xcc9e2d51u, c2 = 0x1b873593u;
    uint32_t h = 0;
    size_t nblocks = len / 4;
    for (size_t i = 0; i < nblocks; i++) {
        const uint8_t *p = data + i * 4;
        uint32_t k = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
        k *= c1;
        k = rotl32(k, 15);
        k *= c2;
        h ^= k;
        h = rotl32(h, 13);
        h = h * 5 + 0xe6546b64u;
    }
    const uint8_t *tail = data + nblocks * 4;
    uint32_t k = 0;
    switch (len & 3) {
    case 3:
        k ^= (uint32_t)tail[2] << 16;
        /* fall through */
    case 2:
        k ^= (uint32_t)tail[1] << 8;
        /* fall through */
    case 1:
        k ^= tail[0];
        k *= c1;
        k = rotl32(k, 15);
        k *= c2;
        h ^= k;
    }
    h ^= (uint32_t)len;
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    h *= 0xc2b2ae35u;
    h ^= h >> 16;
    return h;
}

/* pymemcache RendezvousHash: highest murmur3("{node}-{key}") wins; ties -> larger node id. */
static int rendezvous_pick(const char *key) {
    int best = -1;
    uint32_t best_score = 0;
    char buf[512];
    for (int i = 0; i < nservers; i++) {
        int n = snprintf(buf, sizeof buf, "%s-%s", servers[i], key);
        uint32_t score = murmur3_32(B(buf), (size_t)n);
        if (best < 0 || score > best_score ||
            (score == best_score && strcmp(servers[i], servers[best]) > 0)) {
            best = i;
            best_score = score;
        }
    }
    return best;
}

static void test_murmur_vectors(void) {
    /* self-test of the reference implementation above (vectors from DESIGN.md) */
    CHECK(murmur3_32(B("a"), 1) == 1009084850u, "murmur3(a)");
    CHECK(murmur3_32(B("abc"), 3) == 3017643002u, "murmur3(abc)");
    char keep[MAXS][64];
    int keep_n = nservers;
    memcpy(keep, servers, sizeof keep);
    const char tmp[3][64] = {"127.0.0.1:11211", "127.0.0.1:11212", "127.0.0.1:11213"};
    nservers = 3;
    memcpy(servers, tmp, sizeof tmp);
    CHECK(rendezvous_pick("foo") == 2, "foo -> 11213");
    CHECK(rendezvous_pick("bar") == 0, "bar -> 11211");
    CHECK(rendezvous_pick("baz") == 1, "baz -> 11212");
    memcpy(servers, keep, sizeof keep);
    nservers = keep_n;
}

static mcrs_client *cluster_client(mcrs_distribution d, const uint32_t *weights, const char *prefix) {
    mcrs_config *cfg = mcrs_config_new();
    REQUIRE(cfg != NULL, "mcrs_config_new");
    for (int i = 0; i < nservers; i++) {
        if (weights)
            CHECK_OK(mcrs_config_add_server_weighted(cfg, servers[i], weights[i]));
        else
            CHECK_OK(mcrs_config_add_server(cfg, servers[i]));
    }
    CHECK_OK(mcrs_config_set_distribution(cfg, d));
    CHECK_OK(mcrs_config_set_default_noreply(cfg, false));
    CHECK_OK(mcrs_config_set_connect_timeout_ms(cfg, 2000));
    CHECK_OK(mcrs_config_set_timeout_ms(cfg, 5000));
    if (prefix)
        CHECK_OK(mcrs_config_set_key_prefix(cfg, B(prefix), strlen(prefix)));
    mcrs_client *c = tu_client_from(cfg);
    mcrs_config_free(cfg);
    return c;
}

static void flush_everything(void) {
    for (int i = 0; i < nservers; i++)
        CHECK_OK(mcrs_client_flush_all(direct[i], 0, MCRS_NOREPLY_OFF));
}

/* Which single server holds key (stored key = prefix+key)? -1 none, -2 several. */
static int holder(const char *stored_key) {
    int found = -1;
    for (int i = 0; i < nservers; i++) {
        mcrs_value *v = NULL;
        mcrs_status st = mcrs_client_get(direct[i], B(stored_key), strlen(stored_key), &v);
        mcrs_value_free(v);
        if (st == MCRS_STATUS_OK)
            found = found == -1 ? i : -2;
        else
            CHECK(st == MCRS_STATUS_NOT_FOUND, "direct get: %s", mcrs_status_str(st));
    }
    return found;
}

/* Stores NKEYS keys through c, returns per-server counts; checks each key lives on exactly
   one server and, when expect != NULL, on expect(key). */
static void place_keys(mcrs_client *c, const char *prefix, int (*expect)(const char *), int *counts) {
    flush_everything();
    memset(counts, 0, sizeof(int) * MAXS);
    int wrong = 0, lost = 0;
    for (int k = 0; k < NKEYS; k++) {
        char key[64], stored[96];
        int kl = snprintf(key, sizeof key, "clu-key-%d", k);
        snprintf(stored, sizeof stored, "%s%s", prefix ? prefix : "", key);
        CHECK_OK(mcrs_client_set(c, B(key), (size_t)kl, B(key), (size_t)kl, 0, 0, MCRS_NOREPLY_OFF));
        CHECK_GET(c, B(key), (size_t)kl, key, (size_t)kl, 0);
        int h = holder(stored);
        if (h < 0) {
            lost++;
            continue;
        }
        counts[h]++;
        if (expect && expect(key) != h) {
            if (wrong < 5)
                fprintf(stderr, "   key %s on %s, expected %s\n", key, servers[h],
                        servers[expect(key)]);
            wrong++;
        }
    }
    CHECK(lost == 0, "%d keys not on exactly one server", lost);
    CHECK(wrong == 0, "%d of %d keys on the wrong server", wrong, NKEYS);
    printf("   counts:");
    for (int i = 0; i < nservers; i++)
        printf(" %d", counts[i]);
    printf("\n");
}

static void test_rendezvous_placement(void) {
    int counts[MAXS];
    mcrs_client *c = cluster_client(MCRS_DISTRIBUTION_RENDEZVOUS, NULL, NULL);
    place_keys(c, NULL, rendezvous_pick, counts);
    mcrs_client_free(c);
    /* the default distribution is rendezvous */
    mcrs_config *cfg = mcrs_config_new();
    for (int i = 0; i < nservers; i++)
        CHECK_OK(mcrs_config_add_server(cfg, servers[i]));
    CHECK_OK(mcrs_config_set_default_noreply(cfg, false));
    c = tu_client_from(cfg);
    mcrs_config_free(cfg);
    place_keys(c, NULL, rendezvous_pick, counts);
    mcrs_client_free(c);
    /* the ring hashes the key before the prefix */
    c = cluster_client(MCRS_DISTRIBUTION_RENDEZVOUS, NULL, "pfx:");
    place_keys(c, "pfx:", rendezvous_pick, counts);
    mcrs_client_free(c);
}

static void test_ketama_weighted(void) {
    int counts[MAXS];
    uint32_t weights[MAXS];
    for (int i = 0; i < MAXS; i++)
        weights[i] = 1;
    weights[0] = 4;
    mcrs_client *c = cluster_client(MCRS_DISTRIBUTION_KETAMA, weights, NULL);
    place_keys(c, NULL, NULL, counts);
    mcrs_client_free(c);
    for (int i = 1; i < nservers; i++) {
        CHECK(counts[i] > 0, "ketama: server %d got no keys", i);
        CHECK(counts[0] > counts[i], "ketama weight 4 server got %d keys, weight 1 server %d", counts[0],
              counts[i]);
    }
    /* unweighted ketama uses every server */
    c = cluster_client(MCRS_DISTRIBUTION_KETAMA, NULL, NULL);
    place_keys(c, NULL, NULL, counts);
    mcrs_client_free(c);
    for (int i = 0; i < nservers; i++)
        CHECK(counts[i] > NKEYS / (nservers * 4), "ketama: server %d got only %d keys", i, counts[i]);
}

static void test_xxh3(void) {
    int counts[MAXS];
    mcrs_client *c = cluster_client(MCRS_DISTRIBUTION_XXH3, NULL, NULL);
    place_keys(c, NULL, NULL, counts);
    mcrs_client_free(c);
    for (int i = 0; i < nservers; i++)
        CHECK(counts[i] > NKEYS / (nservers * 4), "xxh3: server %d got only %d keys", i, counts[i]);
}

static void test_multi_key_across_servers(void) {
    mcrs_client *c = cluster_client(MCRS_DISTRIBUTION_RENDEZVOUS, NULL, NULL);
    flush_everything();
    static char kb[NKEYS][32], vb[NKEYS][32];
    const uint8_t *keys[NKEYS], *vals[NKEYS];
    size_t kl[NKEYS], vl[NKEYS], failed[NKEYS], n_failed = 999;
    uint32_t flags[NKEYS];
    for (int i = 0; i < NKEYS; i++) {
        kl[i] = (size_t)snprintf(kb[i], sizeof kb[i], "mk-%d", i);
        vl[i] = (size_t)snprintf(vb[i], sizeof vb[i], "val-%d", i * 3);
        keys[i] = B(kb[i]);
        vals[i] = B(vb[i]);
        flags[i] = (uint32_t)i;
    }
    /* set_many spread over all servers */
    CHECK_OK(mcrs_client_set_many(c, keys, kl, vals, vl, flags, NKEYS, 0, MCRS_NOREPLY_OFF, failed,
                                  &n_failed));
    CHECK(n_failed == 0, "set_many n_failed %zu", n_failed);
    int placed_ok = 0;
    for (int i = 0; i < NKEYS; i++)
        placed_ok += holder(kb[i]) == rendezvous_pick(kb[i]);
    CHECK(placed_ok == NKEYS, "set_many placed %d of %d keys on their servers", placed_ok, NKEYS);

    /* delete every 4th directly, get_many keeps order across servers */
    for (int i = 0; i < NKEYS; i += 4)
        CHECK_OK(mcrs_client_delete(c, keys[i], kl[i], MCRS_NOREPLY_OFF));
    for (int with_cas = 0; with_cas < 2; with_cas++) {
        mcrs_values *vs = NULL;
        if (with_cas)
            CHECK_OK(mcrs_client_gets_many(c, keys, kl, NKEYS, &vs));
        else
            CHECK_OK(mcrs_client_get_many(c, keys, kl, NKEYS, &vs));
        REQUIRE(vs != NULL && mcrs_values_len(vs) == NKEYS, "get_many across servers");
        int bad = 0;
        for (int i = 0; i < NKEYS; i++) {
            const mcrs_value *v = mcrs_values_get(vs, (size_t)i);
            if (i % 4 == 0 ? v != NULL : !tu_value_is(v, vb[i], vl[i], flags[i]))
                bad++;
            else if (v && with_cas && mcrs_value_cas(v) == 0)
                bad++;
        }
        CHECK(bad == 0, "get(s)_many across servers: %d of %d wrong (with_cas=%d)", bad, NKEYS,
              with_cas);
        mcrs_values_free(vs);
    }
    /* noreply set_many */
    n_failed = 999;
    CHECK_OK(mcrs_client_set_many(c, keys, kl, keys, kl, flags, NKEYS, 0, MCRS_NOREPLY_ON, failed,
                                  &n_failed));
    CHECK(n_failed == 0, "noreply set_many n_failed %zu", n_failed);
    CHECK_GET(c, keys[NKEYS - 1], kl[NKEYS - 1], keys[NKEYS - 1], kl[NKEYS - 1], flags[NKEYS - 1]);
    /* delete_many across servers */
    CHECK_OK(mcrs_client_delete_many(c, keys, kl, NKEYS / 2, MCRS_NOREPLY_ON));
    mcrs_values *vs = NULL;
    CHECK_OK(mcrs_client_get_many(c, keys, kl, NKEYS, &vs));
    int bad = 0;
    for (int i = 0; vs && i < NKEYS; i++) {
        const mcrs_value *v = mcrs_values_get(vs, (size_t)i);
        if (i < NKEYS / 2 ? v != NULL : !tu_value_is(v, keys[i], kl[i], flags[i]))
            bad++;
    }
    CHECK(vs && bad == 0, "after delete_many: %d wrong", bad);
    mcrs_values_free(vs);

    /* broadcast: stats has entries from every server, flush_all clears every server */
    mcrs_stats *s = NULL;
    CHECK_OK(mcrs_client_stats(c, "", &s));
    int pids[MAXS] = {0};
    for (size_t i = 0; s && i < mcrs_stats_len(s); i++) {
        const char *srv, *name, *val;
        if (mcrs_stats_get(s, i, &srv, &name, &val) != MCRS_STATUS_OK || strcmp(name, "pid") != 0)
            continue;
        for (int j = 0; j < nservers; j++)
            if (strcmp(srv, servers[j]) == 0)
                pids[j]++;
    }
    mcrs_stats_free(s);
    for (int j = 0; j < nservers; j++)
        CHECK(pids[j] == 1, "stats: server %s reported pid %d times", servers[j], pids[j]);

    CHECK_OK(mcrs_client_flush_all(c, 0, MCRS_NOREPLY_OFF));
    int left = 0;
    for (int i = 0; i < NKEYS; i++)
        left += holder(kb[i]) >= 0;
    CHECK(left == 0, "flush_all on a cluster left %d keys", left);

    char ver[64];
    CHECK_OK(mcrs_client_version(c, ver, sizeof ver));
    CHECK_OK(mcrs_client_verbosity(c, 0, MCRS_NOREPLY_OFF));
    CHECK_OK(mcrs_client_cache_memlimit(c, 64, MCRS_NOREPLY_OFF));
    CHECK_OK(mcrs_client_quit(c));
    CHECK_OK(mcrs_client_set(c, K("after-quit"), K("x"), 0, 0, MCRS_NOREPLY_OFF));
    CHECK_GET(c, K("after-quit"), "x", 1, 0);
    mcrs_client_free(c);
}

int main(void) {
    const char *list = tu_env("MCRS_TEST_SERVERS");
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s", list);
    for (char *save = NULL, *tok = strtok_r(tmp, ",", &save); tok && nservers < MAXS;
         tok = strtok_r(NULL, ",", &save))
        snprintf(servers[nservers++], sizeof servers[0], "%s", tok);
    REQUIRE(nservers >= 2, "MCRS_TEST_SERVERS must list several servers (--servers 3), got %d",
            nservers);
    for (int i = 0; i < nservers; i++)
        direct[i] = tu_client_for(servers[i], false);

    RUN(test_murmur_vectors);
    RUN(test_rendezvous_placement);
    RUN(test_ketama_weighted);
    RUN(test_xxh3);
    RUN(test_multi_key_across_servers);
    for (int i = 0; i < nservers; i++)
        mcrs_client_free(direct[i]);
    TEST_MAIN_END();
}
