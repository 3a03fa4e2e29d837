/* Behaviour: storectx_suspend and storectx_resume keep every promise on
 * their fast halves (the suspend taking back the slot parked in the
 * thread's own spot, the resume claiming, resuming and parking inline)
 * whatever the spot holds, and the segment table never loses or duplicates
 * a slot. With the table shortened (testing hook) to N segments:
 * - stolen spot: thread A fills the table with one-entry segments (the next
 *   suspend is refused EXHAUSTED, its stack unchanged), resumes one (its
 *   slot parked in A's spot); main's suspend takes that slot from A's spot
 *   (a full table); A then resumes with its spot naming a slot no longer
 *   parked there, again with its spot holding a slot (the slow half
 *   displaces it), and with it empty; each resumed entry is A's, its
 *   install guard uninstalls there;
 * - misuse on both halves: a resumed handle resumed again, with the spot
 *   empty and full, and a handle whose slot now holds a newer segment, are
 *   STALE_HANDLE with nothing changed (the newer one still resumes); a freed
 *   one too; a segment resumed onto a stack holding its store is refused
 *   ALREADY_ON_STACK on the fast half, untouched, and resumes elsewhere;
 * - thread exit: 20 threads one after another resume a segment, suspend it
 *   again for main, resume another (a sync and an async entry) and exit
 *   holding those entries and a parked slot: the write lock is free after
 *   the exit, the entries' guards stale on main;
 * - crowd: 300 threads at once (more than the 256 spots: some have none)
 *   pass 150 two-entry segments in pairs (a borrow and a pause inside, kept
 *   across every hop), 200 hops each; the entries are the holder's only;
 * - fork: the child of a process with segments outstanding (and with
 *   threads whose spots hold parked slots) resumes them, unwinds them, and
 *   can fill the table exactly; the parent resumes its own copies.
 * After each part, every segment freed, one thread suspends exactly the
 * limit (all handles distinct), the next is EXHAUSTED naming that count.
 * Needs the testing hook that lowers the table limit (the `testing`
 * feature); skipped with a printed reason without it. */
/* cprog: skip on=windows,qemu no fork, no dlfcn.h on Windows; qemu-user aborts in its own TCG code when a guest forks while other threads run */
/* cprog: timeout 240 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "worker.h"

#define N 8
#define CROWD 300
#define HOPS 200

typedef void (*set_table_limit_fn)(size_t);
extern void storectx_segspot_limit_weak(size_t) __asm__("storectx_testing_set_table_limit")
    __attribute__((weak));

static int mem[1024];

/* Every segment freed: one thread suspends exactly `n` empty segments, all
 * distinct; the next is refused EXHAUSTED, naming n live; all freed again. */
static void recount(size_t n) {
  storectx_suspended **all = calloc(n + 1, sizeof *all);
  CHECK(all != NULL);
  for (size_t i = 0; i < n; i++) {
    storectx_status st = storectx_suspend(storectx_depth(), &all[i]);
    if (st != STORECTX_OK) {
      fprintf(stderr, "only %zu of %zu segments allocate after all were freed: %s\n", i, n,
              storectx_last_error());
      exit(1);
    }
    CHECK(storectx_suspended_len(all[i]) == 0);
    for (size_t j = 0; j < i; j++) CHECK(all[j] != all[i]);
  }
  storectx_suspended *extra = (storectx_suspended *)0x77;
  CHECK_STATUS(storectx_suspend(storectx_depth(), &extra), STORECTX_ERR_EXHAUSTED);
  CHECK(extra == (storectx_suspended *)0x77);
  char want[64];
  snprintf(want, sizeof want, "%zu suspended segments are live", n);
  if (strstr(storectx_last_error(), want) == NULL) {
    fprintf(stderr, "message: %s (wanted \"%s\")\n", storectx_last_error(), want);
    exit(1);
  }
  for (size_t i = 0; i < n; i++) storectx_suspended_free(all[i]);
  free(all);
}

/* recount on a worker: `p` is the count. */
static void recount_job(void *p) { recount((size_t)(uintptr_t)p); }

