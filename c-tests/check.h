/* check.h: the assertion macros every C test program uses.
 * A failed check prints file:line, the expression, the status names and
 * storectx_last_error(), then exits 1 so the Rust harness reports it. */
#ifndef STORECTX_CHECK_H
#define STORECTX_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storectx.h"

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

#endif /* STORECTX_CHECK_H */
