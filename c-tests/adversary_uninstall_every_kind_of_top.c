/* Behaviour: storectx_uninstall against every kind of top entry, through
 * its fast path and its one slow half (src/ffi/install.rs `uninstall_slow`,
 * which pops an async entry or one with pause records from the same read
 * of the thread's word that explains a refusal). Tops: a clear sync entry,
 * a borrowed one, one with a pause that took its borrow, one with a pause
 * that took none and a nested one inside it, a nested entry of the store
 * below, an async entry clear, borrowed (get_current_async), paused, and
 * with its no-op guard. Against each: a zeroed guard, a guard with only its
 * kind bits, the guard of the entry below, the top's guard of a popped
 * entry, the top's no-op form on a sync top, and last the top's own guard:
 * STALE_HANDLE, OUT_OF_ORDER naming depth 1, STILL_BORROWED naming the
 * borrow count, OK with the no-op guard (depth unchanged), OK with the
 * guard (popped; an async entry's lock free at once, for another thread
 * too). Each refusal changes nothing (describe) and names "uninstall: ".
 * Also: uninstall on a thread that never called the library and on one
 * whose stack is empty: STALE_HANDLE naming depth 0, nothing created that
 * a later call would see. */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "check.h"

#define DESCRIBE_MAX 4096

static int mem[4];
static storectx_install_guard below_g, spent_g;
static storectx_store_id below_id;

static void describe_into(char *out) {
  size_t n = storectx_describe(out, DESCRIBE_MAX);
  CHECK(n < DESCRIBE_MAX);
}

static void refused(uint64_t raw, storectx_status want, const char *text) {
  char before[DESCRIBE_MAX], after[DESCRIBE_MAX];
  describe_into(before);
  storectx_install_guard g = {raw};
  CHECK_STATUS(storectx_uninstall(g), want);
  if (strncmp(storectx_last_error(), text, strlen(text)) != 0) {
    fprintf(stderr, "FAULT: uninstall(%#llx): \"%s\", want \"%s...\"\n",
            (unsigned long long)raw, storectx_last_error(), text);
    exit(1);
  }
  describe_into(after);
  CHECK(strcmp(before, after) == 0);
}

/* The refusals every top gets; `top` is its guard, `sync` its kind. */
static void attack(storectx_install_guard top, storectx_store_id top_id, bool sync) {
  char text[256];
  size_t depth = storectx_depth();
  snprintf(text, sizeof text,
           "uninstall: install guard names no entry of its kind on this thread's stack (depth %zu)",
           depth);
  refused(0, STORECTX_ERR_STALE_HANDLE, text);
  refused(1, STORECTX_ERR_STALE_HANDLE, text);
  refused(top.raw & 7, STORECTX_ERR_STALE_HANDLE, text);
  refused(spent_g.raw, STORECTX_ERR_STALE_HANDLE, text);
  /* The no-op form of a sync entry's guard (its number, the no-op kind). */
  if (sync) refused(top.raw + 9, STORECTX_ERR_STALE_HANDLE, text);
  snprintf(text, sizeof text,
           "uninstall: install guard for store %llu is at depth 1, top is store %llu at depth %zu",
           (unsigned long long)below_id, (unsigned long long)top_id, depth);
  refused(below_g.raw, STORECTX_ERR_OUT_OF_ORDER, text);
}

static void popped(storectx_install_guard g, size_t depth) {
  CHECK_OK(storectx_uninstall(g));
  CHECK(storectx_depth() == depth - 1);
  spent_g = g;
}

static storectx_async_store *as;

static void *lock_is_free(void *unused) {
  (void)unused;
  storectx_write_guard *w = NULL;
  CHECK_OK(storectx_async_store_try_write(as, &w));
  storectx_write_guard_release(w);
  return NULL;
}

static void lock_free_everywhere(void) {
  pthread_t t;
  CHECK(pthread_create(&t, NULL, lock_is_free, NULL) == 0);
  CHECK(pthread_join(t, NULL) == 0);
  lock_is_free(NULL);
}

static void *stranger(void *unused) {
  (void)unused;
  /* A thread that never called the library, then one with an empty stack. */
  for (int k = 0; k < 2; k++) {
    CHECK_STATUS(storectx_uninstall(below_g), STORECTX_ERR_STALE_HANDLE);
    CHECK(strstr(storectx_last_error(), "(depth 0)") != NULL);
    CHECK(storectx_is_empty());
    CHECK(!storectx_install_guard_installed(below_g));
  }
  storectx_install_guard g;
  CHECK_OK(storectx_install(storectx_store_id_new(), &mem[0], &g));
  CHECK_OK(storectx_uninstall(g));
  CHECK_STATUS(storectx_uninstall(g), STORECTX_ERR_STALE_HANDLE);
  CHECK(strstr(storectx_last_error(), "(depth 0)") != NULL);
  return NULL;
}

