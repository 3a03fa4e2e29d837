/* thread_exit_releases: a pthread that exits with entries still on its stack
 * (async entries, borrows, pause guards, a segment it resumed) releases their
 * write locks, so other threads then take those locks: joined threads,
 * a detached thread, a thread another thread is already waiting on, several
 * threads exiting at once, and a thread holding the last reference to its
 * store (valgrind checks nothing leaks). Every lock is taken with a timeout
 * so a bug fails the test instead of hanging it. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <time.h>

#include "check.h"

#define TIMEOUT_NS 3000000000ull
#define MANY 8

struct store { int value; };

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static storectx_async_store *new_async(struct store *st) {
  storectx_async_store *s = NULL;
  CHECK_OK(storectx_async_store_new(storectx_store_id_new(), st, &s));
  return s;
}

static storectx_install_guard install_locked(storectx_async_store *s) {
  storectx_write_guard *g = NULL;
  CHECK_OK(storectx_async_store_try_write(s, &g));
  storectx_install_guard ig;
  CHECK_OK(storectx_install_async(g, &ig));
  return ig;
}

/* Take s's lock with a timeout, expect the store, give it back. */
static void take_lock(storectx_async_store *s, void *expect) {
  storectx_write_guard *g = NULL;
  CHECK_OK(storectx_async_store_write(s, TIMEOUT_NS, &g));
  CHECK(storectx_write_guard_store(g) == expect);
  storectx_write_guard_release(g);
}

/* ---- 1: async entries with borrows and pause guards ---- */

static struct store sa, sb, sc;
static storectx_async_store *a, *c;
static storectx_install_guard leftover_ga;
static storectx_borrow leftover_bb;

static void *exit_with_entries(void *arg) {
  (void)arg;
  void *p;
  storectx_borrow ba, bb, bb2, bc;
  storectx_install_guard ga = install_locked(a), gb;
  CHECK_OK(storectx_get_current(storectx_async_store_id(a), &p, &ba));
  storectx_pause_guard pa;
  CHECK_OK(storectx_pause(storectx_async_store_id(a), &pa));
  storectx_store_id idb = storectx_store_id_new();
  CHECK_OK(storectx_install(idb, &sb, &gb));
  CHECK_OK(storectx_get_current(idb, &p, &bb));
  CHECK_OK(storectx_get_current(idb, &p, &bb2));
  storectx_pause_guard pb;
  CHECK_OK(storectx_pause(idb, &pb));
  storectx_install_guard gc = install_locked(c);
  CHECK_OK(storectx_get_current(storectx_async_store_id(c), &p, &bc));
  CHECK(storectx_depth() == 3);
  (void)gc;
  leftover_ga = ga;
  leftover_bb = bb;
  return NULL;                  /* exits with all of it on the stack */
}

static void test_entries_released(void) {
  a = new_async(&sa);
  c = new_async(&sc);
  pthread_t t;
  CHECK(pthread_create(&t, NULL, exit_with_entries, NULL) == 0);
  CHECK(pthread_join(t, NULL) == 0);
  take_lock(a, &sa);
  take_lock(c, &sc);
  /* The exited thread's handles name nothing here. */
  CHECK_STATUS(storectx_uninstall(leftover_ga), STORECTX_ERR_STALE_HANDLE);
  CHECK_STATUS(storectx_borrow_release(leftover_bb), STORECTX_ERR_STALE_HANDLE);
  CHECK(storectx_is_empty());
  storectx_async_store_release(a);
  storectx_async_store_release(c);
}

/* ---- 2: a detached thread; 3: a waiter already blocked on the lock ---- */

struct held {
  storectx_async_store *s;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int locked;
  int may_exit;
};

static void *hold_and_exit(void *arg) {
  struct held *h = arg;
  storectx_install_guard ig = install_locked(h->s);
  (void)ig;
  pthread_mutex_lock(&h->mu);
  h->locked = 1;
  pthread_cond_broadcast(&h->cv);
  while (!h->may_exit) pthread_cond_wait(&h->cv, &h->mu);
  pthread_mutex_unlock(&h->mu);
  return NULL;
}

static void wait_locked(struct held *h) {
  pthread_mutex_lock(&h->mu);
  while (!h->locked) pthread_cond_wait(&h->cv, &h->mu);
  pthread_mutex_unlock(&h->mu);
}

static void let_exit(struct held *h) {
  pthread_mutex_lock(&h->mu);
  h->may_exit = 1;
  pthread_cond_broadcast(&h->cv);
  pthread_mutex_unlock(&h->mu);
}

static void test_detached_thread(void) {
  /* static: the detached thread may touch it until it is gone. */
  static struct held h = {NULL, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};
  static struct store sd;
  h.s = new_async(&sd);
  pthread_t t;
  CHECK(pthread_create(&t, NULL, hold_and_exit, &h) == 0);
  CHECK(pthread_detach(t) == 0);
  wait_locked(&h);
  storectx_write_guard *g = NULL;
  CHECK_STATUS(storectx_async_store_try_write(h.s, &g), STORECTX_ERR_BUSY);
  let_exit(&h);
  take_lock(h.s, &sd);          /* nobody joins: the exit alone releases it */
  storectx_async_store_release(h.s);
}

