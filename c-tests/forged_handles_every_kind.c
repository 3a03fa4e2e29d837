/* Behaviour: no handle value succeeds as another kind (SPEC, "Every handle
 * kind is checked for its kind"; issue 10, hole 1). Every handle the
 * library gives out — install guards of sync and async entries, a no-op
 * install guard, borrows of sync and async entries, pause guards that took a
 * borrow away and that did not, write guards, segments, live and spent, of
 * this thread and of another one — with each of its 8 low kind-bit patterns
 * and a set of number perturbations (±1, ±8, high-bit flips, 0, ~0, ...),
 * is passed to every function that takes a handle: uninstall,
 * install_guard_installed, borrow_release, borrow_clone, unpause,
 * write_guard_store, write_guard_release, install_async, resume,
 * suspended_len, suspended_free. It is done with the handle's entry on top,
 * one and two levels below the top, suspended, gone, and on another thread
 * with an empty and a non-empty stack. Each call must answer what the
 * contract says: STALE_HANDLE for a value that names no entry (or object)
 * of that function's kind on the calling thread, OUT_OF_ORDER only for a
 * handle of the right kind whose entry is below the top, else the
 * kind-specific status; a refused call leaves describe byte-identical and
 * its out-parameters untouched, and every genuine handle still works
 * afterwards. The input: guard g of a sync entry, forged.raw =
 * (g.raw & ~7) | 2 (the no-op kind bits): uninstall(forged) must be
 * STALE_HANDLE with the entry on top (it answered OK) and one level below
 * the top (it answered OUT_OF_ORDER). Prints the combinations covered. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <unistd.h>

#include "check.h"

#ifdef _WIN32 /* no alarm(): the harness's timeout bounds the run there */
#define alarm(seconds) ((void)(seconds))
#endif

#define SENT UINT64_C(0x5e5e5e5e5e5e5e5e)
#define DESCRIBE_MAX 4096
#define MAX_ENTRIES 32
#define MAX_PAUSES 8
#define MAX_VALUES 128
#define MAX_MISMATCHES_SHOWN 40

/* ---- what the test knows: entries, their handles, heap objects ---------- */

struct entry {
  storectx_store_id id;
  void *store;
  bool is_async;
  int thread;  /* 0: main, 1: helper, -1: in a segment or gone */
  bool gone;
  uint64_t install_raw, noop_raw, borrow_raw; /* 0: none given out */
  unsigned borrows;
  int pauses; /* outstanding pauses, oldest first */
  uint64_t pause_raw[MAX_PAUSES];
  bool pause_took[MAX_PAUSES];
};

static struct entry entries[MAX_ENTRIES];
static int n_entries;
/* Each thread's stack, bottom first, as indices into `entries`. */
static int stack_of[2][MAX_ENTRIES];
static int depth_of[2];

/* Every raw value the library ever gave out: the bases of the forgeries. */
static uint64_t values[MAX_VALUES];
static const char *value_what[MAX_VALUES];
static int n_values;

/* The live write guards and segments (process-wide objects). */
static uint64_t live_guards[8];
static int n_live_guards;
static uint64_t live_segments[8];
static size_t live_segment_len[8];
static int n_live_segments;

static void note_value(uint64_t raw, const char *what) {
  CHECK(n_values < MAX_VALUES);
  values[n_values] = raw;
  value_what[n_values] = what;
  n_values++;
}

static int top_of(int t) { return depth_of[t] ? stack_of[t][depth_of[t] - 1] : -1; }

/* ---- genuine calls, mirrored in the bookkeeping ------------------------ */

static int cur_thread; /* which bookkeeping stack the calling thread uses */

static int push_entry(storectx_store_id id, void *store, bool is_async, uint64_t raw) {
  CHECK(n_entries < MAX_ENTRIES);
  int e = n_entries++;
  entries[e] = (struct entry){.id = id, .store = store, .is_async = is_async,
                              .thread = cur_thread, .install_raw = raw};
  stack_of[cur_thread][depth_of[cur_thread]++] = e;
  note_value(raw, is_async ? "install guard (async entry)" : "install guard (sync entry)");
  return e;
}

static int do_install(storectx_store_id id, void *store) {
  storectx_install_guard g;
  CHECK_OK(storectx_install(id, store, &g));
  return push_entry(id, store, false, g.raw);
}

