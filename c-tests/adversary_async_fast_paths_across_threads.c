/* Behaviour: the async path's fast halves (try_write and install_async that
 * use the calling thread's parking spot) keep every promise of the slow
 * ones when a write guard crosses threads. Two worker threads A and B, each
 * put in turn with and without a write-guard slot parked in its spot (a
 * release on that thread parks one; a try_write takes it back), run every
 * combination of: a guard taken on A and installed on B (then released on
 * main: refused and noted, the lock still held; installed again on B:
 * STALE_HANDLE; uninstalled on B: the lock free), a guard taken on A and
 * released on B (then released again on B and on A, installed on A:
 * STALE_HANDLE, the lock free), install_async refused on B with the store
 * already on B's stack on top (the fast half's own refusal) and deeper (the
 * push's), and with a NULL out: each time ALREADY_ON_STACK or
 * NULL_ARGUMENT, a message, out untouched, B's stack unchanged, and the
 * guard handed back whole: its store still answers, another thread still
 * finds the store BUSY, the guard installs on A and its uninstall frees the
 * lock. A guard released or installed on a thread that never called the
 * library before works the same. Each combination ends with the store's
 * lock free (try_write on a fresh thread OK). SPEC "Handles", "Status
 * codes": a refused call changes nothing, no lock leaked or lost. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>

#include "check.h"
#include "worker.h"

/* cprog: timeout 120 */

#define SENTINEL ((void *)0x5e71)

static void *fresh_thread_job(void *p) {
  void **job = p;
  ((void (*)(void *))job[0])(job[1]);
  return NULL;
}

/* Runs `job` on a new thread that never called the library before. */
static void run_fresh(void (*job)(void *), void *arg) {
  void *pair[2] = {(void *)job, arg};
  pthread_t t;
  CHECK(pthread_create(&t, NULL, fresh_thread_job, pair) == 0);
  CHECK(pthread_join(t, NULL) == 0);
}

/* ---- the jobs ----------------------------------------------------------- */

static int mem[8];
static storectx_async_store *park_store; /* only to park and unpark slots */

struct call {
  storectx_async_store *s;
  storectx_write_guard *g;
  storectx_install_guard ig;
  storectx_status st;
  int null_out;
  storectx_store_id id;
  size_t depth;
  char describe[512];
};

/* A context for the thread: its first stateful call. */
static void prime(void *unused) {
  (void)unused;
  storectx_install_guard g;
  CHECK_OK(storectx_install(storectx_store_id_new(), &mem[7], &g));
  CHECK_OK(storectx_uninstall(g));
}

/* Leaves a write-guard slot parked in this thread's spot (`*want` 1) or
 * none (0): a release parks the slot; a guard taken and kept, then
 * installed and uninstalled... would park again, so the empty spot is made
 * by a try_write whose guard is handed to main to release there. */
static storectx_write_guard *kept_elsewhere;
static void set_parked(void *want) {
  storectx_write_guard *g = NULL;
  CHECK_OK(storectx_async_store_try_write(park_store, &g));
  if (*(int *)want) {
    storectx_write_guard_release(g); /* parked here */
  } else {
    kept_elsewhere = g; /* this thread's spot stays empty */
  }
}

static void do_try_write(void *p) {
  struct call *c = p;
  c->g = SENTINEL;
  c->st = storectx_async_store_try_write(c->s, &c->g);
}

static void do_install(void *p) {
  struct call *c = p;
  c->ig.raw = 0x77;
  c->depth = storectx_depth();
  storectx_describe(c->describe, sizeof c->describe);
  c->st = storectx_install_async(c->g, c->null_out ? NULL : &c->ig);
  if (c->st != STORECTX_OK) {
    char now[512];
    CHECK(storectx_last_error()[0] != '\0');
    CHECK(c->ig.raw == 0x77);
    CHECK(storectx_depth() == c->depth);
    storectx_describe(now, sizeof now);
    CHECK(strcmp(now, c->describe) == 0);
  }
}

static void do_uninstall(void *p) {
  struct call *c = p;
  c->st = storectx_uninstall(c->ig);
}

static void do_release(void *p) {
  struct call *c = p;
  storectx_write_guard_release(c->g);
}

/* A release of a guard that is no longer live: refused, noted. */
static void do_release_spent(void *p) {
  struct call *c = p;
  storectx_write_guard_release(c->g);
  CHECK(strstr(storectx_last_error(), "write_guard_release") != NULL);
}

static void do_install_sync(void *p) {
  struct call *c = p;
  c->st = storectx_install(c->id, &mem[0], &c->ig);
}

