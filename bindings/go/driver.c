/* The event-loop driver: one mcrs_loop run on one thread, its completions
 * collected into one array per turn (see mcrs_go.h). */
#include "mcrs_go.h"

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

/* the driver whose loop is running on this thread (callbacks append to it) */
static __thread mcrsgo_driver *mcrsgo_cur;

static void *xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (p == NULL)
    abort(); /* a completion cannot be dropped: its goroutine would wait forever */
  return p;
}

static int is_outcome(enum mcrs_status st) {
  return st == MCRS_STATUS_OK || st == MCRS_STATUS_NOT_FOUND || st == MCRS_STATUS_NOT_STORED ||
         st == MCRS_STATUS_EXISTS;
}

static mcrsgo_done *push(void *ud, enum mcrs_status st) {
  mcrsgo_driver *d = mcrsgo_cur;
  if (d == NULL)
    abort(); /* callbacks run only inside mcrsgo_drive / mcrsgo_driver_close */
  if (d->len == d->cap) {
    size_t cap = d->cap ? d->cap * 2 : 256;
    mcrsgo_done *nb = realloc(d->buf, cap * sizeof *nb);
    if (nb == NULL)
      abort();
    d->buf = nb;
    d->cap = cap;
  }
  mcrsgo_done *r = &d->buf[d->len++];
  memset(r, 0, sizeof *r);
  r->id = (uint64_t)(uintptr_t)ud;
  r->status = (int32_t)st;
  if (!is_outcome(st) && st != MCRS_STATUS_PARTIAL) {
    size_t n = mcrs_last_error(NULL, 0);
    if (n > 0) {
      r->detail = xmalloc(n + 1);
      r->detail_len = mcrs_last_error(r->detail, n + 1);
      if (r->detail_len > n)
        r->detail_len = n;
    }
  }
  return r;
}

void mcrsgo_on_get(void *ud, enum mcrs_status st, mcrs_value *v) {
  mcrsgo_done *r = push(ud, st);
  if (v != NULL) {
    r->kind = MCRSGO_VALUE;
    r->obj = v;
    r->data = mcrs_value_data(v);
    r->len = mcrs_value_len(v);
    r->cas = mcrs_value_cas(v);
    r->flags = mcrs_value_flags(v);
  }
}

void mcrsgo_on_status(void *ud, enum mcrs_status st) { push(ud, st); }

void mcrsgo_on_number(void *ud, enum mcrs_status st, uint64_t n) {
  mcrsgo_done *r = push(ud, st);
  r->kind = MCRSGO_NUMBER;
  r->cas = n;
}

void mcrsgo_on_values(void *ud, enum mcrs_status st, mcrs_values *vs) {
  mcrsgo_done *r = push(ud, st);
  if (vs == NULL)
    return;
  size_t n = mcrs_values_len(vs);
  r->kind = MCRSGO_VALUES;
  r->obj = vs;
  r->n = n;
  r->items = xmalloc(n * sizeof *r->items);
  for (size_t i = 0; i < n; i++) {
    const mcrs_value *v = mcrs_values_get(vs, i);
    mcrsgo_entry *e = &r->items[i];
    e->data = v ? mcrs_value_data(v) : NULL;
    e->len = mcrs_value_len(v);
    e->cas = mcrs_value_cas(v);
    e->flags = mcrs_value_flags(v);
    e->status = (int32_t)mcrs_values_status(vs, i);
  }
  if (st == MCRS_STATUS_PARTIAL) {
    /* the detail of the first failed entry */
    for (size_t i = 0; i < n; i++) {
      size_t len = mcrs_values_error(vs, i, NULL, 0);
      if (len > 0) {
        r->detail = xmalloc(len + 1);
        mcrs_values_error(vs, i, r->detail, len + 1);
        r->detail_len = len;
        break;
      }
    }
  }
}

void mcrsgo_on_keys(void *ud, enum mcrs_status st, const enum mcrs_status *per_key, size_t n) {
  mcrsgo_done *r = push(ud, st);
  if (per_key == NULL)
    return;
  r->kind = MCRSGO_KEYS;
  r->n = n;
  r->keys = xmalloc(n * sizeof *r->keys);
  for (size_t i = 0; i < n; i++)
    r->keys[i] = (int32_t)per_key[i];
}

void mcrsgo_on_version(void *ud, enum mcrs_status st, const char *version) {
  mcrsgo_done *r = push(ud, st);
  if (version != NULL) {
    size_t n = strlen(version);
    r->kind = MCRSGO_TEXT;
    r->text = xmalloc(n + 1);
    memcpy(r->text, version, n + 1);
    r->len = n;
  }
}

void mcrsgo_on_stats(void *ud, enum mcrs_status st, mcrs_stats *stats) {
  mcrsgo_done *r = push(ud, st);
  if (stats != NULL) {
    r->kind = MCRSGO_STATS;
    r->obj = stats;
  }
}

void mcrsgo_on_lease(void *ud, enum mcrs_status st, mcrs_lease state, uint64_t token, mcrs_value *v) {
  mcrsgo_done *r = push(ud, st);
  r->kind = MCRSGO_LEASE;
  r->lease = (int32_t)state;
  r->token = token;
  r->ttl = v != NULL ? mcrs_value_ttl(v) : -2;
  if (v != NULL) {
    r->obj = v;
    r->data = mcrs_value_data(v);
    r->len = mcrs_value_len(v);
    r->cas = mcrs_value_cas(v);
    r->flags = mcrs_value_flags(v);
  }
}

