/* Behaviour: a far push's redraw allocates nothing, so it is taken when the
 * heap is exhausted. A push whose store-set probe goes past 2 log2(slots)
 * slots makes the full path of storectx_install redraw the table's
 * multiplier in place (the table emptied, a new draw, every id
 * re-inserted) and push again; with the entry vector and the table
 * already sized for the stack, an install then needs no memory at all.
 * The thread first builds (and unwinds) a stack of 80 entries, so its
 * vector holds 80 and its table 128 slots, then the address space is
 * capped (RLIMIT_AS) and the heap exhausted (heap_exhaust.h), and 150
 * stacks of 80 fresh random ids are built and unwound: about one stack
 * in eight has a far push (a simulation of the draw: 12%; none in 150 has
 * odds of 5e-9), so the table uses up its 8 redraws there. Every install
 * must answer OK (a redraw that allocated would answer EXHAUSTED), every
 * id be found paused below the top and gone once unwound. Seen failing
 * (SIGABRT, "memory allocation of 1032 bytes failed": the 129 slots) with
 * StoreSet::redraw allocating a new zeroed table instead of emptying its
 * own. Skipped under
 * AddressSanitizer and valgrind, which need address space of their own
 * beyond any such limit. */
/* cprog: skip on=windows,darwin,freebsd,qemu RLIMIT_AS bounds every allocation only on Linux (macOS ignores it; Windows has none), and under qemu-user it would bound the emulator's own reservations too */
/* cprog: timeout 120 */
#define _GNU_SOURCE
#include <stdint.h>

#include "check.h"
#include "address_limit.h"
#include "heap_exhaust.h"

#define DEPTH 80
#define STACKS 150

static uint64_t splitmix(uint64_t *s) {
  uint64_t z = (*s += UINT64_C(0x9E3779B97F4A7C15));
  z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
  z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
  return z ^ (z >> 31);
}

static int mem;
static storectx_install_guard guards[DEPTH];
static storectx_store_id ids[DEPTH];

/* Builds a stack of DEPTH fresh ids, checks it, unwinds it. */
static void build_and_unwind(uint64_t *seed) {
  for (size_t d = 0; d < DEPTH; d++) {
    do ids[d] = splitmix(seed);
    while (ids[d] == 0 || ids[d] == UINT64_MAX);
    storectx_status st = storectx_install(ids[d], &mem, &guards[d]);
    if (st != STORECTX_OK) {
      /* (no printf: it could allocate) */
      static const char msg[] = "install refused with the heap exhausted\n";
      CHECK(write(2, msg, sizeof msg - 1) > 0);
      CHECK_OK(st);
    }
  }
  CHECK(storectx_depth() == DEPTH);
  for (size_t d = 0; d + 1 < DEPTH; d++) CHECK(storectx_is_paused(ids[d]));
  CHECK(storectx_is_active(ids[DEPTH - 1]));
  for (size_t d = DEPTH; d > 0; d--) {
    CHECK_OK(storectx_uninstall(guards[d - 1]));
    CHECK(!storectx_is_paused(ids[d - 1]) && !storectx_is_active(ids[d - 1]));
  }
  CHECK(storectx_is_empty());
}

int main(void) {
  if (address_limit_unusable("adversary_store_set_redraw_out_of_memory")) return 0;
  uint64_t seed = 0x5eed;
  /* Warm up: the context, the vector of 80 entries, the 128-slot table. */
  build_and_unwind(&seed);
  rlim_t hard = address_limit_set(0);
  struct heap_block *kept = heap_take_all();
  for (size_t k = 0; k < STACKS; k++) build_and_unwind(&seed);
  heap_give_back(kept);
  address_limit_lift(hard);
  printf("ok: %d stacks of %d fresh ids with the heap exhausted\n", STACKS, DEPTH);
  return 0;
}
