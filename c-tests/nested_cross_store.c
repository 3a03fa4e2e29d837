/* Behaviour: nested calls across two stores.
 *   call(store1,f1) -> guest -> import -> call(store2,f2) -> guest -> import
 * and back. At each level get_current returns that level's store pointer and
 * is_active / is_paused / depth / active_store describe the level; while
 * store2 runs, every access to the paused store1 (get_current,
 * get_current_transient, pause, install) is refused with STORECTX_ERR_PAUSED
 * and changes nothing; after unwinding the stack is empty. */
#include <stdint.h>

#include "check.h"

/* The embedder's store object; the library only keeps its address. */
typedef struct {
  const char *name;
  int imports_run;
} store;

static store store1_obj = {"store1", 0};
static store store2_obj = {"store2", 0};
static storectx_store_id s1, s2;

#define SENTINEL_RAW UINT64_C(0x5e5e5e5e5e5e5e5e)
static int sentinel_obj;
#define DESCRIBE_MAX 4096

static void describe_into(char *out) {
  size_t n = storectx_describe(out, DESCRIBE_MAX);
  CHECK(n < DESCRIBE_MAX);
}

/* Only `active` is on top; `paused` (0 for none) is deeper; `absent` (0 for
 * none) is not on the stack at all. */
static void check_level(size_t depth, storectx_store_id active,
                        storectx_store_id paused, storectx_store_id absent) {
  CHECK(storectx_depth() == depth);
  CHECK(!storectx_is_empty());
  CHECK(storectx_active_store() == active);
  CHECK(storectx_is_active(active));
  CHECK(!storectx_is_paused(active));
  if (paused != 0) {
    CHECK(!storectx_is_active(paused));
    CHECK(storectx_is_paused(paused));
  }
  if (absent != 0) {
    CHECK(!storectx_is_active(absent));
    CHECK(!storectx_is_paused(absent));
  }
}

/* Every access to the paused store1 is refused and leaves the stack and the
 * out-parameters exactly as they were. */
static void check_store1_refused(void) {
  char before[DESCRIBE_MAX], after[DESCRIBE_MAX];
  describe_into(before);

  void *ptr = &sentinel_obj;
  storectx_borrow b = {SENTINEL_RAW};
  CHECK_STATUS(storectx_get_current(s1, &ptr, &b), STORECTX_ERR_PAUSED);
  CHECK(ptr == &sentinel_obj);
  CHECK(b.raw == SENTINEL_RAW);

  CHECK_STATUS(storectx_get_current_transient(s1, &ptr), STORECTX_ERR_PAUSED);
  CHECK(ptr == &sentinel_obj);

  storectx_pause_guard p = {SENTINEL_RAW};
  CHECK_STATUS(storectx_pause(s1, &p), STORECTX_ERR_PAUSED);
  CHECK(p.raw == SENTINEL_RAW);

  /* A nested call back into store1 from store2's import is refused too. */
  storectx_install_guard g = {SENTINEL_RAW};
  CHECK_STATUS(storectx_install(s1, &store1_obj, &g), STORECTX_ERR_PAUSED);
  CHECK(g.raw == SENTINEL_RAW);

  describe_into(after);
  CHECK(strcmp(before, after) == 0);
  check_level(2, s2, s1, 0);
}

/* --- level 2: store2 ---------------------------------------------------- */

static void import2(void) {
  check_level(2, s2, s1, 0);

  /* The call's own borrow is paused while the guest runs, so the top entry
   * is unborrowed and get_current_unborrowed finds store2. */
  storectx_store_id id = 0;
  void *ptr = NULL;
  storectx_borrow b;
  CHECK_OK(storectx_get_current_unborrowed(&id, &ptr, &b));
  CHECK(id == s2);
  CHECK(ptr == &store2_obj);
  CHECK_OK(storectx_borrow_release(b));

  ptr = NULL;
  CHECK_OK(storectx_get_current(s2, &ptr, &b));
  CHECK(ptr == &store2_obj);
  ((store *)ptr)->imports_run++;

  ptr = NULL;
  CHECK_OK(storectx_get_current_transient(s2, &ptr));
  CHECK(ptr == &store2_obj);

  check_store1_refused();

  CHECK_OK(storectx_borrow_release(b));
  check_level(2, s2, s1, 0);
}

