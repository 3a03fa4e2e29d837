/* Behaviour: a thread whose parked write-guard slot was taken by another
 * thread allocating from a full table (SPEC "Exhaustion is recoverable")
 * keeps every promise on its fast paths. With the table shortened to N
 * guards (testing hook), thread A fills it and releases one guard (its slot
 * parked in A's spot); main's try_write takes that slot from A's spot. Then
 * A's try_write (its spot still names the taken slot) is refused EXHAUSTED
 * with the lock it took given back (the store is free once a guard is
 * released), A's install_async of a guard (spot naming a slot that is no
 * longer parked there) works and parks, A's next try_write takes that slot
 * back, and after everything is released one thread allocates exactly N
 * guards again (no slot lost, none handed out twice: all N handles
 * distinct, the N+1st EXHAUSTED, the message counting N live). Repeated
 * with the stolen slot living on (live, released on main, parked in main's
 * spot) when A calls. Needs the testing hook that lowers the table limit
 * (the `testing` feature); skipped with a printed reason without it. */
/* cprog: skip on=windows finds its test-only limit hook with dlsym(RTLD_DEFAULT), and Windows has no dlfcn.h; the registry is the same Rust code on every platform */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "worker.h"

#define N 6
#define SENTINEL ((void *)0x5e71)

typedef void (*set_table_limit_fn)(size_t);
extern void storectx_stolen_limit_weak(size_t) __asm__("storectx_testing_set_table_limit")
    __attribute__((weak));

static int mem;
static storectx_async_store *stores[N + 4];
static storectx_write_guard *held[N];

static void prime(void *unused) {
  (void)unused;
  storectx_install_guard g;
  CHECK_OK(storectx_install(storectx_store_id_new(), &mem, &g));
  CHECK_OK(storectx_uninstall(g));
}

static void fill(void *unused) {
  (void)unused;
  for (int i = 0; i < N; i++) CHECK_OK(storectx_async_store_try_write(stores[i], &held[i]));
  storectx_write_guard *g = SENTINEL;
  CHECK(storectx_async_store_try_write(stores[N], &g) == STORECTX_ERR_EXHAUSTED);
  CHECK(g == SENTINEL);
  /* One released: parked in this thread's spot. */
  storectx_write_guard_release(held[0]);
  held[0] = NULL;
}

struct step { int i; storectx_status st; storectx_write_guard *g; storectx_install_guard ig; };

static void a_try_write(void *p) {
  struct step *s = p;
  s->g = SENTINEL;
  s->st = storectx_async_store_try_write(stores[s->i], &s->g);
  if (s->st != STORECTX_OK) {
    CHECK(s->g == SENTINEL);
    CHECK(storectx_last_error()[0] != '\0');
  }
}

static void a_install(void *p) {
  struct step *s = p;
  s->st = storectx_install_async(s->g, &s->ig);
}

static void a_uninstall(void *p) {
  struct step *s = p;
  s->st = storectx_uninstall(s->ig);
}

static void a_release(void *p) {
  struct step *s = p;
  storectx_write_guard_release(s->g);
}

/* Every guard released, one thread takes exactly N, all distinct. */
static void recount(void) {
  storectx_write_guard *all[N + 1];
  for (int i = 0; i < N; i++) {
    storectx_status st = storectx_async_store_try_write(stores[i], &all[i]);
    if (st != STORECTX_OK) {
      fprintf(stderr, "only %d of %d guards allocate after all were released: %s\n", i, N,
              storectx_last_error());
      exit(1);
    }
    for (int j = 0; j < i; j++) CHECK(all[j] != all[i]);
  }
  CHECK(storectx_async_store_try_write(stores[N], &all[N]) == STORECTX_ERR_EXHAUSTED);
  char want[32];
  snprintf(want, sizeof want, "%d write guards are live", N);
  if (strstr(storectx_last_error(), want) == NULL) {
    fprintf(stderr, "message: %s\n", storectx_last_error());
    exit(1);
  }
  for (int i = 0; i < N; i++) storectx_write_guard_release(all[i]);
}

static void run(struct worker *A, int later) {
  run_on(A, fill, NULL);
  /* Main (its spot empty) finds the table full but for A's parked slot. */
  storectx_write_guard *mine = SENTINEL;
  CHECK_OK(storectx_async_store_try_write(stores[N + 1], &mine));
  if (later == 1) {
    /* The stolen slot's life ends on main: parked in main's spot. */
    storectx_write_guard_release(mine);
    mine = NULL;
    CHECK_OK(storectx_async_store_try_write(stores[N + 1], &mine));
  }
  /* A: its spot names a slot no longer parked there. Full: refused, and
   * the lock it took is given back. */
  struct step s = {.i = N + 2};
  run_on(A, a_try_write, &s);
  CHECK(s.st == STORECTX_ERR_EXHAUSTED);
  /* Free one (the stolen slot's guard, on main: parked in main's spot). */
  storectx_write_guard_release(mine);
  storectx_write_guard *probe = SENTINEL;
  CHECK_OK(storectx_async_store_try_write(stores[N + 2], &probe)); /* the lock was free */
  storectx_write_guard_release(probe);
  /* A again: takes the slot from main's spot (a full table). */
  run_on(A, a_try_write, &s);
  CHECK_OK(s.st);
  /* Installed on A, whose spot is empty or names a stale slot. */
  run_on(A, a_install, &s);
  CHECK_OK(s.st);
  run_on(A, a_uninstall, &s);
  CHECK_OK(s.st);
  /* A's spot holds that slot parked: the next try_write takes it back. */
  run_on(A, a_try_write, &s);
  CHECK_OK(s.st);
  run_on(A, a_release, &s);
  for (int i = 1; i < N; i++) storectx_write_guard_release(held[i]);
  recount();
  /* The same from A's side once more, with main's spot holding a slot. */
  recount();
}

int main(void) {
  set_table_limit_fn set_limit = storectx_stolen_limit_weak;
  if (!set_limit)
    set_limit = (set_table_limit_fn)(uintptr_t)dlsym(RTLD_DEFAULT, "storectx_testing_set_table_limit");
  if (!set_limit) {
    printf("adversary_async_fast_paths_stolen_spot: SKIPPED (no testing hook: "
           "build with --features testing)\n");
    return 0;
  }
  set_limit(N);
  for (int i = 0; i < N + 4; i++)
    CHECK_OK(storectx_async_store_new(storectx_store_id_new(), &mem, &stores[i]));
  prime(NULL);
  struct worker A;
  worker_start(&A);
  run_on(&A, prime, NULL);
  for (int later = 0; later < 2; later++)
    for (int round = 0; round < 3; round++) run(&A, later);
  worker_stop(&A);
  recount();
  for (int i = 0; i < N + 4; i++) storectx_async_store_release(stores[i]);
  printf("adversary_async_fast_paths_stolen_spot: ok\n");
  return 0;
}
