/* Behaviour: storectx_last_error() after every kind of refusal, with every
 * number at its widest (store ids near UINT64_MAX, base depth SIZE_MAX,
 * addresses with every bit set, a stack 1,100 deep): the message is
 * "<operation>: <detail>", NUL-terminated, shorter than the 512-byte buffer
 * (src/error.rs `LastError`), different from the previous one. Since 0.3 a
 * refusal keeps a Copy `Detail` and the text is formatted when read:
 * neither the refusal nor the read may allocate (SPEC "A refusal is cheap";
 * counted by interposing malloc, as signal_safe_readonly_calls_create_no_state
 * does). The pointer stays valid and its text unchanged across successful
 * calls, and across another thread's refusals made while this thread reads
 * its own text (per-thread buffers). A thread whose first call is a refusal
 * gets its message. Allocation counting is skipped under ASan and valgrind
 * (they own malloc); everything else runs everywhere. */
/* cprog: skip on=musl,windows counts allocations by interposing glibc's own entry points (__libc_malloc and friends), which musl and Windows do not have; the messages are the same code on every platform */
#define _GNU_SOURCE
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "check.h"

static __thread int counting;
static atomic_long allocations;
static bool can_count;

#if !UNDER_ASAN
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);
void *malloc(size_t n) {
  if (counting) atomic_fetch_add(&allocations, 1);
  return __libc_malloc(n);
}
void *calloc(size_t n, size_t m) {
  if (counting) atomic_fetch_add(&allocations, 1);
  return __libc_calloc(n, m);
}
void *realloc(void *p, size_t n) {
  if (counting) atomic_fetch_add(&allocations, 1);
  return __libc_realloc(p, n);
}
void free(void *p) { __libc_free(p); }
void *memalign(size_t align, size_t n) {
  if (counting) atomic_fetch_add(&allocations, 1);
  return __libc_memalign(align, n);
}
void *aligned_alloc(size_t align, size_t n) {
  if (counting) atomic_fetch_add(&allocations, 1);
  return __libc_memalign(align, n);
}
int posix_memalign(void **out, size_t align, size_t n) {
  if (counting) atomic_fetch_add(&allocations, 1);
  void *p = __libc_memalign(align, n);
  if (!p) return 12;
  *out = p;
  return 0;
}
#endif

static char previous[600];
static int checked;

/* Runs one refusal (counted), checks its status, then reads the message
 * (counted) and checks its shape. */
