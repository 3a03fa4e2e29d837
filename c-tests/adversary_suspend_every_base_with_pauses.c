/* Behaviour: suspend at every base depth of a stack whose entries all carry
 * borrows and nested pauses (some that took a borrow away, some that did
 * not), with nested entries of one store, two async entries and a no-op
 * install guard; the segment moves to another thread, which first refuses
 * it (ALREADY_ON_STACK: it holds one of the segment's stores; nothing
 * changes on either side), then resumes it and unwinds it exactly; or it is
 * resumed back on the first thread after the refusal. At each step: every
 * handle of a suspended entry is STALE_HANDLE where the entry is not;
 * borrow counts (read from describe) are exactly the model's after each
 * resume and each unpause; pauses unwind innermost first (the outer one is
 * OUT_OF_ORDER before); each async entry's lock is held while suspended and
 * free once its entry is uninstalled. Segments are reused through the
 * handle registry (the freed slot is parked and taken again), so every
 * shape (empty, one entry without pauses, one entry with pauses, several)
 * follows every other: nothing of an earlier segment (its pause records,
 * its count of the bottom entry's records) may leak into a later one. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "check.h"

#define ENTRIES 11
#define MAXP 4

typedef struct {
  storectx_store_id id;
  storectx_async_store *async; /* NULL: sync */
  storectx_install_guard guard;
  storectx_borrow borrow;
  unsigned borrows; /* as the model counts them */
  storectx_pause_guard pauses[MAXP];
  bool took[MAXP];
  int npauses;
} entry;

static int mem[8];
static entry stack1[ENTRIES];
static storectx_store_id store_of[ENTRIES];
static storectx_async_store *async_of[ENTRIES];
static storectx_install_guard noop;
static int noop_at = -1;

static unsigned describe_borrows(size_t depth) {
  static char text[1 << 14];
  size_t need = storectx_describe(text, sizeof text);
  CHECK(need < sizeof text);
  char want[32];
  snprintf(want, sizeof want, "depth %zu: ", depth);
  char *line = strstr(text, want);
  CHECK(line != NULL);
  char *b = strstr(line, "borrows ");
  CHECK(b != NULL);
  return (unsigned)strtoul(b + 8, NULL, 10);
}

static void build(void) {
  void *p;
  for (int i = 0; i < ENTRIES; i++) {
    entry *e = &stack1[i];
    memset(e, 0, sizeof *e);
    e->id = store_of[i];
    e->async = async_of[i];
    if (e->async) {
      storectx_write_guard *g;
      CHECK_OK(storectx_async_store_try_write(e->async, &g));
      CHECK_OK(storectx_install_async(g, &e->guard));
    } else {
      CHECK_OK(storectx_install(e->id, &mem[e->id % 8], &e->guard));
    }
    if (e->async && noop_at < 0) {
      CHECK_OK(storectx_install(e->id, &mem[0], &noop));
      CHECK(!storectx_install_guard_installed(noop));
      noop_at = i;
    }
    for (int k = 0; k < i % 3; k++) {
      CHECK_OK(storectx_get_current(e->id, &p, &e->borrow));
      e->borrows++;
    }
    for (int k = 0; k < i % (MAXP + 1); k++) {
      CHECK_OK(storectx_pause(e->id, &e->pauses[k]));
      e->took[k] = e->borrows > 0;
      e->borrows -= e->took[k];
      e->npauses++;
      if (k == 1) { /* a borrow taken while paused */
        CHECK_OK(storectx_get_current(e->id, &p, &e->borrow));
        e->borrows++;
      }
    }
    CHECK(describe_borrows(i + 1) == e->borrows);
  }
}

/* Every handle of entry `e` is stale on this thread. */
static void all_stale(const entry *e) {
  storectx_borrow out;
  CHECK_STATUS(storectx_uninstall(e->guard), STORECTX_ERR_STALE_HANDLE);
  CHECK(!storectx_install_guard_installed(e->guard));
  if (e->borrow.raw) {
    CHECK_STATUS(storectx_borrow_release(e->borrow), STORECTX_ERR_STALE_HANDLE);
    if (!e->async) CHECK_STATUS(storectx_borrow_clone(e->borrow, &out), STORECTX_ERR_STALE_HANDLE);
  }
  for (int k = 0; k < e->npauses; k++)
    CHECK_STATUS(storectx_unpause(e->pauses[k]), STORECTX_ERR_STALE_HANDLE);
}

/* Unwinds entries [from, to) of `s` (on top of this thread's stack, the
 * last on top) exactly. */
static void unwind(entry *s, int from, int to) {
  for (int i = to - 1; i >= from; i--) {
    entry *e = &s[i];
    size_t depth = storectx_depth();
    CHECK(storectx_active_store() == e->id);
    CHECK(describe_borrows(depth) == e->borrows);
    if (i == noop_at) CHECK_OK(storectx_uninstall(noop));
    while (e->npauses > 0) {
      int k = --e->npauses;
      if (k > 0) CHECK_STATUS(storectx_unpause(e->pauses[k - 1]), STORECTX_ERR_OUT_OF_ORDER);
      CHECK_OK(storectx_unpause(e->pauses[k]));
      CHECK_STATUS(storectx_unpause(e->pauses[k]), STORECTX_ERR_STALE_HANDLE);
      e->borrows += e->took[k];
      CHECK(describe_borrows(depth) == e->borrows);
    }
    if (e->borrows) CHECK_STATUS(storectx_uninstall(e->guard), STORECTX_ERR_STILL_BORROWED);
    for (; e->borrows > 0; e->borrows--) CHECK_OK(storectx_borrow_release(e->borrow));
    CHECK_STATUS(storectx_borrow_release(e->borrow),
                 e->borrow.raw ? STORECTX_ERR_NOT_BORROWED : STORECTX_ERR_STALE_HANDLE);
    CHECK_OK(storectx_uninstall(e->guard));
    CHECK(storectx_depth() == depth - 1);
    if (e->async && (i == 0 || s[i - 1].id != e->id)) {
      storectx_write_guard *g;
      CHECK_OK(storectx_async_store_try_write(e->async, &g));
      storectx_write_guard_release(g);
    }
  }
}

