/* coroutine_migrates: a ucontext coroutine installs store A async, makes a
 * nested sync call into store B (pausing its borrow of A), yields inside it
 * with storectx_suspend, is resumed on a DIFFERENT pthread (storectx_resume
 * there, then swapcontext into the coroutine on that thread), finds
 * get_current answering for B then A with the handles taken on thread 1,
 * while those handles are stale on thread 1, and unwinds cleanly there.
 * The coroutine keeps its state on its own stack and in `struct coro`;
 * no thread-local variable is held across the yield. */
/* cprog: skip on=windows,musl needs ucontext (getcontext/makecontext/swapcontext), which Windows and musl do not have; readme_coroutines and stress_migration cover suspend/resume across threads there */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <ucontext.h>

#include "check.h"

#define CORO_STACK_SIZE (256 * 1024)

struct store { int counter; };

static struct store store_a, store_b, store_c, store_d;
static storectx_store_id id_a, id_b, id_c, id_d;
static storectx_async_store *async_a;

/* The coroutine and what it carries between threads. */
struct coro {
  ucontext_t ctx;
  ucontext_t *caller;            /* whoever switched into it last */
  void *stack;
  storectx_suspended *seg;       /* detached entries while it is parked */
  size_t resume_base;            /* depth where the segment was re-attached */
  pthread_t t1, t2;
  /* handles taken on thread 1, published for the stale checks */
  storectx_install_guard ga, gb;
  storectx_borrow ba, bb;
  storectx_pause_guard pa;
  int on_t2;                     /* set by thread 2 before switching in */
  int done;
};

static struct coro co;

/* Phase hand-off between the two threads. */
static pthread_mutex_t phase_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t phase_cv = PTHREAD_COND_INITIALIZER;
static int phase;

static void set_phase(int p) {
  pthread_mutex_lock(&phase_mu);
  phase = p;
  pthread_cond_broadcast(&phase_cv);
  pthread_mutex_unlock(&phase_mu);
}

static void wait_phase(int p) {
  pthread_mutex_lock(&phase_mu);
  while (phase < p) pthread_cond_wait(&phase_cv, &phase_mu);
  pthread_mutex_unlock(&phase_mu);
}

/* pthread_self is declared const: call it through a volatile pointer so the
 * compiler cannot reuse a value computed before the coroutine migrated. */
static pthread_t (*volatile self_fn)(void) = pthread_self;

/* Yield: detach everything above base into co.seg and switch out. Returns
 * the depth at which the segment was re-attached by whoever resumed it. */
static size_t coro_yield(struct coro *c, size_t base) {
  storectx_suspended *seg = NULL;
  CHECK_OK(storectx_suspend(base, &seg));
  CHECK(seg != NULL);
  CHECK(storectx_depth() == base);
  c->seg = seg;
  CHECK(swapcontext(&c->ctx, c->caller) == 0);
  return c->resume_base;
}

/* Every handle the coroutine took must be unusable on the calling thread,
 * and the failed calls must not disturb the thread's own stack. */
static void check_handles_stale_here(void) {
  size_t depth = storectx_depth();
  CHECK_STATUS(storectx_borrow_release(co.bb), STORECTX_ERR_STALE_HANDLE);
  CHECK_STATUS(storectx_uninstall(co.gb), STORECTX_ERR_STALE_HANDLE);
  CHECK_STATUS(storectx_unpause(co.pa), STORECTX_ERR_STALE_HANDLE);
  CHECK_STATUS(storectx_borrow_release(co.ba), STORECTX_ERR_STALE_HANDLE);
  CHECK_STATUS(storectx_uninstall(co.ga), STORECTX_ERR_STALE_HANDLE);
  CHECK(!storectx_install_guard_installed(co.ga));
  CHECK(!storectx_install_guard_installed(co.gb));
  CHECK(storectx_depth() == depth);
  CHECK(storectx_is_active(id_c));
  CHECK(!storectx_is_active(id_a) && !storectx_is_paused(id_a));
  CHECK(!storectx_is_active(id_b) && !storectx_is_paused(id_b));
  void *p = &store_c;
  storectx_borrow b = {0};
  CHECK_STATUS(storectx_get_current(id_a, &p, &b), STORECTX_ERR_NOT_INSTALLED);
  CHECK_STATUS(storectx_get_current(id_b, &p, &b), STORECTX_ERR_NOT_INSTALLED);
  CHECK(p == &store_c && b.raw == 0);
  /* A's write lock travels with the coroutine, never free meanwhile. */
  storectx_write_guard *g = NULL;
  CHECK_STATUS(storectx_async_store_try_write(async_a, &g), STORECTX_ERR_BUSY);
  CHECK(g == NULL);
}

