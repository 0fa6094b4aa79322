/* mcrs for Node: an N-API addon driving libmcrs's event loop (mcrs_loop) from libuv.
 *
 * Every command submits a request to an mcrs_loop and returns a promise; the
 * promise is settled from the request's callback, which runs inside
 * mcrs_loop_run on the JS thread. libuv drives each loop through a uv_poll on
 * mcrs_loop_fd and a uv_timer for mcrs_loop_timeout_ms; auto-wake is off and a
 * uv_prepare / uv_check pair writes what JS submitted during a turn (one write
 * per server per turn) before libuv blocks. Nothing here blocks the JS thread
 * and no thread is used on the data path.
 *
 * Per environment (the main thread and each worker_thread) the instance data
 * holds the prepare/check hooks, the list of loops with unsent requests and
 * the JS constructors the addon needs. Each Client owns its mcrs_client and
 * one mcrs_loop made from it (loops are made from a client, so a loop per
 * client per thread; clients cannot move between threads).
 *
 * Lifetime: the JS handle object is held strongly while requests are in
 * flight (so an unreachable client still settles its promises) and weakly
 * otherwise (the GC frees an idle client never closed). close() frees the
 * loop, which completes every pending request with MCRS_STATUS_CANCELLED:
 * those promises reject. */
#include <node_api.h>
#include <uv.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mcrs.h"

/* ---- plumbing -------------------------------------------------------------------------------- */

#define CHECK(call)                                                                                \
    do {                                                                                           \
        if ((call) != napi_ok) {                                                                   \
            fail_napi(env, #call);                                                                 \
            return NULL;                                                                           \
        }                                                                                          \
    } while (0)

static void fail_napi(napi_env env, const char *what) {
    const napi_extended_error_info *info = NULL;
    napi_get_last_error_info(env, &info);
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (!pending) {
        char msg[512];
        snprintf(msg, sizeof msg, "mcrs addon: %s failed: %s", what,
                 info && info->error_message ? info->error_message : "unknown N-API error");
        napi_throw_error(env, NULL, msg);
    }
}

static napi_value throw_type(napi_env env, const char *msg) {
    napi_throw_type_error(env, NULL, msg);
    return NULL;
}

typedef struct env_state env_state;
typedef struct client_s client_s;
typedef struct loop_s loop_s;

struct env_state {
    napi_env env;
    uv_loop_t *uv;
    uv_prepare_t prepare; /* writes the turn's requests before libuv blocks */
    uv_check_t check;     /* ... and after the poll phase's callbacks submitted more */
    loop_s *dirty;        /* loops with unsent requests */
    napi_ref error_ctor;  /* McrsError(message, status, detail) */
    napi_ref int_decoder; /* JS fallback for flags 2/4 values that are not small integers */
    napi_ref resource;    /* async resource of the callback scopes */
    napi_async_context actx;
    client_s *clients; /* every live client, for teardown */
    napi_async_cleanup_hook_handle cleanup;
    int closing_handles; /* uv handles whose close callback has not run (teardown) */
    bool teardown;
};

struct loop_s {
    env_state *es;
    client_s *client; /* not used once the loop is destroyed (the client may be gone) */
    mcrs_loop *loop; /* NULL once freed */
    uv_poll_t poll;
    uv_timer_t timer;
    size_t inflight;
    bool dirty;
    bool retiring; /* replaced by quit(): freed once its requests are done */
    bool counted;  /* its handle closes are awaited by the environment's teardown */
    int open_handles;
    loop_s *next_dirty;
    loop_s *next_retiring;
};

struct client_s {
    env_state *es;
    mcrs_client *client; /* for the few commands the loop API lacks (run on libuv's pool) */
    loop_s *cur;
    loop_s *retiring;
    napi_ref self; /* the JS handle: strong while inflight > 0 */
    size_t inflight;
    size_t works; /* async works running on the pool */
    bool raw;     /* custom deserializer: resolve with raw bytes, JS decodes */
    bool closed;
    bool finalized; /* the JS handle was collected */
    bool torn_down; /* the environment went away */
    client_s *prev, *next;
};

/* ---- status names and errors ------------------------------------------------------------------ */

static const char *const STATUS_NAMES[] = {
    "MCRS_STATUS_OK",
    "MCRS_STATUS_NOT_FOUND",
    "MCRS_STATUS_NOT_STORED",
    "MCRS_STATUS_EXISTS",
    "MCRS_STATUS_INVALID_KEY",
    "MCRS_STATUS_INVALID_ARGUMENT",
    "MCRS_STATUS_NULL_POINTER",
    "MCRS_STATUS_CLIENT_ERROR",
    "MCRS_STATUS_SERVER_ERROR",
    "MCRS_STATUS_UNKNOWN_COMMAND",
    "MCRS_STATUS_CONNECT_FAILED",
    "MCRS_STATUS_IO",
    "MCRS_STATUS_TIMEOUT",
    "MCRS_STATUS_UNEXPECTED_CLOSE",
    "MCRS_STATUS_PROTOCOL",
    "MCRS_STATUS_NO_SERVERS",
    "MCRS_STATUS_BUFFER_TOO_SMALL",
    "MCRS_STATUS_PANIC",
    "MCRS_STATUS_SERVER_DOWN",
    "MCRS_STATUS_CANCELLED",
    "MCRS_STATUS_TLS",
    "MCRS_STATUS_AUTH_FAILED",
    "MCRS_STATUS_PARTIAL",
    "MCRS_STATUS_VALUE_TOO_LARGE",
};
#define N_STATUS (sizeof STATUS_NAMES / sizeof STATUS_NAMES[0])

enum op {
    OP_GET, OP_GETS, OP_GAT, OP_GATS, /* read opcodes 0..3 */
    OP_SET, OP_ADD, OP_REPLACE, OP_APPEND, OP_PREPEND, /* store opcodes 0..4, offset OP_SET */
    OP_CAS, OP_DELETE, OP_TOUCH, OP_INCR, OP_DECR,
    OP_GET_MANY, OP_GETS_MANY, OP_SET_MANY, OP_DELETE_MANY, OP_TOUCH_MANY,
    OP_FLUSH_ALL, OP_VERSION, OP_STATS, OP_GET_INTO, OP_CACHE_MEMLIMIT, OP_VERBOSITY,
    OP_FLUSH_BUFFERS, OP_QUIT, OP_CLIENT, OP_LEASE_GET, OP_LEASE_SET, OP_INVALIDATE,
};
static const char *const OP_NAMES[] = {
    "get", "gets", "gat", "gats", "set", "add", "replace", "append", "prepend", "cas", "delete",
    "touch", "incr", "decr", "getMany", "getsMany", "setMany", "deleteMany", "touchMany",
    "flushAll", "version", "stats", "getInto", "cacheMemlimit", "verbosity", "flushBuffers",
    "quit", "Client", "leaseGet", "leaseSet", "invalidate",
};

/* An McrsError for `status`: the message is "mcrs <op>: <detail> (<name>)". */
static napi_value make_error(napi_env env, env_state *es, int op, mcrs_status st,
                             const char *detail) {
    char name_buf[32];
    const char *name;
    if ((size_t)st < N_STATUS) {
        name = STATUS_NAMES[st];
    } else {
        snprintf(name_buf, sizeof name_buf, "MCRS_STATUS_%d", (int)st);
        name = name_buf;
    }
    const char *text = detail && *detail ? detail : mcrs_status_str(st);
    size_t mlen = strlen(text) + strlen(name) + 64;
    char *msg = malloc(mlen);
    if (!msg)
        return NULL;
    snprintf(msg, mlen, "mcrs %s: %s (%s)", OP_NAMES[op], text, name);
    napi_value argv[3], ctor, err = NULL;
    napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &argv[0]);
    napi_create_int32(env, (int32_t)st, &argv[1]);
    napi_create_string_utf8(env, detail ? detail : "", NAPI_AUTO_LENGTH, &argv[2]);
    free(msg);
    if (napi_get_reference_value(env, es->error_ctor, &ctor) != napi_ok || ctor == NULL ||
        napi_new_instance(env, ctor, 3, argv, &err) != napi_ok) {
        napi_create_error(env, NULL, argv[0], &err);
    }
    return err;
}

/* The calling thread's mcrs_last_error, malloc'd (caller frees), or NULL. */
static char *last_error(void) {
    char small[512];
    size_t n = mcrs_last_error(small, sizeof small);
    if (n == 0)
        return NULL;
    char *s = malloc(n + 1);
    if (!s)
        return NULL;
    if (n < sizeof small)
        memcpy(s, small, n + 1);
    else
        mcrs_last_error(s, n + 1);
    return s;
}

static napi_value error_now(napi_env env, env_state *es, int op, mcrs_status st) {
    char *d = last_error();
    napi_value e = make_error(env, es, op, st, d);
    free(d);
    return e;
}

/* ---- requests ------------------------------------------------------------------------------- */

enum kind { K_READ, K_STORE, K_CAS, K_BOOL, K_NUMBER, K_MANY, K_KEYS, K_TRUE, K_VERSION,
            K_STATS, K_INTO, K_LEASE_SET };

typedef struct req {
    loop_s *ls;
    napi_deferred d;
    uint8_t op;
    uint8_t kind;
    bool noreply_on;
    napi_ref buf; /* getInto: the caller's buffer */
    size_t n;     /* many: number of keys */
    size_t *off;  /* many: key i is key[off[i] .. off[i+1]] */
    size_t keylen;
    uint8_t key[]; /* read: the key (for decoding); many: all keys */
} req;

static req *req_new(loop_s *ls, int op, int kind, size_t extra) {
    req *r = malloc(sizeof(req) + extra);
    if (!r)
        return NULL;
    r->ls = ls;
    r->d = NULL;
    r->op = (uint8_t)op;
    r->kind = (uint8_t)kind;
    r->noreply_on = false;
    r->buf = NULL;
    r->n = 0;
    r->off = NULL;
    r->keylen = 0;
    return r;
}

static void req_free(napi_env env, req *r) {
    if (r->buf && env)
        napi_delete_reference(env, r->buf);
    free(r->off);
    free(r);
}

static void mark_dirty(loop_s *ls) {
    if (!ls->dirty) {
        env_state *es = ls->client->es;
        ls->dirty = true;
        ls->next_dirty = es->dirty;
        es->dirty = ls;
    }
}