static int do_install_async(storectx_write_guard *w, storectx_store_id id, void *store) {
  storectx_install_guard g;
  CHECK_OK(storectx_install_async(w, &g));
  for (int i = 0; i < n_live_guards; i++)
    if (live_guards[i] == (uint64_t)(uintptr_t)w) live_guards[i] = live_guards[--n_live_guards];
  return push_entry(id, store, true, g.raw);
}

/* install() of the store whose async entry is on top: the no-op guard. */
static void do_noop_install(int e) {
  storectx_install_guard g;
  CHECK_OK(storectx_install(entries[e].id, entries[e].store, &g));
  CHECK(!storectx_install_guard_installed(g));
  entries[e].noop_raw = g.raw;
  note_value(g.raw, "no-op install guard");
}

static void do_borrow(int e) {
  void *p = NULL;
  storectx_borrow b;
  CHECK_OK(storectx_get_current(entries[e].id, &p, &b));
  CHECK(p == entries[e].store);
  if (entries[e].borrow_raw == 0) {
    entries[e].borrow_raw = b.raw;
    note_value(b.raw, entries[e].is_async ? "borrow (async entry)" : "borrow (sync entry)");
  }
  /* Borrows are counted per entry: every borrow of it is the same handle. */
  CHECK(entries[e].borrow_raw == b.raw);
  entries[e].borrows++;
}

static void do_release(int e) {
  CHECK_OK(storectx_borrow_release((storectx_borrow){entries[e].borrow_raw}));
  entries[e].borrows--;
}

static void do_pause(int e) {
  storectx_pause_guard p;
  CHECK_OK(storectx_pause(entries[e].id, &p));
  struct entry *x = &entries[e];
  CHECK(x->pauses < MAX_PAUSES);
  x->pause_raw[x->pauses] = p.raw;
  x->pause_took[x->pauses] = x->borrows > 0;
  note_value(p.raw, x->borrows > 0 ? "pause guard (took a borrow)" : "pause guard (took none)");
  if (x->borrows > 0) x->borrows--;
  x->pauses++;
}

static void do_unpause(int e) {
  struct entry *x = &entries[e];
  CHECK(x->pauses > 0);
  x->pauses--;
  CHECK_OK(storectx_unpause((storectx_pause_guard){x->pause_raw[x->pauses]}));
  if (x->pause_took[x->pauses]) x->borrows++;
}

static void do_uninstall(int e) {
  CHECK(top_of(cur_thread) == e);
  CHECK_OK(storectx_uninstall((storectx_install_guard){entries[e].install_raw}));
  depth_of[cur_thread]--;
  entries[e].gone = true;
  entries[e].thread = -1;
}

/* ---- what a call with a given value must answer ------------------------ */

enum fn {
  F_UNINSTALL, F_INSTALLED, F_BORROW_RELEASE, F_BORROW_CLONE, F_UNPAUSE,
  F_GUARD_STORE, F_GUARD_RELEASE, F_INSTALL_ASYNC, F_RESUME, F_SEG_LEN, F_SEG_FREE,
  F_COUNT
};
static const char *fn_name[F_COUNT] = {
    "uninstall", "install_guard_installed", "borrow_release", "borrow_clone", "unpause",
    "write_guard_store", "write_guard_release", "install_async", "resume",
    "suspended_len", "suspended_free"};

enum xkind { X_SKIP, X_STATUS, X_BOOL, X_NULL, X_ZERO, X_VOID };
struct expect {
  enum xkind kind;
  int status; /* X_STATUS */
  bool b;     /* X_BOOL */
};

static struct expect skip(void) { return (struct expect){X_SKIP, 0, false}; }
static struct expect status(int s) { return (struct expect){X_STATUS, s, false}; }

static bool is_live_guard(uint64_t v) {
  for (int i = 0; i < n_live_guards; i++)
    if (live_guards[i] == v) return true;
  return false;
}

static bool is_live_segment(uint64_t v) {
  for (int i = 0; i < n_live_segments; i++)
    if (live_segments[i] == v) return true;
  return false;
}

