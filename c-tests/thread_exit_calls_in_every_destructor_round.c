/* Behaviour: a fresh thread whose first libstorectx call comes from a
 * pthread_key destructor, and which calls again in every later destructor
 * round (up to glibc's 4), never leaves a write lock held after it exits,
 * whichever key was created first (the library's or the caller's): each call
 * is either cleaned up by the library's teardown or refused with nothing
 * changed (the guard it was given still holds the lock and is released).
 * Found by a new-user trial: with the caller's key created after the
 * library's, the library's teardown ran one round later than it counted, and
 * the round-4 call's lock leaked. Issue 11, "Thread exit, whatever the order". */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "check.h"

static storectx_async_store *store;
static int dummy;
static pthread_key_t key;
static int last_round;

static void each_round(void *value) {
  intptr_t round = (intptr_t)value;
  storectx_write_guard *w;
  if (storectx_async_store_try_write(store, &w) == STORECTX_OK) {
    storectx_install_guard g;
    storectx_status s = storectx_install_async(w, &g);
    if (s != STORECTX_OK) {
      CHECK(s == STORECTX_ERR_NO_CONTEXT);
      /* Refused: nothing changed, w still holds the lock. */
      storectx_write_guard *other;
      CHECK(storectx_async_store_try_write(store, &other) == STORECTX_ERR_BUSY);
      storectx_write_guard_release(w);
    }
  }
  if (round < last_round) pthread_setspecific(key, (void *)(round + 1));
}

static void *thread_main(void *arg) {
  (void)arg;
  pthread_setspecific(key, (void *)1); /* no libstorectx call before exit */
  return NULL;
}

static void run(int rounds, int key_first) {
  last_round = rounds;
  if (key_first) CHECK(pthread_key_create(&key, each_round) == 0);
  CHECK_OK(storectx_async_store_new(storectx_store_id_new(), &dummy, &store));
  { /* the library's first stateful call in this process creates its key */
    storectx_install_guard g;
    CHECK_OK(storectx_install(storectx_store_id_new(), &dummy, &g));
    CHECK_OK(storectx_uninstall(g));
  }
  if (!key_first) CHECK(pthread_key_create(&key, each_round) == 0);
  pthread_t t;
  CHECK(pthread_create(&t, NULL, thread_main, NULL) == 0);
  CHECK(pthread_join(t, NULL) == 0);
  storectx_write_guard *w;
  storectx_status s = storectx_async_store_try_write(store, &w);
  if (s != STORECTX_OK)
    fprintf(stderr, "rounds %d, caller's key %s the library's: lock left held (%s)\n", rounds,
            key_first ? "before" : "after", storectx_status_str(s));
  CHECK_OK(s);
  storectx_write_guard_release(w);
  storectx_async_store_release(store);
  /* The key is not deleted: a new key must get a new index, after the
   * library's, or the order under test would not hold. */
}

int main(int argc, char **argv) {
  (void)argc; (void)argv;
  /* The library's key exists from the first run on, so "caller's key
   * first" is only possible once: run it first, then the others. */
  run(4, 1);
  for (int rounds = 1; rounds <= 4; rounds++) run(rounds, 0);
  return 0;
}
