/* TLS cases that need a server of their own, started here (memcached -Z on a
 * free loopback port, with the certificates with_memcached.sh --tls made in
 * MCRS_TEST_TLS_DIR): a certificate from an untrusted CA, an expired
 * certificate, mutual TLS required (with and without a client certificate),
 * memcached -Y auth over TLS (right password, wrong one, none), and a TLS
 * server killed and restarted on the same port. Each refusal must come with
 * the right status, quickly, and a detail that names the cause. */
#include "test_util.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

static long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static const char *dir_file(const char *name) {
    static char buf[8][512];
    static int next;
    char *b = buf[next++ % 8];
    snprintf(b, sizeof buf[0], "%s/%s", tu_env("MCRS_TEST_TLS_DIR"), name);
    return b;
}

struct server {
    pid_t pid;
    int port;
    char addr[64];
    const char *cert; /* "server", "expired", "rogue" */
    const char *extra[6];
};

static int free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd >= 0, "socket");
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    REQUIRE(bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0, "bind");
    socklen_t len = sizeof sa;
    REQUIRE(getsockname(fd, (struct sockaddr *)&sa, &len) == 0, "getsockname");
    close(fd);
    return ntohs(sa.sin_port);
}

static bool accepts(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bool ok = connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    close(fd);
    return ok;
}

/* Starts (or restarts, on the same port) memcached -Z for s; waits until it accepts. */
static void start(struct server *s) {
    if (s->port == 0) {
        s->port = free_port();
        snprintf(s->addr, sizeof s->addr, "127.0.0.1:%d", s->port);
    }
    char port[16], chain[600], key[600];
    snprintf(port, sizeof port, "%d", s->port);
    snprintf(chain, sizeof chain, "ssl_chain_cert=%s", dir_file(s->cert));
    strcat(chain, ".pem");
    snprintf(key, sizeof key, "ssl_key=%s", dir_file(s->cert));
    strcat(key, ".key");
    const char *argv[32];
    int n = 0;
    const char *bin = getenv("MEMCACHED");
    argv[n++] = bin != NULL && bin[0] != '\0' ? bin : "memcached";
    const char *fixed[] = {"-l", "127.0.0.1", "-p", port, "-U", "0", "-t", "1", "-Z",
                           "-o", chain, "-o", key};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        argv[n++] = fixed[i];
    if (geteuid() == 0) {
        argv[n++] = "-u";
        argv[n++] = "root";
    }
    for (int i = 0; i < 6 && s->extra[i] != NULL; i++)
        argv[n++] = s->extra[i];
    argv[n] = NULL;
    pid_t pid = fork();
    REQUIRE(pid >= 0, "fork");
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        dup2(null, 2);
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    s->pid = pid;
    long end = now_ms() + 10000;
    while (!accepts(s->port)) {
        REQUIRE(now_ms() < end && waitpid(pid, NULL, WNOHANG) == 0, "memcached on %d started",
                s->port);
        usleep(20 * 1000);
    }
}

static void stop(struct server *s) {
    if (s->pid > 0) {
        kill(s->pid, SIGKILL);
        waitpid(s->pid, NULL, 0);
        s->pid = 0;
    }
}

/* A TLS config for s, verified with the test CA. */
static mcrs_config *tls_config(const struct server *s) {
    mcrs_config *cfg = tu_config_for(s->addr);
    /* generous: under valgrind a first handshake takes a while */
    CHECK_OK(mcrs_config_set_connect_timeout_ms(cfg, 5000));
    CHECK_OK(mcrs_config_set_timeout_ms(cfg, 5000));
    CHECK_OK(mcrs_config_set_tls(cfg, true));
    CHECK_OK(mcrs_config_set_tls_ca_file(cfg, tu_env("MCRS_TEST_TLS_CA")));
    return cfg;
}

static void roundtrip(mcrs_client *c, const char *tag) {
    char key[64];
    int kl = snprintf(key, sizeof key, "%s:tls-servers:%s", tu_run_id(), tag);
    CHECK_OK(mcrs_client_set(c, B(key), (size_t)kl, K("over tls"), 5, 0, MCRS_NOREPLY_OFF));
    CHECK_GET(c, B(key), (size_t)kl, "over tls", 8, 5);
}

