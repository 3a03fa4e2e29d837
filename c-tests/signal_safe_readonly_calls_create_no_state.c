/* signal_safe_readonly_calls_create_no_state: on a thread that has never
 * called libstorectx, the read-only calls (is_active, is_paused, is_empty,
 * depth, active_store, describe into the caller's buffer,
 * install_guard_installed, last_error, status_str, version) allocate
 * nothing, register no thread-exit destructor and set no pthread key: they
 * create no per-thread state and answer as an empty stack (issue 11, input
 * 3, "First call in a signal handler": the kind behind the hang is "the
 * first call allocates / registers state"; SPEC "Edges": read-only calls
 * "never allocate, never take a lock and never create per-thread state").
 * Checked deterministically by interposing, in this executable, malloc,
 * calloc, realloc, free, posix_memalign, aligned_alloc, memalign,
 * __cxa_thread_atexit_impl (how Rust and C++ register thread-local
 * destructors; glibc takes the loader's lock there) and pthread_setspecific,
 * counting calls made on a thread while a thread-local flag is set. Run on
 * a fresh thread before any libstorectx call in the process and again after
 * main has used the library. Today: the first call registers Rust's
 * thread-local destructor (an allocation and __cxa_thread_atexit_impl).
 * Skipped under AddressSanitizer and valgrind, which own malloc. */
/* cprog: skip on=musl,windows counts allocations and thread-exit registrations by interposing glibc's own entry points (__libc_malloc, __cxa_thread_atexit_impl, RTLD_NEXT), which musl and Windows do not have; the read-only calls are the same code on every platform */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "check.h"

#if !UNDER_ASAN

/* ---- the interposers: count what the flagged thread does ---- */

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);

static __thread int counting;  /* local-exec TLS of the executable: no call */
static atomic_long allocations, frees, dtor_registrations, key_sets;

void *malloc(size_t n) {
  if (counting) atomic_fetch_add(&allocations, 1);
  return __libc_malloc(n);
}
void *calloc(size_t n, size_t m) {
  if (counting) atomic_fetch_add(&allocations, 1);
  return __libc_calloc(n, m);
}
void *realloc(void *p, size_t n) {
  if (counting) atomic_fetch_add(&allocations, 1);
  return __libc_realloc(p, n);
}
void free(void *p) {
  if (counting && p) atomic_fetch_add(&frees, 1);
  __libc_free(p);
}
void *memalign(size_t align, size_t n) {
  if (counting) atomic_fetch_add(&allocations, 1);
  return __libc_memalign(align, n);
}
void *aligned_alloc(size_t align, size_t n) {
  if (counting) atomic_fetch_add(&allocations, 1);
  return __libc_memalign(align, n);
}
int posix_memalign(void **out, size_t align, size_t n) {
  if (counting) atomic_fetch_add(&allocations, 1);
  void *p = __libc_memalign(align, n);
  if (!p) return 12; /* ENOMEM */
  *out = p;
  return 0;
}

typedef int (*atexit_fn)(void (*)(void *), void *, void *);
typedef int (*setspecific_fn)(pthread_key_t, const void *);
static atexit_fn real_thread_atexit;
static setspecific_fn real_setspecific;

int __cxa_thread_atexit_impl(void (*dtor)(void *), void *obj, void *dso) {
  if (counting) atomic_fetch_add(&dtor_registrations, 1);
  return real_thread_atexit(dtor, obj, dso);
}

int pthread_setspecific(pthread_key_t key, const void *value) {
  if (counting) atomic_fetch_add(&key_sets, 1);
  return real_setspecific(key, value);
}

/* ---- the calls ---- */

static char empty_describe[256];
static size_t empty_describe_len;
static atomic_int failures;

struct counts { long alloc, free, dtor, key; };

static struct counts snapshot(void) {
  struct counts c = {atomic_load(&allocations), atomic_load(&frees),
                     atomic_load(&dtor_registrations), atomic_load(&key_sets)};
  return c;
}

/* One read-only call; answers whether it answered as an empty stack. */
static int call_depth(void) { return storectx_depth() == 0; }
static int call_is_empty(void) { return storectx_is_empty(); }
static int call_is_active(void) { return !storectx_is_active(1); }
static int call_is_paused(void) { return !storectx_is_paused(1); }
static int call_active_store(void) { return storectx_active_store() == 0; }
static int call_describe(void) {
  char buf[256];
  memset(buf, 'x', sizeof buf);
  size_t n = storectx_describe(buf, sizeof buf);
  return n == empty_describe_len && strcmp(buf, empty_describe) == 0;
}
static int call_install_guard_installed(void) {
  storectx_install_guard zero = {0};
  return !storectx_install_guard_installed(zero);
}
static int call_last_error(void) {
  const char *e = storectx_last_error();
  return e != NULL && e[0] == '\0';
}
static int call_status_str(void) { return storectx_status_str(STORECTX_ERR_BUSY) != NULL; }
static int call_version(void) { return storectx_version() != NULL; }

