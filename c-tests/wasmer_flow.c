/* wasmer_flow: the wasmer-style async flow. A ucontext coroutine runs host
 * code against async store A; on every yield the poller uninstalls the async
 * entry (which unlocks A), and on every resume whichever thread polls takes
 * storectx_async_store_write + storectx_install_async again. Polls bounce
 * between two pthreads with different stacks below; between polls A is
 * unlocked, during a poll every other thread finds it locked, and no update
 * made through get_current is lost. No thread-local state crosses a yield. */
/* cprog: skip on=windows,musl needs ucontext (getcontext/makecontext/swapcontext), which Windows and musl do not have; readme_coroutines and stress_migration cover suspend/resume across threads there */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <time.h>
#include <ucontext.h>

#include "check.h"

#define CORO_STACK_SIZE (256 * 1024)
#define POLLS 10
#define LOCK_TIMEOUT_NS 5000000000ull /* a bug fails the test, never hangs it */

struct store { int counter; };

static struct store store_a, store_b, store_e;
static storectx_store_id id_a, id_b, id_e;
static storectx_async_store *async_a;   /* main's reference */

struct coro {
  ucontext_t ctx;
  ucontext_t *caller;
  void *stack;
  size_t poll_depth;                    /* depth with A installed, set by the poller */
  pthread_t poller;                     /* thread polling right now */
  storectx_async_store *as;             /* reference the coroutine hands out */
  int steps;
  int done;
};

static struct coro co;

static pthread_t (*volatile self_fn)(void) = pthread_self;

/* ---- checks run from a third thread while A should be locked ---- */

static void *expect_locked(void *arg) {
  storectx_async_store *s = arg;
  storectx_write_guard *g = NULL;
  CHECK_STATUS(storectx_async_store_try_write(s, &g), STORECTX_ERR_BUSY);
  CHECK_STATUS(storectx_async_store_write(s, 0, &g), STORECTX_ERR_TIMED_OUT);
  CHECK_STATUS(storectx_async_store_write(s, 2000000, &g), STORECTX_ERR_TIMED_OUT);
  CHECK(g == NULL);
  return NULL;
}

static void check_locked_elsewhere(storectx_async_store *s) {
  pthread_t t;
  CHECK(pthread_create(&t, NULL, expect_locked, s) == 0);
  CHECK(pthread_join(t, NULL) == 0);
}

/* ---- the coroutine ---- */

static void coro_yield(struct coro *c) {
  CHECK(swapcontext(&c->ctx, c->caller) == 0);
}

static void coro_body(struct coro *c) {
  for (int step = 0; step < POLLS; step++) {
    CHECK(pthread_equal(self_fn(), c->poller));
    CHECK(storectx_depth() == c->poll_depth);
    CHECK(storectx_is_active(id_a));

    /* Host function: borrow the current store, use it. */
    storectx_async_store *as = NULL;
    void *p = NULL;
    storectx_borrow b;
    CHECK_OK(storectx_get_current_async(id_a, &as, &p, &b));
    CHECK(p == &store_a);
    CHECK(as != NULL && storectx_async_store_id(as) == id_a);
    if (step == 0)
      c->as = as;                       /* the future keeps a reference */
    else
      storectx_async_store_release(as);
    int before = ((struct store *)p)->counter;

    /* A nested sync call inside the host function. */
    storectx_pause_guard pg;
    CHECK_OK(storectx_pause(id_a, &pg));
    storectx_install_guard gb;
    CHECK_OK(storectx_install(id_b, &store_b, &gb));
    void *q = NULL;
    storectx_borrow bb;
    CHECK_OK(storectx_get_current(id_b, &q, &bb));
    CHECK(q == &store_b);
    CHECK_STATUS(storectx_get_current_transient(id_a, &q), STORECTX_ERR_PAUSED);
    CHECK_OK(storectx_borrow_release(bb));
    CHECK_OK(storectx_uninstall(gb));
    CHECK_OK(storectx_unpause(pg));

    check_locked_elsewhere(c->as);
    ((struct store *)p)->counter = before + 1;
    CHECK_OK(storectx_borrow_release(b));
    c->steps = step + 1;

    /* Pending: back to the poller, which uninstalls A. */
    coro_yield(c);
  }
  c->done = 1;
  coro_yield(c);                        /* never resumed again */
  abort();
}

static void coro_entry(unsigned hi, unsigned lo) {
  uintptr_t bits = ((uintptr_t)hi << 16 << 16) | (uintptr_t)lo;
  coro_body((struct coro *)bits);
}

/* ---- pollers ---- */

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int next_poll;      /* index of the poll requested by main */
static int poll_thread;    /* which poller must run it */
static int polls_done;     /* polls completed */
static int quit;

