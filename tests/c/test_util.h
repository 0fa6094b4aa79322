/* Tiny assertion helpers shared by the mcrs C tests.
 *
 * Every CHECK prints file:line on failure; status checks also print
 * mcrs_status_str() of the expected and actual status and this thread's
 * mcrs_last_error(). A test program ends with TEST_MAIN_END(), which prints
 * "N passed, N failed" and returns non-zero when any check failed. The
 * counters are atomic, so CHECKs may be used from several threads. */
#ifndef MCRS_TEST_UTIL_H
#define MCRS_TEST_UTIL_H

#ifndef _DEFAULT_SOURCE
#define _DEFAULT_SOURCE 1 /* usleep, getpid, ... under -std=c11 */
#endif
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include "mcrs.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

static atomic_int tu_passed;
static atomic_int tu_failed;

static inline const char *tu_last_error(char *buf, size_t cap) {
    size_t n = mcrs_last_error(buf, cap);
    if (n == 0 && cap > 0)
        buf[0] = '\0';
    return buf;
}

static inline void tu_fail_status(const char *file, int line, const char *expr, int expected,
                                  int got) {
    char err[512];
    tu_last_error(err, sizeof err);
    fprintf(stderr, "%s:%d: FAIL: %s\n    expected %s (%d), got %s (%d); last error: \"%s\"\n", file,
            line, expr, mcrs_status_str((mcrs_status)expected), expected,
            mcrs_status_str((mcrs_status)got), got, err);
    fflush(stderr);
}

/* Prints an optional printf-style message; fmt NULL prints nothing and returns false. */
static inline bool tu_msg(const char *fmt, ...) {
    if (fmt == NULL)
        return false;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    return true;
}

/* CHECK(cond) or CHECK(cond, "printf format", args...): prints file:line and the message
   (or, without one, the condition's source text). */
#define CHECK(...) TU_CHECK_(#__VA_ARGS__, __VA_ARGS__, NULL)
#define TU_CHECK_(text, cond, ...)                                                            \
    do {                                                                                      \
        if (cond) {                                                                           \
            atomic_fetch_add(&tu_passed, 1);                                                  \
        } else {                                                                              \
            char tu_err_[512];                                                                \
            atomic_fetch_add(&tu_failed, 1);                                                  \
            fprintf(stderr, "%s:%d: FAIL: ", __FILE__, __LINE__);                             \
            if (!tu_msg(__VA_ARGS__))                                                         \
                fputs(text, stderr);                                                          \
            fprintf(stderr, " (last error: \"%s\")\n", tu_last_error(tu_err_, sizeof tu_err_)); \
            fflush(stderr);                                                                   \
        }                                                                                     \
    } while (0)

