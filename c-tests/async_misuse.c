/* async_misuse: every misuse of the async-store, install_async, suspend and
 * resume functions answers its documented status, leaves out-parameters and
 * the stack untouched, and keeps every lock and segment usable: NULL
 * arguments, id 0, double resume, resume onto a thread already holding a
 * store of the segment, suspend above the depth, write on a store this
 * thread holds, try_write/write while another thread holds it (BUSY,
 * TIMED_OUT after roughly the timeout), install_async of a store already on
 * the stack, install of the same id over its async entry (no-op guard),
 * get_current_async for sync and async entries, write guards released twice
 * or after install_async, freeing a never-resumed segment, and async stores
 * kept alive by guards, entries and segments after their last release. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include "check.h"

struct store { int value; };

#define SENTINEL ((void *)0x5e71)

/* ---- helpers ---- */

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* storectx_last_error() names the failing function without its prefix. */
static void check_error_from(const char *fn) {
  const char *msg = storectx_last_error();
  if (strncmp(msg, fn, strlen(fn)) != 0) {
    fprintf(stderr, "last_error should start with \"%s\": \"%s\"\n", fn, msg);
    exit(1);
  }
}

static void run_thread(void *(*fn)(void *), void *arg) {
  pthread_t t;
  CHECK(pthread_create(&t, NULL, fn, arg) == 0);
  CHECK(pthread_join(t, NULL) == 0);
}

/* try_write from a fresh thread: the status it got (lock given back). */
struct probe { storectx_async_store *s; storectx_status st; };

static void *probe_try_write(void *arg) {
  struct probe *pr = arg;
  storectx_write_guard *g = SENTINEL;
  pr->st = storectx_async_store_try_write(pr->s, &g);
  if (pr->st == STORECTX_OK)
    storectx_write_guard_release(g);
  else
    CHECK(g == SENTINEL);
  return NULL;
}

static storectx_status try_write_elsewhere(storectx_async_store *s) {
  struct probe pr = {s, -1};
  run_thread(probe_try_write, &pr);
  return pr.st;
}

static storectx_async_store *new_async(struct store *st, storectx_store_id *id) {
  *id = storectx_store_id_new();
  storectx_async_store *s = NULL;
  CHECK_OK(storectx_async_store_new(*id, st, &s));
  CHECK(s != NULL);
  CHECK(storectx_async_store_id(s) == *id);
  return s;
}

/* Lock s and push it as an async entry on this thread. */
static storectx_install_guard install_locked(storectx_async_store *s) {
  storectx_write_guard *g = NULL;
  CHECK_OK(storectx_async_store_try_write(s, &g));
  storectx_install_guard ig;
  CHECK_OK(storectx_install_async(g, &ig));
  return ig;
}

/* A tiny one-shot gate between two threads. */
struct gate { pthread_mutex_t mu; pthread_cond_t cv; int open; };
#define GATE_INIT {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0}

static void gate_open(struct gate *g) {
  pthread_mutex_lock(&g->mu);
  g->open = 1;
  pthread_cond_broadcast(&g->cv);
  pthread_mutex_unlock(&g->mu);
}

static void gate_wait(struct gate *g) {
  pthread_mutex_lock(&g->mu);
  while (!g->open) pthread_cond_wait(&g->cv, &g->mu);
  pthread_mutex_unlock(&g->mu);
}

/* ---- NULL and id 0 ---- */

