/* The event-loop C API (mcrs_loop_*) against real memcached servers:
 * a poll-driven loop with many requests in flight, every callback exactly
 * once, refusals at submit, partial multi-key results, a stalled server,
 * freeing with requests pending (also from inside a callback), and
 * submissions from another thread. Runs with three servers. */
#include "test_util.h"

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>

static long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* Runs the loop until *done reaches want, at most max_ms. */
static void drive(mcrs_loop *l, const int *done, int want, int max_ms) {
    struct pollfd p = {.fd = mcrs_loop_fd(l), .events = POLLIN};
    long end = now_ms() + max_ms;
    while (*done < want && now_ms() < end) {
        int t = mcrs_loop_timeout_ms(l);
        if (t < 0 || t > 50)
            t = 50;
        poll(&p, 1, t);
        CHECK_OK(mcrs_loop_run(l));
    }
}

static const char *server_at(int i) {
    static char buf[3][64];
    const char *all = tu_env("MCRS_TEST_SERVERS");
    for (int k = 0; k < i; k++) {
        all = strchr(all, ',');
        REQUIRE(all != NULL, "MCRS_TEST_SERVERS has %d servers", k + 1);
        all++;
    }
    size_t n = strcspn(all, ",");
    snprintf(buf[i], sizeof buf[i], "%.*s", (int)n, all);
    return buf[i];
}

static mcrs_client *client_of(const char **servers, int n, uint32_t timeout_ms) {
    mcrs_config *cfg = mcrs_config_new();
    for (int i = 0; i < n; i++)
        CHECK_OK(mcrs_config_add_server(cfg, servers[i]));
    CHECK_OK(mcrs_config_set_timeout_ms(cfg, timeout_ms));
    CHECK_OK(mcrs_config_set_connect_timeout_ms(cfg, timeout_ms));
    mcrs_client *c = tu_client_from(cfg);
    mcrs_config_free(cfg);
    return c;
}

static mcrs_loop *loop_of(const mcrs_client *c) {
    mcrs_loop *l = NULL;
    CHECK_OK(mcrs_loop_new(c, &l));
    REQUIRE(l != NULL, "mcrs_loop_new");
    return l;
}

/* ---- callbacks -------------------------------------------------------------- */

struct slot {
    int calls;
    mcrs_status status;
    char data[64];
    size_t len;
    uint64_t number;
};

static int done_count;

static void on_get(void *ud, mcrs_status st, mcrs_value *v) {
    struct slot *s = ud;
    s->calls++;
    s->status = st;
    s->len = 0;
    if (v != NULL) {
        s->len = mcrs_value_len(v) < sizeof s->data ? mcrs_value_len(v) : sizeof s->data;
        memcpy(s->data, mcrs_value_data(v), s->len);
        mcrs_value_free(v);
    }
    CHECK((st == MCRS_STATUS_OK) == (v != NULL), "a value comes with OK only");
    done_count++;
}

static void on_status(void *ud, mcrs_status st) {
    struct slot *s = ud;
    s->calls++;
    s->status = st;
    done_count++;
}

static void on_number(void *ud, mcrs_status st, uint64_t n) {
    struct slot *s = ud;
    s->calls++;
    s->status = st;
    s->number = n;
    done_count++;
}

/* ---- tests ------------------------------------------------------------------ */

static void hundred_in_flight(void) {
    const char *servers[] = {server_at(0)};
    mcrs_client *c = client_of(servers, 1, 2000);
    mcrs_loop *l = loop_of(c);
    enum { N = 100 };
    static struct slot sets[N], gets[N];
    char key[N][64], val[N][32];
    done_count = 0;
    for (int i = 0; i < N; i++) {
        snprintf(key[i], sizeof key[i], "%s:loop:%d", tu_run_id(), i);
        snprintf(val[i], sizeof val[i], "value-%d", i);
        if (i % 4 != 0)
            CHECK_OK(mcrs_loop_set(l, B(key[i]), strlen(key[i]), B(val[i]), strlen(val[i]), 7, 0,
                                   MCRS_NOREPLY_OFF, on_status, &sets[i]));
    }
    drive(l, &done_count, N - N / 4, 3000);
    for (int round = 0; round < 5; round++) {
        done_count = 0;
        memset(gets, 0, sizeof gets);
        for (int i = 0; i < N; i++)
            CHECK_OK(mcrs_loop_get(l, B(key[i]), strlen(key[i]), on_get, &gets[i]));
        CHECK(mcrs_loop_pending(l) == N, "pending %zu", mcrs_loop_pending(l));
        drive(l, &done_count, N, 3000);
        for (int i = 0; i < N; i++) {
            CHECK(gets[i].calls == 1, "get %d: %d calls", i, gets[i].calls);
            if (i % 4 == 0) {
                CHECK_STATUS(gets[i].status, MCRS_STATUS_NOT_FOUND);
            } else {
                CHECK_OK(gets[i].status);
                CHECK(gets[i].len == strlen(val[i]) && memcmp(gets[i].data, val[i], gets[i].len) == 0,
                      "get %d: wrong value", i);
            }
        }
    }
    for (int i = 0; i < N; i++)
        CHECK(sets[i].calls == (i % 4 != 0), "set %d: %d calls", i, sets[i].calls);
    CHECK(mcrs_loop_pending(l) == 0, "nothing pending");
    mcrs_loop_free(l);
    mcrs_client_free(c);
}

