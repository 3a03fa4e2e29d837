/* readme_coroutines.c: the async-store and coroutine code of
 * docs/coroutines.md, verbatim between the markers (tests/readme_snippets.rs
 * keeps them identical): an async store created with an id from
 * storectx_store_id_new(); a coroutine holding it and a nested sync store,
 * suspended on one thread and resumed on another; and the wasmer-style flow
 * that unlocks on every yield. Every variable a snippet uses is declared in
 * a snippet; the checks around them are this test's. */
#include <pthread.h>
#include <stdint.h>
#include "check.h"

/* README async types begins */
typedef struct { int counter; } Store;            /* your engine's store */

/* One coroutine, kept by its scheduler while it is not running. */
typedef struct {
  storectx_async_store *shared;                   /* store A: behind a lock */
  Store *inner;                                   /* store B: a sync store */
  storectx_store_id inner_id;
  storectx_install_guard ga, gb;                  /* its guards travel with it */
  storectx_suspended *parked;                     /* its entries while it waits */
} coroutine;
/* README async types ends */

/* README suspend begins */
/* The coroutine runs until it yields (error checks left out). */
static void coroutine_start(coroutine *co) {
  size_t base = storectx_depth();                 /* where this coroutine starts */
  storectx_write_guard *w;
  storectx_async_store_write(co->shared, UINT64_MAX, &w);  /* wait for A's lock */
  storectx_install_async(w, &co->ga);             /* store A, locked by the entry */
  storectx_install(co->inner_id, co->inner, &co->gb);      /* nested sync call into B */
  /* ... guest code yields here ... */
  storectx_suspend(base, &co->parked);            /* detach A and B, keep the lock */
}
/* README suspend ends */

/* README resume begins */
/* Any thread resumes it and runs it to the end. */
static void coroutine_finish(coroutine *co) {
  size_t base;
  storectx_resume(co->parked, &base);             /* A and B back, on this thread */
  co->parked = NULL;
  void *b;
  storectx_get_current_transient(co->inner_id, &b);  /* store B answers here */
  ((Store *)b)->counter += 1;
  storectx_uninstall(co->gb);                     /* the guards work here too */
  storectx_uninstall(co->ga);                     /* unlocks store A */
}
/* README resume ends */

/* README poll begins */
/* One poll of a task, on whatever thread polls it: lock, run, unlock. */
static void poll_once(storectx_async_store *shared) {
  storectx_write_guard *w;
  storectx_install_guard g;
  storectx_async_store_write(shared, UINT64_MAX, &w);  /* wait for the lock */
  storectx_install_async(w, &g);                       /* w now belongs to the entry */
  void *p;
  storectx_get_current_transient(storectx_async_store_id(shared), &p);
  ((Store *)p)->counter += 1;                          /* guest runs, then yields */
  storectx_uninstall(g);                               /* unlocks: resume anywhere */
}
/* README poll ends */

/* Thread 1 starts the coroutine: it leaves with everything it pushed. */
static void *start_thread(void *arg) {
  coroutine *co = arg;
  coroutine_start(co);
  CHECK(storectx_is_empty() && storectx_suspended_len(co->parked) == 2);
  return NULL;
}

/* Thread 2, which has an entry of its own underneath, finishes it. */
static void *finish_thread(void *arg) {
  coroutine *co = arg;
  int own = 0;
  storectx_install_guard g;
  CHECK_OK(storectx_install(storectx_store_id_new(), &own, &g));
  coroutine_finish(co);
  CHECK(co->inner->counter == 1 && storectx_depth() == 1);
  CHECK_OK(storectx_uninstall(g));
  return NULL;
}

static void *poll_thread(void *arg) {
  poll_once(arg);
  CHECK(storectx_is_empty());
  return NULL;
}

int main(void) {
  pthread_t t;
/* README async create begins */
  Store a = {0}, b = {0};
  coroutine co = {0};
  storectx_status st = storectx_async_store_new(storectx_store_id_new(), &a, &co.shared);
  if (st != STORECTX_OK) {                        /* NULL_ARGUMENT, INVALID_ARGUMENT */
    fprintf(stderr, "%s\n", storectx_last_error());
    return 1;
  }
  co.inner = &b;
  co.inner_id = storectx_store_id_new();          /* never a hard-coded number */
/* README async create ends */
  CHECK(pthread_create(&t, NULL, start_thread, &co) == 0 && pthread_join(t, NULL) == 0);
  CHECK(pthread_create(&t, NULL, finish_thread, &co) == 0 && pthread_join(t, NULL) == 0);
  storectx_write_guard *w;
  for (int i = 0; i < 4; i++) {
    CHECK(pthread_create(&t, NULL, poll_thread, co.shared) == 0 && pthread_join(t, NULL) == 0);
    CHECK(storectx_async_store_try_write(co.shared, &w) == STORECTX_OK);
    storectx_write_guard_release(w);
  }
  CHECK(a.counter == 4);
/* README async release begins */
  storectx_async_store_release(co.shared);        /* once per _new / _clone */
/* README async release ends */
  return 0;
}
