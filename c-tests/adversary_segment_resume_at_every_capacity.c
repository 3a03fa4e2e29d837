/* Behaviour: storectx_resume writes a segment's entries into a stack at
 * any depth relative to its entry vector's capacity (the bottom entry goes
 * straight into the spare capacity; at exactly the capacity the vector and
 * the store set grow first) and the entries work there as they did where
 * they were suspended; a resume refused for a store already on the stack
 * changes nothing, the segment keeping its write locks. Four segment shapes
 * (one async entry alone, the inline case; one sync entry with a pause;
 * four entries with a borrow, an async entry, a nested run and two nested
 * pauses; three with two async entries, borrows and pauses) are each
 * resumed on a new thread whose stack holds 0 to 45 entries (crossing the
 * capacities 16, 20, 24, 28, 32, 40). On each:
 * - first with the segment's top store, then its bottom store, installed
 *   on top: ALREADY_ON_STACK, base_depth unwritten, the stack and the
 *   segment unchanged, its async stores still locked, and none of its
 *   stores left in the thread's set (each installs on top and uninstalls);
 * - then resumed: base_depth is the old depth, the entries below keep their
 *   guards (and the top one its two nested pauses, unwound last), the resumed ones are on top with their guards, borrows and
 *   pauses; at some depths main checks meanwhile that their guards, pauses
 *   and borrows are stale on main (whose stack holds an entry) and their
 *   async stores locked;
 * - 40 more entries pushed and popped above them (growth after a resume);
 * - unwound in order: pauses innermost first (an outer one first is
 *   refused), borrows, guards; each async store free once its entry is
 *   uninstalled; then the entries below. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>

#include "check.h"

#define MAXD 45
#define ITEMS 4

struct item {
  int async; /* which async store + 1, or 0 for a sync entry */
  int nested; /* the same store as the item below */
  int borrow;
  int pauses; /* 0, 1 or 2 */
  storectx_store_id id;
  storectx_install_guard g;
  storectx_borrow b;
  storectx_pause_guard p[2];
};

struct shape {
  int n;
  struct item it[ITEMS];
};

static const struct shape shapes[] = {
    {1, {{.async = 1}}},
    {1, {{.pauses = 1}}},
    {4, {{.borrow = 1}, {.async = 1}, {0}, {.nested = 1, .pauses = 2}}},
    {3, {{.async = 1, .borrow = 1, .pauses = 1}, {.borrow = 1}, {.async = 2, .pauses = 2}}},
};

static int mem[64];
static storectx_async_store *as[2];
static struct shape cur;
static storectx_suspended *seg;
static int depth_now;
static pthread_barrier_t meet;
static int main_checks;

static void build(const struct shape *sh) {
  cur = *sh;
  for (int i = 0; i < cur.n; i++) {
    struct item *x = &cur.it[i];
    if (x->async) {
      storectx_write_guard *w = NULL;
      CHECK_OK(storectx_async_store_try_write(as[x->async - 1], &w));
      x->id = storectx_async_store_id(as[x->async - 1]);
      CHECK_OK(storectx_install_async(w, &x->g));
    } else {
      x->id = x->nested ? cur.it[i - 1].id : storectx_store_id_new();
      CHECK_OK(storectx_install(x->id, &mem[x->nested ? i - 1 : i], &x->g));
    }
    if (x->borrow) {
      void *store = NULL;
      CHECK_OK(storectx_get_current(x->id, &store, &x->b));
    }
    for (int k = 0; k < x->pauses; k++) CHECK_OK(storectx_pause(x->id, &x->p[k]));
  }
  CHECK_OK(storectx_suspend(0, &seg));
  CHECK(storectx_is_empty() && storectx_suspended_len(seg) == (size_t)cur.n);
}

static void async_locked(int locked) {
  for (int i = 0; i < cur.n; i++) {
    if (!cur.it[i].async) continue;
    storectx_write_guard *w = (storectx_write_guard *)0x77;
    storectx_status st = storectx_async_store_try_write(as[cur.it[i].async - 1], &w);
    if (locked) {
      CHECK_STATUS(st, STORECTX_ERR_BUSY);
      CHECK(w == (storectx_write_guard *)0x77);
    } else {
      CHECK_OK(st);
      storectx_write_guard_release(w);
    }
  }
}

/* A refused resume: store `id` on top of this thread's stack. */
static void refused_with(storectx_store_id id) {
  size_t d = storectx_depth();
  storectx_install_guard g;
  CHECK_OK(storectx_install(id, &mem[40], &g));
  size_t base = 99;
  CHECK_STATUS(storectx_resume(seg, &base), STORECTX_ERR_ALREADY_ON_STACK);
  CHECK(base == 99 && storectx_depth() == d + 1 && storectx_active_store() == id);
  CHECK(storectx_suspended_len(seg) == (size_t)cur.n);
  CHECK_OK(storectx_uninstall(g));
  async_locked(1);
  for (int i = 0; i < cur.n; i++) {
    CHECK(!storectx_is_active(cur.it[i].id) && !storectx_is_paused(cur.it[i].id));
    CHECK_OK(storectx_install(cur.it[i].id, &mem[41], &g));
    CHECK_OK(storectx_uninstall(g));
  }
  CHECK(storectx_depth() == d);
}

