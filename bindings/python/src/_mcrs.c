/* mcrs._mcrs: the C extension under the mcrs package; one type, Core, whose
 * methods are pymemcache's commands over libmcrs (GIL released around I/O). */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#include "mcrs.h"

/* ---- exceptions (taken from mcrs.exceptions at import) ------------------- */

static PyObject *ExcBase, *ExcClient, *ExcUnknownCmd, *ExcIllegal, *ExcServer, *ExcUnknown,
    *ExcClose;

/* Set when the exception being raised is about a key (checked before any
 * I/O): HashClient's ignore_exc swallows other errors, never those. Read and
 * reset with the GIL held, without releasing it in between. */
static int g_key_err;

static void raise_msg(mcrs_status st, const char *detail) {
    if (st == MCRS_STATUS_INVALID_KEY)
        g_key_err = 1;
    const char *msg = (detail && *detail) ? detail : mcrs_status_str(st);
    PyObject *type = ExcUnknown;
    switch (st) {
    case MCRS_STATUS_INVALID_KEY:
    case MCRS_STATUS_INVALID_ARGUMENT:
        type = ExcIllegal;
        break;
    case MCRS_STATUS_CLIENT_ERROR:
    case MCRS_STATUS_AUTH_FAILED:
        type = ExcClient;
        break;
    case MCRS_STATUS_SERVER_ERROR:
    case MCRS_STATUS_VALUE_TOO_LARGE:
        type = ExcServer;
        break;
    case MCRS_STATUS_UNKNOWN_COMMAND:
        type = ExcUnknownCmd;
        break;
    case MCRS_STATUS_CONNECT_FAILED:
        if (strstr(msg, "refused"))
            type = PyExc_ConnectionRefusedError;
        else if (strstr(msg, "timed out") || strstr(msg, "timeout"))
            type = PyExc_TimeoutError;
        else
            type = PyExc_ConnectionError;
        break;
    case MCRS_STATUS_IO:
        if (strstr(msg, "reset"))
            type = PyExc_ConnectionResetError;
        else if (strstr(msg, "roken pipe"))
            type = PyExc_BrokenPipeError;
        else
            type = PyExc_OSError;
        break;
    case MCRS_STATUS_TIMEOUT:
        type = PyExc_TimeoutError; /* socket.timeout */
        break;
    case MCRS_STATUS_UNEXPECTED_CLOSE:
        type = ExcClose;
        break;
    case MCRS_STATUS_SERVER_DOWN:
    case MCRS_STATUS_TLS:
        type = PyExc_ConnectionError;
        break;
    case MCRS_STATUS_NO_SERVERS:
        type = ExcBase;
        msg = "All servers seem to be down right now";
        break;
    case MCRS_STATUS_CANCELLED:
        type = ExcBase;
        break;
    default:
        type = ExcUnknown;
    }
    PyErr_SetString(type, msg);
}

/* Raises the exception of `st` with this thread's last error detail. */
static void raise_status(mcrs_status st) {
    char buf[512];
    buf[0] = 0;
    mcrs_last_error(buf, sizeof buf);
    raise_msg(st, buf);
}

static PyObject *illegal(const char *fmt, PyObject *o) {
    PyErr_Format(ExcIllegal, fmt, o);
    return NULL;
}

/* ---- the Core type -------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    mcrs_client *client;
    mcrs_client **retired; /* clients replaced by _configure, freed at dealloc */
    size_t n_retired;
    PyObject *serializer;   /* callable or NULL */
    PyObject *deserializer; /* callable or NULL */
    PyObject *encoding;     /* str */
    PyObject *key_prefix;   /* bytes */
    char default_noreply;
    char ignore_exc;
    char hash_mode; /* HashClient results: failures give the command's default */
    char allow_unicode;
    char pooled; /* PooledClient: ignore_exc swallows every error of a read */
} Core;