/* A submission was accepted: count it in flight (keeping the process and the JS handle alive). */
static void submitted(napi_env env, loop_s *ls) {
    client_s *c = ls->client;
    if (ls->inflight++ == 0)
        uv_ref((uv_handle_t *)&ls->poll);
    if (c->inflight++ == 0)
        napi_reference_ref(env, c->self, NULL);
    mark_dirty(ls);
}

static void destroy_loop(loop_s *ls);

/* A request's callback ran. */
static void completed(napi_env env, loop_s *ls) {
    client_s *c = ls->client;
    if (--ls->inflight == 0) {
        if (ls->loop)
            uv_unref((uv_handle_t *)&ls->poll);
    }
    if (--c->inflight == 0 && !c->es->teardown)
        napi_reference_unref(env, c->self, NULL);
}

/* Settles r's promise: value, or an McrsError when err_status != OK. */
static void settle(napi_env env, req *r, napi_value value) {
    napi_resolve_deferred(env, r->d, value);
}

static void reject_status(napi_env env, req *r, mcrs_status st) {
    char *d = last_error();
    napi_value e = make_error(env, r->ls->client->es, r->op, st, d);
    free(d);
    napi_reject_deferred(env, r->d, e);
}

/* Starts a request: a deferred and the promise to return. */
static napi_value begin(napi_env env, req *r) {
    napi_value promise;
    if (napi_create_promise(env, &r->d, &promise) != napi_ok) {
        free(r);
        fail_napi(env, "napi_create_promise");
        return NULL;
    }
    return promise;
}

/* After a submit call: on refusal the promise rejects now and r is freed. */
static void after_submit(napi_env env, req *r, mcrs_status st) {
    if (st == MCRS_STATUS_OK) {
        submitted(env, r->ls);
    } else {
        reject_status(env, r, st);
        req_free(env, r);
    }
}

/* ---- value decoding --------------------------------------------------------------------------- */

static napi_value u64_value(napi_env env, uint64_t v) {
    napi_value out;
    if (v <= 9007199254740991ull)
        napi_create_double(env, (double)v, &out);
    else
        napi_create_bigint_uint64(env, v, &out);
    return out;
}

/* A small decimal integer (flags 2/4) as pymemcache's serde reads it: surrounding ASCII
   whitespace allowed, an optional sign, at most 15 digits. false when not that. */
static bool small_int(const uint8_t *p, size_t n, double *out) {
    size_t i = 0;
    while (n > 0 && (p[n - 1] == ' ' || (p[n - 1] >= '\t' && p[n - 1] <= '\r')))
        n--;
    while (i < n && (p[i] == ' ' || (p[i] >= '\t' && p[i] <= '\r')))
        i++;
    bool neg = false;
    if (i < n && (p[i] == '+' || p[i] == '-')) {
        neg = p[i] == '-';
        i++;
    }
    if (i == n || n - i > 15)
        return false;
    int64_t v = 0;
    for (; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        v = v * 10 + (p[i] - '0');
    }
    *out = neg ? -(double)v : (double)v;
    return true;
}

static napi_value copy_buffer(napi_env env, const uint8_t *data, size_t len) {
    napi_value b;
    void *dst;
    if (napi_create_buffer_copy(env, len, len ? data : (const void *)"", &dst, &b) != napi_ok)
        return NULL;
    return b;
}

/* The default deserializer: flags 0 -> Buffer, 16 -> string, 2/4 -> Number (BigInt, or a
   TypeError, through the JS fallback), anything else -> Buffer. Returns NULL with
   *err set when decoding threw. */
static napi_value decode(napi_env env, env_state *es, const uint8_t *key, size_t keylen,
                         const uint8_t *data, size_t len, uint32_t flags, napi_value *err) {
    napi_value out = NULL;
    double d;
    if (flags == 16) {
        napi_create_string_utf8(env, len ? (const char *)data : "", len, &out);
        return out;
    }
    if (flags == 2 || flags == 4) {
        if (small_int(data, len, &d)) {
            napi_create_double(env, d, &out);
            return out;
        }
        napi_value fn, argv[3];
        napi_get_reference_value(env, es->int_decoder, &fn);
        napi_create_string_utf8(env, (const char *)key, keylen, &argv[0]);
        argv[1] = copy_buffer(env, data, len);
        napi_create_uint32(env, flags, &argv[2]);
        napi_value undef;
        napi_get_undefined(env, &undef);
        if (napi_call_function(env, undef, fn, 3, argv, &out) != napi_ok) {
            napi_get_and_clear_last_exception(env, err);
            return NULL;
        }
        return out;
    }
    return copy_buffer(env, data, len);
}

/* ---- callbacks ---------------------------------------------------------------------------------- */

#define CB_ENTER(r)                                                                                \
    loop_s *ls = (r)->ls;                                                                          \
    env_state *es = ls->client->es;                                                                \
    napi_env env = es->env;                                                                        \
    completed(env, ls);                                                                            \
    if (es->teardown) { /* the environment is gone: nothing to settle */                           \
        req_free(NULL, r);                                                                         \
        CB_DROP;                                                                                   \
        return;                                                                                    \
    }                                                                                              \
    napi_handle_scope hs;                                                                          \
    napi_open_handle_scope(env, &hs)

#define CB_LEAVE(r)                                                                                \
    napi_close_handle_scope(env, hs);                                                              \
    req_free(env, r)

static void on_get(void *ud, mcrs_status st, mcrs_value *v) {
    req *r = ud;
#define CB_DROP mcrs_value_free(v)
    CB_ENTER(r);
#undef CB_DROP
    napi_value out = NULL, undef;
    napi_get_undefined(env, &undef);
    bool with_cas = r->op == OP_GETS || r->op == OP_GATS;
    if (st == MCRS_STATUS_OK) {
        const uint8_t *data = mcrs_value_data(v);
        size_t len = mcrs_value_len(v);
        uint32_t flags = mcrs_value_flags(v);
        napi_value val, err = NULL;
        if (ls->client->raw) {
            /* [bytes, flags, cas] for the JS deserializer */
            napi_value f, c;
            napi_create_array_with_length(env, 3, &out);
            napi_set_element(env, out, 0, copy_buffer(env, data, len));
            napi_create_uint32(env, flags, &f);
            napi_set_element(env, out, 1, f);
            napi_create_bigint_uint64(env, mcrs_value_cas(v), &c);
            napi_set_element(env, out, 2, c);
            settle(env, r, out);
        } else if ((val = decode(env, es, r->key, r->keylen, data, len, flags, &err)) == NULL) {
            napi_reject_deferred(env, r->d, err ? err : undef);
        } else if (with_cas) {
            napi_value c;
            napi_create_array_with_length(env, 2, &out);
            napi_set_element(env, out, 0, val);
            napi_create_bigint_uint64(env, mcrs_value_cas(v), &c);
            napi_set_element(env, out, 1, c);
            settle(env, r, out);
        } else {
            settle(env, r, val);
        }
        mcrs_value_free(v);
    } else if (st == MCRS_STATUS_NOT_FOUND) {
        if (with_cas && !ls->client->raw) {
            napi_create_array_with_length(env, 2, &out);
            napi_set_element(env, out, 0, undef);
            napi_set_element(env, out, 1, undef);
            settle(env, r, out);
        } else {
            settle(env, r, undef);
        }
    } else {
        reject_status(env, r, st);
    }
    CB_LEAVE(r);
}

static void on_into(void *ud, mcrs_status st, mcrs_value *v) {
    req *r = ud;
#define CB_DROP mcrs_value_free(v)
    CB_ENTER(r);
#undef CB_DROP
    napi_value undef;
    napi_get_undefined(env, &undef);
    if (st == MCRS_STATUS_OK) {
        size_t len = mcrs_value_len(v);
        napi_value buf, out, n, f;
        void *dst = NULL;
        size_t cap = 0;
        napi_get_reference_value(env, r->buf, &buf);
        napi_get_typedarray_info(env, buf, NULL, &cap, &dst, NULL, NULL);
        if (len > cap) {
            char detail[128];
            snprintf(detail, sizeof detail, "the value has %zu bytes, the buffer holds %zu", len,
                     cap);
            napi_value e = make_error(env, es, r->op, MCRS_STATUS_BUFFER_TOO_SMALL, detail);
            napi_value needed;
            napi_create_double(env, (double)len, &needed);
            napi_set_named_property(env, e, "needed", needed);
            napi_reject_deferred(env, r->d, e);
        } else {
            if (len)
                memcpy(dst, mcrs_value_data(v), len);
            napi_create_object(env, &out);
            napi_create_double(env, (double)len, &n);
            napi_create_uint32(env, mcrs_value_flags(v), &f);
            napi_set_named_property(env, out, "length", n);
            napi_set_named_property(env, out, "flags", f);
            settle(env, r, out);
        }
        mcrs_value_free(v);
    } else if (st == MCRS_STATUS_NOT_FOUND) {
        settle(env, r, undef);
    } else {
        reject_status(env, r, st);
    }
    CB_LEAVE(r);
}

#define CB_DROP (void)0

static void on_status(void *ud, mcrs_status st) {
    req *r = ud;
    CB_ENTER(r);
    napi_value out;
    switch (r->kind) {
    case K_STORE: /* true stored, false not stored */
        if (st == MCRS_STATUS_OK || st == MCRS_STATUS_NOT_STORED) {
            napi_get_boolean(env, st == MCRS_STATUS_OK, &out);
            settle(env, r, out);
        } else {
            reject_status(env, r, st);
        }
        break;
    case K_CAS: /* true stored, false exists, undefined not found */
        if (st == MCRS_STATUS_OK || st == MCRS_STATUS_EXISTS) {
            napi_get_boolean(env, st == MCRS_STATUS_OK, &out);
            settle(env, r, out);
        } else if (st == MCRS_STATUS_NOT_FOUND) {
            napi_get_undefined(env, &out);
            settle(env, r, out);
        } else {
            reject_status(env, r, st);
        }
        break;
    case K_LEASE_SET: /* true stored, false the lease was lost (EXISTS) */
        if (st == MCRS_STATUS_OK || st == MCRS_STATUS_EXISTS) {
            napi_get_boolean(env, st == MCRS_STATUS_OK, &out);
            settle(env, r, out);
        } else {
            reject_status(env, r, st);
        }
        break;
    case K_BOOL: /* delete/touch/invalidate: true found, false not found */
        if (st == MCRS_STATUS_OK || st == MCRS_STATUS_NOT_FOUND) {
            napi_get_boolean(env, st == MCRS_STATUS_OK, &out);
            settle(env, r, out);
        } else {
            reject_status(env, r, st);
        }
        break;
    default: /* K_TRUE */
        if (st == MCRS_STATUS_OK) {
            napi_get_boolean(env, true, &out);
            settle(env, r, out);
        } else {
            reject_status(env, r, st);
        }
        break;
    }
    CB_LEAVE(r);
}

