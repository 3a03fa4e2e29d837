/* thread_exit_first_call_in_key_destructor: a thread whose FIRST libstorectx
 * call is made from a pthread_key destructor while it exits (issue 11, input
 * 1, "First call during thread exit"; SPEC "Edges of a thread's and a
 * process's life": "whenever its first call happened ... is dropped"). What
 * that destructor installs is dropped when the thread finishes exiting:
 *  1. it write-locks an async store and install_async's it: once the thread
 *     is joined, another thread takes the lock within 1 s (today: TIMED_OUT,
 *     the lock is held by a dead thread forever);
 *  2. the same from a destructor that runs in glibc's second round (a key
 *     destructor that sets another key's value) and third round (a
 *     destructor that sets its own key again);
 *  3. it resumes a segment holding a locked async entry, installs a sync
 *     entry with a borrow on top, and hands a new segment (another locked
 *     async entry) back: the resumed lock is released at exit, the segment
 *     handed back still holds its lock and frees cleanly.
 * valgrind (.ci/run) checks that nothing it installed leaks.
 * Every lock is taken with a timeout, so a fault fails, never hangs. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>

#include "check.h"

/* cprog: timeout 60 */

#define ONE_SECOND_NS 1000000000ull

/* A broken contract is reported and counted, and the other cases still run. */
static int failures;
#define FAIL(...) (fprintf(stderr, __VA_ARGS__), failures++)

struct store { int value; };

static storectx_async_store *new_async(struct store *st) {
  storectx_async_store *s = NULL;
  CHECK_OK(storectx_async_store_new(storectx_store_id_new(), st, &s));
  return s;
}

/* Another thread (the caller) takes s's lock within 1 s and gives it back. */
static void lock_is_free(storectx_async_store *s, const char *what) {
  storectx_write_guard *g = NULL;
  storectx_status st = storectx_async_store_write(s, ONE_SECOND_NS, &g);
  if (st != STORECTX_OK) {
    FAIL("%s: after the thread exited, its lock is still held: "
         "storectx_async_store_write(1 s) answered %s\n",
         what, storectx_status_str(st));
    return;
  }
  storectx_write_guard_release(g);
}

/* ---- 1 and 2: install_async from a destructor of round 1, 2 or 3 ---- */

struct job {
  int round;                    /* the destructor round that makes the call */
  int rounds_seen;              /* destructor invocations so far */
  pthread_key_t again;          /* the key to set for one more round */
  storectx_async_store *s;
  storectx_status write_st, install_st;
  size_t depth_after;
};

static pthread_key_t key_low, key_high;

static void first_call(struct job *j) {
  storectx_write_guard *w = NULL;
  j->write_st = storectx_async_store_write(j->s, ONE_SECOND_NS, &w);
  if (j->write_st != STORECTX_OK) return;
  storectx_install_guard ig;
  j->install_st = storectx_install_async(w, &ig);
  if (j->install_st != STORECTX_OK) {
    storectx_write_guard_release(w);    /* refused: the guard is still ours */
    return;
  }
  j->depth_after = storectx_depth();
  /* exits with the entry, and its lock, on the stack */
}

static void destructor(void *arg) {
  struct job *j = arg;
  j->rounds_seen++;
  if (j->rounds_seen < j->round) {
    /* glibc runs a key set during round n in round n + 1: a lower key than
     * the one being destroyed, or the same key set again. */
    CHECK(pthread_setspecific(j->again, j) == 0);
    return;
  }
  first_call(j);
}

static void *exit_with_destructor(void *arg) {
  struct job *j = arg;
  /* no libstorectx call here: the destructor makes the thread's first */
  CHECK(pthread_setspecific(key_high, j) == 0);
  return NULL;
}

static void test_install_async_in_round(int round) {
  struct store st = {round};
  struct job j = {0};
  j.round = round;
  /* round 2: key_high's destructor sets key_low, which glibc has passed in
   * this round; round 3: then key_low's destructor sets key_low again. */
  j.again = key_low;
  j.s = new_async(&st);
  pthread_t t;
  CHECK(pthread_create(&t, NULL, exit_with_destructor, &j) == 0);
  CHECK(pthread_join(t, NULL) == 0);
  CHECK(j.rounds_seen == j.round);
  if (j.write_st != STORECTX_OK || j.install_st != STORECTX_OK || j.depth_after != 1)
    FAIL("round %d: a first call from a key destructor was refused: "
         "write %s, install_async %s, depth %zu (want OK, OK, 1)\n",
         round, storectx_status_str(j.write_st),
         storectx_status_str(j.install_st), j.depth_after);
  char what[64];
  snprintf(what, sizeof what, "install_async in destructor round %d", round);
  lock_is_free(j.s, what);
  storectx_async_store_release(j.s);
}

