/* stress_migration: 2 threads x 1,000 coroutines (explicit state machines)
 * migrate at random between the threads for a bounded number of steps.
 * Between steps a coroutine's entries live in a suspended segment; each step
 * resumes the segment on whichever thread runs it, advances one phase and
 * suspends again. Coroutines lock one of the shared async stores (about one
 * per 4 coroutines, so they contend), keep it across several steps (and
 * threads) with a nested sync call inside, and do read / write-back
 * increments of a counter in it. After every step: exactly
 * one holder of each store it holds (an atomic holder count inside the
 * store), the right stores at the right depths; at the end: no update lost,
 * every lock free. Fixed seed. Exits non-zero on any violation.
 * STRESS_SCALE=N (default 1) shrinks the run about N times, e.g. 10 under
 * valgrind (a fraction such as 0.1 means the same). */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "check.h"

#define THREADS 2
#define COROS_PER_THREAD 1000
#define STORES 512              /* at most; about one per 4 coroutines */
#define STEPS_PER_CORO 16
#define SEED 0x9e3779b97f4a7c15ull

struct store {
  atomic_int holders;       /* coroutines that think they hold the lock */
  long counter;             /* protected by the store's write lock only */
  atomic_long committed;    /* increments made, for the final comparison */
};

enum phase {
  IDLE,       /* no entries */
  LOCKED,     /* [S async, borrowed] */
  NESTED,     /* [S async (borrow paused), P sync (borrowed)] */
  UPDATED,    /* [S async, borrowed], counter written back */
};

static const size_t entries_in[] = {0, 1, 2, 1};

struct coro {
  enum phase phase;
  int steps, target;
  int last_thread;
  int migrations;
  int store;                    /* index of the locked store */
  long local;                   /* counter value read before the yield */
  storectx_suspended *seg;
  storectx_install_guard ig, gp;
  storectx_borrow b, bp;
  storectx_pause_guard pg;
  storectx_store_id private_id;
  struct store private_store;
};

static struct store stores[STORES];
static storectx_store_id store_ids[STORES];
static storectx_async_store *asyncs[STORES];
static struct coro *coros;
static int n_coros, steps_per_coro, n_stores;

/* Per-thread run queues; a coroutine goes to a random one after each step. */
struct inbox {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  struct coro **items;
  int len;
};
static struct inbox inboxes[THREADS];
static atomic_int remaining;
static atomic_long total_steps, total_busy;

static uint64_t next_rand(uint64_t *s) {
  uint64_t x = *s;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return *s = x;
}

static void push(int to, struct coro *c) {
  struct inbox *in = &inboxes[to];
  pthread_mutex_lock(&in->mu);
  in->items[in->len++] = c;
  pthread_cond_signal(&in->cv);
  pthread_mutex_unlock(&in->mu);
}

/* A random coroutine from this thread's inbox, or NULL when all are done. */
static struct coro *pop(int me, uint64_t *rng) {
  struct inbox *in = &inboxes[me];
  pthread_mutex_lock(&in->mu);
  while (in->len == 0) {
    if (atomic_load(&remaining) == 0) {
      pthread_mutex_unlock(&in->mu);
      return NULL;
    }
    /* Woken by a push, or by the broadcast when the last one finishes
     * (remaining drops before that broadcast takes this mutex). */
    pthread_cond_wait(&in->cv, &in->mu);
  }
  int i = (int)(next_rand(rng) % (uint64_t)in->len);
  struct coro *c = in->items[i];
  in->items[i] = in->items[--in->len];
  pthread_mutex_unlock(&in->mu);
  return c;
}

/* The lock c holds has exactly one holder: c. */
static void check_sole_holder(struct coro *c) {
  CHECK(atomic_load(&stores[c->store].holders) == 1);
}

