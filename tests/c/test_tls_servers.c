/* TLS cases that need a server of their own, started here (memcached -Z on a
 * free loopback port, with the certificates with_memcached.sh --tls made in
 * MCRS_TEST_TLS_DIR): a certificate from an untrusted CA, an expired
 * certificate, mutual TLS required (with and without a client certificate),
 * memcached -Y auth over TLS (right password, wrong one, none), and a TLS
 * server killed and restarted on the same port. Each refusal must come with
 * the right status, quickly, and a detail that names the cause. */
#include "tls_util.h"

/* A private memcached -Z of this test: its certificate and extra arguments. */
struct server {
    pid_t pid;
    int port;
    char addr[64];
    const char *cert; /* "server", "expired", "rogue" */
    const char *extra[6];
};

/* Starts (or restarts, on the same port) the server. */
static void start(struct server *s) {
    if (s->port == 0) {
        s->port = free_port();
        snprintf(s->addr, sizeof s->addr, "127.0.0.1:%d", s->port);
    }
    s->pid = spawn_tls_server(s->port, s->cert, s->extra);
}

static void stop(struct server *s) {
    if (s->pid > 0) {
        stop_server(s->pid);
        s->pid = 0;
    }
}

static void roundtrip(mcrs_client *c, const char *tag) {
    char key[64];
    int kl = snprintf(key, sizeof key, "%s:tls-servers:%s", tu_run_id(), tag);
    CHECK_OK(mcrs_client_set(c, B(key), (size_t)kl, K("over tls"), 5, 0, MCRS_NOREPLY_OFF));
    CHECK_GET(c, B(key), (size_t)kl, "over tls", 8, 5);
}

static void test_untrusted_ca(void) {
    struct server s = {.cert = "rogue"};
    start(&s);
    char err[512];
    CHECK_STATUS(get_status(tls_config(s.addr), 3000, err, sizeof err), MCRS_STATUS_TLS);
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
    CHECK_STATUS(get_status(tls_config(s.addr), 3000, err, sizeof err), MCRS_STATUS_TLS);
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
    CHECK_STATUS(get_status(tls_config(s.addr), 3000, err, sizeof err), MCRS_STATUS_TLS);
    CHECK(strstr(err, "client certificate") != NULL, "detail: %s", err);

    mcrs_config *cfg = tls_config(s.addr);
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

    mcrs_config *cfg = tls_config(s.addr);
    CHECK_OK(mcrs_config_set_auth(cfg, "alice", "tls-s3cret"));
    mcrs_client *c = tu_client_from(cfg);
    mcrs_config_free(cfg);
    roundtrip(c, "auth");
    mcrs_client_free(c);

    char err[512];
    cfg = tls_config(s.addr);
    CHECK_OK(mcrs_config_set_auth(cfg, "alice", "wrong-pw"));
    CHECK_STATUS(get_status(cfg, 3000, err, sizeof err), MCRS_STATUS_AUTH_FAILED);
    CHECK(strstr(err, "wrong-pw") == NULL, "the password leaked: %s", err);
    CHECK_STATUS(get_status(tls_config(s.addr), 3000, err, sizeof err), MCRS_STATUS_AUTH_FAILED);
    stop(&s);
}

static void test_killed_and_restarted(void) {
    struct server s = {.cert = "server"};
    start(&s);
    mcrs_config *cfg = tls_config(s.addr);
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
