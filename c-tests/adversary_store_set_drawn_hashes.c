/* Behaviour: every answer about a thread's stack stays exact while its store
 * set's hash multiplier changes under it. Each store set table hashes with a
 * multiplier of its own (drawn, or fixed process-wide through the testing
 * hook storectx_testing_set_hash_multiplier; without it, as in the memcheck
 * and ASan runs, every step runs on drawn multipliers), chosen when
 * the table is made: a thread's first install and each growth. Ids paused
 * deeper in the stack must be found again after every such change. Ids of
 * the shapes hosts pass: consecutive ids from storectx_store_id_new, ids
 * near UINT64_MAX, pointers into one malloc'd array, page-aligned
 * addresses, ids with only high bits set, ids crafted to collide under
 * 0.2's Fibonacci multiplier, random ids. Under multiplier 1 (an id homes by
 * its top bits) the small ids all home to the first slot and those near
 * UINT64_MAX to the last, so their probe runs wrap into each other.
 *  1. One thread's stack grows to 1,042 entries (nested entries, async
 *     entries, borrows and pauses) while the hook goes 1 -> 0 (draw) -> 1 -> 2^63
 *     (made odd) -> 2 (made odd): each growth takes the hook's value of the
 *     moment; a change with no growth must change nothing (tables made
 *     before keep their multiplier).
 *  2. A segment of 350 entries moves main -> W1 (table made under the
 *     Fibonacci multiplier) -> W2 (a drawn one) -> main, growing each
 *     stack it lands on, with pauses and borrows ended on the thread it
 *     reached; a resume onto a thread holding one of its stores is refused.
 *  3. fork: parent and child (which keeps the parent's table and draw
 *     counter) both grow the same stack and unwind it.
 *  4. 320 threads (32 under valgrind's STRESS_SCALE=10), 8 at a time, each with a first install and several
 *     growths, while another thread flips the hook among 0, 1, even values
 *     and the Fibonacci multiplier; each leaves some entries at exit.
 *  5. In a pthread_key destructor at thread exit (a key made before the
 *     library's, so it runs after the thread's C++ and Rust thread_local
 *     destructors and before the library's own), a thread's first install
 *     and, on a thread that had 12 entries, growths past 150 entries: each
 *     growth draws, and a draw touching a thread_local with a destructor
 *     panics there ("cannot access a Thread Local Storage value during or
 *     after destruction": seen with such a mutation of fresh_multiplier).
 * A lookup through the process-wide hook instead of the table's own
 * multiplier fails at "hook set to 1, no growth yet" (seen by mutation).
 * After each step every id of the universe is checked: is_active and
 * is_paused agree with the model, a store below the top is refused as
 * PAUSED naming its topmost depth (and every third one's install is
 * refused as PAUSED, the stack unchanged), an absent one as NOT_INSTALLED. */
/* cprog: skip on=windows,darwin,freebsd finds its test-only hash hook with dlsym(RTLD_DEFAULT) (Windows has no dlfcn.h), forks, and relies on the order in which a thread's pthread_key destructors run after its thread_local ones (glibc's and musl's, checked on Linux); the store set is the same Rust code on every platform */
/* cprog: timeout 240 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "store_answers.h"
#include "worker.h"

#define UNIVERSE 1400
#define PER_SHAPE 200
#define MAX_DEPTH 4096

static storectx_store_id universe[UNIVERSE];
static int store_mem;

static set_multiplier_fn set_multiplier;
static void no_hook(uint64_t multiplier) { (void)multiplier; }
/* STRESS_SCALE (valgrind: 10) thins the checks and the crowd by that much. */
static size_t scale = 1;

typedef struct {
  storectx_store_id ids[MAX_DEPTH];
  storectx_install_guard guards[MAX_DEPTH];
  /* A borrow taken and then paused on the entry when it was on top. */
  bool held[MAX_DEPTH];
  storectx_borrow borrows[MAX_DEPTH];
  storectx_pause_guard pauses[MAX_DEPTH];
  size_t depth;
} model;

static size_t topmost(const model *m, storectx_store_id id) {
  for (size_t d = m->depth; d > 0; d--)
    if (m->ids[d - 1] == id) return d;
  return 0;
}

/* The universe sorted, to index each id's depth in O(log n). */
static storectx_store_id sorted[UNIVERSE];

static size_t rank(storectx_store_id id) {
  size_t lo = 0, hi = UNIVERSE;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (sorted[mid] < id) lo = mid + 1;
    else hi = mid;
  }
  CHECK(lo < UNIVERSE && sorted[lo] == id);
  return lo;
}

