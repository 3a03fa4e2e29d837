/* The C half of the Go binding (see shim.h): one function per Task method.
 *
 * A task is in one of four states:
 *   IDLE     its entries, if any, are in t->seg; no thread has them.
 *   BUSY     one call holds it: its entries are on the calling thread
 *            above t->base, and go back into t->seg before the call ends.
 *   RESIDENT pinned (Pin) or inside Call on thread t->home: its entries
 *            stay on that thread between calls; calls from that thread go
 *            straight through, calls from any other thread are refused.
 *   CLOSED   nothing left; every call is refused.
 * The state is taken with one compare-and-swap, so a task used from two
 * goroutines at once answers STORECTX_ERR_BUSY instead of mixing stacks. */
#include "shim.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { SX_IDLE, SX_BUSY, SX_RESIDENT, SX_CLOSED };

struct sx_task {
  _Atomic int32_t state;
  _Atomic uintptr_t home; /* the resident thread's token, 0 when not resident */
  /* Written only by the thread that holds the task (BUSY or RESIDENT). */
  uint32_t pins;           /* Pin calls not yet undone */
  uint32_t calls;          /* Call frames active on the home thread */
  size_t base;             /* the thread's depth below the task's entries */
  storectx_suspended *seg; /* the carried entries while IDLE; NULL: none */
};

/* One address per live thread: tells the resident thread from the others. */
static __thread char sx_token;
static uintptr_t sx_self(void) { return (uintptr_t)&sx_token; }

static sx_ret sx_ok(void) {
  sx_ret r;
  r.status = STORECTX_OK;
  r.n = 0;
  r.u = 0;
  r.store = 0;
  r.id = 0;
  r.ptr = NULL;
  r.name = NULL;
  r.msg = NULL;
  return r;
}

/* A library call failed with s: take its name and this thread's message now,
 * before anything else can replace the message. */
static void sx_fail(sx_ret *r, storectx_status s) {
  r->status = s;
  r->name = storectx_status_str(s);
  free(r->msg);
  r->msg = strdup(storectx_last_error());
}

/* The binding refuses a call by itself, with its own message. */
static void sx_refuse(sx_ret *r, storectx_status s, const char *fmt, ...) {
  char text[256];
  va_list ap;
  r->status = s;
  r->name = storectx_status_str(s);
  va_start(ap, fmt);
  vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);
  free(r->msg);
  r->msg = strdup(text);
}

/* Claims t for one call on this thread and puts its entries here. Answers 0
 * (r says why) or 1; *carried says whether sx_leave must suspend them again
 * (1) or they stay because the task is resident on this thread (0). */
static int sx_enter(sx_task *t, sx_ret *r, int *carried) {
  int32_t seen = SX_IDLE;
  if (t == NULL) {
    sx_refuse(r, STORECTX_ERR_NULL_ARGUMENT, "the Task was not made by NewTask");
    return 0;
  }
  if (atomic_compare_exchange_strong_explicit(&t->state, &seen, SX_BUSY, memory_order_acquire,
                                              memory_order_acquire)) {
    *carried = 1;
    if (t->seg != NULL) {
      size_t base = 0;
      storectx_status s = storectx_resume(t->seg, &base);
      if (s != STORECTX_OK) {
        sx_fail(r, s);
        atomic_store_explicit(&t->state, SX_IDLE, memory_order_release);
        return 0;
      }
      t->seg = NULL;
      t->base = base;
    } else {
      t->base = storectx_depth();
    }
    return 1;
  }
  if (seen == SX_RESIDENT && atomic_load_explicit(&t->home, memory_order_relaxed) == sx_self()) {
    *carried = 0;
    return 1;
  }
  if (seen == SX_CLOSED) {
    sx_refuse(r, STORECTX_ERR_STALE_HANDLE, "the task is closed");
  } else if (seen == SX_RESIDENT) {
    sx_refuse(r, STORECTX_ERR_BUSY,
              "the task is pinned to another OS thread (Pin or Call in another goroutine)");
  } else {
    sx_refuse(r, STORECTX_ERR_BUSY, "the task is in use by another goroutine");
  }
  return 0;
}

/* Suspends the task's entries (everything above t->base) into t->seg. */
static void sx_park(sx_task *t, sx_ret *r) {
  size_t depth = storectx_depth();
  if (depth > t->base) {
    storectx_suspended *seg = NULL;
    storectx_status s = storectx_suspend(t->base, &seg);
    if (s == STORECTX_OK) {
      t->seg = seg;
    } else if (r->status == STORECTX_OK) {
      sx_fail(r, s);
    }
  } else if (depth < t->base) {
    /* Only a guest function run by Call can pop entries the task did not
     * push; the task keeps none, and says so. */
    if (r->status == STORECTX_OK) {
      sx_refuse(r, STORECTX_ERR_INVALID_ARGUMENT,
                "the stack shrank below the task's base during the call (depth %zu, base %zu): "
                "entries the task did not push were removed",
                depth, t->base);
    }
  }
}

