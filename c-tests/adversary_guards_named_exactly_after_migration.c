/* Behaviour: every refused handle names its entry at its exact depth, or is
 * STALE_HANDLE, on whichever thread its entry is, after the entries move by
 * suspend/resume between threads whose blocks of handle numbers are older
 * and newer than the numbers' own thread (src/stack/mod.rs
 * `uninstall_refusal` finds a guard's entry by guessing from its number's
 * distance to the top's, then by a search that trusts numbers to grow up
 * the entries installed since the last resume: the guess and the search
 * must name the same entry whatever the numbering around it). The stack is
 * 24 entries with numbers taken between them (pauses undone, entries
 * pushed and popped), nested entries of one store, async entries with
 * no-op guards, live borrows and live pauses; it is suspended at bases 0, 1,
 * 5, 13, 23 and 24 (none between two entries of one store), resumed on a thread numbered before it or after it
 * above three entries of that thread's own, covered by two more, and
 * brought back. On every thread at every step, for every entry below the
 * top: uninstall of its guard and of its no-op guard, borrow_release of its
 * borrow and unpause of its pause answer OUT_OF_ORDER with exactly
 * "<call>: <kind> for store X is at depth D, top is store T at depth N";
 * the top's borrowed guard STILL_BORROWED, its no-op guard OK (nothing
 * popped); every handle of an entry that is elsewhere (suspended, another
 * thread's, popped) STALE_HANDLE, the uninstall's message naming the
 * thread's depth; every value near a guard (+-1..32, +-64, its 8 kind-bit
 * patterns) that is no guard here STALE_HANDLE; install_guard_installed
 * agrees; describe is unchanged by all of it. Then everything unwinds
 * LIFO, each spent guard STALE_HANDLE, and each async store's lock is free. */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "check.h"

#define N 24
#define OWN 3
#define MAX_STACK 64
#define MAX_SPENT 256
#define DESCRIBE_MAX 16384

typedef struct {
  storectx_store_id id;
  void *addr;
  storectx_async_store *async;
  storectx_install_guard g, noop;
  bool has_noop;
  storectx_borrow b;
  bool has_b;
  storectx_pause_guard p;
  bool has_p;
} ent;

typedef struct {
  ent *at[MAX_STACK];
  size_t depth;
} model;

static int mem[N + 16];
static ent entries[N];
static ent own_old[OWN + 2], own_new[OWN + 2], extra;
static model stack_a, stack_old, stack_new;
static storectx_install_guard spent[MAX_SPENT];
static size_t nspent;
static long refusals;

/* ---- a worker thread that runs one job at a time for the main thread ---- */

typedef struct {
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  void (*job)(void *);
  void *arg;
  bool busy, quit;
} worker;

static void *worker_main(void *p) {
  worker *w = p;
  pthread_mutex_lock(&w->mu);
  for (;;) {
    while (!w->busy && !w->quit) pthread_cond_wait(&w->cv, &w->mu);
    if (!w->busy && w->quit) break;
    pthread_mutex_unlock(&w->mu);
    w->job(w->arg);
    pthread_mutex_lock(&w->mu);
    w->busy = false;
    pthread_cond_broadcast(&w->cv);
  }
  pthread_mutex_unlock(&w->mu);
  return NULL;
}

static void run_on(worker *w, void (*job)(void *), void *arg) {
  pthread_mutex_lock(&w->mu);
  w->job = job;
  w->arg = arg;
  w->busy = true;
  pthread_cond_broadcast(&w->cv);
  while (w->busy) pthread_cond_wait(&w->cv, &w->mu);
  pthread_mutex_unlock(&w->mu);
}

static void start(worker *w) {
  pthread_mutex_init(&w->mu, NULL);
  pthread_cond_init(&w->cv, NULL);
  w->busy = w->quit = false;
  CHECK(pthread_create(&w->thread, NULL, worker_main, w) == 0);
}

static void stop(worker *w) {
  pthread_mutex_lock(&w->mu);
  w->quit = true;
  pthread_cond_broadcast(&w->cv);
  pthread_mutex_unlock(&w->mu);
  pthread_join(w->thread, NULL);
}

/* ---- building entries ---- */

static void push_model(model *m, ent *e) {
  CHECK(m->depth < MAX_STACK);
  m->at[m->depth++] = e;
}