/* One poll of the future on the calling thread. */
static void poll_once(void) {
  storectx_async_store *s = co.as ? co.as : async_a;
  size_t depth0 = storectx_depth();
  storectx_write_guard *g = NULL;
  CHECK_OK(storectx_async_store_write(s, LOCK_TIMEOUT_NS, &g));
  CHECK(storectx_write_guard_store(g) == &store_a);
  storectx_install_guard ig;
  CHECK_OK(storectx_install_async(g, &ig));
  CHECK(storectx_depth() == depth0 + 1);

  ucontext_t here;
  co.caller = &here;
  co.poll_depth = depth0 + 1;
  co.poller = pthread_self();
  int steps_before = co.steps;
  CHECK(swapcontext(&here, &co.ctx) == 0);

  /* Yielded (or finished) with A still installed by us, nothing above. */
  CHECK(co.done || co.steps == steps_before + 1);
  CHECK(storectx_is_active(id_a));
  CHECK(storectx_depth() == depth0 + 1);
  CHECK(storectx_install_guard_installed(ig));
  CHECK_OK(storectx_uninstall(ig));      /* unlocks A */
  CHECK(storectx_depth() == depth0);
  CHECK(!storectx_is_active(id_a) && !storectx_is_paused(id_a));

  /* Unlocked: this very thread can take it again at once. */
  CHECK_OK(storectx_async_store_try_write(s, &g));
  storectx_write_guard_release(g);
}

static void *poller(void *arg) {
  int me = (int)(intptr_t)arg;
  storectx_install_guard ge;
  /* Poller 1 polls above an entry of its own: depths differ per thread. */
  if (me == 1) CHECK_OK(storectx_install(id_e, &store_e, &ge));

  pthread_mutex_lock(&mu);
  for (;;) {
    while (!quit && !(next_poll > polls_done && poll_thread == me))
      pthread_cond_wait(&cv, &mu);
    if (quit) break;
    pthread_mutex_unlock(&mu);
    poll_once();
    pthread_mutex_lock(&mu);
    polls_done++;
    pthread_cond_broadcast(&cv);
  }
  pthread_mutex_unlock(&mu);

  if (me == 1) {
    CHECK(storectx_is_active(id_e));
    CHECK_OK(storectx_uninstall(ge));
  }
  CHECK(storectx_is_empty());
  return NULL;
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

int main(void) {
  id_a = storectx_store_id_new();
  id_b = storectx_store_id_new();
  id_e = storectx_store_id_new();
  CHECK_OK(storectx_async_store_new(id_a, &store_a, &async_a));

  co.stack = malloc(CORO_STACK_SIZE);
  CHECK(co.stack != NULL);
  CHECK(getcontext(&co.ctx) == 0);
  co.ctx.uc_stack.ss_sp = co.stack;
  co.ctx.uc_stack.ss_size = CORO_STACK_SIZE;
  co.ctx.uc_link = NULL;
  uintptr_t bits = (uintptr_t)&co;
  makecontext(&co.ctx, (void (*)(void))coro_entry, 2,
              (unsigned)(bits >> 16 >> 16), (unsigned)(bits & 0xffffffffu));

  pthread_t t[2];
  for (intptr_t i = 0; i < 2; i++)
    CHECK(pthread_create(&t[i], NULL, poller, (void *)i) == 0);

  /* POLLS yields plus the final poll that completes the future. */
  for (int i = 0; i <= POLLS; i++) {
    storectx_write_guard *held = NULL;
    /* Between polls A is free; sometimes main holds it briefly so the
     * poller's write has to wait for it. */
    CHECK_OK(storectx_async_store_try_write(async_a, &held));
    if (i % 3 != 1) {
      storectx_write_guard_release(held);
      held = NULL;
    }
    pthread_mutex_lock(&mu);
    poll_thread = i % 2;
    next_poll = i + 1;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
    if (held) {
      sleep_ms(20);
      storectx_write_guard_release(held);
    }
    pthread_mutex_lock(&mu);
    while (polls_done < i + 1) pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    CHECK(co.done == (i == POLLS));
  }
  pthread_mutex_lock(&mu);
  quit = 1;
  pthread_cond_broadcast(&cv);
  pthread_mutex_unlock(&mu);
  for (int i = 0; i < 2; i++) CHECK(pthread_join(t[i], NULL) == 0);

  CHECK(co.steps == POLLS);
  storectx_write_guard *g = NULL;
  CHECK_OK(storectx_async_store_try_write(async_a, &g));
  CHECK(storectx_write_guard_store(g) == &store_a);
  CHECK(store_a.counter == POLLS);
  storectx_write_guard_release(g);
  storectx_async_store_release(co.as);
  storectx_async_store_release(async_a);
  free(co.stack);
  CHECK(storectx_is_empty());
  puts("wasmer_flow: ok");
  return 0;
}
