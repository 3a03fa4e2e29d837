/* A worker thread that runs one job at a time, for programs that must make
 * library calls on a chosen thread (a guard taken on A, installed on B...):
 * worker_start, then run_on (returns once the job ran on the worker), then
 * worker_stop (joins). Include after check.h, with _GNU_SOURCE/pthread.h. */
#ifndef STORECTX_CTESTS_WORKER_H
#define STORECTX_CTESTS_WORKER_H

#include <pthread.h>

struct worker {
  pthread_t t;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  void (*job)(void *);
  void *arg;
  int pending, quit;
};

static void *worker_main(void *p) {
  struct worker *w = p;
  pthread_mutex_lock(&w->mu);
  for (;;) {
    while (!w->pending && !w->quit) pthread_cond_wait(&w->cv, &w->mu);
    if (!w->pending) break;
    pthread_mutex_unlock(&w->mu);
    w->job(w->arg);
    pthread_mutex_lock(&w->mu);
    w->pending = 0;
    pthread_cond_broadcast(&w->cv);
  }
  pthread_mutex_unlock(&w->mu);
  return NULL;
}

static void worker_start(struct worker *w) {
  CHECK(pthread_mutex_init(&w->mu, NULL) == 0);
  CHECK(pthread_cond_init(&w->cv, NULL) == 0);
  w->pending = w->quit = 0;
  CHECK(pthread_create(&w->t, NULL, worker_main, w) == 0);
}

/* Runs job(arg) on w and waits until it returned. */
static void run_on(struct worker *w, void (*job)(void *), void *arg) {
  pthread_mutex_lock(&w->mu);
  w->job = job;
  w->arg = arg;
  w->pending = 1;
  pthread_cond_broadcast(&w->cv);
  while (w->pending) pthread_cond_wait(&w->cv, &w->mu);
  pthread_mutex_unlock(&w->mu);
}

static void worker_stop(struct worker *w) {
  pthread_mutex_lock(&w->mu);
  w->quit = 1;
  pthread_cond_broadcast(&w->cv);
  pthread_mutex_unlock(&w->mu);
  CHECK(pthread_join(w->t, NULL) == 0);
}

#endif
