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

#endif /* MCRS_GO_H */
