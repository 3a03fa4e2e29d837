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

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __linux__
#include <sys/syscall.h>
#include <unistd.h>
#endif

enum { SX_IDLE, SX_BUSY, SX_RESIDENT, SX_CLOSED };

struct sx_task {
  _Atomic int32_t state;
  _Atomic uintptr_t home; /* the resident thread's token, 0 when not resident */
  /* Owners of this memory: the Go Task (until its finalizer runs) and, while
   * the task is resident, its home thread's list (the thread-exit hook). */
  _Atomic int32_t refs;
  /* Written only by the thread that holds the task (BUSY or RESIDENT). */
  uint32_t pins;  /* Pin calls not yet undone */
  uint32_t calls; /* Call frames active on the home thread */
  uint32_t stuck; /* resident because a closing suspend found no segment */
  size_t base;    /* the thread's depth below the task's entries */
  storectx_suspended *seg;   /* the carried entries while IDLE; NULL: none */
  storectx_suspended *spare; /* an empty segment kept in reserve: freed to make
                                room when the closing suspend finds the
                                segment table exhausted */
  sx_task *next;             /* the home thread's list of resident tasks */
};

/* One address per live thread: tells the resident thread from the others. */
static __thread char sx_token;
static uintptr_t sx_self(void) { return (uintptr_t)&sx_token; }

static sx_ret sx_ok(void) {
  sx_ret r;
  r.status = STORECTX_OK;
  r.n = 0;
  r.unlock = 1; /* the Go side's LockOSThread around the call */
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
  char text[512];
  va_list ap;
  r->status = s;
  r->name = storectx_status_str(s);
  va_start(ap, fmt);
  vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);
  free(r->msg);
  r->msg = strdup(text);
}

/* Appends text to r's message (best effort: no memory keeps the message). */
static void sx_append(sx_ret *r, const char *text) {
  size_t a = r->msg ? strlen(r->msg) : 0, b = strlen(text);
  char *m = realloc(r->msg, a + b + 1);
  if (m == NULL) return;
  memcpy(m + a, text, b + 1);
  r->msg = m;
}

/* ---- the thread-exit hook: tasks resident on a thread that ends ---------
 *
 * A goroutine that ends while it has a task pinned (or stuck, below) ends
 * locked to its OS thread, and Go then terminates that thread. Each thread
 * keeps the list of the tasks resident on it; when it exits, before the
 * library's own teardown (glibc runs __cxa_thread_atexit_impl destructors
 * before pthread_key ones), each task's entries are suspended back into the
 * task and the task becomes idle: usable again from any goroutine, and its
 * Close frees the entries. If they cannot be suspended, the library's
 * teardown drops them and releases their locks; the task comes back empty. */

static __thread sx_task *sx_residents;
static __thread int sx_hooked;

extern int __cxa_thread_atexit_impl(void (*fn)(void *), void *arg, void *dso) __attribute__((weak));
extern void *__dso_handle __attribute__((weak));

static pthread_key_t sx_key;
static pthread_once_t sx_key_once = PTHREAD_ONCE_INIT;

static int sx_park(sx_task *t, sx_ret *r);

static void sx_unref(sx_task *t) {
  if (atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) != 1) return;
  storectx_suspended_free(t->seg);
  storectx_suspended_free(t->spare);
  free(t);
}

static void sx_thread_exit(void *unused) {
  (void)unused;
  sx_task *t;
  while ((t = sx_residents) != NULL) {
    sx_residents = t->next;
    t->next = NULL;
    t->pins = 0;
    t->calls = 0;
    t->stuck = 0;
    sx_ret r = sx_ok();
    (void)sx_park(t, &r); /* on failure the library's teardown drops them */
    free(r.msg);
    atomic_store_explicit(&t->home, 0, memory_order_relaxed);
    atomic_store_explicit(&t->state, SX_IDLE, memory_order_release);
    sx_unref(t);
  }
}

static void sx_make_key(void) { (void)pthread_key_create(&sx_key, sx_thread_exit); }

static void sx_hook_thread(void) {
  if (sx_hooked) return;
  sx_hooked = 1;
  if (__cxa_thread_atexit_impl != NULL && &__dso_handle != NULL &&
      __cxa_thread_atexit_impl(sx_thread_exit, NULL, &__dso_handle) == 0) {
    return;
  }
  (void)pthread_once(&sx_key_once, sx_make_key);
  (void)pthread_setspecific(sx_key, (void *)1);
}

