/* readme_thread_pool.c: a task's entries travel with it through a thread
 * pool whose threads it does not control — docs/thread-pools.md's "Thread pools and
 * FFI worker threads" rule, verbatim between the markers: the task carries a
 * segment (empty at first); each work item resumes it when it starts and
 * suspends it again before it returns to the pool. A small pthread pool
 * with one work queue per thread runs many tasks step by step, each step on
 * another pool thread; every step checks that the task's own stores answer
 * there, and updates a shared async store under its lock (no update lost).
 * A task cancelled mid-flight releases its lock; its guards become stale.
 * A segment resumed twice (given to two work items) is refused the second
 * time. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdint.h>

#include "check.h"

enum { WORKERS = 3, TASKS = 48, STEPS = 12, CANCELLED = 5, CANCEL_AT = 6 };

typedef struct { storectx_store_id id; long count; } store_t;

typedef struct task {
  struct task *next;             /* in a worker's queue */
  storectx_suspended *entries;   /* what the task pushed, between work items */
  int step, worker;              /* the next step, the worker that ran the last one */
  store_t own, locked;           /* a sync store and an async store of its own */
  storectx_async_store *lock;
  storectx_install_guard own_entry, locked_entry;
} task;

/* ---- the pool: one queue per worker, so each step lands on another thread */

typedef struct {
  pthread_mutex_t mutex;
  pthread_cond_t wake;
  task *head, *tail;
  int stop;
} queue;

static queue queues[WORKERS];
static task tasks[TASKS];
static store_t total;                   /* shared: every step adds one */
static storectx_async_store *total_lock;
static pthread_mutex_t done_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t all_done = PTHREAD_COND_INITIALIZER;
static int finished;                    /* tasks that ended or were cancelled */

static void submit(int worker, task *t) {
  queue *q = &queues[worker];
  CHECK(pthread_mutex_lock(&q->mutex) == 0);
  t->next = NULL;
  if (q->tail) q->tail->next = t; else q->head = t;
  q->tail = t;
  CHECK(pthread_cond_signal(&q->wake) == 0);
  CHECK(pthread_mutex_unlock(&q->mutex) == 0);
}

static void task_finished(void) {
  CHECK(pthread_mutex_lock(&done_mutex) == 0);
  finished++;
  CHECK(pthread_cond_signal(&all_done) == 0);
  CHECK(pthread_mutex_unlock(&done_mutex) == 0);
}

/* ---- one step of a task: plain code that uses get_current ----------------- */

static void step(task *t, int worker) {
  CHECK(t->step == 0 || t->worker != worker);   /* it hopped threads */
  if (t->step == 0) {                           /* first step: push its stores */
    storectx_write_guard *w;
    CHECK_OK(storectx_async_store_try_write(t->lock, &w));
    CHECK_OK(storectx_install_async(w, &t->locked_entry));
    CHECK_OK(storectx_install(t->own.id, &t->own, &t->own_entry));
  }
  void *found;
  CHECK_OK(storectx_get_current_transient(t->own.id, &found));
  CHECK(found == &t->own && storectx_is_paused(t->locked.id));
  ((store_t *)found)->count++;

  /* a nested call into the shared store, under its lock, within this step */
  storectx_write_guard *w;
  storectx_install_guard g;
  CHECK_OK(storectx_async_store_write(total_lock, UINT64_MAX, &w));
  CHECK_OK(storectx_install_async(w, &g));
  CHECK_OK(storectx_get_current_transient(total.id, &found));
  ((store_t *)found)->count++;
  CHECK_OK(storectx_uninstall(g));

  if (t->step == STEPS - 1) {                   /* last step: pop them */
    CHECK_OK(storectx_uninstall(t->own_entry));
    CHECK_OK(storectx_uninstall(t->locked_entry));
  }
  t->step++;
  t->worker = worker;
}

/* README pool begins */
/* A work item, on whatever pool thread picked it. */
static void work_item(task *t, int worker) {
  size_t base;
  storectx_resume(t->entries, &base);           /* the task's entries, on top of this thread */
  step(t, worker);                              /* code that uses get_current */
  storectx_suspend(base, &t->entries);          /* they leave before the thread is given back */
}
/* README pool ends */