static const struct {
  const char *name;
  int (*call)(void);
} calls[] = {
    {"storectx_depth", call_depth},
    {"storectx_is_empty", call_is_empty},
    {"storectx_is_active(1)", call_is_active},
    {"storectx_is_paused(1)", call_is_paused},
    {"storectx_active_store", call_active_store},
    {"storectx_describe", call_describe},
    {"storectx_install_guard_installed", call_install_guard_installed},
    {"storectx_last_error", call_last_error},
    {"storectx_status_str", call_status_str},
    {"storectx_version", call_version},
};
#define NCALLS (sizeof calls / sizeof calls[0])

struct probe {
  const char *phase;
  size_t which;                 /* the call; NCALLS: all of them, twice */
};

/* Runs the call(s) with counting on, on this fresh thread; reports. */
static void *fresh_thread(void *arg) {
  const struct probe *p = arg;
  size_t first = p->which == NCALLS ? 0 : p->which;
  size_t last = p->which == NCALLS ? NCALLS : p->which + 1;
  for (int again = 0; again < (p->which == NCALLS ? 2 : 1); again++) {
    for (size_t i = first; i < last; i++) {
      struct counts c0 = snapshot();
      counting = 1;
      int ok = calls[i].call();
      counting = 0;
      struct counts c1 = snapshot();
      if (c1.alloc != c0.alloc || c1.free != c0.free || c1.dtor != c0.dtor ||
          c1.key != c0.key) {
        fprintf(stderr,
                "%s: %s as a fresh thread's %s call: %ld allocations, %ld frees,"
                " %ld thread-exit destructors registered, %ld pthread keys set"
                " (want none)\n",
                p->phase, calls[i].name, p->which == NCALLS ? "n-th" : "first",
                c1.alloc - c0.alloc, c1.free - c0.free, c1.dtor - c0.dtor,
                c1.key - c0.key);
        failures++;
      }
      if (!ok) {
        fprintf(stderr, "%s: %s on a fresh thread did not answer as an empty stack\n",
                p->phase, calls[i].name);
        failures++;
      }
    }
  }
  return NULL;
}

/* Each call as a new thread's first, then all of them in a row. */
static void run_fresh_threads(const char *phase) {
  for (size_t i = 0; i <= NCALLS; i++) {
    struct probe p = {phase, i};
    pthread_t t;
    CHECK(pthread_create(&t, NULL, fresh_thread, &p) == 0);
    CHECK(pthread_join(t, NULL) == 0);
  }
}

int main(void) {
  real_thread_atexit = (atexit_fn)(uintptr_t)dlsym(RTLD_NEXT, "__cxa_thread_atexit_impl");
  real_setspecific = (setspecific_fn)(uintptr_t)dlsym(RTLD_NEXT, "pthread_setspecific");
  CHECK(real_thread_atexit != NULL && real_setspecific != NULL);
  /* The interposers are live: a plain malloc on a flagged thread counts. */
  void *(*volatile alloc)(size_t) = malloc;   /* not elided by the compiler */
  counting = 1;
  void *probe = alloc(8);
  counting = 0;
  free(probe);
  if (atomic_load(&allocations) != 1) {
    puts("signal_safe_readonly_calls_create_no_state: skipped: this program's "
         "malloc is not the one called (valgrind replaces it)");
    return 0;
  }
  atomic_store(&allocations, 0);

  /* What an empty stack's describe writes, from a copy made before any call:
   * an empty stack describes as the empty text. */
  empty_describe[0] = '\0';
  empty_describe_len = 0;
  run_fresh_threads("before any libstorectx call in the process");

  /* Now the library has process-wide state; a new thread still has none. */
  storectx_async_store *as = NULL;
  int st = 0;
  CHECK_OK(storectx_async_store_new(storectx_store_id_new(), &st, &as));
  storectx_write_guard *w = NULL;
  CHECK_OK(storectx_async_store_try_write(as, &w));
  storectx_install_guard g;
  CHECK_OK(storectx_install_async(w, &g));
  CHECK_OK(storectx_uninstall(g));
  storectx_async_store_release(as);
  CHECK(storectx_describe(empty_describe, sizeof empty_describe) == 0);
  run_fresh_threads("after main used the library");

  if (failures) {
    fprintf(stderr, "signal_safe_readonly_calls_create_no_state: %d failures\n", failures);
    return 1;
  }
  puts("signal_safe_readonly_calls_create_no_state: ok");
  return 0;
}

#else /* UNDER_ASAN */

int main(void) {
  puts("signal_safe_readonly_calls_create_no_state: skipped: AddressSanitizer "
       "owns malloc, so this program cannot interpose it");
  return 0;
}

#endif
