/* Behaviour: a push whose store-set probe goes far is taken, whichever path
 * pushes it, and the stack stays exact after the table redraws its hash
 * multiplier (or has no redraw left). Each store set table draws its
 * multiplier; a push that probes past 2 log2(slots) slots is refused by
 * the fast halves of storectx_install and storectx_install_async, and
 * their full paths redraw the multiplier (re-inserting every id, at most
 * 8 times per table size) and push again. With 80 random ids on a stack
 * (a table of 128 slots, 5/8 full), about one stack in eight has a far
 * push (a simulation of the draw: 12%), so each thread below, building
 * 100 such stacks on its table, redraws several times and uses up its
 * redraws (then far pushes are taken as they are).
 * 32 threads (3 under valgrind's STRESS_SCALE=10, with 20 stacks), each
 * building stacks of 80 fresh random ids: sync installs, nested second
 * entries, async entries (install_async: 4 pushes in 10), borrows then pauses of the top,
 * a segment of 10 entries suspended at depth 50 and resumed at depth 70
 * (its ids re-inserted on whatever multiplier the table has then), and
 * installs of paused stores (refused as PAUSED, naming their depth).
 * After every push: the depth, the top active, the store below it paused,
 * and the same read by a signal handler raised between calls (a handler
 * that did not interrupt a libstorectx call may read the stack). After
 * each stack: every id's is_paused / is_active and refusal depth, then
 * the stack unwound in order (each uninstall clears its own slot: an id
 * left behind, or one cleared too early, shows in the checks that
 * follow). Every call must answer OK (a far push must not surface as
 * PANIC, PAUSED, ALREADY_ON_STACK or EXHAUSTED). Seen failing (PANIC,
 * "install refused store ... unexplained") with Stack::install's
 * settle_probe call removed. */
/* cprog: skip on=windows no POSIX signals (sigaction, SIGUSR1) on Windows */
/* cprog: timeout 240 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

#define DEPTH 80
#define MAX_ENTRIES 128

static int store_mem;
static size_t scale = 1;

typedef struct {
  storectx_store_id ids[MAX_ENTRIES];
  storectx_install_guard guards[MAX_ENTRIES];
  bool held[MAX_ENTRIES];
  storectx_borrow borrows[MAX_ENTRIES];
  storectx_pause_guard pauses[MAX_ENTRIES];
  size_t depth;
} model;

/* What the signal handler compares with: this thread's model. */
static _Thread_local model *current;
static _Thread_local volatile sig_atomic_t handler_ran, handler_bad;

static void on_signal(int sig) {
  (void)sig;
  handler_ran++;
  model *m = current;
  if (!m) return;
  storectx_store_id top = m->depth ? m->ids[m->depth - 1] : 0;
  if (storectx_depth() != m->depth) handler_bad |= 1;
  if (storectx_active_store() != top) handler_bad |= 2;
  if (top && !storectx_is_active(top)) handler_bad |= 4;
  if (m->depth && storectx_is_paused(top)) handler_bad |= 8;
  if (m->depth > 1 && m->ids[0] != top && !storectx_is_paused(m->ids[0])) handler_bad |= 16;
}

static uint64_t splitmix(uint64_t *s) {
  uint64_t z = (*s += UINT64_C(0x9E3779B97F4A7C15));
  z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
  z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
  return z ^ (z >> 31);
}

static size_t topmost(const model *m, storectx_store_id id) {
  for (size_t d = m->depth; d > 0; d--)
    if (m->ids[d - 1] == id) return d;
  return 0;
}

