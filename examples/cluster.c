/* Using a memcached cluster: the C version of pymemcache's HashClient example
 *
 *     from pymemcache.client.hash import HashClient
 *     client = HashClient([('127.0.0.1', 11211), ('127.0.0.1', 11212)])
 *     client.set('some_key', 'some_value')
 *     result = client.get('some_key')
 *
 * Servers come from MCRS_SERVERS (comma-separated), default
 * "127.0.0.1:11211,127.0.0.1:11212". Keys are spread over the servers with
 * rendezvous hashing, the same placement as pymemcache's HashClient, so Python
 * and C clients configured with the same addresses find each other's keys.
 *
 *     cc -std=c11 examples/cluster.c $(pkg-config --cflags --libs mcrs) -o cluster
 *     MCRS_SERVERS=10.0.0.1:11211,10.0.0.2:11211 ./cluster
 *
 * Exit status: 0 when every key set was read back, 1 otherwise.
 */
#define _POSIX_C_SOURCE 200809L /* strdup, strtok_r */
#include "mcrs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_SERVERS "127.0.0.1:11211,127.0.0.1:11212"

/* Prints what failed, the status name and the library's detail for this thread. */
static int fail(const char *what, mcrs_status st) {
    char detail[512];
    size_t n = mcrs_last_error(detail, sizeof detail);
    fprintf(stderr, "cluster: %s failed: %s%s%s\n", what, mcrs_status_str(st), n ? ": " : "",
            n ? detail : "");
    return 1;
}

static const uint8_t *bytes(const char *s) { return (const uint8_t *)s; }

/* client = HashClient([...]): one config, one server per address. */
static int make_client(const char *servers, mcrs_client **out) {
    mcrs_config *cfg = mcrs_config_new();
    if (cfg == NULL) {
        fprintf(stderr, "cluster: mcrs_config_new failed\n");
        return 1;
    }
    char *list = strdup(servers);
    if (list == NULL) {
        mcrs_config_free(cfg);
        fprintf(stderr, "cluster: out of memory\n");
        return 1;
    }
    int n_servers = 0;
    for (char *save = NULL, *addr = strtok_r(list, ",", &save); addr != NULL;
         addr = strtok_r(NULL, ",", &save)) {
        mcrs_status st = mcrs_config_add_server(cfg, addr);
        if (st != MCRS_STATUS_OK) {
            char what[300];
            snprintf(what, sizeof what, "adding server \"%s\"", addr);
            free(list);
            mcrs_config_free(cfg);
            return fail(what, st);
        }
        n_servers++;
    }
    free(list);
    printf("servers (%d): %s\n", n_servers, servers);

    /* Rendezvous hashing is the default; set here only to show where to choose
       MCRS_DISTRIBUTION_KETAMA (libmemcached / pylibmc) instead. */
    mcrs_status st = mcrs_config_set_distribution(cfg, MCRS_DISTRIBUTION_RENDEZVOUS);
    if (st != MCRS_STATUS_OK) {
        mcrs_config_free(cfg);
        return fail("choosing the distribution", st);
    }

    st = mcrs_client_new(cfg, out);
    mcrs_config_free(cfg); /* the client keeps its own copy of the settings */
    if (st != MCRS_STATUS_OK)
        return fail("creating the client", st);
    return 0;
}

/* Prints how many items each server holds (its "curr_items" statistic). */
static int print_items_per_server(const mcrs_client *client) {
    mcrs_stats *stats = NULL;
    mcrs_status st = mcrs_client_stats(client, "", &stats);
    if (st != MCRS_STATUS_OK)
        return fail("stats", st);
    for (size_t i = 0; i < mcrs_stats_len(stats); i++) {
        const char *server = NULL, *name = NULL, *value = NULL;
        if (mcrs_stats_get(stats, i, &server, &name, &value) == MCRS_STATUS_OK &&
            strcmp(name, "curr_items") == 0)
            printf("  %-22s holds %s items\n", server, value);
    }
    mcrs_stats_free(stats);
    return 0;
}

