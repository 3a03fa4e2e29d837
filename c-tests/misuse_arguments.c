/* Behaviour: bad arguments to the sync functions. NULL out-pointers and a NULL
 * store pointer answer STORECTX_ERR_NULL_ARGUMENT, store id 0 answers
 * STORECTX_ERR_INVALID_ARGUMENT (NULL checks first, then id 0, then the
 * stack), lookups on an empty stack answer STORECTX_ERR_NO_CONTEXT and of a
 * store not on the stack STORECTX_ERR_NOT_INSTALLED. Every refusal leaves the
 * out-parameters (pre-filled with sentinels) and the stack untouched, sets a
 * last_error that starts with the function's name, and the stack stays usable. */
#include <stdint.h>

#include "check.h"

#define SENTINEL_RAW UINT64_C(0x5e5e5e5e5e5e5e5e)
#define DESCRIBE_MAX 4096

static int store_a, store_b, sentinel_obj;
static storectx_store_id a, b_id, never_installed;

/* The outs every call gets, pre-filled so that any write shows. */
static storectx_install_guard out_guard;
static storectx_borrow out_borrow;
static storectx_pause_guard out_pause;
static storectx_store_id out_id;
static void *out_ptr;

static void fill_outs(void) {
  out_guard.raw = SENTINEL_RAW;
  out_borrow.raw = SENTINEL_RAW;
  out_pause.raw = SENTINEL_RAW;
  out_id = SENTINEL_RAW;
  out_ptr = &sentinel_obj;
}

static void check_outs_untouched(void) {
  CHECK(out_guard.raw == SENTINEL_RAW);
  CHECK(out_borrow.raw == SENTINEL_RAW);
  CHECK(out_pause.raw == SENTINEL_RAW);
  CHECK(out_id == SENTINEL_RAW);
  CHECK(out_ptr == &sentinel_obj);
}

static char stack_before[DESCRIBE_MAX];

/* Runs one refused call: exact status, message prefixed "name:", outs and
 * stack untouched. */
#define REFUSED(name, expr, status)                                         \
  do {                                                                      \
    fill_outs();                                                            \
    CHECK(storectx_describe(stack_before, DESCRIBE_MAX) < DESCRIBE_MAX);    \
    CHECK_STATUS(expr, status);                                             \
    CHECK(strncmp(storectx_last_error(), name ":", strlen(name ":")) == 0); \
    check_outs_untouched();                                                 \
    char stack_after_[DESCRIBE_MAX];                                        \
    CHECK(storectx_describe(stack_after_, DESCRIBE_MAX) < DESCRIBE_MAX);    \
    CHECK(strcmp(stack_before, stack_after_) == 0);                         \
  } while (0)

/* NULL and id-0 checks come before any look at the stack, so they answer the
 * same whatever the stack holds; `on_stack` is a store id on top (or 0). */
static void check_argument_errors(storectx_store_id on_stack) {
  storectx_store_id id = on_stack != 0 ? on_stack : a;
  void *addr = on_stack == b_id ? (void *)&store_b : (void *)&store_a;
  const storectx_status NUL = STORECTX_ERR_NULL_ARGUMENT;
  const storectx_status INV = STORECTX_ERR_INVALID_ARGUMENT;

  /* install: out-pointer and store pointer are both required. */
  REFUSED("install", storectx_install(id, addr, NULL), NUL);
  REFUSED("install", storectx_install(id, NULL, &out_guard), NUL);
  REFUSED("install", storectx_install(id, NULL, NULL), NUL);
  REFUSED("install", storectx_install(0, NULL, &out_guard), NUL);
  REFUSED("install", storectx_install(0, addr, NULL), NUL);
  REFUSED("install", storectx_install(0, addr, &out_guard), INV);

  REFUSED("get_current", storectx_get_current(id, NULL, &out_borrow), NUL);
  REFUSED("get_current", storectx_get_current(id, &out_ptr, NULL), NUL);
  REFUSED("get_current", storectx_get_current(0, NULL, NULL), NUL);
  REFUSED("get_current", storectx_get_current(0, &out_ptr, &out_borrow), INV);

  REFUSED("get_current_transient", storectx_get_current_transient(id, NULL), NUL);
  REFUSED("get_current_transient", storectx_get_current_transient(0, NULL), NUL);
  REFUSED("get_current_transient", storectx_get_current_transient(0, &out_ptr), INV);

  REFUSED("get_current_unborrowed",
          storectx_get_current_unborrowed(NULL, &out_ptr, &out_borrow), NUL);
  REFUSED("get_current_unborrowed",
          storectx_get_current_unborrowed(&out_id, NULL, &out_borrow), NUL);
  REFUSED("get_current_unborrowed",
          storectx_get_current_unborrowed(&out_id, &out_ptr, NULL), NUL);

  REFUSED("pause", storectx_pause(id, NULL), NUL);
  REFUSED("pause", storectx_pause(0, NULL), NUL);
  REFUSED("pause", storectx_pause(0, &out_pause), INV);

  /* A handle function with a NULL out-pointer: the NULL wins over the
   * handle's validity. */
  storectx_borrow zero = {0};
  REFUSED("borrow_clone", storectx_borrow_clone(zero, NULL), NUL);

  /* Inspection of id 0 is never true. */
  CHECK(!storectx_is_active(0));
  CHECK(!storectx_is_paused(0));
}

