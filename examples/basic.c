/* Basic usage: the C version of pymemcache's first example
 *
 *     from pymemcache.client.base import Client
 *     client = Client('localhost')
 *     client.set('some_key', 'some_value')
 *     result = client.get('some_key')
 *
 * Servers come from MCRS_SERVERS (comma-separated, e.g. "127.0.0.1:11211,127.0.0.1:11212"),
 * default "localhost" (port 11211). Build and run it with examples/run_example.sh.
 */
#define _POSIX_C_SOURCE 200809L /* strdup, strtok_r */
#include "mcrs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Prints what failed, the status name and the library's detail for this thread. */
static int fail(const char *what, mcrs_status st) {
    char detail[512];
    size_t n = mcrs_last_error(detail, sizeof detail);
    fprintf(stderr, "basic: %s failed: %s%s%s\n", what, mcrs_status_str(st), n ? ": " : "",
            n ? detail : "");
    return 1;
}

int main(void) {
    const char *env = getenv("MCRS_SERVERS");
    const char *servers = (env != NULL && env[0] != '\0') ? env : "localhost";

    /* client = Client('localhost') */
    mcrs_config *cfg = mcrs_config_new();
    if (cfg == NULL) {
        fprintf(stderr, "basic: mcrs_config_new failed\n");
        return 1;
    }
    char *list = strdup(servers);
    if (list == NULL) {
        mcrs_config_free(cfg);
        return 1;
    }
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
    }
    free(list);

    mcrs_client *client = NULL;
    mcrs_status st = mcrs_client_new(cfg, &client);
    mcrs_config_free(cfg); /* the client keeps its own copy of the settings */
    if (st != MCRS_STATUS_OK)
        return fail("creating the client", st);

    /* client.set('some_key', 'some_value')  (noreply by default, like pymemcache) */
    const char *key = "some_key", *value = "some_value";
    st = mcrs_client_set(client, (const uint8_t *)key, strlen(key), (const uint8_t *)value,
                         strlen(value), 0, 0, MCRS_NOREPLY_DEFAULT);
    if (st != MCRS_STATUS_OK) {
        mcrs_client_free(client);
        return fail("set some_key", st);
    }

    /* result = client.get('some_key') */
    mcrs_value *result = NULL;
    st = mcrs_client_get(client, (const uint8_t *)key, strlen(key), &result);
    if (st == MCRS_STATUS_NOT_FOUND) {
        fprintf(stderr, "basic: some_key not found right after setting it (servers: %s)\n", servers);
        mcrs_client_free(client);
        return 1;
    }
    if (st != MCRS_STATUS_OK) {
        mcrs_client_free(client);
        return fail("get some_key", st);
    }

    printf("%.*s\n", (int)mcrs_value_len(result), (const char *)mcrs_value_data(result));
    int rc = (mcrs_value_len(result) == strlen(value) &&
              memcmp(mcrs_value_data(result), value, strlen(value)) == 0)
                 ? 0
                 : 1;
    if (rc != 0)
        fprintf(stderr, "basic: unexpected value for some_key\n");

    mcrs_value_free(result);
    mcrs_client_free(client);
    return rc;
}
