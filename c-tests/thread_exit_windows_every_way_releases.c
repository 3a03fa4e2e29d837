/* thread_exit_windows_every_way_releases: on Windows, a thread that exits
 * with entries on its stack (an async entry holding a store's lock, sync
 * entries above it, a live borrow) releases the lock whichever way it was
 * made and left: CreateThread + return, _beginthreadex + return,
 * CreateThread + ExitThread from deep in its call, _beginthreadex +
 * _endthreadex, a thread converted to a fiber (ConvertThreadToFiber) that
 * returns, and a winpthreads thread + pthread_exit (the FLS callback,
 * platform/windows.rs). After each, the main thread takes the store's lock
 * with a bounded wait (TIMED_OUT = the lock leaked). Last, the process exits
 * from main with an async entry still installed on the main thread and
 * another thread asleep waiting for that lock: exit status 0, no crash or
 * hang in the FLS callbacks run at process exit. */
/* cprog: skip on=linux,freebsd,darwin the Windows ways to make and end a thread */
/* cprog: timeout 60 */
#include <windows.h>
#include <process.h>
#include <pthread.h>
#include <stdint.h>

#include "check.h"

struct store { int value; };

static struct store st = {1}, sy = {2};
static storectx_async_store *shared;
static storectx_store_id sync_id;

enum leave { RETURN, EXIT_THREAD, END_THREADEX, FIBER_RETURN, PTHREAD_EXIT };

/* Installs an async entry on `shared` (its lock held) and two sync entries
 * with a borrow, then leaves the way `how` says, never uninstalling. */
static void fill_and_leave(enum leave how) {
  storectx_write_guard *w = NULL;
  CHECK_OK(storectx_async_store_write(shared, 5000000000ull, &w));
  storectx_install_guard ga, g1, g2;
  CHECK_OK(storectx_install_async(w, &ga));
  CHECK_OK(storectx_install(sync_id, &sy, &g1));
  CHECK_OK(storectx_install(sync_id, &sy, &g2));
  void *p = NULL;
  storectx_borrow b;
  CHECK_OK(storectx_get_current(sync_id, &p, &b));
  CHECK(storectx_depth() == 3);
  switch (how) {
  case EXIT_THREAD: ExitThread(0); break;
  case END_THREADEX: _endthreadex(0); break;
  case PTHREAD_EXIT: pthread_exit(NULL); break;
  default: break;
  }
}

static DWORD WINAPI by_create_thread(LPVOID arg) {
  fill_and_leave((enum leave)(intptr_t)arg);
  return 0;
}

static unsigned __stdcall by_beginthreadex(void *arg) {
  fill_and_leave((enum leave)(intptr_t)arg);
  return 0;
}

static DWORD WINAPI as_fiber(LPVOID arg) {
  (void)arg;
  CHECK(ConvertThreadToFiber(NULL) != NULL);
  fill_and_leave(FIBER_RETURN);
  return 0;
}

static void *by_pthread(void *arg) {
  fill_and_leave((enum leave)(intptr_t)arg);
  return NULL;
}

static void expect_released(const char *how) {
  storectx_write_guard *w = NULL;
  storectx_status got = storectx_async_store_write(shared, 3000000000ull, &w);
  if (got != STORECTX_OK) {
    fprintf(stderr, "%s: the exited thread's lock was not released (%s: %s)\n", how,
            storectx_status_str(got), storectx_last_error());
    exit(1);
  }
  storectx_write_guard_release(w);
}

static void join(HANDLE h) {
  CHECK(h != NULL);
  CHECK(WaitForSingleObject(h, 10000) == WAIT_OBJECT_0);
  CloseHandle(h);
}

static DWORD WINAPI waiter(LPVOID arg) {
  (void)arg;
  storectx_write_guard *w = NULL;
  storectx_async_store_write(shared, UINT64_MAX, &w); /* never returns */
  return 0;
}

int main(void) {
  sync_id = storectx_store_id_new();
  CHECK_OK(storectx_async_store_new(storectx_store_id_new(), &st, &shared));

  join(CreateThread(NULL, 0, by_create_thread, (LPVOID)(intptr_t)RETURN, 0, NULL));
  expect_released("CreateThread + return");
  join((HANDLE)_beginthreadex(NULL, 0, by_beginthreadex, (void *)(intptr_t)RETURN, 0, NULL));
  expect_released("_beginthreadex + return");
  join(CreateThread(NULL, 0, by_create_thread, (LPVOID)(intptr_t)EXIT_THREAD, 0, NULL));
  expect_released("CreateThread + ExitThread");
  join((HANDLE)_beginthreadex(NULL, 0, by_beginthreadex, (void *)(intptr_t)END_THREADEX, 0, NULL));
  expect_released("_beginthreadex + _endthreadex");
  join(CreateThread(NULL, 0, as_fiber, NULL, 0, NULL));
  expect_released("ConvertThreadToFiber + return");
  pthread_t t;
  CHECK(pthread_create(&t, NULL, by_pthread, (void *)(intptr_t)PTHREAD_EXIT) == 0);
  CHECK(pthread_join(t, NULL) == 0);
  expect_released("pthread_create + pthread_exit");

  /* Process exit with the main thread holding the lock through an entry
   * and a thread asleep waiting for it. */
  storectx_write_guard *w = NULL;
  CHECK_OK(storectx_async_store_try_write(shared, &w));
  storectx_install_guard g;
  CHECK_OK(storectx_install_async(w, &g));
  CHECK(CreateThread(NULL, 0, waiter, NULL, 0, NULL) != NULL);
  Sleep(50);
  puts("thread exit on Windows, every way: ok");
  fflush(stdout);
  return 0;
}