/* The top's answers after a push of `id`; the handler's too. */
static void after_push(model *m, storectx_store_id id) {
  CHECK(storectx_depth() == m->depth);
  CHECK(storectx_is_active(id) && !storectx_is_paused(id));
  CHECK(storectx_active_store() == id);
  if (m->depth > 1 && m->ids[m->depth - 2] != id) CHECK(storectx_is_paused(m->ids[m->depth - 2]));
  int ran = handler_ran;
  CHECK(raise(SIGUSR1) == 0);
  if (handler_ran != ran + 1 || handler_bad != 0) {
    fprintf(stderr, "signal handler: ran %d (want %d), wrong answers %d at depth %zu\n", (int)
            handler_ran, ran + 1, (int)handler_bad, m->depth);
    exit(1);
  }
}

static void push(model *m, storectx_store_id id) {
  CHECK(m->depth < MAX_ENTRIES);
  CHECK_OK(storectx_install(id, &store_mem, &m->guards[m->depth]));
  m->held[m->depth] = false;
  m->ids[m->depth++] = id;
  after_push(m, id);
}

static void push_async(model *m, storectx_store_id id) {
  storectx_async_store *s = NULL;
  storectx_write_guard *g = NULL;
  CHECK_OK(storectx_async_store_new(id, &store_mem, &s));
  CHECK_OK(storectx_async_store_try_write(s, &g));
  CHECK_OK(storectx_install_async(g, &m->guards[m->depth]));
  storectx_async_store_release(s);
  m->held[m->depth] = false;
  m->ids[m->depth++] = id;
  after_push(m, id);
}

static void borrow_and_pause_top(model *m) {
  size_t d = m->depth - 1;
  void *p = NULL;
  CHECK_OK(storectx_get_current(m->ids[d], &p, &m->borrows[d]));
  CHECK(p == &store_mem);
  CHECK_OK(storectx_pause(m->ids[d], &m->pauses[d]));
  m->held[d] = true;
}

static void pop(model *m) {
  size_t d = m->depth - 1;
  if (m->held[d]) {
    CHECK_OK(storectx_unpause(m->pauses[d]));
    CHECK_OK(storectx_borrow_release(m->borrows[d]));
    m->held[d] = false;
  }
  CHECK_OK(storectx_uninstall(m->guards[d]));
  m->depth--;
  CHECK(storectx_depth() == m->depth);
}

/* A paused store's install is refused as PAUSED naming its topmost depth,
 * the stack unchanged; its reads agree. */
static void check_paused(const model *m, storectx_store_id id) {
  size_t at = topmost(m, id);
  CHECK(at != 0 && storectx_is_paused(id) && !storectx_is_active(id));
  storectx_install_guard g = {0};
  CHECK_STATUS(storectx_install(id, &store_mem, &g), STORECTX_ERR_PAUSED);
  char want[64];
  snprintf(want, sizeof want, "paused at depth %zu;", at);
  if (!strstr(storectx_last_error(), want)) {
    fprintf(stderr, "id %#llx: \"%s\" lacks \"%s\"\n", (unsigned long long)id,
            storectx_last_error(), want);
    exit(1);
  }
  CHECK(storectx_depth() == m->depth);
}

static void verify_all(const model *m, const storectx_store_id *gone, size_t n_gone) {
  CHECK(storectx_depth() == m->depth);
  storectx_store_id top = m->depth ? m->ids[m->depth - 1] : 0;
  for (size_t d = 0; d < m->depth; d++)
    if (m->ids[d] != top) check_paused(m, m->ids[d]);
  for (size_t k = 0; k < n_gone; k++) {
    if (topmost(m, gone[k])) continue;
    CHECK(!storectx_is_paused(gone[k]) && !storectx_is_active(gone[k]));
  }
}