#define REFUSED(expr, want, op)                                                        \
  do {                                                                                 \
    long before_ = atomic_load(&allocations);                                          \
    counting = 1;                                                                      \
    storectx_status got_ = (expr);                                                     \
    counting = 0;                                                                      \
    long refusal_ = atomic_load(&allocations) - before_;                               \
    counting = 1;                                                                      \
    const char *msg_ = storectx_last_error();                                          \
    counting = 0;                                                                      \
    long read_ = atomic_load(&allocations) - before_ - refusal_;                       \
    check_message(#expr, got_, want, op, msg_, refusal_, read_, __LINE__);             \
  } while (0)

static void check_message(const char *what, storectx_status got, storectx_status want,
                          const char *op, const char *msg, long refusal_allocs,
                          long read_allocs, int line) {
  if (got != want) {
    fprintf(stderr, "line %d: %s returned %s, expected %s\n  last_error: %s\n", line, what,
            storectx_status_str(got), storectx_status_str(want), msg);
    exit(1);
  }
  size_t len = strnlen(msg, 600);
  char prefix[64];
  snprintf(prefix, sizeof prefix, "%s: ", op);
  /* (Two refusals of one operation may say the same.) */
  bool same_op = strncmp(previous, prefix, strlen(prefix)) == 0;
  if (len == 0 || len >= 512 || strncmp(msg, prefix, strlen(prefix)) != 0 ||
      (!same_op && strcmp(msg, previous) == 0)) {
    fprintf(stderr, "line %d: %s: message of %zu bytes: \"%s\" (previous \"%s\")\n", line, what,
            len, msg, previous);
    exit(1);
  }
  if (can_count && (refusal_allocs || read_allocs)) {
    fprintf(stderr, "line %d: %s: the refusal allocated %ld times, reading its message %ld\n",
            line, what, refusal_allocs, read_allocs);
    exit(1);
  }
  printf("%-24s %3zu bytes: %s\n", op, len, msg);
  snprintf(previous, sizeof previous, "%s", msg);
  checked++;
}

static storectx_store_id first_id;

static void *first_call_is_a_refusal(void *arg) {
  (void)arg;
  CHECK(storectx_last_error()[0] == '\0');
  storectx_install_guard forged = {UINT64_C(0xfffffffffffffff9)};
  CHECK_STATUS(storectx_uninstall(forged), STORECTX_ERR_STALE_HANDLE);
  CHECK(strncmp(storectx_last_error(), "uninstall: ", 11) == 0);
  void *p;
  CHECK_STATUS(storectx_get_current_transient(first_id, &p), STORECTX_ERR_NO_CONTEXT);
  return NULL;
}

static atomic_int stop;

static void *refuse_a_lot(void *arg) {
  (void)arg;
  storectx_install_guard forged = {7};
  void *p;
  for (unsigned long i = 0; !atomic_load(&stop) || i < 20000; i++) {
    CHECK(storectx_uninstall(forged) == STORECTX_ERR_STALE_HANDLE);
    CHECK(storectx_last_error()[0] == 'u');
    CHECK(storectx_get_current_transient(UINT64_MAX, &p) == STORECTX_ERR_INVALID_ARGUMENT);
    CHECK(storectx_last_error()[0] == 'g');
  }
  return NULL;
}

int main(void) {
  /* Is our malloc the one called (not under valgrind)? */
  void *(*volatile alloc)(size_t) = malloc;
  counting = 1;
  void *probe = alloc(8);
  counting = 0;
  free(probe);
  can_count = !UNDER_ASAN && atomic_load(&allocations) == 1;
  if (!can_count) puts("(allocations not counted: malloc is not this program's)");

  static int mem;
  void *far = (void *)~(uintptr_t)0xf; /* never dereferenced */
  storectx_store_id wide = UINT64_MAX - 1, next_wide = UINT64_MAX - 2;
  first_id = wide;
  pthread_t t;
  CHECK(pthread_create(&t, NULL, first_call_is_a_refusal, NULL) == 0);
  CHECK(pthread_join(t, NULL) == 0);

  /* Warm up: the context, a deep stack (grown once), the segment and
   * write-guard tables, and the thread's blocks of numbers. */
  static storectx_install_guard deep[1100];
  for (int i = 0; i < 1100; i++)
    CHECK_OK(storectx_install(storectx_store_id_new(), &mem, &deep[i]));
  storectx_suspended *seg;
  size_t base;
  CHECK_OK(storectx_suspend(1099, &seg));
  CHECK_OK(storectx_resume(seg, &base));
  storectx_async_store *as;
  CHECK_OK(storectx_async_store_new(next_wide, far, &as));
  storectx_write_guard *w;
  CHECK_OK(storectx_async_store_try_write(as, &w));
  storectx_write_guard_release(w);
  storectx_pause_guard warm;
  storectx_install_guard gwide, gwide2, gw;
  CHECK_OK(storectx_install(wide, far, &gwide));
  CHECK_OK(storectx_pause(wide, &warm));
  CHECK_OK(storectx_unpause(warm));
  CHECK_OK(storectx_install(wide, far, &gwide2));

  void *p;
  storectx_borrow b, b2;
  storectx_pause_guard pg;
  storectx_install_guard forged = {UINT64_MAX - 6};
  /* By id, at their widest. */
  REFUSED(storectx_get_current(next_wide, &p, &b), STORECTX_ERR_NOT_INSTALLED, "get_current");
  REFUSED(storectx_get_current_transient(UINT64_MAX, &p), STORECTX_ERR_INVALID_ARGUMENT,
          "get_current_transient");
  REFUSED(storectx_get_current_transient(0, &p), STORECTX_ERR_INVALID_ARGUMENT,
          "get_current_transient");
  REFUSED(storectx_install(wide, (char *)far - 16, &gw), STORECTX_ERR_ADDRESS_MISMATCH,
          "install");
  REFUSED(storectx_pause(next_wide, &pg), STORECTX_ERR_NOT_INSTALLED, "pause");
  REFUSED(storectx_install(0, &mem, &gw), STORECTX_ERR_INVALID_ARGUMENT, "install");
  REFUSED(storectx_install(wide, NULL, &gw), STORECTX_ERR_NULL_ARGUMENT, "install");
  /* Handles. */
  REFUSED(storectx_uninstall(forged), STORECTX_ERR_STALE_HANDLE, "uninstall");
  REFUSED(storectx_uninstall(deep[500]), STORECTX_ERR_OUT_OF_ORDER, "uninstall");
  REFUSED(storectx_uninstall(gwide), STORECTX_ERR_OUT_OF_ORDER, "uninstall");
  CHECK_OK(storectx_get_current(wide, &p, &b));
  REFUSED(storectx_uninstall(gwide2), STORECTX_ERR_STILL_BORROWED, "uninstall");
  REFUSED(storectx_get_current_unborrowed(&first_id, &p, &b2), STORECTX_ERR_BORROWED,
          "get_current_unborrowed");
  CHECK_OK(storectx_pause(wide, &pg));
  CHECK_OK(storectx_pause(wide, &warm));
  REFUSED(storectx_unpause(pg), STORECTX_ERR_OUT_OF_ORDER, "unpause");
  REFUSED(storectx_unpause((storectx_pause_guard){pg.raw ^ 1}), STORECTX_ERR_STALE_HANDLE,
          "unpause");
  REFUSED(storectx_borrow_release(b), STORECTX_ERR_NOT_BORROWED, "borrow_release");
  REFUSED(storectx_borrow_clone(b, &b2), STORECTX_ERR_NOT_BORROWED, "borrow_clone");
  REFUSED(storectx_borrow_release((storectx_borrow){b.raw + 32}), STORECTX_ERR_STALE_HANDLE,
          "borrow_release");
  CHECK_OK(storectx_unpause(warm));
  CHECK_OK(storectx_unpause(pg));
  CHECK_OK(storectx_borrow_release(b));
  /* A paused store, deep below. */
  CHECK_OK(storectx_install(next_wide - 1, &mem, &gw));
  REFUSED(storectx_install(wide, far, &gw), STORECTX_ERR_PAUSED, "install");
  REFUSED(storectx_get_current(wide, &p, &b), STORECTX_ERR_PAUSED, "get_current");
  CHECK_OK(storectx_uninstall(gw));
  /* Segments and write guards. */
  REFUSED(storectx_suspend(SIZE_MAX, &seg), STORECTX_ERR_INVALID_ARGUMENT, "suspend");
  REFUSED(storectx_resume((storectx_suspended *)~(uintptr_t)0, &base), STORECTX_ERR_STALE_HANDLE,
          "resume");
  REFUSED(storectx_resume(seg, &base), STORECTX_ERR_STALE_HANDLE, "resume");
  CHECK_OK(storectx_async_store_try_write(as, &w));
  REFUSED(storectx_async_store_try_write(as, &w), STORECTX_ERR_BUSY, "async_store_try_write");
  REFUSED(storectx_async_store_write(as, 1, &w), STORECTX_ERR_TIMED_OUT, "async_store_write");
  /* The timeout is told in the caller's unit, not as a Rust value (it said
   * "(For(1ns))" and "(Never)" once; c-tests/write_timeouts_at_their_limits.c
   * checks more timeouts). */
  CHECK(strstr(storectx_last_error(), "(1 ns)") && !strstr(storectx_last_error(), "For("));
  REFUSED(storectx_async_store_write(as, 0, &w), STORECTX_ERR_TIMED_OUT, "async_store_write");
  CHECK(strstr(storectx_last_error(), "(0 ns)") && !strstr(storectx_last_error(), "Never"));
  storectx_install_guard ga;
  CHECK_OK(storectx_install_async(w, &ga));
  REFUSED(storectx_install_async(w, &ga), STORECTX_ERR_STALE_HANDLE, "install_async");
  REFUSED(storectx_async_store_write(as, UINT64_MAX, &w), STORECTX_ERR_WOULD_DEADLOCK, "async_store_write");
  CHECK_OK(storectx_get_current(next_wide, &p, &b));
  REFUSED(storectx_borrow_clone(b, &b2), STORECTX_ERR_NOT_SYNC, "borrow_clone");
  CHECK_OK(storectx_borrow_release(b));
  CHECK_OK(storectx_suspend(storectx_depth() - 1, &seg));
  CHECK_OK(storectx_install(next_wide, &mem, &gw));
  REFUSED(storectx_resume(seg, &base), STORECTX_ERR_ALREADY_ON_STACK, "resume");
  CHECK_OK(storectx_uninstall(gw));
  CHECK_OK(storectx_resume(seg, &base));
  CHECK_OK(storectx_uninstall(ga));

  /* The text stays put across successful calls... */
  const char *kept = storectx_last_error();
  char copy[600];
  snprintf(copy, sizeof copy, "%s", kept);
  for (int i = 0; i < 100; i++) {
    storectx_install_guard g;
    CHECK_OK(storectx_install(storectx_store_id_new(), &mem, &g));
    CHECK_OK(storectx_uninstall(g));
  }
  CHECK(storectx_last_error() == kept && strcmp(kept, copy) == 0);
  /* ...and while another thread refuses and reads its own, at once. */
  pthread_t r;
  CHECK(pthread_create(&r, NULL, refuse_a_lot, NULL) == 0);
  for (int i = 0; i < 20000; i++) {
    CHECK(strcmp(kept, copy) == 0);
    CHECK(storectx_last_error() == kept);
  }
  atomic_store(&stop, 1);
  CHECK(pthread_join(r, NULL) == 0);
  CHECK(strcmp(storectx_last_error(), copy) == 0);

  CHECK_OK(storectx_uninstall(gwide2));
  CHECK_OK(storectx_uninstall(gwide));
  for (int i = 1099; i >= 0; i--) CHECK_OK(storectx_uninstall(deep[i]));
  CHECK(storectx_is_empty());
  storectx_async_store_release(as);
  printf("%d refusals: messages well formed%s\n", checked,
         can_count ? ", no allocation to refuse or to read" : "");
  return 0;
}
