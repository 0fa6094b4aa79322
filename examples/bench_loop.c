/* Gets through the event loop with DEPTH requests in flight on one thread,
   against blocking gets on THREADS threads sharing one client, on the same
   server and keys (examples/bench.sh runs it; every value is checked).
   usage: bench_loop HOST PORT OPS VALUE_SIZE WORKLOAD [DEPTH|THREADS]
   workloads: loop_get (default depth 100), blocking_get (default 1 thread)
   prints: name ops_per_second
   environment: MCRS_BENCH_TLS_CA=ca.pem turns TLS on, verified with that CA
   (examples/bench_tls.sh) */
#define _POSIX_C_SOURCE 200809L
#include "mcrs.h"

#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void die(const char *what, mcrs_status st) {
    char detail[256];
    mcrs_last_error(detail, sizeof detail);
    fprintf(stderr, "%s: %s (%s)\n", what, mcrs_status_str(st), detail);
    exit(1);
}

static mcrs_client *client;
static size_t vsz;
static long ops;

/* ---- the loop ---- */

static mcrs_loop *loop;
static long submitted, completed;
static char keys[1000][32];
static size_t klens[1000];

static void on_get(void *ud, mcrs_status st, mcrs_value *v);

static void submit_next(void) {
    long i = submitted++;
    mcrs_status st = mcrs_loop_get(loop, (const uint8_t *)keys[i % 1000], klens[i % 1000], on_get, NULL);
    if (st != MCRS_STATUS_OK)
        die("loop_get", st);
}

static void on_get(void *ud, mcrs_status st, mcrs_value *v) {
    (void)ud;
    if (st != MCRS_STATUS_OK || mcrs_value_len(v) != vsz)
        die("loop get miss", st);
    mcrs_value_free(v);
    completed++;
    /* keep DEPTH in flight: each completion submits the next request */
    if (submitted < ops)
        submit_next();
}

static void run_loop(int depth) {
    mcrs_status st = mcrs_loop_new(client, &loop);
    if (st != MCRS_STATUS_OK)
        die("loop_new", st);
    struct pollfd p = {.fd = mcrs_loop_fd(loop), .events = POLLIN};
    double t0 = now();
    for (int i = 0; i < depth && submitted < ops; i++)
        submit_next();
    while (completed < ops) {
        int t = mcrs_loop_timeout_ms(loop);
        if (t != 0)
            poll(&p, 1, t < 0 ? 1000 : t);
        st = mcrs_loop_run(loop);
        if (st != MCRS_STATUS_OK)
            die("run", st);
    }
    double t1 = now();
    printf("loop_get %.0f\n", ops / (t1 - t0));
    mcrs_loop_free(loop);
}

/* ---- blocking threads ---- */

static long per_thread;

static void *blocking_worker(void *arg) {
    long off = (long)(size_t)arg;
    for (long i = 0; i < per_thread; i++) {
        long k = (i + off) % 1000;
        mcrs_value *v;
        mcrs_status st = mcrs_client_get(client, (const uint8_t *)keys[k], klens[k], &v);
        if (st != MCRS_STATUS_OK || mcrs_value_len(v) != vsz)
            die("get miss", st);
        mcrs_value_free(v);
    }
    return NULL;
}

static void run_blocking(int threads) {
    pthread_t t[64];
    per_thread = ops / threads;
    double t0 = now();
    for (int i = 0; i < threads; i++)
        pthread_create(&t[i], NULL, blocking_worker, (void *)(size_t)(i * 97));
    for (int i = 0; i < threads; i++)
        pthread_join(t[i], NULL);
    double t1 = now();
    printf("blocking_get_%d %.0f\n", threads, per_thread * threads / (t1 - t0));
}

int main(int argc, char **argv) {
    if (argc < 6) {
        fprintf(stderr, "usage: %s HOST PORT OPS VALUE_SIZE loop_get|blocking_get [N]\n", argv[0]);
        return 2;
    }
    char addr[300];
    snprintf(addr, sizeof addr, "%s:%s", argv[1], argv[2]);
    ops = atol(argv[3]);
    vsz = (size_t)atol(argv[4]);
    const char *w = argv[5];
    int n = argc > 6 ? atoi(argv[6]) : (strcmp(w, "loop_get") == 0 ? 100 : 1);
    if (n < 1 || n > (strcmp(w, "loop_get") == 0 ? 100000 : 64)) {
        fprintf(stderr, "N out of range (loop depth up to 100000, threads up to 64)\n");
        return 2;
    }
    mcrs_config *cfg = mcrs_config_new();
    mcrs_status st = mcrs_config_add_server(cfg, addr);
    if (st != MCRS_STATUS_OK)
        die("add_server", st);
    const char *ca = getenv("MCRS_BENCH_TLS_CA");
    if (ca && *ca) {
        if ((st = mcrs_config_set_tls(cfg, true)) != MCRS_STATUS_OK)
            die("set_tls", st);
        if ((st = mcrs_config_set_tls_ca_file(cfg, ca)) != MCRS_STATUS_OK)
            die("tls_ca_file", st);
    }
    st = mcrs_client_new(cfg, &client);
    if (st != MCRS_STATUS_OK)
        die("client_new", st);
    mcrs_config_free(cfg);
    uint8_t *val = malloc(vsz);
    memset(val, 'v', vsz);
    for (int i = 0; i < 1000; i++) {
        klens[i] = (size_t)snprintf(keys[i], sizeof keys[i], "bench:key:%d", i);
        st = mcrs_client_set(client, (const uint8_t *)keys[i], klens[i], val, vsz, 0, 0, MCRS_NOREPLY_OFF);
        if (st != MCRS_STATUS_OK)
            die("set", st);
    }
    if (strcmp(w, "loop_get") == 0)
        run_loop(n);
    else if (strcmp(w, "blocking_get") == 0)
        run_blocking(n);
    else {
        fprintf(stderr, "unknown workload %s\n", w);
        return 2;
    }
    mcrs_client_free(client);
    free(val);
    return 0;
}
