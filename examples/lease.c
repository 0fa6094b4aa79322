/* Stampede protection with leases: a cached function that recomputes under a lease.
 *
 *   cached_report(c, key)  reads the key with mcrs_client_lease_get_or_wait:
 *     HIT / STALE -> use the cached value (STALE: someone is refreshing it)
 *     WON         -> this caller computes it and stores it with mcrs_client_lease_set
 *     WAIT        -> the lease holder took longer than we wait: compute without caching
 *
 * Then the herd: HERD threads (default 64, argv[1]) ask for one cold key at once, the
 * computation takes 50 ms; printed are the backend calls and the p50/p99 latency of
 * the callers, plain get+set against the lease. Last, mcrs_client_invalidate marks
 * the key stale: one caller recomputes while the others are served the old value.
 *
 * Servers come from MCRS_SERVERS (comma-separated), default "localhost". Build and
 * run it with examples/run_example.sh lease.
 */
#define _POSIX_C_SOURCE 200809L /* strdup, strtok_r, nanosleep, clock_gettime */
#include "mcrs.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LEASE_TTL 10   /* seconds a lease holder has to store its value */
#define WAIT_MS 2000   /* how long a caller waits for the holder's value */
#define EXPTIME 300    /* the cached value's TTL */
#define COMPUTE_MS 50  /* the expensive computation */

static atomic_int backend_calls;

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* The expensive computation the cache protects (a database query, say). */
static size_t compute_report(const char *key, char *out, size_t cap) {
    atomic_fetch_add(&backend_calls, 1);
    struct timespec d = {0, COMPUTE_MS * 1000000L};
    nanosleep(&d, NULL);
    return (size_t)snprintf(out, cap, "report for %s", key);
}

/* The cached function: copies the report for `key` into `out` (NUL-terminated);
   returns its length, or -1 on a cache failure. */
static int cached_report(const mcrs_client *c, const char *key, char *out, size_t cap) {
    mcrs_lease state;
    uint64_t token;
    mcrs_value *v = NULL;
    size_t kl = strlen(key);
    mcrs_status st = mcrs_client_lease_get_or_wait(c, (const uint8_t *)key, kl, LEASE_TTL,
                                                   WAIT_MS, &state, &token, &v);
    if (st != MCRS_STATUS_OK)
        return -1;
    if (state == MCRS_LEASE_HIT || state == MCRS_LEASE_STALE) {
        size_t n = mcrs_value_len(v) < cap - 1 ? mcrs_value_len(v) : cap - 1;
        memcpy(out, mcrs_value_data(v), n);
        out[n] = '\0';
        mcrs_value_free(v);
        return (int)n;
    }
    mcrs_value_free(v); /* WON on a stale value hands it over too: not needed here */
    size_t n = compute_report(key, out, cap);
    if (state == MCRS_LEASE_WON) {
        st = mcrs_client_lease_set(c, (const uint8_t *)key, kl, (const uint8_t *)out, n, 0,
                                   EXPTIME, token);
        /* EXISTS: the key was invalidated meanwhile; our value is not stored */
        if (st != MCRS_STATUS_OK && st != MCRS_STATUS_EXISTS)
            return -1;
    }
    return (int)n;
}

/* The same function without a lease: every caller that misses recomputes. */
static int plain_report(const mcrs_client *c, const char *key, char *out, size_t cap) {
    mcrs_value *v = NULL;
    size_t kl = strlen(key);
    mcrs_status st = mcrs_client_get(c, (const uint8_t *)key, kl, &v);
    if (st == MCRS_STATUS_OK) {
        size_t n = mcrs_value_len(v) < cap - 1 ? mcrs_value_len(v) : cap - 1;
        memcpy(out, mcrs_value_data(v), n);
        out[n] = '\0';
        mcrs_value_free(v);
        return (int)n;
    }
    if (st != MCRS_STATUS_NOT_FOUND)
        return -1;
    size_t n = compute_report(key, out, cap);
    st = mcrs_client_set(c, (const uint8_t *)key, kl, (const uint8_t *)out, n, 0, EXPTIME,
                         MCRS_NOREPLY_OFF);
    return st == MCRS_STATUS_OK ? (int)n : -1;
}

struct caller {
    const mcrs_client *c;
    const char *key;
    int lease;
    pthread_barrier_t *start;
    double ms;
    int ok;
};