/* ---- stolen spot --------------------------------------------------------- */

static storectx_store_id ids[N];
static storectx_install_guard guards[N];
static storectx_suspended *segs[N];

static void a_fill(void *unused) {
  (void)unused;
  for (int i = 0; i < N; i++) {
    ids[i] = storectx_store_id_new();
    CHECK_OK(storectx_install(ids[i], &mem[i], &guards[i]));
    CHECK_OK(storectx_suspend(0, &segs[i]));
    CHECK(storectx_suspended_len(segs[i]) == 1 && storectx_is_empty());
  }
  storectx_install_guard g;
  storectx_store_id x = storectx_store_id_new();
  CHECK_OK(storectx_install(x, &mem[N], &g));
  storectx_suspended *s = (storectx_suspended *)0x77;
  CHECK_STATUS(storectx_suspend(0, &s), STORECTX_ERR_EXHAUSTED);
  CHECK(s == (storectx_suspended *)0x77);
  CHECK(storectx_depth() == 1 && storectx_active_store() == x);
  CHECK_OK(storectx_uninstall(g));
}

/* Resumes segs[i] here (whatever this thread's spot holds): its entry is
 * this thread's, with its guard; then uninstalled. */
static void a_resume(void *p) {
  int i = *(int *)p;
  size_t base = 99;
  CHECK_OK(storectx_resume(segs[i], &base));
  CHECK(base == 0 && storectx_depth() == 1 && storectx_active_store() == ids[i]);
  CHECK(storectx_suspended_len(segs[i]) == 0);
  void *store = NULL;
  storectx_borrow b;
  CHECK_OK(storectx_get_current(ids[i], &store, &b));
  CHECK(store == &mem[i]);
  CHECK_OK(storectx_borrow_release(b));
  CHECK(storectx_install_guard_installed(guards[i]));
  CHECK_OK(storectx_uninstall(guards[i]));
  CHECK(storectx_is_empty());
}

/* A spent handle, resumed with this thread's spot empty (a suspend just
 * took its slot back) and full (a free just parked one): stale, nothing
 * changed. */
static void a_stale(void *p) {
  storectx_suspended *spent = p;
  storectx_install_guard g;
  storectx_store_id x = storectx_store_id_new();
  CHECK_OK(storectx_install(x, &mem[N + 1], &g));
  for (int full = 0; full < 2; full++) {
    storectx_suspended *e = NULL;
    CHECK_OK(storectx_suspend(storectx_depth(), &e)); /* the spot emptied */
    if (full) storectx_suspended_free(e);              /* the spot full */
    size_t base = 99;
    CHECK_STATUS(storectx_resume(spent, &base), STORECTX_ERR_STALE_HANDLE);
    CHECK(base == 99 && storectx_depth() == 1 && storectx_active_store() == x);
    CHECK(storectx_suspended_len(spent) == 0);
    if (!full) storectx_suspended_free(e);
  }
  CHECK_OK(storectx_uninstall(g));
}

/* A handle whose slot holds a newer segment now (the slot parked in this
 * thread's spot is taken back by the next suspend): the old one is stale,
 * the new one resumes. */
static void a_newer_life(void *unused) {
  (void)unused;
  storectx_install_guard g;
  storectx_store_id x = storectx_store_id_new();
  CHECK_OK(storectx_install(x, &mem[N + 2], &g));
  storectx_suspended *old = NULL, *newer = NULL;
  CHECK_OK(storectx_suspend(0, &old));
  size_t base = 0;
  CHECK_OK(storectx_resume(old, &base)); /* parked in this thread's spot */
  CHECK_OK(storectx_suspend(0, &newer));  /* taken back: the same slot */
  CHECK(newer != old);
  CHECK(((uintptr_t)newer & 0xffffffffu) == ((uintptr_t)old & 0xffffffffu));
  CHECK_STATUS(storectx_resume(old, &base), STORECTX_ERR_STALE_HANDLE);
  storectx_suspended_free(old); /* noted, nothing freed */
  CHECK(storectx_suspended_len(newer) == 1 && storectx_is_empty());
  CHECK_OK(storectx_resume(newer, &base));
  CHECK(storectx_active_store() == x);
  CHECK_OK(storectx_uninstall(g));
}

