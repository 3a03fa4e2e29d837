/* floor.c: the cheapest possible per-thread store stack, the benchmark's floor.
 * A fixed __thread array with just enough checks to be honest (top check,
 * borrow count, capacity); no paused-store check, no stale-handle validation,
 * no last_error. Bench-only, never shipped. One source, two libraries
 * (benches/run.sh builds both, -O2 -fPIC):
 *   libfloor.so     exports floor_*, the default TLS model of a .so
 *                   (general-dynamic: a __tls_get_addr call per access);
 *   libfloor_ie.so  -DFLOOR_PREFIX=floor_ie_ -ftls-model=initial-exec
 *                   exports floor_ie_*: one load relative to the thread
 *                   pointer per access, the least a function called through
 *                   the PLT can pay to reach per-thread state.
 * Both are called through the PLT, like libstorectx.so.
 *
 * Same C signatures as storectx_install/uninstall, get_current/borrow_release,
 * get_current_transient, pause/unpause and is_active; the types below are
 * layout-identical to the ones in storectx.h (bench.c declares these
 * functions with those types). */
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

typedef int32_t floor_status; /* values as in storectx.h */
enum {
  FLOOR_OK = 0,
  FLOOR_ERR_NULL_ARGUMENT = 1,
  FLOOR_ERR_INVALID_ARGUMENT = 2,
  FLOOR_ERR_NO_CONTEXT = 3,
  FLOOR_ERR_NOT_INSTALLED = 4,
  FLOOR_ERR_ADDRESS_MISMATCH = 6,
  FLOOR_ERR_OUT_OF_ORDER = 7,
  FLOOR_ERR_STILL_BORROWED = 9,
  FLOOR_ERR_NOT_BORROWED = 10,
  FLOOR_ERR_BUSY = 13,
  FLOOR_ERR_EXHAUSTED = 18,
};
typedef struct { uint64_t raw; } floor_guard; /* install guard, borrow, pause guard */

#define FLOOR_CAPACITY 2048 /* the bench goes to depth 1000 */

typedef struct {
  uint64_t id;
  void *store;
  uint32_t borrows;
} floor_entry;

/* A store with a pthread mutex: the locked-store equivalent of an async
 * store (see FN(locked_try_write) below). */
typedef struct floor_locked_store {
  pthread_mutex_t mu;
  uint64_t id;
  void *store;
} floor_locked_store;

/* One TLS block: one address computation per call. `locks[k]` is the
 * mutex entry k holds (NULL for a plain entry), beside the entries so that
 * the plain operations above see the same entry layout. */
static __thread struct {
  size_t depth;
  floor_entry entries[FLOOR_CAPACITY];
  floor_locked_store *locks[FLOOR_CAPACITY];
} floor_stack;

#define EXPORT __attribute__((visibility("default")))

#ifndef FLOOR_PREFIX
#define FLOOR_PREFIX floor_
#endif
#define FLOOR_CAT2(a, b) a##b
#define FLOOR_CAT(a, b) FLOOR_CAT2(a, b)
#define FN(name) FLOOR_CAT(FLOOR_PREFIX, name) /* FN(install): floor_install, ... */

/* The checks several exports open with. Macros, not functions, so that each
 * export compiles to exactly what it did with the checks written out: the
 * floors' instruction counts are benches/profile.sh's reference. Both
 * declare d, the depth, and may return a refusal.
 * TOP_ENTRY_OF: declares top, the top entry; refuses when there is none or
 * it is not store `id`'s. */
#define TOP_ENTRY_OF(id)                                                          \
  size_t d = floor_stack.depth;                                                   \
  if (d == 0) return FLOOR_ERR_NO_CONTEXT;                                        \
  floor_entry *top = &floor_stack.entries[d - 1];                                 \
  if (top->id != (id)) return FLOOR_ERR_NOT_INSTALLED
/* CHECK_POP: refuses unless guard value `raw` names the top entry and that
 * entry has no borrow outstanding (it may be popped). */
#define CHECK_POP(raw)                                                            \
  size_t d = floor_stack.depth;                                                   \
  if (d == 0 || (raw) != d) return FLOOR_ERR_OUT_OF_ORDER;                        \
  if (floor_stack.entries[d - 1].borrows != 0) return FLOOR_ERR_STILL_BORROWED

EXPORT floor_status FN(install)(uint64_t id, void *store, floor_guard *out) {
  if (store == NULL || out == NULL) return FLOOR_ERR_NULL_ARGUMENT;
  if (id == 0) return FLOOR_ERR_INVALID_ARGUMENT;
  size_t d = floor_stack.depth;
  if (d == FLOOR_CAPACITY) return FLOOR_ERR_EXHAUSTED;
  if (d > 0 && floor_stack.entries[d - 1].id == id &&
      floor_stack.entries[d - 1].store != store)
    return FLOOR_ERR_ADDRESS_MISMATCH;
  floor_stack.entries[d] = (floor_entry){id, store, 0};
  floor_stack.depth = d + 1;
  out->raw = d + 1;
  return FLOOR_OK;
}