/* A lease get: [state 0..3, token BigInt, value or undefined, ttl]; the value decoded, or
   [bytes, flags] for a custom deserializer. */
static void on_lease(void *ud, mcrs_status st, mcrs_lease state, uint64_t token,
                     mcrs_value *v) {
    req *r = ud;
#undef CB_DROP
#define CB_DROP mcrs_value_free(v)
    CB_ENTER(r);
#undef CB_DROP
#define CB_DROP (void)0
    if (st != MCRS_STATUS_OK) {
        reject_status(env, r, st);
        mcrs_value_free(v);
        CB_LEAVE(r);
        return;
    }
    napi_value out, undef, sv, tv, ttl, val = NULL, err = NULL;
    napi_get_undefined(env, &undef);
    napi_create_array_with_length(env, 4, &out);
    napi_create_uint32(env, (uint32_t)state, &sv);
    napi_create_bigint_uint64(env, token, &tv);
    napi_set_element(env, out, 0, sv);
    napi_set_element(env, out, 1, tv);
    napi_create_double(env, v ? (double)mcrs_value_ttl(v) : -2, &ttl);
    napi_set_element(env, out, 3, ttl);
    if (v == NULL) {
        napi_set_element(env, out, 2, undef);
        settle(env, r, out);
    } else {
        const uint8_t *data = mcrs_value_data(v);
        size_t len = mcrs_value_len(v);
        uint32_t flags = mcrs_value_flags(v);
        if (ls->client->raw) {
            napi_value f;
            napi_create_array_with_length(env, 2, &val);
            napi_set_element(env, val, 0, copy_buffer(env, data, len));
            napi_create_uint32(env, flags, &f);
            napi_set_element(env, val, 1, f);
        } else {
            val = decode(env, es, r->key, r->keylen, data, len, flags, &err);
        }
        if (val == NULL) {
            napi_reject_deferred(env, r->d, err ? err : undef);
        } else {
            napi_set_element(env, out, 2, val);
            settle(env, r, out);
        }
        mcrs_value_free(v);
    }
    CB_LEAVE(r);
}

static void on_number(void *ud, mcrs_status st, uint64_t value) {
    req *r = ud;
    CB_ENTER(r);
    napi_value out;
    if (st == MCRS_STATUS_OK && !r->noreply_on) {
        settle(env, r, u64_value(env, value));
    } else if (st == MCRS_STATUS_OK || st == MCRS_STATUS_NOT_FOUND) {
        napi_get_undefined(env, &out);
        settle(env, r, out);
    } else {
        reject_status(env, r, st);
    }
    CB_LEAVE(r);
}

/* Defines key -> value on obj as an own data property (no __proto__ setter). */
static void define(napi_env env, napi_value obj, napi_value key, napi_value value) {
    napi_property_descriptor pd = {NULL, key, NULL, NULL, NULL, value, napi_default_jsproperty,
                                   NULL};
    napi_define_properties(env, obj, 1, &pd);
}

/* The hits of a get_many as JS: { key: value } (or [value, cas] pairs), or with a
   custom deserializer the flat [index, bytes, flags, cas, ...] that JS decodes with
   the caller's keys. NULL with *err set when the default deserializer failed. */
static napi_value many_hits(napi_env env, env_state *es, req *r, bool raw, mcrs_values *vs,
                            napi_value *err) {
    bool with_cas = r->op == OP_GETS_MANY;
    napi_value out;
    size_t n = mcrs_values_len(vs);
    if (raw) {
        napi_create_array(env, &out);
        uint32_t j = 0;
        for (size_t i = 0; i < n; i++) {
            const mcrs_value *v = mcrs_values_get(vs, i);
            if (!v)
                continue;
            napi_value x;
            napi_create_uint32(env, (uint32_t)i, &x);
            napi_set_element(env, out, j++, x);
            napi_set_element(env, out, j++, copy_buffer(env, mcrs_value_data(v), mcrs_value_len(v)));
            napi_create_uint32(env, mcrs_value_flags(v), &x);
            napi_set_element(env, out, j++, x);
            napi_create_bigint_uint64(env, mcrs_value_cas(v), &x);
            napi_set_element(env, out, j++, x);
        }
        return out;
    }
    napi_create_object(env, &out);
    for (size_t i = 0; i < n; i++) {
        const mcrs_value *v = mcrs_values_get(vs, i);
        if (!v)
            continue;
        const uint8_t *k = r->key + r->off[i];
        size_t kl = r->off[i + 1] - r->off[i];
        napi_value name, val;
        val = decode(env, es, k, kl, mcrs_value_data(v), mcrs_value_len(v), mcrs_value_flags(v), err);
        if (!val)
            return NULL;
        if (with_cas) {
            napi_value pair, c;
            napi_create_array_with_length(env, 2, &pair);
            napi_set_element(env, pair, 0, val);
            napi_create_bigint_uint64(env, mcrs_value_cas(v), &c);
            napi_set_element(env, pair, 1, c);
            val = pair;
        }
        napi_create_string_utf8(env, (const char *)k, kl, &name);
        define(env, out, name, val);
    }
    return out;
}

/* The rejection of a get_many where some servers failed: an McrsError with code
   MCRS_STATUS_PARTIAL, `hits` (what resolving would have given) and `failed`, one
   { key, index, code, message } per key whose server failed. */
static napi_value partial_error(napi_env env, env_state *es, req *r, mcrs_values *vs,
                                napi_value hits) {
    size_t n = mcrs_values_len(vs), nfailed = 0;
    napi_value failed;
    napi_create_array(env, &failed);
    char first[512] = "";
    for (size_t i = 0; i < n; i++) {
        mcrs_status ks = mcrs_values_status(vs, i);
        if (ks == MCRS_STATUS_OK || ks == MCRS_STATUS_NOT_FOUND)
            continue;
        char why[512];
        size_t wl = mcrs_values_error(vs, i, why, sizeof why);
        if (wl == 0)
            why[0] = '\0';
        if (nfailed == 0)
            snprintf(first, sizeof first, "%s", why);
        const uint8_t *k = r->key + r->off[i];
        size_t kl = r->off[i + 1] - r->off[i];
        napi_value o, x;
        napi_create_object(env, &o);
        napi_create_string_utf8(env, (const char *)k, kl, &x);
        napi_set_named_property(env, o, "key", x);
        napi_create_uint32(env, (uint32_t)i, &x);
        napi_set_named_property(env, o, "index", x);
        napi_create_string_utf8(env, (size_t)ks < N_STATUS ? STATUS_NAMES[ks] : "MCRS_STATUS_UNKNOWN",
                                NAPI_AUTO_LENGTH, &x);
        napi_set_named_property(env, o, "code", x);
        napi_create_string_utf8(env, why, NAPI_AUTO_LENGTH, &x);
        napi_set_named_property(env, o, "message", x);
        napi_set_element(env, failed, (uint32_t)nfailed++, o);
    }
    char detail[700];
    snprintf(detail, sizeof detail, "%zu of %zu keys failed (first: %s)", nfailed, n, first);
    napi_value e = make_error(env, es, r->op, MCRS_STATUS_PARTIAL, detail);
    if (e) {
        napi_set_named_property(env, e, "hits", hits);
        napi_set_named_property(env, e, "failed", failed);
    }
    return e;
}

static void on_values(void *ud, mcrs_status st, mcrs_values *vs) {
    req *r = ud;
#undef CB_DROP
#define CB_DROP mcrs_values_free(vs)
    CB_ENTER(r);
#undef CB_DROP
#define CB_DROP (void)0
    if (st == MCRS_STATUS_OK || (st == MCRS_STATUS_PARTIAL && vs != NULL)) {
        napi_value err = NULL;
        napi_value out = many_hits(env, es, r, ls->client->raw, vs, &err);
        if (err) {
            mcrs_values_free(vs);
            napi_reject_deferred(env, r->d, err);
        } else if (st == MCRS_STATUS_PARTIAL) {
            napi_value e = partial_error(env, es, r, vs, out);
            mcrs_values_free(vs);
            napi_reject_deferred(env, r->d, e);
        } else {
            mcrs_values_free(vs);
            settle(env, r, out);
        }
    } else {
        mcrs_values_free(vs);
        reject_status(env, r, st);
    }
    CB_LEAVE(r);
}

static void on_keys(void *ud, mcrs_status st, const mcrs_status *per_key, size_t n) {
    req *r = ud;
    CB_ENTER(r);
    if (r->kind == K_KEYS && (st == MCRS_STATUS_OK || st == MCRS_STATUS_NOT_STORED)) {
        /* set_many: the indices of the items not stored */
        napi_value out, x;
        napi_create_array(env, &out);
        uint32_t j = 0;
        for (size_t i = 0; st == MCRS_STATUS_NOT_STORED && per_key && i < n; i++) {
            if (per_key[i] != MCRS_STATUS_OK) {
                napi_create_uint32(env, (uint32_t)i, &x);
                napi_set_element(env, out, j++, x);
            }
        }
        settle(env, r, out);
    } else if (r->kind == K_TRUE && st == MCRS_STATUS_OK) {
        napi_value t;
        napi_get_boolean(env, true, &t);
        settle(env, r, t);
    } else {
        reject_status(env, r, st == MCRS_STATUS_OK ? MCRS_STATUS_PROTOCOL : st);
    }
    CB_LEAVE(r);
}

static void on_version(void *ud, mcrs_status st, const char *version) {
    req *r = ud;
    CB_ENTER(r);
    if (st == MCRS_STATUS_OK && version) {
        napi_value s;
        napi_create_string_utf8(env, version, NAPI_AUTO_LENGTH, &s);
        settle(env, r, s);
    } else {
        reject_status(env, r, st == MCRS_STATUS_OK ? MCRS_STATUS_PROTOCOL : st);
    }
    CB_LEAVE(r);
}

