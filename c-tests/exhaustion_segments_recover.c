/* Behaviour: the segment table recovers from exhaustion (SPEC, "Exhaustion
 * is recoverable"; issue 10, hole 3). One thread suspends empty segments
 * until storectx_suspend answers EXHAUSTED (4,194,304 live, or fewer through
 * the testing hook) and the message states that count; it frees a part, and
 * 16 new threads (other shards than the filler's) must get them back, after
 * which the table is full again and says so with the true count; it frees
 * everything, and each of 16 new threads must be able to suspend again.
 * Shared body: exhaustion_common.h. */
/* cprog: skip on=windows finds its test-only limit hook with dlsym(RTLD_DEFAULT), and Windows has no dlfcn.h; the limits are the same Rust code on every platform, checked on Linux x86-64, aarch64 and musl */
#include "exhaustion_common.h"

static storectx_status table_alloc(uint64_t *out) {
  storectx_suspended *s = NULL;
  storectx_status st = storectx_suspend(storectx_depth(), &s); /* zero entries */
  if (st == STORECTX_OK) *out = (uint64_t)(uintptr_t)s;
  return st;
}

static void table_free(uint64_t h) { storectx_suspended_free((storectx_suspended *)(uintptr_t)h); }

static const char *table_name = "segment";

int main(void) { return exhaustion_main(); }