/* A segment of store y resumed onto a stack holding y: refused on the fast
 * half (the spot empty), the segment untouched; it resumes on main. */
static storectx_store_id clash_id;
static storectx_suspended *clash_seg;
static void a_clash(void *unused) {
  (void)unused;
  storectx_install_guard g, below;
  CHECK_OK(storectx_install(storectx_store_id_new(), &mem[N + 3], &below));
  CHECK_OK(storectx_install(clash_id, &mem[N + 4], &g));
  storectx_suspended *e = NULL;
  CHECK_OK(storectx_suspend(storectx_depth(), &e)); /* the spot emptied */
  size_t base = 99;
  CHECK_STATUS(storectx_resume(clash_seg, &base), STORECTX_ERR_ALREADY_ON_STACK);
  CHECK(base == 99 && storectx_depth() == 2 && storectx_active_store() == clash_id);
  CHECK(storectx_suspended_len(clash_seg) == 1);
  CHECK_OK(storectx_uninstall(g));
  CHECK_OK(storectx_uninstall(below));
  storectx_suspended_free(e);
}

static void stolen_spot(void) {
  struct worker A;
  worker_start(&A);
  run_on(&A, a_fill, NULL);
  int i = 0;
  run_on(&A, a_resume, &i); /* segs[0]'s slot parked in A's spot */
  /* Main (its spot empty) finds the table full but for A's parked slot. */
  storectx_install_guard gm;
  storectx_store_id m = storectx_store_id_new();
  CHECK_OK(storectx_install(m, &mem[N + 5], &gm));
  storectx_suspended *ms = NULL;
  CHECK_OK(storectx_suspend(0, &ms));
  /* A's spot names the stolen slot; then holds segs[1]'s (displaced by
   * segs[2]'s, on the slow half); then is emptied by a suspend. */
  i = 1;
  run_on(&A, a_resume, &i);
  i = 2;
  run_on(&A, a_resume, &i);
  run_on(&A, a_stale, segs[1]);
  run_on(&A, a_stale, segs[0]);
  storectx_suspended_free(segs[3]);
  run_on(&A, a_stale, segs[3]); /* freed on main: stale on A */
  run_on(&A, a_newer_life, NULL);
  /* Main: its segment back. */
  size_t base = 99;
  CHECK_OK(storectx_resume(ms, &base));
  CHECK(base == 0 && storectx_active_store() == m);
  CHECK_OK(storectx_uninstall(gm));
  /* The clash: a segment of main's. */
  clash_id = storectx_store_id_new();
  storectx_install_guard gc;
  CHECK_OK(storectx_install(clash_id, &mem[N + 6], &gc));
  CHECK_OK(storectx_suspend(0, &clash_seg));
  run_on(&A, a_clash, NULL);
  CHECK_OK(storectx_resume(clash_seg, &base));
  CHECK(storectx_active_store() == clash_id);
  CHECK_OK(storectx_uninstall(gc));
  for (int k = 4; k < N; k++) {
    CHECK_OK(storectx_resume(segs[k], &base));
    CHECK_OK(storectx_uninstall(guards[k]));
  }
  CHECK(storectx_is_empty());
  recount(N);
  run_on(&A, recount_job, (void *)(uintptr_t)N);
  worker_stop(&A);
}

/* ---- thread exit ---------------------------------------------------------- */

static storectx_async_store *exit_store;

struct exit_job {
  storectx_store_id keep_id, back_id;
  storectx_install_guard keep_guard, back_guard, keep_async;
  storectx_suspended *keep, *back;
};

static void *exiting(void *p) {
  struct exit_job *j = p;
  size_t base = 99;
  CHECK_OK(storectx_resume(j->back, &base)); /* first call: the slow half */
  CHECK(base == 0 && storectx_active_store() == j->back_id);
  CHECK_OK(storectx_suspend(0, &j->back)); /* the parked slot taken back */
  CHECK_OK(storectx_resume(j->keep, &base)); /* fast half: parked again */
  CHECK(storectx_active_store() == storectx_async_store_id(exit_store));
  CHECK(storectx_is_paused(j->keep_id));
  return NULL; /* exits holding keep's entries (one locks) and a parked slot */
}

