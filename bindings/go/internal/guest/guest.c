/* Guest functions run by Task.Call in the binding's tests: each checks,
 * from C, what the thread's stack holds while the task's entries are on it. */
#include "guest.h"

#include <stdlib.h>
#include <stdatomic.h>
#include <time.h>

#include "_cgo_export.h"

/* 0 when arg->id is the current store at arg->want; -1 when at another
 * address; else the status of storectx_get_current_transient. */
int64_t guest_probe(uintptr_t arg) {
  const guest_probe_arg *a = (const guest_probe_arg *)arg;
  void *store = NULL;
  storectx_status s = storectx_get_current_transient(a->id, &store);
  if (s != STORECTX_OK) return s;
  return (uintptr_t)store == a->want ? 0 : -1;
}

/* A long guest call: probes, sleeps 200 ms in C, probes again. */
int64_t guest_sleep_probe(uintptr_t arg) {
  int64_t before = guest_probe(arg);
  struct timespec ts = {0, 200 * 1000 * 1000};
  nanosleep(&ts, NULL);
  int64_t after = guest_probe(arg);
  return before != 0 ? before : after;
}

/* Calls back into Go: arg is a cgo.Handle of a func() int64. */
int64_t guest_callback(uintptr_t arg) { return goGuestCallback(arg); }

/* Installs store (id = arg, address = arg) and leaves it on the stack. */
int64_t guest_install_leave(uintptr_t arg) {
  storectx_install_guard g;
  return storectx_install(arg, (void *)arg, &g);
}

/* Uninstalls the entry of the raw install guard arg: a guest that removes
 * an entry its task did not push. */
int64_t guest_pop_top(uintptr_t arg) {
  storectx_install_guard g = {arg};
  return storectx_uninstall(g);
}

int64_t guest_depth(uintptr_t arg) {
  (void)arg;
  return (int64_t)storectx_depth();
}

raw_ret raw_install(uint64_t id, uintptr_t store) {
  storectx_install_guard g = {0};
  raw_ret r = {storectx_install(id, (void *)store, &g), 0};
  r.u = g.raw;
  return r;
}

int32_t raw_uninstall(uint64_t guard) {
  storectx_install_guard g = {guard};
  return storectx_uninstall(g);
}

raw_ret raw_get_current_transient(uint64_t id) {
  void *store = NULL;
  raw_ret r = {storectx_get_current_transient(id, &store), 0};
  r.u = (uint64_t)(uintptr_t)store;
  return r;
}

/* ---- exhausting the segment table (the closing-suspend tests) ---------- */

/* The testing build's hook (`testing` feature), absent from other builds. */
extern void guest_table_hook(size_t) __asm__("storectx_testing_set_table_limit") __attribute__((weak));

int guest_set_table_limit(size_t limit) {
  if (!guest_table_hook) return 0;
  guest_table_hook(limit);
  return 1;
}

static storectx_suspended **filled;
static size_t n_filled, cap_filled;

/* Suspends empty segments until the table answers EXHAUSTED (or max of
 * them); answers how many it took. They stay live until guest_unfill. */
size_t guest_fill_segments(size_t max) {
  size_t n = 0;
  while (n < max) {
    storectx_suspended *s = NULL;
    if (storectx_suspend(storectx_depth(), &s) != STORECTX_OK) break;
    if (n_filled == cap_filled) {
      cap_filled = cap_filled ? 2 * cap_filled : 1024;
      filled = realloc(filled, cap_filled * sizeof *filled);
    }
    filled[n_filled++] = s;
    n++;
  }
  return n;
}

void guest_unfill(void) {
  for (size_t i = 0; i < n_filled; i++) storectx_suspended_free(filled[i]);
  n_filled = 0;
}

/* A guest that fills the segment table while the task's entries are on the
 * thread: the task's closing suspend then finds no free segment. */
int64_t guest_fill(uintptr_t arg) { return (int64_t)guest_fill_segments((size_t)arg); }

/* Thread-exit watch: counts the exits of the threads watch_thread was
 * called on (a goroutine that ends locked to its thread makes Go end it). */
static _Atomic size_t guest_watched_exits;
static __thread int guest_watching;
extern int __cxa_thread_atexit_impl(void (*fn)(void *), void *arg, void *dso) __attribute__((weak));
extern void *__dso_handle __attribute__((weak));
static void guest_on_exit(void *unused) {
  (void)unused;
  atomic_fetch_add(&guest_watched_exits, 1);
}
int guest_watch_thread(void) {
  if (guest_watching) return 1;
  if (__cxa_thread_atexit_impl == NULL || &__dso_handle == NULL) return 0;
  if (__cxa_thread_atexit_impl(guest_on_exit, NULL, &__dso_handle) != 0) return 0;
  guest_watching = 1;
  return 1;
}
size_t guest_watched_exits_count(void) { return atomic_load(&guest_watched_exits); }
