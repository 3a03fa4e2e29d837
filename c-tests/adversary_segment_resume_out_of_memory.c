/* Behaviour: a resume whose segment carries pause records that the resuming
 * thread's record vector has no room for, and no memory to grow into, is
 * refused (STORECTX_ERR_EXHAUSTED, a message, the segment untouched,
 * nothing pushed) instead of aborting the process, as the SPEC's resume
 * contract says ("the stack cannot grow to take the segment's entries for
 * lack of memory: s untouched, nothing was pushed"). Thread A installs a
 * store and pauses it 1,000 times (an entry's innermost pause is kept in the
 * entry, its older ones are 8-byte records), suspends it; thread B, whose
 * stack has room for entries (warmed up) but has never held a pause record,
 * resumes it with the address space capped at what the process maps now
 * (RLIMIT_AS, address_limit.h) and every block of its heap taken
 * (heap_exhaust.h). Before the fix the resume's record append
 * (`Vec::append`, infallible) hit Rust's allocation-failure handler
 * ("memory allocation of 7992 bytes failed", SIGABRT). After the
 * refusal the segment resumes once the limit is lifted, on the same thread:
 * its two innermost pauses unwind in order there (the records came intact)
 * and are stale on A. Then B's stack holds exactly 16 entries (the entry
 * vector's first capacity, full) and two segments made on A (one async
 * entry alone, kept inline in its slot; three entries) are resumed under
 * the same limits, on the fast half (B's spot emptied first): both refused
 * EXHAUSTED with B's 16 entries as they were, the segments untouched and
 * the async store still locked; once the memory is back both resume, at
 * depths 16 and 17, and unwind (the lock free after its uninstall).
 * Skipped under AddressSanitizer and valgrind, which need address space of
 * their own beyond any such limit. */
/* cprog: skip on=windows,darwin,freebsd,qemu RLIMIT_AS bounds every allocation only on Linux (macOS ignores it; Windows has none), and under qemu-user it would bound the emulator's own reservations too */
/* cprog: timeout 120 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>

#include "check.h"
#include "address_limit.h"
#include "heap_exhaust.h"
#include "worker.h"

#define PAUSES 1000u

static int mem;
static storectx_store_id a;
static storectx_pause_guard inner, outer;
static storectx_suspended *seg;

static void pause_and_suspend(void *arg) {
  (void)arg;
  storectx_install_guard g;
  CHECK_OK(storectx_install(a, &mem, &g));
  for (uint32_t i = 0; i < PAUSES; i++) {
    storectx_pause_guard p;
    CHECK_OK(storectx_pause(a, &p));
    outer = inner;
    inner = p;
  }
  CHECK_OK(storectx_suspend(0, &seg));
  CHECK(storectx_is_empty() && storectx_suspended_len(seg) == 1);
}

static void warm_up(void *arg) {
  (void)arg;
  /* The context and room for a few entries; no pause record ever. */
  storectx_install_guard g[4];
  for (int i = 0; i < 4; i++) CHECK_OK(storectx_install(storectx_store_id_new(), &mem, &g[i]));
  for (int i = 3; i >= 0; i--) CHECK_OK(storectx_uninstall(g[i]));
  storectx_pause_guard p;
  CHECK_OK(storectx_install(storectx_store_id_new(), &mem, &g[0]));
  CHECK_OK(storectx_pause(storectx_active_store(), &p)); /* in the entry: no record */
  CHECK_OK(storectx_unpause(p));
  CHECK_OK(storectx_uninstall(g[0]));
  (void)storectx_last_error();
}

static void resume_refused(void *arg) {
  (void)arg;
  size_t base = 77;
  struct heap_block *kept = heap_take_all();
  storectx_status st = storectx_resume(seg, &base);
  heap_give_back(kept);
  CHECK_STATUS(st, STORECTX_ERR_EXHAUSTED);
  printf("resume refused: %s\n", storectx_last_error());
  CHECK(strstr(storectx_last_error(), "memory") != NULL);
  CHECK(base == 77);
  CHECK(storectx_is_empty() && storectx_depth() == 0);
  CHECK(!storectx_is_active(a) && !storectx_is_paused(a));
  CHECK(storectx_suspended_len(seg) == 1);
  /* Nor did the refusal leave the store in this thread's set. */
  storectx_install_guard g;
  CHECK_OK(storectx_install(a, &mem, &g));
  CHECK_OK(storectx_uninstall(g));
}

static void resume(void *arg) {
  (void)arg;
  size_t base = 77;
  CHECK_OK(storectx_resume(seg, &base));
  CHECK(base == 0 && storectx_depth() == 1 && storectx_is_active(a));
  CHECK(storectx_suspended_len(seg) == 0);
}

static void stale_here(void *arg) {
  (void)arg;
  CHECK(storectx_is_empty() && !storectx_is_paused(a));
  CHECK_STATUS(storectx_unpause(inner), STORECTX_ERR_STALE_HANDLE);
  CHECK_STATUS(storectx_unpause(outer), STORECTX_ERR_STALE_HANDLE);
}