static void coro_body(struct coro *c) {
  /* Started on thread 1, above thread 1's own entry for C. */
  size_t base = storectx_depth();
  CHECK(base == 1);
  CHECK(pthread_equal(self_fn(), c->t1));

  storectx_write_guard *wg = NULL;
  CHECK_OK(storectx_async_store_try_write(async_a, &wg));
  CHECK(storectx_write_guard_store(wg) == &store_a);
  CHECK_OK(storectx_install_async(wg, &c->ga));
  CHECK(storectx_install_guard_installed(c->ga));

  /* The host function borrows A, pauses the borrow while it calls guest
   * code, and the guest calls into store B (nested sync call). */
  void *p = NULL;
  CHECK_OK(storectx_get_current(id_a, &p, &c->ba));
  CHECK(p == &store_a);
  CHECK_OK(storectx_pause(id_a, &c->pa));
  CHECK_OK(storectx_install(id_b, &store_b, &c->gb));
  CHECK_OK(storectx_get_current(id_b, &p, &c->bb));
  CHECK(p == &store_b);
  CHECK(storectx_depth() == base + 2);
  CHECK(storectx_is_paused(id_a) && storectx_is_active(id_b));

  /* Yield inside the nested call; come back on thread 2. */
  base = coro_yield(c, base);

  CHECK(c->on_t2);
  CHECK(pthread_equal(self_fn(), c->t2));
  CHECK(base == 1);                                  /* thread 2's D below */
  CHECK(storectx_depth() == base + 2);
  CHECK(storectx_is_active(id_b));
  CHECK(storectx_is_paused(id_a));
  CHECK(storectx_is_paused(id_d));

  /* get_current answers for B, not for A (paused under B). */
  storectx_borrow bb2;
  p = NULL;
  CHECK_OK(storectx_get_current(id_b, &p, &bb2));
  CHECK(p == &store_b);
  storectx_borrow untouched = {0};
  CHECK_STATUS(storectx_get_current(id_a, &p, &untouched), STORECTX_ERR_PAUSED);
  CHECK(p == &store_b && untouched.raw == 0);

  /* While the entries live here, thread 1 must find its old handles stale. */
  set_phase(2);
  wait_phase(3);

  /* The handles thread 1 took work here, in order. */
  CHECK_STATUS(storectx_uninstall(c->ga), STORECTX_ERR_OUT_OF_ORDER);
  CHECK_STATUS(storectx_unpause(c->pa), STORECTX_ERR_OUT_OF_ORDER);
  CHECK_STATUS(storectx_uninstall(c->gb), STORECTX_ERR_STILL_BORROWED);
  CHECK_OK(storectx_borrow_release(bb2));
  CHECK_OK(storectx_borrow_release(c->bb));        /* taken on thread 1 */
  CHECK_STATUS(storectx_borrow_release(c->bb), STORECTX_ERR_NOT_BORROWED);
  CHECK_OK(storectx_uninstall(c->gb));             /* taken on thread 1 */
  CHECK(!storectx_install_guard_installed(c->gb));

  /* Back in the host function: A is on top again. */
  CHECK(storectx_is_active(id_a));
  CHECK_OK(storectx_unpause(c->pa));               /* restores the borrow */
  CHECK_STATUS(storectx_uninstall(c->ga), STORECTX_ERR_STILL_BORROWED);
  storectx_async_store *as = NULL;
  storectx_borrow ba2;
  p = NULL;
  CHECK_OK(storectx_get_current_async(id_a, &as, &p, &ba2));
  CHECK(p == &store_a);
  CHECK(as != NULL && storectx_async_store_id(as) == id_a);
  storectx_async_store_release(as);
  ((struct store *)p)->counter++;
  CHECK_OK(storectx_borrow_release(ba2));
  CHECK_OK(storectx_borrow_release(c->ba));        /* taken on thread 1 */
  CHECK_OK(storectx_uninstall(c->ga));             /* unlocks A */
  CHECK(!storectx_install_guard_installed(c->ga));
  CHECK(storectx_depth() == base);
  CHECK(storectx_is_active(id_d));

  c->done = 1;
  swapcontext(&c->ctx, c->caller);                 /* never resumed again */
  abort();
}

