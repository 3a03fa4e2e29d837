/* Behaviour: the store set (src/stack/store_set.rs: open addressing, linear
 * probing, removal by clearing the slot, no tombstones, each id's entry
 * index kept beside it) answers exactly like a model when every store id
 * collides. Each table hashes with a multiplier of its own draw, so the
 * test first fixes it to 0x9E3779B97F4A7C15 through the testing hook
 * storectx_testing_set_hash_multiplier (SKIPPED without it), and ids are
 * chosen so that id * 0x9E3779B97F4A7C15 is k or 2^64 - k for small k: group A all hash to the
 * table's first slot at every table size, group B to its last slot, so B's
 * probe runs wrap around into A's and the two chains interleave. The test
 * pushes 1,120 such stores (some nested: the same store twice), crossing
 * every growth of the entry vector (16, 20, 24, ... 1,280) and of the set;
 * pops half, re-adds them in another order; pauses and borrows the top;
 * suspends at a base in the middle and resumes on a second thread that
 * already holds one of the segment's stores (refused, nothing changed, no id
 * left behind in its set) and then without it; and unwinds both stacks.
 * After each step every id of the universe is checked: is_paused and
 * is_active agree with the model, a paused store is refused as PAUSED naming
 * its topmost depth, an absent one as NOT_INSTALLED. Any probe chain broken
 * by a removal, or an index left stale by a move, shows as a mismatch. */
/* cprog: skip on=windows finds its test-only hash hook with dlsym(RTLD_DEFAULT), and Windows has no dlfcn.h; the store set is the same Rust code on every platform, checked on Linux x86-64, aarch64 and musl */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "check.h"
#include "store_answers.h"

#define PER_GROUP 560
#define UNIVERSE (2 * PER_GROUP)
#define MAX_DEPTH (UNIVERSE * 2 + 16)

static storectx_store_id universe[UNIVERSE];
static int store_mem;

typedef struct {
  storectx_store_id ids[MAX_DEPTH];
  storectx_install_guard guards[MAX_DEPTH];
  size_t depth;
} model;

static uint64_t inverse(uint64_t c) {
  uint64_t x = c; /* Newton's iteration: correct bits double each step */
  for (int i = 0; i < 6; i++) x *= 2 - c * x;
  return x;
}

static size_t topmost(const model *m, storectx_store_id id) {
  for (size_t d = m->depth; d > 0; d--)
    if (m->ids[d - 1] == id) return d;
  return 0;
}

static void verify(const model *m, const char *when) {
  CHECK(storectx_depth() == m->depth);
  storectx_store_id top = m->depth ? m->ids[m->depth - 1] : 0;
  CHECK(storectx_active_store() == top);
  for (size_t i = 0; i < UNIVERSE; i++) {
    storectx_store_id id = universe[i];
    check_store_answers(id, topmost(m, id), top, m->depth, when);
  }
}

static void push(model *m, storectx_store_id id) {
  CHECK_OK(storectx_install(id, &store_mem, &m->guards[m->depth]));
  m->ids[m->depth++] = id;
}

static void pop(model *m) {
  CHECK(m->depth > 0);
  CHECK_OK(storectx_uninstall(m->guards[m->depth - 1]));
  m->depth--;
}

/* What the first thread hands the second. */
static struct {
  storectx_suspended *seg;
  model seg_model; /* the segment's entries, bottom first */
  storectx_pause_guard p1, p2;
  storectx_borrow b;
} handoff;

static void *second_thread(void *arg) {
  (void)arg;
  static model m;
  /* Some colliding stores of its own, and one the segment carries. */
  const model *s = &handoff.seg_model;
  storectx_store_id clash = s->ids[s->depth / 2];
  for (size_t i = 0; i < 40; i++) {
    storectx_store_id id = universe[UNIVERSE - 1 - i];
    if (topmost(s, id) == 0) push(&m, id);
  }
  push(&m, clash);
  verify(&m, "second thread before resume");
  size_t base = 99;
  CHECK_STATUS(storectx_resume(handoff.seg, &base), STORECTX_ERR_ALREADY_ON_STACK);
  CHECK(base == 99);
  CHECK(storectx_suspended_len(handoff.seg) == s->depth);
  verify(&m, "second thread after the refused resume");
  pop(&m);
  verify(&m, "second thread after uninstalling the clash");
  CHECK_OK(storectx_resume(handoff.seg, &base));
  CHECK(base == m.depth);
  for (size_t i = 0; i < s->depth; i++) {
    m.ids[m.depth] = s->ids[i];
    m.guards[m.depth++] = s->guards[i];
  }
  verify(&m, "second thread after resume");
  CHECK_STATUS(storectx_unpause(handoff.p1), STORECTX_ERR_OUT_OF_ORDER);
  CHECK_OK(storectx_unpause(handoff.p2));
  CHECK_OK(storectx_unpause(handoff.p1));
  CHECK_STATUS(storectx_uninstall(m.guards[m.depth - 1]), STORECTX_ERR_STILL_BORROWED);
  CHECK_OK(storectx_borrow_release(handoff.b));
  while (m.depth > 0) {
    pop(&m);
    if (m.depth % 97 == 0) verify(&m, "second thread unwinding");
  }
  verify(&m, "second thread empty");
  return NULL;
}