static void test_null_arguments(void) {
  struct store st = {0};
  storectx_store_id id = storectx_store_id_new();
  storectx_async_store *out = SENTINEL;
  CHECK_STATUS(storectx_async_store_new(id, NULL, &out), STORECTX_ERR_NULL_ARGUMENT);
  check_error_from("async_store_new");
  CHECK_STATUS(storectx_async_store_new(id, &st, NULL), STORECTX_ERR_NULL_ARGUMENT);
  CHECK_STATUS(storectx_async_store_new(0, NULL, &out), STORECTX_ERR_NULL_ARGUMENT);
  CHECK_STATUS(storectx_async_store_new(0, &st, &out), STORECTX_ERR_INVALID_ARGUMENT);
  CHECK(out == SENTINEL);

  CHECK(storectx_async_store_clone(NULL) == NULL);
  CHECK(storectx_async_store_id(NULL) == 0);
  storectx_async_store_release(NULL);
  CHECK(storectx_write_guard_store(NULL) == NULL);
  storectx_write_guard_release(NULL);
  CHECK(storectx_suspended_len(NULL) == 0);
  storectx_suspended_free(NULL);

  storectx_async_store *s = new_async(&st, &id);
  storectx_write_guard *g = SENTINEL;
  CHECK_STATUS(storectx_async_store_try_write(NULL, &g), STORECTX_ERR_NULL_ARGUMENT);
  check_error_from("async_store_try_write");
  CHECK_STATUS(storectx_async_store_try_write(s, NULL), STORECTX_ERR_NULL_ARGUMENT);
  CHECK_STATUS(storectx_async_store_write(NULL, 0, &g), STORECTX_ERR_NULL_ARGUMENT);
  check_error_from("async_store_write");
  CHECK_STATUS(storectx_async_store_write(s, 0, NULL), STORECTX_ERR_NULL_ARGUMENT);
  CHECK(g == SENTINEL);
  CHECK(try_write_elsewhere(s) == STORECTX_OK);     /* nothing was locked */

  CHECK_OK(storectx_async_store_try_write(s, &g));
  storectx_install_guard ig = {77};
  CHECK_STATUS(storectx_install_async(NULL, &ig), STORECTX_ERR_NULL_ARGUMENT);
  check_error_from("install_async");
  CHECK_STATUS(storectx_install_async(g, NULL), STORECTX_ERR_NULL_ARGUMENT);
  CHECK(ig.raw == 77);
  CHECK(storectx_is_empty());
  CHECK(storectx_write_guard_store(g) == &st);      /* not consumed */
  CHECK(try_write_elsewhere(s) == STORECTX_ERR_BUSY);
  storectx_write_guard_release(g);
  CHECK(try_write_elsewhere(s) == STORECTX_OK);

  ig = install_locked(s);
  storectx_async_store *as = SENTINEL;
  void *p = SENTINEL;
  storectx_borrow b = {77};
  CHECK_STATUS(storectx_get_current_async(id, NULL, &p, &b), STORECTX_ERR_NULL_ARGUMENT);
  check_error_from("get_current_async");
  CHECK_STATUS(storectx_get_current_async(id, &as, NULL, &b), STORECTX_ERR_NULL_ARGUMENT);
  CHECK_STATUS(storectx_get_current_async(id, &as, &p, NULL), STORECTX_ERR_NULL_ARGUMENT);
  CHECK_STATUS(storectx_get_current_async(0, &as, &p, &b), STORECTX_ERR_INVALID_ARGUMENT);
  CHECK(as == SENTINEL && p == SENTINEL && b.raw == 77);
  CHECK_OK(storectx_uninstall(ig));                 /* no borrow was taken */

  ig = install_locked(s);
  CHECK_STATUS(storectx_suspend(0, NULL), STORECTX_ERR_NULL_ARGUMENT);
  check_error_from("suspend");
  CHECK(storectx_depth() == 1);
  storectx_suspended *seg = NULL;
  CHECK_OK(storectx_suspend(0, &seg));
  size_t base = 99;
  CHECK_STATUS(storectx_resume(NULL, &base), STORECTX_ERR_NULL_ARGUMENT);
  check_error_from("resume");
  CHECK_STATUS(storectx_resume(seg, NULL), STORECTX_ERR_NULL_ARGUMENT);
  CHECK(base == 99);
  CHECK(storectx_is_empty());
  CHECK(storectx_suspended_len(seg) == 1);          /* untouched */
  CHECK_OK(storectx_resume(seg, &base));
  CHECK(base == 0);
  CHECK_OK(storectx_uninstall(ig));
  CHECK(storectx_is_empty());
  storectx_async_store_release(s);
}

/* ---- get_current_async ---- */

