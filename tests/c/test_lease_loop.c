/* Leases on the event loop (mcrs_loop_lease_get, _lease_set, _invalidate,
 * _meta_get) against real memcached: 16 loop callers on a cold key (one WON,
 * the rest WAIT), invalidate (one WON with the stale value, the rest STALE),
 * a lease nobody fulfils expiring after lease_ttl, a lost race refused with
 * EXISTS, refusals at submit, and a herd of 64 cached-function callers on one
 * loop making exactly one backend call. */
#include "test_util.h"

#include <poll.h>
#include <time.h>

static long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static int done_count;

/* Runs the loop until done_count reaches want, at most max_ms. */
static void drive(mcrs_loop *l, int want, int max_ms) {
    struct pollfd p = {.fd = mcrs_loop_fd(l), .events = POLLIN};
    long end = now_ms() + max_ms;
    while (done_count < want && now_ms() < end) {
        int t = mcrs_loop_timeout_ms(l);
        if (t < 0 || t > 20)
            t = 20;
        poll(&p, 1, t);
        CHECK_OK(mcrs_loop_run(l));
    }
    CHECK(done_count >= want, "%d of %d callbacks in %d ms", done_count, want, max_ms);
}

static char keybuf[128];
static const uint8_t *key(const char *name, size_t *len) {
    int n = snprintf(keybuf, sizeof keybuf, "%s:loop-lease:%s", tu_run_id(), name);
    *len = (size_t)n;
    return (const uint8_t *)keybuf;
}

struct lease {
    int calls;
    mcrs_status status;
    mcrs_lease state;
    uint64_t token;
    bool has_value;
    char data[64];
    size_t len;
    uint32_t flags;
    int64_t ttl;
};

static void on_lease(void *ud, mcrs_status st, mcrs_lease state, uint64_t token,
                     mcrs_value *v) {
    struct lease *s = ud;
    s->calls++;
    s->status = st;
    s->state = state;
    s->token = token;
    s->has_value = v != NULL;
    s->len = 0;
    if (v != NULL) {
        s->len = mcrs_value_len(v) < sizeof s->data ? mcrs_value_len(v) : sizeof s->data;
        memcpy(s->data, mcrs_value_data(v), s->len);
        s->flags = mcrs_value_flags(v);
        s->ttl = mcrs_value_ttl(v);
        mcrs_value_free(v);
    }
    done_count++;
}

static void on_status(void *ud, mcrs_status st) {
    *(mcrs_status *)ud = st;
    done_count++;
}

static bool data_is(const struct lease *s, const char *want) {
    return s->has_value && s->len == strlen(want) && memcmp(s->data, want, s->len) == 0;
}

static mcrs_loop *loop_of(const mcrs_client *c) {
    mcrs_loop *l = NULL;
    CHECK_OK(mcrs_loop_new(c, &l));
    REQUIRE(l != NULL, "mcrs_loop_new");
    return l;
}

/* One lease get, run to completion. */
static struct lease lease_get(mcrs_loop *l, const uint8_t *k, size_t kl, uint32_t ttl) {
    struct lease s = {0};
    done_count = 0;
    CHECK_OK(mcrs_loop_lease_get(l, k, kl, ttl, on_lease, &s));
    drive(l, 1, 5000);
    CHECK(s.calls == 1 && s.status == MCRS_STATUS_OK, "lease get: %d calls, status %d", s.calls,
          (int)s.status);
    return s;
}

static mcrs_status lease_set(mcrs_loop *l, const uint8_t *k, size_t kl, const char *v,
                             uint64_t token) {
    mcrs_status st = MCRS_STATUS_PANIC;
    done_count = 0;
    CHECK_OK(mcrs_loop_lease_set(l, k, kl, (const uint8_t *)v, strlen(v), 7, 300, token,
                                 on_status, &st));
    drive(l, 1, 5000);
    return st;
}

static mcrs_status invalidate(mcrs_loop *l, const uint8_t *k, size_t kl, uint32_t stale_ttl) {
    mcrs_status st = MCRS_STATUS_PANIC;
    done_count = 0;
    CHECK_OK(mcrs_loop_invalidate(l, k, kl, stale_ttl, on_status, &st));
    drive(l, 1, 5000);
    return st;
}

/* 16 lease gets of one key submitted in one turn (one write). */
static void sixteen(mcrs_loop *l, const uint8_t *k, size_t kl, struct lease *out) {
    memset(out, 0, 16 * sizeof *out);
    done_count = 0;
    for (int i = 0; i < 16; i++)
        CHECK_OK(mcrs_loop_lease_get(l, k, kl, 30, on_lease, &out[i]));
    drive(l, 16, 5000);
}