int main(void) {
  below_id = storectx_store_id_new();
  CHECK_OK(storectx_install(below_id, &mem[0], &below_g));
  /* A spent guard to try everywhere. */
  CHECK_OK(storectx_install(storectx_store_id_new(), &mem[1], &spent_g));
  CHECK_OK(storectx_uninstall(spent_g));

  storectx_install_guard g, inner, noop;
  storectx_borrow b;
  storectx_pause_guard p, p2;
  void *ptr;
  char text[256];

  /* A clear sync entry. */
  storectx_store_id s = storectx_store_id_new();
  CHECK_OK(storectx_install(s, &mem[1], &g));
  attack(g, s, true);
  popped(g, 2);

  /* A borrowed one: STILL_BORROWED, then released and popped. */
  CHECK_OK(storectx_install(s, &mem[1], &g));
  CHECK_OK(storectx_get_current(s, &ptr, &b));
  CHECK_OK(storectx_get_current(s, &ptr, &b));
  attack(g, s, true);
  snprintf(text, sizeof text, "uninstall: store %llu at depth 2 still has 2 borrow(s)",
           (unsigned long long)s);
  refused(g.raw, STORECTX_ERR_STILL_BORROWED, text);
  CHECK_OK(storectx_borrow_release(b));
  CHECK_OK(storectx_borrow_release(b));
  popped(g, 2);

  /* A pause that took the borrow: the entry counts none, so it pops (its
   * borrow and pause guards go stale with it). */
  CHECK_OK(storectx_install(s, &mem[1], &g));
  CHECK_OK(storectx_get_current(s, &ptr, &b));
  CHECK_OK(storectx_pause(s, &p));
  attack(g, s, true);
  popped(g, 2);
  CHECK_STATUS(storectx_unpause(p), STORECTX_ERR_STALE_HANDLE);
  CHECK_STATUS(storectx_borrow_release(b), STORECTX_ERR_STALE_HANDLE);

  /* Nested pauses (records in the vector), and a nested entry of the same
   * store on top of the paused one. */
  CHECK_OK(storectx_install(s, &mem[1], &g));
  CHECK_OK(storectx_pause(s, &p));
  CHECK_OK(storectx_pause(s, &p2));
  CHECK_OK(storectx_install(s, &mem[1], &inner));
  attack(inner, s, true);
  snprintf(text, sizeof text,
           "uninstall: install guard for store %llu is at depth 2, top is store %llu at depth 3",
           (unsigned long long)s, (unsigned long long)s);
  refused(g.raw, STORECTX_ERR_OUT_OF_ORDER, text);
  popped(inner, 3);
  attack(g, s, true);
  popped(g, 2);
  CHECK_STATUS(storectx_unpause(p2), STORECTX_ERR_STALE_HANDLE);
  CHECK_STATUS(storectx_unpause(p), STORECTX_ERR_STALE_HANDLE);

  /* A nested entry of the store below. */
  CHECK_OK(storectx_install(below_id, &mem[0], &inner));
  attack(inner, below_id, true);
  popped(inner, 2);

  /* Async entries: clear, borrowed, paused, with a no-op guard. */
  storectx_store_id a = storectx_store_id_new();
  CHECK_OK(storectx_async_store_new(a, &mem[2], &as));
  for (int shape = 0; shape < 4; shape++) {
    storectx_write_guard *w = NULL;
    CHECK_OK(storectx_async_store_try_write(as, &w));
    CHECK_OK(storectx_install_async(w, &g));
    CHECK_OK(storectx_install(a, &mem[3], &noop));
    CHECK(storectx_depth() == 2);
    storectx_async_store *ref = NULL;
    if (shape == 1) {
      CHECK_OK(storectx_get_current_async(a, &ref, &ptr, &b));
      CHECK(ptr == &mem[2] && ref != NULL);
      storectx_async_store_release(ref);
    }
    if (shape == 2) CHECK_OK(storectx_pause(a, &p));
    attack(g, a, false);
    /* The no-op guard: OK, nothing popped, as often as asked. */
    for (int k = 0; k < 3; k++) {
      CHECK_OK(storectx_uninstall(noop));
      CHECK(storectx_depth() == 2 && storectx_is_active(a));
    }
    if (shape == 1) {
      snprintf(text, sizeof text, "uninstall: store %llu at depth 2 still has 1 borrow(s)",
               (unsigned long long)a);
      refused(g.raw, STORECTX_ERR_STILL_BORROWED, text);
      CHECK_STATUS(storectx_async_store_try_write(as, &w), STORECTX_ERR_BUSY);
      CHECK_OK(storectx_borrow_release(b));
    }
    popped(g, 2);
    lock_free_everywhere();
    CHECK_STATUS(storectx_uninstall(noop), STORECTX_ERR_STALE_HANDLE);
    CHECK_STATUS(storectx_uninstall(g), STORECTX_ERR_STALE_HANDLE);
    if (shape == 2) CHECK_STATUS(storectx_unpause(p), STORECTX_ERR_STALE_HANDLE);
  }
  storectx_async_store_release(as);

  pthread_t t;
  CHECK(pthread_create(&t, NULL, stranger, NULL) == 0);
  CHECK(pthread_join(t, NULL) == 0);

  CHECK_OK(storectx_uninstall(below_g));
  refused(below_g.raw, STORECTX_ERR_STALE_HANDLE,
          "uninstall: install guard names no entry of its kind on this thread's stack (depth 0)");
  CHECK(storectx_is_empty());
  printf("every kind of top: as documented\n");
  return 0;
}