static void test_get_current_async(void) {
  struct store sx = {0}, sa = {0};
  storectx_store_id idx = storectx_store_id_new(), ida;
  storectx_async_store *a = new_async(&sa, &ida);
  storectx_async_store *as = SENTINEL;
  void *p = SENTINEL;
  storectx_borrow b = {77};

  CHECK_STATUS(storectx_get_current_async(idx, &as, &p, &b), STORECTX_ERR_NO_CONTEXT);
  storectx_install_guard gx;
  CHECK_OK(storectx_install(idx, &sx, &gx));
  CHECK_STATUS(storectx_get_current_async(ida, &as, &p, &b), STORECTX_ERR_NOT_INSTALLED);
  CHECK(as == SENTINEL && p == SENTINEL && b.raw == 77);

  /* Sync entry: the store, a borrow, and NULL for the async store. */
  CHECK_OK(storectx_get_current_async(idx, &as, &p, &b));
  CHECK(as == NULL);
  CHECK(p == &sx);
  CHECK_STATUS(storectx_uninstall(gx), STORECTX_ERR_STILL_BORROWED);
  CHECK_OK(storectx_borrow_release(b));

  /* Async entry on top of it: a new reference to the async store. */
  storectx_install_guard ga = install_locked(a);
  CHECK_STATUS(storectx_get_current_async(idx, &as, &p, &b), STORECTX_ERR_PAUSED);
  as = NULL;
  CHECK_OK(storectx_get_current_async(ida, &as, &p, &b));
  CHECK(as != NULL);
  CHECK(storectx_async_store_id(as) == ida);
  CHECK(p == &sa);
  CHECK_STATUS(storectx_borrow_clone(b, &b), STORECTX_ERR_NOT_SYNC);
  CHECK_OK(storectx_borrow_release(b));
  /* The reference outlives the caller's own and the entry. */
  storectx_async_store_release(a);
  CHECK_OK(storectx_uninstall(ga));
  CHECK(try_write_elsewhere(as) == STORECTX_OK);
  storectx_write_guard *g = NULL;
  CHECK_OK(storectx_async_store_try_write(as, &g));
  CHECK(storectx_write_guard_store(g) == &sa);
  storectx_write_guard_release(g);
  storectx_async_store_release(as);
  CHECK_OK(storectx_uninstall(gx));
  CHECK(storectx_is_empty());
}

/* ---- double resume, resume after free ---- */

static void test_double_resume(void) {
  struct store sa = {0}, sb = {0};
  storectx_store_id ida, idb = storectx_store_id_new();
  storectx_async_store *a = new_async(&sa, &ida);
  storectx_install_guard ga = install_locked(a), gb;
  CHECK_OK(storectx_install(idb, &sb, &gb));

  storectx_suspended *seg = NULL;
  CHECK_OK(storectx_suspend(0, &seg));
  CHECK(storectx_suspended_len(seg) == 2);
  size_t base = 99;
  CHECK_OK(storectx_resume(seg, &base));
  CHECK(base == 0);
  CHECK(storectx_depth() == 2);
  base = 99;
  CHECK_STATUS(storectx_resume(seg, &base), STORECTX_ERR_STALE_HANDLE);
  CHECK(base == 99);
  CHECK(storectx_depth() == 2);
  CHECK(storectx_suspended_len(seg) == 0);
  storectx_suspended_free(seg);                       /* consumed: no-op */
  CHECK(storectx_depth() == 2);
  CHECK(try_write_elsewhere(a) == STORECTX_ERR_BUSY); /* lock still ours */

  /* Resume after free. */
  CHECK_OK(storectx_suspend(1, &seg));
  CHECK(storectx_suspended_len(seg) == 1);
  storectx_suspended_free(seg);
  CHECK_STATUS(storectx_uninstall(gb), STORECTX_ERR_STALE_HANDLE);
  CHECK_STATUS(storectx_resume(seg, &base), STORECTX_ERR_STALE_HANDLE);
  CHECK(storectx_depth() == 1);
  CHECK_OK(storectx_uninstall(ga));
  CHECK(storectx_is_empty());
  storectx_async_store_release(a);
}

/* ---- resume onto a thread already holding a store of the segment ---- */

struct seg_case {
  storectx_suspended *seg;
  storectx_store_id ida, idb;
  void *sa, *sb;
  storectx_install_guard ga, gb;
  storectx_borrow bb;
  storectx_async_store *a;
};

static void *resume_and_unwind(void *arg) {
  struct seg_case *c = arg;
  CHECK(storectx_is_empty());
  size_t base = 99;
  CHECK_OK(storectx_resume(c->seg, &base));
  CHECK(base == 0);
  CHECK(storectx_depth() == 2);
  void *p = NULL;
  CHECK_OK(storectx_get_current_transient(c->idb, &p));
  CHECK(p == c->sb);
  CHECK_OK(storectx_borrow_release(c->bb));
  CHECK_OK(storectx_uninstall(c->gb));
  CHECK_OK(storectx_get_current_transient(c->ida, &p));
  CHECK(p == c->sa);
  CHECK_OK(storectx_uninstall(c->ga));
  CHECK(storectx_is_empty());
  return NULL;
}