static void cold_key_one_won_rest_wait(void) {
    mcrs_client *c = tu_client(false);
    mcrs_loop *l = loop_of(c);
    size_t kl;
    const uint8_t *k = key("cold", &kl);
    struct lease s[16];
    sixteen(l, k, kl, s);
    int won = -1, wait = 0;
    for (int i = 0; i < 16; i++) {
        CHECK(s[i].calls == 1 && s[i].status == MCRS_STATUS_OK, "caller %d", i);
        if (s[i].state == MCRS_LEASE_WON) {
            CHECK(won < 0, "a second WON: %d", i);
            won = i;
        } else if (s[i].state == MCRS_LEASE_WAIT) {
            CHECK(s[i].token == 0 && !s[i].has_value, "WAIT has no token or value");
            wait++;
        }
    }
    REQUIRE(won >= 0, "one caller won");
    CHECK(wait == 15, "%d WAIT", wait);
    CHECK(s[won].token != 0 && !s[won].has_value, "WON on a miss: a token, no value");
    CHECK_STATUS(lease_set(l, k, kl, "computed", s[won].token), MCRS_STATUS_OK);
    struct lease hit = lease_get(l, k, kl, 30);
    CHECK(hit.state == MCRS_LEASE_HIT && hit.token == 0 && data_is(&hit, "computed"),
          "HIT after lease_set: state %d", (int)hit.state);
    CHECK(hit.flags == 7 && hit.ttl > 290 && hit.ttl <= 300, "flags %u ttl %lld",
          (unsigned)hit.flags, (long long)hit.ttl);
    CHECK_GET(c, k, kl, "computed", 8, 7); /* the blocking client sees it */
    mcrs_loop_free(l);
    mcrs_client_free(c);
}

static void invalidate_one_won_rest_stale(void) {
    mcrs_client *c = tu_client(false);
    mcrs_loop *l = loop_of(c);
    size_t kl;
    const uint8_t *k = key("item", &kl);
    CHECK_OK(mcrs_client_set(c, k, kl, K("old"), 3, 300, MCRS_NOREPLY_OFF));
    CHECK_STATUS(invalidate(l, k, kl, 30), MCRS_STATUS_OK);
    size_t al;
    const uint8_t *absent = key("absent", &al);
    CHECK_STATUS(invalidate(l, absent, al, 30), MCRS_STATUS_NOT_FOUND);
    k = key("item", &kl);
    struct lease s[16];
    sixteen(l, k, kl, s);
    int won = -1, stale = 0;
    for (int i = 0; i < 16; i++) {
        CHECK(data_is(&s[i], "old") && s[i].flags == 3 && s[i].ttl <= 30,
              "caller %d has the stale value", i);
        if (s[i].state == MCRS_LEASE_WON)
            won = i;
        else if (s[i].state == MCRS_LEASE_STALE)
            stale++;
    }
    REQUIRE(won >= 0, "one caller won");
    CHECK(stale == 15, "%d STALE", stale);
    CHECK_STATUS(lease_set(l, k, kl, "new", s[won].token), MCRS_STATUS_OK);
    struct lease fresh = lease_get(l, k, kl, 30);
    CHECK(fresh.state == MCRS_LEASE_HIT && data_is(&fresh, "new"), "fresh after lease_set");
    mcrs_loop_free(l);
    mcrs_client_free(c);
}

static void unfulfilled_lease_expires(void) {
    mcrs_client *c = tu_client(false);
    mcrs_loop *l = loop_of(c);
    size_t kl;
    const uint8_t *k = key("abandoned", &kl);
    struct lease first = lease_get(l, k, kl, 2);
    CHECK(first.state == MCRS_LEASE_WON, "first WON");
    CHECK(lease_get(l, k, kl, 2).state == MCRS_LEASE_WAIT, "then WAIT");
    usleep(3200 * 1000); /* memcached's clock ticks in whole seconds */
    struct lease next = lease_get(l, k, kl, 2);
    CHECK(next.state == MCRS_LEASE_WON && next.token != first.token, "WON again after lease_ttl");
    CHECK_STATUS(lease_set(l, k, kl, "late", first.token), MCRS_STATUS_EXISTS);
    CHECK_STATUS(lease_set(l, k, kl, "v", next.token), MCRS_STATUS_OK);
    mcrs_loop_free(l);
    mcrs_client_free(c);
}

