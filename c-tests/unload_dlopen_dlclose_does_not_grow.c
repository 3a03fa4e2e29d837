/* unload_dlopen_dlclose_does_not_grow: a process that dlopens
 * libstorectx.so.0, uses it from a thread (install, get_current, an async
 * store's write lock install_async'ed, a segment suspended and freed, write
 * guards and segments through the handle table), and dlcloses it, 3,000
 * times, does not grow (issue 11, input 5, "Unload"; SPEC "Edges": "A
 * process that dlopens and dlcloses the library many times does not grow:
 * process-wide memory is freed when the library is unloaded, or the library
 * stays loaded"). RSS (/proc/self/statm) is read after 100 warm-up cycles
 * and every 100 cycles after: it must not grow by 2 MiB or more (today
 * ~64 KiB per cycle: the handle table's chunks are never freed). The test
 * also reports whether dlclose really unloads (dlopen(RTLD_NOLOAD) after
 * it) and requires one answer for every cycle: always unloaded, or always
 * kept (-z nodelete). The program is not linked to the library: the harness
 * passes its path in STORECTX_LIB. Under valgrind (STRESS_SCALE) it runs a
 * few dozen cycles and bounds the heap memcheck counts in use instead of
 * RSS, at the same rate per cycle; under AddressSanitizer (whose quarantine
 * holds freed memory) a few hundred cycles and LeakSanitizer's verdict. */
/* cprog: dlopen */
/* cprog: skip on=qemu qemu-user's own RSS grows ~280 KiB with every thread it emulates (measured: 100 created-and-joined threads, no library, +28 MiB), so RSS cannot measure the library there; the native x86-64 runs check it */
/* cprog: skip on=windows no dlopen/dlclose nor /proc/self/statm on Windows; the DLL pins itself at first use (GetModuleHandleExW PIN), so FreeLibrary never unloads it */
/* cprog: timeout 120 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "storectx.h" /* types only: every function comes from dlsym */

#if defined(__has_include)
#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#define HAVE_MEMCHECK_H 1
#endif
#endif
#ifndef HAVE_MEMCHECK_H
#define RUNNING_ON_VALGRIND 0
#endif

#include "under_asan.h"

#define CYCLES 3000
#define WARM_UP 100
#define CHECK_EVERY 100
#define GROWTH_LIMIT (2u << 20)

#define DIE(...)                                                             \
  do {                                                                       \
    fprintf(stderr, "unload_dlopen_dlclose_does_not_grow: " __VA_ARGS__);    \
    exit(1);                                                                 \
  } while (0)

/* The library's functions, as dlsym finds them. */
#define API(X)                                                               \
  X(storectx_store_id_new) X(storectx_install) X(storectx_uninstall)         \
  X(storectx_get_current) X(storectx_borrow_release) X(storectx_depth)       \
  X(storectx_async_store_new) X(storectx_async_store_release)                \
  X(storectx_async_store_write) X(storectx_async_store_try_write)            \
  X(storectx_write_guard_release) X(storectx_install_async)                  \
  X(storectx_suspend) X(storectx_suspended_free) X(storectx_resume)          \
  X(storectx_last_error) X(storectx_status_str)

struct api {
#define FIELD(name) __typeof__(&name) name;
  API(FIELD)
#undef FIELD
};

