/* Fork safety: after fork(), the child must not use the parent's sockets (two
   processes reading one reply stream is how clients return other keys'
   values). mcrs notices the new process and opens its own connections; the
   child's quit/free must not touch the parent's connections either. */
#include "test_util.h"

#include <sys/wait.h>

#define ROUNDS 300

/* set then get ROUNDS keys named <who>:<i>, each value naming its key */
static int churn(mcrs_client *c, const char *who) {
    int bad = 0;
    for (int i = 0; i < ROUNDS; i++) {
        char key[64], val[64];
        int kl = snprintf(key, sizeof key, "%s:%d", who, i);
        int vl = snprintf(val, sizeof val, "value of %s", key);
        if (mcrs_client_set(c, B(key), (size_t)kl, B(val), (size_t)vl, 0, 0, MCRS_NOREPLY_OFF) !=
            MCRS_STATUS_OK) {
            bad++;
            continue;
        }
        mcrs_value *v = NULL;
        if (mcrs_client_get(c, B(key), (size_t)kl, &v) != MCRS_STATUS_OK ||
            mcrs_value_len(v) != (size_t)vl || memcmp(mcrs_value_data(v), val, (size_t)vl) != 0) {
            fprintf(stderr, "%s: wrong or missing value for %s\n", who, key);
            bad++;
        }
        mcrs_value_free(v);
    }
    return bad;
}

int main(void) {
    mcrs_client *c = tu_client(false);
    /* the parent has a pooled connection before the fork */
    CHECK_OK(mcrs_client_set(c, K("fork:shared"), K("from parent"), 0, 0, MCRS_NOREPLY_OFF));
    CHECK_GET(c, K("fork:shared"), "from parent", 11, 0);

    for (int round = 0; round < 3; round++) {
        fflush(NULL);
        pid_t pid = fork();
        REQUIRE(pid >= 0, "fork failed");
        if (pid == 0) {
            int bad = churn(c, "child");
            mcrs_value *v = NULL;
            if (mcrs_client_get(c, K("fork:shared"), &v) != MCRS_STATUS_OK ||
                mcrs_value_len(v) != 11)
                bad++;
            mcrs_value_free(v);
            /* must close only the child's own connections */
            if (mcrs_client_quit(c) != MCRS_STATUS_OK)
                bad++;
            mcrs_client_free(c);
            _exit(bad == 0 ? 0 : 1);
        }
        /* the parent keeps going on its own connection at the same time */
        int bad = churn(c, "parent");
        CHECK(bad == 0, "parent saw %d wrong values while the child ran (round %d)", bad, round);
        int status = 0;
        REQUIRE(waitpid(pid, &status, 0) == pid, "waitpid");
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "child saw wrong values or failures (round %d, status %d)", round, status);
        /* and its connection still works after the child quit and exited */
        CHECK_GET(c, K("fork:shared"), "from parent", 11, 0);
    }
    mcrs_client_free(c);
    TEST_MAIN_END();
}
