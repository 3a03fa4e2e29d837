/* thread_exit_late_call_changes_nothing_or_is_cleaned: a thread that used
 * libstorectx earlier calls it again from a pthread_key destructor, when its
 * state may already be torn down (issue 11, input 2, "A call that fails
 * during thread exit half-happens"; SPEC "Edges": "A call made too late to
 * be cleaned up is refused with nothing changed ... never half done").
 * Each call that takes ownership or creates state — suspend, install_async
 * of a write guard (twice if refused), resume of a segment, install, and
 * get_current — either is refused and nothing changed (the write guard
 * still holds its lock and releases it; the segment still holds its entry
 * and lock and frees them), or is accepted and what it installed is dropped
 * when the thread finishes exiting (locks free once it is joined). No call
 * answers STORECTX_ERR_PANIC. Today: install_async answers NO_CONTEXT but
 * releases the lock, and a second install_async answers PANIC.
 * Run for a key created before and after the library's first use in the
 * process (glibc destroys keys in index order) and for destructor rounds
 * 1 to 4 (a destructor that sets its own key again runs once more).
 * valgrind (.ci/run) checks that nothing leaks. Bounded: every lock is
 * taken with a timeout. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>

#include "check.h"

/* cprog: timeout 90 */

#define ONE_SECOND_NS 1000000000ull
#define ROUNDS 4                /* glibc's PTHREAD_DESTRUCTOR_ITERATIONS */

static int failures;
#define FAIL(...) (fprintf(stderr, __VA_ARGS__), failures++)

struct store { int value; };

/* What one exiting thread is given, and what its late calls answered. */
struct job {
  pthread_key_t key;
  int round, rounds_seen;
  const char *name;
  struct store early, late;
  storectx_store_id early_id, late_id;
  storectx_async_store *a, *r;  /* a: locked by w; r: locked by segment */
  storectx_write_guard *w;
  storectx_suspended *seg, *seg_out;
  storectx_status suspend_st, ia1_st, ia2_st, resume_st, install_st, get_st,
      get_early_st;
  size_t depth_before_install, depth_after_install;
  void *got, *got_early;
};

static storectx_async_store *new_async(struct store *st) {
  storectx_async_store *s = NULL;
  CHECK_OK(storectx_async_store_new(storectx_store_id_new(), st, &s));
  return s;
}

static void late_calls(struct job *j) {
  j->suspend_st = storectx_suspend(0, &j->seg_out);
  storectx_install_guard ig;
  j->ia1_st = storectx_install_async(j->w, &ig);
  if (j->ia1_st != STORECTX_OK) j->ia2_st = storectx_install_async(j->w, &ig);
  size_t base;
  j->resume_st = storectx_resume(j->seg, &base);
  j->depth_before_install = storectx_depth();
  storectx_install_guard g;
  j->install_st = storectx_install(j->late_id, &j->late, &g);
  j->depth_after_install = storectx_depth();
  storectx_borrow b;
  j->get_st = storectx_get_current(j->late_id, &j->got, &b);
  storectx_borrow be;
  j->get_early_st = storectx_get_current(j->early_id, &j->got_early, &be);
  /* exits with whatever was accepted on the stack */
}

static void destructor(void *arg) {
  struct job *j = arg;
  if (++j->rounds_seen < j->round) {
    CHECK(pthread_setspecific(j->key, j) == 0);  /* once more, next round */
    return;
  }
  late_calls(j);
}

static void *use_then_exit(void *arg) {
  struct job *j = arg;
  /* use the library: an entry left on the stack, a borrow, a write guard */
  storectx_install_guard g;
  CHECK_OK(storectx_install(j->early_id, &j->early, &g));
  void *p;
  storectx_borrow b;
  CHECK_OK(storectx_get_current(j->early_id, &p, &b));
  storectx_async_store *scratch = new_async(&j->early);
  storectx_write_guard *sw = NULL;
  CHECK_OK(storectx_async_store_try_write(scratch, &sw));
  storectx_write_guard_release(sw);
  storectx_async_store_release(scratch);
  CHECK(pthread_setspecific(j->key, j) == 0);
  return NULL;
}

static int is_panic(storectx_status s) { return s == STORECTX_ERR_PANIC; }

/* After the thread is joined: the lock of `s` is free, or (when `refused`)
 * still held until the caller's `release` gives it back. */
static void check_lock(struct job *j, const char *what, storectx_async_store *s,
                       int accepted) {
  storectx_write_guard *g = NULL;
  storectx_status st = storectx_async_store_try_write(s, &g);
  if (accepted && st != STORECTX_OK) {
    /* give a slow teardown a second before calling it a leak */
    st = storectx_async_store_write(s, ONE_SECOND_NS, &g);
    if (st != STORECTX_OK)
      FAIL("%s: %s was accepted but its lock is still held after the thread "
           "exited (write(1 s): %s)\n", j->name, what, storectx_status_str(st));
  }
  if (!accepted && st != STORECTX_ERR_BUSY)
    FAIL("%s: %s was refused but its lock was released (try_write: %s, want BUSY)\n",
         j->name, what, storectx_status_str(st));
  if (st == STORECTX_OK) storectx_write_guard_release(g);
}

