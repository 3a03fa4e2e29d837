/* loader_lock_first_call_from_constructor_thread: a thread that a library's
 * constructor starts and waits for, while dlopen holds the dynamic loader's
 * lock, makes its FIRST libstorectx calls (install, get_current, an async
 * store written, install_async'ed, suspended, resumed and uninstalled, a
 * refused call) and exits with an entry on its stack (issue 11, "No call
 * takes the loader's lock"; SPEC "Edges", "Where a first call may come
 * from": "from a thread that a library constructor started and waits for
 * while the dynamic loader's lock is held ... No call takes the loader's
 * lock"). Every call must answer OK and the constructor's join must not
 * time out (5 s): today the first call registers Rust's thread-local
 * destructor through __cxa_thread_atexit_impl, which waits for the loader's
 * lock, so the thread blocks until dlopen returns. The helper shared object
 * (helpers/loader_lock_constructor.c, linked to the library as this program
 * is) is built by the harness and named in STORECTX_HELPER. */
/* cprog: skip on=windows ELF-only edge: an ELF constructor's thread runs while the loader lock is held; on Windows a thread started from DllMain does not run until the loader lock is released, and there is no dlopen */
/* cprog: helper helpers/loader_lock_constructor.c */
/* cprog: timeout 60 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "storectx.h"

#define CALLS 10

int main(void) {
  const char *path = getenv("STORECTX_HELPER");
  if (!path || !*path) {
    fprintf(stderr, "STORECTX_HELPER is not set: the harness builds the helper\n");
    return 1;
  }
  void *helper = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!helper) {
    fprintf(stderr, "dlopen(%s): %s\n", path, dlerror());
    return 1;
  }
  int (*result)(storectx_status *) =
      (int (*)(storectx_status *))(uintptr_t)dlsym(helper, "loader_lock_helper_result");
  if (!result) {
    fprintf(stderr, "dlsym(loader_lock_helper_result): %s\n", dlerror());
    return 1;
  }
  storectx_status st[CALLS];
  int hung = result(st);
  static const char *const names[CALLS] = {
      "install", "get_current", "borrow_release", "async_store_new",
      "async_store_write", "install_async", "suspend", "resume", "uninstall",
      "install_async(NULL) refused"};
  int failures = 0;
  if (hung != 0) {
    fprintf(stderr,
            "the constructor's thread %s: a first call waited for the loader's lock "
            "that dlopen held\n",
            hung == 1 ? "did not finish within 5 s (x STRESS_SCALE)" : hung < 0 ? "never ran" : "could not be joined");
    return 1;                   /* the detached thread may still run in the helper */
  }
  for (int i = 0; i < CALLS; i++) {
    if (st[i] != STORECTX_OK) {
      fprintf(stderr, "first calls under the loader's lock: %s answered %d\n", names[i],
              (int)st[i]);
      failures++;
    }
  }
  if (dlclose(helper) != 0) {
    fprintf(stderr, "dlclose: %s\n", dlerror());
    failures++;
  }
  if (failures) return 1;
  puts("loader_lock_first_call_from_constructor_thread: ok");
  return 0;
}