static void other_commands(void) {
    const char *servers[] = {server_at(0)};
    mcrs_client *c = client_of(servers, 1, 2000);
    mcrs_loop *l = loop_of(c);
    struct slot s[8] = {0};
    char k[48];
    snprintf(k, sizeof k, "%s:loop:n", tu_run_id());
    done_count = 0;
    CHECK_OK(mcrs_loop_set(l, B(k), strlen(k), K("41"), 0, 0, MCRS_NOREPLY_ON, on_status, &s[0]));
    CHECK_OK(mcrs_loop_incr(l, B(k), strlen(k), 1, MCRS_NOREPLY_DEFAULT, on_number, &s[1]));
    CHECK_OK(mcrs_loop_decr(l, K("loop-missing-counter"), 1, MCRS_NOREPLY_DEFAULT, on_number, &s[2]));
    CHECK_OK(mcrs_loop_add(l, B(k), strlen(k), K("x"), 0, 0, MCRS_NOREPLY_OFF, on_status, &s[3]));
    CHECK_OK(mcrs_loop_touch(l, B(k), strlen(k), 100, MCRS_NOREPLY_OFF, on_status, &s[4]));
    CHECK_OK(mcrs_loop_delete(l, B(k), strlen(k), MCRS_NOREPLY_OFF, on_status, &s[5]));
    CHECK_OK(mcrs_loop_gets(l, B(k), strlen(k), on_get, &s[6]));
    /* a NULL callback: the outcome is dropped */
    CHECK_OK(mcrs_loop_get(l, B(k), strlen(k), NULL, NULL));
    drive(l, &done_count, 7, 3000);
    CHECK_OK(s[0].status);
    CHECK_OK(s[1].status);
    CHECK(s[1].number == 42, "incr gave %llu", (unsigned long long)s[1].number);
    CHECK_STATUS(s[2].status, MCRS_STATUS_NOT_FOUND);
    CHECK_STATUS(s[3].status, MCRS_STATUS_NOT_STORED);
    CHECK_OK(s[4].status);
    CHECK_OK(s[5].status);
    CHECK_STATUS(s[6].status, MCRS_STATUS_NOT_FOUND);
    for (int i = 0; i < 7; i++)
        CHECK(s[i].calls == 1, "request %d: %d calls", i, s[i].calls);
    mcrs_loop_free(l);
    mcrs_client_free(c);
}

