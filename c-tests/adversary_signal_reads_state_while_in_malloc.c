/* Behaviour: the read-only calls from a signal handler that interrupts
 * malloc in a thread that HAS state (the existing signal_* programs cover
 * threads without state, and a handler during a lock wait): the thread's
 * stack is deep (grown past several quarter steps), with pauses and
 * borrows, and its last refusal is pending, unformatted (0.3 formats it
 * when storectx_last_error() is read: here, in the handler, into the
 * thread's buffer). Each round the thread changes its stack (install,
 * pause, suspend/resume of its upper part, a new refusal), publishes what
 * the answers must be, then spins in malloc/free while a helper thread
 * sends it SIGUSR1; the handler reads depth, is_empty, active_store,
 * is_active, is_paused, install_guard_installed, describe (into a static
 * buffer) and last_error, and the thread checks them after the window: all
 * as published, and last_error's text is the one the thread reads itself
 * afterwards. The signal only arrives inside the malloc window, never
 * inside a libstorectx call (docs/threading.md excludes those). */
/* cprog: skip on=windows no POSIX signals on Windows (docs/platforms.md) */
/* cprog: timeout 60 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "check.h"

#define ROUNDS 200

static pthread_t target;
static atomic_int window, handled, done;

/* Published before each window. */
static size_t want_depth;
static storectx_store_id want_top, want_paused;
static storectx_install_guard want_guard;

/* Seen by the handler. */
static size_t seen_depth, seen_describe_len;
static bool seen_empty, seen_active, seen_paused, seen_guard, seen_top_not_paused;
static storectx_store_id seen_top;
static char seen_text[600], seen_describe[128];

static void handler(int sig) {
  (void)sig;
  seen_depth = storectx_depth();
  seen_empty = storectx_is_empty();
  seen_top = storectx_active_store();
  seen_active = storectx_is_active(want_top);
  seen_paused = storectx_is_paused(want_paused);
  seen_top_not_paused = !storectx_is_paused(want_top);
  seen_guard = storectx_install_guard_installed(want_guard);
  seen_describe_len = storectx_describe(seen_describe, sizeof seen_describe);
  const char *t = storectx_last_error();
  size_t n = strlen(t);
  if (n >= sizeof seen_text) n = sizeof seen_text - 1;
  memcpy(seen_text, t, n);
  seen_text[n] = 0;
  atomic_fetch_add(&handled, 1);
}

/* One signal per window: the thread numbers its windows, the helper
 * signals each number once, while that window is open. */
static void *signaller(void *arg) {
  (void)arg;
  int served = 0;
  while (!atomic_load(&done)) {
    int w = atomic_load(&window);
    if (w > served) {
      served = w;
      pthread_kill(target, SIGUSR1);
    } else {
      sched_yield();
    }
  }
  return NULL;
}

static void spin_in_malloc(void) {
  static int windows;
  int before = atomic_load(&handled);
  atomic_store(&window, ++windows);
  void *volatile keep[8] = {0};
  for (unsigned i = 0; atomic_load(&handled) == before; i++) {
    free(keep[i % 8]);
    keep[i % 8] = malloc(16 + (i % 512) * 8);
  }
  for (int i = 0; i < 8; i++) free(keep[i]);
}

int main(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = handler;
  sigemptyset(&sa.sa_mask);
  CHECK(sigaction(SIGUSR1, &sa, NULL) == 0);
  target = pthread_self();
  pthread_t s;
  CHECK(pthread_create(&s, NULL, signaller, NULL) == 0);

  static int mem;
  static storectx_install_guard guards[4096];
  static storectx_store_id ids[4096];
  size_t depth = 0;
  void *p;
  for (int round = 0; round < ROUNDS; round++) {
    /* Change the stack: grow it, pause and borrow, move its top third away
     * and back, and leave a refusal pending. */
    for (int k = 0; k < 17; k++) {
      ids[depth] = (k % 5 == 4) ? ids[depth - 1] : storectx_store_id_new();
      CHECK_OK(storectx_install(ids[depth], &mem, &guards[depth]));
      depth++;
    }
    storectx_borrow b;
    storectx_pause_guard pg;
    CHECK_OK(storectx_get_current(ids[depth - 1], &p, &b));
    CHECK_OK(storectx_pause(ids[depth - 1], &pg));
    storectx_suspended *seg;
    size_t base;
    size_t cut = depth - depth / 3;
    while (cut > 0 && ids[cut] == ids[cut - 1]) cut--; /* not inside a nested run */
    CHECK_OK(storectx_suspend(cut, &seg));
    CHECK_OK(storectx_resume(seg, &base));
    storectx_store_id paused = ids[round % (depth - 1)];
    if (paused == ids[depth - 1]) paused = ids[0];
    CHECK_STATUS(storectx_get_current(paused, &p, &b), STORECTX_ERR_PAUSED);

    want_depth = depth;
    want_top = ids[depth - 1];
    want_paused = paused;
    want_guard = guards[round % depth];
    spin_in_malloc();

    CHECK(seen_depth == want_depth && !seen_empty && seen_top == want_top && seen_active);
    CHECK(seen_paused && seen_top_not_paused && seen_guard);
    char full[128];
    CHECK(storectx_describe(full, sizeof full) == seen_describe_len);
    CHECK(strcmp(full, seen_describe) == 0);
    CHECK(strcmp(storectx_last_error(), seen_text) == 0);
    CHECK(strstr(seen_text, "get_current: store") == seen_text);

    CHECK_OK(storectx_unpause(pg));
    CHECK_OK(storectx_borrow_release(b));
    /* Shrink a little, so the stack goes up and down past its steps. */
    for (int k = 0; k < (round % 3 == 2 ? 30 : 5) && depth > 1; k++)
      CHECK_OK(storectx_uninstall(guards[--depth]));
  }
  atomic_store(&done, 1);
  CHECK(pthread_join(s, NULL) == 0);
  while (depth > 0) CHECK_OK(storectx_uninstall(guards[--depth]));
  printf("%d handler calls interrupted malloc with a deep stack and a pending message\n",
         atomic_load(&handled));
  return 0;
}
