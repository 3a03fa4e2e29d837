/* thread_cancel_async_inside_a_call_aborts.c: docs/threading.md's
 * "Thread cancellation" rule for asynchronous cancellation. A thread with
 * PTHREAD_CANCEL_ASYNCHRONOUS that is cancelled while it is inside a
 * libstorectx call (here waiting in storectx_async_store_write for a lock
 * another thread holds) does not unwind through the library and carry on
 * with its stack half edited: the process aborts. Run in a forked child,
 * whose end (SIGABRT) the parent checks. */

/* cprog: skip on=musl musl's cancellation does not unwind (pthread_exit runs the cleanup handlers and ends the thread, no forced unwinding), so nothing reaches the library's abort-on-unwind guard: an asynchronously cancelled thread ends inside the call (docs/platforms.md) */
/* cprog: skip on=windows fork() does not exist on Windows, and winpthreads' asynchronous cancellation is not POSIX's */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

static storectx_async_store *shared;
static storectx_write_guard *w; /* not on the waiter's stack (see thread_cancel_lock_wait_*) */

static void *waiter(void *arg) {
  (void)arg;
  int old;
  if (pthread_setcanceltype(PTHREAD_CANCEL_ASYNCHRONOUS, &old) != 0) abort();
  storectx_async_store_write(shared, UINT64_MAX, &w); /* waits inside the library */
  _exit(3);                                           /* not reached */
  return NULL;
}

static void child(void) {
  int store = 0;
  storectx_write_guard *held;
  if (storectx_async_store_new(storectx_store_id_new(), &store, &shared) != STORECTX_OK ||
      storectx_async_store_try_write(shared, &held) != STORECTX_OK)
    _exit(2);
  pthread_t t;
  if (pthread_create(&t, NULL, waiter, NULL) != 0) _exit(2);
  struct timespec ts = {0, 200 * 1000000L}; /* let it reach the wait */
  while (nanosleep(&ts, &ts) != 0) {
  }
  pthread_cancel(t);
  pthread_join(t, NULL); /* the process aborts before this returns */
  _exit(4);
}

int main(void) {
  pid_t pid = fork();
  CHECK(pid >= 0);
  if (pid == 0) child();
  int status;
  CHECK(waitpid(pid, &status, 0) == pid);
  if (WIFEXITED(status)) {
    fprintf(stderr, "child exited with %d instead of aborting\n", WEXITSTATUS(status));
    return 1;
  }
  CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
  printf("asynchronous cancel inside a call: the process aborted (SIGABRT)\n");
  return 0;
}
