/* readme_fiber_poll.c: docs/coroutines.md's "Fiber-based runtimes" rule,
 * verbatim between the markers. A runtime that runs guest code on a fiber
 * and hands the embedder a future to poll (wasmtime's async calls:
 * wasmtime_func_call_async, then wasmtime_call_future_poll until it is
 * done) switches stacks inside the poll, where the embedder cannot reach.
 * The C coroutine rules then apply at the poll boundary: the embedder's
 * poll wrapper resumes the call's entries before the poll and suspends
 * them when the poll returns "not done". Here the fiber is a ucontext, the
 * guest code is host imports that install a sync store and take an async
 * store's lock inside the fiber and find them again after each wait, and
 * every poll runs on a new pthread with an entry of its own underneath. A
 * call abandoned mid-way is cancelled with storectx_suspended_free and its
 * lock is released. */
#define _XOPEN_SOURCE 700 /* ucontext */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <ucontext.h>

#include "check.h"

enum { WAITS = 5, STACK = 256 * 1024 };

typedef struct { storectx_store_id id; long count; } store_t;

/* What the runtime keeps for one async call (its future and fiber). */
typedef struct {
  ucontext_t fiber, poller;
  void *stack;
  bool done;
  int polls;
  store_t instance;                 /* a sync store the guest code installs */
  store_t memory;                   /* an async store it locks */
  storectx_async_store *memory_lock;
  storectx_suspended *parked;       /* the call's entries between polls */
} call;

/* The runtime's side, outside the embedder's reach: run the fiber until it
 * finishes or waits (wasmtime_call_future_poll). */
static bool fiber_poll(call *c) {
  CHECK(swapcontext(&c->poller, &c->fiber) == 0);
  return c->done;
}

/* Inside the fiber: an async host import that is not ready yet (the
 * runtime switches back to the poller; a later poll, on any thread,
 * switches back in). */
static void fiber_wait(call *c) {
  CHECK(swapcontext(&c->fiber, &c->poller) == 0);
}

/* README fiber poll begins */
/* The embedder's poll of one fiber-based call, on whatever thread polls it
 * (error checks left out). */
static bool poll_call(call *c) {
  size_t base = storectx_depth();
  if (c->parked != NULL) {                        /* its entries come back first */
    storectx_resume(c->parked, &base);
    c->parked = NULL;
  }
  bool done = fiber_poll(c);                      /* wasmtime_call_future_poll */
  if (!done) storectx_suspend(base, &c->parked);  /* they leave with the call */
  return done;
}

/* A call that will never be polled again. */
static void cancel_call(call *c) {
  storectx_suspended_free(c->parked);             /* drops its entries, unlocks */
  c->parked = NULL;
}
/* README fiber poll ends */

/* The guest code on the fiber: imports install stores and find them again
 * after every wait, whichever thread polled the call this time. */
static call calls[2];

static void guest(int index) {
  call *c = &calls[index];
  storectx_install_guard inst, mem;
  storectx_write_guard *w;
  CHECK_OK(storectx_install(c->instance.id, &c->instance, &inst));
  CHECK_OK(storectx_async_store_write(c->memory_lock, UINT64_MAX, &w));
  CHECK_OK(storectx_install_async(w, &mem));
  for (int i = 0; i < WAITS; i++) {
    int polled_before = c->polls;
    fiber_wait(c);
    CHECK(c->polls == polled_before + 1);         /* another poll, another thread */
    void *found;
    CHECK_OK(storectx_get_current_transient(c->memory.id, &found));
    CHECK(found == &c->memory);
    ((store_t *)found)->count++;
    CHECK(storectx_is_paused(c->instance.id));
  }
  CHECK_OK(storectx_uninstall(mem));              /* unlocks */
  CHECK_OK(storectx_uninstall(inst));
  c->done = true;
  CHECK(swapcontext(&c->fiber, &c->poller) == 0); /* never switched back */
  abort();
}

static void call_init(int index) {
  call *c = &calls[index];
  memset(c, 0, sizeof *c);
  c->instance.id = storectx_store_id_new();
  c->memory.id = storectx_store_id_new();
  CHECK_OK(storectx_async_store_new(c->memory.id, &c->memory, &c->memory_lock));
  c->stack = malloc(STACK);
  CHECK(c->stack != NULL && getcontext(&c->fiber) == 0);
  c->fiber.uc_stack.ss_sp = c->stack;
  c->fiber.uc_stack.ss_size = STACK;
  c->fiber.uc_link = NULL;
  makecontext(&c->fiber, (void (*)(void))guest, 1, index); /* int arguments only */
}

static storectx_store_id poller_id;

/* One poll on a new thread, with an entry of the thread's own underneath:
 * after the poll the thread's stack is as it was. */
static void *poll_thread(void *arg) {
  call *c = arg;
  store_t mine = {poller_id, 0};
  storectx_install_guard g;
  CHECK_OK(storectx_install(mine.id, &mine, &g));
  c->polls++;
  bool done = poll_call(c);
  CHECK(storectx_depth() == 1 && storectx_is_active(mine.id));
  CHECK(done || storectx_suspended_len(c->parked) == 2);
  CHECK_OK(storectx_uninstall(g));
  return (void *)(intptr_t)done;
}

static bool poll_on_new_thread(call *c) {
  pthread_t t;
  void *done;
  CHECK(pthread_create(&t, NULL, poll_thread, c) == 0 && pthread_join(t, &done) == 0);
  return done != NULL;
}

int main(void) {
  poller_id = storectx_store_id_new();
  call *finished = &calls[0], *abandoned = &calls[1];

  call_init(0);
  int polls = 0;
  while (!poll_on_new_thread(finished)) polls++;
  CHECK(polls == WAITS && finished->memory.count == WAITS);
  storectx_write_guard *w;
  CHECK_OK(storectx_async_store_try_write(finished->memory_lock, &w)); /* released */
  storectx_write_guard_release(w);

  call_init(1);
  CHECK(!poll_on_new_thread(abandoned) && !poll_on_new_thread(abandoned));
  CHECK(storectx_async_store_try_write(abandoned->memory_lock, &w) == STORECTX_ERR_BUSY);
  cancel_call(abandoned);                        /* its fiber is dropped too */
  CHECK_OK(storectx_async_store_try_write(abandoned->memory_lock, &w));
  storectx_write_guard_release(w);

  storectx_async_store_release(finished->memory_lock);
  storectx_async_store_release(abandoned->memory_lock);
  free(finished->stack);
  free(abandoned->stack);
  CHECK(storectx_is_empty());
  printf("fiber poll: %d polls on %d threads, abandoned call's lock released\n", polls + 1,
         polls + 3);
  return 0;
}

/* cprog: skip on=windows,musl needs ucontext (getcontext/makecontext/swapcontext), which Windows and musl do not have; readme_coroutines and stress_migration cover suspend/resume across threads there */