static struct {
  storectx_suspended *seg;
  int base;
  bool refuse_only;
  storectx_store_id clash;
} job;

static void *other_thread(void *arg) {
  (void)arg;
  storectx_install_guard g;
  CHECK_OK(storectx_install(job.clash, &mem[1], &g));
  size_t base = 77;
  CHECK_STATUS(storectx_resume(job.seg, &base), STORECTX_ERR_ALREADY_ON_STACK);
  CHECK(base == 77 && storectx_depth() == 1 && storectx_is_active(job.clash));
  for (int i = job.base; i < ENTRIES; i++)
    if (stack1[i].id != job.clash) CHECK(!storectx_is_paused(stack1[i].id));
  if (job.refuse_only) {
    CHECK_OK(storectx_uninstall(g));
    return NULL;
  }
  CHECK_OK(storectx_uninstall(g));
  storectx_install_guard below;
  storectx_store_id mine = storectx_store_id_new();
  CHECK_OK(storectx_install(mine, &mem[2], &below));
  CHECK_OK(storectx_resume(job.seg, &base));
  CHECK(base == 1);
  CHECK_STATUS(storectx_resume(job.seg, &base), STORECTX_ERR_STALE_HANDLE);
  unwind(stack1, job.base, ENTRIES);
  CHECK_OK(storectx_uninstall(below));
  CHECK(storectx_is_empty());
  return NULL;
}

int main(void) {
  /* stores: A B B C(async) D D D E F(async) G G */
  storectx_store_id A = storectx_store_id_new(), B = storectx_store_id_new(),
                    C = storectx_store_id_new(), D = storectx_store_id_new(),
                    E = storectx_store_id_new(), F = storectx_store_id_new(),
                    G = storectx_store_id_new();
  storectx_store_id layout[ENTRIES] = {A, B, B, C, D, D, D, E, F, G, G};
  CHECK_OK(storectx_async_store_new(C, &mem[3], &async_of[3]));
  CHECK_OK(storectx_async_store_new(F, &mem[4], &async_of[8]));
  memcpy(store_of, layout, sizeof layout);
  for (int round = 0; round < 2; round++) {
    for (int base = 0; base <= ENTRIES; base++) {
      noop_at = -1;
      build();
      storectx_suspended *seg;
      CHECK_OK(storectx_suspend((size_t)base, &seg));
      CHECK(storectx_suspended_len(seg) == (size_t)(ENTRIES - base));
      CHECK(storectx_depth() == (size_t)base);
      for (int i = base; i < ENTRIES; i++) {
        all_stale(&stack1[i]);
        if (stack1[i].async) {
          storectx_write_guard *g = (storectx_write_guard *)0x1;
          CHECK_STATUS(storectx_async_store_try_write(stack1[i].async, &g), STORECTX_ERR_BUSY);
          CHECK(g == (storectx_write_guard *)0x1);
        }
      }
      if (noop_at >= base) CHECK_STATUS(storectx_uninstall(noop), STORECTX_ERR_STALE_HANDLE);
      if (base < ENTRIES) {
        job.seg = seg;
        job.base = base;
        job.refuse_only = round == 1;
        job.clash = stack1[(base + ENTRIES) / 2].id;
        pthread_t t;
        CHECK(pthread_create(&t, NULL, other_thread, NULL) == 0);
        CHECK(pthread_join(t, NULL) == 0);
        if (round == 1) {
          /* Back on this thread, after the refusal elsewhere. */
          size_t at = 55;
          if (base > 0 && stack1[base - 1].id == stack1[base].id) {
            /* The base split a nested run: its store is still here. */
            CHECK_STATUS(storectx_resume(seg, &at), STORECTX_ERR_ALREADY_ON_STACK);
            CHECK(at == 55 && storectx_depth() == (size_t)base);
            storectx_suspended_free(seg); /* cancelled: locks released */
            CHECK(storectx_suspended_len(seg) == 0);
            for (int i = base; i < ENTRIES; i++) all_stale(&stack1[i]);
            if (noop_at >= base) noop_at = -1;
            for (int i = base; i < ENTRIES; i++)
              if (stack1[i].async) {
                storectx_write_guard *g;
                CHECK_OK(storectx_async_store_try_write(stack1[i].async, &g));
                storectx_write_guard_release(g);
              }
          } else {
            CHECK_OK(storectx_resume(seg, &at));
            CHECK(at == (size_t)base);
            unwind(stack1, base, ENTRIES);
          }
        }
      } else {
        size_t at;
        CHECK_OK(storectx_resume(seg, &at)); /* the empty segment */
        CHECK(at == ENTRIES);
      }
      unwind(stack1, 0, base);
      CHECK(storectx_is_empty());
    }
  }
  storectx_async_store_release(async_of[3]);
  storectx_async_store_release(async_of[8]);
  puts("suspend at every base with borrows and pauses: exact");
  return 0;
}