static PyObject *Core_new(PyTypeObject *type, PyObject *args, PyObject *kw) {
    (void)args;
    (void)kw;
    Core *self = (Core *)type->tp_alloc(type, 0);
    if (!self)
        return NULL;
    self->default_noreply = 1;
    self->encoding = PyUnicode_FromString("ascii");
    self->key_prefix = PyBytes_FromStringAndSize("", 0);
    if (!self->encoding || !self->key_prefix) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

static int Core_traverse(Core *self, visitproc visit, void *arg) {
    Py_VISIT(self->serializer);
    Py_VISIT(self->deserializer);
    return 0;
}

static int Core_clear(Core *self) {
    Py_CLEAR(self->serializer);
    Py_CLEAR(self->deserializer);
    return 0;
}

static void Core_dealloc(Core *self) {
    PyObject_GC_UnTrack(self);
    if (self->client) {
        mcrs_client *c = self->client;
        self->client = NULL;
        Py_BEGIN_ALLOW_THREADS
        mcrs_client_free(c);
        Py_END_ALLOW_THREADS
    }
    for (size_t i = 0; i < self->n_retired; i++)
        mcrs_client_free(self->retired[i]);
    PyMem_Free(self->retired);
    Core_clear(self);
    Py_CLEAR(self->encoding);
    Py_CLEAR(self->key_prefix);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int ensure_client(Core *self) {
    if (self->client)
        return 0;
    PyErr_SetString(ExcBase, "mcrs client is not configured (was __init__ called?)");
    return -1;
}

/* ---- argument helpers ----------------------------------------------------- */

/* Vectorcall argument parsing: out[i] = the i-th parameter or NULL. */
static int parse(const char *fname, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
                 const char *const *names, int nmax, int nreq, PyObject **out) {
    for (int i = 0; i < nmax; i++)
        out[i] = NULL;
    if (nargs > nmax) {
        PyErr_Format(PyExc_TypeError, "%s() takes at most %d arguments (%zd given)", fname, nmax,
                     nargs);
        return -1;
    }
    for (Py_ssize_t i = 0; i < nargs; i++)
        out[i] = args[i];
    if (kwnames) {
        Py_ssize_t nk = PyTuple_GET_SIZE(kwnames);
        for (Py_ssize_t j = 0; j < nk; j++) {
            PyObject *name = PyTuple_GET_ITEM(kwnames, j);
            int idx = -1;
            for (int i = 0; i < nmax; i++) {
                if (PyUnicode_CompareWithASCIIString(name, names[i]) == 0) {
                    idx = i;
                    break;
                }
            }
            if (idx < 0) {
                PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument '%U'",
                             fname, name);
                return -1;
            }
            if (out[idx]) {
                PyErr_Format(PyExc_TypeError, "%s() got multiple values for argument '%s'",
                             fname, names[idx]);
                return -1;
            }
            out[idx] = args[nargs + j];
        }
    }
    for (int i = 0; i < nreq; i++) {
        if (!out[i]) {
            PyErr_Format(PyExc_TypeError, "%s() missing required argument '%s'", fname,
                         names[i]);
            return -1;
        }
    }
    return 0;
}

/* A key's bytes, borrowed from the key object (str or bytes). */
static inline int key_of(Core *self, PyObject *key, const uint8_t **p, size_t *n) {
    if (PyUnicode_Check(key)) {
        if (PyUnicode_IS_COMPACT_ASCII(key)) {
            *p = (const uint8_t *)PyUnicode_DATA(key);
            *n = (size_t)PyUnicode_GET_LENGTH(key);
            return 0;
        }
        if (!self->allow_unicode && !PyUnicode_IS_ASCII(key)) {
            g_key_err = 1;
            illegal("Non-ASCII key: %R", key);
            return -1;
        }
        Py_ssize_t len;
        const char *s = PyUnicode_AsUTF8AndSize(key, &len);
        if (!s) {
            g_key_err = 1;
            return -1;
        }
        *p = (const uint8_t *)s;
        *n = (size_t)len;
        return 0;
    }
    if (PyBytes_Check(key)) {
        *p = (const uint8_t *)PyBytes_AS_STRING(key);
        *n = (size_t)PyBytes_GET_SIZE(key);
        return 0;
    }
    g_key_err = 1;
    PyErr_Format(PyExc_TypeError, "key must be str or bytes, not %.100s", Py_TYPE(key)->tp_name);
    return -1;
}

/* expire/delay: an int; negative means "already expired" (as memcached
 * treats a negative exptime): sent as an absolute time in the past. */
static int parse_expire(PyObject *o, const char *name, uint32_t *out) {
    *out = 0;
    if (!o)
        return 0;
    if (!PyLong_Check(o)) {
        PyErr_Format(ExcIllegal, "%s must be integer, got bad value: %R", name, o);
        return -1;
    }
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
    if (v == -1 && PyErr_Occurred())
        return -1;
    if (overflow > 0 || v > INT32_MAX) {
        PyErr_Format(ExcIllegal, "%s is too large: %R", name, o);
        return -1;
    }
    *out = (overflow < 0 || v < 0) ? 2592001u : (uint32_t)v;
    return 0;
}

static int parse_u32(PyObject *o, const char *name, uint32_t *out) {
    if (!PyLong_Check(o)) {
        PyErr_Format(ExcIllegal, "%s must be integer, got bad value: %R", name, o);
        return -1;
    }
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
    if (v == -1 && PyErr_Occurred())
        return -1;
    if (overflow || v < 0 || v > (long long)UINT32_MAX) {
        PyErr_Format(ExcIllegal, "%s must be in 0..4294967295, got %R", name, o);
        return -1;
    }
    *out = (uint32_t)v;
    return 0;
}

static inline mcrs_noreply noreply_of(Core *self, PyObject *o, int dflt_is_config) {
    if (!o || o == Py_None)
        return (dflt_is_config && self->default_noreply) ? MCRS_NOREPLY_ON : MCRS_NOREPLY_OFF;
    int t = PyObject_IsTrue(o);
    return t > 0 ? MCRS_NOREPLY_ON : MCRS_NOREPLY_OFF;
}

/* Whether a failure becomes the command's default result. */
static inline int ignorable(Core *self, mcrs_status st, int is_read) {
    if (st == MCRS_STATUS_INVALID_KEY || st == MCRS_STATUS_INVALID_ARGUMENT)
        return self->pooled && self->ignore_exc && is_read;
    if (st == MCRS_STATUS_NULL_POINTER || st == MCRS_STATUS_PANIC)
        return 0;
    /* pymemcache's HashClient answers with the default while a failed server
     * waits for its retry */
    if (self->hash_mode && st == MCRS_STATUS_SERVER_DOWN)
        return 1;
    if (!self->ignore_exc)
        return 0;
    return self->hash_mode || is_read;
}

/* A read that raised a Python exception (`input`: while checking its
 * arguments, else e.g. in the deserializer): with ignore_exc, pymemcache
 * gives the default instead, except for bad input to Client and HashClient
 * (their key checks run outside the try). Returns whether to swallow it. */
static inline int swallow(Core *self, int input) {
    if (self->ignore_exc && (self->pooled || !input) && PyErr_ExceptionMatches(PyExc_Exception)) {
        PyErr_Clear();
        return 1;
    }
    return 0;
}

static inline PyObject *newref(PyObject *o) {
    Py_INCREF(o);
    return o;
}

static PyObject *fail(Core *self, mcrs_status st, int is_read, PyObject *dflt) {
    if (ignorable(self, st, is_read)) {
        Py_INCREF(dflt);
        return dflt;
    }
    raise_status(st);
    return NULL;
}

/* ---- values --------------------------------------------------------------- */

static PyObject *make_value(Core *self, PyObject *key, const mcrs_value *v) {
    PyObject *b =
        PyBytes_FromStringAndSize((const char *)mcrs_value_data(v), (Py_ssize_t)mcrs_value_len(v));
    if (!b || !self->deserializer)
        return b;
    PyObject *flags = PyLong_FromUnsignedLong(mcrs_value_flags(v));
    if (!flags) {
        Py_DECREF(b);
        return NULL;
    }
    PyObject *args[3] = {key, b, flags};
    PyObject *fn = newref(self->deserializer); /* _configure may replace it meanwhile */
    PyObject *r = PyObject_Vectorcall(fn, args, 3, NULL);
    Py_DECREF(fn);
    Py_DECREF(b);
    Py_DECREF(flags);
    return r;
}

static PyObject *cas_bytes(uint64_t cas) {
    char buf[24];
    int n = snprintf(buf, sizeof buf, "%llu", (unsigned long long)cas);
    return PyBytes_FromStringAndSize(buf, n);
}

static PyObject *pair(PyObject *a, PyObject *b) {
    /* steals both */
    if (!a || !b) {
        Py_XDECREF(a);
        Py_XDECREF(b);
        return NULL;
    }
    PyObject *t = PyTuple_New(2);
    if (!t) {
        Py_DECREF(a);
        Py_DECREF(b);
        return NULL;
    }
    PyTuple_SET_ITEM(t, 0, a);
    PyTuple_SET_ITEM(t, 1, b);
    return t;
}

/* The stored bytes (new reference) and flags of `value`, through the serde. */
static PyObject *serialize(Core *self, const uint8_t *kp, size_t kn, PyObject *value,
                           PyObject *flags_override, uint32_t *flags) {
    PyObject *data;
    uint32_t f = 0;
    if (self->serializer) {
        /* pymemcache passes the checked key: bytes with the prefix */
        Py_ssize_t pl = PyBytes_GET_SIZE(self->key_prefix);
        PyObject *pk = PyBytes_FromStringAndSize(NULL, pl + (Py_ssize_t)kn);
        if (!pk)
            return NULL;
        memcpy(PyBytes_AS_STRING(pk), PyBytes_AS_STRING(self->key_prefix), (size_t)pl);
        memcpy(PyBytes_AS_STRING(pk) + pl, kp, kn);
        PyObject *args[2] = {pk, value};
        PyObject *fn = newref(self->serializer); /* _configure may replace it meanwhile */
        PyObject *r = PyObject_Vectorcall(fn, args, 2, NULL);
        Py_DECREF(fn);
        Py_DECREF(pk);
        if (!r)
            return NULL;
        PyObject *seq = PySequence_Fast(r, "serializer must return a (value, flags) pair");
        Py_DECREF(r);
        if (!seq)
            return NULL;
        if (PySequence_Fast_GET_SIZE(seq) != 2) {
            Py_DECREF(seq);
            PyErr_SetString(PyExc_ValueError, "serializer must return a (value, flags) pair");
            return NULL;
        }
        data = PySequence_Fast_GET_ITEM(seq, 0);
        Py_INCREF(data);
        if (!flags_override || flags_override == Py_None) {
            if (parse_u32(PySequence_Fast_GET_ITEM(seq, 1), "flags", &f) < 0) {
                Py_DECREF(seq);
                Py_DECREF(data);
                return NULL;
            }
        }
        Py_DECREF(seq);
    } else {
        data = value;
        Py_INCREF(data);
    }
    if (flags_override && flags_override != Py_None) {
        if (parse_u32(flags_override, "flags", &f) < 0) {
            Py_DECREF(data);
            return NULL;
        }
    }
    if (!PyBytes_Check(data)) {
        PyObject *s = PyObject_Str(data);
        Py_DECREF(data);
        if (!s)
            return NULL;
        data = PyUnicode_AsEncodedString(s, PyUnicode_AsUTF8(self->encoding), "strict");
        Py_DECREF(s);
        if (!data) {
            if (PyErr_ExceptionMatches(PyExc_UnicodeError)) {
                PyObject *t, *v, *tb;
                PyErr_Fetch(&t, &v, &tb);
                PyErr_NormalizeException(&t, &v, &tb);
                PyErr_Format(ExcIllegal, "Data values must be binary-safe: %S", v);
                Py_XDECREF(t);
                Py_XDECREF(v);
                Py_XDECREF(tb);
            }
            return NULL;
        }
    }
    *flags = f;
    return data;
}

/* ---- single-key reads ----------------------------------------------------- */

typedef mcrs_status (*get_fn)(const mcrs_client *, const uint8_t *, size_t, mcrs_value **);


/* The result of a one-key read: the decoded value (v is freed), `dflt` for a
   miss, or the failure (swallowed into `dflt` as ignore_exc says). */
static PyObject *read_result(Core *self, PyObject *key, mcrs_status st, mcrs_value *v,
                             PyObject *dflt) {
    if (st == MCRS_STATUS_OK) {
        PyObject *r = make_value(self, key, v);
        mcrs_value_free(v);
        if (!r && swallow(self, 0))
            return newref(dflt);
        return r;
    }
    if (st == MCRS_STATUS_NOT_FOUND) {
        Py_INCREF(dflt);
        return dflt;
    }
    return fail(self, st, 1, dflt);
}

static PyObject *do_get(Core *self, PyObject *key, PyObject *dflt, get_fn fn) {
    const uint8_t *kp;
    size_t kn;
    if (ensure_client(self) < 0)
        return NULL;
    if (key_of(self, key, &kp, &kn) < 0)
        return swallow(self, 1) ? newref(dflt) : NULL;
    mcrs_value *v = NULL;
    mcrs_status st;
    Py_BEGIN_ALLOW_THREADS
    st = fn(self->client, kp, kn, &v);
    Py_END_ALLOW_THREADS
    return read_result(self, key, st, v, dflt);
}

static PyObject *Core_get(Core *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kw) {
    static const char *const names[] = {"key", "default"};
    PyObject *a[2];
    if (parse("get", args, nargs, kw, names, 2, 1, a) < 0)
        return NULL;
    return do_get(self, a[0], a[1] ? a[1] : Py_None, mcrs_client_get);
}

static PyObject *gets_result(Core *self, PyObject *key, mcrs_status st, mcrs_value *v,
                             PyObject *dflt, PyObject *cas_dflt) {
    if (st == MCRS_STATUS_OK) {
        PyObject *r = pair(make_value(self, key, v), cas_bytes(mcrs_value_cas(v)));
        mcrs_value_free(v);
        if (r || !swallow(self, 0))
            return r;
        st = MCRS_STATUS_SERVER_ERROR; /* swallowed: the failure default below */
    }
    if (st == MCRS_STATUS_NOT_FOUND || ignorable(self, st, 1)) {
        if (st != MCRS_STATUS_NOT_FOUND && self->hash_mode)
            Py_RETURN_NONE; /* HashClient's default for a failed gets */
        Py_INCREF(dflt);
        Py_INCREF(cas_dflt);
        return pair(dflt, cas_dflt);
    }
    raise_status(st);
    return NULL;
}

static PyObject *Core_gets(Core *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kw) {
    static const char *const names[] = {"key", "default", "cas_default"};
    PyObject *a[3];
    if (parse("gets", args, nargs, kw, names, 3, 1, a) < 0)
        return NULL;
    const uint8_t *kp;
    size_t kn;
    if (ensure_client(self) < 0)
        return NULL;
    if (key_of(self, a[0], &kp, &kn) < 0) {
        if (!swallow(self, 1))
            return NULL;
        return gets_result(self, a[0], MCRS_STATUS_SERVER_ERROR, NULL, a[1] ? a[1] : Py_None,
                           a[2] ? a[2] : Py_None);
    }
    mcrs_value *v = NULL;
    mcrs_status st;
    Py_BEGIN_ALLOW_THREADS
    st = mcrs_client_gets(self->client, kp, kn, &v);
    Py_END_ALLOW_THREADS
    return gets_result(self, a[0], st, v, a[1] ? a[1] : Py_None, a[2] ? a[2] : Py_None);
}

static PyObject *Core_gat(Core *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kw) {
    static const char *const names[] = {"key", "expire", "default"};
    PyObject *a[3];
    if (parse("gat", args, nargs, kw, names, 3, 1, a) < 0)
        return NULL;
    const uint8_t *kp;
    size_t kn;
    uint32_t exp;
    if (ensure_client(self) < 0 || key_of(self, a[0], &kp, &kn) < 0 ||
        parse_expire(a[1], "expire", &exp) < 0)
        return NULL;
    PyObject *dflt = a[2] ? a[2] : Py_None;
    mcrs_value *v = NULL;
    mcrs_status st;
    Py_BEGIN_ALLOW_THREADS
    st = mcrs_client_gat(self->client, kp, kn, exp, &v);
    Py_END_ALLOW_THREADS
    return read_result(self, a[0], st, v, dflt);
}

static PyObject *Core_gats(Core *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kw) {
    static const char *const names[] = {"key", "expire", "default", "cas_default"};
    PyObject *a[4];
    if (parse("gats", args, nargs, kw, names, 4, 1, a) < 0)
        return NULL;
    const uint8_t *kp;
    size_t kn;
    uint32_t exp;
    if (ensure_client(self) < 0 || key_of(self, a[0], &kp, &kn) < 0 ||
        parse_expire(a[1], "expire", &exp) < 0)
        return NULL;
    mcrs_value *v = NULL;
    mcrs_status st;
    Py_BEGIN_ALLOW_THREADS
    st = mcrs_client_gats(self->client, kp, kn, exp, &v);
    Py_END_ALLOW_THREADS
    return gets_result(self, a[0], st, v, a[2] ? a[2] : Py_None, a[3] ? a[3] : Py_None);
}

/* ---- key lists ------------------------------------------------------------ */

#define STACK_KEYS 128

typedef struct {
    PyObject *seq; /* a tuple holding the key objects */
    Py_ssize_t n;
    const uint8_t **p;
    size_t *len;
    const uint8_t *p_stack[STACK_KEYS];
    size_t len_stack[STACK_KEYS];
} keylist;

static void keylist_free(keylist *kl) {
    if (kl->p != kl->p_stack)
        PyMem_Free((void *)kl->p);
    if (kl->len != kl->len_stack)
        PyMem_Free(kl->len);
    Py_CLEAR(kl->seq);
}

static int keylist_alloc(keylist *kl, Py_ssize_t n) {
    kl->n = n;
    if (n <= STACK_KEYS) {
        kl->p = kl->p_stack;
        kl->len = kl->len_stack;
        return 0;
    }
    kl->p = PyMem_Malloc((size_t)n * sizeof *kl->p);
    kl->len = PyMem_Malloc((size_t)n * sizeof *kl->len);
    if (!kl->p || !kl->len) {
        if (kl->p == NULL)
            kl->p = kl->p_stack;
        if (kl->len == NULL)
            kl->len = kl->len_stack;
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

/* The keys of an iterable, copied into a tuple (another thread may change a
 * list while the GIL is released; a tuple keeps its keys alive). */
static int keylist_init(Core *self, keylist *kl, PyObject *keys) {
    kl->p = kl->p_stack;
    kl->len = kl->len_stack;
    kl->seq = PySequence_Tuple(keys);
    if (!kl->seq)
        return -1;
    if (keylist_alloc(kl, PyTuple_GET_SIZE(kl->seq)) < 0)
        return -1;
    for (Py_ssize_t i = 0; i < kl->n; i++) {
        if (key_of(self, PyTuple_GET_ITEM(kl->seq, i), &kl->p[i], &kl->len[i]) < 0)
            return -1;
    }
    return 0;
}

typedef mcrs_status (*many_fn)(const mcrs_client *, const uint8_t *const *, const size_t *,
                               size_t, mcrs_values **);

static PyObject *do_get_many(Core *self, PyObject *keys, int with_cas) {
    if (ensure_client(self) < 0)
        return NULL;
    keylist kl;
    if (keylist_init(self, &kl, keys) < 0) {
        keylist_free(&kl);
        return swallow(self, 1) ? PyDict_New() : NULL;
    }
    PyObject *out = PyDict_New();
    if (!out || kl.n == 0) {
        keylist_free(&kl);
        return out;
    }
    many_fn fn = with_cas ? mcrs_client_gets_many : mcrs_client_get_many;
    mcrs_values *vs = NULL;
    mcrs_status st;
    Py_BEGIN_ALLOW_THREADS
    st = fn(self->client, kl.p, kl.len, (size_t)kl.n, &vs);
    Py_END_ALLOW_THREADS
    if (st != MCRS_STATUS_OK && st != MCRS_STATUS_PARTIAL) {
        keylist_free(&kl);
        if (ignorable(self, st, 1))
            return out;
        Py_DECREF(out);
        raise_status(st);
        return NULL;
    }
    int partial = st == MCRS_STATUS_PARTIAL;
    for (Py_ssize_t i = 0; i < kl.n; i++) {
        const mcrs_value *v = mcrs_values_get(vs, (size_t)i);
        PyObject *key = PyTuple_GET_ITEM(kl.seq, i);
        if (v) {
            PyObject *val = make_value(self, key, v);
            if (val && with_cas)
                val = pair(val, cas_bytes(mcrs_value_cas(v)));
            if (!val || PyDict_SetItem(out, key, val) < 0) {
                Py_XDECREF(val);
                if (!val && swallow(self, 0)) {
                    /* pymemcache: the whole read gives {} */
                    mcrs_values_free(vs);
                    keylist_free(&kl);
                    Py_DECREF(out);
                    return PyDict_New();
                }
                goto error;
            }
            Py_DECREF(val);
        } else if (partial) {
            mcrs_status ks = mcrs_values_status(vs, (size_t)i);
            if (ks != MCRS_STATUS_NOT_FOUND && ks != MCRS_STATUS_OK && !ignorable(self, ks, 1)) {
                char buf[512];
                buf[0] = 0;
                mcrs_values_error(vs, (size_t)i, buf, sizeof buf);
                raise_msg(ks, buf);
                goto error;
            }
        }
    }
    mcrs_values_free(vs);
    keylist_free(&kl);
    return out;
error:
    mcrs_values_free(vs);
    keylist_free(&kl);
    Py_DECREF(out);
    return NULL;
}

static PyObject *Core_get_many(Core *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kw) {
    static const char *const names[] = {"keys"};
    PyObject *a[1];
    if (parse("get_many", args, nargs, kw, names, 1, 1, a) < 0)
        return NULL;
    return do_get_many(self, a[0], 0);
}

static PyObject *Core_gets_many(Core *self, PyObject *const *args, Py_ssize_t nargs,
                                PyObject *kw) {
    static const char *const names[] = {"keys"};
    PyObject *a[1];
    if (parse("gets_many", args, nargs, kw, names, 1, 1, a) < 0)
        return NULL;
    return do_get_many(self, a[0], 1);
}

/* ---- storage -------------------------------------------------------------- */

typedef mcrs_status (*store_fn)(const mcrs_client *, const uint8_t *, size_t, const uint8_t *,
                                size_t, uint32_t, uint32_t, mcrs_noreply);

static PyObject *do_store(Core *self, const char *fname, store_fn fn, PyObject *const *args,
                          Py_ssize_t nargs, PyObject *kw) {
    static const char *const names[] = {"key", "value", "expire", "noreply", "flags"};
    PyObject *a[5];
    if (parse(fname, args, nargs, kw, names, 5, 2, a) < 0)
        return NULL;
    const uint8_t *kp;
    size_t kn;
    uint32_t exp, flags;
    if (ensure_client(self) < 0 || key_of(self, a[0], &kp, &kn) < 0 ||
        parse_expire(a[2], "expire", &exp) < 0)
        return NULL;
    mcrs_noreply nr = noreply_of(self, a[3], 1);
    PyObject *data = serialize(self, kp, kn, a[1], a[4], &flags);
    if (!data)
        return NULL;
    mcrs_status st;
    Py_BEGIN_ALLOW_THREADS
    st = fn(self->client, kp, kn, (const uint8_t *)PyBytes_AS_STRING(data),
            (size_t)PyBytes_GET_SIZE(data), flags, exp, nr);
    Py_END_ALLOW_THREADS
    Py_DECREF(data);
    if (st == MCRS_STATUS_OK)
        Py_RETURN_TRUE;
    if (st == MCRS_STATUS_NOT_STORED)
        Py_RETURN_FALSE;
    return fail(self, st, 0, Py_False);
}

#define STORE(name)                                                                             \
    static PyObject *name##_impl(Core *self, PyObject *const *args, Py_ssize_t nargs,          \
                                 PyObject *kw) {                                                \
        return do_store(self, #name, mcrs_client_##name, args, nargs, kw);                      \
    }
STORE(set)
STORE(add)
STORE(replace)
STORE(append)
STORE(prepend)

static int parse_cas(PyObject *o, uint64_t *out) {
    if (PyLong_Check(o)) {
        unsigned long long v = PyLong_AsUnsignedLongLong(o);
        if (v == (unsigned long long)-1 && PyErr_Occurred()) {
            PyErr_Clear();
            illegal("cas must only contain values in 0-9, got bad value: %R", o);
            return -1;
        }
        *out = v;
        return 0;
    }
    const char *s;
    Py_ssize_t n;
    if (PyBytes_Check(o)) {
        s = PyBytes_AS_STRING(o);
        n = PyBytes_GET_SIZE(o);
    } else if (PyUnicode_Check(o)) {
        s = PyUnicode_AsUTF8AndSize(o, &n);
        if (!s)
            return -1;
    } else {
        illegal("cas must be integer, string, or bytes, got bad value: %R", o);
        return -1;
    }
    uint64_t v = 0;
    if (n == 0 || n > 20)
        goto bad;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            goto bad;
        uint64_t d = (uint64_t)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            goto bad;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
bad:
    illegal("cas must only contain values in 0-9, got bad value: %R", o);
    return -1;
}

static PyObject *cas_impl(Core *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kw) {
    static const char *const names[] = {"key", "value", "cas", "expire", "noreply", "flags"};
    PyObject *a[6];
    if (parse("cas", args, nargs, kw, names, 6, 3, a) < 0)
        return NULL;
    const uint8_t *kp;
    size_t kn;
    uint32_t exp, flags;
    uint64_t cas;
    if (ensure_client(self) < 0 || key_of(self, a[0], &kp, &kn) < 0 ||
        parse_cas(a[2], &cas) < 0 || parse_expire(a[3], "expire", &exp) < 0)
        return NULL;
    mcrs_noreply nr = noreply_of(self, a[4], 0);
    PyObject *data = serialize(self, kp, kn, a[1], a[5], &flags);
    if (!data)
        return NULL;
    mcrs_status st;
    Py_BEGIN_ALLOW_THREADS
    st = mcrs_client_cas(self->client, kp, kn, (const uint8_t *)PyBytes_AS_STRING(data),
                         (size_t)PyBytes_GET_SIZE(data), flags, exp, cas, nr);
    Py_END_ALLOW_THREADS
    Py_DECREF(data);
    if (st == MCRS_STATUS_OK)
        Py_RETURN_TRUE;
    if (st == MCRS_STATUS_EXISTS)
        Py_RETURN_FALSE;
    if (st == MCRS_STATUS_NOT_FOUND)
        Py_RETURN_NONE;
    return fail(self, st, 0, Py_False);
}

static PyObject *set_many_impl(Core *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kw) {
    static const char *const names[] = {"values", "expire", "noreply", "flags"};
    PyObject *a[4];
    if (parse("set_many", args, nargs, kw, names, 4, 1, a) < 0)
        return NULL;
    uint32_t exp;
    if (ensure_client(self) < 0 || parse_expire(a[1], "expire", &exp) < 0)
        return NULL;
    mcrs_noreply nr = noreply_of(self, a[2], 1);
    PyObject *items = PyMapping_Items(a[0]);
    if (!items)
        return NULL;
    Py_ssize_t n = PyList_GET_SIZE(items);
    PyObject *failed = PyList_New(0);
    if (!failed || n == 0) {
        Py_DECREF(items);
        return failed;
    }
    keylist kl;
    kl.p = kl.p_stack;
    kl.len = kl.len_stack;
    kl.seq = NULL;
    PyObject **data = PyMem_Calloc((size_t)n, sizeof *data);
    const uint8_t **vp = PyMem_Malloc((size_t)n * sizeof *vp);
    size_t *vl = PyMem_Malloc((size_t)n * sizeof *vl);
    uint32_t *fl = PyMem_Malloc((size_t)n * sizeof *fl);
    mcrs_status *sts = PyMem_Malloc((size_t)n * sizeof *sts);
    PyObject *result = NULL;
    if (!data || !vp || !vl || !fl || !sts) {
        PyErr_NoMemory();
        goto done;
    }
    if (keylist_alloc(&kl, n) < 0)
        goto done;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyList_GET_ITEM(items, i);
        if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 2) {
            PyErr_SetString(PyExc_TypeError, "set_many: items() must give (key, value) pairs");
            goto done;
        }
        if (key_of(self, PyTuple_GET_ITEM(item, 0), &kl.p[i], &kl.len[i]) < 0)
            goto done;
        data[i] = serialize(self, kl.p[i], kl.len[i], PyTuple_GET_ITEM(item, 1), a[3], &fl[i]);
        if (!data[i])
            goto done;
        vp[i] = (const uint8_t *)PyBytes_AS_STRING(data[i]);
        vl[i] = (size_t)PyBytes_GET_SIZE(data[i]);
    }
    mcrs_status st;
    Py_BEGIN_ALLOW_THREADS
    st = mcrs_client_set_many_results(self->client, kl.p, kl.len, vp, vl, fl, (size_t)n, exp, nr,
                                      sts);
    Py_END_ALLOW_THREADS
    if (st != MCRS_STATUS_OK && st != MCRS_STATUS_NOT_STORED && st != MCRS_STATUS_PARTIAL) {
        if (!ignorable(self, st, 0)) {
            raise_status(st);
            goto done;
        }
        for (Py_ssize_t i = 0; i < n; i++)
            sts[i] = MCRS_STATUS_NOT_STORED;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        mcrs_status s = sts[i];
        if (s == MCRS_STATUS_OK)
            continue;
        if (s != MCRS_STATUS_NOT_STORED && !ignorable(self, s, 0)) {
            raise_status(s);
            goto done;
        }
        if (PyList_Append(failed, PyTuple_GET_ITEM(PyList_GET_ITEM(items, i), 0)) < 0)
            goto done;
    }
    result = failed;
    failed = NULL;
done:
    if (data) {
        for (Py_ssize_t i = 0; i < n; i++)
            Py_XDECREF(data[i]);
    }
    PyMem_Free(data);
    PyMem_Free((void *)vp);
    PyMem_Free(vl);
    PyMem_Free(fl);
    PyMem_Free(sts);
    keylist_free(&kl);
    Py_DECREF(items);
    Py_XDECREF(failed);
    return result;
}

/* ---- delete, touch, incr/decr --------------------------------------------- */

static PyObject *delete_impl(Core *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kw) {
    static const char *const names[] = {"key", "noreply"};
    PyObject *a[2];
    if (parse("delete", args, nargs, kw, names, 2, 1, a) < 0)
        return NULL;
    const uint8_t *kp;
    size_t kn;
    if (ensure_client(self) < 0 || key_of(self, a[0], &kp, &kn) < 0)
        return NULL;
    mcrs_noreply nr = noreply_of(self, a[1], 1);
    mcrs_status st;
    Py_BEGIN_ALLOW_THREADS
    st = mcrs_client_delete(self->client, kp, kn, nr);
    Py_END_ALLOW_THREADS
    if (st == MCRS_STATUS_OK)
        Py_RETURN_TRUE;
    if (st == MCRS_STATUS_NOT_FOUND)
        Py_RETURN_FALSE;
    return fail(self, st, 0, Py_False);
}

static PyObject *delete_many_impl(Core *self, PyObject *const *args, Py_ssize_t nargs,
                                  PyObject *kw) {
    static const char *const names[] = {"keys", "noreply"};
    PyObject *a[2];
    if (parse("delete_many", args, nargs, kw, names, 2, 1, a) < 0)
        return NULL;
    if (ensure_client(self) < 0)
        return NULL;
    keylist kl;
    if (keylist_init(self, &kl, a[0]) < 0) {
        keylist_free(&kl);
        return NULL;
    }
    if (kl.n == 0) {
        keylist_free(&kl);
        Py_RETURN_TRUE;
    }
    mcrs_noreply nr = noreply_of(self, a[1], 1);
    mcrs_status *sts = PyMem_Malloc((size_t)kl.n * sizeof *sts);
    if (!sts) {
        keylist_free(&kl);
        return PyErr_NoMemory();
    }
    mcrs_status st;
    Py_BEGIN_ALLOW_THREADS
    st = mcrs_client_delete_many_results(self->client, kl.p, kl.len, (size_t)kl.n, nr, sts);
    Py_END_ALLOW_THREADS
    PyObject *r = Py_True;
    if (st == MCRS_STATUS_PARTIAL) {
        for (Py_ssize_t i = 0; i < kl.n; i++) {
            if (sts[i] != MCRS_STATUS_OK && sts[i] != MCRS_STATUS_NOT_FOUND &&
                !ignorable(self, sts[i], 0)) {
                raise_status(sts[i]);
                r = NULL;
                break;
            }
        }
    } else if (st != MCRS_STATUS_OK && st != MCRS_STATUS_NOT_FOUND && !ignorable(self, st, 0)) {
        raise_status(st);
        r = NULL;
    }
    PyMem_Free(sts);
    keylist_free(&kl);
    Py_XINCREF(r);
    return r;
}

static PyObject *touch_impl(Core *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kw) {
    static const char *const names[] = {"key", "expire", "noreply"};
    PyObject *a[3];
    if (parse("touch", args, nargs, kw, names, 3, 1, a) < 0)
        return NULL;
    const uint8_t *kp;
    size_t kn;
    uint32_t exp;
    if (ensure_client(self) < 0 || key_of(self, a[0], &kp, &kn) < 0 ||
        parse_expire(a[1], "expire", &exp) < 0)
        return NULL;
    mcrs_noreply nr = noreply_of(self, a[2], 1);
    mcrs_status st;
    Py_BEGIN_ALLOW_THREADS
    st = mcrs_client_touch(self->client, kp, kn, exp, nr);
    Py_END_ALLOW_THREADS
    if (st == MCRS_STATUS_OK)
        Py_RETURN_TRUE;
    if (st == MCRS_STATUS_NOT_FOUND)
        Py_RETURN_FALSE;
    return fail(self, st, 0, Py_False);
}

typedef mcrs_status (*arith_fn)(const mcrs_client *, const uint8_t *, size_t, uint64_t,
                                mcrs_noreply, uint64_t *);

static PyObject *do_arith(Core *self, const char *fname, arith_fn fn, PyObject *const *args,
                          Py_ssize_t nargs, PyObject *kw) {
    static const char *const names[] = {"key", "value", "noreply"};
    PyObject *a[3];
    if (parse(fname, args, nargs, kw, names, 3, 2, a) < 0)
        return NULL;
    const uint8_t *kp;
    size_t kn;
    if (ensure_client(self) < 0 || key_of(self, a[0], &kp, &kn) < 0)
        return NULL;
    if (!PyLong_Check(a[1]))
        return illegal("value must be integer, got bad value: %R", a[1]);
    unsigned long long delta = PyLong_AsUnsignedLongLong(a[1]);
    if (delta == (unsigned long long)-1 && PyErr_Occurred()) {
        PyErr_Clear();
        /* what memcached answers to a negative or oversized delta */
        PyErr_SetString(ExcClient, "invalid numeric delta argument");
        return NULL;
    }
    mcrs_noreply nr = noreply_of(self, a[2], 0);
    uint64_t out = 0;
    mcrs_status st;
    Py_BEGIN_ALLOW_THREADS
    st = fn(self->client, kp, kn, (uint64_t)delta, nr, &out);
    Py_END_ALLOW_THREADS
    if (st == MCRS_STATUS_OK) {
        if (nr == MCRS_NOREPLY_ON)
            Py_RETURN_NONE;
        return PyLong_FromUnsignedLongLong(out);
    }
    if (st == MCRS_STATUS_NOT_FOUND)
        Py_RETURN_NONE;
    return fail(self, st, 0, Py_False);
}

static PyObject *incr_impl(Core *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kw) {
    return do_arith(self, "incr", mcrs_client_incr, args, nargs, kw);
}

static PyObject *decr_impl(Core *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kw) {
    return do_arith(self, "decr", mcrs_client_decr, args, nargs, kw);
}

/* ---- server-wide commands ------------------------------------------------- */

static PyObject *flush_all_impl(Core *self, PyObject *const *args, Py_ssize_t nargs,
                                PyObject *kw) {
    static const char *const names[] = {"delay", "noreply"};
    PyObject *a[2];
    if (parse("flush_all", args, nargs, kw, names, 2, 0, a) < 0)
        return NULL;
    uint32_t delay;
    if (ensure_client(self) < 0 || parse_expire(a[0], "delay", &delay) < 0)
        return NULL;
    mcrs_noreply nr = noreply_of(self, a[1], 1);
    mcrs_status st;
    Py_BEGIN_ALLOW_THREADS
    st = mcrs_client_flush_all(self->client, delay, nr);
    Py_END_ALLOW_THREADS
    if (st == MCRS_STATUS_OK)
        Py_RETURN_TRUE;
    return fail(self, st, 0, Py_False);
}

static PyObject *Core_version(Core *self, PyObject *unused) {
    (void)unused;
    if (ensure_client(self) < 0)
        return NULL;
    char buf[256];
    mcrs_status st;
    Py_BEGIN_ALLOW_THREADS
    st = mcrs_client_version(self->client, buf, sizeof buf);
    Py_END_ALLOW_THREADS
    if (st != MCRS_STATUS_OK) {
        raise_status(st);
        return NULL;
    }
    return PyBytes_FromString(buf);
}

static PyObject *Core_cache_memlimit(Core *self, PyObject *arg) {
    uint32_t mb;
    if (ensure_client(self) < 0 || parse_u32(arg, "memlimit", &mb) < 0)
        return NULL;
    mcrs_status st;
    Py_BEGIN_ALLOW_THREADS
    st = mcrs_client_cache_memlimit(self->client, mb, MCRS_NOREPLY_OFF);
    Py_END_ALLOW_THREADS
    if (st != MCRS_STATUS_OK) {
        raise_status(st);
        return NULL;
    }
    Py_RETURN_TRUE;
}

static PyObject *Core_quit(Core *self, PyObject *unused) {
    (void)unused;
    if (self->client) {
        Py_BEGIN_ALLOW_THREADS
        mcrs_client_quit(self->client);
        Py_END_ALLOW_THREADS
    }
    Py_RETURN_NONE;
}

/* _stats(args: str) -> [(server: str, name: bytes, value: bytes)] */
static PyObject *Core_stats_raw(Core *self, PyObject *arg) {
    if (ensure_client(self) < 0)
        return NULL;
    const char *args = PyUnicode_AsUTF8(arg);
    if (!args)
        return NULL;
    mcrs_stats *s = NULL;
    mcrs_status st;
    Py_BEGIN_ALLOW_THREADS
    st = mcrs_client_stats(self->client, args, &s);
    Py_END_ALLOW_THREADS
    if (st != MCRS_STATUS_OK) {
        raise_status(st);
        return NULL;
    }
    size_t n = mcrs_stats_len(s);
    PyObject *out = PyList_New((Py_ssize_t)n);
    for (size_t i = 0; out && i < n; i++) {
        const char *server, *name, *value;
        if (mcrs_stats_get(s, i, &server, &name, &value) != MCRS_STATUS_OK) {
            raise_status(MCRS_STATUS_PROTOCOL);
            Py_CLEAR(out);
            break;
        }
        PyObject *t = Py_BuildValue("(syy)", server, name, value);
        if (!t) {
            Py_CLEAR(out);
            break;
        }
        PyList_SET_ITEM(out, (Py_ssize_t)i, t);
    }
    mcrs_stats_free(s);
    return out;
}

/* ---- configuration -------------------------------------------------------- */

static int cfg_check(mcrs_status st, const char *what) {
    if (st == MCRS_STATUS_OK)
        return 0;
    char buf[512];
    buf[0] = 0;
    mcrs_last_error(buf, sizeof buf);
    PyErr_Format(st == MCRS_STATUS_INVALID_KEY ? ExcIllegal : PyExc_ValueError, "mcrs %s: %s",
                 what, *buf ? buf : mcrs_status_str(st));
    return -1;
}

static PyObject *Core_configure(Core *self, PyObject *args, PyObject *kw) {
    static char *names[] = {"servers",         "connect_timeout_ms", "timeout_ms",
                            "no_delay",        "keepalive",          "key_prefix",
                            "allow_unicode_keys", "default_noreply", "ignore_exc",
                            "hash_mode",       "retry_attempts",     "retry_timeout_ms",
                            "dead_timeout_ms", "max_pool_size",      "pool_idle_timeout_ms",
                            "serializer",      "deserializer",       "encoding",
                            "distribution",    "pooled",             NULL};
    PyObject *servers, *serializer = Py_None, *deserializer = Py_None, *encoding = NULL;
    unsigned int connect_ms = 0, timeout_ms = 0, retry_attempts = 2, retry_ms = 1000,
                 dead_ms = 60000, pool = 0, idle_ms = 0, distribution = 0;
    int no_delay = 1, keepalive = 0, unicode = 0, dnr = 1, ign = 0, hash = 0, pooled = 0;
    Py_buffer prefix = {0};
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|IIppy*pppp" "IIIII" "OOUIp", names, &servers,
                                     &connect_ms, &timeout_ms, &no_delay, &keepalive, &prefix,
                                     &unicode, &dnr, &ign, &hash, &retry_attempts, &retry_ms,
                                     &dead_ms, &pool, &idle_ms, &serializer, &deserializer,
                                     &encoding, &distribution, &pooled))
        return NULL;
    mcrs_config *cfg = mcrs_config_new();
    mcrs_client *client = NULL;
    PyObject *seq = NULL;
    int ok = 0;
    if (!cfg) {
        PyErr_NoMemory();
        goto out;
    }
    seq = PySequence_Fast(servers, "servers must be a sequence of address strings");
    if (!seq)
        goto out;
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(seq); i++) {
        const char *addr = PyUnicode_AsUTF8(PySequence_Fast_GET_ITEM(seq, i));
        if (!addr)
            goto out;
        if (mcrs_config_add_server(cfg, addr) != MCRS_STATUS_OK) {
            char buf[512];
            buf[0] = 0;
            mcrs_last_error(buf, sizeof buf);
            PyErr_Format(PyExc_ValueError, "bad server address %s: %s", addr, buf);
            goto out;
        }
    }
    /* 0 = pymemcache's None: no timeout (as long as the C ABI allows) */
    if (cfg_check(mcrs_config_set_connect_timeout_ms(cfg, connect_ms ? connect_ms : UINT32_MAX),
                  "connect_timeout") < 0 ||
        cfg_check(mcrs_config_set_timeout_ms(cfg, timeout_ms ? timeout_ms : UINT32_MAX),
                  "timeout") < 0 ||
        cfg_check(mcrs_config_set_no_delay(cfg, no_delay), "no_delay") < 0 ||
        cfg_check(mcrs_config_set_keepalive(cfg, keepalive), "keepalive") < 0 ||
        cfg_check(mcrs_config_set_allow_unicode_keys(cfg, unicode), "allow_unicode_keys") < 0 ||
        cfg_check(mcrs_config_set_default_noreply(cfg, dnr), "default_noreply") < 0 ||
        cfg_check(mcrs_config_set_retry_attempts(cfg, retry_attempts), "retry_attempts") < 0 ||
        cfg_check(mcrs_config_set_retry_timeout_ms(cfg, retry_ms), "retry_timeout") < 0 ||
        cfg_check(mcrs_config_set_dead_timeout_ms(cfg, dead_ms), "dead_timeout") < 0 ||
        cfg_check(mcrs_config_set_pool_idle_timeout_ms(cfg, idle_ms), "pool_idle_timeout") < 0 ||
        cfg_check(mcrs_config_set_distribution(cfg, distribution), "distribution") < 0)
        goto out;
    if (pool && cfg_check(mcrs_config_set_max_pool_size(cfg, pool), "max_pool_size") < 0)
        goto out;
    if (prefix.len &&
        cfg_check(mcrs_config_set_key_prefix(cfg, prefix.buf, (size_t)prefix.len), "key_prefix") <
            0)
        goto out;
    mcrs_status st = mcrs_client_new(cfg, &client);
    if (cfg_check(st, "client") < 0)
        goto out;
    PyObject *kp = PyBytes_FromStringAndSize(prefix.buf ? prefix.buf : "", prefix.len);
    if (!kp) {
        mcrs_client_free(client);
        goto out;
    }
    Py_SETREF(self->key_prefix, kp);
    if (self->client) {
        /* a call on another thread may still use it: free it with the object */
        mcrs_client **r =
            PyMem_Realloc(self->retired, (self->n_retired + 1) * sizeof *self->retired);
        if (!r) {
            mcrs_client_free(client);
            PyErr_NoMemory();
            goto out;
        }
        self->retired = r;
        self->retired[self->n_retired++] = self->client;
    }
    self->client = client;
    Py_XSETREF(self->serializer, serializer == Py_None ? NULL : Py_NewRef(serializer));
    Py_XSETREF(self->deserializer, deserializer == Py_None ? NULL : Py_NewRef(deserializer));
    if (encoding)
        Py_SETREF(self->encoding, Py_NewRef(encoding));
    self->default_noreply = (char)dnr;
    self->ignore_exc = (char)ign;
    self->hash_mode = (char)hash;
    self->allow_unicode = (char)unicode;
    self->pooled = (char)pooled;
    ok = 1;