static void load(void *lib, struct api *api) {
#define LOAD(name)                                                           \
  *(void **)&api->name = dlsym(lib, #name);                                  \
  if (!api->name) DIE("dlsym(%s): %s\n", #name, dlerror());
  API(LOAD)
#undef LOAD
}

#define EXPECT_OK(api, expr)                                                 \
  do {                                                                       \
    storectx_status st_ = (expr);                                            \
    if (st_ != STORECTX_OK)                                                  \
      DIE("%s answered %s: %s\n", #expr, (api)->storectx_status_str(st_),    \
          (api)->storectx_last_error());                                     \
  } while (0)

struct store { int value; };

/* One thread's use of the library: entries, locks, handles, a segment. */
static void *use_library(void *arg) {
  const struct api *a = arg;
  struct store st = {1}, sy = {2};
  storectx_store_id idy = a->storectx_store_id_new();
  storectx_install_guard gy, ga, gn;
  EXPECT_OK(a, a->storectx_install(idy, &sy, &gy));
  void *p;
  storectx_borrow b;
  EXPECT_OK(a, a->storectx_get_current(idy, &p, &b));
  EXPECT_OK(a, a->storectx_borrow_release(b));
  EXPECT_OK(a, a->storectx_uninstall(gy));

  storectx_async_store *s = NULL;
  EXPECT_OK(a, a->storectx_async_store_new(a->storectx_store_id_new(), &st, &s));
  storectx_write_guard *w = NULL, *w2 = NULL;
  EXPECT_OK(a, a->storectx_async_store_write(s, 1000000000ull, &w));
  EXPECT_OK(a, a->storectx_install_async(w, &ga));
  EXPECT_OK(a, a->storectx_install(idy, &sy, &gn));
  storectx_suspended *seg = NULL;
  EXPECT_OK(a, a->storectx_suspend(0, &seg));
  size_t base;
  EXPECT_OK(a, a->storectx_resume(seg, &base));
  EXPECT_OK(a, a->storectx_suspend(base, &seg));
  a->storectx_suspended_free(seg);
  EXPECT_OK(a, a->storectx_async_store_try_write(s, &w2));
  a->storectx_write_guard_release(w2);
  a->storectx_async_store_release(s);
  /* and one entry left for thread exit to drop */
  EXPECT_OK(a, a->storectx_install(idy, &sy, &gy));
  if (a->storectx_depth() != 1) DIE("depth %zu, want 1\n", a->storectx_depth());
  return NULL;
}

/* Heap bytes in use as memcheck counts them (0 outside valgrind). */
static size_t valgrind_heap_bytes(void) {
#ifdef HAVE_MEMCHECK_H
  unsigned long leaked = 0, dubious = 0, reachable = 0, suppressed = 0;
  VALGRIND_DO_QUICK_LEAK_CHECK;
  VALGRIND_COUNT_LEAKS(leaked, dubious, reachable, suppressed);
  return (size_t)(leaked + dubious + reachable + suppressed);
#else
  return 0;
#endif
}

static size_t rss_bytes(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  if (!f) DIE("cannot open /proc/self/statm\n");
  unsigned long size = 0, resident = 0;
  if (fscanf(f, "%lu %lu", &size, &resident) != 2) DIE("cannot parse /proc/self/statm\n");
  fclose(f);
  return (size_t)resident * (size_t)sysconf(_SC_PAGESIZE);
}

int main(void) {
  const char *path = getenv("STORECTX_LIB");
  if (!path || !*path) DIE("STORECTX_LIB is not set: the harness passes the library's path\n");
  const char *scale_env = getenv("STRESS_SCALE");
  int scale = scale_env ? atoi(scale_env) : 1;
  if (scale < 1) scale = 1;
  int cycles = CYCLES, warm_up = WARM_UP, check_every = CHECK_EVERY, measure = 1;
  size_t limit = GROWTH_LIMIT;
  size_t (*measure_bytes)(void) = rss_bytes;
  const char *what = "RSS";
  if (scale > 1) {              /* a slow runner: fewer cycles */
    cycles = CYCLES / (scale * scale) < 40 ? 40 : CYCLES / (scale * scale);
    warm_up = 10;
    check_every = 10;
    /* the same rate: GROWTH_LIMIT over CYCLES - WARM_UP cycles, at least 64 KiB */
    limit = (size_t)GROWTH_LIMIT * (size_t)(cycles - warm_up) / (CYCLES - WARM_UP);
    if (limit < (64u << 10)) limit = 64u << 10;
    if (RUNNING_ON_VALGRIND) {  /* valgrind's RSS says nothing; its heap count does */
      measure_bytes = valgrind_heap_bytes;
      what = "the heap in use (memcheck)";
    } else {
      measure = 0;
    }
  }
  if (UNDER_ASAN) {             /* the quarantine keeps freed memory */
    cycles = 300;
    measure = 0;
  }
  void *already = dlopen(path, RTLD_NOW | RTLD_NOLOAD);
  if (already) DIE("%s is loaded before the first dlopen: is the program linked to it?\n", path);

  int unloaded = 0, kept = 0;
  size_t warm = 0;
  for (int i = 0; i < cycles; i++) {
    void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!lib) DIE("cycle %d: dlopen(%s): %s\n", i, path, dlerror());
    struct api api;
    load(lib, &api);
    pthread_t t;
    if (pthread_create(&t, NULL, use_library, &api) != 0 || pthread_join(t, NULL) != 0)
      DIE("cycle %d: pthread_create/join failed\n", i);
    if (dlclose(lib) != 0) DIE("cycle %d: dlclose: %s\n", i, dlerror());
    void *still = dlopen(path, RTLD_NOW | RTLD_NOLOAD);
    if (still) {
      kept++;
      dlclose(still);
    } else {
      unloaded++;
    }
    if (kept && unloaded)
      DIE("cycle %d: dlclose unloaded the library %d times and kept it %d times: "
          "one or the other, always\n", i, unloaded, kept);
    if (!measure) continue;
    if (i + 1 == warm_up) warm = measure_bytes();
    if (i + 1 > warm_up && (i + 1) % check_every == 0) {
      size_t now = measure_bytes();
      if (now > warm && now - warm >= limit)
        DIE("%s grew by %zu KiB over %d load/use/unload cycles after a warm-up of %d "
            "(%zu bytes per cycle; limit: %zu KiB in all)\n",
            what, (now - warm) >> 10, i + 1 - warm_up, warm_up,
            (now - warm) / (size_t)(i + 1 - warm_up), limit >> 10);
    }
  }
  printf("unload_dlopen_dlclose_does_not_grow: ok (%d cycles, library %s by dlclose%s)\n",
         cycles, unloaded ? "unloaded" : "kept loaded (nodelete)",
         measure ? ", memory within bound" : ", memory not measured under a sanitizer");
  return 0;
}
