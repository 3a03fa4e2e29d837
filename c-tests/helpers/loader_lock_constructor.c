/* helpers/loader_lock_constructor.c: a shared object whose constructor
 * starts a thread and waits for it, as some libraries' initialisers do. The
 * constructor runs inside dlopen, with the dynamic loader's lock held; the
 * thread makes its first libstorectx calls then. Built and passed to
 * loader_lock_first_call_from_constructor_thread.c by the harness
 * (`cprog: helper`). If a call takes the loader's lock, the thread blocks
 * until dlopen returns: the constructor's join times out and says so. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "storectx.h"

#define CALLS 10

struct store { int value; };

static storectx_status statuses[CALLS];
static int hung = -1;           /* -1: the constructor never ran */

static void *first_calls(void *arg) {
  (void)arg;
  struct store st = {1}, sy = {2};
  storectx_store_id idy = storectx_store_id_new();
  storectx_install_guard gy, ga;
  statuses[0] = storectx_install(idy, &sy, &gy);
  void *p;
  storectx_borrow b;
  statuses[1] = storectx_get_current(idy, &p, &b);
  statuses[2] = storectx_borrow_release(b);
  storectx_async_store *s = NULL;
  statuses[3] = storectx_async_store_new(storectx_store_id_new(), &st, &s);
  storectx_write_guard *w = NULL;
  statuses[4] = storectx_async_store_write(s, 1000000000ull, &w);
  statuses[5] = storectx_install_async(w, &ga);
  storectx_suspended *seg = NULL;
  statuses[6] = storectx_suspend(1, &seg);
  size_t base;
  statuses[7] = storectx_resume(seg, &base);
  statuses[8] = storectx_uninstall(ga);
  /* a refused call, so that the thread's last-error message is written */
  statuses[9] = storectx_install_async(NULL, &ga) == STORECTX_ERR_NULL_ARGUMENT
                    ? STORECTX_OK : STORECTX_ERR_PANIC;
  storectx_async_store_release(s);
  /* exits with the sync entry on its stack */
  return NULL;
}

__attribute__((constructor)) static void start_and_wait(void) {
  const char *scale_env = getenv("STRESS_SCALE");
  int scale = scale_env ? atoi(scale_env) : 1;
  if (scale < 1) scale = 1;
  pthread_t t;
  if (pthread_create(&t, NULL, first_calls, NULL) != 0) abort();
  struct timespec deadline;
  clock_gettime(CLOCK_REALTIME, &deadline);
  deadline.tv_sec += 5 * scale;
  int r = pthread_timedjoin_np(t, NULL, &deadline);
  if (r == ETIMEDOUT) {
    hung = 1;
    pthread_detach(t);          /* it finishes once dlopen releases the lock */
  } else {
    hung = r == 0 ? 0 : 2;
  }
}

/* What the constructor saw: -1 never ran, 0 joined, 1 timed out, 2 error;
 * `out` gets the calls' statuses. */
int loader_lock_helper_result(storectx_status out[CALLS]) {
  for (int i = 0; i < CALLS; i++) out[i] = statuses[i];
  return hung;
}