static void coro_entry(unsigned hi, unsigned lo) {
  uintptr_t bits = ((uintptr_t)hi << 16 << 16) | (uintptr_t)lo;
  coro_body((struct coro *)bits);
}

static void *thread1(void *arg) {
  (void)arg;
  co.t1 = pthread_self();
  storectx_install_guard gc;
  CHECK_OK(storectx_install(id_c, &store_c, &gc));

  ucontext_t here;
  co.stack = malloc(CORO_STACK_SIZE);
  CHECK(co.stack != NULL);
  CHECK(getcontext(&co.ctx) == 0);
  co.ctx.uc_stack.ss_sp = co.stack;
  co.ctx.uc_stack.ss_size = CORO_STACK_SIZE;
  co.ctx.uc_link = NULL;
  uintptr_t bits = (uintptr_t)&co;
  makecontext(&co.ctx, (void (*)(void))coro_entry, 2,
              (unsigned)(bits >> 16 >> 16), (unsigned)(bits & 0xffffffffu));
  co.caller = &here;
  CHECK(swapcontext(&here, &co.ctx) == 0);

  /* The coroutine yielded: its entries left this thread with it. */
  CHECK(!co.done);
  CHECK(co.seg != NULL);
  CHECK(storectx_suspended_len(co.seg) == 2);
  CHECK(storectx_depth() == 1);
  check_handles_stale_here();

  set_phase(1);                 /* hand the segment to thread 2 */
  wait_phase(2);                /* it now runs there */
  check_handles_stale_here();
  set_phase(3);

  wait_phase(4);                /* finished on thread 2: A unlocked */
  storectx_write_guard *g = NULL;
  CHECK_OK(storectx_async_store_try_write(async_a, &g));
  CHECK(storectx_write_guard_store(g) == &store_a);
  CHECK(store_a.counter == 1);
  storectx_write_guard_release(g);
  CHECK_OK(storectx_uninstall(gc));
  CHECK(storectx_is_empty());
  return NULL;
}

static void *thread2(void *arg) {
  (void)arg;
  co.t2 = pthread_self();
  storectx_install_guard gd;
  CHECK_OK(storectx_install(id_d, &store_d, &gd));

  wait_phase(1);
  size_t base = 99;
  storectx_suspended *seg = co.seg;
  CHECK_OK(storectx_resume(seg, &base));
  CHECK(base == 1);
  CHECK(storectx_depth() == 3);
  CHECK(storectx_is_active(id_b));
  CHECK(storectx_is_paused(id_a));
  CHECK(storectx_suspended_len(seg) == 0);     /* consumed */
  co.seg = NULL;

  ucontext_t here;
  co.resume_base = base;
  co.caller = &here;
  co.on_t2 = 1;
  CHECK(swapcontext(&here, &co.ctx) == 0);

  CHECK(co.done);
  CHECK(storectx_depth() == 1);
  CHECK(storectx_is_active(id_d));
  CHECK_OK(storectx_uninstall(gd));
  CHECK(storectx_is_empty());
  set_phase(4);
  return NULL;
}

int main(void) {
  id_a = storectx_store_id_new();
  id_b = storectx_store_id_new();
  id_c = storectx_store_id_new();
  id_d = storectx_store_id_new();
  CHECK_OK(storectx_async_store_new(id_a, &store_a, &async_a));

  pthread_t t1, t2;
  CHECK(pthread_create(&t1, NULL, thread1, NULL) == 0);
  CHECK(pthread_create(&t2, NULL, thread2, NULL) == 0);
  CHECK(pthread_join(t1, NULL) == 0);
  CHECK(pthread_join(t2, NULL) == 0);

  CHECK(store_a.counter == 1);
  CHECK(storectx_is_empty());
  free(co.stack);
  storectx_async_store_release(async_a);
  puts("coroutine_migrates: ok");
  return 0;
}
