/* store_answers.h: what the C API must answer for one store id on the
 * calling thread, given a model of its stack: `at`, the id's topmost depth
 * (1-based; 0: not on the stack), `top`, the top entry's store (0: empty),
 * `depth`, the stack's depth. Checks storectx_is_paused, storectx_is_active
 * and, below the top, storectx_get_current_transient: PAUSED with a message
 * naming "paused at depth <at>;", or NOT_INSTALLED (NO_CONTEXT on an empty
 * stack), the out-parameter untouched. On a mismatch it prints `when` and
 * the id and exits 1. Answers whether the id is paused (callers add their
 * own checks, such as an install refused as PAUSED). Used by the store-set
 * adversary programs, with the hash hook below (POSIX: dlfcn.h). */
#ifndef STORE_ANSWERS_H
#define STORE_ANSWERS_H

#include <dlfcn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

static bool check_store_answers(storectx_store_id id, size_t at, storectx_store_id top,
                                size_t depth, const char *when) {
  bool paused = at != 0 && id != top;
  if (storectx_is_paused(id) != paused || storectx_is_active(id) != (id == top)) {
    fprintf(stderr, "%s: id %#llx: is_paused %d is_active %d, model at depth %zu of %zu, top %#llx\n",
            when, (unsigned long long)id, storectx_is_paused(id), storectx_is_active(id), at, depth,
            (unsigned long long)top);
    exit(1);
  }
  if (id == top) return false;
  void *p = (void *)0x1;
  storectx_status st = storectx_get_current_transient(id, &p);
  if (paused) {
    CHECK_STATUS(st, STORECTX_ERR_PAUSED);
    char want[64];
    snprintf(want, sizeof want, "paused at depth %zu;", at);
    if (!strstr(storectx_last_error(), want)) {
      fprintf(stderr, "%s: id %#llx: message \"%s\" lacks \"%s\"\n", when, (unsigned long long)id,
              storectx_last_error(), want);
      exit(1);
    }
  } else {
    CHECK_STATUS(st, depth ? STORECTX_ERR_NOT_INSTALLED : STORECTX_ERR_NO_CONTEXT);
  }
  CHECK(p == (void *)0x1);
  return paused;
}

/* The testing builds' hook that fixes the store sets' hash multiplier for
 * tables made from then on (storectx_testing_set_hash_multiplier; 0: draw
 * again), or NULL in a build without it. Found as a weak symbol (linked
 * builds) or with dlsym (a library loaded at run time). */
typedef void (*set_multiplier_fn)(uint64_t);
extern void storectx_set_multiplier_weak(uint64_t) __asm__("storectx_testing_set_hash_multiplier")
    __attribute__((weak));

static set_multiplier_fn hash_multiplier_hook(void) {
  if (storectx_set_multiplier_weak) return storectx_set_multiplier_weak;
  return (set_multiplier_fn)(uintptr_t)dlsym(RTLD_DEFAULT, "storectx_testing_set_hash_multiplier");
}

#endif