/* A stats list as the flat [server, name, value, ...] JS builds its object from;
   with `numeric`, the values as numbers. */
static napi_value stats_flat(napi_env env, const mcrs_stats *s, bool numeric) {
    napi_value out, x;
    size_t n = mcrs_stats_len(s);
    napi_create_array_with_length(env, n * 3, &out);
    for (size_t i = 0; i < n; i++) {
        const char *sv = NULL, *nm = NULL, *vl = NULL;
        if (mcrs_stats_get(s, i, &sv, &nm, &vl) != MCRS_STATUS_OK)
            continue;
        napi_create_string_utf8(env, sv, NAPI_AUTO_LENGTH, &x);
        napi_set_element(env, out, (uint32_t)(3 * i), x);
        napi_create_string_utf8(env, nm, NAPI_AUTO_LENGTH, &x);
        napi_set_element(env, out, (uint32_t)(3 * i + 1), x);
        if (numeric)
            napi_create_double(env, (double)strtoull(vl, NULL, 10), &x);
        else
            napi_create_string_utf8(env, vl, NAPI_AUTO_LENGTH, &x);
        napi_set_element(env, out, (uint32_t)(3 * i + 2), x);
    }
    return out;
}

static void on_stats(void *ud, mcrs_status st, mcrs_stats *s) {
    req *r = ud;
#undef CB_DROP
#define CB_DROP mcrs_stats_free(s)
    CB_ENTER(r);
#undef CB_DROP
#define CB_DROP (void)0
    if (st == MCRS_STATUS_OK && s) {
        napi_value out = stats_flat(env, s, false);
        mcrs_stats_free(s);
        settle(env, r, out);
    } else {
        mcrs_stats_free(s);
        reject_status(env, r, st == MCRS_STATUS_OK ? MCRS_STATUS_PROTOCOL : st);
    }
    CB_LEAVE(r);
}

/* ---- driving the loops from libuv ------------------------------------------------------------- */

static void on_timer(uv_timer_t *t);

static void arm_timer(loop_s *ls) {
    int32_t t = mcrs_loop_timeout_ms(ls->loop);
    if (t < 0)
        uv_timer_stop(&ls->timer);
    else
        uv_timer_start(&ls->timer, on_timer, (uint64_t)t, 0);
}

static void retire_done(loop_s *ls);

/* Runs the loop inside a callback scope (so that promise reactions and nextTicks run after
   it), then writes what those reactions submitted and re-arms the timer. */
static void drive(loop_s *ls) {
    env_state *es = ls->client->es;
    napi_env env = es->env;
    if (!ls->loop || es->teardown)
        return;
    napi_handle_scope hs;
    napi_callback_scope cs;
    napi_value resource;
    napi_open_handle_scope(env, &hs);
    napi_get_reference_value(env, es->resource, &resource);
    bool scoped = napi_open_callback_scope(env, resource, es->actx, &cs) == napi_ok;
    mcrs_loop_run(ls->loop);
    if (scoped)
        napi_close_callback_scope(env, cs); /* runs the microtasks: JS may submit or close here */
    napi_close_handle_scope(env, hs);
    if (!ls->loop)
        return;
    if (ls->retiring && ls->inflight == 0) {
        retire_done(ls);
        return;
    }
    mcrs_loop_send(ls->loop);
    arm_timer(ls);
}

static void on_poll(uv_poll_t *h, int status, int events) {
    (void)status;
    (void)events;
    drive(h->data);
}

static void on_timer(uv_timer_t *t) { drive(t->data); }

/* Writes every loop's unsent requests (prepare and check hooks). */
static void flush_dirty(env_state *es) {
    loop_s *ls = es->dirty;
    es->dirty = NULL;
    while (ls) {
        loop_s *next = ls->next_dirty;
        ls->dirty = false;
        ls->next_dirty = NULL;
        if (ls->loop) {
            mcrs_loop_send(ls->loop);
            arm_timer(ls);
        }
        ls = next;
    }
}

static void on_prepare(uv_prepare_t *p) { flush_dirty(p->data); }
static void on_check(uv_check_t *c) { flush_dirty(c->data); }

static void free_client_if_done(client_s *c);

static void on_loop_handle_closed(uv_handle_t *h) {
    loop_s *ls = h->data;
    if (--ls->open_handles == 0) {
        env_state *es = ls->es;
        bool counted = ls->counted;
        free(ls);
        if (counted && --es->closing_handles == 0 && es->cleanup) {
            napi_remove_async_cleanup_hook(es->cleanup);
            es->cleanup = NULL;
        }
    }
}

static void unlink_dirty(loop_s *ls) {
    if (!ls->dirty)
        return;
    env_state *es = ls->es;
    loop_s **pp = &es->dirty;
    while (*pp && *pp != ls)
        pp = &(*pp)->next_dirty;
    if (*pp)
        *pp = ls->next_dirty;
    ls->dirty = false;
}

/* Frees the mcrs_loop (pending requests complete with CANCELLED, their callbacks running
   now) and closes the uv handles; the struct goes when both are closed. */
static void destroy_loop(loop_s *ls) {
    mcrs_loop *l = ls->loop;
    if (!l)
        return;
    mcrs_loop_free(l);
    ls->loop = NULL;
    unlink_dirty(ls);
    uv_close((uv_handle_t *)&ls->poll, on_loop_handle_closed);
    uv_close((uv_handle_t *)&ls->timer, on_loop_handle_closed);
}

static void retire_done(loop_s *ls) {
    client_s *c = ls->client;
    loop_s **pp = &c->retiring;
    while (*pp && *pp != ls)
        pp = &(*pp)->next_retiring;
    if (*pp)
        *pp = ls->next_retiring;
    destroy_loop(ls);
}

static loop_s *loop_make(napi_env env, client_s *c, mcrs_status *st) {
    loop_s *ls = calloc(1, sizeof *ls);
    if (!ls) {
        *st = MCRS_STATUS_PANIC;
        return NULL;
    }
    ls->client = c;
    ls->es = c->es;
    *st = mcrs_loop_new(c->client, &ls->loop);
    if (*st != MCRS_STATUS_OK) {
        free(ls);
        return NULL;
    }
    mcrs_loop_set_auto_wake(ls->loop, false);
    uv_loop_t *uv = c->es->uv;
    if (uv_poll_init(uv, &ls->poll, mcrs_loop_fd(ls->loop)) != 0) {
        mcrs_loop_free(ls->loop);
        free(ls);
        *st = MCRS_STATUS_IO;
        return NULL;
    }
    uv_timer_init(uv, &ls->timer);
    ls->poll.data = ls;
    ls->timer.data = ls;
    ls->open_handles = 2;
    uv_poll_start(&ls->poll, UV_READABLE, on_poll);
    uv_unref((uv_handle_t *)&ls->poll);
    uv_unref((uv_handle_t *)&ls->timer);
    (void)env;
    return ls;
}

/* ---- clients ------------------------------------------------------------------------------------- */

static void client_unlink(client_s *c) {
    env_state *es = c->es;
    if (c->prev)
        c->prev->next = c->next;
    else if (es->clients == c)
        es->clients = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
}

/* Closes the loops (rejecting what is in flight with CANCELLED). */
static void client_shutdown(client_s *c) {
    if (c->closed)
        return;
    c->closed = true;
    loop_s *cur = c->cur;
    c->cur = NULL;
    if (cur)
        destroy_loop(cur);
    while (c->retiring) {
        loop_s *ls = c->retiring;
        c->retiring = ls->next_retiring;
        destroy_loop(ls);
    }
}

static void free_client_if_done(client_s *c) {
    if (c->closed && c->works == 0 && c->client) {
        mcrs_client_free(c->client);
        c->client = NULL;
    }
    if (c->closed && c->works == 0 && c->finalized) {
        client_unlink(c);
        free(c);
    }
}

static void client_finalize(napi_env env, void *data, void *hint) {
    (void)hint;
    client_s *c = data;
    if (c->torn_down) { /* the environment's teardown already closed everything */
        free(c);
        return;
    }
    if (c->self) {
        napi_delete_reference(env, c->self);
        c->self = NULL;
    }
    c->finalized = true;
    client_shutdown(c);
    free_client_if_done(c);
}

static client_s *get_client(napi_env env, napi_value h) {
    client_s *c = NULL;
    if (napi_unwrap(env, h, (void **)&c) != napi_ok || !c) {
        bool pending;
        napi_is_exception_pending(env, &pending);
        if (pending) {
            napi_value e;
            napi_get_and_clear_last_exception(env, &e);
        }
        napi_throw_type_error(env, NULL, "mcrs: not a client handle");
        return NULL;
    }
    if (c->closed) {
        napi_value msg, err, code;
        napi_create_string_utf8(env, "mcrs: the client is closed", NAPI_AUTO_LENGTH, &msg);
        napi_create_error(env, NULL, msg, &err);
        napi_create_string_utf8(env, "ERR_MCRS_CLIENT_CLOSED", NAPI_AUTO_LENGTH, &code);
        napi_set_named_property(env, err, "code", code);
        napi_throw(env, err);
        return NULL;
    }
    return c;
}

static env_state *get_es(napi_env env) {
    env_state *es = NULL;
    napi_get_instance_data(env, (void **)&es);
    return es;
}

/* ---- argument helpers ------------------------------------------------------------------------ */

/* Bytes of a string or Uint8Array argument. Strings are encoded as UTF-8 into `stack`
   (cap bytes) or into *heap (malloc'd, caller frees). */
typedef struct bytes {
    const uint8_t *p;
    size_t n;
    char *heap;
} bytes;

static bool get_bytes(napi_env env, napi_value v, char *stack, size_t cap, bytes *out) {
    napi_valuetype t;
    out->heap = NULL;
    napi_typeof(env, v, &t);
    if (t == napi_string) {
        size_t n = 0;
        if (napi_get_value_string_utf8(env, v, stack, cap, &n) != napi_ok)
            return false;
        if (n + 1 >= cap) { /* maybe truncated: measure and encode in full */
            napi_get_value_string_utf8(env, v, NULL, 0, &n);
            out->heap = malloc(n + 1);
            if (!out->heap)
                return false;
            napi_get_value_string_utf8(env, v, out->heap, n + 1, &n);
            out->p = (const uint8_t *)out->heap;
        } else {
            out->p = (const uint8_t *)stack;
        }
        out->n = n;
        return true;
    }
    void *data = NULL;
    size_t len = 0;
    napi_typedarray_type tt;
    bool is_ta = false;
    napi_is_typedarray(env, v, &is_ta);
    if (!is_ta || napi_get_typedarray_info(env, v, &tt, &len, &data, NULL, NULL) != napi_ok ||
        (tt != napi_uint8_array && tt != napi_uint8_clamped_array))
        return false;
    out->p = len ? data : (const uint8_t *)"";
    out->n = len;
    return true;
}