int main(void) {
  set_multiplier_fn set_multiplier = hash_multiplier_hook();
  if (!set_multiplier) {
    printf("adversary_store_set_colliding_ids: SKIPPED (no testing hook: "
           "build with --features testing)\n");
    return 0;
  }
  set_multiplier(UINT64_C(0x9E3779B97F4A7C15)); /* before this thread's first table */
  const uint64_t c = UINT64_C(0x9E3779B97F4A7C15), cinv = inverse(c);
  CHECK(c * cinv == 1);
  for (size_t k = 0; k < PER_GROUP; k++) {
    universe[2 * k] = (uint64_t)(k + 1) * cinv;             /* hash k + 1: slot 0 */
    universe[2 * k + 1] = (uint64_t)(0 - (k + 1)) * cinv;   /* hash -(k+1): last slot */
    CHECK(universe[2 * k] * c == k + 1);
    CHECK(universe[2 * k] != 0 && universe[2 * k] != UINT64_MAX);
    CHECK(universe[2 * k + 1] != 0 && universe[2 * k + 1] != UINT64_MAX);
  }

  static model m;
  verify(&m, "empty");
  /* 1. Push every store, a nested second entry for every fifth. */
  for (size_t i = 0; i < UNIVERSE; i++) {
    push(&m, universe[i]);
    if (i % 5 == 0) push(&m, universe[i]);
    if (m.depth <= 40 || m.depth % 61 == 0 || (m.depth >= 1020 && m.depth <= 1030))
      verify(&m, "pushing");
  }
  verify(&m, "all pushed");

  /* 2. Pop half, LIFO; 3. re-add the popped stores in reverse order. */
  size_t half = m.depth / 2;
  static storectx_store_id popped[MAX_DEPTH];
  size_t npopped = 0;
  while (m.depth > half) {
    storectx_store_id id = m.ids[m.depth - 1];
    pop(&m);
    if (topmost(&m, id) == 0) popped[npopped++] = id;
    if (m.depth % 53 == 0) verify(&m, "popping");
  }
  verify(&m, "half popped");
  for (size_t i = npopped; i > 0; i--) {
    push(&m, popped[i - 1]);
    if (i % 3 == 0) push(&m, popped[i - 1]);
    if (i % 47 == 0) verify(&m, "re-adding");
  }
  verify(&m, "re-added");

  /* 4. Borrow and pause the top twice, suspend from the middle. */
  storectx_store_id top = m.ids[m.depth - 1];
  void *p;
  CHECK_OK(storectx_get_current(top, &p, &handoff.b));
  CHECK_OK(storectx_pause(top, &handoff.p1));
  CHECK_OK(storectx_pause(top, &handoff.p2));
  size_t base = m.depth / 3;
  /* Base inside a nested run of one store splits it: keep it that way. */
  CHECK_OK(storectx_suspend(base, &handoff.seg));
  CHECK(storectx_suspended_len(handoff.seg) == m.depth - base);
  for (size_t d = base; d < m.depth; d++) {
    handoff.seg_model.ids[handoff.seg_model.depth] = m.ids[d];
    handoff.seg_model.guards[handoff.seg_model.depth++] = m.guards[d];
  }
  m.depth = base;
  verify(&m, "after suspend");
  CHECK_STATUS(storectx_unpause(handoff.p2), STORECTX_ERR_STALE_HANDLE);
  CHECK_STATUS(storectx_borrow_release(handoff.b), STORECTX_ERR_STALE_HANDLE);
  CHECK_STATUS(storectx_uninstall(handoff.seg_model.guards[0]), STORECTX_ERR_STALE_HANDLE);

  /* 5. The second thread resumes it (after one refusal) and unwinds it. */
  pthread_t t;
  CHECK(pthread_create(&t, NULL, second_thread, NULL) == 0);
  CHECK(pthread_join(t, NULL) == 0);
  verify(&m, "after the second thread");

  /* 6. Unwind this thread. */
  while (m.depth > 0) {
    pop(&m);
    if (m.depth % 89 == 0) verify(&m, "unwinding");
  }
  verify(&m, "empty again");
  puts("store set with colliding ids agrees with the model");
  return 0;
}
