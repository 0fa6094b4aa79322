/* TLS and memcached -Y authentication through the C API
 * (with_memcached.sh --tls --auth-server): verified TLS by IP and by name,
 * CA as a file and as PEM bytes, mutual-TLS settings, a name mismatch, a
 * private CA with only the system roots, verification off, a TLS client
 * against a plaintext server, auth right / wrong / none (AUTH_FAILED, fast,
 * the password never in the error detail), bad arguments, an event loop
 * over a TLS client (refused with MCRS_STATUS_TLS, nothing sent in clear) and
 * an event loop that logs in (right and wrong password). */
#include "test_util.h"

#include <poll.h>
#include <time.h>

static long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    REQUIRE(f != NULL, "open %s", path);
    char *buf = malloc(65536);
    REQUIRE(buf != NULL, "malloc");
    *len = fread(buf, 1, 65536, f);
    fclose(f);
    return buf;
}

static const char *dir_file(const char *name) {
    static char buf[4][512];
    static int next;
    char *b = buf[next++ % 4];
    snprintf(b, sizeof buf[0], "%s/%s", tu_env("MCRS_TEST_TLS_DIR"), name);
    return b;
}

/* A TLS config for addr, verified with the test CA (file). */
static mcrs_config *tls_config(const char *addr) {
    mcrs_config *cfg = tu_config_for(addr);
    /* generous: under valgrind a first handshake takes a while */
    CHECK_OK(mcrs_config_set_connect_timeout_ms(cfg, 5000));
    CHECK_OK(mcrs_config_set_timeout_ms(cfg, 5000));
    CHECK_OK(mcrs_config_set_tls(cfg, true));
    CHECK_OK(mcrs_config_set_tls_ca_file(cfg, tu_env("MCRS_TEST_TLS_CA")));
    return cfg;
}

static void roundtrip(mcrs_config *cfg, const char *tag) {
    mcrs_client *c = tu_client_from(cfg);
    mcrs_config_free(cfg);
    char key[64];
    int kl = snprintf(key, sizeof key, "%s:tls:%s", tu_run_id(), tag);
    CHECK_OK(mcrs_client_set(c, B(key), (size_t)kl, K("secret value"), 3, 0, MCRS_NOREPLY_OFF));
    CHECK_GET(c, B(key), (size_t)kl, "secret value", 12, 3);
    /* a value spanning many TLS records */
    size_t big_len = 200000;
    uint8_t *big = malloc(big_len);
    REQUIRE(big != NULL, "malloc");
    memset(big, 'z', big_len);
    CHECK_OK(mcrs_client_set(c, K("tls:big"), big, big_len, 0, 0, MCRS_NOREPLY_ON));
    CHECK_GET(c, K("tls:big"), big, big_len, 0);
    free(big);
    mcrs_client_free(c);
}

/* The status of a get on a client made from cfg (freed), within max_ms. */
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

static void test_verified_tls(void) {
    roundtrip(tls_config(tu_server()), "ip");
    char byname[64];
    snprintf(byname, sizeof byname, "localhost:%s", tu_env("MCRS_TEST_PORT"));
    roundtrip(tls_config(byname), "name");

    /* the CA as PEM bytes, an explicit server name */
    mcrs_config *cfg = tu_config_for(tu_server());
    CHECK_OK(mcrs_config_set_tls(cfg, true));
    size_t len = 0;
    char *pem = slurp(tu_env("MCRS_TEST_TLS_CA"), &len);
    CHECK_OK(mcrs_config_set_tls_ca_pem(cfg, B(pem), len));
    free(pem);
    CHECK_OK(mcrs_config_set_tls_server_name(cfg, "localhost"));
    roundtrip(cfg, "pem");

    /* a client certificate (the server does not ask for one here) */
    cfg = tls_config(tu_server());
    CHECK_OK(mcrs_config_set_tls_cert_file(cfg, dir_file("client.pem")));
    CHECK_OK(mcrs_config_set_tls_key_file(cfg, dir_file("client.key")));
    roundtrip(cfg, "mtls");
    cfg = tls_config(tu_server());
    pem = slurp(dir_file("client.pem"), &len);
    CHECK_OK(mcrs_config_set_tls_cert_pem(cfg, B(pem), len));
    free(pem);
    pem = slurp(dir_file("client.key"), &len);
    CHECK_OK(mcrs_config_set_tls_key_pem(cfg, B(pem), len));
    free(pem);
    roundtrip(cfg, "mtls-pem");
}