static void *pool_thread(void *arg) {
  int worker = (int)(intptr_t)arg;
  queue *q = &queues[worker];
  for (;;) {
    CHECK(pthread_mutex_lock(&q->mutex) == 0);
    while (!q->head && !q->stop) CHECK(pthread_cond_wait(&q->wake, &q->mutex) == 0);
    task *t = q->head;
    if (t) {
      q->head = t->next;
      if (!q->head) q->tail = NULL;
    }
    CHECK(pthread_mutex_unlock(&q->mutex) == 0);
    if (!t) break;

    work_item(t, worker);
    CHECK(storectx_is_empty());                 /* nothing stays on a pool thread */

    if (t->step == STEPS) {                     /* done: its segment is empty */
      CHECK(storectx_suspended_len(t->entries) == 0);
      storectx_suspended_free(t->entries);
      t->entries = NULL;
      task_finished();
    } else if (t - tasks == CANCELLED && t->step == CANCEL_AT) {
      CHECK(storectx_suspended_len(t->entries) == 2);
/* README pool cancel begins */
      storectx_suspended_free(t->entries);      /* cancelled: drops its entries, unlocks */
/* README pool cancel ends */
      t->entries = NULL;
      task_finished();
    } else {
      submit((worker + 1) % WORKERS, t);        /* next step on the next thread */
    }
  }
  return NULL;
}

int main(void) {
  total.id = storectx_store_id_new();
  CHECK_OK(storectx_async_store_new(total.id, &total, &total_lock));
  for (int i = 0; i < WORKERS; i++) {
    CHECK(pthread_mutex_init(&queues[i].mutex, NULL) == 0);
    CHECK(pthread_cond_init(&queues[i].wake, NULL) == 0);
  }
  pthread_t threads[WORKERS];
  for (int i = 0; i < WORKERS; i++)
    CHECK(pthread_create(&threads[i], NULL, pool_thread, (void *)(intptr_t)i) == 0);

  for (int i = 0; i < TASKS; i++) {
    task *t = &tasks[i];
    t->own.id = storectx_store_id_new();
    t->locked.id = storectx_store_id_new();
    CHECK_OK(storectx_async_store_new(t->locked.id, &t->locked, &t->lock));
/* README pool start begins */
    storectx_suspend(storectx_depth(), &t->entries);  /* a new task: an empty segment */
/* README pool start ends */
    CHECK(t->entries != NULL && storectx_suspended_len(t->entries) == 0);
    submit(i % WORKERS, t);
  }

  CHECK(pthread_mutex_lock(&done_mutex) == 0);
  while (finished < TASKS) CHECK(pthread_cond_wait(&all_done, &done_mutex) == 0);
  CHECK(pthread_mutex_unlock(&done_mutex) == 0);
  for (int i = 0; i < WORKERS; i++) {
    CHECK(pthread_mutex_lock(&queues[i].mutex) == 0);
    queues[i].stop = 1;
    CHECK(pthread_cond_signal(&queues[i].wake) == 0);
    CHECK(pthread_mutex_unlock(&queues[i].mutex) == 0);
  }
  for (int i = 0; i < WORKERS; i++) CHECK(pthread_join(threads[i], NULL) == 0);

  for (int i = 0; i < TASKS; i++) {
    task *t = &tasks[i];
    int steps = i == CANCELLED ? CANCEL_AT : STEPS;
    CHECK(t->step == steps && t->own.count == steps && t->entries == NULL);
    storectx_write_guard *w;
    CHECK_OK(storectx_async_store_try_write(t->lock, &w));  /* cancelled too: unlocked */
    storectx_write_guard_release(w);
    if (i == CANCELLED)
      CHECK_STATUS(storectx_uninstall(t->own_entry), STORECTX_ERR_STALE_HANDLE);
    storectx_async_store_release(t->lock);
  }
  CHECK(total.count == (TASKS - 1) * STEPS + CANCEL_AT);  /* no update lost */

  /* a segment handed to two work items: the second resume is refused */
  storectx_suspended *once;
  size_t base;
  CHECK_OK(storectx_suspend(storectx_depth(), &once));
  CHECK_OK(storectx_resume(once, &base));
  CHECK_STATUS(storectx_resume(once, &base), STORECTX_ERR_STALE_HANDLE);
  storectx_async_store_release(total_lock);
  for (int i = 0; i < WORKERS; i++) {
    pthread_mutex_destroy(&queues[i].mutex);
    pthread_cond_destroy(&queues[i].wake);
  }
  CHECK(storectx_is_empty());
  return 0;
}
