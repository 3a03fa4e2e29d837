/* Behaviour: borrow counting on a sync entry. get_current adds a borrow,
 * get_current_transient does not; uninstall is refused with
 * STORECTX_ERR_STILL_BORROWED while any borrow is live; pause takes one borrow
 * away (only if there is one) and unpause gives it back, also for nested
 * pauses; get_current_unborrowed answers STORECTX_ERR_BORROWED while the top
 * is borrowed; borrow_clone adds a borrow on the same entry; releasing past
 * zero and cloning at zero answer STORECTX_ERR_NOT_BORROWED. */
#include <stdint.h>

#include "check.h"

#define SENTINEL_RAW UINT64_C(0x5e5e5e5e5e5e5e5e)
#define DESCRIBE_MAX 4096

static int the_store;
static storectx_store_id s;
static storectx_install_guard guard;

/* The top entry's borrow count, read from describe's first line
 * ("depth N: store ID at 0x... sync borrows COUNT"). */
static unsigned long top_borrows(void) {
  char text[DESCRIBE_MAX];
  CHECK(storectx_describe(text, sizeof text) < sizeof text);
  char *eol = strchr(text, '\n');
  CHECK(eol != NULL);
  *eol = '\0';
  const char *at = strstr(text, " borrows ");
  CHECK(at != NULL);
  char *end = NULL;
  unsigned long n = strtoul(at + 9, &end, 10);
  CHECK(end != at + 9);
  return n;
}

/* Checks the count three ways: describe, uninstall, get_current_unborrowed. */
static void expect_borrows(unsigned long n) {
  CHECK(top_borrows() == n);
  CHECK(storectx_depth() == 1);
  CHECK(storectx_is_active(s));

  storectx_store_id id = SENTINEL_RAW;
  void *ptr = &guard;
  storectx_borrow b = {SENTINEL_RAW};
  if (n > 0) {
    CHECK_STATUS(storectx_uninstall(guard), STORECTX_ERR_STILL_BORROWED);
    CHECK(storectx_install_guard_installed(guard));
    CHECK_STATUS(storectx_get_current_unborrowed(&id, &ptr, &b),
                 STORECTX_ERR_BORROWED);
    CHECK(id == SENTINEL_RAW);
    CHECK(ptr == &guard);
    CHECK(b.raw == SENTINEL_RAW);
  } else {
    CHECK_OK(storectx_get_current_unborrowed(&id, &ptr, &b));
    CHECK(id == s);
    CHECK(ptr == &the_store);
    CHECK(top_borrows() == 1);
    CHECK_OK(storectx_borrow_release(b));
  }
  CHECK(top_borrows() == n);
}

static storectx_borrow borrow(void) {
  void *ptr = NULL;
  storectx_borrow b;
  CHECK_OK(storectx_get_current(s, &ptr, &b));
  CHECK(ptr == &the_store);
  return b;
}

int main(void) {
  s = storectx_store_id_new();
  CHECK_OK(storectx_install(s, &the_store, &guard));
  expect_borrows(0);

  /* get_current counts, get_current_transient does not. */
  storectx_borrow b1 = borrow();
  expect_borrows(1);
  void *ptr = NULL;
  CHECK_OK(storectx_get_current_transient(s, &ptr));
  CHECK(ptr == &the_store);
  expect_borrows(1);
  storectx_borrow b2 = borrow();
  expect_borrows(2);

  /* borrow_clone adds one more on the same entry. */
  storectx_borrow c1;
  CHECK_OK(storectx_borrow_clone(b1, &c1));
  expect_borrows(3);
  CHECK_OK(storectx_borrow_release(c1));
  expect_borrows(2);

  /* pause takes a borrow away for as long as the guest runs ... */
  storectx_pause_guard p1, p2, p3;
  CHECK_OK(storectx_pause(s, &p1));
  expect_borrows(1);
  CHECK_OK(storectx_pause(s, &p2));
  expect_borrows(0);

  /* ... so the guest's import can borrow and release in between ... */
  storectx_borrow inner = borrow();
  expect_borrows(1);
  /* ... and a pause with a borrow taken inside it gives back only its own. */
  CHECK_OK(storectx_pause(s, &p3));
  expect_borrows(0);
  CHECK_OK(storectx_unpause(p3));
  expect_borrows(1);
  CHECK_OK(storectx_borrow_release(inner));
  expect_borrows(0);

  /* A pause at count zero takes nothing and so restores nothing. */
  storectx_pause_guard p_zero;
  CHECK_OK(storectx_pause(s, &p_zero));
  expect_borrows(0);
  storectx_borrow during = borrow();
  expect_borrows(1);
  CHECK_OK(storectx_borrow_release(during));
  CHECK_OK(storectx_unpause(p_zero));
  expect_borrows(0);

  /* Unpausing restores the counts in reverse. */
  CHECK_OK(storectx_unpause(p2));
  expect_borrows(1);
  CHECK_OK(storectx_unpause(p1));
  expect_borrows(2);

  /* Release down to zero; borrows are counts on the entry, so either handle
   * releases one. */
  CHECK_OK(storectx_borrow_release(b2));
  expect_borrows(1);
  CHECK_OK(storectx_borrow_release(b1));
  expect_borrows(0);

  /* At zero: release and clone say NOT_BORROWED and change nothing. */
  CHECK_STATUS(storectx_borrow_release(b1), STORECTX_ERR_NOT_BORROWED);
  CHECK(strncmp(storectx_last_error(), "borrow_release:", 15) == 0);
  expect_borrows(0);
  storectx_borrow c2 = {SENTINEL_RAW};
  CHECK_STATUS(storectx_borrow_clone(b1, &c2), STORECTX_ERR_NOT_BORROWED);
  CHECK(strncmp(storectx_last_error(), "borrow_clone:", 13) == 0);
  CHECK(c2.raw == SENTINEL_RAW);
  expect_borrows(0);

  /* The entry is fully usable: borrow again, then uninstall once released. */
  storectx_borrow b3 = borrow();
  expect_borrows(1);
  CHECK_OK(storectx_borrow_release(b3));
  expect_borrows(0);
  CHECK_OK(storectx_uninstall(guard));
  CHECK(storectx_is_empty());
  CHECK(!storectx_install_guard_installed(guard));
  return 0;
}