/* The entry on thread t's stack that `v` is the `kind` handle of (-1: none). */
enum hkind { H_INSTALL, H_NOOP, H_BORROW };
static int entry_named(int t, uint64_t v, enum hkind kind) {
  for (int i = 0; i < depth_of[t]; i++) {
    struct entry *x = &entries[stack_of[t][i]];
    uint64_t raw = kind == H_INSTALL ? x->install_raw : kind == H_NOOP ? x->noop_raw : x->borrow_raw;
    if (raw != 0 && raw == v) return stack_of[t][i];
  }
  return -1;
}

/* The contract, for function f called on thread t with value v. Calls that
 * would succeed and change the stack are skipped (the genuine unwinding
 * makes them); everything else is made. */
static struct expect expected(enum fn f, int t, uint64_t v) {
  int top = top_of(t);
  int e;
  switch (f) {
  case F_UNINSTALL:
    if ((e = entry_named(t, v, H_INSTALL)) >= 0) {
      if (e != top) return status(STORECTX_ERR_OUT_OF_ORDER);
      return entries[e].borrows > 0 ? status(STORECTX_ERR_STILL_BORROWED) : skip();
    }
    if ((e = entry_named(t, v, H_NOOP)) >= 0)
      /* Pops nothing: OK while its async entry is on top. */
      return status(e == top ? STORECTX_OK : STORECTX_ERR_OUT_OF_ORDER);
    return status(STORECTX_ERR_STALE_HANDLE);
  case F_INSTALLED:
    return (struct expect){X_BOOL, 0, entry_named(t, v, H_INSTALL) >= 0};
  case F_BORROW_RELEASE:
    if ((e = entry_named(t, v, H_BORROW)) >= 0) {
      if (e != top) return status(STORECTX_ERR_OUT_OF_ORDER);
      return entries[e].borrows > 0 ? skip() : status(STORECTX_ERR_NOT_BORROWED);
    }
    return status(STORECTX_ERR_STALE_HANDLE);
  case F_BORROW_CLONE:
    if ((e = entry_named(t, v, H_BORROW)) >= 0) {
      if (e != top) return status(STORECTX_ERR_OUT_OF_ORDER);
      if (entries[e].is_async) return status(STORECTX_ERR_NOT_SYNC);
      return entries[e].borrows > 0 ? skip() : status(STORECTX_ERR_NOT_BORROWED);
    }
    return status(STORECTX_ERR_STALE_HANDLE);
  case F_UNPAUSE:
    for (int i = 0; i < depth_of[t]; i++) {
      struct entry *x = &entries[stack_of[t][i]];
      for (int k = 0; k < x->pauses; k++)
        if (x->pause_raw[k] == v) {
          if (stack_of[t][i] == top && k == x->pauses - 1) return skip();
          return status(STORECTX_ERR_OUT_OF_ORDER);
        }
    }
    return status(STORECTX_ERR_STALE_HANDLE);
  case F_GUARD_STORE:
    if (v == 0 || is_live_guard(v)) return skip();
    return (struct expect){X_NULL, 0, false};
  case F_GUARD_RELEASE:
    if (v == 0 || is_live_guard(v)) return skip();
    return (struct expect){X_VOID, 0, false};
  case F_INSTALL_ASYNC:
    if (v == 0 || is_live_guard(v)) return skip();
    return status(STORECTX_ERR_STALE_HANDLE);
  case F_RESUME:
    if (v == 0 || is_live_segment(v)) return skip();
    return status(STORECTX_ERR_STALE_HANDLE);
  case F_SEG_LEN:
    if (v == 0 || is_live_segment(v)) return skip();
    return (struct expect){X_ZERO, 0, false};
  case F_SEG_FREE:
    if (v == 0 || is_live_segment(v)) return skip();
    return (struct expect){X_VOID, 0, false};
  default:
    CHECK(!"unknown function");
  }
  return skip();
}

/* ---- the sweep --------------------------------------------------------- */

static unsigned long combos, forged_combos, mismatches;
static const char *where; /* the situation being swept, for messages */

static void describe_into(char *out) {
  size_t n = storectx_describe(out, DESCRIBE_MAX);
  CHECK(n < DESCRIBE_MAX);
}

static bool is_given_out(uint64_t v) {
  for (int i = 0; i < n_values; i++)
    if (values[i] == v) return true;
  return false;
}

static void mismatch(enum fn f, uint64_t v, const char *from, const char *got, const char *want) {
  mismatches++;
  if (mismatches <= MAX_MISMATCHES_SHOWN)
    fprintf(stderr, "MISMATCH [%s] %s(%#llx, from %s): answered %s, expected %s\n  last_error: %s\n",
            where, fn_name[f], (unsigned long long)v, from, got, want, storectx_last_error());
}