/* A sync entry for a new store (or, `nested`, for the store on top). */
static void install_sync(model *m, ent *e, bool nested, bool borrow, bool pause) {
  static size_t next_mem;
  memset(e, 0, sizeof *e);
  void *addr = &mem[next_mem++ % N];
  if (nested) {
    ent *top = m->at[m->depth - 1];
    CHECK(top->async == NULL);
    e->id = top->id;
    addr = top->addr;
  } else {
    e->id = storectx_store_id_new();
  }
  e->addr = addr;
  CHECK_OK(storectx_install(e->id, addr, &e->g));
  push_model(m, e);
  if (borrow) {
    void *got = NULL;
    CHECK_OK(storectx_get_current(e->id, &got, &e->b));
    CHECK(got == addr);
    e->has_b = true;
  }
  if (pause) {
    CHECK_OK(storectx_pause(e->id, &e->p));
    e->has_p = true;
  }
}

static void install_async(model *m, ent *e, bool pause) {
  memset(e, 0, sizeof *e);
  e->id = storectx_store_id_new();
  CHECK_OK(storectx_async_store_new(e->id, &mem[N], &e->async));
  storectx_write_guard *w = NULL;
  CHECK_OK(storectx_async_store_try_write(e->async, &w));
  CHECK_OK(storectx_install_async(w, &e->g));
  push_model(m, e);
  /* Installing the store again on its own async entry pushes nothing. */
  CHECK_OK(storectx_install(e->id, &mem[0], &e->noop));
  CHECK(storectx_depth() == m->depth);
  e->has_noop = true;
  if (pause) {
    CHECK_OK(storectx_pause(e->id, &e->p));
    e->has_p = true;
  }
}

/* Takes handle numbers without leaving an entry: a pause undone, an entry
 * pushed and popped (its guard kept as spent). */
static void take_numbers(int how) {
  storectx_store_id top = storectx_active_store();
  if (how & 1) {
    storectx_pause_guard p;
    CHECK_OK(storectx_pause(top, &p));
    CHECK_OK(storectx_unpause(p));
  }
  if (how & 2) {
    storectx_install_guard g;
    CHECK_OK(storectx_install(storectx_store_id_new(), &mem[1], &g));
    CHECK_OK(storectx_uninstall(g));
    CHECK(nspent < MAX_SPENT);
    spent[nspent++] = g;
  }
}

/* ---- the checks ---- */

static void describe_into(char *out) {
  size_t n = storectx_describe(out, DESCRIBE_MAX);
  CHECK(n < DESCRIBE_MAX);
}

static void out_of_order(storectx_status st, const char *call, const char *kind, const ent *e,
                         size_t at, const model *m) {
  refusals++;
  CHECK_STATUS(st, STORECTX_ERR_OUT_OF_ORDER);
  char want[256];
  snprintf(want, sizeof want, "%s: %s for store %llu is at depth %zu, top is store %llu at depth %zu",
           call, kind, (unsigned long long)e->id, at + 1,
           (unsigned long long)m->at[m->depth - 1]->id, m->depth);
  if (strcmp(storectx_last_error(), want) != 0) {
    fprintf(stderr, "FAULT: got  \"%s\"\n       want \"%s\"\n", storectx_last_error(), want);
    exit(1);
  }
  CHECK(storectx_depth() == m->depth);
  CHECK(storectx_active_store() == m->at[m->depth - 1]->id);
}

static void stale_guard(uint64_t raw, const model *m) {
  refusals++;
  storectx_install_guard g = {raw};
  storectx_status st = storectx_uninstall(g);
  if (st != STORECTX_ERR_STALE_HANDLE) {
    fprintf(stderr, "FAULT: uninstall(%#llx) at depth %zu answered %s: %s\n",
            (unsigned long long)raw, m->depth, storectx_status_str(st), storectx_last_error());
    exit(1);
  }
  char want[128];
  snprintf(want, sizeof want,
           "uninstall: install guard names no entry of its kind on this thread's stack "
           "(depth %zu): ",
           m->depth);
  CHECK(strncmp(storectx_last_error(), want, strlen(want)) == 0);
  CHECK(!storectx_install_guard_installed(g));
  CHECK(storectx_depth() == m->depth);
}

/* Whether `raw` is a guard (pushed or no-op) of an entry on `m`. */
static bool genuine(const model *m, uint64_t raw) {
  for (size_t i = 0; i < m->depth; i++) {
    if (m->at[i]->g.raw == raw) return true;
    if (m->at[i]->has_noop && m->at[i]->noop.raw == raw) return true;
  }
  return false;
}