struct waiter { storectx_async_store *s; void *expect; double waited; };

static void *wait_for_lock(void *arg) {
  struct waiter *w = arg;
  double t0 = now_s();
  take_lock(w->s, w->expect);
  w->waited = now_s() - t0;
  return NULL;
}

static void test_blocked_waiter(void) {
  struct store se = {0};
  struct held h = {new_async(&se), PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};
  pthread_t holder, waiter;
  CHECK(pthread_create(&holder, NULL, hold_and_exit, &h) == 0);
  wait_locked(&h);
  struct waiter w = {h.s, &se, 0};
  CHECK(pthread_create(&waiter, NULL, wait_for_lock, &w) == 0);
  struct timespec ts = {0, 30 * 1000000L};
  nanosleep(&ts, NULL);         /* let the waiter block */
  let_exit(&h);
  CHECK(pthread_join(holder, NULL) == 0);
  CHECK(pthread_join(waiter, NULL) == 0);
  CHECK(w.waited < 0.8 * (double)TIMEOUT_NS * 1e-9);
  storectx_async_store_release(h.s);
}

/* ---- 4: a thread exits holding a segment it resumed ---- */

static storectx_suspended *moved;
static storectx_store_id id_f;

static void *resume_and_exit(void *arg) {
  struct store *sf = arg;
  size_t base;
  storectx_install_guard g0;
  CHECK_OK(storectx_install(storectx_store_id_new(), sf, &g0));
  CHECK_OK(storectx_resume(moved, &base));
  CHECK(base == 1 && storectx_depth() == 3);
  void *p;
  CHECK_OK(storectx_get_current_transient(id_f, &p));
  CHECK(p == sf);
  return NULL;
}

static void test_resumed_segment(void) {
  struct store se = {0}, sf = {0};
  storectx_async_store *e = new_async(&se);
  id_f = storectx_store_id_new();
  storectx_install_guard ge = install_locked(e), gf;
  CHECK_OK(storectx_install(id_f, &sf, &gf));
  void *p;
  storectx_borrow bf;
  CHECK_OK(storectx_get_current(id_f, &p, &bf));
  CHECK_OK(storectx_suspend(0, &moved));
  CHECK(storectx_is_empty());
  pthread_t t;
  CHECK(pthread_create(&t, NULL, resume_and_exit, &sf) == 0);
  CHECK(pthread_join(t, NULL) == 0);
  take_lock(e, &se);
  CHECK_STATUS(storectx_uninstall(ge), STORECTX_ERR_STALE_HANDLE);
  storectx_async_store_release(e);
}

/* ---- 5: many threads exiting at once ---- */

static struct store many_st[MANY][2];
static storectx_async_store *many[MANY][2];
static pthread_barrier_t many_barrier;

static void *exit_together(void *arg) {
  intptr_t i = (intptr_t)arg;
  install_locked(many[i][0]);
  storectx_install_guard g;
  CHECK_OK(storectx_install(storectx_store_id_new(), &many_st[i][0], &g));
  install_locked(many[i][1]);
  pthread_barrier_wait(&many_barrier);
  return NULL;
}

static void test_many_threads(void) {
  pthread_t t[MANY];
  CHECK(pthread_barrier_init(&many_barrier, NULL, MANY) == 0);
  for (intptr_t i = 0; i < MANY; i++) {
    many[i][0] = new_async(&many_st[i][0]);
    many[i][1] = new_async(&many_st[i][1]);
  }
  for (intptr_t i = 0; i < MANY; i++)
    CHECK(pthread_create(&t[i], NULL, exit_together, (void *)i) == 0);
  for (int i = 0; i < MANY; i++) CHECK(pthread_join(t[i], NULL) == 0);
  CHECK(pthread_barrier_destroy(&many_barrier) == 0);
  for (int i = 0; i < MANY; i++) {
    take_lock(many[i][0], &many_st[i][0]);
    take_lock(many[i][1], &many_st[i][1]);
    storectx_async_store_release(many[i][0]);
    storectx_async_store_release(many[i][1]);
  }
}

/* ---- 6: the exiting thread holds the last reference ---- */

static void *last_reference(void *arg) {
  struct store *sg = arg;
  storectx_async_store *s = new_async(sg);
  install_locked(s);
  storectx_async_store_release(s);     /* only the entry keeps it alive */
  void *p;
  storectx_async_store *as = NULL;
  storectx_borrow b;
  CHECK_OK(storectx_get_current_async(storectx_active_store(), &as, &p, &b));
  CHECK(p == sg && as != NULL);
  storectx_async_store_release(as);
  return NULL;                         /* valgrind: freed at exit */
}

static void test_last_reference(void) {
  struct store sg = {0};
  pthread_t t;
  CHECK(pthread_create(&t, NULL, last_reference, &sg) == 0);
  CHECK(pthread_join(t, NULL) == 0);
}

int main(void) {
  test_entries_released();
  test_detached_thread();
  test_blocked_waiter();
  test_resumed_segment();
  test_many_threads();
  test_last_reference();
  CHECK(storectx_is_empty());
  puts("thread_exit_releases: ok");
  return 0;
}