static void test_refused_tls(void) {
    char err[512];
    mcrs_config *cfg = tls_config(tu_server());
    CHECK_OK(mcrs_config_set_tls_server_name(cfg, "cache.example.com"));
    CHECK_STATUS(get_status(cfg, 8000, err, sizeof err), MCRS_STATUS_TLS);
    CHECK(strstr(err, "name mismatch") != NULL, "detail: %s", err);

    /* a private CA with only the system roots */
    cfg = tu_config_for(tu_server());
    CHECK_OK(mcrs_config_set_tls(cfg, true));
    CHECK_STATUS(get_status(cfg, 8000, err, sizeof err), MCRS_STATUS_TLS);
    CHECK(strstr(err, "unknown CA") != NULL, "detail: %s", err);

    /* verification off: any certificate */
    cfg = tu_config_for(tu_server());
    CHECK_OK(mcrs_config_set_tls(cfg, true));
    CHECK_OK(mcrs_config_set_tls_verify(cfg, false));
    roundtrip(cfg, "noverify");

    /* a TLS client against a plaintext server */
    cfg = tls_config(tu_env("MCRS_TEST_AUTH_SERVER"));
    CHECK_STATUS(get_status(cfg, 8000, err, sizeof err), MCRS_STATUS_TLS);
    CHECK(strstr(err, "does not speak TLS") != NULL || strstr(err, "handshake timeout") != NULL,
          "detail: %s", err);

    /* a plaintext client against a TLS server: refused quickly */
    cfg = tu_config_for(tu_server());
    CHECK_OK(mcrs_config_set_timeout_ms(cfg, 1000));
    mcrs_status st = get_status(cfg, 8000, err, sizeof err);
    CHECK(st != MCRS_STATUS_OK && st != MCRS_STATUS_NOT_FOUND, "plaintext against TLS: %s",
          mcrs_status_str(st));
}

static void test_auth(void) {
    const char *server = tu_env("MCRS_TEST_AUTH_SERVER");
    const char *user = tu_env("MCRS_TEST_AUTH_USER");
    const char *pw = tu_env("MCRS_TEST_AUTH_PASSWORD");
    mcrs_config *cfg = tu_config_for(server);
    CHECK_OK(mcrs_config_set_auth(cfg, user, pw));
    mcrs_client *c = tu_client_from(cfg);
    mcrs_config_free(cfg);
    CHECK_OK(mcrs_client_set(c, K("auth:k"), K("v"), 0, 0, MCRS_NOREPLY_OFF));
    CHECK_GET(c, K("auth:k"), "v", 1, 0);
    mcrs_client_free(c);

    char err[512];
    cfg = tu_config_for(server);
    CHECK_OK(mcrs_config_set_auth(cfg, user, "not-the-password"));
    mcrs_client *wrong = tu_client_from(cfg);
    mcrs_config_free(cfg);
    long t0 = now_ms();
    for (int i = 0; i < 20; i++) {
        mcrs_value *v = TU_SENTINEL;
        CHECK_STATUS(mcrs_client_get(wrong, K("auth:k"), &v), MCRS_STATUS_AUTH_FAILED);
        CHECK(v == NULL, "*out NULL");
    }
    CHECK(now_ms() - t0 < 3000, "20 refused calls took %ld ms", now_ms() - t0);
    tu_last_error(err, sizeof err);
    CHECK(strstr(err, user) != NULL, "detail names the user: %s", err);
    CHECK(strstr(err, "not-the-password") == NULL, "the password leaked: %s", err);
    mcrs_client_free(wrong);

    cfg = tu_config_for(server);
    CHECK_STATUS(get_status(cfg, 8000, err, sizeof err), MCRS_STATUS_AUTH_FAILED);
    CHECK(strstr(err, "requires authentication") != NULL, "detail: %s", err);
}