static void sx_leave(sx_task *t, sx_ret *r, int carried) {
  if (!carried) return;
  sx_park(t, r);
  atomic_store_explicit(&t->state, SX_IDLE, memory_order_release);
}

/* After a Pin or Call ends on the home thread: the last one carries the
 * entries off the thread again. */
static void sx_unreside(sx_task *t, sx_ret *r) {
  if (t->pins + t->calls > 0) return;
  sx_park(t, r);
  atomic_store_explicit(&t->home, 0, memory_order_relaxed);
  atomic_store_explicit(&t->state, SX_IDLE, memory_order_release);
}

uintptr_t sx_task_new(void) { return (uintptr_t)calloc(1, sizeof(sx_task)); }

sx_ret sx_task_close(uintptr_t task) {
  sx_task *t = (sx_task *)task;
  sx_ret r = sx_ok();
  int32_t seen = SX_IDLE;
  if (t == NULL) return r; /* a zero Task holds nothing */
  if (atomic_compare_exchange_strong_explicit(&t->state, &seen, SX_BUSY, memory_order_acquire,
                                              memory_order_acquire)) {
    storectx_suspended_free(t->seg); /* drops the entries, releases their locks */
    t->seg = NULL;
    atomic_store_explicit(&t->state, SX_CLOSED, memory_order_release);
    return r;
  }
  if (seen == SX_CLOSED) return r;
  if (seen == SX_RESIDENT && atomic_load_explicit(&t->home, memory_order_relaxed) == sx_self()) {
    if (t->calls > 0) {
      sx_refuse(&r, STORECTX_ERR_BUSY, "Close inside the task's own Call: close it after Call returns");
      return r;
    }
    r.n = t->pins; /* the Go side undoes this many LockOSThread calls */
    t->pins = 0;
    sx_park(t, &r);
    storectx_suspended_free(t->seg);
    t->seg = NULL;
    atomic_store_explicit(&t->home, 0, memory_order_relaxed);
    atomic_store_explicit(&t->state, SX_CLOSED, memory_order_release);
    return r;
  }
  if (seen == SX_RESIDENT) {
    sx_refuse(&r, STORECTX_ERR_BUSY,
              "Close: the task is pinned to another OS thread (Pin or Call in another goroutine)");
  } else {
    sx_refuse(&r, STORECTX_ERR_BUSY, "Close: the task is in use by another goroutine");
  }
  return r;
}

/* The finalizer: nothing can call the task any more. A task still pinned
 * has its entries on its home thread; they stay there (Unpin first). */
void sx_task_destroy(uintptr_t task) {
  sx_task *t = (sx_task *)task;
  if (t == NULL) return;
  if (atomic_load_explicit(&t->state, memory_order_acquire) != SX_RESIDENT) {
    storectx_suspended_free(t->seg);
  }
  free(t);
}

#define SX_BEGIN                             \
  sx_task *t = (sx_task *)task;              \
  sx_ret r = sx_ok();                        \
  int carried = 0;                           \
  if (!sx_enter(t, &r, &carried)) return r;
#define SX_END              \
  sx_leave(t, &r, carried); \
  return r;
#define SX_CHECK(call)                        \
  do {                                        \
    storectx_status s_ = (call);              \
    if (s_ != STORECTX_OK) sx_fail(&r, s_);   \
  } while (0)

sx_ret sx_install(uintptr_t task, uint64_t id, uintptr_t store) {
  SX_BEGIN
  storectx_install_guard g = {0};
  SX_CHECK(storectx_install(id, (void *)store, &g));
  r.u = g.raw;
  SX_END
}

sx_ret sx_uninstall(uintptr_t task, uint64_t raw) {
  SX_BEGIN
  storectx_install_guard g = {raw};
  if (storectx_depth() <= t->base && storectx_install_guard_installed(g)) {
    /* The guard is valid, for an entry that was on this thread before the
     * task's call: the task must not pop what it did not push. */
    sx_refuse(&r, STORECTX_ERR_STALE_HANDLE,
              "uninstall: the guard names an entry below this task's entries "
              "(the thread had it before the call); a task removes only its own entries");
  } else {
    SX_CHECK(storectx_uninstall(g));
  }
  SX_END
}

sx_ret sx_installed(uintptr_t task, uint64_t raw) {
  SX_BEGIN
  storectx_install_guard g = {raw};
  r.n = storectx_install_guard_installed(g) ? 1 : 0;
  SX_END
}

sx_ret sx_install_async(uintptr_t task, storectx_write_guard *wg) {
  SX_BEGIN
  storectx_install_guard g = {0};
  SX_CHECK(storectx_install_async(wg, &g));
  r.u = g.raw;
  SX_END
}

sx_ret sx_get_current(uintptr_t task, uint64_t id) {
  SX_BEGIN
  void *store = NULL;
  storectx_borrow b = {0};
  SX_CHECK(storectx_get_current(id, &store, &b));
  r.store = (uintptr_t)store;
  r.u = b.raw;
  SX_END
}

sx_ret sx_get_current_transient(uintptr_t task, uint64_t id) {
  SX_BEGIN
  void *store = NULL;
  SX_CHECK(storectx_get_current_transient(id, &store));
  r.store = (uintptr_t)store;
  SX_END
}

