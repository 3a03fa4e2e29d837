/* Behaviour: the library's strings. storectx_status_str names every status
 * (distinct, non-empty, starting with the code's own name) and answers
 * unknown values with a non-empty text of its own; storectx_version matches
 * the STORECTX_VERSION_* macros; storectx_last_error is "" on a fresh thread
 * and per thread; storectx_describe behaves like snprintf (returns the full
 * length, truncates with a NUL, writes nothing for len 0 or a NULL buffer)
 * and prints one "depth N: store ID at 0xADDR sync borrows COUNT" line per
 * entry, top first. */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>

#include "check.h"

#define NAMED(code) {code, #code}
static const struct {
  storectx_status code;
  const char *name;
} known[] = {
    NAMED(STORECTX_OK),
    NAMED(STORECTX_ERR_NULL_ARGUMENT),
    NAMED(STORECTX_ERR_INVALID_ARGUMENT),
    NAMED(STORECTX_ERR_NO_CONTEXT),
    NAMED(STORECTX_ERR_NOT_INSTALLED),
    NAMED(STORECTX_ERR_PAUSED),
    NAMED(STORECTX_ERR_ADDRESS_MISMATCH),
    NAMED(STORECTX_ERR_OUT_OF_ORDER),
    NAMED(STORECTX_ERR_STALE_HANDLE),
    NAMED(STORECTX_ERR_STILL_BORROWED),
    NAMED(STORECTX_ERR_NOT_BORROWED),
    NAMED(STORECTX_ERR_BORROWED),
    NAMED(STORECTX_ERR_NOT_SYNC),
    NAMED(STORECTX_ERR_BUSY),
    NAMED(STORECTX_ERR_TIMED_OUT),
    NAMED(STORECTX_ERR_WOULD_DEADLOCK),
    NAMED(STORECTX_ERR_ALREADY_ON_STACK),
    NAMED(STORECTX_ERR_PANIC),
    NAMED(STORECTX_ERR_EXHAUSTED),
};
#define KNOWN (sizeof known / sizeof known[0])

static int is_name_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

static void check_status_strings(void) {
  for (size_t i = 0; i < KNOWN; i++) {
    CHECK((int)known[i].code == (int)i); /* the numbers are the contract's */
    const char *s = storectx_status_str(known[i].code);
    CHECK(s != NULL);
    CHECK(s[0] != '\0');
    size_t n = strlen(known[i].name);
    if (strncmp(s, known[i].name, n) != 0 || is_name_char(s[n])) {
      fprintf(stderr, "status_str(%d) = \"%s\", expected it to start with %s\n",
              (int)known[i].code, s, known[i].name);
      exit(1);
    }
    CHECK(strcmp(storectx_status_str(known[i].code), s) == 0); /* stable */
    for (size_t j = 0; j < i; j++)
      CHECK(strcmp(storectx_status_str(known[j].code), s) != 0);
  }

  const storectx_status unknown[] = {-1, (storectx_status)KNOWN, 1000,
                                     INT32_MIN, INT32_MAX};
  for (size_t u = 0; u < sizeof unknown / sizeof unknown[0]; u++) {
    const char *s = storectx_status_str(unknown[u]);
    CHECK(s != NULL);
    CHECK(s[0] != '\0');
    for (size_t i = 0; i < KNOWN; i++)
      CHECK(strcmp(storectx_status_str(known[i].code), s) != 0);
  }
}

static void check_version(void) {
  char want[64];
  snprintf(want, sizeof want, "%d.%d.%d", STORECTX_VERSION_MAJOR,
           STORECTX_VERSION_MINOR, STORECTX_VERSION_PATCH);
  const char *v = storectx_version();
  CHECK(v != NULL);
  CHECK(strcmp(v, want) == 0);
}

static void *fresh_thread(void *arg) {
  (void)arg;
  /* main has failed calls behind it; this thread has none. */
  CHECK(storectx_last_error() != NULL);
  CHECK(storectx_last_error()[0] == '\0');
  CHECK_STATUS(storectx_pause(0, NULL), STORECTX_ERR_NULL_ARGUMENT);
  CHECK(strncmp(storectx_last_error(), "pause:", 6) == 0);
  return NULL;
}