static void refused_at_submit(void) {
    const char *servers[] = {server_at(0)};
    mcrs_client *c = client_of(servers, 1, 2000);
    mcrs_loop *l = loop_of(c);
    struct slot s = {0};
    CHECK_STATUS(mcrs_loop_get(l, K("bad key"), on_get, &s), MCRS_STATUS_INVALID_KEY);
    CHECK_STATUS(mcrs_loop_get(l, K(""), on_get, &s), MCRS_STATUS_INVALID_KEY);
    CHECK_STATUS(mcrs_loop_get(l, NULL, 3, on_get, &s), MCRS_STATUS_NULL_POINTER);
    CHECK_STATUS(mcrs_loop_get(NULL, K("k"), on_get, &s), MCRS_STATUS_NULL_POINTER);
    CHECK_STATUS(mcrs_loop_set(l, K("k"), K("v"), 0, 0x80000000u, MCRS_NOREPLY_DEFAULT, on_status, &s),
                 MCRS_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(mcrs_loop_set(l, K("k"), K("v"), 0, 0, 99, on_status, &s), MCRS_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(mcrs_loop_get_many(l, NULL, NULL, 2, NULL, NULL), MCRS_STATUS_NULL_POINTER);
    CHECK_STATUS(mcrs_loop_stats(l, "a\r\nflush_all", NULL, NULL), MCRS_STATUS_INVALID_ARGUMENT);
    CHECK_OK(mcrs_loop_run(l));
    CHECK(s.calls == 0, "a refused request's callback never runs");
    CHECK(mcrs_loop_pending(l) == 0, "nothing pending");
    CHECK_STATUS(mcrs_loop_run(NULL), MCRS_STATUS_NULL_POINTER);
    CHECK_STATUS(mcrs_loop_new(c, NULL), MCRS_STATUS_NULL_POINTER);
    mcrs_loop *none = TU_SENTINEL;
    CHECK_STATUS(mcrs_loop_new(NULL, &none), MCRS_STATUS_NULL_POINTER);
    CHECK(none == NULL, "*out = NULL on failure");
    CHECK(mcrs_loop_fd(NULL) == -1 && mcrs_loop_timeout_ms(NULL) == -1, "NULL loop");
    CHECK(mcrs_loop_timeout_ms(l) == -1, "nothing pending: -1");
    mcrs_loop_free(NULL);
    mcrs_loop_free(l);
    mcrs_client_free(c);
}

struct many {
    int calls;
    mcrs_status status;
    mcrs_values *vs;
    mcrs_status per_key[8];
    size_t n;
};

static void on_values(void *ud, mcrs_status st, mcrs_values *vs) {
    struct many *m = ud;
    m->calls++;
    m->status = st;
    m->vs = vs;
    done_count++;
}

static void on_keys(void *ud, mcrs_status st, const mcrs_status *per_key, size_t n) {
    struct many *m = ud;
    m->calls++;
    m->status = st;
    m->n = n;
    for (size_t i = 0; i < n && i < 8; i++)
        m->per_key[i] = per_key[i];
    done_count++;
}

/* Two live servers and one where nobody listens: the live servers' hits
   come back, the others' keys say why. */
static void partial_results(void) {
    const char *servers[] = {server_at(0), server_at(1), tu_closed_port_addr()};
    mcrs_client *c = client_of(servers, 3, 500);
    enum { N = 30 };
    char key[N][64];
    const uint8_t *keys[N];
    size_t lens[N];
    for (int i = 0; i < N; i++) {
        snprintf(key[i], sizeof key[i], "%s:p:%d", tu_run_id(), i);
        keys[i] = B(key[i]);
        lens[i] = strlen(key[i]);
        /* keys of the dead server fail; the rest are stored */
        mcrs_client_set(c, keys[i], lens[i], keys[i], lens[i], 0, 0, MCRS_NOREPLY_OFF);
    }
    /* blocking API */
    mcrs_values *vs = NULL;
    long t0 = now_ms();
    CHECK_STATUS(mcrs_client_get_many(c, keys, lens, N, &vs), MCRS_STATUS_PARTIAL);
    CHECK(now_ms() - t0 < 700, "partial result within the timeout (%ld ms)", now_ms() - t0);
    REQUIRE(vs != NULL, "PARTIAL comes with the list");
    int hits = 0, failed = 0;
    for (int i = 0; i < N; i++) {
        mcrs_status st = mcrs_values_status(vs, i);
        char why[256];
        if (st == MCRS_STATUS_OK) {
            hits++;
            CHECK(tu_value_is(mcrs_values_get(vs, i), key[i], lens[i], 0), "hit %d", i);
            CHECK(mcrs_values_error(vs, i, why, sizeof why) == 0, "no detail for a hit");
        } else {
            failed++;
            CHECK(st == MCRS_STATUS_CONNECT_FAILED || st == MCRS_STATUS_SERVER_DOWN, "key %d: %s", i,
                  mcrs_status_str(st));
            CHECK(mcrs_values_get(vs, i) == NULL, "no value for a failed key");
            CHECK(mcrs_values_error(vs, i, why, sizeof why) > 0, "a failed key has a detail");
        }
    }
    CHECK(hits > 0 && failed > 0 && hits + failed == N, "hits %d failed %d", hits, failed);
    CHECK_STATUS(mcrs_values_status(vs, N), MCRS_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(mcrs_values_status(NULL, 0), MCRS_STATUS_NULL_POINTER);
    mcrs_values_free(vs);

    mcrs_status per_key[N];
    mcrs_status st = mcrs_client_delete_many_results(c, keys, lens, N, MCRS_NOREPLY_OFF, per_key);
    CHECK_STATUS(st, MCRS_STATUS_PARTIAL);
    int deleted = 0;
    for (int i = 0; i < N; i++)
        deleted += per_key[i] == MCRS_STATUS_OK;
    CHECK(deleted == hits, "deleted %d, hits were %d", deleted, hits);

    /* the loop gives the same */
    mcrs_loop *l = loop_of(c);
    struct many m = {0}, w = {0};
    done_count = 0;
    CHECK_OK(mcrs_loop_get_many(l, keys, lens, N, on_values, &m));
    const uint8_t *two[] = {keys[0], keys[1]};
    size_t two_lens[] = {lens[0], lens[1]};
    CHECK_OK(mcrs_loop_delete_many(l, two, two_lens, 2, MCRS_NOREPLY_OFF, on_keys, &w));
    drive(l, &done_count, 2, 3000);
    CHECK(m.calls == 1 && w.calls == 1, "one callback each");
    CHECK(m.status == MCRS_STATUS_PARTIAL || m.status == MCRS_STATUS_OK || m.status == MCRS_STATUS_NOT_FOUND,
          "get_many: %s", mcrs_status_str(m.status));
    if (m.vs != NULL) {
        for (int i = 0; i < N; i++)
            CHECK(mcrs_values_status(m.vs, i) != MCRS_STATUS_OK, "key %d was deleted", i);
        mcrs_values_free(m.vs);
    }
    CHECK(w.n == 2, "two per-key statuses");
    mcrs_loop_free(l);
    mcrs_client_free(c);
}

/* The pid of the server, from its stats. */
static long server_pid(mcrs_client *c) {
    mcrs_stats *s = NULL;
    long pid = -1;
    if (mcrs_client_stats(c, "", &s) != MCRS_STATUS_OK)
        return -1;
    for (size_t i = 0; i < mcrs_stats_len(s); i++) {
        const char *srv, *name, *val;
        if (mcrs_stats_get(s, i, &srv, &name, &val) == MCRS_STATUS_OK && strcmp(name, "pid") == 0)
            pid = atol(val);
    }
    mcrs_stats_free(s);
    return pid;
}

static void stalled_server(void) {
    const char *servers[] = {server_at(2)};
    mcrs_client *c = client_of(servers, 1, 300);
    long pid = server_pid(c);
    REQUIRE(pid > 0, "server pid");
    mcrs_loop *l = loop_of(c);
    struct slot s[20];
    memset(s, 0, sizeof s);
    REQUIRE(kill((pid_t)pid, SIGSTOP) == 0, "SIGSTOP");
    usleep(50 * 1000);
    done_count = 0;
    long t0 = now_ms();
    for (int i = 0; i < 20; i++)
        CHECK_OK(mcrs_loop_get(l, K("stalled"), on_get, &s[i]));
    drive(l, &done_count, 20, 3000);
    long took = now_ms() - t0;
    kill((pid_t)pid, SIGCONT);
    for (int i = 0; i < 20; i++) {
        CHECK(s[i].calls == 1, "request %d: %d calls", i, s[i].calls);
        CHECK_STATUS(s[i].status, MCRS_STATUS_TIMEOUT);
    }
    CHECK(took >= 290 && took <= 300 + 50, "timed out after %ld ms (timeout 300)", took);
    /* after the server resumes, the loop works again */
    struct slot again = {0};
    done_count = 0;
    CHECK_OK(mcrs_loop_set(l, K("stalled"), K("back"), 0, 0, MCRS_NOREPLY_OFF, on_status, &again));
    CHECK_OK(mcrs_loop_get(l, K("stalled"), on_get, &s[0]));
    drive(l, &done_count, 2, 3000);
    CHECK_OK(again.status);
    CHECK(s[0].status == MCRS_STATUS_OK && s[0].len == 4 && memcmp(s[0].data, "back", 4) == 0,
          "value after resume: %s", mcrs_status_str(s[0].status));
    mcrs_loop_free(l);
    mcrs_client_free(c);
}

/* A listener that accepts (in the kernel's backlog) and never answers. */
static int silent_listener(char *addr, size_t cap) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof sa;
    REQUIRE(bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 && listen(fd, 16) == 0, "listen");
    REQUIRE(getsockname(fd, (struct sockaddr *)&sa, &sl) == 0, "getsockname");
    snprintf(addr, cap, "127.0.0.1:%u", (unsigned)ntohs(sa.sin_port));
    return fd;
}

static void free_with_pending(void) {
    char addr[64];
    int lfd = silent_listener(addr, sizeof addr);
    const char *servers[] = {addr};
    mcrs_client *c = client_of(servers, 1, 5000);
    mcrs_loop *l = loop_of(c);
    struct slot s[50];
    memset(s, 0, sizeof s);
    done_count = 0;
    for (int i = 0; i < 50; i++)
        CHECK_OK(mcrs_loop_get(l, K("k"), on_get, &s[i]));
    for (int i = 0; i < 3; i++)
        CHECK_OK(mcrs_loop_run(l));
    mcrs_client_free(c); /* the loop keeps what it needs */
    mcrs_loop_free(l);
    for (int i = 0; i < 50; i++) {
        CHECK(s[i].calls == 1, "request %d: %d calls", i, s[i].calls);
        CHECK_STATUS(s[i].status, MCRS_STATUS_CANCELLED);
    }
    close(lfd);
}

struct freeing {
    mcrs_loop *l;
    int calls;
    int cancelled;
};

static void free_from_callback(void *ud, mcrs_status st, mcrs_value *v) {
    struct freeing *f = ud;
    mcrs_value_free(v);
    f->calls++;
    if (st == MCRS_STATUS_CANCELLED) {
        f->cancelled++;
        /* submissions to a loop being freed are refused */
        CHECK_STATUS(mcrs_loop_get(f->l, K("k"), free_from_callback, f), MCRS_STATUS_CANCELLED);
        return;
    }
    if (f->calls == 1)
        mcrs_loop_free(f->l);
}

static void free_inside_a_callback(void) {
    const char *servers[] = {server_at(0)};
    mcrs_client *c = client_of(servers, 1, 2000);
    char addr[64];
    int lfd = silent_listener(addr, sizeof addr);
    const char *two[] = {server_at(0), addr};
    mcrs_client *c2 = client_of(two, 2, 5000);
    mcrs_loop *l = loop_of(c2);
    struct freeing f = {.l = l};
    /* keys on both servers: the live one answers, the silent one never does */
    char key[16][16];
    for (int i = 0; i < 16; i++) {
        snprintf(key[i], sizeof key[i], "f%d", i);
        CHECK_OK(mcrs_loop_get(l, B(key[i]), strlen(key[i]), free_from_callback, &f));
    }
    struct pollfd p = {.fd = mcrs_loop_fd(l), .events = POLLIN};
    long end = now_ms() + 3000;
    while (f.calls == 0 && now_ms() < end) {
        poll(&p, 1, 50);
        CHECK_OK(mcrs_loop_run(l)); /* the loop is gone once a callback freed it */
    }
    CHECK(f.calls == 16, "each request completed once: %d", f.calls);
    CHECK(f.cancelled > 0, "the silent server's requests were cancelled");
    mcrs_client_free(c2);
    mcrs_client_free(c);
    close(lfd);
}

struct remote {
    mcrs_loop *l;
    struct slot *slots;
    int n;
    pthread_t loop_thread;
};

static atomic_int wrong_thread_calls;

static void on_get_remote(void *ud, mcrs_status st, mcrs_value *v) {
    struct remote *r = ud;
    if (!pthread_equal(pthread_self(), r->loop_thread))
        atomic_fetch_add(&wrong_thread_calls, 1);
    on_get(&r->slots[0], st, v);
}

static void *submitter(void *arg) {
    struct remote *r = arg;
    for (int i = 0; i < r->n; i++)
        CHECK_OK(mcrs_loop_get(r->l, K("remote"), on_get_remote, r));
    CHECK_STATUS(mcrs_loop_run(r->l), MCRS_STATUS_INVALID_ARGUMENT);
    return NULL;
}

static void other_threads_submit(void) {
    const char *servers[] = {server_at(0)};
    mcrs_client *c = client_of(servers, 1, 2000);
    CHECK_OK(mcrs_client_set(c, K("remote"), K("yes"), 0, 0, MCRS_NOREPLY_OFF));
    mcrs_loop *l = loop_of(c);
    struct slot s = {0};
    struct remote r = {.l = l, .slots = &s, .n = 200, .loop_thread = pthread_self()};
    done_count = 0;
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, submitter, &r);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    drive(l, &done_count, 400, 5000);
    CHECK(s.calls == 400, "%d callbacks", s.calls);
    CHECK_OK(s.status);
    CHECK(atomic_load(&wrong_thread_calls) == 0, "callbacks run on the loop's thread");
    mcrs_loop_free(l);
    mcrs_client_free(c);
}

static void on_version(void *ud, mcrs_status st, const char *v) {
    struct slot *s = ud;
    s->calls++;
    s->status = st;
    if (v != NULL)
        snprintf(s->data, sizeof s->data, "%s", v);
    done_count++;
}

static void on_stats(void *ud, mcrs_status st, mcrs_stats *stats) {
    struct slot *s = ud;
    s->calls++;
    s->status = st;
    s->number = mcrs_stats_len(stats);
    mcrs_stats_free(stats);
    done_count++;
}

static void server_wide(void) {
    const char *servers[] = {server_at(0), server_at(1)};
    mcrs_client *c = client_of(servers, 2, 2000);
    mcrs_loop *l = loop_of(c);
    struct slot v = {0}, st = {0};
    done_count = 0;
    CHECK_OK(mcrs_loop_version(l, on_version, &v));
    CHECK_OK(mcrs_loop_stats(l, "", on_stats, &st));
    drive(l, &done_count, 2, 3000);
    CHECK_OK(v.status);
    CHECK(strncmp(v.data, "1.", 2) == 0, "version %s", v.data);
    CHECK_OK(st.status);
    CHECK(st.number > 20, "stats of two servers: %llu", (unsigned long long)st.number);
    mcrs_loop_free(l);
    mcrs_client_free(c);
}

/* mcrs_loop_adopt / mcrs_loop_disown: a loop made on this thread is run by
 * another one, then comes back. */
static _Atomic int adopted_calls;
static pthread_t adopter;

static void on_adopted_get(void *ud, mcrs_status st, mcrs_value *v) {
    (void)ud;
    if (st == MCRS_STATUS_OK && v != NULL && mcrs_value_len(v) == 3 &&
        pthread_equal(pthread_self(), adopter))
        atomic_fetch_add(&adopted_calls, 1);
    mcrs_value_free(v);
    done_count++;
}

static void *adopt_and_drive(void *arg) {
    mcrs_loop *l = arg;
    adopter = pthread_self();
    CHECK_OK(mcrs_loop_adopt(l));
    for (int i = 0; i < 50; i++)
        CHECK_OK(mcrs_loop_get(l, K("adopted"), on_adopted_get, NULL));
    drive(l, &done_count, 50, 5000);
    CHECK_OK(mcrs_loop_disown(l));
    return NULL;
}

static void adopted_by_another_thread(void) {
    const char *servers[] = {server_at(0)};
    mcrs_client *c = client_of(servers, 1, 2000);
    CHECK_OK(mcrs_client_set(c, K("adopted"), K("yes"), 0, 0, MCRS_NOREPLY_OFF));
    mcrs_loop *l = loop_of(c);
    CHECK_OK(mcrs_loop_disown(l));
    CHECK_STATUS(mcrs_loop_run(l), MCRS_STATUS_INVALID_ARGUMENT); /* no thread's now */
    done_count = 0;
    pthread_t t;
    pthread_create(&t, NULL, adopt_and_drive, l);
    pthread_join(t, NULL);
    CHECK(atomic_load(&adopted_calls) == 50, "%d hits on the adopting thread", atomic_load(&adopted_calls));
    CHECK_STATUS(mcrs_loop_adopt(NULL), MCRS_STATUS_NULL_POINTER);
    CHECK_OK(mcrs_loop_adopt(l)); /* back to this thread, which frees it */
    CHECK_OK(mcrs_loop_run(l));
    mcrs_loop_free(l);
    mcrs_client_free(c);
}

int main(void) {
    RUN(hundred_in_flight);
    RUN(other_commands);
    RUN(refused_at_submit);
    RUN(partial_results);
    RUN(stalled_server);
    RUN(free_with_pending);
    RUN(free_inside_a_callback);
    RUN(other_threads_submit);
    RUN(server_wide);
    RUN(adopted_by_another_thread);
    TEST_MAIN_END();
}
