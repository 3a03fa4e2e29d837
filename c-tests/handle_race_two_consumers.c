/* handle_race_two_consumers: two threads consume the SAME handle at once,
 * as a buggy host that hands a write guard or a segment to two workers
 * would: for a write guard, one thread install_async's it while another
 * releases it (or both release it, or both install it); for a segment, two
 * threads resume it at once (or one resumes while another frees it).
 * Exactly one consume succeeds, the other answers STALE_HANDLE (release and
 * free, which return nothing, leave it alone), the lock is never lost nor
 * held by nobody: after each round the winner's entry is uninstalled (or
 * its segment's entry) and the store's lock is free again.
 * STRESS_SCALE shrinks the loop (valgrind, qemu). */
/* cprog: timeout 120 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "check.h"

struct store { int value; };

enum op { INSTALL, RELEASE, RESUME, FREE };

struct racer {
  enum op op;
  pthread_barrier_t *go;
  storectx_write_guard *w;
  storectx_suspended *seg;
  storectx_status got;
  int won;
};

static struct store st = {1};
static storectx_async_store *shared;

static void *race(void *arg) {
  struct racer *r = arg;
  pthread_barrier_wait(r->go);
  switch (r->op) {
  case INSTALL: {
    storectx_install_guard g;
    r->got = storectx_install_async(r->w, &g);
    r->won = r->got == STORECTX_OK;
    if (r->won) CHECK_OK(storectx_uninstall(g));
    break;
  }
  case RELEASE:
    storectx_write_guard_release(r->w);
    r->got = STORECTX_OK;
    break;
  case RESUME: {
    size_t base = 99;
    r->got = storectx_resume(r->seg, &base);
    r->won = r->got == STORECTX_OK;
    if (r->won) {
      CHECK(base == 0 && storectx_depth() == 1);
      /* the segment's one entry is an async entry: suspend it again and
       * free it, which releases the lock */
      storectx_suspended *again = NULL;
      CHECK_OK(storectx_suspend(0, &again));
      storectx_suspended_free(again);
    }
    break;
  }
  case FREE:
    storectx_suspended_free(r->seg);
    r->got = STORECTX_OK;
    break;
  }
  return NULL;
}

static int scale(void) {
  const char *s = getenv("STRESS_SCALE");
  int n = s ? atoi(s) : 1;
  return n > 0 ? n : 1;
}

static void round_of(enum op a, enum op b) {
  pthread_barrier_t go;
  pthread_barrier_init(&go, NULL, 2);
  struct racer r[2] = {{a, &go, NULL, NULL, -1, 0}, {b, &go, NULL, NULL, -1, 0}};
  storectx_write_guard *w = NULL;
  CHECK_OK(storectx_async_store_try_write(shared, &w));
  if (a == RESUME || a == FREE || b == RESUME || b == FREE) {
    storectx_install_guard g;
    CHECK_OK(storectx_install_async(w, &g));
    storectx_suspended *seg = NULL;
    CHECK_OK(storectx_suspend(0, &seg));
    r[0].seg = r[1].seg = seg;
  } else {
    r[0].w = r[1].w = w;
  }
  pthread_t t[2];
  for (int k = 0; k < 2; k++) CHECK(pthread_create(&t[k], NULL, race, &r[k]) == 0);
  for (int k = 0; k < 2; k++) CHECK(pthread_join(t[k], NULL) == 0);
  pthread_barrier_destroy(&go);
  int wins = r[0].won + r[1].won;
  int consumers = (a == INSTALL || a == RESUME) + (b == INSTALL || b == RESUME);
  for (int k = 0; k < 2; k++) {
    enum op op = r[k].op;
    if ((op == INSTALL || op == RESUME) && !r[k].won && r[k].got != STORECTX_ERR_STALE_HANDLE) {
      fprintf(stderr, "op %d lost with %s, not STALE_HANDLE\n", op, storectx_status_str(r[k].got));
      exit(1);
    }
  }
  if (consumers == 2 && wins != 1) {
    fprintf(stderr, "two consumers of one handle: %d won\n", wins);
    exit(1);
  }
  /* Whoever won, the lock must be free now. */
  storectx_write_guard *again = NULL;
  storectx_status got = storectx_async_store_write(shared, 2000000000ull, &again);
  if (got != STORECTX_OK) {
    fprintf(stderr, "ops %d/%d: the lock stayed held (%s)\n", a, b, storectx_status_str(got));
    exit(1);
  }
  storectx_write_guard_release(again);
}

int main(void) {
  CHECK_OK(storectx_async_store_new(storectx_store_id_new(), &st, &shared));
  int rounds = 2000 / scale();
  const enum op pairs[][2] = {
      {INSTALL, RELEASE}, {RELEASE, RELEASE}, {INSTALL, INSTALL},
      {RESUME, RESUME},   {RESUME, FREE},     {FREE, FREE},
  };
  for (int i = 0; i < rounds; i++)
    for (size_t p = 0; p < sizeof pairs / sizeof pairs[0]; p++) round_of(pairs[p][0], pairs[p][1]);
  CHECK(storectx_is_empty());
  storectx_async_store_release(shared);
  puts("two consumers of one handle: ok");
  return 0;
}
