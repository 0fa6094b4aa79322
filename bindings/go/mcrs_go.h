/*
 * Included by the cgo preambles of this package: the C API plus small
 * helpers that save cgo calls.
 */
#ifndef MCRS_GO_H
#define MCRS_GO_H

#include <stdlib.h>
#include "mcrs.h"

/*
 * Helpers that read a whole value (or every entry of a value list) in one cgo
 * call instead of one call per accessor. `data` is C memory, valid until the
 * value or list is freed; NULL for a miss.
 */
typedef struct mcrsgo_item {
  const uint8_t *data;
  size_t len;
  uint64_t cas;
  uint32_t flags;
} mcrsgo_item;

static inline void mcrsgo_value_unpack(const struct mcrs_value *v, mcrsgo_item *out) {
  out->data = mcrs_value_data(v);
  out->len = mcrs_value_len(v);
  out->cas = mcrs_value_cas(v);
  out->flags = mcrs_value_flags(v);
}

/* Entry i of vs into out[i], for i < n. */
static inline void mcrsgo_values_unpack(const struct mcrs_values *vs, size_t n, mcrsgo_item *out) {
  for (size_t i = 0; i < n; i++) {
    mcrsgo_value_unpack(mcrs_values_get(vs, i), &out[i]);
  }
}

/*
 * The event-loop driver (driver.c). One driver owns one mcrs_loop, run by
 * one goroutine, which waits for the loop's fd on Go's netpoller;
 * mcrsgo_turn then adopts the loop on the thread the goroutine is on now
 * (mcrs_loop_adopt), runs it without blocking, disowns it, and
 * hands back the completions of the turn as one array, so that one cgo call
 * delivers a batch. Requests are submitted from any thread with the loop's
 * own mcrs_loop_* calls, the callbacks below and the request id as userdata.
 */

/* what a completion carries besides its status */
enum {
  MCRSGO_VALUE = 1,  /* obj: mcrs_value (data/len/flags/cas unpacked) */
  MCRSGO_VALUES = 2, /* obj: mcrs_values, items: n unpacked entries */
  MCRSGO_STATS = 3,  /* obj: mcrs_stats */
  MCRSGO_KEYS = 4,   /* keys: n per-key statuses (malloc) */
  MCRSGO_NUMBER = 5, /* number */
  MCRSGO_TEXT = 6,   /* text: a version string (malloc) */
  MCRSGO_LEASE = 7,  /* lease, token, ttl; obj: mcrs_value or NULL (data/len/flags/cas) */
};

/* an entry of a multi-key read: the value (data NULL for none) and its outcome */
typedef struct mcrsgo_entry {
  const uint8_t *data;
  size_t len;
  uint64_t cas;
  uint32_t flags;
  int32_t status;
} mcrsgo_entry;

typedef struct mcrsgo_done {
  uint64_t id;         /* the request's userdata */
  int32_t status;
  int32_t kind;        /* MCRSGO_* or 0 */
  const uint8_t *data; /* MCRSGO_VALUE */
  size_t len;
  uint64_t cas;        /* MCRSGO_VALUE; MCRSGO_NUMBER: the number */
  uint32_t flags;
  size_t n;            /* MCRSGO_VALUES, MCRSGO_KEYS */
  mcrsgo_entry *items; /* MCRSGO_VALUES (malloc) */
  int32_t *keys;       /* MCRSGO_KEYS (malloc) */
  char *text;          /* MCRSGO_TEXT (malloc) */
  char *detail;        /* mcrs_last_error of a failure (malloc) or NULL */
  size_t detail_len;
  void *obj;           /* freed by the driver on its next turn */
  int32_t lease;       /* MCRSGO_LEASE: the mcrs_lease state */
  uint64_t token;      /* MCRSGO_LEASE: the lease token */
  int64_t ttl;         /* MCRSGO_LEASE: the value's TTL left (mcrs_value_ttl) */
} mcrsgo_done;