static void test_resume_already_on_stack(void) {
  struct store sa = {0}, sb = {0}, other = {0};
  struct seg_case c = {0};
  c.idb = storectx_store_id_new();
  c.a = new_async(&sa, &c.ida);
  c.sa = &sa;
  c.sb = &sb;
  c.ga = install_locked(c.a);
  CHECK_OK(storectx_install(c.idb, &sb, &c.gb));
  void *p;
  CHECK_OK(storectx_get_current(c.idb, &p, &c.bb));
  CHECK_OK(storectx_suspend(0, &c.seg));
  CHECK(storectx_suspended_len(c.seg) == 2);

  /* This thread now holds B (the segment's top store) itself. */
  storectx_install_guard g;
  CHECK_OK(storectx_install(c.idb, &sb, &g));
  size_t base = 99;
  CHECK_STATUS(storectx_resume(c.seg, &base), STORECTX_ERR_ALREADY_ON_STACK);
  check_error_from("resume");
  CHECK(base == 99);
  CHECK(storectx_depth() == 1 && storectx_is_active(c.idb));
  CHECK(storectx_suspended_len(c.seg) == 2);
  CHECK_OK(storectx_uninstall(g));

  /* ... or A (the segment's bottom store), paused under another store. */
  storectx_install_guard gx;
  CHECK_OK(storectx_install(c.ida, &sa, &g));
  CHECK_OK(storectx_install(storectx_store_id_new(), &other, &gx));
  CHECK_STATUS(storectx_resume(c.seg, &base), STORECTX_ERR_ALREADY_ON_STACK);
  CHECK(base == 99);
  CHECK(storectx_depth() == 2);
  CHECK(storectx_suspended_len(c.seg) == 2);
  CHECK(try_write_elsewhere(c.a) == STORECTX_ERR_BUSY);   /* lock kept */
  CHECK_OK(storectx_uninstall(gx));
  CHECK_OK(storectx_uninstall(g));

  /* The segment is intact: another thread resumes and unwinds it. */
  run_thread(resume_and_unwind, &c);
  CHECK(try_write_elsewhere(c.a) == STORECTX_OK);
  CHECK(storectx_is_empty());
  storectx_async_store_release(c.a);
}

/* ---- suspend above the depth ---- */

