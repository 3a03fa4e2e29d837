/* Behaviour: misused handles are refused with their exact status and leave
 * the stack intact: out-of-order uninstall / release / clone (OUT_OF_ORDER),
 * double uninstall, zeroed handles, a handle's raw copied into another kind,
 * forged raw values, handles of an entry that is gone, even when the same
 * store is installed again at the same place (STALE_HANDLE), release and
 * clone without a borrow (NOT_BORROWED), unpause twice (STALE_HANDLE),
 * unpause of a changed top and out of LIFO order (OUT_OF_ORDER). After each,
 * last_error names the function, depth / describe / active store are
 * unchanged, and a full clean nested call still works on top. */
#include <stdint.h>

#include "check.h"

#define SENTINEL_RAW UINT64_C(0x5e5e5e5e5e5e5e5e)
#define DESCRIBE_MAX 4096

static int store1, store2, store3, store_x, store_y;
static storectx_store_id s1, s2, s3;

static char stack_before[DESCRIBE_MAX];

static void describe_into(char *out) {
  size_t n = storectx_describe(out, DESCRIBE_MAX);
  CHECK(n < DESCRIBE_MAX);
}

/* One refused call: exact status, message prefixed "name:", stack as before. */
#define REFUSED(name, expr, status)                                         \
  do {                                                                      \
    describe_into(stack_before);                                            \
    CHECK_STATUS(expr, status);                                             \
    CHECK(strncmp(storectx_last_error(), name ":", strlen(name ":")) == 0); \
    char stack_after_[DESCRIBE_MAX];                                        \
    describe_into(stack_after_);                                            \
    CHECK(strcmp(stack_before, stack_after_) == 0);                         \
  } while (0)

/* A clean call(x) -> import -> call(y) -> import on top of whatever is there,
 * unwound back to exactly the same stack. */
static void full_nested_call(void) {
  char before[DESCRIBE_MAX], after[DESCRIBE_MAX];
  describe_into(before);
  size_t depth = storectx_depth();
  storectx_store_id under = storectx_active_store();
  storectx_store_id x = storectx_store_id_new(), y = storectx_store_id_new();

  storectx_install_guard gx, gy;
  storectx_borrow bx, by;
  storectx_pause_guard px;
  void *ptr = NULL;
  CHECK_OK(storectx_install(x, &store_x, &gx));
  CHECK_OK(storectx_get_current(x, &ptr, &bx));
  CHECK(ptr == &store_x);
  CHECK_OK(storectx_pause(x, &px));
  CHECK_OK(storectx_install(y, &store_y, &gy));
  CHECK(storectx_depth() == depth + 2);
  CHECK(storectx_is_active(y) && storectx_is_paused(x));
  if (under != 0) CHECK(storectx_is_paused(under));
  CHECK_OK(storectx_get_current(y, &ptr, &by));
  CHECK(ptr == &store_y);
  CHECK_STATUS(storectx_get_current_transient(x, &ptr), STORECTX_ERR_PAUSED);
  CHECK_OK(storectx_borrow_release(by));
  CHECK_OK(storectx_uninstall(gy));
  CHECK_OK(storectx_unpause(px));
  CHECK_OK(storectx_borrow_release(bx));
  CHECK_OK(storectx_uninstall(gx));

  CHECK(storectx_depth() == depth);
  CHECK(storectx_active_store() == under);
  describe_into(after);
  CHECK(strcmp(before, after) == 0);
}

/* The stack is what it was and still works. */
static void check_intact(size_t depth, storectx_store_id active, const char *text) {
  CHECK(storectx_depth() == depth);
  CHECK(storectx_active_store() == active);
  CHECK(storectx_is_empty() == (depth == 0));
  char now[DESCRIBE_MAX];
  describe_into(now);
  CHECK(strcmp(now, text) == 0);
  full_nested_call();
}

