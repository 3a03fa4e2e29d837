/* exhaustion_thread_keys_first_call_recovers: a thread's first stateful
 * call, made when the process has no pthread_key left (the host used all
 * PTHREAD_KEYS_MAX of them before the library's first use), is refused
 * with STORECTX_ERR_EXHAUSTED, a last_error message saying why (not the
 * empty string: the thread has no state to keep a message in), and nothing
 * changed (out-parameter untouched, stack empty, the write guard it was
 * given still holds its lock and can be released); once one key is freed,
 * the same calls succeed on the same thread (nothing cached on failure). */
/* cprog: skip on=windows pthread keys are the Unix thread-exit hook; Windows uses FLS (platform/windows.rs) */
/* cprog: timeout 60 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>

#include "check.h"

struct store { int value; };

#define MAX_KEYS 100000

static pthread_key_t keys[MAX_KEYS];

int main(void) {
  struct store st = {1}, sy = {2};
  storectx_async_store *s = NULL;
  /* Needs no thread state: works before and after. */
  CHECK_OK(storectx_async_store_new(storectx_store_id_new(), &st, &s));

  int n = 0;
  while (n < MAX_KEYS && pthread_key_create(&keys[n], NULL) == 0) n++;
  CHECK(n > 0 && n < MAX_KEYS);

  storectx_store_id id = storectx_store_id_new();
  storectx_install_guard g = {0x1234};
  CHECK_STATUS(storectx_install(id, &sy, &g), STORECTX_ERR_EXHAUSTED);
  CHECK(g.raw == 0x1234 && storectx_is_empty() && storectx_depth() == 0);

  storectx_write_guard *w = NULL;
  CHECK_OK(storectx_async_store_try_write(s, &w));
  storectx_install_guard ga = {0x1234};
  CHECK_STATUS(storectx_install_async(w, &ga), STORECTX_ERR_EXHAUSTED);
  CHECK(ga.raw == 0x1234 && storectx_is_empty());
  CHECK(storectx_write_guard_store(w) == &st); /* still the caller's */
  storectx_write_guard_release(w);
  CHECK_OK(storectx_async_store_try_write(s, &w)); /* the lock was freed */
  storectx_write_guard_release(w);

  /* One key back: the same thread can make its state now. */
  CHECK(pthread_key_delete(keys[--n]) == 0);
  CHECK_OK(storectx_install(id, &sy, &g));
  CHECK(storectx_depth() == 1 && storectx_is_active(id));
  CHECK_OK(storectx_uninstall(g));
  while (n > 0) pthread_key_delete(keys[--n]);
  storectx_async_store_release(s);
  puts("exhausted thread keys, then recovered: ok");
  return 0;
}
