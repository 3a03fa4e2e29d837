/* Behaviour: storectx_suspended_len, called on another thread while the
 * segment is resumed or freed (and its slot reused by later suspends on
 * the fast halves), answers the segment's length or 0, never another
 * segment's (docs: "never another segment's"); and a thread's read-only
 * calls from a signal handler that did not interrupt a libstorectx call
 * see its stack as the thread left it, between fast-half resumes and
 * suspends. Two pairs of threads pass a segment back and forth (20,000
 * hops a pair); each holder makes the segment's length (hop % 4) + 1 by
 * installing or uninstalling on top, suspends it and records (handle,
 * length) in a write-once ring. A reader thread reads the length of the
 * newest and of random older handles in a loop, and of forged handles
 * (any answer, no crash); main sends SIGUSR1 to the four threads
 * throughout, whose handler compares storectx_depth() with the depth the
 * thread last saw (only when not inside a library call). At the end main
 * resumes both segments and unwinds them with the guards made on the other
 * threads. */
/* cprog: skip on=windows no pthread_kill/SIGUSR1 on Windows */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <unistd.h>

#include "check.h"

#define HOPS 20000
#define PAIRS 2
#define RING (PAIRS * HOPS + 16)
#define MAXLEN 4

struct record {
  _Atomic uint64_t h;
  _Atomic uint32_t len;
};

static struct record ring[RING];
static atomic_size_t ring_next;
static atomic_int done;
static volatile sig_atomic_t bad_depth;
static atomic_long signals_seen, checked_live, checked_spent;

static _Thread_local volatile sig_atomic_t in_lib = 1;
static _Thread_local volatile sig_atomic_t seen_depth;

static void on_signal(int sig) {
  (void)sig;
  if (in_lib) return;
  if ((sig_atomic_t)storectx_depth() != seen_depth) bad_depth = 1;
  atomic_fetch_add_explicit(&signals_seen, 1, memory_order_relaxed);
}

/* Every library call of a hopper: LIB(call), then SETTLE(), which notes
 * the depth and lets the handler read it until the next LIB. */
#define LIB(expr) (in_lib = 1, (expr))
#define SETTLE() (seen_depth = (sig_atomic_t)storectx_depth(), in_lib = 0)

static int mem[64];

struct pair {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int turn, hops;
  storectx_suspended *box;
  int len;
  storectx_install_guard g[MAXLEN];
  storectx_store_id id[MAXLEN];
};

static struct pair pairs[PAIRS];

struct member {
  struct pair *pair;
  int side;
};

static void *hopper(void *p) {
  struct member *me = p;
  struct pair *pr = me->pair;
  LIB(storectx_is_empty());
  SETTLE();
  for (;;) {
    pthread_mutex_lock(&pr->mu);
    while (pr->turn != me->side && pr->hops < HOPS) pthread_cond_wait(&pr->cv, &pr->mu);
    if (pr->hops >= HOPS) {
      pthread_mutex_unlock(&pr->mu);
      break;
    }
    storectx_suspended *s = pr->box;
    int hop = pr->hops;
    pthread_mutex_unlock(&pr->mu);

    size_t base = 99;
    CHECK(LIB(storectx_resume(s, &base)) == STORECTX_OK);
    SETTLE();
    CHECK(base == 0 && seen_depth == pr->len);
    int want = hop % MAXLEN + 1;
    while (pr->len < want) {
      pr->id[pr->len] = LIB(storectx_store_id_new());
      SETTLE();
      CHECK(LIB(storectx_install(pr->id[pr->len], &mem[pr->len], &pr->g[pr->len])) == STORECTX_OK);
      SETTLE();
      pr->len++;
    }
    while (pr->len > want) {
      CHECK(LIB(storectx_uninstall(pr->g[pr->len - 1])) == STORECTX_OK);
      SETTLE();
      pr->len--;
    }
    CHECK(LIB(storectx_active_store()) == pr->id[pr->len - 1]);
    SETTLE();
    CHECK(seen_depth == want);
    CHECK(LIB(storectx_suspend(0, &s)) == STORECTX_OK);
    SETTLE();
    CHECK(seen_depth == 0);
    size_t at = atomic_fetch_add(&ring_next, 1);
    CHECK(at < RING);
    atomic_store_explicit(&ring[at].len, (uint32_t)want, memory_order_relaxed);
    atomic_store_explicit(&ring[at].h, (uint64_t)(uintptr_t)s, memory_order_release);

    pthread_mutex_lock(&pr->mu);
    pr->box = s;
    pr->hops++;
    pr->turn = !me->side;
    pthread_cond_broadcast(&pr->cv);
    pthread_mutex_unlock(&pr->mu);
  }
  in_lib = 1;
  return NULL;
}

