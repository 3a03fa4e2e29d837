/* Behaviour: the thread-exit teardown and fork with the 0.3 stack layout
 * (entries grown by quarter steps, one-word pause records in their own
 * vector, a store set with each id's entry index). Threads exit, without
 * unwinding, holding stacks 1,025 to 1,300 deep (past the 1,024 and 1,280
 * growths) of sync entries, nested entries of one store, async entries
 * every 97th entry, borrows and nested pauses on many entries, plus a
 * segment resumed from another thread on top: every async store's lock
 * must be free once they are joined (try_write OK) and nothing may leak
 * (memcheck, in CI). Then the main thread builds the same kind of stack,
 * suspends its upper half, and forks: the child resumes the segment, checks
 * every borrow and pause, unwinds it all exactly and frees what it holds;
 * the parent, independently, does the same. A child that hangs (an internal
 * lock inherited held) or fails is reported; the parent waits at most 10 s. */
/* cprog: skip on=windows fork() does not exist on Windows (docs/platforms.md) */
/* cprog: timeout 120 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

#define THREADS 4
#define MAX_ENTRIES 1400
#define ASYNC_EVERY 97

typedef struct {
  storectx_store_id id;
  storectx_install_guard guard;
  storectx_borrow borrow;
  unsigned borrows;
  storectx_pause_guard pauses[3];
  bool took[3];
  int npauses;
  storectx_async_store *async;
} entry;

typedef struct {
  entry e[MAX_ENTRIES];
  size_t n;
  storectx_async_store *stores[MAX_ENTRIES / ASYNC_EVERY + 2];
  size_t nstores;
} stack_model;

static int mem;

/* Pushes `n` entries on this thread's stack (on top of what it has). */
static void build(stack_model *m, size_t n, unsigned seed) {
  void *p;
  for (size_t k = 0; k < n; k++) {
    entry *e = &m->e[m->n];
    memset(e, 0, sizeof *e);
    bool nested = m->n > 0 && (k + seed) % 7 == 3 && !m->e[m->n - 1].async;
    if (nested) {
      e->id = m->e[m->n - 1].id;
      CHECK_OK(storectx_install(e->id, &mem, &e->guard));
    } else if ((k + seed) % ASYNC_EVERY == 5) {
      e->id = storectx_store_id_new();
      CHECK_OK(storectx_async_store_new(e->id, &mem, &e->async));
      m->stores[m->nstores++] = e->async;
      storectx_write_guard *w;
      CHECK_OK(storectx_async_store_try_write(e->async, &w));
      CHECK_OK(storectx_install_async(w, &e->guard));
    } else {
      e->id = storectx_store_id_new();
      CHECK_OK(storectx_install(e->id, &mem, &e->guard));
    }
    unsigned shape = (unsigned)(k * 2654435761u + seed) >> 28; /* 0..15 */
    for (unsigned b = 0; b < shape % 3; b++) {
      CHECK_OK(storectx_get_current(e->id, &p, &e->borrow));
      e->borrows++;
    }
    for (unsigned q = 0; q < shape % 4; q++) {
      CHECK_OK(storectx_pause(e->id, &e->pauses[q]));
      e->took[q] = e->borrows > 0;
      e->borrows -= e->took[q];
      e->npauses++;
    }
    m->n++;
  }
}

static void unwind_exactly(stack_model *m, size_t down_to) {
  static char text[256];
  while (m->n > down_to) {
    entry *e = &m->e[m->n - 1];
    CHECK(storectx_depth() == m->n && storectx_active_store() == e->id);
    while (e->npauses > 0) {
      int q = --e->npauses;
      CHECK_OK(storectx_unpause(e->pauses[q]));
      e->borrows += e->took[q];
    }
    storectx_describe(text, sizeof text);
    char want[32];
    snprintf(want, sizeof want, "borrows %u\n", e->borrows);
    CHECK(strstr(text, want) == strchr(text, '\n') - strlen(want) + 1);
    for (; e->borrows; e->borrows--) CHECK_OK(storectx_borrow_release(e->borrow));
    CHECK_OK(storectx_uninstall(e->guard));
    m->n--;
  }
}

static void release_stores(stack_model *m) {
  for (size_t i = 0; i < m->nstores; i++) {
    storectx_write_guard *w;
    CHECK_OK(storectx_async_store_try_write(m->stores[i], &w));
    storectx_write_guard_release(w);
    storectx_async_store_release(m->stores[i]);
  }
  m->nstores = 0;
}

static stack_model models[THREADS];
static storectx_suspended *handed[THREADS];
static stack_model handed_models[THREADS];

static void *exits_holding_everything(void *arg) {
  size_t i = (size_t)(uintptr_t)arg;
  build(&models[i], 1025 + 90 * i, (unsigned)i);
  size_t base;
  CHECK_OK(storectx_resume(handed[i], &base));
  CHECK(base == 1025 + 90 * i);
  return NULL; /* exits without unwinding */
}

static void *makes_a_segment(void *arg) {
  size_t i = (size_t)(uintptr_t)arg;
  build(&handed_models[i], 40, (unsigned)(i + 11));
  CHECK_OK(storectx_suspend(0, &handed[i]));
  return NULL;
}

int main(void) {
  pthread_t t[THREADS];
  for (size_t i = 0; i < THREADS; i++) {
    CHECK(pthread_create(&t[i], NULL, makes_a_segment, (void *)(uintptr_t)i) == 0);
    CHECK(pthread_join(t[i], NULL) == 0);
  }
  for (size_t i = 0; i < THREADS; i++)
    CHECK(pthread_create(&t[i], NULL, exits_holding_everything, (void *)(uintptr_t)i) == 0);
  for (size_t i = 0; i < THREADS; i++) CHECK(pthread_join(t[i], NULL) == 0);
  for (size_t i = 0; i < THREADS; i++) {
    release_stores(&models[i]); /* every lock free after the exits */
    release_stores(&handed_models[i]);
  }

  /* fork with a deep paused stack and a suspended half. */
  static stack_model m;
  build(&m, 1300, 3);
  size_t half = m.n / 2;
  storectx_suspended *seg;
  CHECK_OK(storectx_suspend(half, &seg));
  fflush(stdout);
  pid_t child = fork();
  CHECK(child >= 0);
  size_t base;
  CHECK_OK(storectx_resume(seg, &base));
  CHECK(base == half);
  unwind_exactly(&m, 0);
  CHECK(storectx_is_empty());
  release_stores(&m);
  if (child == 0) _exit(0);
  for (int waited = 0;; waited++) {
    int status;
    pid_t r = waitpid(child, &status, WNOHANG);
    CHECK(r >= 0);
    if (r == child) {
      CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
      break;
    }
    if (waited > 1000) {
      kill(child, SIGKILL);
      fprintf(stderr, "the child hung\n");
      return 1;
    }
    struct timespec ten_ms = {0, 10000000};
    nanosleep(&ten_ms, NULL);
  }
  puts("exit and fork with deep paused stacks: locks free, child and parent unwound exactly");
  return 0;
}
