/* Behaviour: uninstall, refused and accepted, from a pthread_key destructor
 * of a thread that installed entries earlier, in destructor rounds 1 to 4,
 * for a key created before the library's own (its destructor runs before
 * the library's teardown in glibc's order) and one created after. The
 * thread leaves a sync entry, an async entry (with its no-op guard) and a
 * sync entry on top. The destructor, in its round, calls in turn:
 * uninstall of the async entry's guard (OUT_OF_ORDER naming depth 2), of
 * the top's (OK), of the no-op guard (OK, nothing popped), of the async
 * entry's guard (OK: uninstall's slow half pops it and unlocks), of it
 * again (STALE_HANDLE), of the bottom's (OK) — or, once the teardown ran,
 * every one of them NO_CONTEXT with nothing changed (the teardown already
 * dropped the entries). Never half one way, half the other; never PANIC;
 * storectx_last_error() gives a message after each refusal. After the
 * thread is joined the async store's lock is free (try_write OK at once),
 * and valgrind (.ci/run) sees no leak. */
#include <pthread.h>
#include <stdint.h>

#include "check.h"

/* cprog: timeout 60 */

#define ROUNDS 4

static int mem[3];
static storectx_async_store *as;
static pthread_key_t before_key, after_key, key;
static int want_round;
static int done_ok, done_refused;

typedef struct {
  storectx_install_guard bottom, async_g, noop, top;
  int round;
} held;

static void expect(storectx_status got, storectx_status want, int torn, const char *what) {
  storectx_status w = torn ? STORECTX_ERR_NO_CONTEXT : want;
  if (got != w) {
    fprintf(stderr, "FAULT round %d: %s answered %s, expected %s\n  last_error: %s\n", want_round,
            what, storectx_status_str(got), storectx_status_str(w), storectx_last_error());
    exit(1);
  }
  if (got != STORECTX_OK) CHECK(storectx_last_error()[0] != '\0');
}

static void destructor(void *value) {
  held *h = value;
  if (++h->round < want_round) {
    CHECK(pthread_setspecific(key, h) == 0);
    return;
  }
  storectx_status first = storectx_uninstall(h->async_g);
  int torn = first == STORECTX_ERR_NO_CONTEXT;
  expect(first, STORECTX_ERR_OUT_OF_ORDER, torn, "uninstall(async, under the top)");
  if (!torn) {
    CHECK(strstr(storectx_last_error(), "is at depth 2, top is store") != NULL);
  }
  expect(storectx_uninstall(h->top), STORECTX_OK, torn, "uninstall(top)");
  expect(storectx_uninstall(h->noop), STORECTX_OK, torn, "uninstall(no-op)");
  if (!torn) CHECK(storectx_depth() == 2);
  expect(storectx_uninstall(h->async_g), STORECTX_OK, torn, "uninstall(async)");
  expect(storectx_uninstall(h->async_g), STORECTX_ERR_STALE_HANDLE, torn, "uninstall(async) again");
  expect(storectx_uninstall(h->bottom), STORECTX_OK, torn, "uninstall(bottom)");
  CHECK(storectx_depth() == 0);
  if (torn)
    done_refused++;
  else
    done_ok++;
  free(h);
}

static void *thread_main(void *unused) {
  (void)unused;
  held *h = calloc(1, sizeof *h);
  CHECK(h != NULL);
  CHECK_OK(storectx_install(storectx_store_id_new(), &mem[0], &h->bottom));
  storectx_write_guard *w = NULL;
  CHECK_OK(storectx_async_store_try_write(as, &w));
  CHECK_OK(storectx_install_async(w, &h->async_g));
  CHECK_OK(storectx_install(storectx_async_store_id(as), &mem[1], &h->noop));
  CHECK_OK(storectx_install(storectx_store_id_new(), &mem[2], &h->top));
  CHECK(storectx_depth() == 3);
  CHECK(pthread_setspecific(key, h) == 0);
  return NULL;
}

static void run_all_rounds(void) {
  for (want_round = 1; want_round <= ROUNDS; want_round++) {
    pthread_t t;
    CHECK(pthread_create(&t, NULL, thread_main, NULL) == 0);
    CHECK(pthread_join(t, NULL) == 0);
    storectx_write_guard *w = NULL;
    CHECK_OK(storectx_async_store_try_write(as, &w));
    storectx_write_guard_release(w);
  }
}

int main(void) {
  /* A key created before the library's first stateful call. */
  CHECK(pthread_key_create(&before_key, destructor) == 0);
  CHECK_OK(storectx_async_store_new(storectx_store_id_new(), &mem[1], &as));
  storectx_install_guard g;
  CHECK_OK(storectx_install(storectx_store_id_new(), &mem[0], &g));
  CHECK_OK(storectx_uninstall(g));
  /* One created after it (both kept: a deleted key's index is reused). */
  CHECK(pthread_key_create(&after_key, destructor) == 0);
  key = before_key;
  run_all_rounds();
  key = after_key;
  run_all_rounds();
  storectx_async_store_release(as);
  CHECK(done_ok + done_refused == 2 * ROUNDS);
  printf("%d destructor rounds did every uninstall, %d found the state torn down\n", done_ok,
         done_refused);
  return 0;
}
