/* Behaviour: storectx_async_store_new, when the process has no memory for
 * the new store, answers STORECTX_ERR_EXHAUSTED with nothing made and
 * `*out` untouched, instead of aborting the process; once memory is back
 * it makes stores again. On a thread with libstorectx state the message
 * names the missing memory; on a thread without (its first call) the
 * message says the thread's state could not be created either. The
 * address space is capped at what the process maps now (RLIMIT_AS,
 * address_limit.h) and every block of the calling thread's heap is taken
 * (heap_exhaust.h). Before the fix the call aborted the process in Rust's
 * allocation-failure handler ("memory allocation of 32 bytes failed",
 * SIGABRT). Skipped under AddressSanitizer and valgrind, which need address
 * space of their own. */
/* cprog: skip on=windows,darwin,freebsd,qemu RLIMIT_AS bounds every allocation only on Linux (macOS ignores it; Windows has none), and under qemu-user it would bound the emulator's own reservations too */
/* cprog: timeout 120 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>

#include "check.h"
#include "address_limit.h"
#include "heap_exhaust.h"

static int mem;
static pthread_barrier_t phase;

/* Refused twice, nothing written; the message contains `says`. */
static void refused(const char *says) {
  storectx_async_store *out = (storectx_async_store *)0x1234;
  for (int i = 0; i < 2; i++) {
    CHECK_STATUS(storectx_async_store_new(storectx_store_id_new(), &mem, &out),
                 STORECTX_ERR_EXHAUSTED);
    if (!strstr(storectx_last_error(), says)) {
      fprintf(stderr, "the message does not say \"%s\": %s\n", says, storectx_last_error());
      exit(1);
    }
  }
  CHECK(out == (storectx_async_store *)0x1234);
}

/* Makes a store and takes its lock: it works. */
static void made(void) {
  storectx_async_store *s = NULL;
  storectx_write_guard *g = NULL;
  CHECK_OK(storectx_async_store_new(storectx_store_id_new(), &mem, &s));
  CHECK_OK(storectx_async_store_try_write(s, &g));
  CHECK(storectx_write_guard_store(g) == &mem);
  storectx_write_guard_release(g);
  storectx_async_store_release(s);
}

/* A thread without state: its first call. */
static void *first_call(void *arg) {
  (void)arg;
  pthread_barrier_wait(&phase); /* the limit is set */
  struct heap_block *kept = heap_take_all();
  refused("could not be created");
  CHECK(storectx_is_empty());
  heap_give_back(kept);
  pthread_barrier_wait(&phase); /* main took the heap back */
  pthread_barrier_wait(&phase); /* the limit is lifted */
  made();
  return NULL;
}

int main(void) {
  if (address_limit_unusable("adversary_async_store_new_out_of_memory")) {
    return 0;
  }
  /* Warm up: this thread's state, the write guard table. */
  made();
  storectx_install_guard ig;
  CHECK_OK(storectx_install(storectx_store_id_new(), &mem, &ig));
  CHECK_OK(storectx_uninstall(ig));
  CHECK(pthread_barrier_init(&phase, NULL, 2) == 0);
  pthread_t th;
  CHECK(pthread_create(&th, NULL, first_call, NULL) == 0);

  rlim_t hard = address_limit_set(0);
  pthread_barrier_wait(&phase);
  pthread_barrier_wait(&phase);
  struct heap_block *kept = heap_take_all();
  refused("no memory for a new async store");
  heap_give_back(kept);
  address_limit_lift(hard);
  pthread_barrier_wait(&phase);
  made();
  CHECK(pthread_join(th, NULL) == 0);
  puts("async_store_new out of memory: refused, nothing made, then made");
  return 0;
}
