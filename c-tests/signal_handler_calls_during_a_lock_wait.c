/* signal_handler_calls_during_a_lock_wait: a signal handler that runs while
 * its thread waits in storectx_async_store_write (a store another thread
 * holds) sees the thread's stack as it is and may use it, and the wait keeps
 * its deadline through the interruptions (EINTR from the futex).
 * The main thread has a sync entry installed (depth 1) and waits 400 ms for
 * a store a second thread holds; the holder sends it SIGALRM every 10 ms
 * (pthread_kill, no SA_RESTART) while it is sure main waits: from 100 ms
 * after main said it calls until 100 ms before the deadline or the release,
 * each signal's handler seen run before the next is sent or the lock is
 * released. (A handler may use the stack only while the call waits, not
 * while it starts or ends: an interval timer once landed just after the
 * wait, inside the write guard's making, and saw the stack in use.) Each handler call reads depth/is_active/active_store/describe
 * (read-only calls, SPEC "Edges": callable from a signal handler) and makes
 * a balanced install + uninstall of a second store on top. Expected: the
 * write answers TIMED_OUT after 400 ms (not before, not much after),
 * every read answered depth 1 / active store A (2 / B inside the balanced
 * pair), every install/uninstall OK. Then a write with UINT64_MAX - 1 ns
 * (a deadline 584 years away) and one with UINT64_MAX (forever), each
 * interrupted the same way, get the lock when the holder frees it.
 * Before the fix the wait ran inside the thread's context accessor: in
 * debug builds every handler call was refused as a re-entry (depth 0,
 * install PANIC), and in release builds a handler's install made a second,
 * mutable reference to the context the waiting call still held. */
/* cprog: skip on=windows no POSIX signals on Windows (docs/platforms.md) */
/* cprog: timeout 60 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

struct store { int value; };

static struct store a_store = {1}, b_store = {2}, s_store = {3};
static storectx_store_id a_id, b_id;
static storectx_async_store *shared;

static atomic_int handler_calls;
static atomic_int bad_reads;
static atomic_int bad_calls;
static char first_bad[256];

static void note_bad(atomic_int *counter, const char *what) {
  if (atomic_fetch_add(counter, 1) == 0) {
    strncpy(first_bad, what, sizeof first_bad - 1);
  }
}

static void on_alarm(int sig) {
  (void)sig;
  int saved = errno;
  atomic_fetch_add(&handler_calls, 1);
  if (storectx_depth() != 1) note_bad(&bad_reads, "depth != 1");
  if (!storectx_is_active(a_id)) note_bad(&bad_reads, "is_active(A) false");
  if (storectx_active_store() != a_id) note_bad(&bad_reads, "active_store != A");
  if (storectx_is_empty()) note_bad(&bad_reads, "is_empty true");
  char text[256];
  if (storectx_describe(text, sizeof text) == 0) note_bad(&bad_reads, "describe empty");
  storectx_install_guard g;
  if (storectx_install(b_id, &b_store, &g) != STORECTX_OK) {
    note_bad(&bad_calls, "install B refused");
  } else {
    if (storectx_depth() != 2 || storectx_active_store() != b_id)
      note_bad(&bad_reads, "inside the pair: not depth 2 / B");
    if (storectx_uninstall(g) != STORECTX_OK) note_bad(&bad_calls, "uninstall B refused");
  }
  errno = saved;
}

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int phase; /* 0: take, 1: locked, 2: main calls write, 3: released, 4: main timed out */

static pthread_t main_thread;

static void sleep_ms(long ms) {
  struct timespec t = {ms / 1000, (ms % 1000) * 1000 * 1000};
  while (nanosleep(&t, &t) != 0 && errno == EINTR) {
  }
}

static double clock_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

/* Sends main SIGALRM every 10 ms until `ms` ms from now (by the clock, so
 * a slow machine sends fewer, never later), each time after the previous
 * signal's handler ran (so none is still pending when this returns). */
static void alarms_for(long ms) {
  double end = clock_ms() + (double)ms;
  while (clock_ms() + 10 < end) {
    int before = atomic_load(&handler_calls);
    CHECK(pthread_kill(main_thread, SIGALRM) == 0);
    for (int spins = 0; atomic_load(&handler_calls) == before; spins++) {
      CHECK(spins < 10 * 1000); /* 10 s: the handler never ran */
      sleep_ms(1);
    }
    sleep_ms(10);
  }
}

