/* Stampede protection on the event loop: a cached function under a lease, with
 * every caller a request in flight on one mcrs_loop (one thread, no caller blocked).
 *
 * A caller of the cached report submits mcrs_loop_lease_get; its callback decides:
 *   HIT / STALE -> the cached value (STALE: someone is refreshing it)
 *   WON         -> this caller computes (50 ms, here a timer of the driving loop)
 *                  and stores the result with mcrs_loop_lease_set
 *   WAIT        -> ask again after a backoff (1 ms, doubling up to 50 ms)
 *
 * The herd: HERD callers (default 64, argv[1]) ask for one cold key at once; printed
 * are the backend calls and the p50/p99 latency of the callers, plain get+set on the
 * loop against the lease. Then mcrs_loop_invalidate marks the key stale: one caller
 * recomputes while the others are served the old value.
 *
 * Servers come from MCRS_SERVERS (comma-separated), default "localhost". Build and
 * run it with examples/run_example.sh lease_loop.
 */
#define _POSIX_C_SOURCE 200809L /* strdup, strtok_r, clock_gettime */
#include "mcrs.h"

#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LEASE_TTL 10  /* seconds a lease holder has to store its value */
#define EXPTIME 300   /* the cached value's TTL */
#define COMPUTE_MS 50 /* the expensive computation */
#define MAX_HERD 4096

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* One caller of the cached function: a small state machine driven by callbacks. */
struct caller {
    double start, end;   /* when it asked, when it had the value (0: not yet) */
    double wake_at;      /* >0: ask again (WAIT) or finish computing (WON) then */
    double backoff;      /* ms before the next ask after a WAIT */
    bool computing;      /* WON: the computation ends at wake_at */
    uint64_t token;      /* the lease token while computing */
    bool stale;          /* was served a stale value */
};

static mcrs_loop *loop;
static const char *key;
static size_t key_len;
static struct caller callers[MAX_HERD];
static int herd, done, backend_calls;
static bool use_lease;

static void finish(struct caller *c, bool stale) {
    c->end = now_ms();
    c->stale = stale;
    done++;
}

static void on_stored(void *ud, mcrs_status st) {
    /* EXISTS: the lease was lost (the key was invalidated again): not stored */
    if (st != MCRS_STATUS_OK && st != MCRS_STATUS_EXISTS && st != MCRS_STATUS_NOT_STORED)
        fprintf(stderr, "store: %s\n", mcrs_status_str(st));
    finish(ud, false);
}

static void on_lease(void *ud, mcrs_status st, mcrs_lease state, uint64_t token,
                     mcrs_value *v) {
    struct caller *c = ud;
    if (st != MCRS_STATUS_OK) {
        fprintf(stderr, "lease get: %s\n", mcrs_status_str(st));
        finish(c, false);
        return;
    }
    switch (state) {
    case MCRS_LEASE_HIT:
    case MCRS_LEASE_STALE:
        finish(c, state == MCRS_LEASE_STALE);
        break;
    case MCRS_LEASE_WON: /* compute, then lease_set (see drive) */
        backend_calls++;
        c->computing = true;
        c->token = token;
        c->wake_at = now_ms() + COMPUTE_MS;
        break;
    case MCRS_LEASE_WAIT:
        c->wake_at = now_ms() + c->backoff;
        c->backoff = c->backoff * 2 > 50 ? 50 : c->backoff * 2;
        break;
    }
    mcrs_value_free(v);
}

static void on_get(void *ud, mcrs_status st, mcrs_value *v) {
    struct caller *c = ud;
    if (st == MCRS_STATUS_OK) {
        finish(c, false);
    } else { /* a miss: compute and set (every caller that missed does) */
        backend_calls++;
        c->computing = true;
        c->wake_at = now_ms() + COMPUTE_MS;
    }
    mcrs_value_free(v);
}

static void ask(struct caller *c) {
    mcrs_status st = use_lease
                         ? mcrs_loop_lease_get(loop, (const uint8_t *)key, key_len, LEASE_TTL, on_lease, c)
                         : mcrs_loop_get(loop, (const uint8_t *)key, key_len, on_get, c);
    if (st != MCRS_STATUS_OK) {
        fprintf(stderr, "submit: %s\n", mcrs_status_str(st));
        exit(1);
    }
}

