/* TLS and memcached -Y authentication through the C API
 * (with_memcached.sh --tls --auth-server): verified TLS by IP and by name,
 * CA as a file and as PEM bytes, mutual-TLS settings, a name mismatch, a
 * private CA with only the system roots, verification off, a TLS client
 * against a plaintext server, auth right / wrong / none (AUTH_FAILED, fast,
 * the password never in the error detail), bad arguments, an event loop
 * that logs in (right and wrong password), and event loops over TLS:
 * set/get/get_many by IP and by name, an untrusted CA, a name mismatch, a
 * plaintext server (refused at once), auth over TLS (a private memcached
 * -Z -Y), a TLS server killed and restarted under the loop, and a stopped
 * one (SIGSTOP: a handshake timeout at connect_timeout). */
#include "tls_util.h"

#include <poll.h>

static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    REQUIRE(f != NULL, "open %s", path);
    char *buf = malloc(65536);
    REQUIRE(buf != NULL, "malloc");
    *len = fread(buf, 1, 65536, f);
    fclose(f);
    return buf;
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

/* ---- event loops over TLS ---------------------------------------------------------- */

/* What the loop callbacks saw. */
struct loop_res {
    int done;
    mcrs_status st;
    bool hit;
    size_t len;
    char err[512];
    mcrs_values *vs;
};

static void on_res_get(void *ud, mcrs_status st, mcrs_value *v) {
    struct loop_res *r = ud;
    r->st = st;
    r->hit = v != NULL;
    r->len = v != NULL ? mcrs_value_len(v) : 0;
    tu_last_error(r->err, sizeof r->err);
    r->done++;
    mcrs_value_free(v);
}

static void on_res_status(void *ud, mcrs_status st) {
    struct loop_res *r = ud;
    r->st = st;
    tu_last_error(r->err, sizeof r->err);
    r->done++;
}

static void on_res_values(void *ud, mcrs_status st, mcrs_values *vs) {
    struct loop_res *r = ud;
    r->st = st;
    r->vs = vs;
    r->done++;
}

/* Runs l until *done reaches want or max_ms pass; the time it took. */
static long drive(mcrs_loop *l, int *done, int want, long max_ms) {
    struct pollfd p = {.fd = mcrs_loop_fd(l), .events = POLLIN};
    long t0 = now_ms(), end = t0 + max_ms;
    while (*done < want && now_ms() < end) {
        poll(&p, 1, 20);
        CHECK_OK(mcrs_loop_run(l));
    }
    CHECK(*done == want, "%d of %d callbacks within %ld ms", *done, want, max_ms);
    return now_ms() - t0;
}

static mcrs_loop *loop_for(mcrs_client *c) {
    mcrs_loop *l = NULL;
    CHECK_OK(mcrs_loop_new(c, &l));
    REQUIRE(l != NULL, "mcrs_loop_new");
    return l;
}

/* The status of one get on a new loop of a client from cfg (freed); its
   detail in r->err; the time it took in *took. */
static mcrs_status loop_get_status(mcrs_config *cfg, struct loop_res *r, long *took) {
    mcrs_client *c = tu_client_from(cfg);
    mcrs_config_free(cfg);
    mcrs_loop *l = loop_for(c);
    memset(r, 0, sizeof *r);
    CHECK_OK(mcrs_loop_get(l, K("k"), on_res_get, r));
    *took = drive(l, &r->done, 1, 15000);
    mcrs_loop_free(l);
    mcrs_client_free(c);
    return r->st;
}