/* Checks the answers for every id of `ids` against the model. */
static void verify_ids(const model *m, const storectx_store_id *ids, size_t n, const char *when) {
  CHECK(storectx_depth() == m->depth);
  storectx_store_id top = m->depth ? m->ids[m->depth - 1] : 0;
  CHECK(storectx_active_store() == top);
  /* Each universe id's topmost depth (0: absent), by rank. */
  size_t *depth_of = calloc(UNIVERSE, sizeof *depth_of);
  CHECK(depth_of != NULL);
  for (size_t d = 0; d < m->depth; d++) depth_of[rank(m->ids[d])] = d + 1;
  for (size_t i = 0; i < n; i++) {
    storectx_store_id id = ids[i];
    size_t at = depth_of[rank(id)];
    if (check_store_answers(id, at, top, m->depth, when) && i % 3 == 0) {
      /* An install finds it through the insert's own probe: refused. */
      storectx_install_guard g = {0};
      CHECK_STATUS(storectx_install(id, &store_mem, &g), STORECTX_ERR_PAUSED);
      CHECK(storectx_depth() == m->depth && storectx_is_paused(id));
    }
  }
  free(depth_of);
}

static void verify(const model *m, const char *when) { verify_ids(m, universe, UNIVERSE, when); }

static void push(model *m, storectx_store_id id) {
  CHECK(m->depth < MAX_DEPTH);
  CHECK_OK(storectx_install(id, &store_mem, &m->guards[m->depth]));
  m->held[m->depth] = false;
  m->ids[m->depth++] = id;
}

/* An async entry: a store made for `id`, locked, installed (the entry keeps
 * the store alive: this reference is dropped at once). */
static void push_async(model *m, storectx_store_id id) {
  storectx_async_store *s = NULL;
  storectx_write_guard *g = NULL;
  CHECK_OK(storectx_async_store_new(id, &store_mem, &s));
  CHECK_OK(storectx_async_store_try_write(s, &g));
  CHECK_OK(storectx_install_async(g, &m->guards[m->depth]));
  storectx_async_store_release(s);
  m->held[m->depth] = false;
  m->ids[m->depth++] = id;
}

/* A borrow of the top, then a pause of it (the borrow handed back). */
static void borrow_and_pause_top(model *m) {
  size_t d = m->depth - 1;
  void *p = NULL;
  CHECK_OK(storectx_get_current(m->ids[d], &p, &m->borrows[d]));
  CHECK(p == &store_mem);
  CHECK_OK(storectx_pause(m->ids[d], &m->pauses[d]));
  m->held[d] = true;
}

static void pop(model *m) {
  CHECK(m->depth > 0);
  size_t d = m->depth - 1;
  if (m->held[d]) {
    /* The pause gave the borrow back: unpaused, the entry holds it again. */
    CHECK_OK(storectx_unpause(m->pauses[d]));
    CHECK_STATUS(storectx_uninstall(m->guards[d]), STORECTX_ERR_STILL_BORROWED);
    CHECK_OK(storectx_borrow_release(m->borrows[d]));
    m->held[d] = false;
  }
  CHECK_OK(storectx_uninstall(m->guards[d]));
  m->depth--;
}

static void unwind_to(model *m, size_t depth, const char *when) {
  while (m->depth > depth) {
    pop(m);
    if (m->depth % 67 == 0) verify(m, when);
  }
  verify(m, when);
}

/* Pushes universe[from .. from + n) (the stores not on the stack yet), a
 * nested second entry for every seventh, an async entry for every
 * thirteenth, a borrow and a pause on every nineteenth; checks every 10. */
static void push_range(model *m, size_t from, size_t n, const char *when) {
  for (size_t i = from; i < from + n; i++) {
    storectx_store_id id = universe[i % UNIVERSE];
    if (topmost(m, id)) continue;
    if (i % 13 == 5) {
      push_async(m, id);
    } else {
      push(m, id);
      if (i % 7 == 0) push(m, id);
      if (i % 19 == 0) borrow_and_pause_top(m);
    }
    if (m->depth % (10 * scale) == 0 || m->depth < 26) verify(m, when);
  }
  verify(m, when);
}

static uint64_t splitmix(uint64_t *s) {
  uint64_t z = (*s += UINT64_C(0x9E3779B97F4A7C15));
  z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
  z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
  return z ^ (z >> 31);
}

static uint64_t inverse(uint64_t c) {
  uint64_t x = c; /* Newton's iteration: correct bits double each step */
  for (int i = 0; i < 6; i++) x *= 2 - c * x;
  return x;
}

static int by_value(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return (x > y) - (x < y);
}

