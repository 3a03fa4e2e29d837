/* thread_cancel_lock_wait_is_not_a_cancellation_point.c: docs/threading.md's
 * "Thread cancellation" rule. A thread cancelled (deferred, the default)
 * while it waits in storectx_async_store_write keeps waiting: the lock wait
 * is not a cancellation point, so it gets the lock and the call completes.
 * The cancel then acts at the thread's next cancellation point of its own
 * (here pthread_testcancel), where the thread exits with an async entry on
 * its stack: the library's thread-exit teardown drops the entry and
 * releases the store's lock, as for any thread that exits. */
#define _POSIX_C_SOURCE 200809L /* nanosleep under -std=c11 (musl) */
#include <pthread.h>
#include <stdint.h>
#include <time.h>
#include "check.h"

static storectx_async_store *shared;
static int got_lock; /* read and written with __atomic builtins */

/* The waiter's out-parameters are not on its stack: the frames a cancel
 * unwinds keep AddressSanitizer's redzones poisoned, which it then reports
 * when the thread's stack is reused. */
static storectx_write_guard *w;
static storectx_install_guard g;

static void *waiter(void *arg) {
  (void)arg;
  /* Nothing before this is a cancellation point: the cancel, whenever it
   * arrives, is pending while the call waits. */
  if (storectx_async_store_write(shared, UINT64_MAX, &w) != STORECTX_OK) abort();
  __atomic_store_n(&got_lock, 1, __ATOMIC_SEQ_CST);
  if (storectx_install_async(w, &g) != STORECTX_OK) abort();
  pthread_testcancel(); /* the pending cancel acts here, entry and lock held */
  abort();              /* not reached */
  return NULL;
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

int main(void) {
  int store = 0;
  CHECK_OK(storectx_async_store_new(storectx_store_id_new(), &store, &shared));
  storectx_write_guard *held;
  CHECK_OK(storectx_async_store_try_write(shared, &held));

  pthread_t t;
  CHECK(pthread_create(&t, NULL, waiter, NULL) == 0);
  sleep_ms(50); /* let it start waiting (the result does not depend on it) */
  CHECK(pthread_cancel(t) == 0);
  sleep_ms(50);
  CHECK(__atomic_load_n(&got_lock, __ATOMIC_SEQ_CST) == 0); /* main holds the lock */

  storectx_write_guard_release(held); /* now the waiter gets it */
  void *result;
  CHECK(pthread_join(t, &result) == 0);
  CHECK(result == PTHREAD_CANCELED);
  /* Had the wait been a cancellation point, the thread would have ended
   * inside it, without the lock. */
  CHECK(__atomic_load_n(&got_lock, __ATOMIC_SEQ_CST) == 1);
  /* The cancelled thread's entry was torn down with it: the lock is free. */
  CHECK_OK(storectx_async_store_try_write(shared, &held));
  storectx_write_guard_release(held);
  storectx_async_store_release(shared);
  printf("cancelled waiter: got the lock, exited at its own cancellation point, lock released\n");
  return 0;
}