static void unwind(void *arg) {
  (void)arg;
  /* In order only: the outer one waits for the inner one. */
  CHECK(storectx_unpause(outer) != STORECTX_OK);
  CHECK_OK(storectx_unpause(inner));
  CHECK(storectx_is_active(a));
  CHECK_OK(storectx_unpause(outer));
  CHECK(storectx_is_active(a));
  CHECK_OK(storectx_suspend(0, &seg));
  CHECK(storectx_is_empty());
}

/* ---- at the entry vector's capacity ---- */

#define FULL 16
static storectx_async_store *locked;
static storectx_suspended *one, *three;
static storectx_install_guard one_g, three_g[3], full_g[FULL];
static storectx_store_id three_id[3], full_id[FULL];
static storectx_suspended *empty;

static void make_segments(void *arg) {
  (void)arg;
  storectx_write_guard *w = NULL;
  CHECK_OK(storectx_async_store_try_write(locked, &w));
  CHECK_OK(storectx_install_async(w, &one_g));
  CHECK_OK(storectx_suspend(0, &one));
  for (int i = 0; i < 3; i++) {
    three_id[i] = storectx_store_id_new();
    CHECK_OK(storectx_install(three_id[i], &mem, &three_g[i]));
  }
  CHECK_OK(storectx_suspend(0, &three));
  CHECK(storectx_suspended_len(one) == 1 && storectx_suspended_len(three) == 3);
}

static void fill_to_capacity(void *arg) {
  (void)arg;
  for (int i = 0; i < FULL; i++) {
    full_id[i] = storectx_store_id_new();
    CHECK_OK(storectx_install(full_id[i], &mem, &full_g[i]));
  }
  CHECK_OK(storectx_suspend(FULL, &empty)); /* this thread's spot emptied */
}

static void full_stack_intact(void) {
  CHECK(storectx_depth() == FULL && storectx_active_store() == full_id[FULL - 1]);
  for (int i = 0; i < FULL; i++) CHECK(storectx_install_guard_installed(full_g[i]));
  CHECK(!storectx_install_guard_installed(one_g));
  for (int i = 0; i < 3; i++) CHECK(!storectx_is_active(three_id[i]) && !storectx_is_paused(three_id[i]));
}

static void resume_at_capacity_refused(void *arg) {
  (void)arg;
  size_t base1 = 77, base3 = 77;
  struct heap_block *kept = heap_take_all();
  storectx_status st1 = storectx_resume(one, &base1);
  storectx_status st3 = storectx_resume(three, &base3);
  heap_give_back(kept);
  CHECK_STATUS(st3, STORECTX_ERR_EXHAUSTED);
  printf("resume of three at capacity refused: %s\n", storectx_last_error());
  CHECK_STATUS(st1, STORECTX_ERR_EXHAUSTED);
  CHECK(base1 == 77 && base3 == 77);
  CHECK(storectx_suspended_len(one) == 1 && storectx_suspended_len(three) == 3);
  full_stack_intact();
  storectx_write_guard *w = (storectx_write_guard *)0x77;
  CHECK_STATUS(storectx_async_store_try_write(locked, &w), STORECTX_ERR_BUSY);
}

static void resume_at_capacity(void *arg) {
  (void)arg;
  size_t base = 77;
  CHECK_OK(storectx_resume(one, &base));
  CHECK(base == FULL && storectx_active_store() == storectx_async_store_id(locked));
  CHECK_OK(storectx_resume(three, &base));
  CHECK(base == FULL + 1 && storectx_depth() == FULL + 4);
  for (int i = 2; i >= 0; i--) CHECK_OK(storectx_uninstall(three_g[i]));
  CHECK_OK(storectx_uninstall(one_g));
  storectx_write_guard *w = NULL;
  CHECK_OK(storectx_async_store_try_write(locked, &w));
  storectx_write_guard_release(w);
  full_stack_intact();
  for (int i = FULL - 1; i >= 0; i--) CHECK_OK(storectx_uninstall(full_g[i]));
  CHECK(storectx_is_empty());
  storectx_suspended_free(empty);
}

int main(void) {
  if (address_limit_unusable("adversary_segment_resume_out_of_memory")) {
    return 0;
  }
  a = storectx_store_id_new();
  struct worker ta, tb;
  worker_start(&ta);
  worker_start(&tb);
  run_on(&ta, pause_and_suspend, NULL);
  run_on(&tb, warm_up, NULL);
  /* The segment table's chunk, stdio, the main thread's context. */
  CHECK(storectx_suspended_len(seg) == 1);
  rlim_t hard = address_limit_set(0);
  run_on(&tb, resume_refused, NULL);
  address_limit_lift(hard);
  run_on(&tb, resume, NULL);
  run_on(&ta, stale_here, NULL); /* where they were made */
  run_on(&tb, unwind, NULL);

  CHECK_OK(storectx_async_store_new(storectx_store_id_new(), &mem, &locked));
  run_on(&ta, make_segments, NULL);
  run_on(&tb, fill_to_capacity, NULL);
  hard = address_limit_set(0);
  run_on(&tb, resume_at_capacity_refused, NULL);
  address_limit_lift(hard);
  run_on(&tb, resume_at_capacity, NULL);
  storectx_async_store_release(locked);
  storectx_suspended_free(seg);
  CHECK(storectx_suspended_len(seg) == 0);
  worker_stop(&ta);
  worker_stop(&tb);
  puts("out of memory at resume: refused, segment untouched, resumed later");
  return 0;
}