static void *holder(void *arg) {
  (void)arg;
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, NULL); /* the alarm goes to main */
  for (int round = 0; round < 3; round++) {
    storectx_write_guard *w = NULL;
    CHECK_OK(storectx_async_store_try_write(shared, &w));
    pthread_mutex_lock(&mu);
    phase = 1;
    pthread_cond_broadcast(&cv);
    while (phase != 2) pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    /* Main calls storectx_async_store_write right after phase 2: 100 ms
     * later it waits. Round 0 times out at 400 ms: alarms until 300 ms.
     * Rounds 1 and 2: alarms for 50 ms, then the release. */
    sleep_ms(100);
    alarms_for(round == 0 ? 200 : 50);
    if (round == 0) {
      pthread_mutex_lock(&mu);
      while (phase != 4) pthread_cond_wait(&cv, &mu); /* main timed out */
      pthread_mutex_unlock(&mu);
    }
    storectx_write_guard_release(w);
    pthread_mutex_lock(&mu);
    phase = 3;
    pthread_cond_broadcast(&cv);
    while (phase != 0) pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
  }
  return NULL;
}

static void set_phase(int p) {
  pthread_mutex_lock(&mu);
  phase = p;
  pthread_cond_broadcast(&cv);
  pthread_mutex_unlock(&mu);
}

static void wait_phase(int p) {
  pthread_mutex_lock(&mu);
  while (phase != p) pthread_cond_wait(&cv, &mu);
  pthread_mutex_unlock(&mu);
}

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(void) {
  a_id = storectx_store_id_new();
  b_id = storectx_store_id_new();
  CHECK_OK(storectx_async_store_new(storectx_store_id_new(), &s_store, &shared));
  storectx_install_guard ga;
  CHECK_OK(storectx_install(a_id, &a_store, &ga));

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_alarm;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0; /* no SA_RESTART: the futex wait returns EINTR */
  CHECK(sigaction(SIGALRM, &sa, NULL) == 0);

  main_thread = pthread_self();
  pthread_t t;
  CHECK(pthread_create(&t, NULL, holder, NULL) == 0);

  /* Round 0: the holder keeps the lock past the timeout. */
  wait_phase(1);
  set_phase(2);
  storectx_write_guard *w = (storectx_write_guard *)0x1;
  double start = now_s();
  CHECK_STATUS(storectx_async_store_write(shared, 400ull * 1000 * 1000, &w), STORECTX_ERR_TIMED_OUT);
  double took = now_s() - start;
  set_phase(4);
  CHECK(w == (storectx_write_guard *)0x1); /* untouched on failure */
  if (took < 0.399 || took > 10.0) {
    fprintf(stderr, "the 400 ms wait took %.3f s\n", took);
    return 1;
  }
  int calls = atomic_load(&handler_calls);
  if (atomic_load(&bad_reads) || atomic_load(&bad_calls)) {
    fprintf(stderr, "%d of %d handler calls saw a wrong stack, %d refused a call; first: %s\n",
            atomic_load(&bad_reads), calls, atomic_load(&bad_calls), first_bad);
    return 1;
  }
  CHECK(calls >= 3);
  wait_phase(3);
  set_phase(0);

  /* Rounds 1 and 2: a deadline too far to matter, then forever; the holder
   * frees the lock 150 ms in. */
  uint64_t timeouts[2] = {UINT64_MAX - 1, UINT64_MAX};
  for (int k = 0; k < 2; k++) {
    wait_phase(1);
    int before = atomic_load(&handler_calls);
    set_phase(2);
    w = NULL;
    CHECK_OK(storectx_async_store_write(shared, timeouts[k], &w));
    CHECK(w != NULL && storectx_write_guard_store(w) == &s_store);
    storectx_write_guard_release(w);
    wait_phase(3);
    set_phase(0);
    if (atomic_load(&bad_reads) || atomic_load(&bad_calls)) {
      fprintf(stderr, "round %d: a handler call saw a wrong stack or was refused: %s\n", k + 1,
              first_bad);
      return 1;
    }
    CHECK(atomic_load(&handler_calls) > before);
  }
  CHECK(pthread_join(t, NULL) == 0);

  CHECK_OK(storectx_uninstall(ga));
  CHECK(storectx_is_empty());
  storectx_async_store_release(shared);
  puts("signal handler calls during a lock wait: ok");
  return 0;
}