static uint32_t get_u32(napi_env env, napi_value v) {
    uint32_t x = 0;
    napi_get_value_uint32(env, v, &x);
    return x;
}

static bool get_u64(napi_env env, napi_value v, uint64_t *out) {
    bool lossless;
    napi_valuetype t;
    napi_typeof(env, v, &t);
    if (t == napi_bigint)
        return napi_get_value_bigint_uint64(env, v, out, &lossless) == napi_ok && lossless;
    double d;
    if (napi_get_value_double(env, v, &d) != napi_ok || d < 0)
        return false;
    *out = (uint64_t)d;
    return true;
}

#define ARGS(n)                                                                                    \
    size_t argc = n;                                                                               \
    napi_value argv[n];                                                                            \
    if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < n)               \
        return throw_type(env, "mcrs addon: wrong number of arguments");                           \
    client_s *c = get_client(env, argv[0]);                                                        \
    if (!c)                                                                                        \
        return NULL;                                                                               \
    loop_s *ls = c->cur

#define KEY_BUF 1024

/* The key argument argv[i] as bytes `k` (with a stack buffer for short keys). */
#define KEY_ARG(k, i)                                                                              \
    char k##_buf[KEY_BUF];                                                                         \
    bytes k;                                                                                       \
    if (!get_bytes(env, argv[i], k##_buf, sizeof k##_buf, &k))                                     \
    return throw_type(env, "mcrs: key must be a string or a Buffer")

/* Frees the heap copies of up to two byte arguments (either may be NULL). */
static void free_args(bytes *a, bytes *b) {
    if (a)
        free(a->heap);
    if (b)
        free(b->heap);
}

/* A new request of `op` and its promise in *r; NULL (with an exception pending, and the
   argument copies a and b freed) when it cannot be made. */
static napi_value begin_req(napi_env env, loop_s *ls, int op, enum kind kind, req **r, bytes *a,
                            bytes *b) {
    *r = req_new(ls, op, kind, 0);
    napi_value p = *r ? begin(env, *r) : NULL;
    if (!p) {
        free_args(a, b);
        return *r ? NULL : throw_type(env, "mcrs: out of memory");
    }
    return p;
}

/* After the submit call: the argument copies go, and the promise is returned. */
static napi_value sent_req(napi_env env, req *r, mcrs_status st, napi_value p, bytes *a,
                           bytes *b) {
    free_args(a, b);
    after_submit(env, r, st);
    return p;
}

/* ---- commands ------------------------------------------------------------------------------------ */

/* read(h, opcode 0..3, key, exptime) */
static napi_value js_read(napi_env env, napi_callback_info info) {
    ARGS(4);
    KEY_ARG(k, 2);
    uint32_t opc = get_u32(env, argv[1]) & 3, exp = get_u32(env, argv[3]);
    size_t keep = k.n <= 250 ? k.n : 0; /* the key is kept to name it in decode errors */
    req *r = req_new(ls, OP_GET + (int)opc, K_READ, keep);
    if (!r) {
        free(k.heap);
        return throw_type(env, "mcrs: out of memory");
    }
    memcpy(r->key, k.p, keep);
    r->keylen = keep;
    napi_value p = begin(env, r);
    if (!p) {
        free(k.heap);
        return NULL;
    }
    mcrs_status st;
    switch (opc) {
    case 0: st = mcrs_loop_get(ls->loop, k.p, k.n, on_get, r); break;
    case 1: st = mcrs_loop_gets(ls->loop, k.p, k.n, on_get, r); break;
    case 2: st = mcrs_loop_gat(ls->loop, k.p, k.n, exp, on_get, r); break;
    default: st = mcrs_loop_gats(ls->loop, k.p, k.n, exp, on_get, r); break;
    }
    free(k.heap);
    after_submit(env, r, st);
    return p;
}

/* getInto(h, key, buf) */
static napi_value js_get_into(napi_env env, napi_callback_info info) {
    ARGS(3);
    KEY_ARG(k, 1);
    req *r = req_new(ls, OP_GET_INTO, K_INTO, 0);
    if (!r || napi_create_reference(env, argv[2], 1, &r->buf) != napi_ok) {
        free(r);
        free(k.heap);
        return throw_type(env, "mcrs: out of memory");
    }
    napi_value p = begin(env, r);
    if (!p) {
        free(k.heap);
        return NULL;
    }
    mcrs_status st = mcrs_loop_get(ls->loop, k.p, k.n, on_into, r);
    free(k.heap);
    after_submit(env, r, st);
    return p;
}

/* store(h, opcode 0..4, key, data, flags, exptime, noreply) */
static napi_value js_store(napi_env env, napi_callback_info info) {
    ARGS(7);
    KEY_ARG(k, 2);
    char vb[4096];
    bytes v;
    if (!get_bytes(env, argv[3], vb, sizeof vb, &v)) {
        free(k.heap);
        return throw_type(env, "mcrs: value must be a string or a Buffer");
    }
    uint32_t opc = get_u32(env, argv[1]), flags = get_u32(env, argv[4]),
             exp = get_u32(env, argv[5]), nr = get_u32(env, argv[6]);
    req *r;
    napi_value p = begin_req(env, ls, OP_SET + (int)(opc % 5), K_STORE, &r, &k, &v);
    if (!p)
        return NULL;
    mcrs_status st;
    switch (opc) {
    case 0: st = mcrs_loop_set(ls->loop, k.p, k.n, v.p, v.n, flags, exp, nr, on_status, r); break;
    case 1: st = mcrs_loop_add(ls->loop, k.p, k.n, v.p, v.n, flags, exp, nr, on_status, r); break;
    case 2: st = mcrs_loop_replace(ls->loop, k.p, k.n, v.p, v.n, flags, exp, nr, on_status, r); break;
    case 3: st = mcrs_loop_append(ls->loop, k.p, k.n, v.p, v.n, flags, exp, nr, on_status, r); break;
    default: st = mcrs_loop_prepend(ls->loop, k.p, k.n, v.p, v.n, flags, exp, nr, on_status, r); break;
    }
    return sent_req(env, r, st, p, &k, &v);
}

/* cas(h, key, data, flags, exptime, cas, noreply) */
static napi_value js_cas(napi_env env, napi_callback_info info) {
    ARGS(7);
    KEY_ARG(k, 1);
    char vb[4096];
    bytes v;
    uint64_t cas;
    if (!get_bytes(env, argv[2], vb, sizeof vb, &v)) {
        free(k.heap);
        return throw_type(env, "mcrs: value must be a string or a Buffer");
    }
    if (!get_u64(env, argv[5], &cas)) {
        free(k.heap);
        free(v.heap);
        return throw_type(env, "mcrs: cas must be a BigInt");
    }
    req *r;
    napi_value p = begin_req(env, ls, OP_CAS, K_CAS, &r, &k, &v);
    if (!p)
        return NULL;
    mcrs_status st = mcrs_loop_cas(ls->loop, k.p, k.n, v.p, v.n, get_u32(env, argv[3]),
                                   get_u32(env, argv[4]), cas, get_u32(env, argv[6]), on_status, r);
    return sent_req(env, r, st, p, &k, &v);
}

/* del(h, key, noreply) */
static napi_value js_delete(napi_env env, napi_callback_info info) {
    ARGS(3);
    KEY_ARG(k, 1);
    req *r;
    napi_value p = begin_req(env, ls, OP_DELETE, K_BOOL, &r, &k, NULL);
    if (!p)
        return NULL;
    mcrs_status st = mcrs_loop_delete(ls->loop, k.p, k.n, get_u32(env, argv[2]), on_status, r);
    return sent_req(env, r, st, p, &k, NULL);
}

/* touch(h, key, exptime, noreply) */
static napi_value js_touch(napi_env env, napi_callback_info info) {
    ARGS(4);
    KEY_ARG(k, 1);
    req *r;
    napi_value p = begin_req(env, ls, OP_TOUCH, K_BOOL, &r, &k, NULL);
    if (!p)
        return NULL;
    mcrs_status st = mcrs_loop_touch(ls->loop, k.p, k.n, get_u32(env, argv[2]),
                                     get_u32(env, argv[3]), on_status, r);
    return sent_req(env, r, st, p, &k, NULL);
}

/* arith(h, incr 1 / decr 0, key, delta, noreply) */
static napi_value js_arith(napi_env env, napi_callback_info info) {
    ARGS(5);
    KEY_ARG(k, 2);
    uint64_t delta;
    if (!get_u64(env, argv[3], &delta)) {
        free(k.heap);
        return throw_type(env, "mcrs: delta must be a BigInt");
    }
    bool incr = get_u32(env, argv[1]) != 0;
    uint32_t nr = get_u32(env, argv[4]);
    req *r;
    napi_value p = begin_req(env, ls, incr ? OP_INCR : OP_DECR, K_NUMBER, &r, &k, NULL);
    if (!p)
        return NULL;
    r->noreply_on = nr == MCRS_NOREPLY_ON;
    mcrs_status st = incr ? mcrs_loop_incr(ls->loop, k.p, k.n, delta, nr, on_number, r)
                          : mcrs_loop_decr(ls->loop, k.p, k.n, delta, nr, on_number, r);
    return sent_req(env, r, st, p, &k, NULL);
}

/* leaseGet(h, key, leaseTtl) */
static napi_value js_lease_get(napi_env env, napi_callback_info info) {
    ARGS(3);
    KEY_ARG(k, 1);
    size_t keep = k.n <= 250 ? k.n : 0; /* the key is kept to name it in decode errors */
    req *r = req_new(ls, OP_LEASE_GET, K_READ, keep);
    if (!r) {
        free(k.heap);
        return throw_type(env, "mcrs: out of memory");
    }
    memcpy(r->key, k.p, keep);
    r->keylen = keep;
    napi_value p = begin(env, r);
    if (!p) {
        free(k.heap);
        return NULL;
    }
    mcrs_status st = mcrs_loop_lease_get(ls->loop, k.p, k.n, get_u32(env, argv[2]), on_lease, r);
    free(k.heap);
    after_submit(env, r, st);
    return p;
}

/* leaseSet(h, key, data, flags, exptime, token) */
static napi_value js_lease_set(napi_env env, napi_callback_info info) {
    ARGS(6);
    KEY_ARG(k, 1);
    char vb[4096];
    bytes v;
    uint64_t token;
    if (!get_bytes(env, argv[2], vb, sizeof vb, &v)) {
        free(k.heap);
        return throw_type(env, "mcrs: value must be a string or a Buffer");
    }
    if (!get_u64(env, argv[5], &token)) {
        free(k.heap);
        free(v.heap);
        return throw_type(env, "mcrs: token must be a BigInt");
    }
    req *r;
    napi_value p = begin_req(env, ls, OP_LEASE_SET, K_LEASE_SET, &r, &k, &v);
    if (!p)
        return NULL;
    mcrs_status st = mcrs_loop_lease_set(ls->loop, k.p, k.n, v.p, v.n, get_u32(env, argv[3]),
                                         get_u32(env, argv[4]), token, on_status, r);
    return sent_req(env, r, st, p, &k, &v);
}

/* invalidate(h, key, staleTtl) */
static napi_value js_invalidate(napi_env env, napi_callback_info info) {
    ARGS(3);
    KEY_ARG(k, 1);
    req *r;
    napi_value p = begin_req(env, ls, OP_INVALIDATE, K_BOOL, &r, &k, NULL);
    if (!p)
        return NULL;
    mcrs_status st = mcrs_loop_invalidate(ls->loop, k.p, k.n, get_u32(env, argv[2]), on_status, r);
    return sent_req(env, r, st, p, &k, NULL);
}

/* Collects the keys of a JS array into one blob: ptrs/lens point into r->key. */
static req *many_req(napi_env env, loop_s *ls, int op, int kind, napi_value arr,
                     const uint8_t ***ptrs, size_t **lens) {
    uint32_t n = 0;
    if (napi_get_array_length(env, arr, &n) != napi_ok) {
        throw_type(env, "mcrs: keys must be an array");
        return NULL;
    }
    /* first pass: sizes */
    size_t total = 0;
    char kb[KEY_BUF];
    bytes *bs = calloc(n ? n : 1, sizeof *bs);
    size_t *off = malloc(sizeof(size_t) * (n + 1));
    if (!bs || !off) {
        free(bs);
        free(off);
        throw_type(env, "mcrs: out of memory");
        return NULL;
    }
    /* strings are encoded twice (size, then copy) only when long; keys are short */
    napi_value *vals = malloc(sizeof(napi_value) * (n ? n : 1));
    for (uint32_t i = 0; i < n; i++) {
        napi_get_element(env, arr, i, &vals[i]);
        if (!get_bytes(env, vals[i], kb, sizeof kb, &bs[i])) {
            for (uint32_t j = 0; j < i; j++)
                free(bs[j].heap);
            free(bs);
            free(off);
            free(vals);
            throw_type(env, "mcrs: keys must be strings or Buffers");
            return NULL;
        }
        off[i] = total;
        total += bs[i].n;
        if (bs[i].p == (const uint8_t *)kb) { /* stack copy is reused: keep it now */
            bs[i].heap = malloc(bs[i].n + 1);
            memcpy(bs[i].heap, kb, bs[i].n);
            bs[i].p = (const uint8_t *)bs[i].heap;
        }
    }
    off[n] = total;
    req *r = req_new(ls, op, kind, total);
    const uint8_t **pp = malloc(sizeof(uint8_t *) * (n ? n : 1));
    size_t *ll = malloc(sizeof(size_t) * (n ? n : 1));
    if (!r || !pp || !ll) {
        for (uint32_t j = 0; j < n; j++)
            free(bs[j].heap);
        free(bs);
        free(off);
        free(vals);
        free(r);
        free(pp);
        free(ll);
        throw_type(env, "mcrs: out of memory");
        return NULL;
    }
    for (uint32_t i = 0; i < n; i++) {
        memcpy(r->key + off[i], bs[i].p, bs[i].n);
        pp[i] = r->key + off[i];
        ll[i] = bs[i].n;
        free(bs[i].heap);
    }
    free(bs);
    free(vals);
    r->n = n;
    r->off = off;
    r->keylen = total;
    *ptrs = pp;
    *lens = ll;
    return r;
}

/* readMany(h, withCas, keys) */
static napi_value js_read_many(napi_env env, napi_callback_info info) {
    ARGS(3);
    bool cas = false;
    napi_get_value_bool(env, argv[1], &cas);
    const uint8_t **pp;
    size_t *ll;
    req *r = many_req(env, ls, cas ? OP_GETS_MANY : OP_GET_MANY, K_MANY, argv[2], &pp, &ll);
    if (!r)
        return NULL;
    napi_value p = begin(env, r);
    if (p) {
        mcrs_status st = cas ? mcrs_loop_gets_many(ls->loop, pp, ll, r->n, on_values, r)
                             : mcrs_loop_get_many(ls->loop, pp, ll, r->n, on_values, r);
        after_submit(env, r, st);
    }
    free(pp);
    free(ll);
    return p;
}

/* keysMany(h, opcode 0 delete / 1 touch, keys, exptime, noreply) */
static napi_value js_keys_many(napi_env env, napi_callback_info info) {
    ARGS(5);
    bool touch = get_u32(env, argv[1]) == 1;
    const uint8_t **pp;
    size_t *ll;
    req *r = many_req(env, ls, touch ? OP_TOUCH_MANY : OP_DELETE_MANY, K_TRUE, argv[2], &pp, &ll);
    if (!r)
        return NULL;
    napi_value p = begin(env, r);
    if (p) {
        uint32_t exp = get_u32(env, argv[3]), nr = get_u32(env, argv[4]);
        mcrs_status st = touch ? mcrs_loop_touch_many(ls->loop, pp, ll, r->n, exp, nr, on_keys, r)
                               : mcrs_loop_delete_many(ls->loop, pp, ll, r->n, nr, on_keys, r);
        after_submit(env, r, st);
    }
    free(pp);
    free(ll);
    return p;
}

/* setMany(h, keys, datas, flags Uint32Array, exptime, noreply) */
static napi_value js_set_many(napi_env env, napi_callback_info info) {
    ARGS(6);
    const uint8_t **pp;
    size_t *ll;
    req *r = many_req(env, ls, OP_SET_MANY, K_KEYS, argv[1], &pp, &ll);
    if (!r)
        return NULL;
    size_t n = r->n;
    const uint8_t **vp = malloc(sizeof(uint8_t *) * (n ? n : 1));
    size_t *vl = malloc(sizeof(size_t) * (n ? n : 1));
    char **heaps = calloc(n ? n : 1, sizeof(char *));
    void *fdata = NULL;
    size_t flen = 0;
    napi_typedarray_type ft;
    bool ok = vp && vl && heaps &&
              napi_get_typedarray_info(env, argv[3], &ft, &flen, &fdata, NULL, NULL) == napi_ok &&
              ft == napi_uint32_array && flen == n;
    for (size_t i = 0; ok && i < n; i++) {
        napi_value v;
        bytes b;
        napi_get_element(env, argv[2], (uint32_t)i, &v);
        /* a tiny stack buffer: every string value is copied to the heap */
        char tiny[1];
        if (!get_bytes(env, v, tiny, sizeof tiny, &b)) {
            ok = false;
            break;
        }
        if (b.p == (const uint8_t *)tiny) { /* the empty string */
            b.p = (const uint8_t *)"";
        }
        heaps[i] = b.heap;
        vp[i] = b.p;
        vl[i] = b.n;
    }
    napi_value p = NULL;
    if (ok && (p = begin(env, r)) != NULL) {
        mcrs_status st = mcrs_loop_set_many(ls->loop, pp, ll, vp, vl, fdata, n,
                                            get_u32(env, argv[4]), get_u32(env, argv[5]), on_keys,
                                            r);
        after_submit(env, r, st);
    } else if (!ok) {
        req_free(env, r);
        throw_type(env, "mcrs: setMany: bad values");
    }
    for (size_t i = 0; heaps && i < n; i++)
        free(heaps[i]);
    free(heaps);
    free(vp);
    free(vl);
    free(pp);
    free(ll);
    return p;
}

/* flushAll(h, delay, noreply) */
static napi_value js_flush_all(napi_env env, napi_callback_info info) {
    ARGS(3);
    req *r = req_new(ls, OP_FLUSH_ALL, K_TRUE, 0);
    napi_value p = r ? begin(env, r) : NULL;
    if (!p)
        return r ? NULL : throw_type(env, "mcrs: out of memory");
    after_submit(env, r, mcrs_loop_flush_all(ls->loop, get_u32(env, argv[1]),
                                             get_u32(env, argv[2]), on_status, r));
    return p;
}

/* version(h) */
static napi_value js_version(napi_env env, napi_callback_info info) {
    ARGS(1);
    req *r = req_new(ls, OP_VERSION, K_VERSION, 0);
    napi_value p = r ? begin(env, r) : NULL;
    if (!p)
        return r ? NULL : throw_type(env, "mcrs: out of memory");
    after_submit(env, r, mcrs_loop_version(ls->loop, on_version, r));
    return p;
}

/* stats(h, args) */
static napi_value js_stats(napi_env env, napi_callback_info info) {
    ARGS(2);
    char ab[1024];
    bytes a;
    if (!get_bytes(env, argv[1], ab, sizeof ab, &a))
        return throw_type(env, "mcrs: stats arguments must be a string");
    char *z = malloc(a.n + 1);
    if (!z) {
        free(a.heap);
        return throw_type(env, "mcrs: out of memory");
    }
    memcpy(z, a.p, a.n);
    z[a.n] = 0;
    free(a.heap);
    req *r = req_new(ls, OP_STATS, K_STATS, 0);
    napi_value p = r ? begin(env, r) : NULL;
    if (p)
        after_submit(env, r, mcrs_loop_stats(ls->loop, z, on_stats, r));
    free(z);
    if (!r)
        return throw_type(env, "mcrs: out of memory");
    return p;
}

/* send(h): writes what was submitted (flushBuffers) */
static napi_value js_send(napi_env env, napi_callback_info info) {
    ARGS(1);
    mcrs_status st = mcrs_loop_send(ls->loop);
    if (st != MCRS_STATUS_OK) {
        napi_throw(env, error_now(env, c->es, OP_FLUSH_BUFFERS, st));
        return NULL;
    }
    unlink_dirty(ls);
    arm_timer(ls);
    napi_value t;
    napi_get_boolean(env, true, &t);
    return t;
}

/* quit(h): new requests go to a fresh loop (new connections); the old one closes its
   connections once its requests are done. */
static napi_value js_quit(napi_env env, napi_callback_info info) {
    ARGS(1);
    mcrs_status st;
    loop_s *fresh = loop_make(env, c, &st);
    if (!fresh) {
        napi_throw(env, error_now(env, c->es, OP_QUIT, st));
        return NULL;
    }
    c->cur = fresh;
    if (ls->inflight == 0) {
        destroy_loop(ls);
    } else {
        ls->retiring = true;
        ls->next_retiring = c->retiring;
        c->retiring = ls;
    }
    napi_value u;
    napi_get_undefined(env, &u);
    return u;
}

/* close(h): rejects what is in flight with MCRS_STATUS_CANCELLED */
static napi_value js_close(napi_env env, napi_callback_info info) {
    size_t argc = 1;
    napi_value argv[1], u;
    napi_get_undefined(env, &u);
    if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1)
        return u;
    client_s *c = NULL;
    if (napi_unwrap(env, argv[0], (void **)&c) != napi_ok || !c || c->closed)
        return u;
    client_shutdown(c);
    free_client_if_done(c);
    return u;
}

/* ---- admin commands without a loop counterpart: libuv's pool, the blocking client ---------- */

typedef struct work {
    client_s *c;
    napi_async_work w;
    napi_deferred d;
    int op;
    uint32_t arg, nr;
    mcrs_status st;
    char *detail;
} work;

static void work_exec(napi_env env, void *data) {
    (void)env;
    work *w = data;
    w->st = w->op == OP_CACHE_MEMLIMIT ? mcrs_client_cache_memlimit(w->c->client, w->arg, w->nr)
                                       : mcrs_client_verbosity(w->c->client, w->arg, w->nr);
    if (w->st != MCRS_STATUS_OK)
        w->detail = last_error();
}

static void work_done(napi_env env, napi_status status, void *data) {
    work *w = data;
    client_s *c = w->c;
    c->works--;
    if (!c->es->teardown) {
        if (w->st == MCRS_STATUS_OK && status == napi_ok) {
            napi_value t;
            napi_get_boolean(env, true, &t);
            napi_resolve_deferred(env, w->d, t);
        } else {
            napi_reject_deferred(env, w->d,
                                 make_error(env, c->es, w->op,
                                            status == napi_ok ? w->st : MCRS_STATUS_CANCELLED,
                                            w->detail));
        }
        if (--c->inflight == 0)
            napi_reference_unref(env, c->self, NULL);
        napi_delete_async_work(env, w->w);
    }
    free(w->detail);
    free(w);
    free_client_if_done(c);
}

/* admin(h, 0 cacheMemlimit / 1 verbosity, arg, noreply) */
static napi_value js_admin(napi_env env, napi_callback_info info) {
    ARGS(4);
    (void)ls;
    work *w = calloc(1, sizeof *w);
    if (!w)
        return throw_type(env, "mcrs: out of memory");
    w->c = c;
    w->op = get_u32(env, argv[1]) == 0 ? OP_CACHE_MEMLIMIT : OP_VERBOSITY;
    w->arg = get_u32(env, argv[2]);
    w->nr = get_u32(env, argv[3]);
    napi_value p, name;
    napi_create_string_utf8(env, "mcrs.admin", NAPI_AUTO_LENGTH, &name);
    if (napi_create_promise(env, &w->d, &p) != napi_ok ||
        napi_create_async_work(env, NULL, name, work_exec, work_done, w, &w->w) != napi_ok ||
        napi_queue_async_work(env, w->w) != napi_ok) {
        free(w);
        fail_napi(env, "napi_queue_async_work");
        return NULL;
    }
    c->works++;
    if (c->inflight++ == 0)
        napi_reference_ref(env, c->self, NULL);
    return p;
}

/* ---- TLS and authentication settings (mcrs_config_set_tls* / mcrs_config_set_auth) ---------- */

/* A JS string as a malloc'd NUL-terminated UTF-8 copy (its length in *len);
   NULL when v is not a string. */
static char *dup_string(napi_env env, napi_value v, size_t *len) {
    size_t n = 0;
    if (napi_get_value_string_utf8(env, v, NULL, 0, &n) != napi_ok)
        return NULL;
    char *s = malloc(n + 1);
    if (!s)
        return NULL;
    napi_get_value_string_utf8(env, v, s, n + 1, &n);
    *len = n;
    return s;
}

static void wipe_free(char *s, size_t n) {
    if (!s)
        return;
    volatile char *p = s;
    for (size_t i = 0; i < n; i++)
        p[i] = 0;
    free(s);
}

static const struct {
    const char *name, *label; /* the setting and its option's name in JS */
    mcrs_status (*set_str)(mcrs_config *, const char *);
    mcrs_status (*set_pem)(mcrs_config *, const uint8_t *, size_t);
    mcrs_status (*set_bool)(mcrs_config *, bool);
} TLS_SETTINGS[] = {
    {"tls", "tls", NULL, NULL, mcrs_config_set_tls},
    {"tls_verify", "tls.verify", NULL, NULL, mcrs_config_set_tls_verify},
    {"tls_ca_file", "tls.caFile", mcrs_config_set_tls_ca_file, NULL, NULL},
    {"tls_cert_file", "tls.certFile", mcrs_config_set_tls_cert_file, NULL, NULL},
    {"tls_key_file", "tls.keyFile", mcrs_config_set_tls_key_file, NULL, NULL},
    {"tls_server_name", "tls.serverName", mcrs_config_set_tls_server_name, NULL, NULL},
    {"tls_ca_pem", "tls.ca", NULL, mcrs_config_set_tls_ca_pem, NULL},
    {"tls_cert_pem", "tls.cert", NULL, mcrs_config_set_tls_cert_pem, NULL},
    {"tls_key_pem", "tls.key", NULL, mcrs_config_set_tls_key_pem, NULL},
    {"auth", "auth", NULL, NULL, NULL}, /* [username, password] */
};
#define N_TLS_SETTINGS (sizeof TLS_SETTINGS / sizeof TLS_SETTINGS[0])

/* Applies the TLS or auth setting `name` (value v) to cfg: 1 when applied (*st its
   status, *label its option's name), 0 when name is not one of them, -1 when v has
   the wrong type (index.js checks them all first). */
static int tls_setting(napi_env env, mcrs_config *cfg, const char *name, napi_value v,
                       mcrs_status *st, const char **label) {
    size_t i = 0;
    while (i < N_TLS_SETTINGS && strcmp(name, TLS_SETTINGS[i].name))
        i++;
    if (i == N_TLS_SETTINGS)
        return 0;
    *label = TLS_SETTINGS[i].label;
    if (TLS_SETTINGS[i].set_bool) {
        bool b = false;
        if (napi_get_value_bool(env, v, &b) != napi_ok)
            return -1;
        *st = TLS_SETTINGS[i].set_bool(cfg, b);
    } else if (TLS_SETTINGS[i].set_str) {
        size_t n = 0;
        char *s = dup_string(env, v, &n);
        if (!s)
            return -1;
        *st = TLS_SETTINGS[i].set_str(cfg, s);
        free(s);
    } else if (TLS_SETTINGS[i].set_pem) {
        char tiny[64];
        bytes b;
        if (!get_bytes(env, v, tiny, sizeof tiny, &b))
            return -1;
        *st = TLS_SETTINGS[i].set_pem(cfg, b.p, b.n);
        wipe_free(b.heap, b.n); /* it may be a private key */
    } else { /* auth */
        napi_value uv, pv;
        size_t un = 0, pn = 0;
        if (napi_get_element(env, v, 0, &uv) != napi_ok || napi_get_element(env, v, 1, &pv) != napi_ok)
            return -1;
        char *u = dup_string(env, uv, &un);
        char *pw = dup_string(env, pv, &pn);
        if (!u || !pw) {
            free(u);
            wipe_free(pw, pn);
            return -1;
        }
        *st = mcrs_config_set_auth(cfg, u, pw);
        free(u);
        wipe_free(pw, pn);
    }
    return 1;
}

/* ---- construction --------------------------------------------------------------------------- */

/* create(addresses[], weights[] (0: none), settings[[name, value]...], raw) -> handle */
static napi_value js_create(napi_env env, napi_callback_info info) {
    size_t argc = 4;
    napi_value argv[4];
    env_state *es = get_es(env);
    CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
    if (argc < 4 || !es)
        return throw_type(env, "mcrs addon: create(addresses, weights, settings, raw)");
    mcrs_config *cfg = mcrs_config_new();
    if (!cfg) {
        napi_throw(env, make_error(env, es, OP_CLIENT, MCRS_STATUS_PANIC, "mcrs_config_new"));
        return NULL;
    }
    uint32_t n = 0, m = 0;
    napi_get_array_length(env, argv[0], &n);
    mcrs_status st = MCRS_STATUS_OK;
    char what[600] = "";
    for (uint32_t i = 0; i < n && st == MCRS_STATUS_OK; i++) {
        napi_value a, wv;
        char addr[512];
        size_t len;
        napi_get_element(env, argv[0], i, &a);
        napi_get_element(env, argv[1], i, &wv);
        if (napi_get_value_string_utf8(env, a, addr, sizeof addr, &len) != napi_ok) {
            mcrs_config_free(cfg);
            return throw_type(env, "mcrs: server addresses must be strings");
        }
        uint32_t weight = get_u32(env, wv);
        st = weight ? mcrs_config_add_server_weighted(cfg, addr, weight)
                    : mcrs_config_add_server(cfg, addr);
        if (st != MCRS_STATUS_OK)
            snprintf(what, sizeof what, "server \"%s\"", addr);
    }
    napi_get_array_length(env, argv[2], &m);
    for (uint32_t i = 0; i < m && st == MCRS_STATUS_OK; i++) {
        napi_value pair, nv, vv;
        char name[64];
        size_t len;
        napi_get_element(env, argv[2], i, &pair);
        napi_get_element(env, pair, 0, &nv);
        napi_get_element(env, pair, 1, &vv);
        napi_get_value_string_utf8(env, nv, name, sizeof name, &len);
        bool b = false;
        uint32_t u = 0;
        napi_get_value_bool(env, vv, &b);
        napi_get_value_uint32(env, vv, &u);
        const char *label = NULL;
        int t = tls_setting(env, cfg, name, vv, &st, &label);
        if (t < 0) {
            mcrs_config_free(cfg);
            return throw_type(env, "mcrs addon: a TLS or auth setting of the wrong type");
        }
#define U(n, f) else if (!strcmp(name, n)) st = f(cfg, u)
#define B(n, f) else if (!strcmp(name, n)) st = f(cfg, b)
        if (t > 0) {
        } else if (!strcmp(name, "key_prefix")) {
            char pb[KEY_BUF];
            bytes p;
            if (!get_bytes(env, vv, pb, sizeof pb, &p)) {
                mcrs_config_free(cfg);
                return throw_type(env, "mcrs: option keyPrefix must be a string or a Buffer");
            }
            st = mcrs_config_set_key_prefix(cfg, p.p, p.n);
            free(p.heap);
        }
        U("connect_timeout_ms", mcrs_config_set_connect_timeout_ms);
        U("timeout_ms", mcrs_config_set_timeout_ms);
        U("pool_idle_timeout_ms", mcrs_config_set_pool_idle_timeout_ms);
        U("retry_timeout_ms", mcrs_config_set_retry_timeout_ms);
        U("dead_timeout_ms", mcrs_config_set_dead_timeout_ms);
        U("max_pool_size", mcrs_config_set_max_pool_size);
        U("retry_attempts", mcrs_config_set_retry_attempts);
        U("distribution", mcrs_config_set_distribution);
        B("no_delay", mcrs_config_set_no_delay);
        B("keepalive", mcrs_config_set_keepalive);
        B("ignore_exc", mcrs_config_set_ignore_exc);
        B("default_noreply", mcrs_config_set_default_noreply);
        B("allow_unicode_keys", mcrs_config_set_allow_unicode_keys);
        B("buffer_noreply", mcrs_config_set_buffer_noreply);
        B("flush_on_rejoin", mcrs_config_set_flush_on_rejoin);
        U("failover_ttl", mcrs_config_set_failover_ttl);
        U("max_value_size", mcrs_config_set_max_value_size);
        U("max_tracked_keys", mcrs_config_set_max_tracked_keys);
        else {
            mcrs_config_free(cfg);
            return throw_type(env, "mcrs addon: unknown setting");
        }
#undef U
#undef B
        if (st != MCRS_STATUS_OK) {
            const char *pretty = label ? label : name;
            if (!strcmp(name, "key_prefix"))
                pretty = "keyPrefix";
            snprintf(what, sizeof what, "%s", pretty);
        }
    }
    mcrs_client *client = NULL;
    if (st == MCRS_STATUS_OK)
        st = mcrs_client_new(cfg, &client);
    mcrs_config_free(cfg);
    if (st != MCRS_STATUS_OK) {
        char *d = last_error();
        char msg[1200];
        const char *name = (size_t)st < N_STATUS ? STATUS_NAMES[st] : "MCRS_STATUS_?";
        snprintf(msg, sizeof msg, "mcrs Client%s%s%s: %s (%s)", *what ? " (" : "", what,
                 *what ? ")" : "", d && *d ? d : mcrs_status_str(st), name);
        napi_value argv2[3], ctor, err;
        napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &argv2[0]);
        napi_create_int32(env, (int32_t)st, &argv2[1]);
        napi_create_string_utf8(env, d ? d : "", NAPI_AUTO_LENGTH, &argv2[2]);
        free(d);
        napi_get_reference_value(env, es->error_ctor, &ctor);
        if (napi_new_instance(env, ctor, 3, argv2, &err) == napi_ok)
            napi_throw(env, err);
        else
            napi_throw_error(env, NULL, msg);
        return NULL;
    }
    client_s *c = calloc(1, sizeof *c);
    if (!c) {
        mcrs_client_free(client);
        return throw_type(env, "mcrs: out of memory");
    }
    c->es = es;
    c->client = client;
    napi_get_value_bool(env, argv[3], &c->raw);
    c->cur = loop_make(env, c, &st);
    if (!c->cur) {
        mcrs_client_free(client);
        free(c);
        napi_throw(env, error_now(env, es, OP_CLIENT, st));
        return NULL;
    }
    napi_value h;
    napi_create_object(env, &h);
    if (napi_wrap(env, h, c, client_finalize, NULL, NULL) != napi_ok ||
        napi_create_reference(env, h, 0, &c->self) != napi_ok) {
        client_shutdown(c);
        mcrs_client_free(client);
        fail_napi(env, "napi_wrap");
        return NULL;
    }
    c->next = es->clients;
    if (es->clients)
        es->clients->prev = c;
    es->clients = c;
    return h;
}