static void test_bad_arguments(void) {
    mcrs_config *cfg = mcrs_config_new();
    CHECK_STATUS(mcrs_config_set_tls(NULL, true), MCRS_STATUS_NULL_POINTER);
    CHECK_STATUS(mcrs_config_set_tls_ca_file(cfg, NULL), MCRS_STATUS_NULL_POINTER);
    CHECK_STATUS(mcrs_config_set_tls_ca_pem(cfg, NULL, 10), MCRS_STATUS_NULL_POINTER);
    CHECK_STATUS(mcrs_config_set_auth(cfg, "u", NULL), MCRS_STATUS_NULL_POINTER);
    CHECK_STATUS(mcrs_config_set_tls_ca_file(cfg, "/nonexistent/ca.pem"),
                 MCRS_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(mcrs_config_set_tls_ca_pem(cfg, K("not pem")), MCRS_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(mcrs_config_set_tls_key_file(cfg, tu_env("MCRS_TEST_TLS_CA")),
                 MCRS_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(mcrs_config_set_tls_server_name(cfg, "no spaces allowed"),
                 MCRS_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(mcrs_config_set_auth(cfg, "a user", "pw"), MCRS_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(mcrs_config_set_auth(cfg, "u", "p\r\nw"), MCRS_STATUS_INVALID_ARGUMENT);
    /* TLS settings with TLS off: refused by mcrs_client_new, not ignored */
    CHECK_OK(mcrs_config_add_server(cfg, tu_server()));
    CHECK_OK(mcrs_config_set_tls_ca_file(cfg, tu_env("MCRS_TEST_TLS_CA")));
    mcrs_client *c = TU_SENTINEL;
    CHECK_STATUS(mcrs_client_new(cfg, &c), MCRS_STATUS_INVALID_ARGUMENT);
    CHECK(c == NULL, "*out NULL");
    /* a certificate without its key */
    CHECK_OK(mcrs_config_set_tls(cfg, true));
    CHECK_OK(mcrs_config_set_tls_cert_file(cfg, dir_file("client.pem")));
    c = TU_SENTINEL;
    CHECK_STATUS(mcrs_client_new(cfg, &c), MCRS_STATUS_INVALID_ARGUMENT);
    CHECK(c == NULL, "*out NULL");
    mcrs_config_free(cfg);
}

static int loop_done;
static mcrs_status loop_status;
static bool loop_hit;

static void on_get(void *ud, mcrs_status st, mcrs_value *v) {
    (void)ud;
    loop_status = st;
    loop_hit = v != NULL;
    loop_done++;
    mcrs_value_free(v);
}

static void test_loop_refuses_tls(void) {
    mcrs_config *cfg = tls_config(tu_server());
    mcrs_client *c = tu_client_from(cfg);
    mcrs_config_free(cfg);
    mcrs_loop *l = NULL;
    CHECK_OK(mcrs_loop_new(c, &l));
    REQUIRE(l != NULL, "mcrs_loop_new");
    loop_done = 0;
    CHECK_OK(mcrs_loop_get(l, K("k"), on_get, NULL));
    struct pollfd p = {.fd = mcrs_loop_fd(l), .events = POLLIN};
    long end = now_ms() + 2000;
    while (loop_done == 0 && now_ms() < end) {
        poll(&p, 1, 20);
        CHECK_OK(mcrs_loop_run(l));
    }
    CHECK(loop_done == 1, "callback ran once");
    CHECK_STATUS(loop_status, MCRS_STATUS_TLS);
    mcrs_loop_free(l);
    mcrs_client_free(c);
}

/* The loop's status of one get of key on a client for the auth server. */
static mcrs_status loop_get_with(const char *password, const char *key, bool *hit) {
    mcrs_config *cfg = tu_config_for(tu_env("MCRS_TEST_AUTH_SERVER"));
    CHECK_OK(mcrs_config_set_auth(cfg, tu_env("MCRS_TEST_AUTH_USER"), password));
    mcrs_client *c = tu_client_from(cfg);
    mcrs_config_free(cfg);
    mcrs_loop *l = NULL;
    CHECK_OK(mcrs_loop_new(c, &l));
    REQUIRE(l != NULL, "mcrs_loop_new");
    loop_done = 0;
    loop_hit = false;
    CHECK_OK(mcrs_loop_get(l, B(key), strlen(key), on_get, NULL));
    struct pollfd p = {.fd = mcrs_loop_fd(l), .events = POLLIN};
    long end = now_ms() + 5000;
    while (loop_done == 0 && now_ms() < end) {
        poll(&p, 1, 20);
        CHECK_OK(mcrs_loop_run(l));
    }
    CHECK(loop_done == 1, "callback ran once");
    mcrs_loop_free(l);
    mcrs_client_free(c);
    *hit = loop_hit;
    return loop_status;
}

static void test_loop_logs_in(void) {
    bool hit = false;
    /* test_auth stored auth:k */
    CHECK_STATUS(loop_get_with(tu_env("MCRS_TEST_AUTH_PASSWORD"), "auth:k", &hit), MCRS_STATUS_OK);
    CHECK(hit, "the loop's get after its login is a hit");
    CHECK_STATUS(loop_get_with("not-the-password", "auth:k", &hit), MCRS_STATUS_AUTH_FAILED);
    CHECK(!hit, "no value on a refused login");
}

int main(void) {
    RUN(test_verified_tls);
    RUN(test_refused_tls);
    RUN(test_auth);
    RUN(test_bad_arguments);
    RUN(test_loop_refuses_tls);
    RUN(test_loop_logs_in);
    TEST_MAIN_END();
}
