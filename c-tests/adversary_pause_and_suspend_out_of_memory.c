/* Behaviour: nested pauses whose records cannot grow for lack of memory are
 * refused (STORECTX_ERR_EXHAUSTED, a message, nothing changed), and so is a
 * suspend that has no memory for the detached pause records, instead of
 * aborting the process. The address space is capped at what the process
 * uses plus 64 MiB (RLIMIT_AS); one store is paused again and again until a
 * refusal (its records double, 8 bytes each: the 64 MiB vector cannot
 * become 128), then the whole stack is suspended (its records need as much
 * again). Before the fix both hit Rust's allocation-failure handler
 * ("memory allocation of ... bytes failed", SIGABRT). After each refusal
 * the stack is intact: the two innermost pauses unwind in order, and once
 * the limit is lifted the suspend succeeds and freeing the segment drops
 * every record. Skipped under AddressSanitizer and valgrind, which need
 * address space of their own beyond any such limit. */
/* cprog: skip on=windows,darwin,freebsd,qemu RLIMIT_AS bounds every allocation only on Linux (macOS ignores it; Windows has none), and under qemu-user it would bound the emulator's own reservations too */
/* cprog: timeout 120 */
#define _GNU_SOURCE
#include <stdint.h>

#include "check.h"
#include "address_limit.h"


int main(void) {
  if (address_limit_unusable("adversary_pause_and_suspend_out_of_memory")) {
    return 0;
  }
  static int mem;
  storectx_store_id a = storectx_store_id_new();
  storectx_install_guard ga;
  storectx_pause_guard inner, outer;
  storectx_suspended *seg = NULL;
  size_t base = 0;
  /* Warm up: the context, a nested pause, a suspended segment with pause
   * records (the segments' first table chunk, a detached part), stdio. */
  CHECK_OK(storectx_install(a, &mem, &ga));
  CHECK_OK(storectx_pause(a, &outer));
  CHECK_OK(storectx_pause(a, &inner));
  CHECK_OK(storectx_suspend(0, &seg));
  CHECK_OK(storectx_resume(seg, &base));
  CHECK_OK(storectx_unpause(inner));
  CHECK_OK(storectx_unpause(outer));
  rlim_t hard = address_limit_set(64u << 20);

  /* Nested pauses until the records cannot grow. */
  size_t n = 0;
  storectx_status st = STORECTX_OK;
  for (;;) {
    storectx_pause_guard p;
    st = storectx_pause(a, &p);
    if (st != STORECTX_OK) break;
    outer = inner;
    inner = p;
    n++;
    CHECK(n < (64u << 20));
  }
  CHECK_STATUS(st, STORECTX_ERR_EXHAUSTED);
  printf("pause refused after %zu: %s\n", n, storectx_last_error());
  CHECK(strstr(storectx_last_error(), "no memory") != NULL);
  CHECK(n > 1000);
  CHECK(storectx_depth() == 1 && storectx_active_store() == a);
  /* Nothing changed: the last pause answered is still the innermost. */
  CHECK_OK(storectx_unpause(inner));
  CHECK_OK(storectx_pause(a, &inner));

  /* Suspend needs as much memory again for the detached records. */
  seg = (storectx_suspended *)0x77;
  CHECK_STATUS(storectx_suspend(0, &seg), STORECTX_ERR_EXHAUSTED);
  printf("suspend refused: %s\n", storectx_last_error());
  CHECK(strstr(storectx_last_error(), "no memory") != NULL);
  CHECK(seg == (storectx_suspended *)0x77);
  CHECK(storectx_depth() == 1 && storectx_active_store() == a);
  CHECK(storectx_is_active(a));
  /* The stack is whole: the two innermost pauses unwind in order, and the
   * store is back in the store set (the refused suspend had taken it out):
   * with another store on top, installing it again is refused as deeper. */
  CHECK_OK(storectx_unpause(inner));
  CHECK_OK(storectx_unpause(outer));
  storectx_install_guard gb;
  CHECK_OK(storectx_install(storectx_store_id_new(), &mem, &gb));
  CHECK(storectx_is_paused(a));
  CHECK_STATUS(storectx_install(a, &mem, &ga), STORECTX_ERR_PAUSED);
  CHECK_OK(storectx_uninstall(gb));
  CHECK_OK(storectx_pause(a, &outer));
  CHECK_OK(storectx_pause(a, &inner));

  /* With memory again: suspended whole, freed with every record. */
  address_limit_lift(hard);
  CHECK_OK(storectx_suspend(0, &seg));
  CHECK(storectx_suspended_len(seg) == 1 && storectx_is_empty());
  CHECK(!storectx_is_active(a));
  storectx_suspended_free(seg);
  CHECK_STATUS(storectx_unpause(inner), STORECTX_ERR_STALE_HANDLE);
  CHECK_OK(storectx_install(a, &mem, &ga));
  for (int i = 0; i < 1000; i++) CHECK_OK(storectx_pause(a, &inner));
  CHECK_OK(storectx_suspend(0, &seg));
  storectx_suspended_free(seg);
  CHECK(storectx_is_empty());
  puts("out of memory: pause and suspend refused, nothing changed, unwound");
  return 0;
}