struct got {
    mcrs_status status;
    int64_t ttl;
    int hit_before;
    bool is_b;
};

static void on_meta(void *ud, mcrs_status st, mcrs_value *v) {
    struct got *g = ud;
    g->status = st;
    if (v != NULL) {
        g->ttl = mcrs_value_ttl(v);
        g->hit_before = mcrs_value_hit_before(v);
        g->is_b = tu_value_is(v, "from-b", 6, 7);
        mcrs_value_free(v);
    }
    done_count++;
}

static void lost_race_is_exists(void) {
    mcrs_client *c = tu_client(false);
    mcrs_loop *l = loop_of(c);
    size_t kl;
    const uint8_t *k = key("race", &kl);
    CHECK_OK(mcrs_client_set(c, k, kl, K("v1"), 0, 300, MCRS_NOREPLY_OFF));
    CHECK_STATUS(invalidate(l, k, kl, 60), MCRS_STATUS_OK);
    struct lease a = lease_get(l, k, kl, 30);
    CHECK(a.state == MCRS_LEASE_WON, "A wins");
    CHECK_STATUS(invalidate(l, k, kl, 60), MCRS_STATUS_OK); /* the source changed again */
    struct lease b = lease_get(l, k, kl, 30);
    CHECK(b.state == MCRS_LEASE_WON, "B wins the new lease");
    CHECK_STATUS(lease_set(l, k, kl, "from-a", a.token), MCRS_STATUS_EXISTS);
    struct lease now = lease_get(l, k, kl, 30);
    CHECK(now.state == MCRS_LEASE_STALE && data_is(&now, "v1"), "A's value never reads fresh");
    CHECK_STATUS(lease_set(l, k, kl, "from-b", b.token), MCRS_STATUS_OK);
    struct got g = {MCRS_STATUS_PANIC, 0, -1, false};
    done_count = 0;
    CHECK_OK(mcrs_loop_meta_get(l, k, kl, on_meta, &g));
    drive(l, 1, 5000);
    CHECK(g.status == MCRS_STATUS_OK && g.is_b && g.hit_before == 0 && g.ttl > 290,
          "meta get: status %d ttl %lld hit_before %d", (int)g.status, (long long)g.ttl,
          g.hit_before);
    size_t nl;
    const uint8_t *none = key("none", &nl);
    g.status = MCRS_STATUS_PANIC;
    done_count = 0;
    CHECK_OK(mcrs_loop_meta_get(l, none, nl, on_meta, &g));
    drive(l, 1, 5000);
    CHECK_STATUS(g.status, MCRS_STATUS_NOT_FOUND);
    mcrs_loop_free(l);
    mcrs_client_free(c);
}