int main(void) {
    const char *env = getenv("MCRS_SERVERS");
    const char *servers = (env != NULL && env[0] != '\0') ? env : DEFAULT_SERVERS;

    mcrs_client *client = NULL;
    if (make_client(servers, &client) != 0)
        return 1;

    /* client.set('some_key', 'some_value'), and a few more keys so that both
       servers get some. The sets wait for the server's reply (pymemcache's
       HashClient does not by default), so a failing server is reported here. */
    static const char *const keys[] = {"some_key", "user:1", "user:2", "user:3",
                                       "session:abc", "page:/index.html"};
    static const char *const values[] = {"some_value", "alice", "bob", "carol",
                                         "logged in", "<h1>hello</h1>"};
    const size_t n = sizeof keys / sizeof keys[0];
    int rc = 0;

    for (size_t i = 0; i < n; i++) {
        mcrs_status st = mcrs_client_set(client, bytes(keys[i]), strlen(keys[i]),
                                         bytes(values[i]), strlen(values[i]), 0, 0,
                                         MCRS_NOREPLY_OFF);
        if (st != MCRS_STATUS_OK) {
            char what[300];
            snprintf(what, sizeof what, "set %s", keys[i]);
            mcrs_client_free(client);
            return fail(what, st);
        }
    }

    /* result = client.get('some_key') */
    mcrs_value *result = NULL;
    mcrs_status st = mcrs_client_get(client, bytes("some_key"), strlen("some_key"), &result);
    if (st == MCRS_STATUS_NOT_FOUND) {
        fprintf(stderr, "cluster: some_key not found right after setting it\n");
        rc = 1;
    } else if (st != MCRS_STATUS_OK) {
        mcrs_client_free(client);
        return fail("get some_key", st);
    } else {
        printf("get some_key -> %.*s\n", (int)mcrs_value_len(result),
               (const char *)mcrs_value_data(result));
        mcrs_value_free(result);
    }

    /* client.get_many([...]): one request per server; entry i belongs to key i,
       NULL for a miss. "never_set" was deleted first, so it is a miss. */
    st = mcrs_client_delete(client, bytes("never_set"), strlen("never_set"), MCRS_NOREPLY_OFF);
    if (st != MCRS_STATUS_OK && st != MCRS_STATUS_NOT_FOUND) {
        mcrs_client_free(client);
        return fail("delete never_set", st);
    }
    const uint8_t *want[sizeof keys / sizeof keys[0] + 1];
    size_t want_lens[sizeof keys / sizeof keys[0] + 1];
    for (size_t i = 0; i < n; i++) {
        want[i] = bytes(keys[i]);
        want_lens[i] = strlen(keys[i]);
    }
    want[n] = bytes("never_set");
    want_lens[n] = strlen("never_set");

    mcrs_values *found = NULL;
    st = mcrs_client_get_many(client, want, want_lens, n + 1, &found);
    if (st != MCRS_STATUS_OK) {
        mcrs_client_free(client);
        return fail("get_many", st);
    }
    for (size_t i = 0; i <= n; i++) {
        const mcrs_value *v = mcrs_values_get(found, i); /* borrowed from found */
        const char *key = (const char *)want[i];
        if (v == NULL) {
            printf("  %-18s not found\n", key);
            if (i < n) {
                fprintf(stderr, "cluster: %s is missing although it was set\n", key);
                rc = 1;
            }
            continue;
        }
        printf("  %-18s found: %.*s\n", key, (int)mcrs_value_len(v),
               (const char *)mcrs_value_data(v));
        if (i == n) {
            fprintf(stderr, "cluster: never_set was found although it was deleted\n");
            rc = 1;
        } else if (mcrs_value_len(v) != strlen(values[i]) ||
                   memcmp(mcrs_value_data(v), values[i], strlen(values[i])) != 0) {
            fprintf(stderr, "cluster: %s has an unexpected value\n", key);
            rc = 1;
        }
    }
    mcrs_values_free(found);

    /* where the keys went (servers shared with others also count their items) */
    if (print_items_per_server(client) != 0)
        rc = 1;

    mcrs_client_free(client);
    return rc;
}