static void thread_exit(void) {
  for (int round = 0; round < 20; round++) {
    struct exit_job j = {.keep_id = storectx_store_id_new(), .back_id = storectx_store_id_new()};
    CHECK_OK(storectx_install(j.keep_id, &mem[0], &j.keep_guard));
    storectx_write_guard *w = NULL;
    CHECK_OK(storectx_async_store_try_write(exit_store, &w));
    CHECK_OK(storectx_install_async(w, &j.keep_async));
    CHECK_OK(storectx_suspend(0, &j.keep));
    CHECK(storectx_suspended_len(j.keep) == 2);
    CHECK_OK(storectx_install(j.back_id, &mem[1], &j.back_guard));
    CHECK_OK(storectx_suspend(0, &j.back));
    storectx_suspended *old_back = j.back, *old_keep = j.keep;
    pthread_t t;
    CHECK(pthread_create(&t, NULL, exiting, &j) == 0);
    CHECK(pthread_join(t, NULL) == 0);
    size_t base = 99;
    CHECK_STATUS(storectx_resume(old_keep, &base), STORECTX_ERR_STALE_HANDLE);
    CHECK(old_back != j.back);
    CHECK_STATUS(storectx_resume(old_back, &base), STORECTX_ERR_STALE_HANDLE);
    CHECK(storectx_suspended_len(j.back) == 1);
    CHECK_OK(storectx_resume(j.back, &base));
    CHECK(base == 0 && storectx_active_store() == j.back_id);
    CHECK_OK(storectx_uninstall(j.back_guard));
    /* keep's entry went with its thread: its store is free here. */
    CHECK(!storectx_is_active(j.keep_id));
    CHECK_STATUS(storectx_uninstall(j.keep_guard), STORECTX_ERR_STALE_HANDLE);
    CHECK_STATUS(storectx_uninstall(j.keep_async), STORECTX_ERR_STALE_HANDLE);
    /* Its write lock went with it. */
    w = NULL;
    CHECK_OK(storectx_async_store_try_write(exit_store, &w));
    storectx_write_guard_release(w);
    CHECK(storectx_is_empty());
  }
  recount(N);
}

/* ---- crowd ------------------------------------------------------------- */

struct pair {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int turn; /* 0 or 1: whose hop */
  int hops;
  storectx_suspended *box;
  storectx_store_id lower, upper;
  storectx_install_guard gl, gu;
  storectx_borrow b;
  storectx_pause_guard p;
  int *store;
};

static struct pair pairs[CROWD / 2];
static pthread_barrier_t crowd_start;

struct member {
  struct pair *pair;
  int side;
};

static void *crowd_member(void *p) {
  struct member *me = p;
  struct pair *pr = me->pair;
  /* A context (and perhaps a spot) before anyone hops. */
  CHECK(storectx_is_empty());
  storectx_install_guard g;
  CHECK_OK(storectx_install(storectx_store_id_new(), &mem[2], &g));
  CHECK_OK(storectx_uninstall(g));
  pthread_barrier_wait(&crowd_start);
  for (;;) {
    pthread_mutex_lock(&pr->mu);
    while (pr->turn != me->side && pr->hops < HOPS) pthread_cond_wait(&pr->cv, &pr->mu);
    if (pr->hops >= HOPS) {
      pthread_mutex_unlock(&pr->mu);
      break;
    }
    storectx_suspended *s = pr->box;
    pr->box = NULL;
    pthread_mutex_unlock(&pr->mu);

    CHECK(storectx_is_empty());
    CHECK(!storectx_install_guard_installed(pr->gu));
    size_t base = 99;
    CHECK_OK(storectx_resume(s, &base));
    CHECK(base == 0 && storectx_depth() == 2 && storectx_active_store() == pr->upper);
    CHECK(storectx_is_paused(pr->lower));
    CHECK(storectx_install_guard_installed(pr->gu) && storectx_install_guard_installed(pr->gl));
    void *store = NULL;
    storectx_borrow b;
    CHECK_OK(storectx_get_current(pr->upper, &store, &b));
    CHECK(store == pr->store);
    CHECK_OK(storectx_borrow_release(b));
    CHECK_STATUS(storectx_resume(s, &base), STORECTX_ERR_STALE_HANDLE);
    CHECK_OK(storectx_suspend(0, &s));
    CHECK(storectx_is_empty() && storectx_suspended_len(s) == 2);

    pthread_mutex_lock(&pr->mu);
    pr->box = s;
    pr->hops++;
    pr->turn = !me->side;
    pthread_cond_broadcast(&pr->cv);
    pthread_mutex_unlock(&pr->mu);
  }
  return NULL;
}

