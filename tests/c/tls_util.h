/* Helpers shared by the TLS C tests (test_tls.c, test_tls_servers.c): the
 * certificates with_memcached.sh --tls made in MCRS_TEST_TLS_DIR, a TLS config
 * verified with the test CA, the status of one get within a time bound, and
 * private memcached -Z servers started (and killed) by the test itself. */
#ifndef MCRS_TLS_UTIL_H
#define MCRS_TLS_UTIL_H

#include "test_util.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

static inline long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* A file of the run's TLS directory (a few results stay valid at once). */
static inline const char *dir_file(const char *name) {
    static char buf[8][512];
    static int next;
    char *b = buf[next++ % 8];
    snprintf(b, sizeof buf[0], "%s/%s", tu_env("MCRS_TEST_TLS_DIR"), name);
    return b;
}

/* A TLS config for addr, verified with the test CA (file). */
static inline mcrs_config *tls_config(const char *addr) {
    mcrs_config *cfg = tu_config_for(addr);
    /* generous: under valgrind a first handshake takes a while */
    CHECK_OK(mcrs_config_set_connect_timeout_ms(cfg, 5000));
    CHECK_OK(mcrs_config_set_timeout_ms(cfg, 5000));
    CHECK_OK(mcrs_config_set_tls(cfg, true));
    CHECK_OK(mcrs_config_set_tls_ca_file(cfg, tu_env("MCRS_TEST_TLS_CA")));
    return cfg;
}

/* The status of a get on a client made from cfg (freed), within max_ms; the detail in err. */
static inline mcrs_status get_status(mcrs_config *cfg, long max_ms, char *err, size_t cap) {
    mcrs_client *c = tu_client_from(cfg);
    mcrs_config_free(cfg);
    mcrs_value *v = TU_SENTINEL;
    long t0 = now_ms();
    mcrs_status st = mcrs_client_get(c, K("k"), &v);
    long took = now_ms() - t0;
    tu_last_error(err, cap);
    CHECK(took < max_ms, "took %ld ms", took);
    CHECK(v == NULL, "*out is NULL on failure");
    if (v != NULL && v != TU_SENTINEL)
        mcrs_value_free(v);
    mcrs_client_free(c);
    return st;
}

static inline int free_port(void) {
    const char *a = tu_closed_port_addr();
    return atoi(strrchr(a, ':') + 1);
}

static inline bool port_open(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons((uint16_t)port);
    bool ok = connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    close(fd);
    return ok;
}

/* A memcached -Z on port with the certificate `cert` ("server", "expired",
 * "rogue": CERT.pem and CERT.key of the TLS directory) and the extra
 * arguments (NULL-terminated, may be NULL), ready to accept. */
static inline pid_t spawn_tls_server(int port, const char *cert, const char *const *extra) {
    char p[16], chain[600], key[600];
    snprintf(p, sizeof p, "%d", port);
    snprintf(chain, sizeof chain, "ssl_chain_cert=%s/%s.pem", tu_env("MCRS_TEST_TLS_DIR"), cert);
    snprintf(key, sizeof key, "ssl_key=%s/%s.key", tu_env("MCRS_TEST_TLS_DIR"), cert);
    const char *bin = getenv("MEMCACHED") && getenv("MEMCACHED")[0] ? getenv("MEMCACHED")
                                                                     : "memcached";
    const char *argv[32] = {bin, "-l", "127.0.0.1", "-p", p, "-U", "0", "-t", "1",
                            "-Z", "-o", chain, "-o", key};
    int n = 14;
    if (getuid() == 0) {
        argv[n++] = "-u";
        argv[n++] = "root";
    }
    for (int i = 0; extra != NULL && extra[i] != NULL && n < 31; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    pid_t pid = fork();
    REQUIRE(pid >= 0, "fork");
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, 1);
        dup2(devnull, 2);
        execvp(bin, (char *const *)argv);
        _exit(127);
    }
    for (int i = 0; i < 200 && !port_open(port) && waitpid(pid, NULL, WNOHANG) == 0; i++)
        usleep(25000);
    REQUIRE(port_open(port), "memcached -Z on port %d started", port);
    return pid;
}

/* Kills a server of spawn_tls_server (stopped or not) and reaps it. */
static inline void stop_server(pid_t pid) {
    kill(pid, SIGCONT);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

#endif