/* The status of a get on a client made from cfg (freed), within max_ms; the detail in err. */
static mcrs_status get_status(mcrs_config *cfg, long max_ms, char *err, size_t cap) {
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

static void test_untrusted_ca(void) {
    struct server s = {.cert = "rogue"};
    start(&s);
    char err[512];
    CHECK_STATUS(get_status(tls_config(&s), 3000, err, sizeof err), MCRS_STATUS_TLS);
    CHECK(strstr(err, "unknown CA") != NULL, "detail: %s", err);
    /* the same server, trusted through its own CA */
    mcrs_config *cfg = tu_config_for(s.addr);
    CHECK_OK(mcrs_config_set_tls(cfg, true));
    CHECK_OK(mcrs_config_set_tls_ca_file(cfg, dir_file("rogue-ca.pem")));
    mcrs_client *c = tu_client_from(cfg);
    mcrs_config_free(cfg);
    roundtrip(c, "rogue-trusted");
    mcrs_client_free(c);
    stop(&s);
}

static void test_expired_certificate(void) {
    struct server s = {.cert = "expired"};
    start(&s);
    char err[512];
    CHECK_STATUS(get_status(tls_config(&s), 3000, err, sizeof err), MCRS_STATUS_TLS);
    CHECK(strstr(err, "expired") != NULL, "detail: %s", err);
    stop(&s);
}

static void test_mutual_tls_required(void) {
    struct server s = {.cert = "server",
                       .extra = {"-o", "ssl_verify_mode=2", "-o", NULL, NULL, NULL}};
    char ca_opt[600];
    snprintf(ca_opt, sizeof ca_opt, "ssl_ca_cert=%s", tu_env("MCRS_TEST_TLS_CA"));
    s.extra[3] = ca_opt;
    start(&s);
    char err[512];
    CHECK_STATUS(get_status(tls_config(&s), 3000, err, sizeof err), MCRS_STATUS_TLS);
    CHECK(strstr(err, "client certificate") != NULL, "detail: %s", err);

    mcrs_config *cfg = tls_config(&s);
    CHECK_OK(mcrs_config_set_tls_cert_file(cfg, dir_file("client.pem")));
    CHECK_OK(mcrs_config_set_tls_key_file(cfg, dir_file("client.key")));
    mcrs_client *c = tu_client_from(cfg);
    mcrs_config_free(cfg);
    roundtrip(c, "mtls-required");
    mcrs_client_free(c);
    stop(&s);
}

static void test_auth_over_tls(void) {
    char authfile[600];
    snprintf(authfile, sizeof authfile, "%s", dir_file("tls-auth"));
    FILE *f = fopen(authfile, "w");
    REQUIRE(f != NULL, "write %s", authfile);
    fputs("alice:tls-s3cret\n", f);
    fclose(f);
    struct server s = {.cert = "server", .extra = {"-Y", authfile, NULL}};
    start(&s);

    mcrs_config *cfg = tls_config(&s);
    CHECK_OK(mcrs_config_set_auth(cfg, "alice", "tls-s3cret"));
    mcrs_client *c = tu_client_from(cfg);
    mcrs_config_free(cfg);
    roundtrip(c, "auth");
    mcrs_client_free(c);

    char err[512];
    cfg = tls_config(&s);
    CHECK_OK(mcrs_config_set_auth(cfg, "alice", "wrong-pw"));
    CHECK_STATUS(get_status(cfg, 3000, err, sizeof err), MCRS_STATUS_AUTH_FAILED);
    CHECK(strstr(err, "wrong-pw") == NULL, "the password leaked: %s", err);
    CHECK_STATUS(get_status(tls_config(&s), 3000, err, sizeof err), MCRS_STATUS_AUTH_FAILED);
    stop(&s);
}

static void test_killed_and_restarted(void) {
    struct server s = {.cert = "server"};
    start(&s);
    mcrs_config *cfg = tls_config(&s);
    CHECK_OK(mcrs_config_set_retry_timeout_ms(cfg, 0));
    mcrs_client *c = tu_client_from(cfg);
    mcrs_config_free(cfg);
    roundtrip(c, "before");
    stop(&s);
    mcrs_value *v = TU_SENTINEL;
    mcrs_status st = mcrs_client_get(c, K("k"), &v);
    CHECK(st != MCRS_STATUS_OK && st != MCRS_STATUS_NOT_FOUND, "a dead server: %s",
          mcrs_status_str(st));
    CHECK(v == NULL, "*out NULL");
    start(&s);
    /* a new connection with a new handshake; the restarted server is empty */
    v = TU_SENTINEL;
    long end = now_ms() + 3000;
    do {
        st = mcrs_client_get(c, K("before"), &v);
    } while (st != MCRS_STATUS_NOT_FOUND && now_ms() < end && usleep(20 * 1000) == 0);
    CHECK_STATUS(st, MCRS_STATUS_NOT_FOUND);
    roundtrip(c, "after");
    mcrs_client_free(c);
    stop(&s);
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    RUN(test_untrusted_ca);
    RUN(test_expired_certificate);
    RUN(test_mutual_tls_required);
    RUN(test_auth_over_tls);
    RUN(test_killed_and_restarted);
    TEST_MAIN_END();
}
