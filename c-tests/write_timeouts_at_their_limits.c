/* write_timeouts_at_their_limits: storectx_async_store_write with timeouts
 * at the edges of every platform's wait conversion (futex / _umtx_op
 * timespec, __ulock_wait microseconds in a u32, WaitOnAddress milliseconds
 * in a u32 where 0xFFFFFFFF means INFINITE): 0 (try once), 1 ns, 999 ns,
 * 999,999 ns (under a millisecond: rounded up, never 0 = "do not wait" nor
 * a busy loop), 1 ms + 1 ns, 30 ms, then timeouts that overflow a u32 of
 * microseconds (2^32 us) and of milliseconds (2^32 ms, 2^32 - 1 ms =
 * INFINITE), UINT64_MAX - 1 ns and UINT64_MAX (forever). The short ones
 * must answer TIMED_OUT, having waited at least their timeout and well
 * under a second; the long ones must wait until another thread frees the
 * lock 100 ms later and then succeed (not TIMED_OUT at once from an
 * overflowed conversion, not a busy loop, not a hang). A thread that holds
 * the lock itself is told WOULD_DEADLOCK at once for every timeout. A
 * TIMED_OUT's storectx_last_error() names the timeout in nanoseconds. */
/* cprog: timeout 60 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "check.h"

struct store { int value; };

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static storectx_async_store *shared;
static storectx_write_guard *held;
static atomic_int release_now;

/* Releases the lock `held` 100 ms after it is told to. */
static void *releaser(void *arg) {
  (void)arg;
  while (!atomic_load(&release_now)) sleep_ms(1);
  sleep_ms(100);
  storectx_write_guard_release(held);
  return NULL;
}

int main(void) {
  struct store st = {1};
  CHECK_OK(storectx_async_store_new(storectx_store_id_new(), &st, &shared));

  /* Short timeouts: TIMED_OUT after at least the timeout, well under 1 s. */
  CHECK_OK(storectx_async_store_try_write(shared, &held));
  const uint64_t shorts[] = {0, 1, 999, 999999, 1000001, 30000000};
  for (size_t k = 0; k < sizeof shorts / sizeof shorts[0]; k++) {
    storectx_write_guard *w = (storectx_write_guard *)0x77;
    double start = now_s();
    CHECK_STATUS(storectx_async_store_write(shared, shorts[k], &w), STORECTX_ERR_TIMED_OUT);
    double took = now_s() - start;
    CHECK(w == (storectx_write_guard *)0x77);
    /* The message names the timeout in plain units, not a Rust Debug value
     * ("For(1ms)" reached C users once). */
    char want[64];
    snprintf(want, sizeof want, "(%llu ns)", (unsigned long long)shorts[k]);
    const char *message = storectx_last_error();
    if (strstr(message, want) == NULL || strstr(message, "For(") != NULL) {
      fprintf(stderr, "timeout %llu ns: message does not say %s: %s\n",
              (unsigned long long)shorts[k], want, message);
      return 1;
    }
    if (took < (double)shorts[k] * 1e-9 - 1e-4 || took > 1.0) {
      fprintf(stderr, "timeout %llu ns: answered after %.6f s\n",
              (unsigned long long)shorts[k], took);
      return 1;
    }
  }
  storectx_write_guard_release(held);

  /* Long timeouts: each waits for the lock another thread frees 100 ms in. */
  const uint64_t longs[] = {
      4294967296ull * 1000,          /* 2^32 us: a u32 of microseconds overflows */
      4294967295ull * 1000000,       /* 2^32 - 1 ms: INFINITE for WaitOnAddress */
      4294967296ull * 1000000,       /* 2^32 ms */
      UINT64_MAX / 2,
      UINT64_MAX - 1,
      UINT64_MAX,
  };
  for (size_t k = 0; k < sizeof longs / sizeof longs[0]; k++) {
    CHECK_OK(storectx_async_store_try_write(shared, &held));
    atomic_store(&release_now, 0);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, releaser, NULL) == 0);
    atomic_store(&release_now, 1);
    storectx_write_guard *w = NULL;
    double start = now_s();
    storectx_status got = storectx_async_store_write(shared, longs[k], &w);
    double took = now_s() - start;
    if (got != STORECTX_OK || took < 0.05 || took > 20.0) {
      fprintf(stderr, "timeout %llu ns: %s after %.3f s (%s)\n", (unsigned long long)longs[k],
              storectx_status_str(got), took, storectx_last_error());
      return 1;
    }
    CHECK(storectx_write_guard_store(w) == &st);
    CHECK(pthread_join(t, NULL) == 0);
    storectx_write_guard_release(w);
  }

  /* This thread holds the lock through an entry: refused at once. */
  storectx_write_guard *w = NULL;
  CHECK_OK(storectx_async_store_try_write(shared, &w));
  storectx_install_guard g;
  CHECK_OK(storectx_install_async(w, &g));
  const uint64_t all[] = {0, 1, 1000000, 4294967295ull * 1000000, UINT64_MAX - 1, UINT64_MAX};
  for (size_t k = 0; k < sizeof all / sizeof all[0]; k++) {
    storectx_write_guard *again = (storectx_write_guard *)0x77;
    double start = now_s();
    CHECK_STATUS(storectx_async_store_write(shared, all[k], &again), STORECTX_ERR_WOULD_DEADLOCK);
    CHECK(now_s() - start < 1.0 && again == (storectx_write_guard *)0x77);
  }
  CHECK_OK(storectx_uninstall(g));
  CHECK_OK(storectx_async_store_try_write(shared, &w));
  storectx_write_guard_release(w);
  storectx_async_store_release(shared);
  puts("write timeouts at their limits: ok");
  return 0;
}