/* Makes call f(v) on this thread, checks it against `want` and that a
 * refused call changed nothing. */
static void try_one(enum fn f, uint64_t v, const char *from, struct expect want,
                    const char *before) {
  storectx_status s = STORECTX_OK;
  bool b = false;
  void *p = NULL;
  size_t len = 0;
  uint64_t out = SENT;
  size_t base = (size_t)SENT;
  switch (f) {
  case F_UNINSTALL: s = storectx_uninstall((storectx_install_guard){v}); break;
  case F_INSTALLED: b = storectx_install_guard_installed((storectx_install_guard){v}); break;
  case F_BORROW_RELEASE: s = storectx_borrow_release((storectx_borrow){v}); break;
  case F_BORROW_CLONE: {
    storectx_borrow o = {SENT};
    s = storectx_borrow_clone((storectx_borrow){v}, &o);
    out = o.raw;
    break;
  }
  case F_UNPAUSE: s = storectx_unpause((storectx_pause_guard){v}); break;
  case F_GUARD_STORE: p = storectx_write_guard_store((const storectx_write_guard *)(uintptr_t)v); break;
  case F_GUARD_RELEASE: storectx_write_guard_release((storectx_write_guard *)(uintptr_t)v); break;
  case F_INSTALL_ASYNC: {
    storectx_install_guard o = {SENT};
    s = storectx_install_async((storectx_write_guard *)(uintptr_t)v, &o);
    out = o.raw;
    break;
  }
  case F_RESUME: s = storectx_resume((storectx_suspended *)(uintptr_t)v, &base); break;
  case F_SEG_LEN: len = storectx_suspended_len((const storectx_suspended *)(uintptr_t)v); break;
  case F_SEG_FREE: storectx_suspended_free((storectx_suspended *)(uintptr_t)v); break;
  default: break;
  }
  char got[64], exp[64];
  switch (want.kind) {
  case X_STATUS:
    if (s != want.status) {
      snprintf(got, sizeof got, "%s", storectx_status_str(s));
      snprintf(exp, sizeof exp, "%s", storectx_status_str(want.status));
      mismatch(f, v, from, got, exp);
    } else if (s != STORECTX_OK) {
      const char *e = storectx_last_error();
      if (strncmp(e, fn_name[f], strlen(fn_name[f])) != 0)
        mismatch(f, v, from, "a last_error not naming the call", "one naming it");
      if (out != SENT || base != (size_t)SENT)
        mismatch(f, v, from, "a written out-parameter", "untouched");
    }
    break;
  case X_BOOL:
    if (b != want.b) mismatch(f, v, from, b ? "true" : "false", want.b ? "true" : "false");
    break;
  case X_NULL:
    if (p != NULL) mismatch(f, v, from, "a store address", "NULL");
    break;
  case X_ZERO:
    if (len != 0) mismatch(f, v, from, "a nonzero length", "0");
    break;
  case X_VOID:
  case X_SKIP:
    break;
  }
  char after[DESCRIBE_MAX];
  describe_into(after);
  if (strcmp(before, after) != 0) {
    fprintf(stderr, "[%s] %s(%#llx, from %s) changed the stack:\n--- before\n%s--- after\n%s",
            where, fn_name[f], (unsigned long long)v, from, before, after);
    exit(1);
  }
}

/* Every value derived from every handle ever given out, through every
 * function, on the calling thread (bookkeeping stack t). */