sx_ret sx_get_current_unborrowed(uintptr_t task) {
  SX_BEGIN
  storectx_store_id id = 0;
  void *store = NULL;
  storectx_borrow b = {0};
  SX_CHECK(storectx_get_current_unborrowed(&id, &store, &b));
  r.id = id;
  r.store = (uintptr_t)store;
  r.u = b.raw;
  SX_END
}

sx_ret sx_get_current_async(uintptr_t task, uint64_t id) {
  SX_BEGIN
  storectx_async_store *as = NULL;
  void *store = NULL;
  storectx_borrow b = {0};
  SX_CHECK(storectx_get_current_async(id, &as, &store, &b));
  r.ptr = as;
  r.store = (uintptr_t)store;
  r.u = b.raw;
  SX_END
}

sx_ret sx_borrow_clone(uintptr_t task, uint64_t raw) {
  SX_BEGIN
  storectx_borrow b = {raw}, out = {0};
  SX_CHECK(storectx_borrow_clone(b, &out));
  r.u = out.raw;
  SX_END
}

sx_ret sx_borrow_release(uintptr_t task, uint64_t raw) {
  SX_BEGIN
  storectx_borrow b = {raw};
  SX_CHECK(storectx_borrow_release(b));
  SX_END
}

sx_ret sx_pause(uintptr_t task, uint64_t id) {
  SX_BEGIN
  storectx_pause_guard p = {0};
  SX_CHECK(storectx_pause(id, &p));
  r.u = p.raw;
  SX_END
}

sx_ret sx_unpause(uintptr_t task, uint64_t raw) {
  SX_BEGIN
  storectx_pause_guard p = {raw};
  SX_CHECK(storectx_unpause(p));
  SX_END
}

sx_ret sx_write(uintptr_t task, storectx_async_store *s, uint64_t timeout_ns) {
  SX_BEGIN
  storectx_write_guard *g = NULL;
  SX_CHECK(storectx_async_store_write(s, timeout_ns, &g));
  r.ptr = g;
  SX_END
}

sx_ret sx_inspect(uintptr_t task, uint64_t id) {
  SX_BEGIN
  size_t depth = storectx_depth();
  r.u = depth > t->base ? depth - t->base : 0;
  r.id = storectx_active_store();
  r.n = (storectx_is_active(id) ? 1u : 0u) | (storectx_is_paused(id) ? 2u : 0u);
  SX_END
}

sx_ret sx_describe(uintptr_t task) {
  SX_BEGIN
  size_t need = storectx_describe(NULL, 0);
  char *text = malloc(need + 1);
  if (text == NULL) {
    sx_refuse(&r, STORECTX_ERR_EXHAUSTED, "describe: out of memory for %zu bytes", need + 1);
  } else {
    storectx_describe(text, need + 1);
    r.ptr = text; /* the Go side copies and frees it */
  }
  SX_END
}

sx_ret sx_pin(uintptr_t task) {
  SX_BEGIN
  if (carried) {
    t->pins = 1;
    t->calls = 0;
    atomic_store_explicit(&t->home, sx_self(), memory_order_relaxed);
    atomic_store_explicit(&t->state, SX_RESIDENT, memory_order_release);
  } else {
    t->pins++;
  }
  return r;
}

sx_ret sx_unpin(uintptr_t task) {
  SX_BEGIN
  if (carried || t->pins == 0) {
    sx_refuse(&r, STORECTX_ERR_INVALID_ARGUMENT, "Unpin: the task is not pinned");
    SX_END
  }
  t->pins--;
  sx_unreside(t, &r);
  return r;
}

sx_ret sx_call(uintptr_t task, sx_guest_fn fn, uintptr_t arg) {
  if (fn == NULL) {
    sx_ret r = sx_ok();
    sx_refuse(&r, STORECTX_ERR_NULL_ARGUMENT, "Call: the guest function is NULL");
    return r;
  }
  SX_BEGIN
  if (carried) {
    t->pins = 0;
    t->calls = 1;
    atomic_store_explicit(&t->home, sx_self(), memory_order_relaxed);
    atomic_store_explicit(&t->state, SX_RESIDENT, memory_order_release);
  } else {
    t->calls++;
  }
  r.u = (uint64_t)fn(arg);
  t->calls--;
  sx_unreside(t, &r);
  return r;
}

sx_ret sx_async_store_new(uint64_t id, uintptr_t store) {
  sx_ret r = sx_ok();
  storectx_async_store *s = NULL;
  storectx_status st = storectx_async_store_new(id, (void *)store, &s);
  if (st != STORECTX_OK) sx_fail(&r, st);
  r.ptr = s;
  return r;
}

sx_ret sx_try_write(storectx_async_store *s) {
  sx_ret r = sx_ok();
  storectx_write_guard *g = NULL;
  storectx_status st = storectx_async_store_try_write(s, &g);
  if (st != STORECTX_OK) sx_fail(&r, st);
  r.ptr = g;
  return r;
}
