/* The C half of the Go binding: every Task method is one call to one of
 * these functions. Each call resumes the task's entries on the OS thread
 * that runs it, does the operation, reads the status name and this thread's
 * storectx_last_error() text on failure, and suspends the task's entries
 * again before returning: between two calls the thread's stack is as the
 * call found it, so the goroutine may move to any thread. */
#ifndef STORECTX_GO_SHIM_H
#define STORECTX_GO_SHIM_H

#include <stddef.h>
#include <stdint.h>

#include "storectx.h"

/* A task's state: its carried segment, its busy flag, and where its entries
 * are while it is pinned. Go holds it as a uintptr_t (C memory, so cgo has
 * no Go pointer to check on every call). */
typedef struct sx_task sx_task;

/* What one call answers. On failure, name and msg were read in this call,
 * on this thread, right after the failing library call. Kept small: it is
 * copied twice per call (C to the cgo frame, frame to Go). */
typedef struct sx_ret {
  int32_t status;
  uint32_t n;       /* a count or flags, per function */
  uint32_t unlock;  /* UnlockOSThread calls the Go side makes after the call:
                       1 for its own LockOSThread around every Task call,
                       0 when the task keeps the thread (Pin, stuck), more
                       when the call ended pins (Unpin, Close) */
  uint64_t u;       /* a handle's raw value, a store id or a depth */
  uintptr_t store;  /* a store address */
  uint64_t id;      /* a store id */
  void *ptr;        /* a heap object: write guard, async store, text */
  const char *name; /* storectx_status_str(status), static; NULL when OK */
  char *msg;        /* on failure: the message, malloc'd, the caller frees;
                       NULL if there was no memory for it */
} sx_ret;

/* A guest function run by sx_call with the task's entries installed. */
typedef int64_t (*sx_guest_fn)(uintptr_t arg);

uintptr_t sx_task_new(void);
sx_ret sx_task_close(uintptr_t task);
void sx_task_destroy(uintptr_t task);

sx_ret sx_install(uintptr_t task, uint64_t id, uintptr_t store);
sx_ret sx_uninstall(uintptr_t task, uint64_t guard);
sx_ret sx_installed(uintptr_t task, uint64_t guard);
sx_ret sx_install_async(uintptr_t task, storectx_write_guard *g);
sx_ret sx_get_current(uintptr_t task, uint64_t id);
sx_ret sx_get_current_transient(uintptr_t task, uint64_t id);
sx_ret sx_get_current_unborrowed(uintptr_t task);
sx_ret sx_get_current_async(uintptr_t task, uint64_t id);
sx_ret sx_borrow_clone(uintptr_t task, uint64_t borrow);
sx_ret sx_borrow_release(uintptr_t task, uint64_t borrow);
sx_ret sx_pause(uintptr_t task, uint64_t id);
sx_ret sx_unpause(uintptr_t task, uint64_t pause);
sx_ret sx_write(uintptr_t task, storectx_async_store *s, uint64_t timeout_ns);
sx_ret sx_inspect(uintptr_t task, uint64_t id);
sx_ret sx_describe(uintptr_t task);
/* anywhere 0: answers n = 1, changing nothing, when the task would become
 * resident on the process's main thread (the Go side moves and retries). */
sx_ret sx_pin(uintptr_t task, int anywhere);
sx_ret sx_unpin(uintptr_t task);
sx_ret sx_call(uintptr_t task, sx_guest_fn fn, uintptr_t arg);
sx_ret sx_call_unwound(uintptr_t task);

/* Testing: the next spare segment given back is taken before the retry. */
void sx_testing_steal_spare(int on);

/* No task involved. */
sx_ret sx_async_store_new(uint64_t id, uintptr_t store);
sx_ret sx_try_write(storectx_async_store *s);

#endif /* STORECTX_GO_SHIM_H */