static void store(struct caller *c) {
    static const char report[] = "the expensive report";
    mcrs_status st =
        use_lease ? mcrs_loop_lease_set(loop, (const uint8_t *)key, key_len, (const uint8_t *)report,
                                        sizeof report - 1, 0, EXPTIME, c->token, on_stored, c)
                  : mcrs_loop_set(loop, (const uint8_t *)key, key_len, (const uint8_t *)report,
                                  sizeof report - 1, 0, EXPTIME, MCRS_NOREPLY_OFF, on_stored, c);
    if (st != MCRS_STATUS_OK) {
        fprintf(stderr, "submit: %s\n", mcrs_status_str(st));
        exit(1);
    }
}

/* Runs the loop and the callers' timers until every caller has its value. */
static void drive(void) {
    struct pollfd p = {.fd = mcrs_loop_fd(loop), .events = POLLIN};
    double give_up = now_ms() + 10000;
    while (done < herd && now_ms() < give_up) {
        int t = mcrs_loop_timeout_ms(loop);
        if (t < 0 || t > 1)
            t = 1; /* the callers' timers are checked every millisecond */
        poll(&p, 1, t);
        mcrs_loop_run(loop);
        double now = now_ms();
        for (int i = 0; i < herd; i++) {
            struct caller *c = &callers[i];
            if (c->wake_at == 0 || c->wake_at > now)
                continue;
            c->wake_at = 0;
            if (c->computing) {
                c->computing = false;
                store(c);
            } else {
                ask(c);
            }
        }
    }
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void run_herd(const char *label, bool lease) {
    use_lease = lease;
    done = backend_calls = 0;
    double t0 = now_ms();
    for (int i = 0; i < herd; i++) {
        callers[i] = (struct caller){.start = t0, .backoff = 1};
        ask(&callers[i]);
    }
    drive();
    static double lat[MAX_HERD];
    int stale = 0;
    for (int i = 0; i < herd; i++) {
        lat[i] = callers[i].end > 0 ? callers[i].end - callers[i].start : 1e9;
        stale += callers[i].stale;
    }
    qsort(lat, (size_t)herd, sizeof lat[0], cmp);
    printf("%-17s %d callers on one key -> %d backend call%s, p50 %.1f ms, p99 %.1f ms", label,
           herd, backend_calls, backend_calls == 1 ? "" : "s", lat[herd / 2],
           lat[(herd * 99) / 100 < herd ? (herd * 99) / 100 : herd - 1]);
    if (stale > 0)
        printf(" (%d served the stale value)", stale);
    printf("\n");
}

static void on_invalidated(void *ud, mcrs_status st) {
    *(mcrs_status *)ud = st;
    done++;
}

int main(int argc, char **argv) {
    herd = argc > 1 ? atoi(argv[1]) : 64;
    if (herd < 1 || herd > MAX_HERD) {
        fprintf(stderr, "herd size must be 1..%d\n", MAX_HERD);
        return 2;
    }
    mcrs_config *cfg = mcrs_config_new();
    const char *env = getenv("MCRS_SERVERS");
    char *list = strdup(env && *env ? env : "localhost"), *save = NULL;
    for (char *s = strtok_r(list, ",", &save); s; s = strtok_r(NULL, ",", &save))
        if (mcrs_config_add_server(cfg, s) != MCRS_STATUS_OK) {
            fprintf(stderr, "bad server %s\n", s);
            return 1;
        }
    free(list);
    mcrs_client *client = NULL;
    if (mcrs_client_new(cfg, &client) != MCRS_STATUS_OK || mcrs_loop_new(client, &loop) != MCRS_STATUS_OK) {
        fprintf(stderr, "cannot make the client\n");
        return 1;
    }
    mcrs_config_free(cfg);

    char plain_key[64], lease_key[64];
    snprintf(plain_key, sizeof plain_key, "example:loop-plain:%ld", (long)now_ms());
    snprintf(lease_key, sizeof lease_key, "example:loop-lease:%ld", (long)now_ms());
    key = plain_key, key_len = strlen(plain_key);
    run_herd("plain get+set:", false);
    key = lease_key, key_len = strlen(lease_key);
    run_herd("lease:", true);

    /* the source changed: mark the report stale instead of deleting it */
    mcrs_status st = MCRS_STATUS_PANIC;
    done = 0;
    int saved = herd;
    herd = 1; /* drive() waits for the one callback */
    mcrs_loop_invalidate(loop, (const uint8_t *)key, key_len, 30, on_invalidated, &st);
    drive();
    herd = saved;
    if (st != MCRS_STATUS_OK) {
        fprintf(stderr, "invalidate: %s\n", mcrs_status_str(st));
        return 1;
    }
    run_herd("after invalidate:", true);

    mcrs_loop_free(loop);
    mcrs_client_free(client);
    return 0;
}
