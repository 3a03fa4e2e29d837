/* Behaviour: a thread's first call that needs state, made when the process
 * has no memory left, is refused with nothing changed instead of aborting
 * the process, and the thread makes its state on its first call once
 * memory is back. Every export that can reach the allocation of a thread's
 * state is called on such a thread:
 * - the calls that need state for their job (install, install_async,
 *   uninstall, pause, unpause, the four get_current calls, borrow_clone,
 *   borrow_release, suspend, resume) answer STORECTX_ERR_EXHAUSTED, write
 *   no out-parameter, and install_async leaves the write guard it was given
 *   holding its lock;
 * - the calls that only keep their refusal's message in the thread's state
 *   (async_store_new with a reserved id, async_store_try_write and
 *   async_store_write on a locked store, write_guard_release and
 *   suspended_free of a forged handle) answer their own refusal;
 * every last_error then says the thread's state could not be created, the
 * read-only calls see an empty stack. A worker thread, made before the
 * limit and idle until then, takes every block the heap can still give it
 * under an address-space limit (RLIMIT_AS at what the process maps now:
 * address_limit.h, heap_exhaust.h) and makes these calls. Before the fix
 * the first one aborted the process in Rust's allocation-failure handler
 * ("memory allocation of 760 bytes failed", SIGABRT, in a debug build).
 * Skipped under AddressSanitizer and valgrind, which need address space of
 * their own. */
/* cprog: skip on=windows,darwin,freebsd,qemu RLIMIT_AS bounds every allocation only on Linux (macOS ignores it; Windows has none), and under qemu-user it would bound the emulator's own reservations too */
/* cprog: timeout 120 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>

#include "check.h"
#include "address_limit.h"
#include "heap_exhaust.h"

struct store {
  int value;
};

static struct store st = {1}, sy = {2};
static storectx_async_store *s;
static storectx_write_guard *w; /* holds s's lock, made by main */
static pthread_barrier_t limited;
static rlim_t hard;

/* Every last_error on the worker while its state cannot be made. */
static void check_no_state_message(const char *call) {
  const char *m = storectx_last_error();
  if (!strstr(m, "could not be created")) {
    fprintf(stderr, "%s: last_error does not say the state is missing: %s\n", call, m);
    exit(1);
  }
}

#define REFUSED(call, status)                 \
  do {                                        \
    CHECK_STATUS(call, status);               \
    check_no_state_message(#call);            \
    CHECK(storectx_depth() == 0);             \
  } while (0)

static void *worker(void *arg) {
  (void)arg;
  pthread_barrier_wait(&limited);
  struct heap_block *kept = heap_take_all();

  storectx_store_id id = storectx_store_id_new();
  void *p = (void *)0x1111;
  storectx_install_guard g = {0x1234};
  storectx_pause_guard pg = {0x1234};
  storectx_borrow b = {0x1234};
  storectx_store_id got_id = 0x1234;
  storectx_async_store *as = (storectx_async_store *)0x1234;
  storectx_suspended *seg = (storectx_suspended *)0x1234;
  storectx_write_guard *w2 = (storectx_write_guard *)0x1234;
  size_t base = 0x1234;
  storectx_install_guard forged = {0x5678};

  /* The calls that need state. */
  REFUSED(storectx_install(id, &sy, &g), STORECTX_ERR_EXHAUSTED);
  REFUSED(storectx_install_async(w, &g), STORECTX_ERR_EXHAUSTED);
  CHECK(storectx_write_guard_store(w) == &st); /* still the caller's */
  REFUSED(storectx_uninstall(forged), STORECTX_ERR_EXHAUSTED);
  REFUSED(storectx_pause(id, &pg), STORECTX_ERR_EXHAUSTED);
  REFUSED(storectx_unpause((storectx_pause_guard){0x5678}), STORECTX_ERR_EXHAUSTED);
  REFUSED(storectx_get_current(id, &p, &b), STORECTX_ERR_EXHAUSTED);
  REFUSED(storectx_get_current_transient(id, &p), STORECTX_ERR_EXHAUSTED);
  REFUSED(storectx_get_current_unborrowed(&got_id, &p, &b), STORECTX_ERR_EXHAUSTED);
  REFUSED(storectx_get_current_async(id, &as, &p, &b), STORECTX_ERR_EXHAUSTED);
  REFUSED(storectx_borrow_clone((storectx_borrow){0x5678}, &b), STORECTX_ERR_EXHAUSTED);
  REFUSED(storectx_borrow_release((storectx_borrow){0x5678}), STORECTX_ERR_EXHAUSTED);
  REFUSED(storectx_suspend(0, &seg), STORECTX_ERR_EXHAUSTED);
  REFUSED(storectx_resume((storectx_suspended *)0x5678, &base), STORECTX_ERR_EXHAUSTED);
  /* The calls that only keep their message in the state. */
  REFUSED(storectx_async_store_new(0, &st, &as), STORECTX_ERR_INVALID_ARGUMENT);
  REFUSED(storectx_async_store_try_write(s, &w2), STORECTX_ERR_BUSY);
  REFUSED(storectx_async_store_write(s, 0, &w2), STORECTX_ERR_TIMED_OUT);
  storectx_write_guard_release((storectx_write_guard *)0x5678);
  check_no_state_message("storectx_write_guard_release");
  storectx_suspended_free((storectx_suspended *)0x5678);
  check_no_state_message("storectx_suspended_free");
  /* Nothing was written, nothing is on the stack. */
  CHECK(g.raw == 0x1234 && pg.raw == 0x1234 && b.raw == 0x1234 && got_id == 0x1234);
  CHECK(p == (void *)0x1111 && as == (storectx_async_store *)0x1234);
  CHECK(seg == (storectx_suspended *)0x1234 && w2 == (storectx_write_guard *)0x1234);
  CHECK(base == 0x1234);
  CHECK(storectx_is_empty() && storectx_active_store() == 0 && !storectx_is_active(id));

  heap_give_back(kept);
  address_limit_lift(hard);

  /* Memory is back: the same thread makes its state and works. */
  CHECK_OK(storectx_install(id, &sy, &g));
  CHECK(storectx_depth() == 1 && storectx_active_store() == id);
  CHECK_OK(storectx_get_current(id, &p, &b));
  CHECK(p == &sy);
  CHECK_OK(storectx_borrow_release(b));
  CHECK_OK(storectx_uninstall(g));
  CHECK_OK(storectx_install_async(w, &g)); /* takes the guard over */
  CHECK(storectx_active_store() == storectx_async_store_id(s));
  CHECK_OK(storectx_uninstall(g)); /* releases the lock */
  CHECK_OK(storectx_async_store_try_write(s, &w2));
  storectx_write_guard_release(w2);
  CHECK(storectx_is_empty());
  return NULL;
}

int main(void) {
  if (address_limit_unusable("adversary_first_context_out_of_memory")) {
    return 0;
  }
  CHECK_OK(storectx_async_store_new(storectx_store_id_new(), &st, &s));
  CHECK_OK(storectx_async_store_try_write(s, &w));
  CHECK(pthread_barrier_init(&limited, NULL, 2) == 0);
  pthread_t th;
  CHECK(pthread_create(&th, NULL, worker, NULL) == 0);
  hard = address_limit_set(0);
  pthread_barrier_wait(&limited);
  CHECK(pthread_join(th, NULL) == 0);
  storectx_async_store_release(s);
  puts("first context out of memory: refused, nothing changed, then made");
  return 0;
}
