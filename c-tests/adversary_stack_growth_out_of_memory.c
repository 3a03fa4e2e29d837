/* Behaviour: a thread's stack that cannot grow for lack of memory refuses
 * the install (STORECTX_ERR_EXHAUSTED, a message, nothing changed) instead
 * of aborting the process. A runaway embedder (unbounded guest recursion,
 * each level installing its store) in a process with a memory limit
 * reaches this: the address space is capped at what the process uses plus
 * 192 MiB (RLIMIT_AS), then distinct stores are installed until a refusal.
 * Before the fix the growth of the entry vector or of the store set hit
 * Rust's allocation-failure handler: "memory allocation of 251658240 bytes
 * failed", SIGABRT. After the refusal the stack is intact: the top is the
 * last store installed, every entry unwinds, and installs work again.
 * Skipped under AddressSanitizer and valgrind, which need address space of
 * their own beyond any such limit. */
/* cprog: skip on=windows,darwin,freebsd,qemu RLIMIT_AS bounds every allocation only on Linux (macOS ignores it; Windows has none), and under qemu-user it would bound the emulator's own reservations too */
/* cprog: timeout 120 */
#define _GNU_SOURCE
#include <stdint.h>
#include <sys/mman.h>

#include "check.h"
#include "address_limit.h"

#define MAX_GUARDS (16u << 20)

int main(void) {
  if (address_limit_unusable("adversary_stack_growth_out_of_memory")) {
    return 0;
  }
  static int mem;
  /* The guards' array, mapped before the limit (128 MiB, touched lazily). */
  storectx_install_guard *guards =
      mmap(NULL, MAX_GUARDS * sizeof *guards, PROT_READ | PROT_WRITE,
           MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  CHECK(guards != MAP_FAILED);
  /* Warm up: the context, a grown stack, stdio. */
  storectx_install_guard g;
  CHECK_OK(storectx_install(storectx_store_id_new(), &mem, &g));
  CHECK_OK(storectx_uninstall(g));
  rlim_t hard = address_limit_set(192u << 20);

  size_t n = 0;
  storectx_status st = STORECTX_OK;
  storectx_store_id last = 0;
  while (n < MAX_GUARDS) {
    storectx_store_id id = storectx_store_id_new();
    st = storectx_install(id, &mem, &guards[n]);
    if (st != STORECTX_OK) break;
    last = id;
    n++;
  }
  CHECK(n < MAX_GUARDS);
  CHECK_STATUS(st, STORECTX_ERR_EXHAUSTED);
  printf("refused at depth %zu: %s\n", n, storectx_last_error());
  CHECK(storectx_depth() == n && storectx_active_store() == last);
  /* A nested install of the top needs room too: refused the same way. */
  CHECK_STATUS(storectx_install(last, &mem, &g), STORECTX_ERR_EXHAUSTED);
  CHECK(storectx_depth() == n);
  while (n > 0) CHECK_OK(storectx_uninstall(guards[--n]));
  CHECK(storectx_is_empty());
  address_limit_lift(hard);
  for (int i = 0; i < 1000; i++) CHECK_OK(storectx_install(storectx_store_id_new(), &mem, &guards[i]));
  for (int i = 999; i >= 0; i--) CHECK_OK(storectx_uninstall(guards[i]));
  puts("out of memory: refused, nothing changed, unwound");
  return 0;
}