/* CHECK_STATUS(call, MCRS_STATUS_X): evaluates call once; returns nothing. */
#define CHECK_STATUS(call, expected)                                           \
    do {                                                                       \
        int tu_got_ = (int)(call);                                             \
        int tu_exp_ = (int)(expected);                                         \
        if (tu_got_ == tu_exp_) {                                              \
            atomic_fetch_add(&tu_passed, 1);                                   \
        } else {                                                               \
            atomic_fetch_add(&tu_failed, 1);                                   \
            tu_fail_status(__FILE__, __LINE__, #call, tu_exp_, tu_got_);       \
        }                                                                      \
    } while (0)

/* CHECK_OK(call) == CHECK_STATUS(call, MCRS_STATUS_OK) */
#define CHECK_OK(call) CHECK_STATUS(call, MCRS_STATUS_OK)

/* REQUIRE: like CHECK, but aborts the program (a later step cannot run). */
#define REQUIRE(cond, ...)                                                     \
    do {                                                                       \
        bool tu_req_ok_ = (cond);                                              \
        CHECK(tu_req_ok_, __VA_ARGS__);                                        \
        if (!tu_req_ok_) {                                                     \
            fprintf(stderr, "%s:%d: fatal, stopping\n", __FILE__, __LINE__);   \
            tu_summary();                                                      \
            exit(1);                                                           \
        }                                                                      \
    } while (0)

static inline int tu_summary(void) {
    int p = atomic_load(&tu_passed), f = atomic_load(&tu_failed);
    printf("%d passed, %d failed\n", p, f);
    fflush(stdout);
    return f == 0 ? 0 : 1;
}

#define RUN(test_fn)                                                           \
    do {                                                                       \
        int tu_before_ = atomic_load(&tu_failed);                              \
        printf("== %s\n", #test_fn);                                           \
        fflush(stdout);                                                        \
        test_fn();                                                             \
        if (atomic_load(&tu_failed) != tu_before_)                             \
            printf("   %s: %d failure(s)\n", #test_fn,                         \
                   atomic_load(&tu_failed) - tu_before_);                      \
    } while (0)

#define TEST_MAIN_END() return tu_summary()

/* ---- helpers -------------------------------------------------------- */

#define K(s) ((const uint8_t *)(s)), (sizeof(s) - 1) /* literal key/value -> ptr, len */
#define B(s) ((const uint8_t *)(s))

/* Required environment variable (set by with_memcached.sh). */
static inline const char *tu_env(const char *name) {
    const char *v = getenv(name);
    if (v == NULL || v[0] == '\0') {
        fprintf(stderr, "FAIL: environment variable %s is not set; run this test through "
                        "tests/c/with_memcached.sh (ctest does)\n", name);
        atomic_fetch_add(&tu_failed, 1);
        tu_summary();
        exit(1);
    }
    return v;
}

static inline const char *tu_server(void) { return tu_env("MCRS_TEST_SERVER"); }

/* A config for one server with short timeouts (the caller may change it further). */
static inline mcrs_config *tu_config_for(const char *server) {
    mcrs_config *cfg = mcrs_config_new();
    REQUIRE(cfg != NULL, "mcrs_config_new returned NULL");
    CHECK_OK(mcrs_config_add_server(cfg, server));
    CHECK_OK(mcrs_config_set_connect_timeout_ms(cfg, 2000));
    CHECK_OK(mcrs_config_set_timeout_ms(cfg, 5000));
    return cfg;
}

static inline mcrs_client *tu_client_from(const mcrs_config *cfg) {
    mcrs_client *c = NULL;
    mcrs_status st = mcrs_client_new(cfg, &c);
    CHECK_OK(st);
    REQUIRE(st == MCRS_STATUS_OK && c != NULL, "mcrs_client_new failed");
    return c;
}

/* Client for one server; default_noreply as given. */
static inline mcrs_client *tu_client_for(const char *server, bool default_noreply) {
    mcrs_config *cfg = tu_config_for(server);
    CHECK_OK(mcrs_config_set_default_noreply(cfg, default_noreply));
    mcrs_client *c = tu_client_from(cfg);
    mcrs_config_free(cfg);
    return c;
}

/* Client for $MCRS_TEST_SERVER; default_noreply as given. */
static inline mcrs_client *tu_client(bool default_noreply) {
    return tu_client_for(tu_server(), default_noreply);
}

/* True when v holds exactly (data, len) with the given flags. */
static inline bool tu_value_is(const mcrs_value *v, const void *data, size_t len, uint32_t flags) {
    if (v == NULL)
        return false;
    if (mcrs_value_len(v) != len || mcrs_value_flags(v) != flags)
        return false;
    if (len == 0)
        return true;
    const uint8_t *d = mcrs_value_data(v);
    return d != NULL && memcmp(d, data, len) == 0;
}

/* CHECK_GET(client, key, key_len, data, len, flags): get key and check it equals
   (data, len, flags). Variadic so that K("literal") may stand for key, key_len. */
#define CHECK_GET(...) TU_CHECK_GET_(__VA_ARGS__)
#define TU_CHECK_GET_(client, key, key_len, data, len, flags)                                    \
    do {                                                                                        \
        mcrs_value *tu_v_ = NULL;                                                               \
        CHECK_OK(mcrs_client_get((client), (key), (key_len), &tu_v_));                          \
        CHECK(tu_value_is(tu_v_, (data), (len), (flags)),                                       \
              "value of key %.*s: got len %zu flags %u, expected len %zu flags %u",             \
              (int)(key_len), (const char *)(key), mcrs_value_len(tu_v_),                       \
              (unsigned)mcrs_value_flags(tu_v_), (size_t)(len), (unsigned)(flags));             \
        mcrs_value_free(tu_v_);                                                                 \
    } while (0)

/* CHECK_MISS(client, key, key_len): get key and check it is a miss with *out == NULL. */
#define CHECK_MISS(...) TU_CHECK_MISS_(__VA_ARGS__)
#define TU_CHECK_MISS_(client, key, key_len)                                                     \
    do {                                                                                        \
        mcrs_value *tu_v_ = (mcrs_value *)(uintptr_t)0x1;                                       \
        CHECK_STATUS(mcrs_client_get((client), (key), (key_len), &tu_v_), MCRS_STATUS_NOT_FOUND); \
        CHECK(tu_v_ == NULL, "get miss must set *out = NULL");                                  \
        if (tu_v_ != (mcrs_value *)(uintptr_t)0x1)                                              \
            mcrs_value_free(tu_v_);                                                             \
    } while (0)

/* A bogus non-NULL pointer to pre-fill out-parameters with; never dereferenced. */
#define TU_SENTINEL ((void *)(uintptr_t)0x1)

/* Unique-ish key prefix per process so repeated runs against one server do not collide. */
static inline const char *tu_run_id(void) {
    static char id[32];
    if (id[0] == '\0')
        snprintf(id, sizeof id, "r%ld", (long)getpid());
    return id;
}

/* "127.0.0.1:PORT" of a loopback port nobody listens on (bound, then closed). */
static inline const char *tu_closed_port_addr(void) {
    static char addr[64];
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd >= 0, "socket");
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = 0;
    socklen_t sl = sizeof sa;
    REQUIRE(bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0, "bind");
    REQUIRE(getsockname(fd, (struct sockaddr *)&sa, &sl) == 0, "getsockname");
    close(fd);
    snprintf(addr, sizeof addr, "127.0.0.1:%u", (unsigned)ntohs(sa.sin_port));
    return addr;
}

#endif /* MCRS_TEST_UTIL_H */