/* The universe: PER_SHAPE ids of each shape, interleaved so that a stack
 * built in order mixes them. */
static void make_universe(void) {
  struct obj { char bytes[64]; } *array = malloc(PER_SHAPE * sizeof *array);
  char *pages = aligned_alloc(4096, (size_t)PER_SHAPE * 4096);
  CHECK(array != NULL && pages != NULL);
  const uint64_t cinv = inverse(UINT64_C(0x9E3779B97F4A7C15));
  uint64_t seed = 42;
  for (size_t k = 0; k < PER_SHAPE; k++) {
    storectx_store_id *u = &universe[7 * k];
    u[0] = storectx_store_id_new();             /* small, consecutive */
    u[1] = UINT64_MAX - 1 - k;                  /* top bits all set */
    u[2] = (uintptr_t)&array[k];                /* objects of one array */
    u[3] = (uintptr_t)(pages + k * 4096);       /* page-aligned */
    u[4] = (uint64_t)(k + 1) << 44;             /* high bits only */
    u[5] = (uint64_t)(k + 1) * cinv;            /* 0.2's colliders */
    u[6] = splitmix(&seed);                     /* anything */
  }
  /* (array and pages stay allocated: their addresses are the ids) */
  memcpy(sorted, universe, sizeof sorted);
  qsort(sorted, UNIVERSE, sizeof sorted[0], by_value);
  for (size_t i = 0; i < UNIVERSE; i++) {
    CHECK(sorted[i] != 0 && sorted[i] != UINT64_MAX);
    CHECK(i == 0 || sorted[i] != sorted[i - 1]);
  }
}

/* ---- 2. A segment moved between threads of different multipliers. ---- */

static model main_m, w1_m, w2_m;
static struct {
  storectx_suspended *seg;
  model m; /* its entries, bottom first */
} handoff;

/* Moves the entries of `m` above `base` into the handoff. */
static void suspend_into_handoff(model *m, size_t base) {
  CHECK_OK(storectx_suspend(base, &handoff.seg));
  CHECK(storectx_suspended_len(handoff.seg) == m->depth - base);
  handoff.m.depth = 0;
  for (size_t d = base; d < m->depth; d++) {
    size_t k = handoff.m.depth++;
    handoff.m.ids[k] = m->ids[d];
    handoff.m.guards[k] = m->guards[d];
    handoff.m.held[k] = m->held[d];
    handoff.m.borrows[k] = m->borrows[d];
    handoff.m.pauses[k] = m->pauses[d];
  }
  m->depth = base;
}

/* Resumes the handoff on top of `m`. */
static void resume_from_handoff(model *m) {
  size_t base = 12345;
  CHECK_OK(storectx_resume(handoff.seg, &base));
  CHECK(base == m->depth);
  for (size_t k = 0; k < handoff.m.depth; k++) {
    size_t d = m->depth++;
    m->ids[d] = handoff.m.ids[k];
    m->guards[d] = handoff.m.guards[k];
    m->held[d] = handoff.m.held[k];
    m->borrows[d] = handoff.m.borrows[k];
    m->pauses[d] = handoff.m.pauses[k];
  }
  handoff.seg = NULL;
}

/* Own stores of the workers: ranges of the universe the segment never holds. */
#define W1_FROM 1200
#define W2_FROM 1300

static void w1_first(void *arg) {
  (void)arg;
  push_range(&w1_m, W1_FROM, 12, "W1's first stores");
}

static void w2_first(void *arg) {
  (void)arg;
  push_range(&w2_m, W2_FROM, 12, "W2's first stores");
}

/* Takes the segment above its own stores, grows past it, ends the pauses
 * of the segment's top entries it can reach, and hands it on. */
static void take_grow_and_hand_on(model *m, size_t own_from, const char *who) {
  /* A store of the segment on this stack first: the resume is refused. */
  storectx_store_id clash = handoff.m.ids[handoff.m.depth / 2];
  push(m, clash);
  size_t base = 777;
  CHECK_STATUS(storectx_resume(handoff.seg, &base), STORECTX_ERR_ALREADY_ON_STACK);
  CHECK(base == 777 && storectx_suspended_len(handoff.seg) == handoff.m.depth);
  verify(m, who);
  pop(m);
  size_t below = m->depth;
  resume_from_handoff(m);
  verify(m, who);
  /* Grow: 80 more stores of its own (two growths of the set at least). */
  push_range(m, own_from + 12, 80, who);
  unwind_to(m, below + handoff.m.depth, who);
  suspend_into_handoff(m, below);
  verify(m, who);
}