/* setup(McrsError, integerDecoder) */
static napi_value js_setup(napi_env env, napi_callback_info info) {
    size_t argc = 2;
    napi_value argv[2], u;
    env_state *es = get_es(env);
    CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
    if (argc < 2 || !es)
        return throw_type(env, "mcrs addon: setup(McrsError, integerDecoder)");
    if (es->error_ctor)
        napi_delete_reference(env, es->error_ctor);
    if (es->int_decoder)
        napi_delete_reference(env, es->int_decoder);
    CHECK(napi_create_reference(env, argv[0], 1, &es->error_ctor));
    CHECK(napi_create_reference(env, argv[1], 1, &es->int_decoder));
    napi_get_undefined(env, &u);
    return u;
}

static napi_value js_library_version(napi_env env, napi_callback_info info) {
    (void)info;
    napi_value s;
    napi_create_string_utf8(env, mcrs_version(), NAPI_AUTO_LENGTH, &s);
    return s;
}

/* pending(h): requests in flight (tests) */
static napi_value js_pending(napi_env env, napi_callback_info info) {
    ARGS(1);
    (void)ls;
    napi_value n;
    napi_create_double(env, (double)c->inflight, &n);
    return n;
}

/* counters(h) -> flat [server, name, value, ...] of this client's own counters (no I/O) */
static napi_value js_counters(napi_env env, napi_callback_info info) {
    ARGS(1);
    (void)ls;
    mcrs_stats *s = NULL;
    mcrs_status st = mcrs_client_counters(c->client, &s);
    if (st != MCRS_STATUS_OK) {
        napi_throw(env, error_now(env, c->es, OP_STATS, st));
        return NULL;
    }
    napi_value out = stats_flat(env, s, true);
    mcrs_stats_free(s);
    return out;
}