/* set / get / a value of many records / get_many on one loop over addr. */
static void loop_roundtrip(mcrs_config *cfg) {
    mcrs_client *c = tu_client_from(cfg);
    mcrs_config_free(cfg);
    mcrs_loop *l = loop_for(c);
    struct loop_res set = {0}, quiet = {0}, hit = {0}, miss = {0};
    CHECK_OK(mcrs_loop_set(l, K("loop:tls"), K("over tls"), 4, 0, MCRS_NOREPLY_OFF, on_res_status,
                           &set));
    CHECK_OK(mcrs_loop_set(l, K("loop:quiet"), K("nr"), 0, 0, MCRS_NOREPLY_ON, on_res_status,
                           &quiet));
    CHECK_OK(mcrs_loop_get(l, K("loop:tls"), on_res_get, &hit));
    CHECK_OK(mcrs_loop_get(l, K("loop:missing"), on_res_get, &miss));
    long end = now_ms() + 15000;
    struct pollfd p = {.fd = mcrs_loop_fd(l), .events = POLLIN};
    while (set.done + quiet.done + hit.done + miss.done < 4 && now_ms() < end) {
        poll(&p, 1, 20);
        CHECK_OK(mcrs_loop_run(l));
    }
    CHECK_STATUS(set.st, MCRS_STATUS_OK);
    CHECK_STATUS(quiet.st, MCRS_STATUS_OK);
    CHECK_STATUS(hit.st, MCRS_STATUS_OK);
    CHECK(hit.hit && hit.len == 8, "hit of 8 bytes (got %d, %zu)", hit.hit, hit.len);
    CHECK_STATUS(miss.st, MCRS_STATUS_NOT_FOUND);

    /* a value of many TLS records; alone: memcached 1.6.18 stalls on
       commands pipelined behind a big value over TLS */
    size_t big_len = 200000;
    uint8_t *big = malloc(big_len);
    REQUIRE(big != NULL, "malloc");
    memset(big, 'q', big_len);
    struct loop_res bigset = {0}, bigget = {0}, many = {0};
    CHECK_OK(mcrs_loop_set(l, K("loop:big"), big, big_len, 0, 0, MCRS_NOREPLY_OFF, on_res_status,
                           &bigset));
    drive(l, &bigset.done, 1, 15000);
    CHECK_STATUS(bigset.st, MCRS_STATUS_OK);
    CHECK_OK(mcrs_loop_get(l, K("loop:big"), on_res_get, &bigget));
    drive(l, &bigget.done, 1, 15000);
    CHECK(bigget.hit && bigget.len == big_len, "big value back (%zu bytes)", bigget.len);
    free(big);

    const uint8_t *keys[] = {B("loop:tls"), B("loop:missing"), B("loop:big"), B("loop:quiet")};
    size_t lens[] = {8, 12, 8, 10};
    CHECK_OK(mcrs_loop_get_many(l, keys, lens, 4, on_res_values, &many));
    drive(l, &many.done, 1, 15000);
    CHECK_STATUS(many.st, MCRS_STATUS_OK);
    REQUIRE(many.vs != NULL, "values");
    CHECK(tu_value_is(mcrs_values_get(many.vs, 0), "over tls", 8, 4), "get_many[0]");
    CHECK(mcrs_values_get(many.vs, 1) == NULL, "get_many[1] a miss");
    CHECK(mcrs_values_get(many.vs, 2) != NULL && mcrs_value_len(mcrs_values_get(many.vs, 2)) ==
                                                      big_len,
          "get_many[2]");
    CHECK(tu_value_is(mcrs_values_get(many.vs, 3), "nr", 2, 0), "get_many[3] (noreply set)");
    mcrs_values_free(many.vs);
    mcrs_loop_free(l);
    /* the blocking calls see what the loop stored */
    CHECK_GET(c, K("loop:tls"), "over tls", 8, 4);
    mcrs_client_free(c);
}

static void test_loop_tls(void) {
    loop_roundtrip(tls_config(tu_server()));
    char byname[64];
    snprintf(byname, sizeof byname, "localhost:%s", tu_env("MCRS_TEST_PORT"));
    loop_roundtrip(tls_config(byname));
}

static void test_loop_refused_tls(void) {
    struct loop_res r;
    long took = 0;
    /* a private CA with only the system roots: an untrusted CA */
    mcrs_config *cfg = tu_config_for(tu_server());
    CHECK_OK(mcrs_config_set_tls(cfg, true));
    CHECK_STATUS(loop_get_status(cfg, &r, &took), MCRS_STATUS_TLS);
    CHECK(strstr(r.err, "unknown CA") != NULL, "detail: %s", r.err);

    cfg = tls_config(tu_server());
    CHECK_OK(mcrs_config_set_tls_server_name(cfg, "cache.example.com"));
    CHECK_STATUS(loop_get_status(cfg, &r, &took), MCRS_STATUS_TLS);
    CHECK(strstr(r.err, "name mismatch") != NULL, "detail: %s", r.err);

    /* a plaintext server: refused at once, not at the connect timeout */
    cfg = tls_config(tu_env("MCRS_TEST_AUTH_SERVER"));
    CHECK_OK(mcrs_config_set_connect_timeout_ms(cfg, 20000));
    CHECK_STATUS(loop_get_status(cfg, &r, &took), MCRS_STATUS_TLS);
    CHECK(strstr(r.err, "does not speak TLS (it answered") != NULL, "detail: %s", r.err);
    CHECK(took < 5000, "a plaintext server refused in %ld ms", took);
}

/* ---- private servers: -Z -Y, killed and restarted, stopped ------------------------- */