typedef struct mcrsgo_driver {
  mcrs_loop *loop;
  int loop_fd;
  mcrsgo_done *buf;   /* this turn's completions */
  size_t len, cap;
  int32_t timeout_ms; /* mcrs_loop_timeout_ms after the turn */
  int cancel_fd;      /* eventfd: written to end a solo caller's wait */
} mcrsgo_driver;

/* Makes a driver and its loop on the calling thread (the loop's owner). On
   failure returns NULL and writes the status to *st and the detail to err. */
mcrsgo_driver *mcrsgo_driver_new(const mcrs_client *c, enum mcrs_status *st, char *err, size_t errcap);
/* Frees the loop (pending requests complete, CANCELLED, into the batch,
   which the caller may read) — on the driver's thread. */
size_t mcrsgo_driver_close(mcrsgo_driver *d);
/* Frees the driver itself (after mcrsgo_driver_close and the last read). */
void mcrsgo_driver_free(mcrsgo_driver *d);
/* Frees what the previous batch held, then runs the loop (never blocking)
   until a request completed or it has no work now; sets d->timeout_ms.
   Returns the number of completions now in d->buf. On the driver's thread. */
size_t mcrsgo_turn(mcrsgo_driver *d);

/* A solo caller (see loop.go) holding the driver's loop token: adopt frees
   the previous batch, adopts the loop on this thread, so that the caller's
   submission goes straight in, and runs it once (completions go into
   d->buf); run then runs the loop, waiting in
   poll(2) on the loop's fd and on cancel_fd, until request id completed
   (returns 1) or cancel_fd was written (0); the completions of every
   request that completed meanwhile are in d->buf (d->len), timeout_ms is
   set, and the loop is disowned again. */
void mcrsgo_solo_adopt(mcrsgo_driver *d);
int mcrsgo_solo_run(mcrsgo_driver *d, uint64_t id);
/* Whether the loop's fd is readable now (never blocks). */
int mcrsgo_loop_ready(const mcrsgo_driver *d);

void mcrsgo_on_get(void *ud, enum mcrs_status st, mcrs_value *v);
void mcrsgo_on_status(void *ud, enum mcrs_status st);
void mcrsgo_on_number(void *ud, enum mcrs_status st, uint64_t n);
void mcrsgo_on_values(void *ud, enum mcrs_status st, mcrs_values *vs);
void mcrsgo_on_keys(void *ud, enum mcrs_status st, const enum mcrs_status *per_key, size_t n);
void mcrsgo_on_version(void *ud, enum mcrs_status st, const char *version);
void mcrsgo_on_stats(void *ud, enum mcrs_status st, mcrs_stats *stats);
void mcrsgo_on_lease(void *ud, enum mcrs_status st, mcrs_lease state, uint64_t token, mcrs_value *v);

/* The detail of a failed submission: the calling thread's mcrs_last_error
   is copied into err (NUL-terminated) in the same cgo call, so no thread
   locking is needed to read it. */
static inline enum mcrs_status mcrsgo_submitted(enum mcrs_status st, char *err, size_t errcap) {
  if (st != MCRS_STATUS_OK && errcap > 0) {
    err[0] = 0;
    mcrs_last_error(err, errcap);
  }
  return st;
}

#define MCRSGO_UD(id) ((void *)(uintptr_t)(id))

static inline enum mcrs_status mcrsgo_get(mcrs_loop *l, int cmd, const uint8_t *k, size_t kl, uint32_t exptime,
                                     uint64_t id, char *err, size_t errcap) {
  enum mcrs_status st;
  switch (cmd) {
  case 1: st = mcrs_loop_gets(l, k, kl, mcrsgo_on_get, MCRSGO_UD(id)); break;
  case 2: st = mcrs_loop_gat(l, k, kl, exptime, mcrsgo_on_get, MCRSGO_UD(id)); break;
  case 3: st = mcrs_loop_gats(l, k, kl, exptime, mcrsgo_on_get, MCRSGO_UD(id)); break;
  default: st = mcrs_loop_get(l, k, kl, mcrsgo_on_get, MCRSGO_UD(id)); break;
  }
  return mcrsgo_submitted(st, err, errcap);
}

