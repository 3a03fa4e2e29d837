/* async_interleaved: two ucontext coroutines share one async store S and are
 * interleaved step by step across two pthreads, each migrating on almost
 * every step. Each coroutine does read-counter / yield (holding S, its entry
 * carried in a suspended segment) / write-counter+1. The write lock makes
 * the other coroutine see BUSY while S is held: never both holders at once
 * (an atomic holder count inside the store checks it) and no increment is
 * lost. No thread-local state crosses a yield. */
/* cprog: skip on=windows,musl needs ucontext (getcontext/makecontext/swapcontext), which Windows and musl do not have; readme_coroutines and stress_migration cover suspend/resume across threads there */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <ucontext.h>

#include "check.h"

#define CORO_STACK_SIZE (256 * 1024)
#define ITERATIONS 25

struct store {
  atomic_int holders;  /* coroutines that believe they hold the write lock */
  int counter;         /* protected by the store's write lock only */
};

static struct store store_s;
static storectx_store_id id_s, id_base;
static storectx_async_store *async_s;
static int base_store;

struct coro {
  ucontext_t ctx;
  ucontext_t *caller;
  void *stack;
  storectx_suspended *seg;   /* its entries while parked; NULL before start */
  size_t base;               /* depth where its entries start on this thread */
  int busy;                  /* BUSY answers it got */
  int held_yields;           /* yields made while holding S */
  int done;
};

static struct coro cos[2];

/* Detach this coroutine's entries and switch back to the scheduler. */
static void coro_yield(struct coro *c, size_t expect_len) {
  storectx_suspended *seg = NULL;
  CHECK_OK(storectx_suspend(c->base, &seg));
  CHECK(storectx_suspended_len(seg) == expect_len);
  CHECK(storectx_depth() == c->base);
  CHECK(!storectx_is_active(id_s) && !storectx_is_paused(id_s));
  c->seg = seg;
  CHECK(swapcontext(&c->ctx, c->caller) == 0);
  /* c->base now is where the scheduler re-attached us. */
}

static void coro_body(struct coro *c) {
  for (int i = 0; i < ITERATIONS; i++) {
    storectx_write_guard *g = NULL;
    for (;;) {
      storectx_status st = storectx_async_store_try_write(async_s, &g);
      if (st == STORECTX_OK) break;
      CHECK_STATUS(st, STORECTX_ERR_BUSY);
      CHECK(g == NULL);
      CHECK(atomic_load(&store_s.holders) == 1);   /* the other one */
      c->busy++;
      coro_yield(c, 0);
    }
    CHECK(atomic_fetch_add(&store_s.holders, 1) == 0);
    storectx_install_guard ig;
    CHECK_OK(storectx_install_async(g, &ig));
    void *p = NULL;
    storectx_borrow b;
    CHECK_OK(storectx_get_current(id_s, &p, &b));
    CHECK(p == &store_s);
    int local = ((struct store *)p)->counter;

    c->held_yields++;
    coro_yield(c, 1);                               /* S travels with us */

    CHECK(atomic_load(&store_s.holders) == 1);
    CHECK(storectx_is_active(id_s));
    CHECK(storectx_depth() == c->base + 1);
    void *q = NULL;
    CHECK_OK(storectx_get_current_transient(id_s, &q));
    CHECK(q == p);
    ((struct store *)q)->counter = local + 1;
    CHECK_OK(storectx_borrow_release(b));
    CHECK(atomic_fetch_sub(&store_s.holders, 1) == 1);
    CHECK_OK(storectx_uninstall(ig));               /* unlocks S */
    coro_yield(c, 0);
  }
  c->done = 1;
  CHECK(swapcontext(&c->ctx, c->caller) == 0);    /* never resumed again */
  abort();
}

static void coro_entry(unsigned hi, unsigned lo) {
  uintptr_t bits = ((uintptr_t)hi << 16 << 16) | (uintptr_t)lo;
  struct coro *c = (struct coro *)bits;
  c->base = storectx_depth();
  coro_body(c);
}

