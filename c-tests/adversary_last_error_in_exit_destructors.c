/* cprog: skip on=musl,windows the destructor order this checks is glibc's (pthread_key destructors in key-index order each round, the library's own key among them); musl runs them in another order and Windows tears the library's state down from an FLS callback, so which user destructor runs after the teardown is not fixed there (reading last_error there is still safe: the same code) */
/* Behaviour: storectx_last_error() read from pthread_key destructors while
 * the thread exits, before and after the library's teardown, with the
 * thread's last refusal still unformatted (0.3 keeps a refusal as a Copy
 * `Detail` and formats it when read, into a per-thread buffer that the
 * teardown frees). Key order: glibc runs destructors in key-index order in
 * each round; `early` is created before the library's key (the first
 * stateful call of the process creates it), `late` after it.
 * - `early`, round 1 (before the teardown): the thread's message, formatted
 *   now: "get_current: store N is not on this thread's stack; ...".
 * - `late`, round 1 (after the teardown): the teardown's static message,
 *   never the freed buffer; a stateful call is refused (NO_CONTEXT) and
 *   the message stays the static one; read-only calls answer as for an
 *   empty stack.
 * - `early`, round 2 (set again from round 1): the same as `late`.
 * Under memcheck/ASan a read of the freed buffer is an error. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "check.h"

static pthread_key_t early, late;
static storectx_store_id missing, top;
static char seen_early1[600], seen_late1[600], seen_early2[600];
static storectx_status late_status, early2_status;
static size_t late_depth = 99;
static bool late_empty, late_active;
static int mem;

static void early_destructor(void *v) {
  if ((uintptr_t)v == 1) {
    snprintf(seen_early1, sizeof seen_early1, "%s", storectx_last_error());
    CHECK(pthread_setspecific(early, (void *)2) == 0); /* once more, next round */
  } else {
    void *p;
    early2_status = storectx_get_current_transient(missing, &p);
    snprintf(seen_early2, sizeof seen_early2, "%s", storectx_last_error());
  }
}

static void late_destructor(void *v) {
  (void)v;
  snprintf(seen_late1, sizeof seen_late1, "%s", storectx_last_error());
  storectx_install_guard g;
  late_status = storectx_install(missing, &mem, &g);
  CHECK(strcmp(storectx_last_error(), seen_late1) == 0);
  late_depth = storectx_depth();
  late_empty = storectx_is_empty();
  late_active = storectx_is_active(top);
}

static void *exiting(void *arg) {
  (void)arg;
  CHECK(pthread_setspecific(early, (void *)1) == 0);
  CHECK(pthread_setspecific(late, (void *)1) == 0);
  storectx_install_guard g;
  CHECK_OK(storectx_install(top, &mem, &g));
  void *p;
  /* The last refusal, left unread: formatted only in a destructor. */
  CHECK(storectx_get_current_transient(missing, &p) == STORECTX_ERR_NOT_INSTALLED);
  return NULL; /* exits with its entry on the stack */
}

int main(void) {
  CHECK(pthread_key_create(&early, early_destructor) == 0);
  missing = storectx_store_id_new(); /* stateless calls: no key yet */
  top = storectx_store_id_new();
  storectx_install_guard g;
  CHECK_OK(storectx_install(top, &mem, &g)); /* the library's key */
  CHECK_OK(storectx_uninstall(g));
  CHECK(pthread_key_create(&late, late_destructor) == 0);

  pthread_t t;
  CHECK(pthread_create(&t, NULL, exiting, NULL) == 0);
  CHECK(pthread_join(t, NULL) == 0);

  char want[128];
  snprintf(want, sizeof want, "get_current_transient: store %llu is not on this thread's stack",
           (unsigned long long)missing);
  printf("early, round 1: %s\nlate, round 1:  %s\nearly, round 2: %s\n", seen_early1, seen_late1,
         seen_early2);
  CHECK(strncmp(seen_early1, want, strlen(want)) == 0);
  CHECK(strstr(seen_late1, "torn down") != NULL);
  CHECK(late_status == STORECTX_ERR_NO_CONTEXT);
  CHECK(late_depth == 0 && late_empty && !late_active);
  CHECK(early2_status == STORECTX_ERR_NO_CONTEXT);
  CHECK(strcmp(seen_early2, seen_late1) == 0);
  /* The thread's entry went with it: store `top` can be installed here. */
  CHECK_OK(storectx_install(top, &mem, &g));
  CHECK_OK(storectx_uninstall(g));
  return 0;
}