static void refused_at_submit(void) {
    mcrs_client *c = tu_client(false);
    mcrs_loop *l = loop_of(c);
    struct lease s = {0};
    CHECK_STATUS(mcrs_loop_lease_get(l, K("k"), 0, on_lease, &s), MCRS_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(mcrs_loop_lease_get(l, K("a b"), 5, on_lease, &s), MCRS_STATUS_INVALID_KEY);
    CHECK_STATUS(mcrs_loop_lease_get(l, NULL, 1, 5, on_lease, &s), MCRS_STATUS_NULL_POINTER);
    CHECK_STATUS(mcrs_loop_lease_get(NULL, K("k"), 5, on_lease, &s), MCRS_STATUS_NULL_POINTER);
    CHECK_STATUS(mcrs_loop_lease_set(l, K("k"), NULL, 3, 0, 0, 1, on_status, &s),
                 MCRS_STATUS_NULL_POINTER);
    CHECK_STATUS(mcrs_loop_invalidate(l, K(""), 0, on_status, &s), MCRS_STATUS_INVALID_KEY);
    CHECK_STATUS(mcrs_loop_meta_get(l, NULL, 0, NULL, NULL), MCRS_STATUS_NULL_POINTER);
    CHECK(s.calls == 0 && mcrs_loop_pending(l) == 0, "no callback for a refused submit");
    /* NULL callbacks: outcomes dropped, values freed */
    CHECK_OK(mcrs_client_set(c, K("loop-lease-nullcb"), K("x"), 0, 60, MCRS_NOREPLY_OFF));
    CHECK_OK(mcrs_loop_lease_get(l, K("loop-lease-nullcb"), 5, NULL, NULL));
    CHECK_OK(mcrs_loop_meta_get(l, K("loop-lease-nullcb"), NULL, NULL));
    long end = now_ms() + 2000;
    while (mcrs_loop_pending(l) > 0 && now_ms() < end) {
        usleep(1000);
        CHECK_OK(mcrs_loop_run(l));
    }
    CHECK(mcrs_loop_pending(l) == 0, "NULL-callback requests completed");
    /* freeing with a lease get pending: CANCELLED, once */
    struct lease p = {0};
    CHECK_OK(mcrs_loop_lease_get(l, K("loop-lease-pending"), 5, on_lease, &p));
    mcrs_loop_free(l);
    CHECK(p.calls == 1 && p.status == MCRS_STATUS_CANCELLED && p.state == MCRS_LEASE_WAIT &&
              !p.has_value,
          "pending lease get cancelled once: %d calls, status %d", p.calls, (int)p.status);
    mcrs_client_free(c);
}

/* ---- the herd: a cached function under a lease, 64 callers on one loop ---- */

#define HERD 64
static const uint8_t *herd_key;
static size_t herd_key_len;
static int backend_calls;
static int herd_done;
static long retry_at[HERD];   /* when a WAIT caller asks again; 0: not waiting */
static long compute_end;      /* when the winner's 50 ms compute ends; 0: none */
static uint64_t compute_token;
static mcrs_loop *herd_loop;

static void herd_on_set(void *ud, mcrs_status st) {
    (void)ud;
    CHECK_STATUS(st, MCRS_STATUS_OK);
    herd_done++; /* the winner has its value */
}

static void herd_on_lease(void *ud, mcrs_status st, mcrs_lease state, uint64_t token,
                          mcrs_value *v) {
    int i = (int)(intptr_t)ud;
    CHECK_STATUS(st, MCRS_STATUS_OK);
    switch (state) {
    case MCRS_LEASE_HIT:
    case MCRS_LEASE_STALE:
        CHECK(tu_value_is(v, "expensive", 9, 0), "caller %d got the value", i);
        herd_done++;
        break;
    case MCRS_LEASE_WON:
        backend_calls++;
        compute_end = now_ms() + 50;
        compute_token = token;
        break;
    case MCRS_LEASE_WAIT:
        retry_at[i] = now_ms() + 5;
        break;
    }
    mcrs_value_free(v);
}

static void herd_of_64_one_backend_call(void) {
    mcrs_client *c = tu_client(false);
    herd_loop = loop_of(c);
    herd_key = key("herd", &herd_key_len);
    for (int i = 0; i < HERD; i++)
        CHECK_OK(mcrs_loop_lease_get(herd_loop, herd_key, herd_key_len, 10, herd_on_lease,
                                     (void *)(intptr_t)i));
    struct pollfd p = {.fd = mcrs_loop_fd(herd_loop), .events = POLLIN};
    long end = now_ms() + 10000;
    while (herd_done < HERD && now_ms() < end) {
        int t = mcrs_loop_timeout_ms(herd_loop);
        if (t < 0 || t > 2)
            t = 2;
        poll(&p, 1, t);
        CHECK_OK(mcrs_loop_run(herd_loop));
        long now = now_ms();
        for (int i = 0; i < HERD; i++) {
            if (retry_at[i] != 0 && retry_at[i] <= now) {
                retry_at[i] = 0;
                CHECK_OK(mcrs_loop_lease_get(herd_loop, herd_key, herd_key_len, 10,
                                             herd_on_lease, (void *)(intptr_t)i));
            }
        }
        if (compute_end != 0 && compute_end <= now) {
            compute_end = 0;
            CHECK_OK(mcrs_loop_lease_set(herd_loop, herd_key, herd_key_len, K("expensive"), 0,
                                         60, compute_token, herd_on_set, NULL));
        }
    }
    CHECK(herd_done == HERD, "%d of %d callers got the value", herd_done, HERD);
    CHECK(backend_calls == 1, "%d backend calls", backend_calls);
    printf("   %d loop callers on one cold key under a lease: %d backend call(s)\n", HERD,
           backend_calls);
    mcrs_loop_free(herd_loop);
    mcrs_client_free(c);
}

int main(void) {
    RUN(cold_key_one_won_rest_wait);
    RUN(invalidate_one_won_rest_stale);
    RUN(unfulfilled_lease_expires);
    RUN(lost_race_is_exists);
    RUN(refused_at_submit);
    RUN(herd_of_64_one_backend_call);
    TEST_MAIN_END();
}