/* Lookups of a store that is not on a non-empty stack. */
static void check_not_installed(storectx_store_id id) {
  const storectx_status NI = STORECTX_ERR_NOT_INSTALLED;
  REFUSED("get_current", storectx_get_current(id, &out_ptr, &out_borrow), NI);
  REFUSED("get_current_transient", storectx_get_current_transient(id, &out_ptr), NI);
  REFUSED("pause", storectx_pause(id, &out_pause), NI);
  CHECK(!storectx_is_active(id));
  CHECK(!storectx_is_paused(id));
}

/* UINT64_MAX is reserved like 0 (an empty stack's top marker): every call
 * that takes a store id refuses it with INVALID_ARGUMENT, nothing changed. */
static void check_reserved(storectx_store_id id) {
  const storectx_status INV = STORECTX_ERR_INVALID_ARGUMENT;
  int dummy;
  storectx_install_guard g;
  storectx_async_store *as = NULL;
  size_t depth = storectx_depth();
  REFUSED("install", storectx_install(id, &dummy, &g), INV);
  REFUSED("async_store_new", storectx_async_store_new(id, &dummy, &as), INV);
  CHECK(as == NULL);
  REFUSED("get_current", storectx_get_current(id, &out_ptr, &out_borrow), INV);
  REFUSED("get_current_transient", storectx_get_current_transient(id, &out_ptr), INV);
  REFUSED("pause", storectx_pause(id, &out_pause), INV);
  CHECK(!storectx_is_active(id));
  CHECK(!storectx_is_paused(id));
  CHECK(storectx_depth() == depth);
  /* Also on an empty stack of a thread that has state (its cached top). */
  if (depth == 0) {
    storectx_install_guard g2;
    CHECK_OK(storectx_install(storectx_store_id_new(), &dummy, &g2));
    CHECK_OK(storectx_uninstall(g2));
    CHECK(!storectx_is_active(id) && !storectx_is_active(0));
  }
}

/* A clean use of the stack, to show nothing was left broken. */
static void check_usable(storectx_store_id id, void *addr) {
  size_t depth = storectx_depth();
  storectx_install_guard g;
  CHECK_OK(storectx_install(id, addr, &g));
  CHECK(storectx_depth() == depth + 1);
  void *ptr = NULL;
  storectx_borrow br;
  CHECK_OK(storectx_get_current(id, &ptr, &br));
  CHECK(ptr == addr);
  storectx_pause_guard p;
  CHECK_OK(storectx_pause(id, &p));
  CHECK_OK(storectx_unpause(p));
  CHECK_OK(storectx_borrow_release(br));
  CHECK_OK(storectx_uninstall(g));
  CHECK(storectx_depth() == depth);
}

int main(void) {
  a = storectx_store_id_new();
  b_id = storectx_store_id_new();
  never_installed = storectx_store_id_new();

  /* --- empty stack ------------------------------------------------------ */
  CHECK(storectx_is_empty());
  CHECK(storectx_active_store() == 0);
  check_argument_errors(0);

  const storectx_status NC = STORECTX_ERR_NO_CONTEXT;
  REFUSED("get_current", storectx_get_current(a, &out_ptr, &out_borrow), NC);
  REFUSED("get_current_transient", storectx_get_current_transient(a, &out_ptr), NC);
  REFUSED("get_current_unborrowed",
          storectx_get_current_unborrowed(&out_id, &out_ptr, &out_borrow), NC);
  REFUSED("pause", storectx_pause(a, &out_pause), NC);
  CHECK(!storectx_is_active(a));
  CHECK(!storectx_is_paused(a));
  CHECK(storectx_is_empty());
  check_usable(a, &store_a);
  CHECK(storectx_is_empty());

  /* --- one entry: store a ------------------------------------------------ */
  storectx_install_guard ga;
  CHECK_OK(storectx_install(a, &store_a, &ga));
  check_argument_errors(a);
  check_not_installed(b_id);
  check_not_installed(never_installed);
  check_reserved(UINT64_MAX); /* reserved, like 0: never handed out, never accepted */
  check_usable(a, &store_a);
  check_usable(b_id, &store_b);

  /* --- two entries: a paused under b -------------------------------------- */
  storectx_install_guard gb;
  CHECK_OK(storectx_install(b_id, &store_b, &gb));
  check_argument_errors(b_id);
  check_not_installed(never_installed);
  /* The paused store's own checks still put NULL and id 0 first. */
  REFUSED("get_current", storectx_get_current(a, NULL, &out_borrow),
          STORECTX_ERR_NULL_ARGUMENT);
  REFUSED("install", storectx_install(a, &store_a, NULL), STORECTX_ERR_NULL_ARGUMENT);
  REFUSED("pause", storectx_pause(a, NULL), STORECTX_ERR_NULL_ARGUMENT);
  check_usable(never_installed, &sentinel_obj);

  /* Unwind, and the stack is as new. */
  CHECK(storectx_depth() == 2);
  CHECK(storectx_active_store() == b_id);
  CHECK_OK(storectx_uninstall(gb));
  CHECK(storectx_active_store() == a);
  CHECK_OK(storectx_uninstall(ga));
  CHECK(storectx_is_empty());
  check_usable(a, &store_a);
  CHECK(storectx_is_empty());
  check_reserved(UINT64_MAX); /* on an empty stack too: UINT64_MAX is its cached top */
  return 0;
}