static void coro_init(struct coro *c) {
  c->stack = malloc(CORO_STACK_SIZE);
  CHECK(c->stack != NULL);
  CHECK(getcontext(&c->ctx) == 0);
  c->ctx.uc_stack.ss_sp = c->stack;
  c->ctx.uc_stack.ss_size = CORO_STACK_SIZE;
  c->ctx.uc_link = NULL;
  uintptr_t bits = (uintptr_t)c;
  makecontext(&c->ctx, (void (*)(void))coro_entry, 2,
              (unsigned)(bits >> 16 >> 16), (unsigned)(bits & 0xffffffffu));
}

/* Run one step of c on the calling thread. */
static void coro_step(struct coro *c) {
  size_t depth0 = storectx_depth();
  if (c->seg) {
    size_t base = 12345;
    CHECK_OK(storectx_resume(c->seg, &base));
    CHECK(base == depth0);
    c->seg = NULL;
    c->base = base;
  }
  ucontext_t here;
  c->caller = &here;
  CHECK(swapcontext(&here, &c->ctx) == 0);
  CHECK(storectx_depth() == depth0);
  if (c->seg && storectx_suspended_len(c->seg) == 1) {
    /* While c is parked holding S, nobody else may take it. */
    storectx_write_guard *g = NULL;
    CHECK_STATUS(storectx_async_store_try_write(async_s, &g), STORECTX_ERR_BUSY);
    CHECK(g == NULL);
  }
}

/* ---- two worker threads taking turns ---- */

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int step;
static int finished;

/* Thread for a step: 0,1,1,0,0,1,1,0,... so each coroutine changes thread
 * between its consecutive steps. */
static int thread_for(int s) { return (s / 2 + s) % 2; }

static void *worker(void *arg) {
  int me = (int)(intptr_t)arg;
  storectx_install_guard gb;
  /* Worker 1 runs coroutines above an entry of its own. */
  if (me == 1) CHECK_OK(storectx_install(id_base, &base_store, &gb));

  pthread_mutex_lock(&mu);
  for (;;) {
    while (!finished && thread_for(step) != me) pthread_cond_wait(&cv, &mu);
    if (finished) break;
    struct coro *c = &cos[step % 2];
    if (c->done) c = &cos[(step + 1) % 2];
    pthread_mutex_unlock(&mu);

    coro_step(c);

    pthread_mutex_lock(&mu);
    step++;
    if (cos[0].done && cos[1].done) finished = 1;
    CHECK(step < 100 * ITERATIONS);       /* bounded: no livelock */
    pthread_cond_broadcast(&cv);
  }
  pthread_mutex_unlock(&mu);

  if (me == 1) CHECK_OK(storectx_uninstall(gb));
  CHECK(storectx_is_empty());
  return NULL;
}

int main(void) {
  id_s = storectx_store_id_new();
  id_base = storectx_store_id_new();
  CHECK_OK(storectx_async_store_new(id_s, &store_s, &async_s));
  coro_init(&cos[0]);
  coro_init(&cos[1]);

  pthread_t t[2];
  for (intptr_t i = 0; i < 2; i++)
    CHECK(pthread_create(&t[i], NULL, worker, (void *)i) == 0);
  for (int i = 0; i < 2; i++) CHECK(pthread_join(t[i], NULL) == 0);

  for (int i = 0; i < 2; i++) {
    CHECK(cos[i].done);
    CHECK(cos[i].seg == NULL);
    CHECK(cos[i].held_yields == ITERATIONS);
    free(cos[i].stack);
  }
  /* The interleaving is fixed, so the lock must have been found taken. */
  CHECK(cos[0].busy + cos[1].busy > 0);

  storectx_write_guard *g = NULL;
  CHECK_OK(storectx_async_store_try_write(async_s, &g));
  CHECK(store_s.counter == 2 * ITERATIONS);
  CHECK(atomic_load(&store_s.holders) == 0);
  storectx_write_guard_release(g);
  storectx_async_store_release(async_s);
  printf("async_interleaved: ok (%d steps, %d busy)\n", step, cos[0].busy + cos[1].busy);
  return 0;
}