static void check_record(size_t i) {
  uint64_t h = atomic_load_explicit(&ring[i].h, memory_order_acquire);
  if (h == 0) return;
  uint32_t len = atomic_load_explicit(&ring[i].len, memory_order_relaxed);
  size_t got = storectx_suspended_len((storectx_suspended *)(uintptr_t)h);
  if (got != 0 && got != len) {
    fprintf(stderr, "segment %#llx of length %u answered length %zu\n", (unsigned long long)h,
            len, got);
    exit(1);
  }
  atomic_fetch_add_explicit(got ? &checked_live : &checked_spent, 1, memory_order_relaxed);
}

static void *reader(void *unused) {
  (void)unused;
  uint64_t x = 88172645463325252ull;
  while (!atomic_load(&done)) {
    size_t n = atomic_load(&ring_next);
    for (size_t k = 0; k < 8 && k < n; k++) check_record(n - 1 - k);
    for (int k = 0; k < 8 && n > 0; k++) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      check_record(x % n);
    }
    /* Forged: a recorded handle with other index or generation bits. */
    if (n > 0) {
      uint64_t h = atomic_load(&ring[x % n].h);
      (void)storectx_suspended_len((storectx_suspended *)(uintptr_t)(h ^ (x & 0xff)));
      (void)storectx_suspended_len((storectx_suspended *)(uintptr_t)(h + (1ull << 32)));
      (void)storectx_suspended_len((storectx_suspended *)(uintptr_t)(h ^ (1ull << 61)));
    }
  }
  return NULL;
}

int main(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  CHECK(sigaction(SIGUSR1, &sa, NULL) == 0);

  static struct member members[2 * PAIRS];
  pthread_t hoppers[2 * PAIRS], rd;
  for (int k = 0; k < PAIRS; k++) {
    struct pair *pr = &pairs[k];
    CHECK(pthread_mutex_init(&pr->mu, NULL) == 0);
    CHECK(pthread_cond_init(&pr->cv, NULL) == 0);
    for (pr->len = 0; pr->len < 2; pr->len++) {
      pr->id[pr->len] = storectx_store_id_new();
      CHECK_OK(storectx_install(pr->id[pr->len], &mem[pr->len], &pr->g[pr->len]));
    }
    CHECK_OK(storectx_suspend(0, &pr->box));
    members[2 * k] = (struct member){pr, 0};
    members[2 * k + 1] = (struct member){pr, 1};
  }
  CHECK(pthread_create(&rd, NULL, reader, NULL) == 0);
  for (int i = 0; i < 2 * PAIRS; i++)
    CHECK(pthread_create(&hoppers[i], NULL, hopper, &members[i]) == 0);
  for (;;) {
    int finished = 1;
    for (int k = 0; k < PAIRS; k++) {
      pthread_mutex_lock(&pairs[k].mu);
      finished &= pairs[k].hops >= HOPS;
      pthread_mutex_unlock(&pairs[k].mu);
    }
    if (finished) break;
    for (int i = 0; i < 2 * PAIRS; i++) pthread_kill(hoppers[i], SIGUSR1);
    usleep(200);
  }
  for (int i = 0; i < 2 * PAIRS; i++) CHECK(pthread_join(hoppers[i], NULL) == 0);
  atomic_store(&done, 1);
  CHECK(pthread_join(rd, NULL) == 0);
  CHECK(!bad_depth);
  for (size_t i = 0; i < atomic_load(&ring_next); i++) check_record(i);

  for (int k = 0; k < PAIRS; k++) {
    struct pair *pr = &pairs[k];
    CHECK(storectx_suspended_len(pr->box) == (size_t)pr->len);
    size_t base = 99;
    CHECK_OK(storectx_resume(pr->box, &base));
    CHECK(base == 0 && storectx_depth() == (size_t)pr->len);
    CHECK(storectx_suspended_len(pr->box) == 0);
    while (pr->len > 0) CHECK_OK(storectx_uninstall(pr->g[--pr->len]));
    CHECK(storectx_is_empty());
  }
  printf("lengths: %ld live, %ld spent read; %ld signals between calls\n",
         atomic_load(&checked_live), atomic_load(&checked_spent), atomic_load(&signals_seen));
  return 0;
}
