/* Behaviour: handles are bound to the thread whose stack holds their entry.
 * Install guards, borrows and pause guards used from another pthread answer
 * STORECTX_ERR_STALE_HANDLE there (also when that thread has entries of its
 * own) and change nothing on either thread; the owning thread's handles keep
 * working. Each thread has its own stack and its own last_error. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdint.h>

#include "check.h"

#define SENTINEL_RAW UINT64_C(0x5e5e5e5e5e5e5e5e)
#define DESCRIBE_MAX 4096

static int store1, store2, store3;
static storectx_store_id s1, s2, s3;

/* main's handles (store1 under store2), then the other thread's (store3). */
static storectx_install_guard g1, g2, g3;
static storectx_borrow b1, b2, b3;
static storectx_pause_guard p2, p3;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int phase;

static void set_phase(int p) {
  pthread_mutex_lock(&mu);
  phase = p;
  pthread_cond_broadcast(&cv);
  pthread_mutex_unlock(&mu);
}

static void wait_phase(int p) {
  pthread_mutex_lock(&mu);
  while (phase < p) pthread_cond_wait(&cv, &mu);
  pthread_mutex_unlock(&mu);
}

static void describe_into(char *out) {
  size_t n = storectx_describe(out, DESCRIBE_MAX);
  CHECK(n < DESCRIBE_MAX);
}

/* The given handles name no entry on the calling thread: all stale, and the
 * calling thread's stack is unchanged. */
static void check_foreign(storectx_install_guard g, storectx_borrow b,
                          storectx_pause_guard p) {
  char before[DESCRIBE_MAX], after[DESCRIBE_MAX];
  describe_into(before);
  CHECK(!storectx_install_guard_installed(g));
  CHECK_STATUS(storectx_uninstall(g), STORECTX_ERR_STALE_HANDLE);
  CHECK(strncmp(storectx_last_error(), "uninstall:", 10) == 0);
  CHECK_STATUS(storectx_borrow_release(b), STORECTX_ERR_STALE_HANDLE);
  CHECK(strncmp(storectx_last_error(), "borrow_release:", 15) == 0);
  storectx_borrow out = {SENTINEL_RAW};
  CHECK_STATUS(storectx_borrow_clone(b, &out), STORECTX_ERR_STALE_HANDLE);
  CHECK(strncmp(storectx_last_error(), "borrow_clone:", 13) == 0);
  CHECK(out.raw == SENTINEL_RAW);
  CHECK_STATUS(storectx_unpause(p), STORECTX_ERR_STALE_HANDLE);
  CHECK(strncmp(storectx_last_error(), "unpause:", 8) == 0);
  describe_into(after);
  CHECK(strcmp(before, after) == 0);
}

static void *other_thread(void *arg) {
  (void)arg;
  /* A new thread starts with an empty stack and no message, whatever main
   * holds. */
  CHECK(storectx_last_error()[0] == '\0');
  CHECK(storectx_is_empty());
  CHECK(storectx_depth() == 0);
  CHECK(storectx_active_store() == 0);
  CHECK(!storectx_is_active(s2) && !storectx_is_paused(s2));
  CHECK(!storectx_is_active(s1) && !storectx_is_paused(s1));
  CHECK(storectx_describe(NULL, 0) == 0);
  void *ptr = &store3;
  CHECK_STATUS(storectx_get_current_transient(s2, &ptr), STORECTX_ERR_NO_CONTEXT);
  CHECK(ptr == &store3);

  /* main's handles, on an empty stack. */
  check_foreign(g1, b1, p2);
  check_foreign(g2, b2, p2);

  /* main's handles, with entries of this thread's own on the stack. */
  CHECK_OK(storectx_install(s3, &store3, &g3));
  CHECK_OK(storectx_get_current(s3, &ptr, &b3));
  CHECK(ptr == &store3);
  CHECK_OK(storectx_pause(s3, &p3));
  CHECK(storectx_depth() == 1);
  CHECK(storectx_is_active(s3));
  CHECK(!storectx_is_paused(s1) && !storectx_is_paused(s2));
  CHECK_STATUS(storectx_get_current_transient(s2, &ptr), STORECTX_ERR_NOT_INSTALLED);
  check_foreign(g1, b1, p2);
  check_foreign(g2, b2, p2);

  /* Hand this thread's handles to main and let it try them. */
  char my_error[256];
  snprintf(my_error, sizeof my_error, "%s", storectx_last_error());
  char my_stack[DESCRIBE_MAX];
  describe_into(my_stack);
  set_phase(1);
  wait_phase(2);

  /* main's failures changed neither this thread's message nor its stack. */
  CHECK(strcmp(storectx_last_error(), my_error) == 0);
  char now[DESCRIBE_MAX];
  describe_into(now);
  CHECK(strcmp(now, my_stack) == 0);

  /* One more failure here, which main must not see. */
  CHECK_STATUS(storectx_uninstall(g2), STORECTX_ERR_STALE_HANDLE);

  /* The owner's handles work. */
  CHECK_OK(storectx_unpause(p3));
  CHECK_OK(storectx_borrow_release(b3));
  CHECK_OK(storectx_uninstall(g3));
  CHECK(storectx_is_empty());
  return NULL;
}

int main(void) {
  s1 = storectx_store_id_new();
  s2 = storectx_store_id_new();
  s3 = storectx_store_id_new();

  /* main: store1 (one borrow) under store2 (borrowed, then paused). */
  void *ptr = NULL;
  CHECK_OK(storectx_install(s1, &store1, &g1));
  CHECK_OK(storectx_get_current(s1, &ptr, &b1));
  CHECK_OK(storectx_install(s2, &store2, &g2));
  CHECK_OK(storectx_get_current(s2, &ptr, &b2));
  CHECK_OK(storectx_pause(s2, &p2));
  char my_stack[DESCRIBE_MAX];
  describe_into(my_stack);

  pthread_t t;
  CHECK(pthread_create(&t, NULL, other_thread, NULL) == 0);
  wait_phase(1);

  /* The other thread's handles are stale here while its entries are live
   * there; main's stack (2 entries) is untouched by that thread's work. */
  CHECK(storectx_depth() == 2);
  CHECK(!storectx_is_active(s3) && !storectx_is_paused(s3));
  check_foreign(g3, b3, p3);
  char now[DESCRIBE_MAX];
  describe_into(now);
  CHECK(strcmp(now, my_stack) == 0);
  char my_error[256];
  snprintf(my_error, sizeof my_error, "%s", storectx_last_error());
  set_phase(2);

  CHECK(pthread_join(t, NULL) == 0);

  /* The other thread's last failure did not overwrite main's message. */
  CHECK(strcmp(storectx_last_error(), my_error) == 0);

  /* After the thread is gone its handles are still stale here. */
  check_foreign(g3, b3, p3);

  /* main's own handles work, and the stack unwinds normally. */
  describe_into(now);
  CHECK(strcmp(now, my_stack) == 0);
  CHECK(storectx_install_guard_installed(g1));
  CHECK(storectx_install_guard_installed(g2));
  CHECK_OK(storectx_unpause(p2)); /* gives store2's borrow back */
  CHECK_STATUS(storectx_uninstall(g2), STORECTX_ERR_STILL_BORROWED);
  CHECK_OK(storectx_borrow_release(b2));
  CHECK_OK(storectx_uninstall(g2));
  CHECK_OK(storectx_borrow_release(b1));
  CHECK_OK(storectx_uninstall(g1));
  CHECK(storectx_is_empty());
  return 0;
}