/* frees what the completions of the last turn held */
static void release_batch(mcrsgo_driver *d) {
  for (size_t i = 0; i < d->len; i++) {
    mcrsgo_done *r = &d->buf[i];
    switch (r->kind) {
    case MCRSGO_VALUE:
    case MCRSGO_LEASE: mcrs_value_free(r->obj); break;
    case MCRSGO_VALUES: mcrs_values_free(r->obj); break;
    case MCRSGO_STATS: mcrs_stats_free(r->obj); break;
    default: break;
    }
    free(r->items);
    free(r->keys);
    free(r->text);
    free(r->detail);
  }
  d->len = 0;
}

mcrsgo_driver *mcrsgo_driver_new(const mcrs_client *c, enum mcrs_status *st, char *err, size_t errcap) {
  mcrsgo_driver *d = calloc(1, sizeof *d);
  if (d == NULL) {
    *st = MCRS_STATUS_PANIC;
    return NULL;
  }
  *st = mcrsgo_submitted(mcrs_loop_new(c, &d->loop), err, errcap);
  if (*st != MCRS_STATUS_OK) {
    free(d);
    return NULL;
  }
  d->loop_fd = mcrs_loop_fd(d->loop);
  d->cancel_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (d->cancel_fd < 0) {
    mcrs_loop_free(d->loop);
    free(d);
    *st = MCRS_STATUS_IO;
    if (errcap > 0)
      snprintf(err, errcap, "eventfd: %s", strerror(errno));
    return NULL;
  }
  /* a solo caller submits on the loop's thread and runs the loop at once:
     no wake-up of the fd is needed for that (other threads' submissions
     still wake it) */
  mcrs_loop_set_auto_wake(d->loop, false);
  mcrs_loop_disown(d->loop);
  return d;
}

size_t mcrsgo_turn(mcrsgo_driver *d) {
  release_batch(d);
  /* the goroutine that drives the loop may be on another thread each turn;
     a cgo call keeps it on this one until it returns */
  mcrs_loop_adopt(d->loop);
  mcrsgo_cur = d;
  int timeout;
  do {
    mcrs_loop_run(d->loop);
    timeout = mcrs_loop_timeout_ms(d->loop);
  } while (d->len == 0 && timeout == 0);
  mcrsgo_cur = NULL;
  d->timeout_ms = timeout;
  mcrs_loop_disown(d->loop);
  return d->len;
}

void mcrsgo_solo_adopt(mcrsgo_driver *d) {
  release_batch(d);
  mcrs_loop_adopt(d->loop);
  /* what happened while nobody watched the fd (the driver goroutine parks
     off the netpoller while solo callers run): e.g. a server closed the
     connection, which must be seen before a request goes out on it */
  struct pollfd p = {.fd = d->loop_fd, .events = POLLIN};
  if (poll(&p, 1, 0) != 0 || mcrs_loop_timeout_ms(d->loop) == 0) {
    mcrsgo_cur = d;
    mcrs_loop_run(d->loop);
    mcrsgo_cur = NULL;
  }
}

/* whether the batch from index from on holds the completion of request id */
static int has_id(const mcrsgo_driver *d, size_t from, uint64_t id) {
  for (size_t i = from; i < d->len; i++)
    if (d->buf[i].id == id)
      return 1;
  return 0;
}

int mcrsgo_solo_run(mcrsgo_driver *d, uint64_t id) {
  mcrsgo_cur = d;
  int done = 0;
  /* first only write the request out: its reply cannot be there yet, so
     a run (which also polls the sockets) would find nothing to read */
  int first = 1;
  for (;;) {
    size_t from = d->len;
    if (first) {
      mcrs_loop_send(d->loop);
      first = 0;
    } else {
      mcrs_loop_run(d->loop);
    }
    if (has_id(d, from, id)) {
      done = 1;
      break;
    }
    int timeout = mcrs_loop_timeout_ms(d->loop);
    if (timeout == 0)
      continue;
    /* poll, not epoll_wait: the loop's epoll fd is edge-triggered inside,
       and poll reports its readiness without taking the events */
    struct pollfd p[2] = {{.fd = d->loop_fd, .events = POLLIN}, {.fd = d->cancel_fd, .events = POLLIN}};
    if (poll(p, 2, timeout) < 0 && errno != EINTR)
      abort(); /* cannot wait: the caller would hang */
    if (p[1].revents & POLLIN) {
      uint64_t v;
      while (read(d->cancel_fd, &v, sizeof v) < 0 && errno == EINTR) {
      }
      break;
    }
  }
  mcrsgo_cur = NULL;
  d->timeout_ms = mcrs_loop_timeout_ms(d->loop);
  mcrs_loop_disown(d->loop);
  return done;
}

int mcrsgo_loop_ready(const mcrsgo_driver *d) {
  struct pollfd p = {.fd = d->loop_fd, .events = POLLIN};
  return poll(&p, 1, 0) > 0 && (p.revents & POLLIN) != 0;
}

size_t mcrsgo_driver_close(mcrsgo_driver *d) {
  release_batch(d);
  mcrs_loop_adopt(d->loop);
  mcrsgo_cur = d;
  mcrs_loop_free(d->loop);
  d->loop = NULL;
  mcrsgo_cur = NULL;
  return d->len;
}

void mcrsgo_driver_free(mcrsgo_driver *d) {
  if (d == NULL)
    return;
  release_batch(d);
  if (d->loop != NULL) {
    mcrs_loop_adopt(d->loop);
    mcrsgo_cur = d;
    mcrs_loop_free(d->loop);
    mcrsgo_cur = NULL;
    release_batch(d);
  }
  if (d->cancel_fd >= 0)
    close(d->cancel_fd);
  free(d->buf);
  free(d);
}