static void forge_near(const model *m, uint64_t raw) {
  uint64_t near[80];
  size_t n = 0;
  for (int64_t d = 1; d <= 32; d++) {
    near[n++] = raw + (uint64_t)d;
    near[n++] = raw - (uint64_t)d;
  }
  near[n++] = raw + 64;
  near[n++] = raw - 64;
  for (uint64_t t = 0; t < 8; t++) near[n++] = (raw & ~UINT64_C(7)) | t;
  for (size_t i = 0; i < n; i++) {
    if (!genuine(m, near[i])) stale_guard(near[i], m);
  }
}

/* Everything about the handles of `m` (this thread's stack) and of the
 * entries `away` (elsewhere), on the calling thread. */
static void check_all(const model *m, ent *const *away, size_t naway) {
  char before[DESCRIBE_MAX], after[DESCRIBE_MAX];
  describe_into(before);
  CHECK(storectx_depth() == m->depth);
  for (size_t i = 0; i + 1 < m->depth; i++) {
    const ent *e = m->at[i];
    CHECK(storectx_install_guard_installed(e->g));
    out_of_order(storectx_uninstall(e->g), "uninstall", "install guard", e, i, m);
    if (e->has_noop)
      out_of_order(storectx_uninstall(e->noop), "uninstall", "install guard", e, i, m);
    if (e->has_b) out_of_order(storectx_borrow_release(e->b), "borrow_release", "borrow", e, i, m);
    if (e->has_p) out_of_order(storectx_unpause(e->p), "unpause", "pause guard", e, i, m);
    forge_near(m, e->g.raw);
  }
  if (m->depth > 0) {
    const ent *top = m->at[m->depth - 1];
    CHECK(storectx_install_guard_installed(top->g));
    if (top->has_b) {
      CHECK_STATUS(storectx_uninstall(top->g), STORECTX_ERR_STILL_BORROWED);
      CHECK(strncmp(storectx_last_error(), "uninstall: store ", 17) == 0);
    }
    if (top->has_noop) {
      CHECK_OK(storectx_uninstall(top->noop));
      CHECK(!storectx_install_guard_installed(top->noop));
    }
    forge_near(m, top->g.raw);
  }
  for (size_t i = 0; i < naway; i++) {
    const ent *e = away[i];
    stale_guard(e->g.raw, m);
    if (e->has_noop) stale_guard(e->noop.raw, m);
    if (e->has_b) CHECK_STATUS(storectx_borrow_release(e->b), STORECTX_ERR_STALE_HANDLE);
    if (e->has_p) CHECK_STATUS(storectx_unpause(e->p), STORECTX_ERR_STALE_HANDLE);
  }
  for (size_t i = 0; i < nspent; i++) stale_guard(spent[i].raw, m);
  describe_into(after);
  if (strcmp(before, after) != 0) {
    fprintf(stderr, "FAULT: the stack changed:\n%s\n---\n%s\n", before, after);
    exit(1);
  }
}

/* ---- the threads' jobs ---- */

typedef struct {
  model *m;
  ent *own;
  storectx_suspended *seg;
  ent *away[MAX_STACK];
  size_t naway;
} job;

static void own_entries(void *p) {
  job *j = p;
  for (int i = 0; i < OWN; i++) install_sync(j->m, &j->own[i], false, i == 1, i == 2);
  take_numbers(3);
}

static void resume_and_check(void *p) {
  job *j = p;
  model *m = j->m;
  CHECK(m->depth == OWN);
  /* Before the resume the segment's entries are not this thread's. */
  check_all(m, j->away, j->naway);
  size_t base = 99;
  CHECK_OK(storectx_resume(j->seg, &base));
  CHECK(base == OWN);
  size_t moved = j->naway;
  for (size_t i = 0; i < moved; i++) push_model(m, j->away[i]);
  /* The segment's entries are named at their depths among this thread's,
   * with this thread's numbers below and above them. */
  check_all(m, NULL, 0);
  take_numbers(1);
  install_sync(m, &j->own[OWN], false, true, false);
  take_numbers(2);
  install_sync(m, &j->own[OWN + 1], false, false, false);
  check_all(m, stack_a.at, stack_a.depth);
  for (int k = OWN + 1; k >= OWN; k--) {
    ent *e = &j->own[k];
    if (e->has_b) CHECK_OK(storectx_borrow_release(e->b));
    CHECK_OK(storectx_uninstall(e->g));
    m->depth--;
    spent[nspent++] = e->g;
  }
  CHECK_OK(storectx_suspend(OWN, &j->seg));
  m->depth = OWN;
  check_all(m, j->away, j->naway);
}