static void crowd(void) {
  static struct member members[CROWD];
  static pthread_t threads[CROWD];
  CHECK(pthread_barrier_init(&crowd_start, NULL, CROWD) == 0);
  for (int k = 0; k < CROWD / 2; k++) {
    struct pair *pr = &pairs[k];
    CHECK(pthread_mutex_init(&pr->mu, NULL) == 0);
    CHECK(pthread_cond_init(&pr->cv, NULL) == 0);
    pr->turn = k & 1;
    pr->store = &mem[16 + k];
    pr->lower = storectx_store_id_new();
    pr->upper = storectx_store_id_new();
    CHECK_OK(storectx_install(pr->lower, &mem[512 + k], &pr->gl));
    void *store = NULL;
    CHECK_OK(storectx_get_current(pr->lower, &store, &pr->b)); /* kept across hops */
    CHECK_OK(storectx_install(pr->upper, pr->store, &pr->gu));
    CHECK_OK(storectx_pause(pr->upper, &pr->p)); /* kept across hops */
    CHECK_OK(storectx_suspend(0, &pr->box));
    members[2 * k] = (struct member){pr, 0};
    members[2 * k + 1] = (struct member){pr, 1};
  }
  for (int i = 0; i < CROWD; i++) {
    pthread_attr_t attr;
    CHECK(pthread_attr_init(&attr) == 0);
    CHECK(pthread_attr_setstacksize(&attr, 256 << 10) == 0);
    CHECK(pthread_create(&threads[i], &attr, crowd_member, &members[i]) == 0);
    pthread_attr_destroy(&attr);
  }
  for (int i = 0; i < CROWD; i++) CHECK(pthread_join(threads[i], NULL) == 0);
  /* Main unwinds each segment: the pause and the borrow made before the
   * first hop are still the entries' own. */
  for (int k = 0; k < CROWD / 2; k++) {
    struct pair *pr = &pairs[k];
    CHECK(pr->hops == HOPS);
    size_t base = 99;
    CHECK_OK(storectx_resume(pr->box, &base));
    CHECK(base == 0 && storectx_depth() == 2);
    CHECK_STATUS(storectx_uninstall(pr->gl), STORECTX_ERR_OUT_OF_ORDER);
    CHECK_OK(storectx_unpause(pr->p));
    CHECK_OK(storectx_uninstall(pr->gu));
    CHECK_STATUS(storectx_uninstall(pr->gl), STORECTX_ERR_STILL_BORROWED);
    CHECK_OK(storectx_borrow_release(pr->b));
    CHECK_OK(storectx_uninstall(pr->gl));
    CHECK(storectx_is_empty());
  }
  pthread_barrier_destroy(&crowd_start);
}

/* ---- fork ----------------------------------------------------------------- */