static void *resumer(void *arg) {
  int d = (int)(intptr_t)arg;
  storectx_install_guard below[MAXD];
  storectx_store_id below_id[MAXD];
  for (int i = 0; i < d; i++) {
    below_id[i] = storectx_store_id_new();
    CHECK_OK(storectx_install(below_id[i], &mem[50], &below[i]));
  }
  /* The top entry below keeps two nested pauses (a record in the vector
   * before the segment's). */
  storectx_pause_guard bp[2];
  for (int k = 0; k < 2 && d > 0; k++) CHECK_OK(storectx_pause(below_id[d - 1], &bp[k]));
  refused_with(cur.it[cur.n - 1].id);
  refused_with(cur.it[0].id);

  size_t base = 99;
  CHECK_OK(storectx_resume(seg, &base));
  CHECK(base == (size_t)d && storectx_depth() == (size_t)(d + cur.n));
  CHECK(storectx_suspended_len(seg) == 0);
  CHECK(storectx_active_store() == cur.it[cur.n - 1].id);
  for (int i = 0; i < d; i++) CHECK(storectx_install_guard_installed(below[i]));
  for (int i = 0; i < cur.n; i++) CHECK(storectx_install_guard_installed(cur.it[i].g));
  if (d > 0) CHECK(storectx_is_paused(below_id[d - 1]));
  async_locked(1);
  if (main_checks) {
    pthread_barrier_wait(&meet); /* main checks staleness */
    pthread_barrier_wait(&meet);
  }

  /* Growth above the resumed entries. */
  storectx_install_guard more[40];
  for (int i = 0; i < 40; i++) {
    storectx_store_id id = storectx_store_id_new();
    CHECK_OK(storectx_install(id, &mem[51], &more[i]));
    CHECK(storectx_active_store() == id);
  }
  for (int i = 0; i < cur.n; i++) CHECK(storectx_install_guard_installed(cur.it[i].g));
  for (int i = 39; i >= 0; i--) CHECK_OK(storectx_uninstall(more[i]));

  /* Unwound in order. */
  for (int i = cur.n - 1; i >= 0; i--) {
    struct item *x = &cur.it[i];
    CHECK(storectx_active_store() == x->id);
    if (x->pauses == 2) {
      CHECK(storectx_unpause(x->p[0]) != STORECTX_OK); /* the outer one first */
      CHECK_OK(storectx_unpause(x->p[1]));
      CHECK_OK(storectx_unpause(x->p[0]));
    } else if (x->pauses == 1) {
      CHECK_OK(storectx_unpause(x->p[0]));
    }
    if (x->borrow) {
      CHECK_STATUS(storectx_uninstall(x->g), STORECTX_ERR_STILL_BORROWED);
      CHECK_OK(storectx_borrow_release(x->b));
    }
    if (i > 0) CHECK_STATUS(storectx_uninstall(cur.it[i - 1].g), STORECTX_ERR_OUT_OF_ORDER);
    CHECK_OK(storectx_uninstall(x->g));
    CHECK(!storectx_install_guard_installed(x->g));
    if (x->async) {
      storectx_write_guard *w = NULL;
      CHECK_OK(storectx_async_store_try_write(as[x->async - 1], &w));
      storectx_write_guard_release(w);
    }
  }
  CHECK(storectx_depth() == (size_t)d);
  if (d > 0) {
    CHECK(storectx_unpause(bp[0]) != STORECTX_OK);
    CHECK_OK(storectx_unpause(bp[1]));
    CHECK_OK(storectx_unpause(bp[0]));
  }
  for (int i = d - 1; i >= 0; i--) CHECK_OK(storectx_uninstall(below[i]));
  CHECK(storectx_is_empty());
  return NULL;
}

/* On main while the resumer holds the entries: stale here, locked. */
static void stale_on_main(void) {
  storectx_install_guard g;
  CHECK_OK(storectx_install(storectx_store_id_new(), &mem[60], &g));
  for (int i = 0; i < cur.n; i++) {
    struct item *x = &cur.it[i];
    CHECK(!storectx_install_guard_installed(x->g));
    CHECK(!storectx_is_active(x->id) && !storectx_is_paused(x->id));
    CHECK_STATUS(storectx_uninstall(x->g), STORECTX_ERR_STALE_HANDLE);
    for (int k = 0; k < x->pauses; k++)
      CHECK_STATUS(storectx_unpause(x->p[k]), STORECTX_ERR_STALE_HANDLE);
    if (x->borrow) CHECK_STATUS(storectx_borrow_release(x->b), STORECTX_ERR_STALE_HANDLE);
  }
  async_locked(1);
  size_t base = 99;
  CHECK_STATUS(storectx_resume(seg, &base), STORECTX_ERR_STALE_HANDLE);
  CHECK(base == 99);
  CHECK_OK(storectx_uninstall(g));
}

int main(void) {
  for (int i = 0; i < 2; i++)
    CHECK_OK(storectx_async_store_new(storectx_store_id_new(), &mem[30 + i], &as[i]));
  CHECK(pthread_barrier_init(&meet, NULL, 2) == 0);
  int runs = 0;
  for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
    for (int d = 0; d <= MAXD; d++) {
      build(&shapes[s]);
      depth_now = d;
      main_checks = d % 9 == 0 || d == 16;
      pthread_t t;
      CHECK(pthread_create(&t, NULL, resumer, (void *)(intptr_t)d) == 0);
      if (main_checks) {
        pthread_barrier_wait(&meet);
        stale_on_main();
        pthread_barrier_wait(&meet);
      }
      CHECK(pthread_join(t, NULL) == 0);
      async_locked(0);
      storectx_suspended_free(seg); /* spent: noted, nothing freed */
      runs++;
    }
  }
  for (int i = 0; i < 2; i++) storectx_async_store_release(as[i]);
  printf("resumed %d segments at every capacity boundary: ok\n", runs);
  return 0;
}
