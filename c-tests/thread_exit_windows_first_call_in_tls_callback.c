/* thread_exit_windows_first_call_in_tls_callback: on Windows, a thread's
 * FIRST libstorectx call is made from the program's PE TLS callback at
 * DLL_THREAD_DETACH (what a DLL's DllMain(DLL_THREAD_DETACH) or a C++
 * thread_local destructor in a DLL sees), i.e. after the loader may have
 * run the thread's FLS callbacks already (SPEC "Edges", "Thread exit,
 * whatever the order": what it installs is dropped when the thread
 * finishes exiting, or the call is refused with nothing changed and the
 * write guard it was given still holds its lock and can be released).
 * The callback takes a write guard (try_write) and install_async's it; if
 * refused, it releases the guard itself. A thread that used the library
 * before (so its FLS slot was set and its callback ran) does the same. Once
 * each thread is joined, the main thread must take the lock within 3 s
 * (TIMED_OUT = a lock leaked by a thread that no longer exists). */
/* cprog: skip on=linux,freebsd,darwin PE TLS callbacks and DLL_THREAD_DETACH are Windows' */
/* cprog: timeout 60 */
#include <windows.h>
#include <stdint.h>

#include "check.h"

struct store { int value; };

static struct store st = {1};
static storectx_async_store *shared;
static DWORD flagged = 0;            /* the thread id whose detach acts */
static volatile LONG detach_status = -100;
static volatile LONG detach_ran;

static void NTAPI on_tls(PVOID module, DWORD reason, PVOID reserved) {
  (void)module;
  (void)reserved;
  if (reason != DLL_THREAD_DETACH || GetCurrentThreadId() != flagged) return;
  storectx_write_guard *w = NULL;
  storectx_status got = storectx_async_store_try_write(shared, &w);
  if (got == STORECTX_OK) {
    storectx_install_guard g;
    got = storectx_install_async(w, &g);
    if (got != STORECTX_OK) storectx_write_guard_release(w);
  }
  detach_status = got;
  detach_ran = 1;
}

#ifdef _MSC_VER
#pragma section(".CRT$XLB", read)
__declspec(allocate(".CRT$XLB")) PIMAGE_TLS_CALLBACK storectx_test_tls = on_tls;
#else
__attribute__((section(".CRT$XLB"), used)) PIMAGE_TLS_CALLBACK storectx_test_tls = on_tls;
#endif

static DWORD WINAPI idle(LPVOID used_before) {
  if (used_before) {
    storectx_install_guard g;
    CHECK_OK(storectx_install(storectx_store_id_new(), &st, &g));
    CHECK_OK(storectx_uninstall(g));
  }
  return 0;
}

static void run(int used_before) {
  detach_ran = 0;
  detach_status = -100;
  HANDLE h = CreateThread(NULL, 0, idle, (LPVOID)(intptr_t)used_before, CREATE_SUSPENDED, &flagged);
  CHECK(h != NULL);
  ResumeThread(h);
  CHECK(WaitForSingleObject(h, 10000) == WAIT_OBJECT_0);
  CloseHandle(h);
  CHECK(detach_ran);
  storectx_write_guard *w = NULL;
  storectx_status got = storectx_async_store_write(shared, 3000000000ull, &w);
  if (got != STORECTX_OK) {
    fprintf(stderr,
            "thread %s: install_async at DLL_THREAD_DETACH answered %s, and the lock "
            "stayed held after the thread exited (%s)\n",
            used_before ? "that used the library before" : "with its first call there",
            storectx_status_str((storectx_status)detach_status), storectx_status_str(got));
    exit(1);
  }
  storectx_write_guard_release(w);
}

int main(void) {
  CHECK_OK(storectx_async_store_new(storectx_store_id_new(), &st, &shared));
  run(0);
  run(1);
  storectx_async_store_release(shared);
  puts("first call in a TLS callback at thread detach: ok");
  return 0;
}