/* ---- 3: resume a segment, a sync entry, a segment handed back ---- */

static struct store st_t, st_u, st_x;
static storectx_async_store *store_t, *store_u;
static storectx_store_id id_x;
static storectx_suspended *from_main, *to_main;
static storectx_status seg_st[6];
static pthread_key_t key_seg;

static void segment_destructor(void *arg) {
  (void)arg;
  size_t base = 99;
  seg_st[0] = storectx_resume(from_main, &base);          /* the first call */
  storectx_install_guard gx;
  seg_st[1] = storectx_install(id_x, &st_x, &gx);
  void *p = NULL;
  storectx_borrow bx;
  seg_st[2] = storectx_get_current(id_x, &p, &bx);
  if (seg_st[2] == STORECTX_OK && p != &st_x) seg_st[2] = STORECTX_ERR_ADDRESS_MISMATCH;
  size_t depth = storectx_depth();
  storectx_write_guard *w = NULL;
  seg_st[3] = storectx_async_store_write(store_u, ONE_SECOND_NS, &w);
  if (seg_st[3] != STORECTX_OK) return;
  storectx_install_guard gu;
  seg_st[4] = storectx_install_async(w, &gu);
  if (seg_st[4] != STORECTX_OK) {
    storectx_write_guard_release(w);
    return;
  }
  seg_st[5] = storectx_suspend(depth, &to_main);
  /* exits with T (resumed) and X (sync, borrowed) on the stack */
}

static void *exit_with_segment(void *arg) {
  (void)arg;
  CHECK(pthread_setspecific(key_seg, &st_t) == 0);
  return NULL;
}

static void test_segment_and_sync_entry(void) {
  store_t = new_async(&st_t);
  store_u = new_async(&st_u);
  id_x = storectx_store_id_new();
  /* main makes the segment: T locked by its async entry */
  size_t base = storectx_depth();
  storectx_write_guard *w = NULL;
  CHECK_OK(storectx_async_store_try_write(store_t, &w));
  storectx_install_guard gt;
  CHECK_OK(storectx_install_async(w, &gt));
  CHECK_OK(storectx_suspend(base, &from_main));
  CHECK(storectx_is_empty());

  pthread_t t;
  CHECK(pthread_create(&t, NULL, exit_with_segment, NULL) == 0);
  CHECK(pthread_join(t, NULL) == 0);
  static const char *const step[] = {"resume", "install", "get_current",
                                     "async_store_write", "install_async", "suspend"};
  int refused = 0;
  for (int i = 0; i < 6; i++) {
    if (seg_st[i] != STORECTX_OK) {
      FAIL("first calls from a key destructor: %s answered %s\n", step[i],
           storectx_status_str(seg_st[i]));
      refused = 1;
    }
  }
  if (seg_st[0] != STORECTX_OK) {
    storectx_suspended_free(from_main);     /* refused: still ours */
  } else {
    CHECK(storectx_suspended_len(from_main) == 0);
  }
  lock_is_free(store_t, "a segment resumed in a key destructor");
  if (!refused) {
    /* the segment handed back still holds U's lock, and frees it */
    CHECK(storectx_suspended_len(to_main) == 1);
    storectx_write_guard *g = NULL;
    CHECK_STATUS(storectx_async_store_try_write(store_u, &g), STORECTX_ERR_BUSY);
    storectx_suspended_free(to_main);
  }
  lock_is_free(store_u, "a segment freed after its maker exited");
  storectx_async_store_release(store_t);
  storectx_async_store_release(store_u);
}

int main(void) {
  /* No libstorectx call on any thread before these keys exist: key_low has
   * the lower index, so glibc destroys it first within a round. */
  CHECK(pthread_key_create(&key_low, destructor) == 0);
  CHECK(pthread_key_create(&key_high, destructor) == 0);
  CHECK(pthread_key_create(&key_seg, segment_destructor) == 0);
  test_install_async_in_round(1);
  test_install_async_in_round(2);
  test_install_async_in_round(3);
  test_segment_and_sync_entry();
  CHECK(storectx_is_empty());
  if (failures) {
    fprintf(stderr, "thread_exit_first_call_in_key_destructor: %d failures\n", failures);
    return 1;
  }
  puts("thread_exit_first_call_in_key_destructor: ok");
  return 0;
}