EXPORT floor_status FN(uninstall)(floor_guard g) {
  CHECK_POP(g.raw);
  floor_stack.depth = d - 1;
  return FLOOR_OK;
}

EXPORT floor_status FN(get_current)(uint64_t id, void **store, floor_guard *out) {
  if (store == NULL || out == NULL) return FLOOR_ERR_NULL_ARGUMENT;
  TOP_ENTRY_OF(id);
  top->borrows++;
  *store = top->store;
  out->raw = d;
  return FLOOR_OK;
}

/* No borrow: the same lookup as get_current. */
EXPORT floor_status FN(get_current_transient)(uint64_t id, void **store) {
  if (store == NULL) return FLOOR_ERR_NULL_ARGUMENT;
  TOP_ENTRY_OF(id);
  *store = top->store;
  return FLOOR_OK;
}

EXPORT floor_status FN(borrow_release)(floor_guard b) {
  size_t d = floor_stack.depth;
  if (d == 0 || b.raw != d) return FLOOR_ERR_OUT_OF_ORDER;
  floor_entry *top = &floor_stack.entries[d - 1];
  if (top->borrows == 0) return FLOOR_ERR_NOT_BORROWED;
  top->borrows--;
  return FLOOR_OK;
}

EXPORT floor_status FN(pause)(uint64_t id, floor_guard *out) {
  if (out == NULL) return FLOOR_ERR_NULL_ARGUMENT;
  TOP_ENTRY_OF(id);
  uint64_t decremented = top->borrows > 0;
  top->borrows -= (uint32_t)decremented;
  out->raw = (uint64_t)d << 1 | decremented;
  return FLOOR_OK;
}

EXPORT floor_status FN(unpause)(floor_guard g) {
  size_t d = floor_stack.depth;
  if (d == 0 || g.raw >> 1 != d) return FLOOR_ERR_OUT_OF_ORDER;
  floor_stack.entries[d - 1].borrows += (uint32_t)(g.raw & 1);
  return FLOOR_OK;
}

EXPORT bool FN(is_active)(uint64_t id) {
  size_t d = floor_stack.depth;
  return d > 0 && floor_stack.entries[d - 1].id == id;
}

EXPORT size_t FN(depth)(void) { return floor_stack.depth; }

/* The entry's size: what a floor entry costs in memory (static TLS, no heap). */
EXPORT size_t FN(entry_bytes)(void) { return sizeof(floor_entry); }

/* The async path's equivalent with a pthread mutex, for the bench's
 * try_write + install_async + uninstall: try_write is a trylock whose
 * "guard" is the store itself; install_locked pushes an entry that holds
 * the lock; uninstall_locked pops it and unlocks. No handle validation
 * (a guard is a raw pointer), no registry, no reference count. */
EXPORT floor_locked_store *FN(locked_store_new)(uint64_t id, void *store) {
  floor_locked_store *s = malloc(sizeof *s);
  if (!s) return NULL;
  pthread_mutex_init(&s->mu, NULL);
  s->id = id;
  s->store = store;
  return s;
}

EXPORT void FN(locked_store_free)(floor_locked_store *s) {
  if (!s) return;
  pthread_mutex_destroy(&s->mu);
  free(s);
}

EXPORT floor_status FN(locked_try_write)(floor_locked_store *s, floor_locked_store **out) {
  if (s == NULL || out == NULL) return FLOOR_ERR_NULL_ARGUMENT;
  if (pthread_mutex_trylock(&s->mu) != 0) return FLOOR_ERR_BUSY;
  *out = s;
  return FLOOR_OK;
}

EXPORT floor_status FN(install_locked)(floor_locked_store *g, floor_guard *out) {
  if (g == NULL || out == NULL) return FLOOR_ERR_NULL_ARGUMENT;
  size_t d = floor_stack.depth;
  if (d == FLOOR_CAPACITY) return FLOOR_ERR_EXHAUSTED;
  floor_stack.entries[d] = (floor_entry){g->id, g->store, 0};
  floor_stack.locks[d] = g;
  floor_stack.depth = d + 1;
  out->raw = d + 1;
  return FLOOR_OK;
}

EXPORT floor_status FN(uninstall_locked)(floor_guard g) {
  CHECK_POP(g.raw);
  floor_locked_store *lock = floor_stack.locks[d - 1];
  floor_stack.locks[d - 1] = NULL;
  floor_stack.depth = d - 1;
  if (lock) pthread_mutex_unlock(&lock->mu);
  return FLOOR_OK;
}