static void test_loop_auth_over_tls(void) {
    const char *auth = dir_file("loop-auth");
    FILE *f = fopen(auth, "w");
    REQUIRE(f != NULL, "auth file");
    fprintf(f, "alice:s3cret\n");
    fclose(f);
    int port = free_port();
    const char *with_auth[] = {"-Y", auth, NULL};
    pid_t pid = spawn_tls_server(port, "server", with_auth);
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);

    mcrs_config *cfg = tls_config(addr);
    CHECK_OK(mcrs_config_set_auth(cfg, "alice", "s3cret"));
    loop_roundtrip(cfg);

    struct loop_res r;
    long took = 0;
    cfg = tls_config(addr);
    CHECK_OK(mcrs_config_set_auth(cfg, "alice", "not-the-password"));
    CHECK_STATUS(loop_get_status(cfg, &r, &took), MCRS_STATUS_AUTH_FAILED);
    CHECK(strstr(r.err, "alice") != NULL && strstr(r.err, "not-the-password") == NULL,
          "detail: %s", r.err);
    cfg = tls_config(addr);
    CHECK_STATUS(loop_get_status(cfg, &r, &took), MCRS_STATUS_AUTH_FAILED);
    stop_server(pid);
}

static void test_loop_tls_server_restarted(void) {
    int port = free_port();
    pid_t pid = spawn_tls_server(port, "server", NULL);
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    mcrs_config *cfg = tls_config(addr);
    mcrs_client *c = tu_client_from(cfg);
    mcrs_config_free(cfg);
    mcrs_loop *l = loop_for(c);
    struct loop_res set = {0}, a = {0}, b = {0}, again = {0}, got = {0};
    CHECK_OK(mcrs_loop_set(l, K("r:k"), K("1"), 0, 0, MCRS_NOREPLY_OFF, on_res_status, &set));
    CHECK_OK(mcrs_loop_get(l, K("r:k"), on_res_get, &a));
    drive(l, &a.done, 1, 15000);
    CHECK(a.st == MCRS_STATUS_OK && a.hit, "hit before the kill");
    stop_server(pid);
    CHECK_OK(mcrs_loop_get(l, K("r:k"), on_res_get, &b));
    drive(l, &b.done, 1, 15000);
    CHECK(b.st != MCRS_STATUS_OK && b.st != MCRS_STATUS_NOT_FOUND, "a killed server: %s",
          mcrs_status_str(b.st));
    pid = spawn_tls_server(port, "server", NULL);
    /* the failure may be remembered for retry_timeout (1 s): try for a while */
    long end = now_ms() + 10000;
    do {
        memset(&again, 0, sizeof again);
        CHECK_OK(mcrs_loop_get(l, K("r:k"), on_res_get, &again));
        drive(l, &again.done, 1, 15000);
        if (again.st == MCRS_STATUS_NOT_FOUND)
            break;
        usleep(100000);
    } while (now_ms() < end);
    CHECK_STATUS(again.st, MCRS_STATUS_NOT_FOUND);
    memset(&set, 0, sizeof set);
    CHECK_OK(mcrs_loop_set(l, K("r:k"), K("2"), 0, 0, MCRS_NOREPLY_OFF, on_res_status, &set));
    CHECK_OK(mcrs_loop_get(l, K("r:k"), on_res_get, &got));
    drive(l, &got.done, 1, 15000);
    CHECK(got.st == MCRS_STATUS_OK && got.hit && got.len == 1, "the restarted server works");
    mcrs_loop_free(l);
    mcrs_client_free(c);
    stop_server(pid);
}

static void test_loop_stalled_tls_server(void) {
    int port = free_port();
    pid_t pid = spawn_tls_server(port, "server", NULL);
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    mcrs_config *cfg = tls_config(addr);
    CHECK_OK(mcrs_config_set_connect_timeout_ms(cfg, 300));
    CHECK_OK(mcrs_config_set_timeout_ms(cfg, 10000));
    /* the kernel accepts the connection; nobody answers the ClientHello */
    kill(pid, SIGSTOP);
    usleep(50000);
    struct loop_res r;
    long took = 0;
    CHECK_STATUS(loop_get_status(cfg, &r, &took), MCRS_STATUS_TLS);
    CHECK(strstr(r.err, "handshake timeout") != NULL, "detail: %s", r.err);
    CHECK(took >= 250 && took < 5000, "failed after %ld ms (connect timeout 300)", took);
    stop_server(pid);
}

int main(void) {
    RUN(test_verified_tls);
    RUN(test_refused_tls);
    RUN(test_auth);
    RUN(test_bad_arguments);
    RUN(test_loop_logs_in);
    RUN(test_loop_tls);
    RUN(test_loop_refused_tls);
    RUN(test_loop_auth_over_tls);
    RUN(test_loop_tls_server_restarted);
    RUN(test_loop_stalled_tls_server);
    TEST_MAIN_END();
}