/* Every handle function given `raw` as each handle kind answers STALE_HANDLE. */
static void check_stale_raw(uint64_t raw) {
  storectx_install_guard g = {raw};
  storectx_borrow b = {raw};
  storectx_pause_guard p = {raw};
  storectx_borrow out = {SENTINEL_RAW};
  CHECK(!storectx_install_guard_installed(g));
  REFUSED("uninstall", storectx_uninstall(g), STORECTX_ERR_STALE_HANDLE);
  REFUSED("borrow_release", storectx_borrow_release(b), STORECTX_ERR_STALE_HANDLE);
  REFUSED("borrow_clone", storectx_borrow_clone(b, &out), STORECTX_ERR_STALE_HANDLE);
  CHECK(out.raw == SENTINEL_RAW);
  REFUSED("unpause", storectx_unpause(p), STORECTX_ERR_STALE_HANDLE);
}

/* Values nobody was given: zero, small numbers (every entry that could carry
 * them is long gone), and numbers far beyond any entry made so far. */
static void check_forged(void) {
  static const uint64_t forged[] = {
      0, 1, 2, 3, 4, 5, 6, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65,
      UINT64_MAX, UINT64_MAX - 1, UINT64_C(0x8000000000000000),
      UINT64_C(0x7fffffffffffffff), UINT64_C(0xdeadbeefdeadbeef),
      UINT64_C(0x0123456789abcdef), SENTINEL_RAW};
  for (size_t i = 0; i < sizeof forged / sizeof forged[0]; i++)
    check_stale_raw(forged[i]);
}

/* The real handles alive while check_flipped runs. */
static uint64_t known[8];
static size_t known_len;

/* Flipped high bits of a real handle name no entry, of any kind: stale.
 * (Values equal to a live handle are skipped: a flip that only changed the
 * kind would be that entry's handle of the other kind.) */
static void check_flipped(uint64_t real) {
  static const int bits[] = {63, 62, 56, 47, 40, 33};
  for (size_t i = 0; i < sizeof bits / sizeof bits[0]; i++) {
    uint64_t forged = real ^ (UINT64_C(1) << bits[i]);
    int is_known = 0;
    for (size_t k = 0; k < known_len; k++) is_known |= (known[k] == forged);
    if (!is_known) check_stale_raw(forged);
  }
}

static unsigned long top_borrows(void) {
  char text[DESCRIBE_MAX];
  describe_into(text);
  const char *at = strstr(text, " borrows ");
  CHECK(at != NULL && at < strchr(text, '\n'));
  return strtoul(at + 9, NULL, 10);
}