/* ---- environment teardown ------------------------------------------------------------------- */

static void on_env_handle_closed(uv_handle_t *h) {
    env_state *es = h->data;
    if (--es->closing_handles == 0 && es->cleanup) {
        napi_remove_async_cleanup_hook(es->cleanup);
        es->cleanup = NULL;
    }
}

static void env_cleanup(napi_async_cleanup_hook_handle handle, void *arg) {
    env_state *es = arg;
    es->cleanup = handle;
    es->teardown = true;
    es->closing_handles = 2;
    for (client_s *c = es->clients; c; c = c->next) {
        c->torn_down = true;
        if (c->cur && c->cur->loop) {
            c->cur->counted = true;
            es->closing_handles++;
        }
        for (loop_s *x = c->retiring; x; x = x->next_retiring) {
            if (x->loop) {
                x->counted = true;
                es->closing_handles++;
            }
        }
        client_shutdown(c); /* callbacks see es->teardown: nothing touches JS */
        if (c->works == 0 && c->client) {
            mcrs_client_free(c->client);
            c->client = NULL;
        }
    }
    es->clients = NULL;
    uv_close((uv_handle_t *)&es->prepare, on_env_handle_closed);
    uv_close((uv_handle_t *)&es->check, on_env_handle_closed);
}

/* ---- module init ---------------------------------------------------------------------------- */