/* One phase of c's work on the calling thread. Returns 1 when c finished. */
static int advance(struct coro *c, uint64_t *rng) {
  struct store *s = &stores[c->store];
  storectx_store_id sid = store_ids[c->store];
  void *p = NULL;

  switch (c->phase) {
  case IDLE: {
    if (c->steps >= c->target) return 1;
    c->store = (int)(next_rand(rng) % (uint64_t)n_stores);
    s = &stores[c->store];
    sid = store_ids[c->store];
    storectx_write_guard *g = NULL;
    storectx_status st;
    if (next_rand(rng) & 1) {
      st = storectx_async_store_try_write(asyncs[c->store], &g);
      if (st != STORECTX_OK) CHECK_STATUS(st, STORECTX_ERR_BUSY);
    } else {
      st = storectx_async_store_write(asyncs[c->store], 0, &g);
      if (st != STORECTX_OK) CHECK_STATUS(st, STORECTX_ERR_TIMED_OUT);
    }
    if (st != STORECTX_OK) {
      CHECK(g == NULL);
      atomic_fetch_add(&total_busy, 1);
      return 0;
    }
    CHECK(atomic_fetch_add(&s->holders, 1) == 0);
    CHECK_OK(storectx_install_async(g, &c->ig));
    CHECK_OK(storectx_get_current(sid, &p, &c->b));
    CHECK(p == s);
    c->local = s->counter;
    c->phase = LOCKED;
    return 0;
  }
  case LOCKED:
    check_sole_holder(c);
    CHECK(storectx_is_active(sid));
    CHECK_OK(storectx_get_current_transient(sid, &p));
    CHECK(p == s);
    CHECK_OK(storectx_pause(sid, &c->pg));
    CHECK_OK(storectx_install(c->private_id, &c->private_store, &c->gp));
    CHECK_OK(storectx_get_current(c->private_id, &p, &c->bp));
    CHECK(p == &c->private_store);
    c->phase = NESTED;
    return 0;
  case NESTED:
    check_sole_holder(c);
    CHECK(storectx_is_active(c->private_id));
    CHECK(storectx_is_paused(sid));
    CHECK_STATUS(storectx_get_current_transient(sid, &p), STORECTX_ERR_PAUSED);
    CHECK_OK(storectx_borrow_release(c->bp));
    CHECK_OK(storectx_uninstall(c->gp));
    CHECK_OK(storectx_unpause(c->pg));
    CHECK(s->counter == c->local);          /* nobody else wrote meanwhile */
    s->counter = c->local + 1;
    atomic_fetch_add(&s->committed, 1);
    c->phase = UPDATED;
    return 0;
  case UPDATED:
    check_sole_holder(c);
    CHECK_STATUS(storectx_uninstall(c->ig), STORECTX_ERR_STILL_BORROWED);
    CHECK_OK(storectx_borrow_release(c->b));
    CHECK(atomic_fetch_sub(&s->holders, 1) == 1);
    CHECK_OK(storectx_uninstall(c->ig));    /* unlocks S */
    c->phase = IDLE;
    return 0;
  }
  abort();
}

/* Resume c's segment here, advance it one phase, suspend it again. */
static int step(struct coro *c, int me, uint64_t *rng) {
  size_t depth0 = storectx_depth();
  CHECK(depth0 == 1);                        /* the worker's own entry */
  if (c->last_thread != me && c->last_thread >= 0) c->migrations++;
  c->last_thread = me;
  if (c->seg) {
    CHECK(storectx_suspended_len(c->seg) == entries_in[c->phase]);
    size_t base = 12345;
    CHECK_OK(storectx_resume(c->seg, &base));
    CHECK(base == depth0);
    c->seg = NULL;
  }
  CHECK(storectx_depth() == depth0 + entries_in[c->phase]);
  int finished = advance(c, rng);
  c->steps++;
  CHECK(storectx_depth() == depth0 + entries_in[c->phase]);
  if (c->phase != IDLE) check_sole_holder(c);
  if (finished) {
    CHECK(c->phase == IDLE);
    return 1;
  }
  storectx_suspended *seg = NULL;
  CHECK_OK(storectx_suspend(depth0, &seg));
  CHECK(storectx_suspended_len(seg) == entries_in[c->phase]);
  CHECK(storectx_depth() == depth0);
  c->seg = seg;
  return 0;
}

static void *worker(void *arg) {
  int me = (int)(intptr_t)arg;
  uint64_t rng = SEED ^ (0x1234567ull * (uint64_t)(me + 1));
  struct store own = {0};
  storectx_store_id own_id = storectx_store_id_new();
  storectx_install_guard g;
  CHECK_OK(storectx_install(own_id, &own, &g));

  struct coro *c;
  while ((c = pop(me, &rng)) != NULL) {
    if (step(c, me, &rng)) {
      if (atomic_fetch_sub(&remaining, 1) == 1) {
        for (int i = 0; i < THREADS; i++) {
          pthread_mutex_lock(&inboxes[i].mu);
          pthread_cond_broadcast(&inboxes[i].cv);
          pthread_mutex_unlock(&inboxes[i].mu);
        }
      }
    } else {
      CHECK(storectx_is_active(own_id));
      push((int)(next_rand(&rng) % THREADS), c);
    }
    atomic_fetch_add(&total_steps, 1);
  }
  CHECK(storectx_depth() == 1 && storectx_is_active(own_id));
  CHECK_OK(storectx_uninstall(g));
  CHECK(storectx_is_empty());
  return NULL;
}