static void do_install_taken(void *p) {
  struct call *c = p;
  storectx_write_guard *g = NULL;
  CHECK_OK(storectx_async_store_try_write(c->s, &g));
  CHECK_OK(storectx_install_async(g, &c->ig));
}

static void probe_try_write(void *p) {
  struct call *c = p;
  storectx_write_guard *g = SENTINEL;
  c->st = storectx_async_store_try_write(c->s, &g);
  if (c->st == STORECTX_OK) storectx_write_guard_release(g);
  else CHECK(g == SENTINEL);
}

static storectx_status try_write_elsewhere(storectx_async_store *s) {
  struct call c = {.s = s};
  run_fresh(probe_try_write, &c);
  return c.st;
}

/* The guard is whole: it names its store, holds its lock, and installs. */
static void check_whole(struct worker *installer, storectx_async_store *s, storectx_write_guard *g,
                        void *store) {
  CHECK(storectx_write_guard_store(g) == store);
  CHECK(try_write_elsewhere(s) == STORECTX_ERR_BUSY);
  struct call c = {.g = g};
  run_on(installer, do_install, &c);
  CHECK_OK(c.st);
  CHECK(storectx_write_guard_store(g) == NULL);
  CHECK(try_write_elsewhere(s) == STORECTX_ERR_BUSY);
  run_on(installer, do_uninstall, &c);
  CHECK_OK(c.st);
  CHECK(try_write_elsewhere(s) == STORECTX_OK);
}

static storectx_async_store *new_store(void *store, storectx_store_id id) {
  storectx_async_store *s = NULL;
  CHECK_OK(storectx_async_store_new(id ? id : storectx_store_id_new(), store, &s));
  return s;
}

static struct worker A, B;
static int combos;

static void set_spots(int a, int b) {
  run_on(&A, set_parked, &a);
  if (!a) storectx_write_guard_release(kept_elsewhere);
  run_on(&B, set_parked, &b);
  if (!b) storectx_write_guard_release(kept_elsewhere);
}

/* A guard taken on A, installed on B. */
static void taken_here_installed_there(int a, int b) {
  storectx_async_store *s = new_store(&mem[1], 0);
  set_spots(a, b);
  struct call c = {.s = s};
  run_on(&A, do_try_write, &c);
  CHECK_OK(c.st);
  CHECK(storectx_write_guard_store(c.g) == &mem[1]);
  run_on(&B, do_install, &c);
  CHECK_OK(c.st);
  CHECK(try_write_elsewhere(s) == STORECTX_ERR_BUSY);
  do_release_spent(&c); /* main: consumed by the install */
  run_on(&A, do_release_spent, &c);
  CHECK(try_write_elsewhere(s) == STORECTX_ERR_BUSY);
  storectx_install_guard ig = c.ig;
  run_on(&B, do_install, &c); /* twice */
  CHECK(c.st == STORECTX_ERR_STALE_HANDLE);
  run_on(&A, do_install, &c);
  CHECK(c.st == STORECTX_ERR_STALE_HANDLE);
  c.ig = ig;
  run_on(&A, do_uninstall, &c); /* not A's entry */
  CHECK(c.st == STORECTX_ERR_STALE_HANDLE);
  run_on(&B, do_uninstall, &c);
  CHECK_OK(c.st);
  CHECK(try_write_elsewhere(s) == STORECTX_OK);
  storectx_async_store_release(s);
  combos++;
}

/* A guard taken on A, released on B, then released and installed again. */
static void taken_here_released_there(int a, int b) {
  storectx_async_store *s = new_store(&mem[2], 0);
  set_spots(a, b);
  struct call c = {.s = s};
  run_on(&A, do_try_write, &c);
  CHECK_OK(c.st);
  run_on(&B, do_release, &c);
  CHECK(try_write_elsewhere(s) == STORECTX_OK);
  run_on(&B, do_release_spent, &c);
  run_on(&A, do_release_spent, &c);
  run_on(&A, do_install, &c);
  CHECK(c.st == STORECTX_ERR_STALE_HANDLE);
  run_on(&B, do_install, &c);
  CHECK(c.st == STORECTX_ERR_STALE_HANDLE);
  /* The slot's next life (likely B's parked slot) is another guard. */
  struct call d = {.s = s};
  run_on(&B, do_try_write, &d);
  CHECK_OK(d.st);
  run_on(&A, do_release_spent, &c);
  CHECK(storectx_write_guard_store(d.g) == &mem[2]);
  CHECK(try_write_elsewhere(s) == STORECTX_ERR_BUSY);
  run_on(&A, do_release, &d);
  CHECK(try_write_elsewhere(s) == STORECTX_OK);
  storectx_async_store_release(s);
  combos++;
}

