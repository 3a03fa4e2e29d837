/* Behaviour: the demo a newcomer runs. It prints a readable trace of an
 * embedder using libstorectx: (1) nested calls across two stores, with the
 * stack at each level and a refused access to the paused store; (2) a
 * coroutine migrating between threads: its entries are suspended on one
 * thread and resumed on another. Every step it prints is also CHECKed, so the
 * demo exits 0 only if the library behaves as shown. */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>

#include "check.h"

/* The embedder's store: the library only keeps its address. */
typedef struct {
  const char *name;
} store;

/* ---- printing --------------------------------------------------------- */

/* One trace line: a thread tag ("" in part 1), then two spaces per level. */
static void say(const char *tag, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void say(const char *tag, int level, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  printf("%s%*s", tag, level * 2, "");
  vprintf(fmt, ap);
  printf("\n");
  va_end(ap);
}

static void heading(const char *title, const char *what) {
  printf("\n%s\n", title);
  for (size_t i = 0; i < strlen(title); i++) putchar('=');
  printf("\n%s\n\n", what);
}

/* This thread's stack as storectx_describe prints it, top first. */
static void show_stack(const char *tag, int level) {
  char text[1024];
  size_t n = storectx_describe(text, sizeof text);
  CHECK(n < sizeof text);
  if (n == 0) {
    say(tag, level, "stack: (empty)");
    return;
  }
  say(tag, level, "stack:");
  for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"))
    say(tag, level + 1, "%s", line);
}

/* A refused call: its status (name and meaning) and the library's message. */
static void show_refusal(const char *tag, int level, storectx_status st) {
  say(tag, level, "-> %s", storectx_status_str(st));
  say(tag, level, "   last_error: \"%s\"", storectx_last_error());
}

/* ---- part 1: nested calls across two stores --------------------------- */
/* call(store1,f1) -> guest -> import1 -> call(store2,f2) -> guest -> import2 */

static store store1 = {"inventory"}, store2 = {"pricing"};
static storectx_store_id s1, s2;

static void import2(void) {
  void *ptr = NULL;
  storectx_borrow b;
  CHECK_OK(storectx_get_current(s2, &ptr, &b));
  CHECK(ptr == &store2);
  CHECK(storectx_depth() == 2 && storectx_is_active(s2) && storectx_is_paused(s1));
  say("", 3, "import2: get_current(store %" PRIu64 ") -> \"%s\"", s2, ((store *)ptr)->name);
  show_stack("", 3);

  say("", 3, "import2: get_current_transient(store %" PRIu64 "), paused below:", s1);
  void *other = NULL;
  storectx_status st = storectx_get_current_transient(s1, &other);
  CHECK(st == STORECTX_ERR_PAUSED && other == NULL);
  show_refusal("", 4, st);

  CHECK_OK(storectx_borrow_release(b));
}

static void call_f2(void) {
  storectx_install_guard g;
  CHECK_OK(storectx_install(s2, &store2, &g));
  say("", 2, "call(store %" PRIu64 ", f2): install -> depth %zu", s2, storectx_depth());
  say("", 3, "guest f2 runs and calls import2");
  import2();
  CHECK_OK(storectx_uninstall(g));
  say("", 2, "f2 returns: uninstall -> depth %zu", storectx_depth());
}

static void import1(void) {
  void *ptr = NULL;
  storectx_borrow b;
  CHECK_OK(storectx_get_current(s1, &ptr, &b));
  CHECK(ptr == &store1);
  say("", 1, "import1: get_current(store %" PRIu64 ") -> \"%s\"", s1, ((store *)ptr)->name);
  call_f2();
  CHECK_OK(storectx_get_current_transient(s1, &ptr));
  CHECK(ptr == &store1 && storectx_is_active(s1) && !storectx_is_paused(s1));
  say("", 1, "import1: store %" PRIu64 " is active again -> \"%s\"", s1, ((store *)ptr)->name);
  CHECK_OK(storectx_borrow_release(b));
}

static void nested_calls(void) {
  heading("1. Nested calls across two stores",
          "f1 (store 1) imports a host function that calls f2 (store 2).\n"
          "Only the top store may be used; the one below is paused.");
  s1 = storectx_store_id_new();
  s2 = storectx_store_id_new();
  storectx_install_guard g;
  CHECK_OK(storectx_install(s1, &store1, &g));
  say("", 0, "call(store %" PRIu64 ", f1): install -> depth %zu", s1, storectx_depth());
  say("", 1, "guest f1 runs and calls import1");
  import1();
  CHECK_OK(storectx_uninstall(g));
  CHECK(storectx_is_empty());
  say("", 0, "f1 returns: uninstall -> depth %zu", storectx_depth());
}

/* ---- part 2: a coroutine migrating between threads -------------------- */
/* The coroutine runs on async store A (its entry holds A's write lock) and
 * makes a nested sync call into store B; it yields on thread 1 and is
 * resumed and finished on thread 2, a pthread the library has never seen. */

static const char *const T1 = "[thread 1] ", *const T2 = "[thread 2] ";
static store store_a = {"session"}, store_b = {"cache"};
static storectx_store_id id_a, id_b;
static storectx_async_store *async_a;
static storectx_install_guard guard_a, guard_b;
static storectx_borrow borrow_b;
static storectx_suspended *segment;

static void *thread2_main(void *arg) {
  (void)arg;
  CHECK(storectx_is_empty());
  size_t base = SIZE_MAX;
  CHECK_OK(storectx_resume(segment, &base));
  CHECK(base == 0 && storectx_depth() == 2);
  CHECK(storectx_is_active(id_b) && storectx_is_paused(id_a));
  say(T2, 0, "resume(segment) -> its entries go on top of depth %zu", base);
  show_stack(T2, 1);

  void *ptr = NULL;
  say(T2, 1, "get_current_transient(A), paused below B:");
  storectx_status st = storectx_get_current_transient(id_a, &ptr);
  CHECK(st == STORECTX_ERR_PAUSED && ptr == NULL);
  show_refusal(T2, 2, st);

  /* Finish the call into B with the borrow and guard made on thread 1. */
  CHECK_OK(storectx_get_current_transient(id_b, &ptr));
  CHECK(ptr == &store_b);
  CHECK_OK(storectx_borrow_release(borrow_b));
  CHECK_OK(storectx_uninstall(guard_b));
  say(T2, 0, "B's call returns (borrow and guard from thread 1) -> depth %zu",
      storectx_depth());

  storectx_async_store *as = NULL;
  storectx_borrow b;
  CHECK_OK(storectx_get_current_async(id_a, &as, &ptr, &b));
  CHECK(ptr == &store_a && storectx_async_store_id(as) == id_a);
  say(T2, 0, "get_current_async(A) -> \"%s\"", ((store *)ptr)->name);
  storectx_async_store_release(as);
  CHECK_OK(storectx_borrow_release(b));
  CHECK_OK(storectx_uninstall(guard_a));
  CHECK(storectx_is_empty());
  say(T2, 0, "coroutine done: uninstall(A) unlocks A -> depth %zu", storectx_depth());
  return NULL;
}

static void coroutine_migrating_between_threads(void) {
  heading("2. A coroutine migrating between threads",
          "A coroutine holds async store A and a nested call into store B.\n"
          "It yields on thread 1 and is resumed and finished on thread 2.");
  id_a = storectx_store_id_new();
  id_b = storectx_store_id_new();
  CHECK_OK(storectx_async_store_new(id_a, &store_a, &async_a));

  /* Thread 1 polls the coroutine: it records its base depth, locks A and
   * installs it, then calls into B synchronously. */
  size_t base = storectx_depth();
  storectx_write_guard *w = NULL;
  CHECK_OK(storectx_async_store_write(async_a, UINT64_MAX, &w));
  CHECK_OK(storectx_install_async(w, &guard_a));
  say(T1, 0, "coroutine starts at depth %zu; write(A = store %" PRIu64
             ") + install_async -> depth %zu", base, id_a, storectx_depth());
  CHECK_OK(storectx_install(id_b, &store_b, &guard_b));
  void *ptr = NULL;
  CHECK_OK(storectx_get_current(id_b, &ptr, &borrow_b));
  CHECK(ptr == &store_b);
  say(T1, 0, "nested call into B = store %" PRIu64 ", borrowed -> depth %zu", id_b,
      storectx_depth());
  show_stack(T1, 1);

  /* The coroutine yields: its entries leave thread 1, with A's lock. */
  CHECK_OK(storectx_suspend(base, &segment));
  CHECK(storectx_suspended_len(segment) == 2 && storectx_is_empty());
  say(T1, 0, "yield: suspend(%zu) -> a segment of %zu entries", base,
      storectx_suspended_len(segment));
  show_stack(T1, 1);
  storectx_write_guard *probe = NULL;
  storectx_status st = storectx_async_store_try_write(async_a, &probe);
  CHECK(st == STORECTX_ERR_BUSY && probe == NULL);
  say(T1, 1, "try_write(A) -> %s", storectx_status_str(st));
  st = storectx_uninstall(guard_a);
  CHECK(st == STORECTX_ERR_STALE_HANDLE);
  say(T1, 1, "uninstall(A's guard) -> %s", storectx_status_str(st));

  pthread_t t;
  CHECK(pthread_create(&t, NULL, thread2_main, NULL) == 0);
  CHECK(pthread_join(t, NULL) == 0);

  CHECK_OK(storectx_async_store_try_write(async_a, &probe));
  CHECK(storectx_write_guard_store(probe) == &store_a);
  say(T1, 0, "try_write(A) -> STORECTX_OK: thread 2 released the lock");
  storectx_write_guard_release(probe);
  storectx_async_store_release(async_a);
  CHECK(storectx_is_empty());
}

int main(void) {
  printf("libstorectx %s demo: which store is current, per thread\n", storectx_version());
  nested_calls();
  coroutine_migrating_between_threads();
  printf("\nEvery step above was checked; all stacks are empty, all locks released.\n");
  return 0;
}