static void sweep(int t, const char *situation) {
  where = situation;
  cur_thread = t;
  char before[DESCRIBE_MAX];
  describe_into(before);
  CHECK(storectx_depth() == (size_t)depth_of[t]);
  unsigned long before_mismatches = mismatches, made = 0;
  for (int i = 0; i < n_values; i++) {
    uint64_t r = values[i];
    uint64_t derived[40];
    int n = 0;
    for (uint64_t k = 0; k < 8; k++) derived[n++] = (r & ~UINT64_C(7)) | k;
    derived[n++] = r + 1;
    derived[n++] = r - 1;
    derived[n++] = r + 8;
    derived[n++] = r - 8;
    derived[n++] = r + 16;
    static const int bits[] = {63, 62, 61, 60, 58, 47, 33, 32, 31, 16, 4, 3};
    for (size_t b = 0; b < sizeof bits / sizeof bits[0]; b++)
      derived[n++] = r ^ (UINT64_C(1) << bits[b]);
    derived[n++] = r >> 3;
    derived[n++] = r << 3;
    derived[n++] = ~r;
    derived[n++] = 0;
    derived[n++] = ~UINT64_C(0);
    for (int d = 0; d < n; d++) {
      uint64_t v = derived[d];
      for (int f = 0; f < F_COUNT; f++) {
        struct expect want = expected((enum fn)f, t, v);
        if (want.kind == X_SKIP) continue;
        try_one((enum fn)f, v, value_what[i], want, before);
        made++;
        combos++;
        if (!is_given_out(v)) forged_combos++;
      }
    }
  }
  /* Nothing a refused call did may have touched the live objects. */
  for (int i = 0; i < n_live_guards; i++)
    CHECK(storectx_write_guard_store((const storectx_write_guard *)(uintptr_t)live_guards[i]) != NULL);
  for (int i = 0; i < n_live_segments; i++)
    CHECK(storectx_suspended_len((const storectx_suspended *)(uintptr_t)live_segments[i]) ==
          live_segment_len[i]);
  printf("%-58s %6lu calls, %lu wrong\n", situation, made, mismatches - before_mismatches);
}

/* ---- the other thread -------------------------------------------------- */

static int helper_store;

/* On a thread the library has never seen: sweep with an empty stack, then
 * with an entry of its own (borrowed and paused) on it; then unwind. */
static void *helper(void *arg) {
  const char *situation = arg;
  char text[160];
  snprintf(text, sizeof text, "%s; other thread, empty stack", situation);
  sweep(1, text);
  cur_thread = 1;
  int e = do_install(storectx_store_id_new(), &helper_store);
  do_borrow(e);
  do_pause(e);
  snprintf(text, sizeof text, "%s; other thread, own entry", situation);
  sweep(1, text);
  do_unpause(e);
  do_release(e);
  do_uninstall(e);
  return NULL;
}

static void sweep_both(const char *situation) {
  char text[160];
  snprintf(text, sizeof text, "%s; owning thread", situation);
  sweep(0, text);
  pthread_t th;
  CHECK(pthread_create(&th, NULL, helper, (void *)situation) == 0);
  CHECK(pthread_join(th, NULL) == 0);
  cur_thread = 0;
}

/* ---- the scenario ------------------------------------------------------ */

static int sq, s1, s2, s3, s4, sv;

