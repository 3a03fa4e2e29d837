/* Behaviour: a store set growth refused for lack of memory keeps the old
 * table and its multiplier: every answer stays exact. Each store set table
 * hashes with its own multiplier, chosen when the table is made (a
 * thread's first install, each growth); a growth that cannot have its new
 * table must not change the multiplier of the table it keeps. A fresh
 * thread fills its first table (20 ids, 32 slots) under multiplier 1 (fixed
 * through the testing hook storectx_testing_set_hash_multiplier; without
 * it every table draws, and a new draw kept with the old table would lose
 * ids just the same): its small ids all home to the first slot and those near
 * UINT64_MAX to the last, in runs that wrap into each other. Then the hook
 * is set to 0.2's Fibonacci multiplier, the address space capped at what
 * the process maps (RLIMIT_AS, address_limit.h) and every block of the
 * thread's heap taken (heap_exhaust.h), so that the next growth's table
 * cannot be had:
 *  1. the 21st install is refused (EXHAUSTED) and a resume of a 3-entry
 *     segment too, nothing changed;
 *  2. every id still answers right: is_active, is_paused, PAUSED naming its
 *     topmost depth, NOT_INSTALLED;
 *  3. with memory back the install and the resume grow the table (under
 *     the new multiplier) and every answer is right again; all unwinds.
 * With the multiplier taken before the allocation in try_reserve_for, step
 * 2 fails: ids put in under 1 are looked for under the Fibonacci multiplier
 * (seen by mutation). Skipped under AddressSanitizer and valgrind, which
 * need address space of their own. */
/* cprog: skip on=windows,darwin,freebsd,qemu RLIMIT_AS bounds every allocation only on Linux (macOS ignores it; Windows has none), and under qemu-user it would bound the emulator's own reservations too */
/* cprog: timeout 120 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "check.h"
#include "store_answers.h"
#include "address_limit.h"
#include "heap_exhaust.h"

#define IDS 40
#define FILL 20 /* a first table's capacity: 32 slots, 5/8 full */

static storectx_store_id ids[IDS];
static storectx_install_guard guards[IDS + 8];
static size_t depth;
static int store_mem;

static set_multiplier_fn set_multiplier;
static void no_hook(uint64_t multiplier) { (void)multiplier; }

/* The stack holds ids[0 .. depth) (the segment's ids are the last three
 * of them once resumed). */
static void verify(const char *when) {
  CHECK(storectx_depth() == depth);
  storectx_store_id top = depth ? ids[depth - 1] : 0;
  for (size_t i = 0; i < IDS; i++) {
    check_store_answers(ids[i], i < depth ? i + 1 : 0, top, depth, when);
  }
}

static storectx_suspended *segment; /* ids[FILL + 1 .. FILL + 4), made on main */
static storectx_install_guard seg_guards[3];

static void *filler(void *arg) {
  (void)arg;
  set_multiplier(1); /* this thread's first table */
  for (depth = 0; depth < FILL; depth++)
    CHECK_OK(storectx_install(ids[depth], &store_mem, &guards[depth]));
  verify("filled under multiplier 1");
  set_multiplier(UINT64_C(0x9E3779B97F4A7C15)); /* what a growth would take */

  rlim_t hard = address_limit_set(0);
  struct heap_block *kept = heap_take_all();
  storectx_install_guard g;
  CHECK_STATUS(storectx_install(ids[FILL], &store_mem, &g), STORECTX_ERR_EXHAUSTED);
  printf("refused: %s\n", storectx_last_error());
  verify("install refused for lack of memory");
  size_t base = 99;
  CHECK_STATUS(storectx_resume(segment, &base), STORECTX_ERR_EXHAUSTED);
  CHECK(base == 99 && storectx_suspended_len(segment) == 3);
  verify("resume refused for lack of memory");
  heap_give_back(kept);
  address_limit_lift(hard);

  /* Memory back: the resume grows the table (4 more ids fit then). */
  CHECK_OK(storectx_resume(segment, &base));
  CHECK(base == FILL);
  /* The segment holds ids[FILL + 1 .. FILL + 4): the model wants them at
   * FILL .. FILL + 3, so put ids[FILL] behind them. */
  storectx_store_id skipped = ids[FILL];
  memmove(&ids[FILL], &ids[FILL + 1], 3 * sizeof ids[0]);
  ids[FILL + 3] = skipped;
  memcpy(&guards[FILL], seg_guards, sizeof seg_guards);
  depth = FILL + 3;
  verify("segment resumed after the refusals");
  for (; depth < IDS; depth++) CHECK_OK(storectx_install(ids[depth], &store_mem, &guards[depth]));
  verify("grown under the Fibonacci multiplier");
  while (depth > 0) {
    CHECK_OK(storectx_uninstall(guards[--depth]));
    if (depth % 5 == 0) verify("unwinding");
  }
  return NULL;
}

int main(void) {
  set_multiplier = hash_multiplier_hook();
  if (!set_multiplier) {
    /* Without the testing hook (the memcheck and ASan runs): every table
     * draws, and the same steps run on drawn multipliers only. */
    printf("%s: no testing hook: drawn multipliers only\n", "adversary_store_set_growth_out_of_memory_keeps_hash");
    set_multiplier = no_hook;
  }
  if (address_limit_unusable("adversary_store_set_growth_out_of_memory_keeps_hash")) return 0;
  for (size_t k = 0; k < IDS / 2; k++) {
    ids[2 * k] = storectx_store_id_new(); /* small: home 0 under 1 */
    ids[2 * k + 1] = UINT64_MAX - 1 - k;  /* home: the last slot */
  }
  /* The segment, on this thread. */
  for (size_t k = 0; k < 3; k++)
    CHECK_OK(storectx_install(ids[FILL + 1 + k], &store_mem, &seg_guards[k]));
  CHECK_OK(storectx_suspend(0, &segment));
  pthread_t th;
  CHECK(pthread_create(&th, NULL, filler, NULL) == 0);
  CHECK(pthread_join(th, NULL) == 0);
  set_multiplier(0);
  puts("store set growth out of memory: refused, old table and multiplier kept");
  return 0;
}