static napi_value init(napi_env env, napi_value exports) {
    env_state *es = calloc(1, sizeof *es);
    if (!es)
        return throw_type(env, "mcrs: out of memory");
    es->env = env;
    CHECK(napi_get_uv_event_loop(env, &es->uv));
    uv_prepare_init(es->uv, &es->prepare);
    uv_check_init(es->uv, &es->check);
    es->prepare.data = es;
    es->check.data = es;
    uv_prepare_start(&es->prepare, on_prepare);
    uv_check_start(&es->check, on_check);
    uv_unref((uv_handle_t *)&es->prepare);
    uv_unref((uv_handle_t *)&es->check);
    napi_value resource, name;
    CHECK(napi_create_object(env, &resource));
    CHECK(napi_create_reference(env, resource, 1, &es->resource));
    CHECK(napi_create_string_utf8(env, "mcrs", NAPI_AUTO_LENGTH, &name));
    CHECK(napi_async_init(env, resource, name, &es->actx));
    CHECK(napi_set_instance_data(env, es, NULL, NULL));
    CHECK(napi_add_async_cleanup_hook(env, env_cleanup, es, NULL));

    napi_property_descriptor props[] = {
#define FN(n, f) {n, NULL, f, NULL, NULL, NULL, napi_default, NULL}
        FN("setup", js_setup),       FN("create", js_create),       FN("read", js_read),
        FN("getInto", js_get_into),  FN("store", js_store),         FN("cas", js_cas),
        FN("del", js_delete),        FN("touch", js_touch),         FN("arith", js_arith),
        FN("readMany", js_read_many), FN("keysMany", js_keys_many), FN("setMany", js_set_many),
        FN("flushAll", js_flush_all), FN("version", js_version),    FN("stats", js_stats),
        FN("send", js_send),         FN("quit", js_quit),           FN("close", js_close),
        FN("admin", js_admin),       FN("pending", js_pending), FN("counters", js_counters),
        FN("libraryVersion", js_library_version),
        FN("leaseGet", js_lease_get), FN("leaseSet", js_lease_set), FN("invalidate", js_invalidate),
#undef FN
    };
    CHECK(napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
    return exports;
}

NAPI_MODULE_INIT() { return init(env, exports); }