static void guest_f2(void) { import2(); }

static void call_f2(void) {
  storectx_install_guard g;
  CHECK_OK(storectx_install(s2, &store2_obj, &g));
  CHECK(storectx_install_guard_installed(g));
  check_level(2, s2, s1, 0);

  void *ptr = NULL;
  storectx_borrow call_borrow;
  CHECK_OK(storectx_get_current(s2, &ptr, &call_borrow));
  CHECK(ptr == &store2_obj);

  storectx_pause_guard pause;
  CHECK_OK(storectx_pause(s2, &pause));
  guest_f2();
  CHECK_OK(storectx_unpause(pause));

  check_level(2, s2, s1, 0);
  CHECK_OK(storectx_borrow_release(call_borrow));
  CHECK_OK(storectx_uninstall(g));
  CHECK(!storectx_install_guard_installed(g));
}

/* --- level 1: store1 ---------------------------------------------------- */

static void import1(void) {
  check_level(1, s1, 0, s2);

  void *ptr = NULL;
  storectx_borrow b;
  CHECK_OK(storectx_get_current(s1, &ptr, &b));
  CHECK(ptr == &store1_obj);
  ((store *)ptr)->imports_run++;

  /* store2 is not on the stack yet. */
  void *other = &sentinel_obj;
  CHECK_STATUS(storectx_get_current_transient(s2, &other),
               STORECTX_ERR_NOT_INSTALLED);
  CHECK(other == &sentinel_obj);

  call_f2(); /* the import calls into another store */

  /* Back at level 1: store1 is active again, store2 is gone. */
  check_level(1, s1, 0, s2);
  ptr = NULL;
  CHECK_OK(storectx_get_current_transient(s1, &ptr));
  CHECK(ptr == &store1_obj);
  CHECK_STATUS(storectx_get_current_transient(s2, &other),
               STORECTX_ERR_NOT_INSTALLED);
  CHECK(other == &sentinel_obj);

  CHECK_OK(storectx_borrow_release(b));
}

static void guest_f1(void) { import1(); }

static void call_f1(void) {
  storectx_install_guard g;
  CHECK_OK(storectx_install(s1, &store1_obj, &g));
  CHECK(storectx_install_guard_installed(g));
  check_level(1, s1, 0, s2);

  void *ptr = NULL;
  storectx_borrow call_borrow;
  CHECK_OK(storectx_get_current(s1, &ptr, &call_borrow));
  CHECK(ptr == &store1_obj);

  storectx_pause_guard pause;
  CHECK_OK(storectx_pause(s1, &pause));
  guest_f1();
  CHECK_OK(storectx_unpause(pause));

  check_level(1, s1, 0, s2);
  CHECK_OK(storectx_borrow_release(call_borrow));
  CHECK_OK(storectx_uninstall(g));
  CHECK(!storectx_install_guard_installed(g));
}

int main(void) {
  s1 = storectx_store_id_new();
  s2 = storectx_store_id_new();
  CHECK(s1 != 0 && s2 != 0 && s1 != s2);

  for (int round = 1; round <= 3; round++) {
    CHECK(storectx_is_empty());
    CHECK(storectx_depth() == 0);
    CHECK(storectx_active_store() == 0);
    CHECK(!storectx_is_active(s1) && !storectx_is_paused(s1));
    CHECK(!storectx_is_active(s2) && !storectx_is_paused(s2));

    call_f1();

    CHECK(store1_obj.imports_run == round);
    CHECK(store2_obj.imports_run == round);
  }

  /* Unwound: the stack is empty and lookups say so. */
  CHECK(storectx_is_empty());
  CHECK(storectx_depth() == 0);
  CHECK(storectx_active_store() == 0);
  CHECK(!storectx_is_active(s1) && !storectx_is_paused(s1));
  CHECK(!storectx_is_active(s2) && !storectx_is_paused(s2));
  CHECK(storectx_describe(NULL, 0) == 0);
  void *ptr = &sentinel_obj;
  CHECK_STATUS(storectx_get_current_transient(s1, &ptr), STORECTX_ERR_NO_CONTEXT);
  CHECK(ptr == &sentinel_obj);
  return 0;
}