/* install_async refused on B: the store (another lock, the same id) is on
 * B's stack on top, deeper, or `out` is NULL. */
static void refused_there(int a, int b, int how) {
  storectx_store_id id = storectx_store_id_new();
  storectx_async_store *on_stack = new_store(&mem[3], id);
  storectx_async_store *s = new_store(&mem[4], id);
  set_spots(a, b);
  struct call top = {.s = on_stack}, deeper = {.id = storectx_store_id_new()};
  if (how != 2) run_on(&B, do_install_taken, &top);
  if (how == 1) {
    run_on(&B, do_install_sync, &deeper);
    CHECK_OK(deeper.st);
  }
  struct call c = {.s = s, .null_out = how == 2};
  run_on(&A, do_try_write, &c);
  CHECK_OK(c.st);
  run_on(&B, do_install, &c);
  CHECK(c.st == (how == 2 ? STORECTX_ERR_NULL_ARGUMENT : STORECTX_ERR_ALREADY_ON_STACK));
  /* Again on B, with whatever B's spot holds now. */
  run_on(&B, do_install, &c);
  CHECK(c.st == (how == 2 ? STORECTX_ERR_NULL_ARGUMENT : STORECTX_ERR_ALREADY_ON_STACK));
  c.null_out = 0;
  check_whole(&A, s, c.g, &mem[4]);
  if (how == 1) run_on(&B, do_uninstall, &deeper);
  if (how != 2) {
    run_on(&B, do_uninstall, &top);
    CHECK_OK(top.st);
  }
  CHECK(try_write_elsewhere(on_stack) == STORECTX_OK);
  /* Refused, then released on B rather than installed. */
  if (how != 2) run_on(&B, do_install_taken, &top);
  run_on(&A, do_try_write, &c);
  CHECK_OK(c.st);
  c.null_out = how == 2;
  run_on(&B, do_install, &c);
  CHECK(c.st != STORECTX_OK);
  run_on(&B, do_release, &c);
  CHECK(try_write_elsewhere(s) == STORECTX_OK);
  if (how != 2) {
    run_on(&B, do_uninstall, &top);
    CHECK_OK(top.st);
  }
  storectx_async_store_release(s);
  storectx_async_store_release(on_stack);
  combos++;
}

/* Guards released and installed on threads that never called before. */
static void fresh_threads(void) {
  storectx_async_store *s = new_store(&mem[5], 0);
  struct call c = {.s = s};
  run_on(&A, do_try_write, &c);
  CHECK_OK(c.st);
  run_fresh(do_release, &c);
  CHECK(try_write_elsewhere(s) == STORECTX_OK);
  run_fresh(do_release_spent, &c);
  run_fresh(do_try_write, &c);
  CHECK_OK(c.st);
  run_fresh(do_install, &c); /* the thread's first stateful call */
  CHECK_OK(c.st);
  /* That thread exited with the entry: its teardown released the lock. */
  CHECK(try_write_elsewhere(s) == STORECTX_OK);
  run_on(&B, do_release_spent, &c);
  storectx_async_store_release(s);
}

int main(void) {
  park_store = new_store(&mem[6], 0);
  prime(NULL);
  worker_start(&A);
  worker_start(&B);
  run_on(&A, prime, NULL);
  run_on(&B, prime, NULL);
  for (int round = 0; round < 3; round++) {
    /* Round 0 runs before any fast path may (the first call asks whether
     * a race detector runs); rounds 1 and 2 on the fast halves. */
    for (int a = 0; a < 2; a++) {
      for (int b = 0; b < 2; b++) {
        taken_here_installed_there(a, b);
        taken_here_released_there(a, b);
        for (int how = 0; how < 3; how++) refused_there(a, b, how);
      }
    }
  }
  /* A and B on one thread: taken, refused and installed on the same one. */
  for (int a = 0; a < 2; a++) {
    storectx_async_store *s = new_store(&mem[1], 0);
    run_on(&A, set_parked, &a);
    if (!a) storectx_write_guard_release(kept_elsewhere);
    struct call c = {.s = s};
    run_on(&A, do_try_write, &c);
    CHECK_OK(c.st);
    c.null_out = 1;
    run_on(&A, do_install, &c);
    CHECK(c.st == STORECTX_ERR_NULL_ARGUMENT);
    check_whole(&A, s, c.g, &mem[1]);
    storectx_async_store_release(s);
  }
  fresh_threads();
  worker_stop(&A);
  worker_stop(&B);
  CHECK(try_write_elsewhere(park_store) == STORECTX_OK);
  storectx_async_store_release(park_store);
  printf("adversary_async_fast_paths_across_threads: %d combinations\n", combos);
  return 0;
}