static void w1_turn(void *arg) { take_grow_and_hand_on(&w1_m, W1_FROM, (const char *)arg); }
static void w2_turn(void *arg) { take_grow_and_hand_on(&w2_m, W2_FROM, (const char *)arg); }
static void w1_unwind(void *arg) { unwind_to(&w1_m, 0, (const char *)arg); }
static void w2_unwind(void *arg) { unwind_to(&w2_m, 0, (const char *)arg); }

/* ---- 4. A crowd of threads while the hook flips. ---- */

#define CROWD 320
#define CROWD_AT_ONCE 8
static volatile int flipping;

static void *flipper(void *arg) {
  (void)arg;
  static const uint64_t values[] = {0, 1, 2, UINT64_C(0x9E3779B97F4A7C15), 0,
                                    UINT64_C(0x8000000000000000), 6, 0};
  for (unsigned i = 0; __atomic_load_n(&flipping, __ATOMIC_RELAXED); i++) {
    set_multiplier(values[i % (sizeof values / sizeof values[0])]);
    sched_yield();
  }
  set_multiplier(0);
  return NULL;
}

static void *crowd_thread(void *arg) {
  size_t t = (size_t)(uintptr_t)arg;
  model *mp = calloc(1, sizeof *mp);
  CHECK(mp != NULL);
#define m (*mp)
  /* A window of the universe: its ids plus 20 absent ones are checked. */
  size_t from = (t * 37) % UNIVERSE, n = 40 + t % 50;
  storectx_store_id ids[140];
  for (size_t i = 0; i < n + 20; i++) ids[i] = universe[(from + i) % UNIVERSE];
  for (size_t i = from; i < from + n; i++) {
    storectx_store_id id = universe[i % UNIVERSE];
    push(&m, id);
    if (i % 5 == 0) push(&m, id);
    if (i % 11 == 0) borrow_and_pause_top(&m);
    if (m.depth % 4 == 0) verify_ids(&m, ids, n + 20, "crowd thread");
  }
  verify_ids(&m, ids, n + 20, "crowd thread, all pushed");
  /* Unwind a third; leave the rest (with their borrows) to the exit. */
  size_t keep = m.depth * 2 / 3;
  while (m.depth > keep) pop(&m);
  verify_ids(&m, ids, n + 20, "crowd thread, before exit");
#undef m
  free(mp); /* the model only: the entries stay for the exit to drop */
  return NULL;
}

/* ---- 5. First call in a pthread_key destructor at thread exit. ---- */

static pthread_key_t late_key;
static volatile int late_ok;

static model late_m; /* one such thread at a time */

static void late_destructor(void *value) {
  /* Thread 1 never called the library: its first install is here. Thread
   * 2 has a stack of 12 already; this key, made before the library's
   * own, runs before its state is torn down (and after the thread's C++
   * and Rust thread_local destructors): its growths draw here. */
  CHECK(value == (void *)1 ? late_m.depth == 0 : late_m.depth >= 12);
  CHECK(storectx_depth() == late_m.depth);
  set_multiplier(0);
  push_range(&late_m, 300, 150, "installs in a key destructor");
  unwind_to(&late_m, 70, "key destructor unwinding");
  late_ok = 1; /* the 70 left are dropped by the thread's teardown */
}

static void *late_thread(void *arg) {
  late_m.depth = 0;
  if (arg == (void *)2) push_range(&late_m, 1000, 12, "before exit");
  CHECK(pthread_setspecific(late_key, arg) == 0);
  return NULL;
}

