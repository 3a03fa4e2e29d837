/* Behaviour: the borrow limit (SPEC "No counter wraps") holds across
 * suspend/resume on another thread, with nested one-word pause records and
 * on an async entry: an entry at the limit with two pauses outstanding is
 * suspended, resumed on a second thread, and there every way up is refused
 * with nothing changed (get_current, borrow_clone, the innermost unpause,
 * get_current_async), the outer unpause is OUT_OF_ORDER, and releasing
 * borrows lets each unpause through exactly once. The limit is lowered to 3
 * with the testing hook storectx_testing_set_borrow_limit (a build without
 * the `testing` feature skips). */
/* cprog: skip on=windows finds its test-only limit hook with dlsym(RTLD_DEFAULT), and Windows has no dlfcn.h; the limits are the same Rust code on every platform, checked on Linux x86-64, aarch64 and musl */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>

#include "check.h"

typedef void (*set_limit_fn)(uint32_t);
extern void storectx_hook_weak(uint32_t) __asm__("storectx_testing_set_borrow_limit")
    __attribute__((weak));

#define LIMIT 3

static int mem;
static storectx_store_id sync_id, async_id;
static storectx_async_store *as;
static storectx_suspended *seg;
static storectx_pause_guard ps1, ps2, pa1, pa2;
static storectx_borrow bs, ba;
static storectx_install_guard gs, ga;

static unsigned top_borrows(void) {
  char text[256];
  storectx_describe(text, sizeof text);
  char *b = strstr(text, "borrows ");
  CHECK(b && b < strchr(text, '\n'));
  return (unsigned)strtoul(b + 8, NULL, 10);
}

/* The entry on top is at the limit with pauses p1 (took a borrow) and p2
 * (took one too) outstanding: every way up is refused, nothing changes. */
static void at_the_limit(storectx_store_id id, storectx_borrow b, storectx_pause_guard p1,
                         storectx_pause_guard p2, int is_async) {
  void *p = (void *)0x1;
  storectx_borrow out = {0x5e};
  storectx_async_store *a = (storectx_async_store *)0x1;
  CHECK(top_borrows() == LIMIT);
  CHECK_STATUS(storectx_get_current(id, &p, &out), STORECTX_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(storectx_get_current_async(id, &a, &p, &out), STORECTX_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(storectx_borrow_clone(b, &out),
               is_async ? STORECTX_ERR_NOT_SYNC : STORECTX_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(storectx_unpause(p2), STORECTX_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(storectx_unpause(p1), STORECTX_ERR_OUT_OF_ORDER);
  CHECK(p == (void *)0x1 && out.raw == 0x5e && a == (storectx_async_store *)0x1);
  CHECK(top_borrows() == LIMIT);
  /* One borrow back: the inner pause goes through, once. */
  CHECK_OK(storectx_borrow_release(b));
  CHECK_OK(storectx_unpause(p2));
  CHECK_STATUS(storectx_unpause(p2), STORECTX_ERR_STALE_HANDLE);
  CHECK(top_borrows() == LIMIT);
  CHECK_STATUS(storectx_unpause(p1), STORECTX_ERR_INVALID_ARGUMENT);
  CHECK_OK(storectx_borrow_release(b));
  CHECK_OK(storectx_unpause(p1));
  CHECK(top_borrows() == LIMIT);
  for (int k = 0; k < LIMIT; k++) CHECK_OK(storectx_borrow_release(b));
  CHECK_STATUS(storectx_borrow_release(b), STORECTX_ERR_NOT_BORROWED);
}

/* Borrows `id` on top up to the limit with two pauses in between. */
static void fill(storectx_store_id id, storectx_borrow *b, storectx_pause_guard *p1,
                 storectx_pause_guard *p2) {
  void *p;
  for (int k = 0; k < LIMIT; k++) CHECK_OK(storectx_get_current(id, &p, b));
  CHECK_STATUS(storectx_get_current(id, &p, b), STORECTX_ERR_INVALID_ARGUMENT);
  CHECK_OK(storectx_pause(id, p1)); /* LIMIT - 1 */
  CHECK_OK(storectx_pause(id, p2)); /* LIMIT - 2 */
  CHECK_OK(storectx_get_current(id, &p, b));
  CHECK_OK(storectx_get_current(id, &p, b)); /* LIMIT again */
}

static void *resumer(void *arg) {
  (void)arg;
  size_t base;
  CHECK_OK(storectx_resume(seg, &base));
  CHECK(base == 0 && storectx_depth() == 2);
  at_the_limit(async_id, ba, pa1, pa2, 1);
  CHECK_OK(storectx_uninstall(ga)); /* releases the lock */
  at_the_limit(sync_id, bs, ps1, ps2, 0);
  CHECK_OK(storectx_uninstall(gs));
  CHECK(storectx_is_empty());
  return NULL;
}

int main(void) {
  set_limit_fn set = storectx_hook_weak ? storectx_hook_weak
                     : (set_limit_fn)(uintptr_t)dlsym(RTLD_DEFAULT,
                                                      "storectx_testing_set_borrow_limit");
  if (!set) {
    puts("adversary_borrow_limit_across_resume: SKIPPED (no testing hook)");
    return 0;
  }
  set(LIMIT);
  sync_id = storectx_store_id_new();
  async_id = storectx_store_id_new();
  CHECK_OK(storectx_async_store_new(async_id, &mem, &as));
  CHECK_OK(storectx_install(sync_id, &mem, &gs));
  fill(sync_id, &bs, &ps1, &ps2);
  storectx_write_guard *w;
  CHECK_OK(storectx_async_store_try_write(as, &w));
  CHECK_OK(storectx_install_async(w, &ga));
  fill(async_id, &ba, &pa1, &pa2);
  CHECK_OK(storectx_suspend(0, &seg));
  pthread_t t;
  CHECK(pthread_create(&t, NULL, resumer, NULL) == 0);
  CHECK(pthread_join(t, NULL) == 0);
  CHECK_OK(storectx_async_store_try_write(as, &w));
  storectx_write_guard_release(w);
  storectx_async_store_release(as);
  set(UINT32_MAX);
  puts("the borrow limit holds across resume, with nested pauses, sync and async");
  return 0;
}
