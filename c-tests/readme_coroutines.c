/* readme_coroutines.c: the two coroutine flows shown in docs/coroutines.md, verbatim
 * between the markers (tests/readme_snippets.rs keeps them identical): a
 * segment suspended on one thread and resumed on another, and the
 * wasmer-style flow that unlocks on every yield. */
#include <pthread.h>
#include <stdint.h>
#include "check.h"

typedef struct { int counter; } Store;
static storectx_async_store *shared;
static storectx_suspended *parked;   /* a yielded coroutine, between threads */
static storectx_install_guard ga, gb; /* its guards travel with it */

/* Segment flow, part 1: runs on thread 1 until the coroutine yields. */
static void *start_coroutine(void *arg) {
  Store *inner = arg;
/* README suspend begins */
  size_t base = storectx_depth();            /* where this coroutine starts */
  storectx_write_guard *w;
  storectx_async_store_write(shared, UINT64_MAX, &w);
  storectx_install_async(w, &ga);             /* store A, locked by the entry */
  storectx_install(2, inner, &gb);            /* nested sync call into store B */
  /* ... guest code yields here ... */
  storectx_suspend(base, &parked);            /* detach A and B, keep the lock */
/* README suspend ends */
  CHECK(storectx_is_empty() && storectx_suspended_len(parked) == 2);
  return NULL;
}

/* Segment flow, part 2: any other thread resumes it and finishes it. */
static void *finish_coroutine(void *arg) {
  (void)arg;
/* README resume begins */
  size_t base;
  storectx_resume(parked, &base);             /* A and B back, on this thread */
  void *b;
  storectx_get_current_transient(2, &b);      /* store B answers here */
  storectx_uninstall(gb);                     /* the guards work here too */
  storectx_uninstall(ga);                     /* unlocks store A */
/* README resume ends */
  CHECK(base == 0 && b != NULL && storectx_is_empty());
  return NULL;
}

/* Wasmer-style flow: each poll, on whatever thread, locks and installs;
 * each yield uninstalls, which unlocks. */
static void *poll_once(void *arg) {
  (void)arg;
/* README poll begins */
  storectx_write_guard *w;
  storectx_install_guard g;
  storectx_async_store_write(shared, UINT64_MAX, &w);  /* wait for the lock */
  storectx_install_async(w, &g);                       /* w now belongs to the entry */
  void *p;
  storectx_get_current_transient(1, &p);
  ((Store *)p)->counter += 1;                          /* guest runs, then yields */
  storectx_uninstall(g);                               /* unlocks: resume anywhere */
/* README poll ends */
  return NULL;
}

int main(void) {
  Store a = {0}, b = {0};
  CHECK_OK(storectx_async_store_new(1, &a, &shared));
  pthread_t t;
  storectx_write_guard *w;
  CHECK(pthread_create(&t, NULL, start_coroutine, &b) == 0 && pthread_join(t, NULL) == 0);
  CHECK(pthread_create(&t, NULL, finish_coroutine, NULL) == 0 && pthread_join(t, NULL) == 0);
  for (int i = 0; i < 4; i++) {
    CHECK(pthread_create(&t, NULL, poll_once, NULL) == 0 && pthread_join(t, NULL) == 0);
    CHECK(storectx_async_store_try_write(shared, &w) == STORECTX_OK);
    storectx_write_guard_release(w);
  }
  CHECK(a.counter == 4);
  storectx_async_store_release(shared);
  return 0;
}