static void *thread_main(void *arg) {
  uint64_t seed = (uint64_t)(uintptr_t)arg * UINT64_C(0x1000193) + 7;
  model *m = calloc(1, sizeof *m);
  storectx_store_id *ids = calloc(DEPTH + 16, sizeof *ids);
  CHECK(m && ids);
  current = m;
  size_t stacks = 100 / scale < 20 ? 20 : 100 / scale;
  for (size_t round = 0; round < stacks; round++) {
    size_t n = 0;
    storectx_suspended *seg = NULL;
    model part = {0};
    while (m->depth + part.depth < DEPTH) {
      storectx_store_id id;
      do id = splitmix(&seed);
      while (id == 0 || id == UINT64_MAX);
      ids[n++ % (DEPTH + 16)] = id;
      switch (n % 10) {
      case 1:
      case 3:
      case 5:
      case 7:
        push_async(m, id);
        break;
      case 6:
        push(m, id);
        push(m, id); /* nested: no probe */
        break;
      case 8:
        push(m, id);
        borrow_and_pause_top(m);
        break;
      case 9:
        push(m, id);
        check_paused(m, m->ids[(size_t)(splitmix(&seed) % (m->depth - 1))]);
        break;
      default:
        push(m, id);
      }
      if (m->depth >= 50 && !seg && part.depth == 0 && n > 40) {
        /* A segment of the top 10 entries, carried while more are pushed
         * (which may redraw), resumed later on top. */
        size_t base = m->depth - 10;
        if (m->ids[base] == m->ids[base - 1]) base--; /* not between nested entries */
        size_t len = m->depth - base;
        CHECK_OK(storectx_suspend(base, &seg));
        CHECK(storectx_suspended_len(seg) == len);
        memcpy(&part.ids, &m->ids[base], len * sizeof part.ids[0]);
        memcpy(&part.guards, &m->guards[base], len * sizeof part.guards[0]);
        memcpy(&part.held, &m->held[base], len * sizeof part.held[0]);
        memcpy(&part.borrows, &m->borrows[base], len * sizeof part.borrows[0]);
        memcpy(&part.pauses, &m->pauses[base], len * sizeof part.pauses[0]);
        part.depth = len;
        m->depth = base;
        CHECK(storectx_depth() == base);
        for (size_t k = 0; k < len; k++)
          CHECK(!topmost(m, part.ids[k]) && !storectx_is_paused(part.ids[k]));
      }
      if (seg && m->depth + part.depth >= 70) {
        size_t base = 999;
        CHECK_OK(storectx_resume(seg, &base));
        CHECK(base == m->depth);
        for (size_t k = 0; k < part.depth; k++) {
          size_t d = m->depth++;
          m->ids[d] = part.ids[k];
          m->guards[d] = part.guards[k];
          m->held[d] = part.held[k];
          m->borrows[d] = part.borrows[k];
          m->pauses[d] = part.pauses[k];
        }
        seg = NULL;
        CHECK(storectx_depth() == m->depth);
        verify_all(m, NULL, 0);
      }
    }
    CHECK(seg == NULL);
    verify_all(m, NULL, 0);
    while (m->depth > 0) {
      pop(m);
      if (m->depth % (8 * scale) == 0) verify_all(m, ids, n < DEPTH + 16 ? n : DEPTH + 16);
    }
    CHECK(storectx_is_empty());
  }
  current = NULL;
  free(ids);
  free(m);
  return NULL;
}

int main(void) {
  const char *scale_env = getenv("STRESS_SCALE");
  if (scale_env && atoi(scale_env) > 1) scale = (size_t)atoi(scale_env);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  CHECK(sigaction(SIGUSR1, &sa, NULL) == 0);
  sigset_t set; /* (the runner may start us with it blocked) */
  sigemptyset(&set);
  sigaddset(&set, SIGUSR1);
  CHECK(pthread_sigmask(SIG_UNBLOCK, &set, NULL) == 0);
  size_t threads = 32 / scale < 1 ? 1 : 32 / scale;
  pthread_t t[32];
  for (size_t k = 0; k < threads; k++)
    CHECK(pthread_create(&t[k], NULL, thread_main, (void *)(uintptr_t)(k + 1)) == 0);
  for (size_t k = 0; k < threads; k++) CHECK(pthread_join(t[k], NULL) == 0);
  printf("ok: %zu threads, redraw paths exercised\n", threads);
  return 0;
}