/* t (BUSY, or RESIDENT here) becomes resident on this thread. */
static void sx_reside(sx_task *t) {
  if (atomic_load_explicit(&t->state, memory_order_relaxed) != SX_RESIDENT) {
    sx_hook_thread();
    atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
    t->next = sx_residents;
    sx_residents = t;
    atomic_store_explicit(&t->home, sx_self(), memory_order_relaxed);
    atomic_store_explicit(&t->state, SX_RESIDENT, memory_order_release);
  }
}

/* Whether another task became resident on this thread after t and still
 * is: its entries are above t's, so t may neither push (its entries would
 * land above the other task's) nor park (it would take the other task's
 * entries with its own). */
static int sx_covered(const sx_task *t) { return sx_residents != t; }

static const char sx_covered_text[] =
    "another task was pinned (Pin, or Call) on this OS thread after this one and is still "
    "resident: its entries are above this task's; Unpin it (or let its Call return) first";

static void sx_unreside_to(sx_task *t, int32_t state);

/* A task left this thread: tasks under it that could not park because it
 * covered them (stuck, no pin or call left) park now, each giving back the
 * LockOSThread it kept (r->unlock). */
static void sx_park_uncovered(sx_ret *r) {
  sx_task *h;
  while ((h = sx_residents) != NULL && h->stuck && h->pins + h->calls == 0) {
    sx_ret q = sx_ok();
    int ok = sx_park(h, &q);
    free(q.msg);
    if (!ok) return;
    r->unlock += 1;
    sx_unreside_to(h, SX_IDLE);
  }
}

/* t, resident here, parked: it leaves this thread's list and becomes idle
 * (or closed). */
static void sx_unreside_to(sx_task *t, int32_t state) {
  for (sx_task **p = &sx_residents; *p != NULL; p = &(*p)->next) {
    if (*p == t) {
      *p = t->next;
      break;
    }
  }
  t->next = NULL;
  t->pins = 0;
  t->calls = 0;
  t->stuck = 0;
  atomic_store_explicit(&t->home, 0, memory_order_relaxed);
  atomic_store_explicit(&t->state, state, memory_order_release);
  sx_unref(t); /* the Go Task, in this call, still owns t */
}

/* ---- claiming the task and carrying its entries ------------------------- */

/* Testing: take the segment the spare gives back before the retry can
 * (another thread's allocation in between, on a truly full table). */
static _Atomic int sx_steal_next;
static storectx_suspended *_Atomic sx_stolen;

void sx_testing_steal_spare(int on) {
  atomic_store(&sx_steal_next, on);
  if (!on) storectx_suspended_free(atomic_exchange(&sx_stolen, NULL));
}

/* Keeps an empty segment in reserve for the closing suspend (best effort:
 * on an exhausted table the task goes without). */
static void sx_reserve(sx_task *t) {
  if (t->spare != NULL) return;
  storectx_suspended *s = NULL;
  if (storectx_suspend(storectx_depth(), &s) == STORECTX_OK) t->spare = s;
}

/* Claims t for one call on this thread and puts its entries here. Answers 0
 * (r says why) or 1; *carried says whether sx_leave must suspend them again
 * (1) or they stay because the task is resident on this thread (0). A call
 * that pushes entries on a task that has none, no spare segment and no free
 * segment is refused before it changes anything: its closing suspend would
 * have nowhere to put them. */