static inline enum mcrs_status mcrsgo_store(mcrs_loop *l, int cmd, const uint8_t *k, size_t kl, const uint8_t *v,
                                       size_t vl, uint32_t flags, uint32_t exptime, uint64_t cas,
                                       mcrs_noreply nr, uint64_t id, char *err, size_t errcap) {
  enum mcrs_status st;
  void *ud = MCRSGO_UD(id);
  switch (cmd) {
  case 1: st = mcrs_loop_add(l, k, kl, v, vl, flags, exptime, nr, mcrsgo_on_status, ud); break;
  case 2: st = mcrs_loop_replace(l, k, kl, v, vl, flags, exptime, nr, mcrsgo_on_status, ud); break;
  case 3: st = mcrs_loop_append(l, k, kl, v, vl, flags, exptime, nr, mcrsgo_on_status, ud); break;
  case 4: st = mcrs_loop_prepend(l, k, kl, v, vl, flags, exptime, nr, mcrsgo_on_status, ud); break;
  case 5: st = mcrs_loop_cas(l, k, kl, v, vl, flags, exptime, cas, nr, mcrsgo_on_status, ud); break;
  default: st = mcrs_loop_set(l, k, kl, v, vl, flags, exptime, nr, mcrsgo_on_status, ud); break;
  }
  return mcrsgo_submitted(st, err, errcap);
}

/* delete (cmd 0), touch (1), incr (2), decr (3) */
static inline enum mcrs_status mcrsgo_keyed(mcrs_loop *l, int cmd, const uint8_t *k, size_t kl, uint32_t exptime,
                                       uint64_t delta, mcrs_noreply nr, uint64_t id, char *err, size_t errcap) {
  enum mcrs_status st;
  void *ud = MCRSGO_UD(id);
  switch (cmd) {
  case 1: st = mcrs_loop_touch(l, k, kl, exptime, nr, mcrsgo_on_status, ud); break;
  case 2: st = mcrs_loop_incr(l, k, kl, delta, nr, mcrsgo_on_number, ud); break;
  case 3: st = mcrs_loop_decr(l, k, kl, delta, nr, mcrsgo_on_number, ud); break;
  default: st = mcrs_loop_delete(l, k, kl, nr, mcrsgo_on_status, ud); break;
  }
  return mcrsgo_submitted(st, err, errcap);
}

/* get_many (cmd 0), gets_many (1), delete_many (2), touch_many (3) */
static inline enum mcrs_status mcrsgo_many(mcrs_loop *l, int cmd, const uint8_t *const *keys, const size_t *lens,
                                      size_t n, uint32_t exptime, mcrs_noreply nr, uint64_t id, char *err,
                                      size_t errcap) {
  enum mcrs_status st;
  void *ud = MCRSGO_UD(id);
  switch (cmd) {
  case 1: st = mcrs_loop_gets_many(l, keys, lens, n, mcrsgo_on_values, ud); break;
  case 2: st = mcrs_loop_delete_many(l, keys, lens, n, nr, mcrsgo_on_keys, ud); break;
  case 3: st = mcrs_loop_touch_many(l, keys, lens, n, exptime, nr, mcrsgo_on_keys, ud); break;
  default: st = mcrs_loop_get_many(l, keys, lens, n, mcrsgo_on_values, ud); break;
  }
  return mcrsgo_submitted(st, err, errcap);
}