int main(void) {
  /* Before any stateful call: a key of lower index than the library's. */
  CHECK(pthread_key_create(&late_key, late_destructor) == 0);
  set_multiplier = hash_multiplier_hook();
  if (!set_multiplier) {
    /* Without the testing hook (the memcheck and ASan runs): every table
     * draws, and the same steps run on drawn multipliers only. */
    printf("%s: no testing hook: drawn multipliers only\n", "adversary_store_set_drawn_hashes");
    set_multiplier = no_hook;
  }
  const char *scale_env = getenv("STRESS_SCALE");
  if (scale_env && atoi(scale_env) > 1) scale = (size_t)atoi(scale_env);
  make_universe();
  verify(&main_m, "empty");

  /* 1. One stack, the hook changed under it. Multiplier 1 first: every
   * small id homes to slot 0, every id near UINT64_MAX to the last. */
  set_multiplier(1);
  push_range(&main_m, 0, 120, "multiplier 1");
  set_multiplier(0); /* draws from the next growth on */
  verify(&main_m, "hook back to a draw, no growth yet");
  push_range(&main_m, 120, 200, "drawn");
  set_multiplier(1);
  verify(&main_m, "hook set to 1, no growth yet");
  set_multiplier(UINT64_C(0x8000000000000000)); /* even: made odd */
  push_range(&main_m, 320, 300, "multiplier 2^63 + 1");
  set_multiplier(2); /* even: 3 */
  push_range(&main_m, 620, 300, "multiplier 3");
  size_t full = main_m.depth;
  printf("1. main stack: %zu entries\n", full);
  CHECK(full > 1000);
  unwind_to(&main_m, 500, "unwinding part");
  push_range(&main_m, 1500, 200, "pushed again");

  /* 2. The workers' tables: W1 under 0.2's multiplier, W2 drawn. */
  struct worker w1, w2;
  worker_start(&w1);
  worker_start(&w2);
  set_multiplier(UINT64_C(0x9E3779B97F4A7C15));
  run_on(&w1, w1_first, NULL);
  set_multiplier(0);
  run_on(&w2, w2_first, NULL);
  /* Main's own stores up to 150, the segment above (W1/W2's ranges out of
   * it: main's stack holds none of universe[1200..1400) by then). */
  for (size_t d = 0; d < main_m.depth; d++) {
    for (size_t i = W1_FROM; i < UNIVERSE; i++) CHECK(main_m.ids[d] != universe[i]);
  }
  suspend_into_handoff(&main_m, 150);
  verify(&main_m, "main after suspend");
  run_on(&w1, w1_turn, "W1 (Fibonacci table, drawn growths)");
  set_multiplier(1);
  run_on(&w2, w2_turn, "W2 (drawn table, growths under 1)");
  set_multiplier(0);
  size_t base = main_m.depth;
  resume_from_handoff(&main_m);
  verify(&main_m, "main after the round trip");
  /* End the segment's pauses and borrows here, from the top down. */
  unwind_to(&main_m, base + handoff.m.depth / 2, "main unwinding the segment");
  run_on(&w1, w1_unwind, "W1 unwinding");
  run_on(&w2, w2_unwind, "W2 unwinding");
  worker_stop(&w1);
  worker_stop(&w2);
  printf("2. segment of %zu entries moved main -> W1 -> W2 -> main\n", handoff.m.depth);

  /* 3. fork: both sides grow the same stack with the same draw counter. */
  fflush(stdout);
  pid_t child = fork();
  CHECK(child >= 0);
  set_multiplier(child == 0 ? 0 : 1);
  verify(&main_m, child == 0 ? "child after fork" : "parent after fork");
  push_range(&main_m, 1200, 200, child == 0 ? "child growing" : "parent growing");
  push_range(&main_m, 0, UNIVERSE, child == 0 ? "child growing more" : "parent growing more");
  unwind_to(&main_m, 0, child == 0 ? "child unwinding" : "parent unwinding");
  if (child == 0) {
    fflush(stdout);
    _exit(0);
  }
  int status = 0;
  CHECK(waitpid(child, &status, 0) == child);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  puts("3. fork: parent and child grew and unwound");

  /* 4. The crowd. */
  flipping = 1;
  pthread_t flip;
  CHECK(pthread_create(&flip, NULL, flipper, NULL) == 0);
  size_t crowd = CROWD / scale < 2 * CROWD_AT_ONCE ? 2 * CROWD_AT_ONCE : CROWD / scale;
  for (size_t t = 0; t < crowd; t += CROWD_AT_ONCE) {
    pthread_t th[CROWD_AT_ONCE];
    for (size_t k = 0; k < CROWD_AT_ONCE; k++)
      CHECK(pthread_create(&th[k], NULL, crowd_thread, (void *)(uintptr_t)(t + k)) == 0);
    for (size_t k = 0; k < CROWD_AT_ONCE; k++) CHECK(pthread_join(th[k], NULL) == 0);
  }
  __atomic_store_n(&flipping, 0, __ATOMIC_RELAXED);
  CHECK(pthread_join(flip, NULL) == 0);
  printf("4. %zu threads\n", crowd);

  /* 5. Installs in a key destructor: a thread's first, and growths of a
   * thread with a stack. */
  for (uintptr_t i = 1; i <= 2; i++) {
    late_ok = 0;
    pthread_t th;
    CHECK(pthread_create(&th, NULL, late_thread, (void *)i) == 0);
    CHECK(pthread_join(th, NULL) == 0);
    CHECK(late_ok);
  }
  puts("5. installs and growths in a key destructor");

  set_multiplier(0);
  verify(&main_m, "end");
  puts("store sets agree with the model across draws");
  return 0;
}
