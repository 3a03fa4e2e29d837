/* signal_first_call_in_handler_interrupting_malloc: a thread that has never
 * called libstorectx loops on malloc/free; another thread interrupts it with
 * signals whose handler makes the thread's FIRST libstorectx calls, all of
 * them read-only: depth, is_empty, is_active, is_paused, active_store,
 * describe into a stack buffer, last_error, status_str, version,
 * install_guard_installed (issue 11, input 3, "First call in a signal
 * handler"; SPEC "Edges": read-only calls "never allocate, never take a lock
 * and never create per-thread state: a thread with no state answers as an
 * empty stack"). Every handler returns (a watchdog fails the test when one
 * has not returned within 5 s: today the first call allocates inside the
 * interrupted malloc and never returns), and every answer is an empty
 * stack's. Many fresh threads, each signalled many times, so that first
 * calls land inside malloc. STRESS_SCALE (valgrind) shrinks the loops. */
/* cprog: skip on=windows POSIX signals (sigaction, pthread_kill interrupting a thread) do not exist on Windows: nothing can interrupt malloc and call in (docs/platforms.md) */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

/* cprog: timeout 60 */

#define HANDLER_LIMIT_S 5.0

struct worker {
  pthread_t thread;
  atomic_int stop;
  atomic_int started;
  atomic_long handled;          /* handlers that returned */
  atomic_int wrong;             /* bit per read-only call that answered wrong */
};

static __thread struct worker *me;   /* set before any signal can arrive */

/* What an empty stack answers, taken on main before any entry exists. */
static char empty_describe[256];
static size_t empty_describe_len;
static const char *version_text, *status_text;

static void handler(int sig) {
  (void)sig;
  int wrong = 0;
  if (storectx_depth() != 0) wrong |= 1 << 0;
  if (!storectx_is_empty()) wrong |= 1 << 1;
  if (storectx_is_active(1)) wrong |= 1 << 2;
  if (storectx_is_paused(1)) wrong |= 1 << 3;
  if (storectx_active_store() != 0) wrong |= 1 << 4;
  char buf[256];
  memset(buf, 'x', sizeof buf);
  size_t n = storectx_describe(buf, sizeof buf);
  if (n != empty_describe_len || strcmp(buf, empty_describe) != 0) wrong |= 1 << 5;
  const char *e = storectx_last_error();
  if (e == NULL || e[0] != '\0') wrong |= 1 << 6;
  const char *s = storectx_status_str(STORECTX_ERR_BUSY);
  if (s == NULL || strcmp(s, status_text) != 0) wrong |= 1 << 7;
  const char *v = storectx_version();
  if (v == NULL || strcmp(v, version_text) != 0) wrong |= 1 << 8;
  storectx_install_guard zero = {0};
  if (storectx_install_guard_installed(zero)) wrong |= 1 << 9;
  atomic_fetch_or(&me->wrong, wrong);
  atomic_fetch_add(&me->handled, 1);
}

static void *malloc_loop(void *arg) {
  me = arg;
  atomic_store(&me->started, 1);
  unsigned n = 1;
  void *keep[8] = {0};
  while (!atomic_load(&me->stop)) {
    /* sizes from tiny to mmap-sized-ish, to spend time inside malloc/free */
    n = n * 1103515245u + 12345u;
    size_t size = 16u << (n >> 28 & 7);
    unsigned slot = n >> 8 & 7;
    free(keep[slot]);
    keep[slot] = malloc(size);
    if (keep[slot]) ((volatile char *)keep[slot])[0] = 1;
  }
  for (int i = 0; i < 8; i++) free(keep[i]);
  return NULL;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void pause_us(long us) {
  struct timespec ts = {0, us * 1000L};
  nanosleep(&ts, NULL);
}

static const char *const call_names[] = {
    "depth", "is_empty", "is_active(1)", "is_paused(1)", "active_store",
    "describe", "last_error", "status_str", "version", "install_guard_installed"};

int main(void) {
  const char *scale_env = getenv("STRESS_SCALE");
  int scale = scale_env ? atoi(scale_env) : 1;
  if (scale < 1) scale = 1;
  int threads = 64 / scale < 4 ? 4 : 64 / scale;
  int signals = 30 / scale < 3 ? 3 : 30 / scale;

  /* The reference answers (main's first calls, outside any handler). */
  empty_describe_len = storectx_describe(empty_describe, sizeof empty_describe);
  version_text = storectx_version();
  status_text = storectx_status_str(STORECTX_ERR_BUSY);
  CHECK(storectx_is_empty());

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = handler;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  CHECK(sigaction(SIGUSR1, &sa, NULL) == 0);

  static struct worker workers[64];
  for (int t = 0; t < threads; t++) {
    struct worker *w = &workers[t];
    CHECK(pthread_create(&w->thread, NULL, malloc_loop, w) == 0);
    while (!atomic_load(&w->started)) pause_us(50);
    pause_us(200);              /* deep in its loop */
    for (int i = 0; i < signals; i++) {
      long before = atomic_load(&w->handled);
      CHECK(pthread_kill(w->thread, SIGUSR1) == 0);
      double t0 = now_s();
      while (atomic_load(&w->handled) == before) {
        if (now_s() - t0 > HANDLER_LIMIT_S * scale) {
          fprintf(stderr,
                  "thread %d, signal %d: the handler's libstorectx calls have "
                  "not returned after %.0f s (first call: %s): hung\n",
                  t, i + 1, HANDLER_LIMIT_S * scale,
                  i == 0 ? "yes, this thread's first" : "no");
          _exit(1);             /* the hung thread cannot be joined */
        }
        pause_us(100);
      }
      pause_us(37 * (i % 5));   /* land at varied points of the loop */
    }
    atomic_store(&w->stop, 1);
    CHECK(pthread_join(w->thread, NULL) == 0);
    int wrong = atomic_load(&w->wrong);
    if (wrong) {
      for (int b = 0; b < 10; b++)
        if (wrong & 1 << b)
          fprintf(stderr, "thread %d: %s in a signal handler did not answer as "
                          "an empty stack\n", t, call_names[b]);
      return 1;
    }
  }
  CHECK(storectx_is_empty());
  printf("signal_first_call_in_handler_interrupting_malloc: ok (%d threads x %d signals)\n",
         threads, signals);
  return 0;
}