static void forked(size_t limit) {
  /* Outstanding across the fork: one one-entry segment, one with three
   * entries and a nested pause (records), and a worker whose spot holds a
   * parked slot. */
  struct worker W;
  worker_start(&W);
  int i = 0;
  run_on(&W, a_fill, NULL); /* fills the table: N one-entry segments */
  run_on(&W, a_resume, &i); /* segs[0]'s slot parked in W's spot */
  for (int k = 1; k < N; k++) storectx_suspended_free(segs[k]);
  storectx_store_id a = storectx_store_id_new(), b = storectx_store_id_new(), c = storectx_store_id_new();
  storectx_install_guard ga, gb, gc, gd;
  storectx_pause_guard p1, p2;
  storectx_suspended *one = NULL, *three = NULL;
  CHECK_OK(storectx_install(a, &mem[3], &ga));
  CHECK_OK(storectx_suspend(0, &one));
  CHECK_OK(storectx_install(b, &mem[4], &gb));
  CHECK_OK(storectx_install(c, &mem[5], &gc));
  CHECK_OK(storectx_install(c, &mem[5], &gd));
  CHECK_OK(storectx_pause(c, &p1));
  CHECK_OK(storectx_pause(c, &p2));
  CHECK_OK(storectx_suspend(0, &three));
  fflush(stdout);
  fflush(stderr);
  /* The child says it finished through a pipe before it exits: under
   * valgrind its own leak check (which cannot see the context of the
   * parent's worker) may then fail its exit status. */
  int verdict[2];
  CHECK(pipe(verdict) == 0);
  pid_t pid = fork();
  CHECK(pid >= 0);
  for (int side = 0; side < 2; side++) {
    if ((side == 0) != (pid == 0)) continue;
    /* The child first (side 0), then the parent (side 1) on its copies. */
    size_t base = 99;
    CHECK_OK(storectx_resume(three, &base));
    CHECK(base == 0 && storectx_depth() == 3 && storectx_active_store() == c);
    CHECK_OK(storectx_resume(one, &base));
    CHECK(base == 3 && storectx_active_store() == a);
    CHECK_STATUS(storectx_resume(three, &base), STORECTX_ERR_STALE_HANDLE);
    CHECK_OK(storectx_uninstall(ga));
    CHECK_STATUS(storectx_unpause(p1), STORECTX_ERR_OUT_OF_ORDER);
    CHECK_OK(storectx_unpause(p2));
    CHECK_OK(storectx_unpause(p1));
    CHECK_OK(storectx_uninstall(gd));
    CHECK_OK(storectx_uninstall(gc));
    CHECK_OK(storectx_uninstall(gb));
    CHECK(storectx_is_empty());
    recount(limit);
    if (pid == 0) {
      puts("child: resumed, unwound, table whole");
      fflush(stdout);
      if (write(verdict[1], "k", 1) != 1) _exit(99);
      _exit(0);
    }
  }
  close(verdict[1]);
  char said = 0;
  ssize_t got = read(verdict[0], &said, 1);
  close(verdict[0]);
  int status = 0;
  CHECK(waitpid(pid, &status, 0) == pid);
  if (got != 1 || said != 'k') {
    fprintf(stderr, "the fork child ended with status %#x before its verdict\n", status);
    exit(1);
  }
  run_on(&W, recount_job, (void *)(uintptr_t)limit);
  worker_stop(&W);
}

int main(void) {
  set_table_limit_fn set_limit = storectx_segspot_limit_weak;
  if (!set_limit)
    set_limit = (set_table_limit_fn)(uintptr_t)dlsym(RTLD_DEFAULT, "storectx_testing_set_table_limit");
  if (!set_limit) {
    printf("adversary_segment_fast_paths_spots_exit_crowd_fork: SKIPPED (no testing hook: "
           "build with --features testing)\n");
    return 0;
  }
  CHECK_OK(storectx_async_store_new(storectx_store_id_new(), &mem[6], &exit_store));
  set_limit(N);
  storectx_install_guard g;
  CHECK_OK(storectx_install(storectx_store_id_new(), &mem[0], &g));
  CHECK_OK(storectx_uninstall(g));
  stolen_spot();
  puts("stolen spot: ok");
  thread_exit();
  puts("thread exit: ok");
  forked(N);
  puts("fork: ok");
  set_limit(CROWD);
  crowd();
  recount(CROWD);
  puts("crowd: ok");
  storectx_async_store_release(exit_store);
  return 0;
}
