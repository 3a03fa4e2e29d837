/* Guest functions for the binding's tests and benchmarks: C code that, like
 * an engine's guest or import, finds its store with the C API alone. */
#ifndef STORECTX_GO_GUEST_H
#define STORECTX_GO_GUEST_H

#include <stddef.h>
#include <stdint.h>

#include "storectx.h"

/* What probe checks: that `id` is the current store, at `want`. */
typedef struct guest_probe_arg {
  uint64_t id;
  uintptr_t want;
} guest_probe_arg;

int64_t guest_probe(uintptr_t arg);
int64_t guest_sleep_probe(uintptr_t arg);
int64_t guest_callback(uintptr_t arg);
int64_t guest_install_leave(uintptr_t arg);
int64_t guest_pop_top(uintptr_t arg);
int64_t guest_depth(uintptr_t arg);
int64_t guest_fill(uintptr_t arg);

int guest_set_table_limit(size_t limit);
size_t guest_fill_segments(size_t max);
void guest_unfill(void);
int guest_watch_thread(void);
size_t guest_watched_exits_count(void);

/* The raw C API for the LockOSThread baseline, answering by value (a Go
 * pointer passed to cgo would make its variable escape to the heap). */
typedef struct raw_ret {
  int32_t status;
  uint64_t u;
} raw_ret;
raw_ret raw_install(uint64_t id, uintptr_t store);
int32_t raw_uninstall(uint64_t guard);
raw_ret raw_get_current_transient(uint64_t id);

#endif
