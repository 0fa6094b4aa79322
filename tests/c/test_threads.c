/* 4 pthreads sharing one mcrs_client: set/get with verification, a shared counter,
   multi-key reads; once with the default pool and once with a pool of 1 connection. */
#include "test_util.h"

#include <pthread.h>

enum { NTHREADS = 4, ITERS = 2000, KEYS_PER_THREAD = 50 };

struct worker {
    const mcrs_client *c;
    int id;
    int errors;
};

static void *worker_main(void *arg) {
    struct worker *w = arg;
    const mcrs_client *c = w->c;
    char key[64], val[256];
    for (int i = 0; i < ITERS; i++) {
        int kl = snprintf(key, sizeof key, "thr:%d:%d", w->id, i % KEYS_PER_THREAD);
        /* values of varying length, including bytes that look like protocol */
        int vl = snprintf(val, sizeof val, "t%d-i%d-%.*s\r\nEND\r\n", w->id, i, (i * 7) % 180,
                          "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                          "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
        mcrs_noreply mode = (i % 3 == 0) ? MCRS_NOREPLY_ON : MCRS_NOREPLY_OFF;
        uint32_t flags = (uint32_t)(w->id * 100000 + i);
        mcrs_status st = mcrs_client_set(c, B(key), (size_t)kl, B(val), (size_t)vl, flags, 0, mode);
        if (st != MCRS_STATUS_OK) {
            CHECK(st == MCRS_STATUS_OK, "thread %d iter %d: set: %s", w->id, i, mcrs_status_str(st));
            w->errors++;
            continue;
        }
        /* Read it back. A noreply set went out on whichever pooled connection this thread
           had; memcached may serve a get on another connection before it, so noreply
           writes get a short grace period (retries), replied writes none. */
        mcrs_value *v = NULL;
        int tries = mode == MCRS_NOREPLY_ON ? 200 : 1;
        for (int t = 0; t < tries; t++) {
            mcrs_value_free(v);
            v = NULL;
            st = mcrs_client_get(c, B(key), (size_t)kl, &v);
            if (st == MCRS_STATUS_OK && tu_value_is(v, val, (size_t)vl, flags))
                break;
            usleep(1000);
        }
        if (st != MCRS_STATUS_OK || !tu_value_is(v, val, (size_t)vl, flags)) {
            CHECK(0, "thread %d iter %d: get %s: %s, len %zu flags %u (expected len %d flags %u)",
                  w->id, i, key, mcrs_status_str(st), mcrs_value_len(v),
                  (unsigned)mcrs_value_flags(v), vl, (unsigned)flags);
            w->errors++;
        }
        mcrs_value_free(v);

        /* shared counter */
        uint64_t nv = 0;
        st = mcrs_client_incr(c, K("thr:counter"), 1, MCRS_NOREPLY_DEFAULT, &nv);
        if (st != MCRS_STATUS_OK || nv == 0) {
            CHECK(0, "thread %d iter %d: incr: %s (%llu)", w->id, i, mcrs_status_str(st),
                  (unsigned long long)nv);
            w->errors++;
        }

        /* every 50 iterations, read all of this thread's keys at once */
        if (i % 50 == 49) {
            char kbuf[KEYS_PER_THREAD][64];
            const uint8_t *keys[KEYS_PER_THREAD];
            size_t lens[KEYS_PER_THREAD];
            for (int k = 0; k < KEYS_PER_THREAD; k++) {
                lens[k] = (size_t)snprintf(kbuf[k], sizeof kbuf[k], "thr:%d:%d", w->id, k);
                keys[k] = B(kbuf[k]);
            }
            mcrs_values *vs = NULL;
            st = mcrs_client_get_many(c, keys, lens, KEYS_PER_THREAD, &vs);
            int bad = 0;
            for (int k = 0; st == MCRS_STATUS_OK && k < KEYS_PER_THREAD; k++) {
                const mcrs_value *mv = mcrs_values_get(vs, (size_t)k);
                /* key k was last written at iteration i - ((i - k) mod 50) with flags id*100000+that */
                int last = i - ((i - k) % KEYS_PER_THREAD + KEYS_PER_THREAD) % KEYS_PER_THREAD;
                if (mv == NULL || mcrs_value_flags(mv) != (uint32_t)(w->id * 100000 + last)) {
                    if (bad == 0)
                        fprintf(stderr, "   thread %d iter %d: get_many[%d] %s: %s flags %u, expected %u\n",
                                w->id, i, k, kbuf[k], mv ? "hit" : "miss",
                                (unsigned)mcrs_value_flags(mv), (unsigned)(w->id * 100000 + last));
                    bad++;
                }
            }
            if (st != MCRS_STATUS_OK || bad) {
                CHECK(0, "thread %d iter %d: get_many: %s, %d wrong", w->id, i, mcrs_status_str(st),
                      bad);
                w->errors++;
            }
            mcrs_values_free(vs);
        }
    }
    return NULL;
}

static void run_threads(uint32_t pool_size) {
    mcrs_config *cfg = tu_config_for(tu_server());
    if (pool_size)
        CHECK_OK(mcrs_config_set_max_pool_size(cfg, pool_size));
    mcrs_client *c = tu_client_from(cfg);
    mcrs_config_free(cfg);

    CHECK_OK(mcrs_client_set(c, K("thr:counter"), K("0"), 0, 0, MCRS_NOREPLY_OFF));
    pthread_t th[NTHREADS];
    struct worker w[NTHREADS];
    for (int i = 0; i < NTHREADS; i++) {
        w[i] = (struct worker){.c = c, .id = i, .errors = 0};
        REQUIRE(pthread_create(&th[i], NULL, worker_main, &w[i]) == 0, "pthread_create");
    }
    int errors = 0;
    for (int i = 0; i < NTHREADS; i++) {
        pthread_join(th[i], NULL);
        errors += w[i].errors;
    }
    CHECK(errors == 0, "pool %u: %d errors in worker threads", (unsigned)pool_size, errors);
    char expect[32];
    int el = snprintf(expect, sizeof expect, "%d", NTHREADS * ITERS);
    CHECK_GET(c, K("thr:counter"), expect, (size_t)el, 0);
    mcrs_client_free(c);
}

static void test_threads_default_pool(void) { run_threads(0); }
static void test_threads_pool_of_one(void) { run_threads(1); }
static void test_threads_pool_of_two(void) { run_threads(2); }

int main(void) {
    RUN(test_threads_default_pool);
    RUN(test_threads_pool_of_one);
    RUN(test_threads_pool_of_two);
    TEST_MAIN_END();
}