static void run(pthread_key_t key, const char *key_name, int round) {
  struct job j;
  memset(&j, 0, sizeof j);
  char name[96];
  snprintf(name, sizeof name, "key %s, destructor round %d", key_name, round);
  j.name = name;
  j.key = key;
  j.round = round;
  j.early_id = storectx_store_id_new();
  j.late_id = storectx_store_id_new();
  j.a = new_async(&j.late);
  j.r = new_async(&j.late);
  CHECK_OK(storectx_async_store_try_write(j.a, &j.w));
  /* a segment holding r's lock, made on this thread */
  size_t base = storectx_depth();
  storectx_write_guard *wr = NULL;
  CHECK_OK(storectx_async_store_try_write(j.r, &wr));
  storectx_install_guard gr;
  CHECK_OK(storectx_install_async(wr, &gr));
  CHECK_OK(storectx_suspend(base, &j.seg));

  pthread_t t;
  CHECK(pthread_create(&t, NULL, use_then_exit, &j) == 0);
  CHECK(pthread_join(t, NULL) == 0);
  CHECK(j.rounds_seen == round);

  const struct { const char *call; storectx_status st; } answers[] = {
      {"suspend", j.suspend_st},         {"install_async", j.ia1_st},
      {"second install_async", j.ia2_st}, {"resume", j.resume_st},
      {"install", j.install_st},          {"get_current (late entry)", j.get_st},
      {"get_current (early entry)", j.get_early_st},
  };
  for (size_t i = 0; i < sizeof answers / sizeof answers[0]; i++)
    if (is_panic(answers[i].st))
      FAIL("%s: %s answered %s\n", name, answers[i].call,
           storectx_status_str(answers[i].st));

  /* suspend: refused leaves *out alone; accepted hands a segment over */
  if (j.suspend_st == STORECTX_OK) {
    if (j.seg_out == NULL) FAIL("%s: suspend answered OK and wrote NULL\n", name);
    storectx_suspended_free(j.seg_out);
  } else if (j.seg_out != NULL) {
    FAIL("%s: suspend was refused (%s) but wrote a segment\n", name,
         storectx_status_str(j.suspend_st));
  }

  /* install_async: refused leaves w holding the lock, releasable here */
  int ia_accepted = j.ia1_st == STORECTX_OK || j.ia2_st == STORECTX_OK;
  check_lock(&j, "install_async", j.a, ia_accepted);
  if (!ia_accepted) {
    if (storectx_write_guard_store(j.w) != &j.late)
      FAIL("%s: install_async was refused but spent the write guard\n", name);
    storectx_write_guard_release(j.w);
    storectx_write_guard *g = NULL;
    storectx_status st = storectx_async_store_try_write(j.a, &g);
    if (st != STORECTX_OK)
      FAIL("%s: releasing the refused write guard did not unlock (try_write: %s)\n",
           name, storectx_status_str(st));
    else
      storectx_write_guard_release(g);
  }

  /* resume: refused leaves the segment whole, freeable here */
  int resumed = j.resume_st == STORECTX_OK;
  check_lock(&j, "resume", j.r, resumed);
  if (resumed) {
    if (storectx_suspended_len(j.seg) != 0)
      FAIL("%s: resume answered OK but the segment is not spent\n", name);
  } else {
    if (storectx_suspended_len(j.seg) != 1)
      FAIL("%s: resume was refused (%s) but the segment holds %zu entries, want 1\n",
           name, storectx_status_str(j.resume_st), storectx_suspended_len(j.seg));
    storectx_suspended_free(j.seg);
    storectx_write_guard *g = NULL;
    storectx_status st = storectx_async_store_try_write(j.r, &g);
    if (st != STORECTX_OK)
      FAIL("%s: freeing the refused segment did not unlock (try_write: %s)\n",
           name, storectx_status_str(st));
    else
      storectx_write_guard_release(g);
  }

  /* install and get_current: accepted means really there */
  size_t want_depth = j.depth_before_install + (j.install_st == STORECTX_OK);
  if (j.depth_after_install != want_depth)
    FAIL("%s: install answered %s and the depth went from %zu to %zu\n", name,
         storectx_status_str(j.install_st), j.depth_before_install,
         j.depth_after_install);
  if (j.install_st == STORECTX_OK && (j.get_st != STORECTX_OK || j.got != &j.late))
    FAIL("%s: install was accepted but get_current of it answered %s\n", name,
         storectx_status_str(j.get_st));
  if (j.get_early_st == STORECTX_OK && j.got_early != &j.early)
    FAIL("%s: get_current of the early entry answered OK with the wrong store\n", name);

  storectx_async_store_release(j.a);
  storectx_async_store_release(j.r);
}

int main(void) {
  pthread_key_t before, after;
  /* `before` exists before any libstorectx call in the process; `after`
   * once the library has been used (its own per-thread machinery, if any,
   * then has the lower key index and is destroyed first in a round). */
  CHECK(pthread_key_create(&before, destructor) == 0);
  storectx_install_guard g;
  struct store s0 = {0};
  CHECK_OK(storectx_install(storectx_store_id_new(), &s0, &g));
  CHECK_OK(storectx_uninstall(g));
  CHECK(pthread_key_create(&after, destructor) == 0);
  for (int round = 1; round <= ROUNDS; round++) {
    run(before, "created before first use", round);
    run(after, "created after first use", round);
  }
  CHECK(storectx_is_empty());
  if (failures) {
    fprintf(stderr, "thread_exit_late_call_changes_nothing_or_is_cleaned: %d failures\n",
            failures);
    return 1;
  }
  puts("thread_exit_late_call_changes_nothing_or_is_cleaned: ok");
  return 0;
}