static void *caller_main(void *p) {
    struct caller *a = p;
    char buf[128];
    pthread_barrier_wait(a->start);
    double t0 = now_ms();
    int n = a->lease ? cached_report(a->c, a->key, buf, sizeof buf)
                     : plain_report(a->c, a->key, buf, sizeof buf);
    a->ms = now_ms() - t0;
    a->ok = n > 0 && strncmp(buf, "report for ", 11) == 0;
    return NULL;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* n threads at once on one key; returns the callers that got the report. */
static int herd(const mcrs_client *c, const char *key, int n, int lease, double *p50,
                double *p99) {
    pthread_t *t = calloc((size_t)n, sizeof *t);
    struct caller *a = calloc((size_t)n, sizeof *a);
    double *ms = calloc((size_t)n, sizeof *ms);
    pthread_barrier_t start;
    int ok = 0;
    if (t == NULL || a == NULL || ms == NULL)
        goto out;
    pthread_barrier_init(&start, NULL, (unsigned)n);
    for (int i = 0; i < n; i++) {
        a[i] = (struct caller){c, key, lease, &start, 0, 0};
        if (pthread_create(&t[i], NULL, caller_main, &a[i]) != 0) {
            fprintf(stderr, "lease: pthread_create failed\n");
            exit(1);
        }
    }
    for (int i = 0; i < n; i++) {
        pthread_join(t[i], NULL);
        ok += a[i].ok;
        ms[i] = a[i].ms;
    }
    pthread_barrier_destroy(&start);
    qsort(ms, (size_t)n, sizeof *ms, cmp_double);
    *p50 = ms[n / 2];
    *p99 = ms[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1];
out:
    free(t);
    free(a);
    free(ms);
    return ok;
}

static int fail(const char *what, mcrs_status st) {
    char detail[512];
    size_t n = mcrs_last_error(detail, sizeof detail);
    fprintf(stderr, "lease: %s failed: %s%s%s\n", what, mcrs_status_str(st), n ? ": " : "",
            n ? detail : "");
    return 1;
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 64;
    if (n < 1 || n > 1000) {
        fprintf(stderr, "usage: lease [callers, 1..1000]\n");
        return 2;
    }
    const char *env = getenv("MCRS_SERVERS");
    char *list = strdup(env != NULL && env[0] != '\0' ? env : "localhost");
    mcrs_config *cfg = mcrs_config_new();
    if (list == NULL || cfg == NULL)
        return 1;
    char *save = NULL;
    for (char *s = strtok_r(list, ",", &save); s != NULL; s = strtok_r(NULL, ",", &save)) {
        mcrs_status st = mcrs_config_add_server(cfg, s);
        if (st != MCRS_STATUS_OK) {
            free(list);
            mcrs_config_free(cfg);
            return fail("mcrs_config_add_server", st);
        }
    }
    free(list);
    mcrs_config_set_max_pool_size(cfg, (uint32_t)n);
    mcrs_client *c = NULL;
    mcrs_status st = mcrs_client_new(cfg, &c);
    mcrs_config_free(cfg);
    if (st != MCRS_STATUS_OK)
        return fail("mcrs_client_new", st);

    /* fresh keys for this run */
    char plain_key[64], lease_key[64];
    snprintf(plain_key, sizeof plain_key, "example:plain:%ld:%ld", (long)time(NULL), (long)getpid());
    snprintf(lease_key, sizeof lease_key, "example:lease:%ld:%ld", (long)time(NULL), (long)getpid());

    double p50, p99;
    atomic_store(&backend_calls, 0);
    int ok = herd(c, plain_key, n, 0, &p50, &p99);
    int plain_calls = atomic_load(&backend_calls);
    printf("plain get+set: %d callers on one cold key -> %d backend calls, p50 %.1f ms, p99 %.1f "
           "ms (%d got the value)\n",
           n, plain_calls, p50, p99, ok);

    atomic_store(&backend_calls, 0);
    ok = herd(c, lease_key, n, 1, &p50, &p99);
    int lease_calls = atomic_load(&backend_calls);
    printf("lease:         %d callers on one cold key -> %d backend call%s, p50 %.1f ms, p99 %.1f "
           "ms (%d got the value)\n",
           n, lease_calls, lease_calls == 1 ? "" : "s", p50, p99, ok);
    if (ok != n || lease_calls != 1) {
        mcrs_client_free(c);
        fprintf(stderr, "lease: expected one backend call and every caller served\n");
        return 1;
    }

    /* stale-while-revalidate: the source changed, the cached report is marked stale */
    st = mcrs_client_invalidate(c, (const uint8_t *)lease_key, strlen(lease_key), 30);
    if (st != MCRS_STATUS_OK) {
        mcrs_client_free(c);
        return fail("mcrs_client_invalidate", st);
    }
    atomic_store(&backend_calls, 0);
    ok = herd(c, lease_key, n, 1, &p50, &p99);
    printf("after invalidate: %d backend call%s, p50 %.1f ms, p99 %.1f ms (the others were served "
           "the stale report)\n",
           atomic_load(&backend_calls), atomic_load(&backend_calls) == 1 ? "" : "s", p50, p99);

    /* what a meta read tells about the item */
    mcrs_value *v = NULL;
    st = mcrs_client_meta_get(c, (const uint8_t *)lease_key, strlen(lease_key), &v);
    if (st != MCRS_STATUS_OK) {
        mcrs_client_free(c);
        return fail("mcrs_client_meta_get", st);
    }
    printf("meta get: \"%.*s\", ttl %lld s, last access %lld s ago, hit before: %s\n",
           (int)mcrs_value_len(v), (const char *)mcrs_value_data(v), (long long)mcrs_value_ttl(v),
           (long long)mcrs_value_last_access(v), mcrs_value_hit_before(v) == 1 ? "yes" : "no");
    mcrs_value_free(v);
    mcrs_client_free(c);
    return ok == n ? 0 : 1;
}
