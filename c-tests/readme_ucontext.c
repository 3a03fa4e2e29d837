/* readme_ucontext.c: C coroutines (ucontext) that migrate between pthreads
 * carry their entries — docs/coroutines.md's "C coroutines" rule, verbatim between
 * the markers: record storectx_depth() when the coroutine starts, suspend
 * everything above it when it yields, resume it on whichever thread swaps it
 * back in, and storectx_suspended_free it when the coroutine is cancelled.
 * Every round runs on a new pthread (with an entry of its own underneath);
 * after each yield the coroutine checks it is on another thread and that its
 * stores still answer; a cancelled coroutine's lock is released and its
 * guards are stale. */
#define _XOPEN_SOURCE 700  /* ucontext */
#include <pthread.h>
#include <stdint.h>
#include <ucontext.h>

#include "check.h"

enum { COROS = 6, ROUNDS = 8, CANCELLED = 2, CANCEL_AFTER = 3, STACK = 256 * 1024 };

typedef struct { storectx_store_id id; long count; } store_t;

typedef struct coro {
  ucontext_t context;           /* where the coroutine is when it is not running */
  ucontext_t *scheduler;        /* the context of the thread running it now */
  storectx_suspended *parked;   /* its entries while it waits */
  size_t base;                  /* depth of the running thread's stack below them */
  void *stack;
  int ran_on;                   /* round of the thread running it (set by that thread) */
  int done;
  store_t own, locked;          /* a sync store and an async store of its own */
  storectx_async_store *lock;
  storectx_install_guard own_entry, locked_entry;
} coro;

static coro coros[COROS];

/* README ucontext begins */
/* Called on the coroutine's own stack when it waits. */
static void coro_yield(coro *c) {
  storectx_suspend(c->base, &c->parked);        /* its entries leave this thread */
  swapcontext(&c->context, c->scheduler);       /* the scheduler may pass it to another thread */
  storectx_resume(c->parked, &c->base);         /* they come back on the thread that resumed it */
  c->parked = NULL;
}

/* A coroutine that will never run again. */
static void coro_cancel(coro *c) {
  storectx_suspended_free(c->parked);           /* drops its entries, unlocks its stores */
  c->parked = NULL;
}
/* README ucontext ends */

/* The coroutine's body: two stores of its own held across every yield. */
static void coro_main(int index) {
  coro *c = &coros[index];
  c->base = storectx_depth();                   /* where its entries start */
  storectx_write_guard *w;
  CHECK_OK(storectx_async_store_try_write(c->lock, &w));
  CHECK_OK(storectx_install_async(w, &c->locked_entry));
  CHECK_OK(storectx_install(c->own.id, &c->own, &c->own_entry));
  for (int round = 0; round < ROUNDS; round++) {
    CHECK(c->ran_on == round);
    void *found;
    storectx_borrow b;
    CHECK_OK(storectx_get_current(c->own.id, &found, &b));
    CHECK(found == &c->own);
    ((store_t *)found)->count++;
    CHECK(storectx_is_paused(c->locked.id) && storectx_depth() == c->base + 2);
    coro_yield(c);                              /* the borrow travels too */
    CHECK(c->ran_on == round + 1);              /* a different thread now */
    CHECK(storectx_depth() == c->base + 2);
    CHECK_OK(storectx_borrow_release(b));
  }
  CHECK_OK(storectx_uninstall(c->own_entry));
  CHECK_OK(storectx_uninstall(c->locked_entry));  /* unlocks */
  CHECK(storectx_depth() == c->base);
  c->done = 1;
  swapcontext(&c->context, c->scheduler);       /* never resumed again */
  abort();
}

static storectx_store_id worker_id;

/* One pthread per round: resumes every live coroutine once, with an entry of
 * its own underneath, so the coroutines' entries go on top of it. */
static void *run_round(void *arg) {
  int round = (int)(intptr_t)arg;
  store_t mine = {worker_id, 0};
  storectx_install_guard g;
  CHECK_OK(storectx_install(mine.id, &mine, &g));
  for (int i = 0; i < COROS; i++) {
    coro *c = &coros[i];
    if (c->done || (i == CANCELLED && round > CANCEL_AFTER)) continue;
    ucontext_t here;
    c->scheduler = &here;
    c->ran_on = round;
    CHECK(swapcontext(&here, &c->context) == 0);
    CHECK(storectx_depth() == 1 && storectx_is_active(mine.id));  /* nothing left behind */
    CHECK(c->done || storectx_suspended_len(c->parked) == 2);
  }
  CHECK_OK(storectx_uninstall(g));
  return NULL;
}

int main(void) {
  worker_id = storectx_store_id_new();
  for (int i = 0; i < COROS; i++) {
    coro *c = &coros[i];
    c->own.id = storectx_store_id_new();
    c->locked.id = storectx_store_id_new();
    CHECK_OK(storectx_async_store_new(c->locked.id, &c->locked, &c->lock));
    c->stack = malloc(STACK);
    CHECK(c->stack != NULL && getcontext(&c->context) == 0);
    c->context.uc_stack.ss_sp = c->stack;
    c->context.uc_stack.ss_size = STACK;
    c->context.uc_link = NULL;
    makecontext(&c->context, (void (*)(void))coro_main, 1, i);
  }
  for (int round = 0; round <= ROUNDS; round++) {
    pthread_t t;
    CHECK(pthread_create(&t, NULL, run_round, (void *)(intptr_t)round) == 0);
    CHECK(pthread_join(t, NULL) == 0);
    if (round == CANCEL_AFTER) {                /* cancel one mid-flight */
      coro *c = &coros[CANCELLED];
      storectx_write_guard *w;
      CHECK_STATUS(storectx_async_store_try_write(c->lock, &w), STORECTX_ERR_BUSY);
      coro_cancel(c);
      CHECK_OK(storectx_async_store_try_write(c->lock, &w));  /* the lock is free */
      storectx_write_guard_release(w);
      CHECK_STATUS(storectx_uninstall(c->own_entry), STORECTX_ERR_STALE_HANDLE);
    }
  }
  for (int i = 0; i < COROS; i++) {
    coro *c = &coros[i];
    CHECK(i == CANCELLED ? !c->done && c->own.count == CANCEL_AFTER + 1
                         : c->done && c->own.count == ROUNDS);
    CHECK(c->parked == NULL);
    storectx_write_guard *w;
    CHECK_OK(storectx_async_store_try_write(c->lock, &w));
    storectx_write_guard_release(w);
    storectx_async_store_release(c->lock);
    free(c->stack);
  }
  CHECK(storectx_is_empty());
  return 0;
}

/* cprog: skip on=windows,musl needs ucontext (getcontext/makecontext/swapcontext), which Windows and musl do not have; readme_coroutines and stress_migration cover suspend/resume across threads there */
