/* check.h: the assertion macros every C test program uses.
 * A failed check prints file:line, the expression, the status names and
 * storectx_last_error(), then exits 1 so the Rust harness reports it. */
#ifndef STORECTX_CHECK_H
#define STORECTX_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storectx.h"
#include "under_asan.h"

#define CHECK(cond)                                                          \
  do {                                                                       \
    if (!(cond)) {                                                           \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n  last_error: %s\n",         \
              __FILE__, __LINE__, #cond, storectx_last_error());             \
      exit(1);                                                               \
    }                                                                        \
  } while (0)

/* Expect an exact status; on any failure also expect a non-empty message. */
#define CHECK_STATUS(expr, expected)                                         \
  do {                                                                       \
    storectx_status check_got_ = (expr);                                     \
    storectx_status check_want_ = (expected);                                \
    if (check_got_ != check_want_) {                                         \
      fprintf(stderr, "%s:%d: %s\n  returned %s, expected %s\n"              \
                      "  last_error: %s\n",                                  \
              __FILE__, __LINE__, #expr, storectx_status_str(check_got_),    \
              storectx_status_str(check_want_), storectx_last_error());      \
      exit(1);                                                               \
    }                                                                        \
    if (check_want_ != STORECTX_OK && storectx_last_error()[0] == '\0') {    \
      fprintf(stderr, "%s:%d: %s failed without a last_error message\n",     \
              __FILE__, __LINE__, #expr);                                    \
      exit(1);                                                               \
    }                                                                        \
  } while (0)

#define CHECK_OK(expr) CHECK_STATUS(expr, STORECTX_OK)

/* Under ThreadSanitizer (.ci/tsan.sh), every swapcontext of a test program is
 * announced as a fiber switch, which TSan needs to follow a coroutine's stack
 * (most of all one resumed on another thread). Each context's fiber is kept
 * in a small table by address: the context switched from runs as the current
 * fiber; a context never switched from before (a fresh makecontext) gets a
 * new one. Other builds see the plain swapcontext. */
#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define STORECTX_CHECK_TSAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define STORECTX_CHECK_TSAN 1
#endif
#if defined(STORECTX_CHECK_TSAN) && !defined(__cplusplus)
#include <pthread.h>
#include <ucontext.h>
void *__tsan_get_current_fiber(void);
void *__tsan_create_fiber(unsigned flags);
void __tsan_switch_to_fiber(void *fiber, unsigned flags);

static struct { const ucontext_t *context; void *fiber; } check_fibers_[4096];
static pthread_mutex_t check_fibers_mu_ = PTHREAD_MUTEX_INITIALIZER;

static void **check_fiber_of_(const ucontext_t *context) {
  pthread_mutex_lock(&check_fibers_mu_);
  size_t i = 0;
  while (check_fibers_[i].context != NULL && check_fibers_[i].context != context) {
    i++;
    CHECK(i < sizeof check_fibers_ / sizeof check_fibers_[0]);
  }
  check_fibers_[i].context = context;
  pthread_mutex_unlock(&check_fibers_mu_);
  return &check_fibers_[i].fiber;
}

static inline int check_tsan_swapcontext_(ucontext_t *from, const ucontext_t *to) {
  *check_fiber_of_(from) = __tsan_get_current_fiber();
  void **next = check_fiber_of_(to);
  if (*next == NULL) *next = __tsan_create_fiber(0);
  __tsan_switch_to_fiber(*next, 0);
  return swapcontext(from, to);
}
#define swapcontext(from, to) check_tsan_swapcontext_((from), (to))
#endif

#endif /* STORECTX_CHECK_H */