static void check_last_error(void) {
  CHECK(storectx_last_error() != NULL);
  CHECK(storectx_last_error()[0] == '\0'); /* nothing failed yet */

  storectx_install_guard zero = {0};
  CHECK_STATUS(storectx_uninstall(zero), STORECTX_ERR_STALE_HANDLE);
  CHECK(strncmp(storectx_last_error(), "uninstall:", 10) == 0);
  char mine[256];
  snprintf(mine, sizeof mine, "%s", storectx_last_error());

  pthread_t t;
  CHECK(pthread_create(&t, NULL, fresh_thread, NULL) == 0);
  CHECK(pthread_join(t, NULL) == 0);
  CHECK(strcmp(storectx_last_error(), mine) == 0); /* not the thread's */
}

/* describe: snprintf-like length, truncation, and the line format. */
static int store_lower, store_upper;

static void check_describe(void) {
  char buf[512];

  /* Empty stack: no lines. */
  memset(buf, 'X', sizeof buf);
  CHECK(storectx_describe(buf, sizeof buf) == 0);
  CHECK(buf[0] == '\0');
  CHECK(storectx_describe(NULL, 0) == 0);

  storectx_store_id lower = storectx_store_id_new(), upper = storectx_store_id_new();
  storectx_install_guard gl, gu;
  storectx_borrow b;
  void *ptr;
  CHECK_OK(storectx_install(lower, &store_lower, &gl));
  CHECK_OK(storectx_get_current(lower, &ptr, &b));
  CHECK_OK(storectx_install(upper, &store_upper, &gu));

  size_t n = storectx_describe(NULL, 0);
  CHECK(n > 0 && n < sizeof buf - 1);
  CHECK(storectx_describe(NULL, 100) == n); /* NULL buf: length only */

  char full[512];
  memset(full, 'X', sizeof full);
  CHECK(storectx_describe(full, sizeof full) == n);
  CHECK(full[n] == '\0');
  CHECK(strlen(full) == n);
  CHECK(full[n - 1] == '\n');

  /* One line per entry, top first. */
  struct {
    size_t depth;
    storectx_store_id id;
    void *addr;
    unsigned long borrows;
  } want[2] = {{2, upper, &store_upper, 0}, {1, lower, &store_lower, 1}};
  const char *line = full;
  for (int i = 0; i < 2; i++) {
    const char *eol = strchr(line, '\n');
    CHECK(eol != NULL);
    char head[64];
    snprintf(head, sizeof head, "depth %zu: store %" PRIu64 " at 0x", want[i].depth,
             want[i].id);
    if (strncmp(line, head, strlen(head)) != 0) {
      fprintf(stderr, "describe line %d: expected \"%s...\", got:\n%s", i, head, full);
      exit(1);
    }
    char *end = NULL;
    unsigned long long addr = strtoull(line + strlen(head), &end, 16);
    CHECK(addr == (unsigned long long)(uintptr_t)want[i].addr);
    char tail[64];
    snprintf(tail, sizeof tail, " sync borrows %lu", want[i].borrows);
    CHECK((size_t)(eol - end) == strlen(tail));
    CHECK(strncmp(end, tail, strlen(tail)) == 0);
    line = eol + 1;
  }
  CHECK(*line == '\0');

  /* Exactly enough room, and every shorter length: truncated, NUL-ended,
   * a prefix of the full text, nothing written past len. */
  for (size_t len = 1; len <= n + 1; len++) {
    memset(buf, 'X', sizeof buf);
    CHECK(storectx_describe(buf, len) == n);
    CHECK(buf[len - 1] == '\0');
    CHECK(strlen(buf) == len - 1);
    CHECK(memcmp(buf, full, len - 1) == 0);
    for (size_t k = len; k < sizeof buf; k++) CHECK(buf[k] == 'X');
  }

  /* len 0 writes nothing, even with a real buffer. */
  memset(buf, 'X', sizeof buf);
  CHECK(storectx_describe(buf, 0) == n);
  for (size_t k = 0; k < sizeof buf; k++) CHECK(buf[k] == 'X');

  CHECK_OK(storectx_uninstall(gu));
  CHECK_OK(storectx_borrow_release(b));
  CHECK_OK(storectx_uninstall(gl));
  CHECK(storectx_describe(NULL, 0) == 0);
}

int main(void) {
  check_last_error(); /* first: needs a thread with no failed call yet */
  check_status_strings();
  check_version();
  check_describe();
  return 0;
}