static void test_suspend_above_depth(void) {
  struct store sx = {0};
  storectx_suspended *seg = SENTINEL;
  CHECK_STATUS(storectx_suspend(1, &seg), STORECTX_ERR_INVALID_ARGUMENT);
  check_error_from("suspend");
  CHECK(seg == SENTINEL);

  storectx_install_guard gx;
  storectx_store_id idx = storectx_store_id_new();
  CHECK_OK(storectx_install(idx, &sx, &gx));
  CHECK_STATUS(storectx_suspend(2, &seg), STORECTX_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(storectx_suspend(SIZE_MAX, &seg), STORECTX_ERR_INVALID_ARGUMENT);
  CHECK(seg == SENTINEL);
  CHECK(storectx_depth() == 1 && storectx_is_active(idx));

  /* base == depth: an empty segment. */
  CHECK_OK(storectx_suspend(1, &seg));
  CHECK(seg != SENTINEL && storectx_suspended_len(seg) == 0);
  CHECK(storectx_depth() == 1);
  size_t base = 99;
  CHECK_OK(storectx_resume(seg, &base));
  CHECK(base == 1);
  CHECK(storectx_depth() == 1);
  CHECK_OK(storectx_uninstall(gx));
  CHECK(storectx_is_empty());
}

/* ---- write on a store this thread holds ---- */

static void *expect_timed_out_0(void *arg) {
  storectx_write_guard *g = SENTINEL;
  CHECK_STATUS(storectx_async_store_write(arg, 0, &g), STORECTX_ERR_TIMED_OUT);
  CHECK(g == SENTINEL);
  return NULL;
}

static void test_would_deadlock(void) {
  struct store sa = {0}, sb = {0};
  storectx_store_id ida, idb = storectx_store_id_new();
  storectx_async_store *a = new_async(&sa, &ida);
  storectx_async_store *a2 = storectx_async_store_clone(a);
  CHECK(storectx_async_store_id(a2) == ida);
  storectx_install_guard ga = install_locked(a), gb;

  storectx_write_guard *g = SENTINEL;
  CHECK_STATUS(storectx_async_store_write(a, 0, &g), STORECTX_ERR_WOULD_DEADLOCK);
  check_error_from("async_store_write");
  double t0 = now_s();
  CHECK_STATUS(storectx_async_store_write(a2, 3000000000ull, &g),
               STORECTX_ERR_WOULD_DEADLOCK);
  CHECK(now_s() - t0 < 1.0);                /* refused before waiting */

  /* Still refused while the async entry is paused under a sync one. */
  CHECK_OK(storectx_install(idb, &sb, &gb));
  CHECK_STATUS(storectx_async_store_write(a, 0, &g), STORECTX_ERR_WOULD_DEADLOCK);
  CHECK(g == SENTINEL);
  CHECK(storectx_depth() == 2 && storectx_is_active(idb));

  /* Another thread is not deadlocked, it just waits and times out. */
  run_thread(expect_timed_out_0, a);
  CHECK_OK(storectx_uninstall(gb));
  CHECK_OK(storectx_uninstall(ga));

  /* Once uninstalled, this thread may write again. */
  CHECK_OK(storectx_async_store_write(a, 0, &g));
  storectx_write_guard_release(g);
  storectx_async_store_release(a2);
  storectx_async_store_release(a);
  CHECK(storectx_is_empty());
}

/* ---- BUSY and TIMED_OUT while another thread holds the lock ---- */

struct holder {
  storectx_async_store *s;
  struct gate locked, done;
};

/* Holds the store through an installed async entry until told to stop. */
static void *hold_installed(void *arg) {
  struct holder *h = arg;
  storectx_install_guard ig = install_locked(h->s);
  gate_open(&h->locked);
  gate_wait(&h->done);
  CHECK_OK(storectx_uninstall(ig));
  return NULL;
}

static void *release_guard(void *arg) {
  storectx_write_guard_release(arg);
  return NULL;
}

struct waiter {
  storectx_async_store *s;
  struct gate started;
  atomic_int released;        /* set by the holder just before releasing */
};

static void *write_waits(void *arg) {
  struct waiter *w = arg;
  storectx_write_guard *g = NULL;
  gate_open(&w->started);
  CHECK_OK(storectx_async_store_write(w->s, 5000000000ull, &g));
  CHECK(atomic_load(&w->released));          /* not before the release */
  storectx_write_guard_release(g);
  return NULL;
}

static void test_busy_and_timeout(void) {
  struct store sa = {0};
  storectx_store_id ida;
  storectx_async_store *a = new_async(&sa, &ida);

  /* Held by a plain write guard of this thread, seen from another. */
  storectx_write_guard *held = NULL;
  CHECK_OK(storectx_async_store_try_write(a, &held));
  CHECK(try_write_elsewhere(a) == STORECTX_ERR_BUSY);
  run_thread(expect_timed_out_0, a);
  /* A guard may be released on another thread than the one that took it. */
  run_thread(release_guard, held);
  CHECK(try_write_elsewhere(a) == STORECTX_OK);

  /* Held by an async entry on another thread. */
  struct holder h = {a, GATE_INIT, GATE_INIT};
  pthread_t t;
  CHECK(pthread_create(&t, NULL, hold_installed, &h) == 0);
  gate_wait(&h.locked);
  storectx_write_guard *g = SENTINEL;
  CHECK_STATUS(storectx_async_store_try_write(a, &g), STORECTX_ERR_BUSY);
  check_error_from("async_store_try_write");
  CHECK_STATUS(storectx_async_store_write(a, 0, &g), STORECTX_ERR_TIMED_OUT);
  check_error_from("async_store_write");
  double t0 = now_s();
  CHECK_STATUS(storectx_async_store_write(a, 50000000ull, &g), STORECTX_ERR_TIMED_OUT);
  double waited = now_s() - t0;
  CHECK(waited >= 0.040);           /* waited roughly the 50 ms asked */
  CHECK(waited < 5.0);
  CHECK(g == SENTINEL);
  CHECK(storectx_is_empty());
  gate_open(&h.done);
  CHECK(pthread_join(t, NULL) == 0);
  CHECK(try_write_elsewhere(a) == STORECTX_OK);

  /* write with a long timeout gets the lock as soon as it is released. */
  CHECK_OK(storectx_async_store_try_write(a, &held));
  struct waiter w = {a, GATE_INIT, 0};
  CHECK(pthread_create(&t, NULL, write_waits, &w) == 0);
  gate_wait(&w.started);
  sleep_ms(30);                               /* let it block in write */
  atomic_store(&w.released, 1);
  storectx_write_guard_release(held);
  CHECK(pthread_join(t, NULL) == 0);
  storectx_async_store_release(a);
}

/* ---- install_async of a store already on the stack ---- */

static void test_install_async_already_on_stack(void) {
  struct store sx = {0}, sy = {0};
  storectx_store_id idx = storectx_store_id_new(), idy = storectx_store_id_new();
  storectx_async_store *ax = NULL;
  CHECK_OK(storectx_async_store_new(idx, &sx, &ax));
  storectx_install_guard gx, gy;
  CHECK_OK(storectx_install(idx, &sx, &gx));       /* X on the stack, sync */

  storectx_write_guard *g = NULL;
  CHECK_OK(storectx_async_store_try_write(ax, &g));
  storectx_install_guard ig = {77};
  CHECK_STATUS(storectx_install_async(g, &ig), STORECTX_ERR_ALREADY_ON_STACK);
  check_error_from("install_async");
  CHECK(ig.raw == 77);
  CHECK(storectx_depth() == 1);
  CHECK(storectx_write_guard_store(g) == &sx);     /* not consumed */

  CHECK_OK(storectx_install(idy, &sy, &gy));       /* X paused: still refused */
  CHECK_STATUS(storectx_install_async(g, &ig), STORECTX_ERR_ALREADY_ON_STACK);
  CHECK(ig.raw == 77);
  CHECK(storectx_depth() == 2 && storectx_is_active(idy));
  CHECK(try_write_elsewhere(ax) == STORECTX_ERR_BUSY);
  storectx_write_guard_release(g);                 /* still the caller's */
  CHECK(try_write_elsewhere(ax) == STORECTX_OK);
  CHECK_OK(storectx_uninstall(gy));
  CHECK_OK(storectx_uninstall(gx));

  /* A consumed guard cannot be installed twice. */
  CHECK_OK(storectx_async_store_try_write(ax, &g));
  CHECK_OK(storectx_install_async(g, &ig));
  storectx_install_guard ig2 = {77};
  CHECK_STATUS(storectx_install_async(g, &ig2), STORECTX_ERR_STALE_HANDLE);
  CHECK(ig2.raw == 77);
  CHECK(storectx_depth() == 1);
  CHECK_OK(storectx_uninstall(ig));
  CHECK(try_write_elsewhere(ax) == STORECTX_OK);
  storectx_async_store_release(ax);
  CHECK(storectx_is_empty());
}

/* ---- install of the same id while its async entry is on top ---- */

static void test_install_over_async(void) {
  struct store sa = {0}, sb = {0}, elsewhere = {0};
  storectx_store_id ida, idb = storectx_store_id_new();
  storectx_async_store *a = new_async(&sa, &ida);
  storectx_install_guard ga = install_locked(a), g, g2, gb;

  CHECK_OK(storectx_install(ida, &sa, &g));
  CHECK(!storectx_install_guard_installed(g));
  CHECK(storectx_depth() == 1);
  CHECK(storectx_install_guard_installed(ga));
  void *p = NULL;
  CHECK_OK(storectx_get_current_transient(ida, &p));
  CHECK(p == &sa);
  /* Always a no-op guard, whatever address is given. */
  CHECK_OK(storectx_install(ida, &elsewhere, &g2));
  CHECK(!storectx_install_guard_installed(g2));
  CHECK(storectx_depth() == 1);
  CHECK_OK(storectx_uninstall(g2));
  CHECK_OK(storectx_uninstall(g));
  CHECK(storectx_depth() == 1 && storectx_is_active(ida));
  CHECK(try_write_elsewhere(a) == STORECTX_ERR_BUSY);   /* still locked */

  /* Paused under another store: PAUSED, not a no-op. */
  CHECK_OK(storectx_install(idb, &sb, &gb));
  g.raw = 77;
  CHECK_STATUS(storectx_install(ida, &sa, &g), STORECTX_ERR_PAUSED);
  CHECK(g.raw == 77);
  CHECK_OK(storectx_uninstall(gb));
  CHECK_OK(storectx_uninstall(ga));
  CHECK(try_write_elsewhere(a) == STORECTX_OK);
  storectx_async_store_release(a);
  CHECK(storectx_is_empty());
}

/* ---- write guard released twice, or after install_async ---- */

static void *guard_release_twice(void *arg) {
  storectx_async_store *a = arg;
  CHECK(storectx_last_error()[0] == '\0');          /* fresh thread */
  storectx_write_guard *g = NULL, *g2 = NULL;
  CHECK_OK(storectx_async_store_try_write(a, &g));
  storectx_write_guard_release(g);
  CHECK(storectx_last_error()[0] == '\0');
  CHECK(storectx_write_guard_store(g) == NULL);
  storectx_write_guard_release(g);                  /* no-op, but noted */
  CHECK(storectx_last_error()[0] != '\0');
  check_error_from("write_guard_release");

  /* A stale guard never unlocks somebody else's lock. */
  CHECK_OK(storectx_async_store_try_write(a, &g2));
  storectx_write_guard_release(g);
  CHECK(try_write_elsewhere(a) == STORECTX_ERR_BUSY);
  CHECK(storectx_write_guard_store(g2) != NULL);
  storectx_write_guard_release(g2);
  CHECK(try_write_elsewhere(a) == STORECTX_OK);

  /* After install_async the entry owns it: releasing is a no-op. */
  CHECK_OK(storectx_async_store_try_write(a, &g));
  storectx_install_guard ig;
  CHECK_OK(storectx_install_async(g, &ig));
  CHECK(storectx_write_guard_store(g) == NULL);
  storectx_write_guard_release(g);
  CHECK(storectx_install_guard_installed(ig));
  CHECK(try_write_elsewhere(a) == STORECTX_ERR_BUSY);
  CHECK_OK(storectx_uninstall(ig));
  CHECK(try_write_elsewhere(a) == STORECTX_OK);
  CHECK(storectx_is_empty());
  return NULL;
}

static void test_guard_release_twice(void) {
  struct store sa = {0};
  storectx_store_id ida;
  storectx_async_store *a = new_async(&sa, &ida);
  run_thread(guard_release_twice, a);
  storectx_async_store_release(a);
}

/* ---- free of a never-resumed segment ---- */

struct parked {
  struct seg_case c;
  storectx_pause_guard pb;
  struct gate suspended, freed;
};

static void *park_segment(void *arg) {
  struct parked *k = arg;
  struct seg_case *c = &k->c;
  c->ga = install_locked(c->a);
  CHECK_OK(storectx_install(c->idb, c->sb, &c->gb));
  void *p;
  storectx_borrow b2;
  CHECK_OK(storectx_get_current(c->idb, &p, &c->bb));
  CHECK_OK(storectx_get_current(c->idb, &p, &b2));
  CHECK_OK(storectx_pause(c->idb, &k->pb));          /* pauses b2 */
  CHECK_OK(storectx_suspend(0, &c->seg));
  CHECK(storectx_suspended_len(c->seg) == 2);
  gate_open(&k->suspended);

  gate_wait(&k->freed);
  /* Its handles are stale here too, and the ids are free to use again. */
  CHECK_STATUS(storectx_unpause(k->pb), STORECTX_ERR_STALE_HANDLE);
  CHECK_STATUS(storectx_borrow_release(c->bb), STORECTX_ERR_STALE_HANDLE);
  CHECK_STATUS(storectx_uninstall(c->gb), STORECTX_ERR_STALE_HANDLE);
  CHECK_STATUS(storectx_uninstall(c->ga), STORECTX_ERR_STALE_HANDLE);
  storectx_install_guard ga = install_locked(c->a), gb;
  CHECK_OK(storectx_install(c->idb, c->sb, &gb));
  CHECK_OK(storectx_uninstall(gb));
  CHECK_OK(storectx_uninstall(ga));
  CHECK(storectx_is_empty());
  return NULL;
}

static void test_free_never_resumed(void) {
  struct store sa = {0}, sb = {0};
  struct parked k = {.suspended = GATE_INIT, .freed = GATE_INIT};
  k.c.idb = storectx_store_id_new();
  k.c.a = new_async(&sa, &k.c.ida);
  k.c.sa = &sa;
  k.c.sb = &sb;
  pthread_t t;
  CHECK(pthread_create(&t, NULL, park_segment, &k) == 0);
  gate_wait(&k.suspended);

  CHECK(try_write_elsewhere(k.c.a) == STORECTX_ERR_BUSY);
  storectx_suspended_free(k.c.seg);                  /* on another thread */
  CHECK(try_write_elsewhere(k.c.a) == STORECTX_OK);  /* lock released */
  CHECK_STATUS(storectx_uninstall(k.c.ga), STORECTX_ERR_STALE_HANDLE);
  CHECK(storectx_suspended_len(k.c.seg) == 0);
  size_t base = 99;
  CHECK_STATUS(storectx_resume(k.c.seg, &base), STORECTX_ERR_STALE_HANDLE);
  CHECK(base == 99 && storectx_is_empty());
  storectx_suspended_free(k.c.seg);                  /* twice: no-op */
  gate_open(&k.freed);
  CHECK(pthread_join(t, NULL) == 0);
  storectx_async_store_release(k.c.a);
}

/* ---- the store outlives its last release while something holds it ---- */

static void *resume_use_unwind(void *arg) {
  struct seg_case *c = arg;
  size_t base;
  CHECK_OK(storectx_resume(c->seg, &base));
  storectx_async_store *as = NULL;
  void *p = NULL;
  storectx_borrow b;
  CHECK_OK(storectx_get_current_async(c->ida, &as, &p, &b));
  CHECK(as != NULL && storectx_async_store_id(as) == c->ida);
  CHECK(p == c->sa);
  storectx_async_store_release(as);
  CHECK_OK(storectx_borrow_release(b));
  CHECK_OK(storectx_uninstall(c->ga));              /* last holder */
  CHECK(storectx_is_empty());
  return NULL;
}

static void test_keep_alive(void) {
  struct store sa = {0};
  storectx_store_id ida;

  /* A write guard. */
  storectx_async_store *a = new_async(&sa, &ida);
  storectx_write_guard *g = NULL;
  CHECK_OK(storectx_async_store_try_write(a, &g));
  storectx_async_store_release(a);
  CHECK(storectx_write_guard_store(g) == &sa);
  storectx_write_guard_release(g);

  /* An entry. */
  a = new_async(&sa, &ida);
  storectx_install_guard ig = install_locked(a);
  storectx_async_store_release(a);
  storectx_async_store *as = NULL;
  void *p = NULL;
  storectx_borrow b;
  CHECK_OK(storectx_get_current_async(ida, &as, &p, &b));
  CHECK(as != NULL && storectx_async_store_id(as) == ida && p == &sa);
  storectx_async_store_release(as);
  CHECK_OK(storectx_borrow_release(b));
  CHECK_OK(storectx_uninstall(ig));

  /* A segment, resumed on another thread. */
  struct seg_case c = {0};
  c.a = new_async(&sa, &c.ida);
  c.sa = &sa;
  c.ga = install_locked(c.a);
  CHECK_OK(storectx_suspend(0, &c.seg));
  storectx_async_store_release(c.a);
  c.a = NULL;
  run_thread(resume_use_unwind, &c);

  /* A segment that is freed without being resumed. */
  a = new_async(&sa, &ida);
  ig = install_locked(a);
  storectx_suspended *seg = NULL;
  CHECK_OK(storectx_suspend(0, &seg));
  storectx_async_store_release(a);
  CHECK(storectx_suspended_len(seg) == 1);
  storectx_suspended_free(seg);
  CHECK_STATUS(storectx_uninstall(ig), STORECTX_ERR_STALE_HANDLE);
  CHECK(storectx_is_empty());
}

/* A segment handle cast to a write guard (and back) names nothing: the first
 * write guard and the first segment of a process must not be confused. Runs
 * first, while both handle tables are fresh. */
static void test_heap_handle_kinds_not_interchangeable(void) {
  int store = 0;
  storectx_async_store *s;
  storectx_write_guard *g, *g2;
  storectx_suspended *seg;
  size_t base = 7;
  CHECK_OK(storectx_async_store_new(storectx_store_id_new(), &store, &s));
  CHECK_OK(storectx_async_store_try_write(s, &g));
  CHECK_OK(storectx_suspend(storectx_depth(), &seg));
  CHECK((void *)g != (void *)seg);
  storectx_write_guard_release((storectx_write_guard *)seg);  /* names no guard */
  CHECK_STATUS(storectx_async_store_try_write(s, &g2), STORECTX_ERR_BUSY);
  CHECK(storectx_write_guard_store((storectx_write_guard *)seg) == NULL);
  CHECK(storectx_suspended_len((storectx_suspended *)g) == 0);
  CHECK_STATUS(storectx_resume((storectx_suspended *)g, &base), STORECTX_ERR_STALE_HANDLE);
  CHECK(base == 7);
  CHECK_OK(storectx_resume(seg, &base));
  storectx_write_guard_release(g);
  CHECK_OK(storectx_async_store_try_write(s, &g2));
  storectx_write_guard_release(g2);
  storectx_async_store_release(s);
}

int main(void) {
  test_heap_handle_kinds_not_interchangeable();
  test_null_arguments();
  test_get_current_async();
  test_double_resume();
  test_resume_already_on_stack();
  test_suspend_above_depth();
  test_would_deadlock();
  test_busy_and_timeout();
  test_install_async_already_on_stack();
  test_install_over_async();
  test_guard_release_twice();
  test_free_never_resumed();
  test_keep_alive();
  CHECK(storectx_is_empty());
  puts("async_misuse: ok");
  return 0;
}
