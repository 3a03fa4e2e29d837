/* Behaviour: an async entry made by the fast halves on one thread (try_write
 * and install_async, with and without a write-guard slot parked in the
 * thread's spot), suspended there and resumed on another thread (with and
 * without a parked slot of its own), is uninstalled there: its pop (the
 * guard moved out of the entry and dropped last) frees the lock at once,
 * once; the install guard is then STALE_HANDLE on both threads; a write
 * guard taken afterwards on either thread is a new one. Variants: the
 * async entry alone; under a sync entry (popped first on the second
 * thread); paused (its pause record travels: unpause on the second thread,
 * then uninstall; or uninstall with the pause still on, whatever it
 * answers, the lock is free once the entry is gone); migrated twice (back
 * to the first thread). The segment's guard was never the write guard:
 * releasing the consumed write guard on either thread changes nothing. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>

#include "check.h"
#include "worker.h"

/* cprog: timeout 120 */

#define SENTINEL ((void *)0x5e71)

static int mem[4];
static storectx_async_store *s, *park_store;
static storectx_store_id sid;

struct state {
  int variant, parked;
  storectx_write_guard *g;
  storectx_install_guard async_ig, sync_ig;
  storectx_pause_guard pg;
  storectx_suspended *seg;
  storectx_write_guard *spare; /* keeps a spot empty */
};

static void prime(void *unused) {
  (void)unused;
  storectx_install_guard g;
  CHECK_OK(storectx_install(storectx_store_id_new(), &mem[3], &g));
  CHECK_OK(storectx_uninstall(g));
}

static void set_parked(void *p) {
  struct state *st = p;
  storectx_write_guard *g;
  CHECK_OK(storectx_async_store_try_write(park_store, &g));
  if (st->parked) storectx_write_guard_release(g);
  else st->spare = g;
}

static int lock_free(void) {
  storectx_write_guard *g = SENTINEL;
  storectx_status r = storectx_async_store_try_write(s, &g);
  if (r == STORECTX_OK) {
    storectx_write_guard_release(g);
    return 1;
  }
  CHECK(r == STORECTX_ERR_BUSY || r == STORECTX_ERR_EXHAUSTED);
  return 0;
}

static void make_and_suspend(void *p) {
  struct state *st = p;
  CHECK(storectx_is_empty());
  CHECK_OK(storectx_async_store_try_write(s, &st->g));
  CHECK_OK(storectx_install_async(st->g, &st->async_ig));
  if (st->variant == 2 || st->variant == 3) CHECK_OK(storectx_pause(sid, &st->pg));
  if (st->variant == 1) CHECK_OK(storectx_install(storectx_store_id_new(), &mem[1], &st->sync_ig));
  CHECK_OK(storectx_suspend(0, &st->seg));
  CHECK(storectx_is_empty());
  CHECK(!lock_free());
}

static void resume_here(void *p) {
  struct state *st = p;
  size_t base = 99;
  CHECK_OK(storectx_resume(st->seg, &base));
  CHECK(base == 0);
  CHECK(!lock_free());
}

static void suspend_here(void *p) {
  struct state *st = p;
  CHECK_OK(storectx_suspend(0, &st->seg));
}

static void finish_here(void *p) {
  struct state *st = p;
  if (st->variant == 1) {
    CHECK_STATUS(storectx_uninstall(st->async_ig), STORECTX_ERR_OUT_OF_ORDER);
    CHECK_OK(storectx_uninstall(st->sync_ig));
  }
  if (st->variant == 2) CHECK_OK(storectx_unpause(st->pg));
  storectx_write_guard_release(st->g); /* consumed: noted, nothing else */
  CHECK(!lock_free());
  storectx_status r = storectx_uninstall(st->async_ig);
  if (st->variant == 3 && r != STORECTX_OK) {
    /* Paused: whatever the refusal, nothing changed; unpause, then pop. */
    CHECK(!lock_free());
    CHECK_OK(storectx_unpause(st->pg));
    r = storectx_uninstall(st->async_ig);
  }
  CHECK_OK(r);
  CHECK(storectx_is_empty());
  CHECK(lock_free());
  CHECK_STATUS(storectx_uninstall(st->async_ig), STORECTX_ERR_STALE_HANDLE);
  if (st->variant >= 2) CHECK(storectx_unpause(st->pg) == STORECTX_ERR_STALE_HANDLE);
}

/* Every handle of the migrated entry is stale on this thread (its entry
 * is on the other one, or gone); the consumed write guard too. */
static void stale_only(void *p) {
  struct state *st = p;
  storectx_install_guard out = {0x77};
  CHECK_STATUS(storectx_uninstall(st->async_ig), STORECTX_ERR_STALE_HANDLE);
  CHECK_STATUS(storectx_install_async(st->g, &out), STORECTX_ERR_STALE_HANDLE);
  CHECK(out.raw == 0x77);
  storectx_write_guard_release(st->g);
}

static void stale_here(void *p) {
  struct state *st = p;
  stale_only(st);
  CHECK(lock_free());
  storectx_write_guard *g;
  CHECK_OK(storectx_async_store_try_write(s, &g));
  CHECK(g != st->g || storectx_write_guard_store(st->g) == &mem[0]);
  storectx_write_guard_release(g);
}

int main(void) {
  sid = storectx_store_id_new();
  CHECK_OK(storectx_async_store_new(sid, &mem[0], &s));
  CHECK_OK(storectx_async_store_new(storectx_store_id_new(), &mem[2], &park_store));
  prime(NULL);
  static struct worker A, B; /* pending, quit: 0 */
  worker_start(&A);
  worker_start(&B);
  run_on(&A, prime, NULL);
  run_on(&B, prime, NULL);
  int runs = 0;
  for (int round = 0; round < 2; round++)
    for (int variant = 0; variant < 4; variant++)
      for (int pa = 0; pa < 2; pa++)
        for (int pb = 0; pb < 2; pb++)
          for (int twice = 0; twice < 2; twice++) {
            struct state st = {.variant = variant};
            st.parked = pa;
            run_on(&A, set_parked, &st);
            if (!pa) storectx_write_guard_release(st.spare);
            st.parked = pb;
            run_on(&B, set_parked, &st);
            if (!pb) storectx_write_guard_release(st.spare);
            run_on(&A, make_and_suspend, &st);
            run_on(&B, resume_here, &st);
            struct worker *last = &B, *other = &A;
            if (twice) {
              run_on(&B, suspend_here, &st);
              run_on(&A, resume_here, &st);
              last = &A;
              other = &B;
            }
            run_on(other, stale_only, &st);
            CHECK(!lock_free());
            run_on(last, finish_here, &st);
            run_on(other, stale_here, &st);
            run_on(last, stale_here, &st);
            runs++;
          }
  worker_stop(&A);
  worker_stop(&B);
  storectx_async_store_release(s);
  storectx_async_store_release(park_store);
  printf("adversary_async_uninstall_after_migration: %d runs\n", runs);
  return 0;
}
