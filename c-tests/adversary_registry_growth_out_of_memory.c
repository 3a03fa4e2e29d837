/* Behaviour: a handle table (write guards, segments) that must grow by a
 * chunk (1,024 slots, one allocation) when the process has no memory left
 * refuses the call with STORECTX_ERR_EXHAUSTED and nothing changed, instead
 * of aborting the process; once memory is back the table grows and no
 * index was lost. The exports that can make a table grow are covered:
 * storectx_async_store_try_write and storectx_async_store_write (write
 * guards) and storectx_suspend (segments).
 *
 * Main holds 1,024 write guards and 1,024 segments (every slot of each
 * table's first chunk), so the next handle of either needs a second chunk.
 * Under an address-space limit (RLIMIT_AS at what the process maps now,
 * address_limit.h) with every block of the heap taken (heap_exhaust.h),
 * main and 8 other threads (made before the limit, idle until then, none
 * with libstorectx state yet) each take a write guard of their own store
 * at once: all refused EXHAUSTED, the store left unlocked (a second try is
 * EXHAUSTED again, not BUSY), no out-parameter written. Main's refusals
 * name the memory, not a full table; its suspend of an installed entry is
 * refused the same way with the stack as it was. Once memory is back all
 * nine take their guard at once, main suspends and resumes, and (with the
 * testing hook storectx_testing_set_table_limit, a `testing` build) the
 * table then hands out every index up to its limit: the refusals lost none.
 * Before the fix the first refusal aborted the process in Rust's
 * allocation-failure handler ("memory allocation of 65536 bytes failed",
 * SIGABRT). Skipped under AddressSanitizer and valgrind, which need address
 * space of their own. */
/* cprog: skip on=windows,darwin,freebsd,qemu RLIMIT_AS bounds every allocation only on Linux (macOS ignores it; Windows has none), and under qemu-user it would bound the emulator's own reservations too */
/* cprog: timeout 120 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>

#include "check.h"
#include "address_limit.h"
#include "heap_exhaust.h"

#define CHUNK 1024
#define THREADS 8
#define LIMIT (2 * CHUNK)

struct store {
  int value;
};

static struct store st[LIMIT + THREADS + 1];
static storectx_async_store *s[LIMIT + THREADS + 1];
static storectx_write_guard *held[LIMIT + 1];
static storectx_suspended *segs[CHUNK];
static pthread_barrier_t phase;
static rlim_t hard;

/* Takes a guard of store `k` out of memory: EXHAUSTED twice (so the lock
 * was not kept), nothing written. */
static void refused_without_memory(size_t k) {
  storectx_write_guard *g = (storectx_write_guard *)0x1234;
  CHECK_STATUS(storectx_async_store_try_write(s[k], &g), STORECTX_ERR_EXHAUSTED);
  CHECK_STATUS(storectx_async_store_try_write(s[k], &g), STORECTX_ERR_EXHAUSTED);
  CHECK_STATUS(storectx_async_store_write(s[k], 1000, &g), STORECTX_ERR_EXHAUSTED);
  CHECK(g == (storectx_write_guard *)0x1234);
}

static void *worker(void *arg) {
  size_t k = (size_t)(uintptr_t)arg;
  pthread_barrier_wait(&phase); /* the limit is set */
  struct heap_block *kept = heap_take_all();
  pthread_barrier_wait(&phase); /* every thread's heap is taken */
  refused_without_memory(k);
  CHECK(storectx_is_empty());
  pthread_barrier_wait(&phase); /* all refused */
  heap_give_back(kept);
  pthread_barrier_wait(&phase); /* the limit is lifted */
  storectx_write_guard *g = NULL;
  CHECK_OK(storectx_async_store_try_write(s[k], &g));
  CHECK(storectx_write_guard_store(g) == &st[k]);
  storectx_write_guard_release(g);
  return NULL;
}

typedef void (*set_table_limit_fn)(size_t);
extern void storectx_growth_limit_weak(size_t) __asm__("storectx_testing_set_table_limit")
    __attribute__((weak));

