/* Behaviour: nested install of the same store (a guest calling back into its
 * own store). Each install pushes a new entry, depth grows, the store stays
 * active and never counts as paused; the address must match the top's
 * (STORECTX_ERR_ADDRESS_MISMATCH otherwise, and the failed call changes
 * nothing); handles name entries, not store ids, so the outer entry's guard
 * and borrow are out of order while an inner entry of the same store is on
 * top. */
#include <stdint.h>

#include "check.h"

typedef struct {
  int value;
} store;

#define SENTINEL_RAW UINT64_C(0x5e5e5e5e5e5e5e5e)
#define DESCRIBE_MAX 4096
#define LEVELS 4

static store the_store = {1};
static store impostor = {2};
static storectx_store_id s;

static void describe_into(char *out) {
  size_t n = storectx_describe(out, DESCRIBE_MAX);
  CHECK(n < DESCRIBE_MAX);
}

static void check_top(size_t depth) {
  CHECK(storectx_depth() == depth);
  CHECK(storectx_active_store() == s);
  CHECK(storectx_is_active(s));
  CHECK(!storectx_is_paused(s)); /* on top, however many entries below */
  void *ptr = NULL;
  CHECK_OK(storectx_get_current_transient(s, &ptr));
  CHECK(ptr == &the_store);
}

/* Installing the same id at another address is refused and changes nothing. */
static void check_mismatch_refused(void) {
  char before[DESCRIBE_MAX], after[DESCRIBE_MAX];
  size_t depth = storectx_depth();
  describe_into(before);

  storectx_install_guard g = {SENTINEL_RAW};
  CHECK_STATUS(storectx_install(s, &impostor, &g), STORECTX_ERR_ADDRESS_MISMATCH);
  CHECK(g.raw == SENTINEL_RAW);
  CHECK(strncmp(storectx_last_error(), "install:", 8) == 0);

  describe_into(after);
  CHECK(strcmp(before, after) == 0);
  check_top(depth);
}

int main(void) {
  s = storectx_store_id_new();
  CHECK(s != 0);

  storectx_install_guard g[LEVELS];
  storectx_borrow b[LEVELS];

  /* Push LEVELS entries of the same store, each holding one borrow. */
  for (int i = 0; i < LEVELS; i++) {
    CHECK_OK(storectx_install(s, &the_store, &g[i]));
    CHECK(storectx_install_guard_installed(g[i]));
    for (int j = 0; j < i; j++) {
      CHECK(g[j].raw != g[i].raw); /* one handle per entry */
      CHECK(storectx_install_guard_installed(g[j]));
    }
    check_top((size_t)i + 1);

    /* The new top entry starts unborrowed although the one below is not. */
    storectx_store_id id = 0;
    void *ptr = NULL;
    CHECK_OK(storectx_get_current_unborrowed(&id, &ptr, &b[i]));
    CHECK(id == s);
    CHECK(ptr == &the_store);

    check_mismatch_refused();
  }

  char text[DESCRIBE_MAX];
  describe_into(text);
  int lines = 0;
  for (const char *c = text; *c; c++) lines += (*c == '\n');
  CHECK(lines == LEVELS);

  /* Unwind. The outer entries' handles are out of order while an inner
   * entry of the same store is on top. */
  for (int i = LEVELS - 1; i >= 0; i--) {
    check_top((size_t)i + 1);
    if (i > 0) {
      char before[DESCRIBE_MAX], after[DESCRIBE_MAX];
      describe_into(before);
      CHECK_STATUS(storectx_uninstall(g[i - 1]), STORECTX_ERR_OUT_OF_ORDER);
      CHECK_STATUS(storectx_borrow_release(b[i - 1]), STORECTX_ERR_OUT_OF_ORDER);
      storectx_borrow clone = {SENTINEL_RAW};
      CHECK_STATUS(storectx_borrow_clone(b[i - 1], &clone), STORECTX_ERR_OUT_OF_ORDER);
      CHECK(clone.raw == SENTINEL_RAW);
      describe_into(after);
      CHECK(strcmp(before, after) == 0);
      CHECK(storectx_install_guard_installed(g[i - 1]));
    }

    /* Still borrowed: refused, nothing popped. */
    CHECK_STATUS(storectx_uninstall(g[i]), STORECTX_ERR_STILL_BORROWED);
    check_top((size_t)i + 1);

    CHECK_OK(storectx_borrow_release(b[i]));
    CHECK_OK(storectx_uninstall(g[i]));
    CHECK(!storectx_install_guard_installed(g[i]));
    CHECK(storectx_depth() == (size_t)i);
  }

  CHECK(storectx_is_empty());
  CHECK(storectx_active_store() == 0);
  CHECK(!storectx_is_active(s));
  CHECK(!storectx_is_paused(s));

  /* With the stack empty any address is fine again: a fresh first entry. */
  storectx_install_guard again;
  CHECK_OK(storectx_install(s, &impostor, &again));
  void *ptr = NULL;
  CHECK_OK(storectx_get_current_transient(s, &ptr));
  CHECK(ptr == &impostor);
  CHECK_OK(storectx_uninstall(again));
  CHECK(storectx_is_empty());
  return 0;
}