/* ---- unwinding ---- */

static void unwind_top(model *m) {
  ent *e = m->at[m->depth - 1];
  if (e->has_p) CHECK_OK(storectx_unpause(e->p));
  if (e->has_b) CHECK_OK(storectx_borrow_release(e->b));
  if (e->has_noop) CHECK_OK(storectx_uninstall(e->noop));
  CHECK_OK(storectx_uninstall(e->g));
  m->depth--;
  CHECK(storectx_depth() == m->depth);
  CHECK_STATUS(storectx_uninstall(e->g), STORECTX_ERR_STALE_HANDLE);
  if (e->has_noop) CHECK_STATUS(storectx_uninstall(e->noop), STORECTX_ERR_STALE_HANDLE);
  if (e->has_p) CHECK_STATUS(storectx_unpause(e->p), STORECTX_ERR_STALE_HANDLE);
  if (e->has_b) CHECK_STATUS(storectx_borrow_release(e->b), STORECTX_ERR_STALE_HANDLE);
  if (e->async) {
    storectx_write_guard *w = NULL;
    CHECK_OK(storectx_async_store_try_write(e->async, &w));
    storectx_write_guard_release(w);
    storectx_async_store_release(e->async);
    e->async = NULL;
  }
}

static void unwind_job(void *p) {
  job *j = p;
  while (j->m->depth > 0) unwind_top(j->m);
}

int main(void) {
  worker old_w, new_w;
  start(&old_w);
  start(&new_w);
  /* A thread numbered before this one's block, this one, one after. */
  job old_j = {.m = &stack_old, .own = own_old};
  run_on(&old_w, own_entries, &old_j);
  install_sync(&stack_a, &entries[0], false, false, false);
  job new_j = {.m = &stack_new, .own = own_new};
  run_on(&new_w, own_entries, &new_j);

  for (int i = 1; i < N; i++) {
    if (i % 4 == 0) take_numbers(1);
    if (i % 7 == 0) take_numbers(2);
    if (i % 6 == 3) {
      install_async(&stack_a, &entries[i], i % 12 == 3);
    } else {
      bool nested = i % 5 == 2 && stack_a.at[stack_a.depth - 1]->async == NULL;
      install_sync(&stack_a, &entries[i], nested, i % 3 == 0, i % 3 == 1);
    }
  }
  check_all(&stack_a, NULL, 0);

  const size_t bases[] = {0, 1, 5, 13, 23, N};
  for (size_t r = 0; r < sizeof bases / sizeof bases[0]; r++) {
    size_t base = bases[r];
    job *j = r % 2 ? &old_j : &new_j;
    worker *w = r % 2 ? &old_w : &new_w;
    CHECK_OK(storectx_suspend(base, &j->seg));
    j->naway = 0;
    for (size_t i = base; i < stack_a.depth; i++) j->away[j->naway++] = stack_a.at[i];
    stack_a.depth = base;
    check_all(&stack_a, j->away, j->naway);
    run_on(w, resume_and_check, j);
    size_t at = 99;
    CHECK_OK(storectx_resume(j->seg, &at));
    CHECK(at == base);
    for (size_t i = 0; i < j->naway; i++) push_model(&stack_a, j->away[i]);
    /* One entry of this thread's on top, numbered after every other. */
    install_sync(&stack_a, &extra, false, false, false);
    check_all(&stack_a, j->m->at, j->m->depth);
    CHECK_OK(storectx_uninstall(extra.g));
    stack_a.depth--;
    spent[nspent++] = extra.g;
    check_all(&stack_a, j->m->at, j->m->depth);
  }

  while (stack_a.depth > 0) unwind_top(&stack_a);
  CHECK(storectx_is_empty());
  run_on(&old_w, unwind_job, &old_j);
  run_on(&new_w, unwind_job, &new_j);
  stop(&old_w);
  stop(&new_w);
  printf("%ld refusals, each as expected\n", refusals);
  return 0;
}