int main(void) {
  alarm(240); /* a hang is a failure, not a stuck CI */
  setvbuf(stdout, NULL, _IOLBF, 0);
  cur_thread = 0;

  /* A suspended entry: its handles name nothing on any stack. */
  storectx_store_id idq = storectx_store_id_new();
  int eq = do_install(idq, &sq);
  do_borrow(eq);
  storectx_suspended *seg_q;
  CHECK_OK(storectx_suspend(0, &seg_q));
  depth_of[0] = 0;
  entries[eq].thread = -1;
  note_value((uint64_t)(uintptr_t)seg_q, "segment (one entry)");
  live_segments[n_live_segments] = (uint64_t)(uintptr_t)seg_q;
  live_segment_len[n_live_segments++] = 1;

  /* An empty segment, a spent segment. */
  storectx_suspended *seg_empty, *seg_spent;
  CHECK_OK(storectx_suspend(0, &seg_empty));
  note_value((uint64_t)(uintptr_t)seg_empty, "segment (empty)");
  live_segments[n_live_segments] = (uint64_t)(uintptr_t)seg_empty;
  live_segment_len[n_live_segments++] = 0;
  CHECK_OK(storectx_suspend(0, &seg_spent));
  storectx_suspended_free(seg_spent);
  note_value((uint64_t)(uintptr_t)seg_spent, "segment (freed)");

  /* A live write guard, a released one, and one that install_async consumes. */
  storectx_store_id idv = storectx_store_id_new(), id3 = storectx_store_id_new();
  storectx_async_store *av, *a3;
  CHECK_OK(storectx_async_store_new(idv, &sv, &av));
  CHECK_OK(storectx_async_store_new(id3, &s3, &a3));
  storectx_write_guard *wv, *w_spent, *w3;
  CHECK_OK(storectx_async_store_try_write(a3, &w_spent));
  storectx_write_guard_release(w_spent);
  note_value((uint64_t)(uintptr_t)w_spent, "write guard (released)");
  CHECK_OK(storectx_async_store_try_write(av, &wv));
  note_value((uint64_t)(uintptr_t)wv, "write guard (live)");
  live_guards[n_live_guards++] = (uint64_t)(uintptr_t)wv;
  CHECK_OK(storectx_async_store_try_write(a3, &w3));
  note_value((uint64_t)(uintptr_t)w3, "write guard (installed)");
  live_guards[n_live_guards++] = (uint64_t)(uintptr_t)w3;

  /* The stack: e1 sync (borrowed, then paused twice), e2 sync (borrowed and
   * released), e3 async (no-op guard, borrowed), e4 sync (borrowed, paused
   * twice). */
  int e1 = do_install(storectx_store_id_new(), &s1);
  do_borrow(e1);
  do_pause(e1); /* took the borrow */
  do_pause(e1); /* took none */
  int e2 = do_install(storectx_store_id_new(), &s2);
  do_borrow(e2);
  do_release(e2);
  int e3 = do_install_async(w3, id3, &s3);
  do_noop_install(e3);
  do_borrow(e3);
  int e4 = do_install(storectx_store_id_new(), &s4);
  do_borrow(e4);
  do_pause(e4);
  do_pause(e4);

  sweep_both("sync e4 on top, async e3 below, sync e2 two below");

  do_unpause(e4);
  do_unpause(e4);
  do_release(e4);
  do_uninstall(e4);
  sweep_both("async e3 on top (borrowed), sync e2 one below");

  /* The input, by name: with sync e2 one level below the top. */
  uint64_t forged_e2 = (entries[e2].install_raw & ~UINT64_C(7)) | 2;
  CHECK(!is_given_out(forged_e2));
  {
    char before[DESCRIBE_MAX];
    describe_into(before);
    where = "the issue's input, sync entry one level below the top";
    try_one(F_UNINSTALL, forged_e2, "(g.raw & ~7) | 2", status(STORECTX_ERR_STALE_HANDLE), before);
  }

  CHECK_OK(storectx_uninstall((storectx_install_guard){entries[e3].noop_raw}));
  do_release(e3);
  do_uninstall(e3); /* releases store 3's lock */
  {
    storectx_write_guard *probe;
    CHECK_OK(storectx_async_store_try_write(a3, &probe));
    storectx_write_guard_release(probe);
  }
  sweep_both("sync e2 on top (unborrowed), sync e1 one below");
  {
    char before[DESCRIBE_MAX];
    describe_into(before);
    where = "the issue's input, sync entry on top";
    try_one(F_UNINSTALL, forged_e2, "(g.raw & ~7) | 2", status(STORECTX_ERR_STALE_HANDLE), before);
  }

  do_uninstall(e2);
  sweep_both("sync e1 on top (paused twice), alone");

  do_unpause(e1);
  do_unpause(e1);
  do_release(e1);
  do_uninstall(e1);
  sweep_both("empty stack");

  /* Every genuine handle still works. */
  size_t base = 99;
  CHECK_OK(storectx_resume(seg_q, &base));
  CHECK(base == 0);
  n_live_segments = 1;
  live_segments[0] = (uint64_t)(uintptr_t)seg_empty;
  live_segment_len[0] = 0;
  entries[eq].thread = 0;
  stack_of[0][depth_of[0]++] = eq;
  sweep_both("resumed entry q on top (borrowed)");
  do_release(eq);
  do_uninstall(eq);
  CHECK(storectx_write_guard_store(wv) == &sv);
  storectx_write_guard_release(wv);
  CHECK(storectx_suspended_len(seg_empty) == 0);
  storectx_suspended_free(seg_empty);
  storectx_async_store_release(av);
  storectx_async_store_release(a3);
  CHECK(storectx_is_empty());

  printf("%lu (value, function, thread) combinations from %d handles given out "
         "(%lu with values never given out); %lu answered wrong\n",
         combos, n_values, forged_combos, mismatches);
  if (mismatches > 0) {
    fprintf(stderr, "%lu calls answered wrong (first %d shown above)\n", mismatches,
            MAX_MISMATCHES_SHOWN);
    return 1;
  }
  return 0;
}
