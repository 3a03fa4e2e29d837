/* floor.c: the cheapest possible per-thread store stack, the benchmark's floor.
 * A fixed __thread array with just enough checks to be honest (top check,
 * borrow count, capacity); no paused-store check, no stale-handle validation,
 * no last_error. Built as libfloor.so (-O2 -fPIC) so that its calls and its
 * TLS access go through the same dynamic-linking machinery (PLT,
 * __tls_get_addr) as libstorectx.so. Bench-only, never shipped.
 *
 * Same C signatures as storectx_install/uninstall, get_current/borrow_release,
 * pause/unpause and is_active; the types below are layout-identical to the
 * ones in storectx.h (bench.c declares these functions with those types). */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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
  FLOOR_ERR_EXHAUSTED = 18,
};
typedef struct { uint64_t raw; } floor_guard; /* install guard, borrow, pause guard */

#define FLOOR_CAPACITY 2048 /* the bench goes to depth 1000 */

typedef struct {
  uint64_t id;
  void *store;
  uint32_t borrows;
} floor_entry;

/* One TLS block: one address computation per call. */
static __thread struct {
  size_t depth;
  floor_entry entries[FLOOR_CAPACITY];
} floor_stack;

#define EXPORT __attribute__((visibility("default")))

EXPORT floor_status floor_install(uint64_t id, void *store, floor_guard *out) {
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

EXPORT floor_status floor_uninstall(floor_guard g) {
  size_t d = floor_stack.depth;
  if (d == 0 || g.raw != d) return FLOOR_ERR_OUT_OF_ORDER;
  if (floor_stack.entries[d - 1].borrows != 0) return FLOOR_ERR_STILL_BORROWED;
  floor_stack.depth = d - 1;
  return FLOOR_OK;
}

EXPORT floor_status floor_get_current(uint64_t id, void **store, floor_guard *out) {
  if (store == NULL || out == NULL) return FLOOR_ERR_NULL_ARGUMENT;
  size_t d = floor_stack.depth;
  if (d == 0) return FLOOR_ERR_NO_CONTEXT;
  floor_entry *top = &floor_stack.entries[d - 1];
  if (top->id != id) return FLOOR_ERR_NOT_INSTALLED;
  top->borrows++;
  *store = top->store;
  out->raw = d;
  return FLOOR_OK;
}

EXPORT floor_status floor_borrow_release(floor_guard b) {
  size_t d = floor_stack.depth;
  if (d == 0 || b.raw != d) return FLOOR_ERR_OUT_OF_ORDER;
  floor_entry *top = &floor_stack.entries[d - 1];
  if (top->borrows == 0) return FLOOR_ERR_NOT_BORROWED;
  top->borrows--;
  return FLOOR_OK;
}

EXPORT floor_status floor_pause(uint64_t id, floor_guard *out) {
  if (out == NULL) return FLOOR_ERR_NULL_ARGUMENT;
  size_t d = floor_stack.depth;
  if (d == 0) return FLOOR_ERR_NO_CONTEXT;
  floor_entry *top = &floor_stack.entries[d - 1];
  if (top->id != id) return FLOOR_ERR_NOT_INSTALLED;
  uint64_t decremented = top->borrows > 0;
  top->borrows -= (uint32_t)decremented;
  out->raw = (uint64_t)d << 1 | decremented;
  return FLOOR_OK;
}

EXPORT floor_status floor_unpause(floor_guard g) {
  size_t d = floor_stack.depth;
  if (d == 0 || g.raw >> 1 != d) return FLOOR_ERR_OUT_OF_ORDER;
  floor_stack.entries[d - 1].borrows += (uint32_t)(g.raw & 1);
  return FLOOR_OK;
}

EXPORT bool floor_is_active(uint64_t id) {
  size_t d = floor_stack.depth;
  return d > 0 && floor_stack.entries[d - 1].id == id;
}

EXPORT size_t floor_depth(void) { return floor_stack.depth; }