static int sx_enter(sx_task *t, sx_ret *r, int *carried, int pushes) {
  int32_t seen = SX_IDLE;
  if (t == NULL) {
    sx_refuse(r, STORECTX_ERR_NULL_ARGUMENT, "the Task was not made by NewTask");
    return 0;
  }
  if (atomic_compare_exchange_strong_explicit(&t->state, &seen, SX_BUSY, memory_order_acquire,
                                              memory_order_acquire)) {
    *carried = 1;
    sx_reserve(t);
    if (t->seg == NULL && t->spare == NULL && pushes) {
      storectx_suspended *probe = NULL;
      storectx_status s = storectx_suspend(storectx_depth(), &probe);
      if (s == STORECTX_OK) {
        t->spare = probe;
      } else {
        sx_fail(r, s);
        sx_append(r, "; the task could not keep what this call would push, so it changed nothing");
        atomic_store_explicit(&t->state, SX_IDLE, memory_order_release);
        return 0;
      }
    }
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
    if (pushes && sx_covered(t)) {
      sx_refuse(r, STORECTX_ERR_OUT_OF_ORDER, "the call would push above another task's entries: %s",
                sx_covered_text);
      r->unlock = 1;
      return 0;
    }
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

/* Suspends the task's entries (everything above t->base) into t->seg.
 * Answers 1 when the thread is as the task's call found it; 0 when no
 * segment could be had even after giving the spare back (r says why; the
 * entries are still on the thread). */
static int sx_park(sx_task *t, sx_ret *r) {
  size_t depth = storectx_depth();
  if (depth > t->base) {
    storectx_suspended *seg = NULL;
    storectx_status s = storectx_suspend(t->base, &seg);
    if (s == STORECTX_ERR_EXHAUSTED && t->spare != NULL) {
      storectx_suspended_free(t->spare);
      t->spare = NULL;
      if (atomic_exchange(&sx_steal_next, 0)) {
        storectx_suspended *x = NULL;
        if (storectx_suspend(storectx_depth(), &x) == STORECTX_OK) atomic_store(&sx_stolen, x);
      }
      s = storectx_suspend(t->base, &seg);
    }
    if (s != STORECTX_OK) {
      if (r->status != STORECTX_OK) {
        char was[160];
        snprintf(was, sizeof was, " (and the call itself failed: %s)", r->name ? r->name : "?");
        sx_fail(r, s);
        sx_append(r, was);
      } else {
        sx_fail(r, s);
      }
      return 0;
    }
    t->seg = seg;
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
  return 1;
}

static const char sx_stuck_text[] =
    "; the call itself took effect, and the task's entries stay on this OS thread, with the "
    "goroutine locked to it (as by Pin), until a later call of the task from this goroutine or "
    "its Close finds a free segment";

/* The last Pin or Call on the home thread ended, or a stuck task retries:
 * the entries go back into the task; when no segment can be had the task
 * stays resident, stuck, and the goroutine keeps one LockOSThread for it. */
static void sx_unreside(sx_task *t, sx_ret *r) {
  if (t->pins + t->calls > 0) return;
  if (sx_covered(t)) {
    /* Only a Call's end gets here covered (Unpin and Close refuse): the
     * entries wait on this thread, the goroutine locked to it, until the
     * covering task leaves (sx_park_uncovered) or the thread exits. */
    if (!t->stuck) {
      t->stuck = 1;
      r->unlock -= 1;
    }
    if (r->status == STORECTX_OK) {
      sx_refuse(r, STORECTX_ERR_OUT_OF_ORDER,
                "the Call ended (its own effect happened) but its task's entries stay on this OS "
                "thread, the goroutine locked to it, until the other task leaves: %s",
                sx_covered_text);
    }
    return;
  }
  if (sx_park(t, r)) {
    r->unlock += t->stuck;
    sx_unreside_to(t, SX_IDLE);
    sx_park_uncovered(r);
  } else {
    if (!t->stuck) {
      t->stuck = 1;
      r->unlock -= 1;
    }
    sx_append(r, sx_stuck_text);
  }
}

static void sx_leave(sx_task *t, sx_ret *r, int carried) {
  if (carried) {
    if (sx_park(t, r)) {
      atomic_store_explicit(&t->state, SX_IDLE, memory_order_release);
    } else {
      /* Nowhere to put the entries: they must not stay on a thread other
       * goroutines run on. The task becomes resident here, and the
       * goroutine keeps the call's LockOSThread. */
      t->pins = 0;
      t->calls = 0;
      t->stuck = 1;
      sx_reside(t);
      r->unlock -= 1;
      sx_append(r, sx_stuck_text);
    }
  } else if (t->stuck && t->pins + t->calls == 0 && !sx_covered(t)) {
    /* A quiet retry: the call's own answer stands either way. */
    sx_ret q = sx_ok();
    if (sx_park(t, &q)) {
      r->unlock += 1;
      sx_unreside_to(t, SX_IDLE);
      sx_park_uncovered(r);
    }
    free(q.msg);
  }
}

uintptr_t sx_task_new(void) {
  sx_task *t = calloc(1, sizeof(sx_task));
  if (t != NULL) atomic_store_explicit(&t->refs, 1, memory_order_relaxed);
  return (uintptr_t)t;
}

sx_ret sx_task_close(uintptr_t task) {
  sx_task *t = (sx_task *)task;
  sx_ret r = sx_ok();
  int32_t seen = SX_IDLE;
  if (t == NULL) return r; /* a zero Task holds nothing */
  if (atomic_compare_exchange_strong_explicit(&t->state, &seen, SX_BUSY, memory_order_acquire,
                                              memory_order_acquire)) {
    storectx_suspended_free(t->seg); /* drops the entries, releases their locks */
    storectx_suspended_free(t->spare);
    t->seg = NULL;
    t->spare = NULL;
    atomic_store_explicit(&t->state, SX_CLOSED, memory_order_release);
    return r;
  }
  if (seen == SX_CLOSED) return r;
  if (seen == SX_RESIDENT && atomic_load_explicit(&t->home, memory_order_relaxed) == sx_self()) {
    if (t->calls > 0) {
      sx_refuse(&r, STORECTX_ERR_BUSY, "Close inside the task's own Call: close it after Call returns");
      return r;
    }
    if (sx_covered(t)) {
      sx_refuse(&r, STORECTX_ERR_OUT_OF_ORDER, "Close changed nothing: %s", sx_covered_text);
      return r;
    }
    if (!sx_park(t, &r)) {
      sx_append(&r, "; Close changed nothing: the task stays pinned to this thread, close it again later");
      return r;
    }
    /* The Go side undoes the pins' and a stuck task's LockOSThread calls. */
    r.unlock += t->pins + t->stuck;
    storectx_suspended_free(t->seg);
    storectx_suspended_free(t->spare);
    t->seg = NULL;
    t->spare = NULL;
    sx_unreside_to(t, SX_CLOSED);
    sx_park_uncovered(&r);
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

/* The finalizer: nothing can call the task any more. A task still resident
 * keeps its entries on its home thread until that thread exits (then the
 * thread-exit hook frees them and the task). */
void sx_task_destroy(uintptr_t task) {
  sx_task *t = (sx_task *)task;
  if (t != NULL) sx_unref(t);
}

#define SX_BEGIN_(pushes)                              \
  sx_task *t = (sx_task *)task;                        \
  sx_ret r = sx_ok();                                  \
  int carried = 0;                                     \
  if (!sx_enter(t, &r, &carried, pushes)) return r;
#define SX_BEGIN SX_BEGIN_(0)
#define SX_BEGIN_PUSH SX_BEGIN_(1)
#define SX_END              \
  sx_leave(t, &r, carried); \
  return r;
/* Whether the entry on top of this thread is another task's: t's call must
 * not borrow, pause, release, clone or pop it (a borrow taken through t
 * could never be released through t once the other task leaves the thread,
 * and the other task's own counts would go wrong). The top is another
 * task's when t is resident here under a task pinned later, or when t has
 * no entry above its base and a task is resident on this thread. A C
 * caller's entries (a Go import called on a C thread, no task resident)
 * stay usable. Looking (GetCurrentTransient, IsActive, Describe) is
 * allowed. */
static int sx_top_foreign(const sx_task *t, int carried) {
  if (!carried && sx_covered(t)) return 1;
  if (storectx_depth() > t->base) return 0;
  for (const sx_task *u = sx_residents; u != NULL; u = u->next) {
    if (u != t) return 1;
  }
  return 0;
}

/* Refuses an operation on the top entry when it is another task's. */
#define SX_OWN_TOP(status, what)                                                              \
  if (sx_top_foreign(t, carried)) {                                                           \
    sx_refuse(&r, status,                                                                     \
              "%s: the top entry of this thread is another task's (pinned, or inside Call, on " \
              "this thread): a task borrows, pauses, releases and removes only its own "      \
              "entries (GetCurrentTransient may look)",                                       \
              what);                                                                          \
    SX_END                                                                                    \
  }

#define SX_CHECK(call)                        \
  do {                                        \
    storectx_status s_ = (call);              \
    if (s_ != STORECTX_OK) sx_fail(&r, s_);   \
  } while (0)

sx_ret sx_install(uintptr_t task, uint64_t id, uintptr_t store) {
  SX_BEGIN_PUSH
  storectx_install_guard g = {0};
  SX_CHECK(storectx_install(id, (void *)store, &g));
  r.u = g.raw;
  SX_END
}

sx_ret sx_uninstall(uintptr_t task, uint64_t raw) {
  SX_BEGIN
  SX_OWN_TOP(STORECTX_ERR_STALE_HANDLE, "uninstall")
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
  SX_BEGIN_PUSH
  storectx_install_guard g = {0};
  SX_CHECK(storectx_install_async(wg, &g));
  r.u = g.raw;
  SX_END
}

sx_ret sx_get_current(uintptr_t task, uint64_t id) {
  SX_BEGIN
  SX_OWN_TOP(STORECTX_ERR_NOT_INSTALLED, "get_current")
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
  SX_OWN_TOP(STORECTX_ERR_NO_CONTEXT, "get_current_unborrowed")
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
  SX_OWN_TOP(STORECTX_ERR_NOT_INSTALLED, "get_current_async")
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
  SX_OWN_TOP(STORECTX_ERR_STALE_HANDLE, "borrow_clone")
  storectx_borrow b = {raw}, out = {0};
  SX_CHECK(storectx_borrow_clone(b, &out));
  r.u = out.raw;
  SX_END
}

sx_ret sx_borrow_release(uintptr_t task, uint64_t raw) {
  SX_BEGIN
  SX_OWN_TOP(STORECTX_ERR_STALE_HANDLE, "borrow_release")
  storectx_borrow b = {raw};
  SX_CHECK(storectx_borrow_release(b));
  SX_END
}

sx_ret sx_pause(uintptr_t task, uint64_t id) {
  SX_BEGIN
  SX_OWN_TOP(STORECTX_ERR_NOT_INSTALLED, "pause")
  storectx_pause_guard p = {0};
  SX_CHECK(storectx_pause(id, &p));
  r.u = p.raw;
  SX_END
}

sx_ret sx_unpause(uintptr_t task, uint64_t raw) {
  SX_BEGIN
  SX_OWN_TOP(STORECTX_ERR_STALE_HANDLE, "unpause")
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

/* Whether this is the process's main thread: Go never ends it (a goroutine
 * that exits locked to it wedges it instead), so the thread-exit hook would
 * never give back a task left pinned there. */
static int sx_on_main_thread(void) {
#ifdef __linux__
  return (pid_t)syscall(SYS_gettid) == getpid();
#else
  return 0;
#endif
}

sx_ret sx_pin(uintptr_t task, int anywhere) {
  sx_task *t0 = (sx_task *)task;
  if (!anywhere && t0 != NULL && sx_on_main_thread() &&
      !(atomic_load_explicit(&t0->state, memory_order_acquire) == SX_RESIDENT &&
        atomic_load_explicit(&t0->home, memory_order_relaxed) == sx_self())) {
    sx_ret moved = sx_ok();
    moved.n = 1; /* the Go side moves the goroutine to another thread and retries */
    return moved;
  }
  SX_BEGIN
  if (carried) {
    t->pins = 1;
    t->calls = 0;
    t->stuck = 0;
    sx_reside(t);
  } else {
    t->pins++;
  }
  r.unlock = 0; /* the call's LockOSThread becomes the pin's */
  return r;
}

sx_ret sx_unpin(uintptr_t task) {
  SX_BEGIN
  if (carried || t->pins == 0) {
    sx_refuse(&r, STORECTX_ERR_INVALID_ARGUMENT, "Unpin: the task is not pinned");
    SX_END
  }
  if (t->pins == 1 && t->calls == 0 && sx_covered(t)) {
    sx_refuse(&r, STORECTX_ERR_OUT_OF_ORDER, "Unpin changed nothing: %s", sx_covered_text);
    return r;
  }
  t->pins--;
  r.unlock = 2; /* the call's LockOSThread and the pin's */
  sx_unreside(t, &r);
  return r;
}

sx_ret sx_call(uintptr_t task, sx_guest_fn fn, uintptr_t arg) {
  if (fn == NULL) {
    sx_ret r = sx_ok();
    sx_refuse(&r, STORECTX_ERR_NULL_ARGUMENT, "Call: the guest function is NULL");
    return r;
  }
  SX_BEGIN_PUSH
  if (carried) {
    t->pins = 0;
    t->calls = 1;
    t->stuck = 0;
    sx_reside(t);
  } else {
    t->calls++;
  }
  r.u = (uint64_t)fn(arg);
  t->calls--;
  sx_unreside(t, &r);
  return r;
}

/* The Go side of Call calls this instead of seeing sx_call return when a Go
 * callback of the guest panicked or called runtime.Goexit: Go unwound the
 * guest's C frames and sx_call's without running them. On the same thread
 * (the Go side holds LockOSThread across Call), it ends that Call frame as
 * sx_call would have: the entries above the task's base are the task's. */
sx_ret sx_call_unwound(uintptr_t task) {
  sx_task *t = (sx_task *)task;
  sx_ret r = sx_ok();
  if (t == NULL || atomic_load_explicit(&t->state, memory_order_acquire) != SX_RESIDENT ||
      atomic_load_explicit(&t->home, memory_order_relaxed) != sx_self() || t->calls == 0) {
    sx_refuse(&r, STORECTX_ERR_INVALID_ARGUMENT,
              "Call unwound by a panic: the task has no Call frame on this thread");
    return r;
  }
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