int main(void) {
  if (address_limit_unusable("adversary_registry_growth_out_of_memory")) {
    return 0;
  }
  for (size_t k = 0; k < LIMIT + THREADS + 1; k++)
    CHECK_OK(storectx_async_store_new(storectx_store_id_new(), &st[k], &s[k]));
  /* Every slot of the first chunk of both tables live. */
  for (size_t k = 0; k < CHUNK; k++) CHECK_OK(storectx_async_store_try_write(s[k], &held[k]));
  for (size_t k = 0; k < CHUNK; k++) CHECK_OK(storectx_suspend(0, &segs[k]));
  static int mem;
  storectx_store_id id = storectx_store_id_new();
  storectx_install_guard ig;
  CHECK_OK(storectx_install(id, &mem, &ig));

  CHECK(pthread_barrier_init(&phase, NULL, THREADS + 1) == 0);
  pthread_t th[THREADS];
  for (size_t i = 0; i < THREADS; i++)
    CHECK(pthread_create(&th[i], NULL, worker, (void *)(uintptr_t)(LIMIT + 1 + i)) == 0);
  hard = address_limit_set(0);
  pthread_barrier_wait(&phase);
  struct heap_block *kept = heap_take_all();
  pthread_barrier_wait(&phase);

  /* Main (a thread with state: the message is kept) races the others. */
  refused_without_memory(LIMIT);
  if (!strstr(storectx_last_error(), "no memory for 1024 more write guards")) {
    fprintf(stderr, "the refusal does not name the memory: %s\n", storectx_last_error());
    return 1;
  }
  storectx_suspended *seg = (storectx_suspended *)0x1234;
  CHECK_STATUS(storectx_suspend(0, &seg), STORECTX_ERR_EXHAUSTED);
  if (!strstr(storectx_last_error(), "no memory for 1024 more suspended segments")) {
    fprintf(stderr, "the refusal does not name the memory: %s\n", storectx_last_error());
    return 1;
  }
  CHECK(seg == (storectx_suspended *)0x1234);
  CHECK(storectx_depth() == 1 && storectx_active_store() == id);
  pthread_barrier_wait(&phase);
  heap_give_back(kept);
  address_limit_lift(hard);
  pthread_barrier_wait(&phase);

  /* Memory is back: both tables grow. */
  storectx_write_guard *g = NULL;
  CHECK_OK(storectx_async_store_try_write(s[LIMIT], &g));
  storectx_write_guard_release(g);
  for (size_t i = 0; i < THREADS; i++) CHECK(pthread_join(th[i], NULL) == 0);
  CHECK_OK(storectx_suspend(0, &seg));
  CHECK(storectx_is_empty());
  size_t base = 7;
  CHECK_OK(storectx_resume(seg, &base));
  CHECK(base == 0 && storectx_depth() == 1 && storectx_active_store() == id);
  CHECK_OK(storectx_uninstall(ig));

  /* No index was lost: the table holds exactly LIMIT guards. */
  set_table_limit_fn set_limit = storectx_growth_limit_weak
      ? storectx_growth_limit_weak
      : (set_table_limit_fn)(uintptr_t)dlsym(RTLD_DEFAULT, "storectx_testing_set_table_limit");
  if (set_limit) {
    set_limit(LIMIT);
    size_t n = CHUNK;
    storectx_status got;
    while ((got = storectx_async_store_try_write(s[n], &held[n])) == STORECTX_OK) n++;
    CHECK_STATUS(got, STORECTX_ERR_EXHAUSTED);
    if (n != LIMIT) {
      fprintf(stderr, "%zu write guards live at the limit, not %d\n", n, LIMIT);
      return 1;
    }
    while (n > CHUNK) storectx_write_guard_release(held[--n]);
    set_limit(SIZE_MAX);
  } else {
    puts("no testing hook: the count of indices is not checked");
  }
  for (size_t k = 0; k < CHUNK; k++) storectx_write_guard_release(held[k]);
  for (size_t k = 0; k < CHUNK; k++) storectx_suspended_free(segs[k]);
  for (size_t k = 0; k < LIMIT + THREADS + 1; k++) storectx_async_store_release(s[k]);
  puts("table growth out of memory: refused, nothing changed, then grown");
  return 0;
}