/* The shrink factor: >= 1; "10" and "0.1" both mean ten times smaller. */
static double shrink_from_env(void) {
  const char *e = getenv("STRESS_SCALE");
  if (!e || !*e) return 1.0;
  double v = strtod(e, NULL);
  if (!(v > 0.0)) return 1.0;
  return v < 1.0 ? 1.0 / v : v;
}

int main(void) {
  /* Shrink the steps first (down to 8), then the number of coroutines. */
  double shrink = shrink_from_env();
  steps_per_coro = (int)(STEPS_PER_CORO / shrink + 0.5);
  if (steps_per_coro < 8) steps_per_coro = 8;
  double work = (double)COROS_PER_THREAD * STEPS_PER_CORO / shrink;
  int per_thread = (int)(work / steps_per_coro + 0.5);
  if (per_thread > COROS_PER_THREAD) per_thread = COROS_PER_THREAD;
  if (per_thread < 50) per_thread = 50;
  n_coros = THREADS * per_thread;
  /* Keep contention alike at every size. */
  n_stores = n_coros / 4 < STORES ? n_coros / 4 : STORES;

  for (int k = 0; k < n_stores; k++) {
    store_ids[k] = storectx_store_id_new();
    CHECK_OK(storectx_async_store_new(store_ids[k], &stores[k], &asyncs[k]));
  }
  coros = calloc((size_t)n_coros, sizeof *coros);
  CHECK(coros != NULL);
  for (int t = 0; t < THREADS; t++) {
    CHECK(pthread_mutex_init(&inboxes[t].mu, NULL) == 0);
    CHECK(pthread_cond_init(&inboxes[t].cv, NULL) == 0);
    inboxes[t].items = calloc((size_t)n_coros, sizeof(struct coro *));
    CHECK(inboxes[t].items != NULL);
  }
  for (int i = 0; i < n_coros; i++) {
    struct coro *c = &coros[i];
    c->phase = IDLE;
    c->target = steps_per_coro;
    c->last_thread = -1;
    c->private_id = storectx_store_id_new();
    inboxes[i % THREADS].items[inboxes[i % THREADS].len++] = c;
  }
  atomic_store(&remaining, n_coros);

  pthread_t t[THREADS];
  for (intptr_t i = 0; i < THREADS; i++)
    CHECK(pthread_create(&t[i], NULL, worker, (void *)i) == 0);
  for (int i = 0; i < THREADS; i++) CHECK(pthread_join(t[i], NULL) == 0);

  long commits = 0, migrations = 0;
  for (int i = 0; i < n_coros; i++) {
    CHECK(coros[i].phase == IDLE && coros[i].seg == NULL);
    CHECK(coros[i].steps >= steps_per_coro && coros[i].steps <= steps_per_coro + 4);
    migrations += coros[i].migrations;
  }
  for (int k = 0; k < n_stores; k++) {
    storectx_write_guard *g = NULL;
    CHECK_OK(storectx_async_store_try_write(asyncs[k], &g));   /* all free */
    CHECK(atomic_load(&stores[k].holders) == 0);
    CHECK(stores[k].counter == atomic_load(&stores[k].committed));
    commits += stores[k].counter;
    storectx_write_guard_release(g);
    storectx_async_store_release(asyncs[k]);
  }
  long steps = atomic_load(&total_steps);
  CHECK(commits > 0);
  CHECK(migrations > steps / 8);               /* they really moved */
  CHECK(storectx_is_empty());
  for (int t2 = 0; t2 < THREADS; t2++) {
    free(inboxes[t2].items);
    pthread_mutex_destroy(&inboxes[t2].mu);
    pthread_cond_destroy(&inboxes[t2].cv);
  }
  free(coros);
  printf("stress_migration: ok (%d coroutines, %ld steps, %ld updates, %ld busy, %ld migrations)\n",
         n_coros, steps, commits, atomic_load(&total_busy), migrations);
  return 0;
}
