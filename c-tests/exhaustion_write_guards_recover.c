/* Behaviour: the write-guard table recovers from exhaustion (SPEC,
 * "Exhaustion is recoverable"; issue 10, hole 3). One thread takes write
 * guards — one per async store, each store released at once so that only
 * its guard keeps it — until storectx_async_store_try_write answers
 * EXHAUSTED (4,194,304 live, or fewer through the testing hook) and the
 * message states that count; it releases a part, and 16 new threads (other
 * shards than the filler's) must get them back, after which the table is
 * full again and says so with the true count; it releases everything, and
 * each of 16 new threads must be able to take a write guard again. Shared
 * body: exhaustion_common.h. */
/* cprog: skip on=windows finds its test-only limit hook with dlsym(RTLD_DEFAULT), and Windows has no dlfcn.h; the limits are the same Rust code on every platform, checked on Linux x86-64, aarch64 and musl */
#include "exhaustion_common.h"

static int store;

static storectx_status table_alloc(uint64_t *out) {
  static _Thread_local storectx_store_id id;
  if (id == 0) id = storectx_store_id_new();
  storectx_async_store *a = NULL;
  CHECK_OK(storectx_async_store_new(id, &store, &a));
  storectx_write_guard *g = NULL;
  storectx_status st = storectx_async_store_try_write(a, &g);
  storectx_async_store_release(a); /* the guard keeps the store alive */
  if (st == STORECTX_OK) *out = (uint64_t)(uintptr_t)g;
  return st;
}

static void table_free(uint64_t h) { storectx_write_guard_release((storectx_write_guard *)(uintptr_t)h); }

static const char *table_name = "write guard";

int main(void) { return exhaustion_main(); }
