/* The event-loop API: 100 requests in flight on one thread, driven by poll().
 *
 *   loop [host:port]       (default 127.0.0.1:11211; MCRS_SERVERS overrides)
 *
 * Every submit call returns at once; its callback runs later, inside
 * mcrs_loop_run(), when the reply is in. The loop needs one fd watched for
 * readability and a timeout: any event loop (poll, epoll, libuv, libevent)
 * can drive it the same way as below. */
#include "mcrs.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { N = 100 };

struct result {
    int done;
    int hits;
    int misses;
    int failures;
};

static void on_set(void *userdata, mcrs_status status) {
    struct result *r = userdata;
    r->done++;
    if (status != MCRS_STATUS_OK) {
        char why[256];
        mcrs_last_error(why, sizeof why); /* valid inside the callback */
        fprintf(stderr, "set: %s: %s\n", mcrs_status_str(status), why);
        r->failures++;
    }
}

static void on_get(void *userdata, mcrs_status status, mcrs_value *value) {
    struct result *r = userdata;
    r->done++;
    if (status == MCRS_STATUS_OK) {
        r->hits++;
        mcrs_value_free(value); /* a hit is the callback's to free */
    } else if (status == MCRS_STATUS_NOT_FOUND) {
        r->misses++;
    } else {
        char why[256];
        mcrs_last_error(why, sizeof why);
        fprintf(stderr, "get: %s: %s\n", mcrs_status_str(status), why);
        r->failures++;
    }
}

/* Runs the loop until `want` callbacks have run. */
static int drive(mcrs_loop *loop, const struct result *r, int want) {
    struct pollfd p = {.fd = mcrs_loop_fd(loop), .events = POLLIN};
    while (r->done < want) {
        int timeout = mcrs_loop_timeout_ms(loop); /* -1: nothing pending */
        if (timeout < 0)
            break;
        if (poll(&p, 1, timeout) < 0)
            return -1;
        mcrs_status st = mcrs_loop_run(loop); /* never blocks */
        if (st != MCRS_STATUS_OK) {
            fprintf(stderr, "run: %s\n", mcrs_status_str(st));
            return -1;
        }
    }
    return 0;
}

int main(int argc, char **argv) {
    const char *server = getenv("MCRS_SERVERS");
    if (server == NULL || *server == '\0')
        server = argc > 1 ? argv[1] : "127.0.0.1:11211";

    mcrs_config *cfg = mcrs_config_new();
    mcrs_status st = mcrs_config_add_server(cfg, server);
    mcrs_client *client = NULL;
    if (st == MCRS_STATUS_OK)
        st = mcrs_client_new(cfg, &client);
    mcrs_config_free(cfg);
    if (st != MCRS_STATUS_OK) {
        fprintf(stderr, "client: %s\n", mcrs_status_str(st));
        return 1;
    }
    mcrs_loop *loop = NULL;
    st = mcrs_loop_new(client, &loop);
    if (st != MCRS_STATUS_OK) {
        fprintf(stderr, "loop: %s\n", mcrs_status_str(st));
        return 1;
    }

    char keys[N][32];
    struct result sets = {0}, gets = {0};
    /* 50 sets in flight (waiting for their replies), then 100 gets: the
       requests of one turn go out in one write */
    for (int i = 0; i < N; i++) {
        int len = snprintf(keys[i], sizeof keys[i], "loop:example:%d", i);
        if (i % 2 == 0) {
            st = mcrs_loop_set(loop, (const uint8_t *)keys[i], (size_t)len, (const uint8_t *)"value", 5,
                               0, 60, MCRS_NOREPLY_OFF, on_set, &sets);
            if (st != MCRS_STATUS_OK) /* refused at submit: the callback will not run */
                fprintf(stderr, "submit set: %s\n", mcrs_status_str(st));
        } else {
            /* make sure the odd keys are misses */
            mcrs_loop_delete(loop, (const uint8_t *)keys[i], (size_t)len, MCRS_NOREPLY_ON, NULL, NULL);
        }
    }
    if (drive(loop, &sets, N / 2) != 0)
        return 1;
    for (int i = 0; i < N; i++)
        mcrs_loop_get(loop, (const uint8_t *)keys[i], strlen(keys[i]), on_get, &gets);
    if (drive(loop, &gets, N) != 0)
        return 1;

    printf("%d sets, %d gets in flight: %d hits, %d misses, %d failures\n", sets.done, gets.done, gets.hits,
           gets.misses, gets.failures + sets.failures);
    mcrs_loop_free(loop); /* pending requests would complete with MCRS_STATUS_CANCELLED */
    mcrs_client_free(client);
    return gets.hits == N / 2 && gets.misses == N / 2 && sets.failures == 0 ? 0 : 1;
}