out:
    Py_XDECREF(seq);
    if (prefix.obj)
        PyBuffer_Release(&prefix);
    mcrs_config_free(cfg);
    if (!ok)
        return NULL;
    Py_RETURN_NONE;
}

/* ---- HashClient's ignore_exc: every error but a bad key gives the default - */

static PyObject *hash_guard(Core *self, PyObject *r, PyObject *dflt) {
    int key_err = g_key_err;
    g_key_err = 0;
    if (r || !self->hash_mode || !self->ignore_exc || key_err ||
        !PyErr_ExceptionMatches(PyExc_Exception))
        return r;
    PyErr_Clear();
    return newref(dflt);
}

#define GUARDED(name, dflt)                                                                     \
    static PyObject *Core_##name(Core *self, PyObject *const *args, Py_ssize_t nargs,          \
                                 PyObject *kw) {                                                \
        g_key_err = 0;                                                                          \
        return hash_guard(self, name##_impl(self, args, nargs, kw), dflt);                      \
    }
GUARDED(set, Py_False)
GUARDED(add, Py_False)
GUARDED(replace, Py_False)
GUARDED(append, Py_False)
GUARDED(prepend, Py_False)
GUARDED(cas, Py_False)
GUARDED(delete, Py_False)
GUARDED(delete_many, Py_True)
GUARDED(touch, Py_False)
GUARDED(incr, Py_False)
GUARDED(decr, Py_False)
GUARDED(flush_all, Py_False)

/* set_many: on an error, every key counts as not stored */
static PyObject *Core_set_many(Core *self, PyObject *const *args, Py_ssize_t nargs,
                               PyObject *kw) {
    g_key_err = 0;
    PyObject *r = set_many_impl(self, args, nargs, kw);
    if (r || g_key_err || !self->hash_mode || !self->ignore_exc || nargs < 1 ||
        !PyErr_ExceptionMatches(PyExc_Exception)) {
        g_key_err = 0;
        return r;
    }
    PyErr_Clear();
    return PySequence_List(args[0]);
}

/* default_noreply and ignore_exc stay writable attributes, as in pymemcache */
static PyObject *get_flag(Core *self, void *off) {
    return PyBool_FromLong(*((char *)self + (size_t)off));
}

static int set_flag(Core *self, PyObject *v, void *off) {
    if (!v) {
        PyErr_SetString(PyExc_AttributeError, "cannot delete this attribute");
        return -1;
    }
    int t = PyObject_IsTrue(v);
    if (t < 0)
        return -1;
    *((char *)self + (size_t)off) = (char)t;
    return 0;
}

static PyGetSetDef Core_getset[] = {
    {"default_noreply", (getter)get_flag, (setter)set_flag, NULL,
     (void *)offsetof(Core, default_noreply)},
    {"ignore_exc", (getter)get_flag, (setter)set_flag, NULL, (void *)offsetof(Core, ignore_exc)},
    {NULL, NULL, NULL, NULL, NULL},
};

#define FAST(name, fn) {name, (PyCFunction)(void (*)(void))fn, METH_FASTCALL | METH_KEYWORDS, NULL}

static PyMethodDef Core_methods[] = {
    {"_configure", (PyCFunction)(void (*)(void))Core_configure, METH_VARARGS | METH_KEYWORDS,
     "(Re)builds the libmcrs client."},
    FAST("get", Core_get),
    FAST("gets", Core_gets),
    FAST("gat", Core_gat),
    FAST("gats", Core_gats),
    FAST("get_many", Core_get_many),
    FAST("get_multi", Core_get_many),
    FAST("gets_many", Core_gets_many),
    FAST("gets_multi", Core_gets_many),
    FAST("set", Core_set),
    FAST("add", Core_add),
    FAST("replace", Core_replace),
    FAST("append", Core_append),
    FAST("prepend", Core_prepend),
    FAST("cas", Core_cas),
    FAST("set_many", Core_set_many),
    FAST("set_multi", Core_set_many),
    FAST("delete", Core_delete),
    FAST("delete_many", Core_delete_many),
    FAST("delete_multi", Core_delete_many),
    FAST("touch", Core_touch),
    FAST("incr", Core_incr),
    FAST("decr", Core_decr),
    FAST("flush_all", Core_flush_all),
    {"version", (PyCFunction)Core_version, METH_NOARGS, NULL},
    {"cache_memlimit", (PyCFunction)Core_cache_memlimit, METH_O, NULL},
    {"quit", (PyCFunction)Core_quit, METH_NOARGS, NULL},
    {"_stats", (PyCFunction)Core_stats_raw, METH_O, NULL},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject CoreType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "mcrs._mcrs.Core",
    .tp_basicsize = sizeof(Core),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "libmcrs client core (use mcrs.Client, PooledClient or HashClient)",
    .tp_new = Core_new,
    .tp_dealloc = (destructor)Core_dealloc,
    .tp_traverse = (traverseproc)Core_traverse,
    .tp_clear = (inquiry)Core_clear,
    .tp_methods = Core_methods,
    .tp_getset = Core_getset,
};

static PyObject *mod_lib_version(PyObject *m, PyObject *unused) {
    (void)m;
    (void)unused;
    return PyUnicode_FromString(mcrs_version());
}

static PyMethodDef mod_methods[] = {
    {"lib_version", mod_lib_version, METH_NOARGS, "libmcrs's version."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef moddef = {
    PyModuleDef_HEAD_INIT, "mcrs._mcrs", "libmcrs bindings (internal)", -1, mod_methods,
    NULL, NULL, NULL, NULL,
};

static int take(PyObject *mod, const char *name, PyObject **out) {
    *out = PyObject_GetAttrString(mod, name);
    return *out ? 0 : -1;
}

PyMODINIT_FUNC PyInit__mcrs(void) {
    PyObject *exc = PyImport_ImportModule("mcrs.exceptions");
    if (!exc)
        return NULL;
    int bad = take(exc, "MemcacheError", &ExcBase) || take(exc, "MemcacheClientError", &ExcClient) ||
              take(exc, "MemcacheUnknownCommandError", &ExcUnknownCmd) ||
              take(exc, "MemcacheIllegalInputError", &ExcIllegal) ||
              take(exc, "MemcacheServerError", &ExcServer) ||
              take(exc, "MemcacheUnknownError", &ExcUnknown) ||
              take(exc, "MemcacheUnexpectedCloseError", &ExcClose);
    Py_DECREF(exc);
    if (bad)
        return NULL;
    if (PyType_Ready(&CoreType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&moddef);
    if (!m)
        return NULL;
    Py_INCREF(&CoreType);
    if (PyModule_AddObject(m, "Core", (PyObject *)&CoreType) < 0) {
        Py_DECREF(&CoreType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