int main(void) {
  s1 = storectx_store_id_new();
  s2 = storectx_store_id_new();
  s3 = storectx_store_id_new();
  char text[DESCRIBE_MAX];

  /* Use up the first entries so that small raw values can name none alive. */
  for (int i = 0; i < 100; i++) {
    storectx_install_guard g;
    CHECK_OK(storectx_install(s3, &store3, &g));
    CHECK_OK(storectx_uninstall(g));
  }

  /* --- empty stack: every handle is stale -------------------------------- */
  describe_into(text);
  check_forged();
  check_intact(0, 0, text);

  /* --- two entries: s1 (one borrow) under s2 (one borrow) ----------------- */
  storectx_install_guard g1, g2;
  storectx_borrow b1, b2;
  void *ptr = NULL;
  CHECK_OK(storectx_install(s1, &store1, &g1));
  CHECK_OK(storectx_get_current(s1, &ptr, &b1));
  CHECK_OK(storectx_install(s2, &store2, &g2));
  CHECK_OK(storectx_get_current(s2, &ptr, &b2));
  describe_into(text);

  /* Out of order: s1's guard and borrow while s2 is on top. */
  REFUSED("uninstall", storectx_uninstall(g1), STORECTX_ERR_OUT_OF_ORDER);
  CHECK(storectx_install_guard_installed(g1));
  REFUSED("borrow_release", storectx_borrow_release(b1), STORECTX_ERR_OUT_OF_ORDER);
  storectx_borrow out = {SENTINEL_RAW};
  REFUSED("borrow_clone", storectx_borrow_clone(b1, &out), STORECTX_ERR_OUT_OF_ORDER);
  CHECK(out.raw == SENTINEL_RAW);
  check_intact(2, s2, text);

  /* Zeroed and forged handles on a non-empty stack. */
  check_forged();
  check_intact(2, s2, text);

  /* Wrong kind: a handle's raw copied into another handle type. */
  storectx_pause_guard p2;
  CHECK_OK(storectx_pause(s2, &p2));
  CHECK(g2.raw != b2.raw && g2.raw != p2.raw && b2.raw != p2.raw);
  describe_into(text);
  const storectx_status STALE = STORECTX_ERR_STALE_HANDLE;
  storectx_install_guard g_from_b = {b2.raw}, g_from_p = {p2.raw}, g_from_b1 = {b1.raw};
  storectx_borrow b_from_g = {g2.raw}, b_from_p = {p2.raw};
  storectx_pause_guard p_from_g = {g2.raw}, p_from_b = {b2.raw};
  CHECK(!storectx_install_guard_installed(g_from_b));
  CHECK(!storectx_install_guard_installed(g_from_p));
  REFUSED("uninstall", storectx_uninstall(g_from_b), STALE);
  REFUSED("uninstall", storectx_uninstall(g_from_p), STALE);
  REFUSED("uninstall", storectx_uninstall(g_from_b1), STALE);
  REFUSED("borrow_release", storectx_borrow_release(b_from_g), STALE);
  REFUSED("borrow_release", storectx_borrow_release(b_from_p), STALE);
  REFUSED("borrow_clone", storectx_borrow_clone(b_from_g, &out), STALE);
  REFUSED("borrow_clone", storectx_borrow_clone(b_from_p, &out), STALE);
  CHECK(out.raw == SENTINEL_RAW);
  REFUSED("unpause", storectx_unpause(p_from_g), STALE);
  REFUSED("unpause", storectx_unpause(p_from_b), STALE);
  check_intact(2, s2, text);

  /* Flipped bits of every real handle. */
  known[known_len++] = g1.raw;
  known[known_len++] = b1.raw;
  known[known_len++] = g2.raw;
  known[known_len++] = b2.raw;
  known[known_len++] = p2.raw;
  check_flipped(g1.raw);
  check_flipped(b1.raw);
  check_flipped(g2.raw);
  check_flipped(b2.raw);
  check_flipped(p2.raw);
  check_intact(2, s2, text);

  /* The real handles still work after all that. */
  CHECK(top_borrows() == 0);
  CHECK_OK(storectx_unpause(p2));
  CHECK(top_borrows() == 1);

  /* Release and clone without a borrow. */
  CHECK_OK(storectx_borrow_release(b2));
  describe_into(text);
  REFUSED("borrow_release", storectx_borrow_release(b2), STORECTX_ERR_NOT_BORROWED);
  REFUSED("borrow_clone", storectx_borrow_clone(b2, &out), STORECTX_ERR_NOT_BORROWED);
  CHECK(out.raw == SENTINEL_RAW);
  check_intact(2, s2, text);

  /* Double uninstall; the entry's borrow handle is stale with it. */
  CHECK_OK(storectx_uninstall(g2));
  CHECK(!storectx_install_guard_installed(g2));
  describe_into(text);
  REFUSED("uninstall", storectx_uninstall(g2), STALE);
  REFUSED("borrow_release", storectx_borrow_release(b2), STALE);
  REFUSED("borrow_clone", storectx_borrow_clone(b2, &out), STALE);
  check_intact(1, s1, text);
  CHECK(top_borrows() == 1);

  /* Unpause twice. */
  storectx_pause_guard p1;
  CHECK_OK(storectx_pause(s1, &p1));
  CHECK(top_borrows() == 0);
  CHECK_OK(storectx_unpause(p1));
  CHECK(top_borrows() == 1);
  describe_into(text);
  REFUSED("unpause", storectx_unpause(p1), STALE);
  check_intact(1, s1, text);
  CHECK(top_borrows() == 1);

  /* Unpause of a changed top: another store, then a nested entry of the same
   * store at the same address. */
  CHECK_OK(storectx_pause(s1, &p1));
  storectx_install_guard g3;
  CHECK_OK(storectx_install(s3, &store3, &g3));
  describe_into(text);
  REFUSED("unpause", storectx_unpause(p1), STORECTX_ERR_OUT_OF_ORDER);
  check_intact(2, s3, text);
  CHECK_OK(storectx_uninstall(g3));
  storectx_install_guard g1_nested;
  CHECK_OK(storectx_install(s1, &store1, &g1_nested));
  describe_into(text);
  REFUSED("unpause", storectx_unpause(p1), STORECTX_ERR_OUT_OF_ORDER);
  check_intact(2, s1, text);
  CHECK(top_borrows() == 0);
  CHECK_OK(storectx_uninstall(g1_nested));
  CHECK(top_borrows() == 0);
  CHECK_OK(storectx_unpause(p1));
  CHECK(top_borrows() == 1);

  /* Unpause out of LIFO order on one entry. */
  storectx_pause_guard pa, pb;
  CHECK_OK(storectx_pause(s1, &pa));
  CHECK_OK(storectx_pause(s1, &pb));
  describe_into(text);
  REFUSED("unpause", storectx_unpause(pa), STORECTX_ERR_OUT_OF_ORDER);
  check_intact(1, s1, text);
  CHECK_OK(storectx_unpause(pb));
  CHECK_OK(storectx_unpause(pa));
  CHECK(top_borrows() == 1);

  /* Handles after their entry is gone: uninstall with a pause outstanding
   * (count 0), then every handle of that entry is stale ... */
  storectx_pause_guard p_gone;
  CHECK_OK(storectx_pause(s1, &p_gone));
  CHECK(top_borrows() == 0);
  CHECK_OK(storectx_uninstall(g1));
  CHECK(storectx_is_empty());
  describe_into(text);
  CHECK(!storectx_install_guard_installed(g1));
  REFUSED("uninstall", storectx_uninstall(g1), STALE);
  REFUSED("borrow_release", storectx_borrow_release(b1), STALE);
  REFUSED("borrow_clone", storectx_borrow_clone(b1, &out), STALE);
  REFUSED("unpause", storectx_unpause(p_gone), STALE);
  check_intact(0, 0, text);

  /* ... also once the same store is installed again at the same address and
   * depth: a new entry, which the old handles do not name. */
  storectx_install_guard g1_again;
  storectx_borrow b1_again;
  CHECK_OK(storectx_install(s1, &store1, &g1_again));
  CHECK(g1_again.raw != g1.raw);
  CHECK_OK(storectx_get_current(s1, &ptr, &b1_again));
  CHECK(ptr == &store1);
  describe_into(text);
  CHECK(!storectx_install_guard_installed(g1));
  REFUSED("uninstall", storectx_uninstall(g1), STALE);
  REFUSED("borrow_release", storectx_borrow_release(b1), STALE);
  REFUSED("borrow_clone", storectx_borrow_clone(b1, &out), STALE);
  REFUSED("unpause", storectx_unpause(p_gone), STALE);
  REFUSED("unpause", storectx_unpause(p1), STALE);
  check_intact(1, s1, text);
  CHECK(top_borrows() == 1);

  CHECK_OK(storectx_borrow_release(b1_again));
  CHECK_OK(storectx_uninstall(g1_again));
  CHECK(storectx_is_empty());
  describe_into(text);
  REFUSED("uninstall", storectx_uninstall(g1_again), STALE);
  check_forged();
  /* Values shaped like a no-op install guard (tag 2) that the library never
   * handed out are stale too: a no-op guard must name an async entry here. */
  storectx_install_guard forged_noop = {10}, forged_noop2 = {UINT64_C(0x7777777777777772)};
  REFUSED("uninstall", storectx_uninstall(forged_noop), STALE);
  REFUSED("uninstall", storectx_uninstall(forged_noop2), STALE);
  check_intact(0, 0, text);
  return 0;
}