static inline enum mcrs_status mcrsgo_set_many(mcrs_loop *l, const uint8_t *const *keys, const size_t *lens,
                                          const uint8_t *const *vals, const size_t *vlens,
                                          const uint32_t *flags, size_t n, uint32_t exptime, mcrs_noreply nr,
                                          uint64_t id, char *err, size_t errcap) {
  return mcrsgo_submitted(
      mcrs_loop_set_many(l, keys, lens, vals, vlens, flags, n, exptime, nr, mcrsgo_on_keys, MCRSGO_UD(id)), err,
      errcap);
}

/* flush_all (cmd 0), version (1), stats (2) */
static inline enum mcrs_status mcrsgo_admin(mcrs_loop *l, int cmd, uint32_t delay, mcrs_noreply nr, const char *args,
                                       uint64_t id, char *err, size_t errcap) {
  enum mcrs_status st;
  void *ud = MCRSGO_UD(id);
  switch (cmd) {
  case 1: st = mcrs_loop_version(l, mcrsgo_on_version, ud); break;
  case 2: st = mcrs_loop_stats(l, args, mcrsgo_on_stats, ud); break;
  default: st = mcrs_loop_flush_all(l, delay, nr, mcrsgo_on_status, ud); break;
  }
  return mcrsgo_submitted(st, err, errcap);
}

/* A blocking call's status with the detail read in the same cgo call. */
static inline enum mcrs_status mcrsgo_blocking(int cmd, const mcrs_client *c, uint32_t arg, mcrs_noreply nr, char *err,
                                          size_t errcap) {
  enum mcrs_status st;
  switch (cmd) {
  case 1: st = mcrs_client_verbosity(c, arg, nr); break;
  case 2: st = mcrs_client_quit(c); break;
  case 3: st = mcrs_client_flush_buffers(c); break;
  default: st = mcrs_client_cache_memlimit(c, arg, nr); break;
  }
  return mcrsgo_submitted(st, err, errcap);
}

/* The blocking path of a single-key read made alone (see Client.solo): cmd
   as mcrsgo_get; a hit is unpacked into *it, *v to be freed with
   mcrs_value_free; the detail of a failure is read in the same cgo call. */
static inline enum mcrs_status mcrsgo_bget(const mcrs_client *c, int cmd, const uint8_t *k, size_t kl,
                                           uint32_t exptime, mcrsgo_item *it, mcrs_value **v, char *err,
                                           size_t errcap) {
  enum mcrs_status st;
  *v = NULL;
  switch (cmd) {
  case 1: st = mcrs_client_gets(c, k, kl, v); break;
  case 2: st = mcrs_client_gat(c, k, kl, exptime, v); break;
  case 3: st = mcrs_client_gats(c, k, kl, exptime, v); break;
  default: st = mcrs_client_get(c, k, kl, v); break;
  }
  if (st == MCRS_STATUS_OK)
    mcrsgo_value_unpack(*v, it);
  return st == MCRS_STATUS_NOT_FOUND ? st : mcrsgo_submitted(st, err, errcap);
}

/* lease get (cmd 0; arg: lease_ttl), lease set (1; arg: exptime), invalidate (2; arg:
   stale_ttl), meta get (3) */
static inline enum mcrs_status mcrsgo_meta(mcrs_loop *l, int cmd, const uint8_t *k, size_t kl, const uint8_t *v,
                                           size_t vl, uint32_t flags, uint32_t arg, uint64_t token, uint64_t id,
                                           char *err, size_t errcap) {
  enum mcrs_status st;
  void *ud = MCRSGO_UD(id);
  switch (cmd) {
  case 1: st = mcrs_loop_lease_set(l, k, kl, v, vl, flags, arg, token, mcrsgo_on_status, ud); break;
  case 2: st = mcrs_loop_invalidate(l, k, kl, arg, mcrsgo_on_status, ud); break;
  case 3: st = mcrs_loop_meta_get(l, k, kl, mcrsgo_on_get, ud); break;
  default: st = mcrs_loop_lease_get(l, k, kl, arg, mcrsgo_on_lease, ud); break;
  }
  return mcrsgo_submitted(st, err, errcap);
}

#endif /* MCRS_GO_H */
