/* Behaviour: install_async's fast half refuses whenever the push needs
 * something made (no entry room, or the thread's block of entry numbers
 * used up), and the slow half then makes it or refuses with the write
 * guard handed back whole.
 * - numbers: one thread runs 140,000 try_write + install_async + uninstall
 *   cycles (its block of 65,536 entry numbers is used up and refilled
 *   twice), with a sync entry under them, with and without a slot parked
 *   in its spot; every install guard is distinct from the last one, every
 *   uninstall frees the lock.
 * - room: with the address space capped (RLIMIT_AS), sync entries are
 *   installed until the stack cannot grow (EXHAUSTED); install_async of a
 *   write guard is then refused EXHAUSTED, out untouched, the stack as it
 *   was, the guard whole (its store answers, another thread finds the store
 *   BUSY), again; released, the lock is free; a new guard installs once
 *   one entry is uninstalled (room), and its uninstall frees the lock.
 *   Skipped under AddressSanitizer and valgrind (they need address space
 *   beyond any such limit) and off Linux. */
/* cprog: skip on=windows,darwin,freebsd,qemu RLIMIT_AS bounds every allocation only on Linux (macOS ignores it; Windows has none), and under qemu-user it would bound the emulator's own reservations too */
/* cprog: timeout 120 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <sys/mman.h>

#include "check.h"
#include "address_limit.h"

#define SENTINEL ((void *)0x5e71)
#define MAX_GUARDS (16u << 20)

static int mem[2];
static storectx_async_store *s;

static void *probe(void *arg) {
  storectx_write_guard *g = SENTINEL;
  storectx_status st = storectx_async_store_try_write(s, &g);
  if (st == STORECTX_OK) storectx_write_guard_release(g);
  *(storectx_status *)arg = st;
  return NULL;
}

static storectx_status try_write_elsewhere(void) {
  storectx_status st = -1;
  pthread_t t;
  CHECK(pthread_create(&t, NULL, probe, &st) == 0);
  CHECK(pthread_join(t, NULL) == 0);
  return st;
}

static void numbers(void) {
  storectx_install_guard under;
  CHECK_OK(storectx_install(storectx_store_id_new(), &mem[1], &under));
  uint64_t last = 0;
  for (int i = 0; i < 140000; i++) {
    storectx_write_guard *g;
    storectx_install_guard ig;
    CHECK_OK(storectx_async_store_try_write(s, &g));
    CHECK_OK(storectx_install_async(g, &ig));
    CHECK(ig.raw != last);
    last = ig.raw;
    CHECK(storectx_depth() == 2);
    CHECK_OK(storectx_uninstall(ig));
    if (i % 3 == 0) {
      /* A parked slot for the next try_write, or none. */
      CHECK_OK(storectx_async_store_try_write(s, &g));
      storectx_write_guard_release(g);
    }
  }
  CHECK_OK(storectx_uninstall(under));
  CHECK(try_write_elsewhere() == STORECTX_OK);
}

static void room(void) {
  if (address_limit_unusable("adversary_async_install_refused_for_room")) return;
  storectx_install_guard *guards =
      mmap(NULL, MAX_GUARDS * sizeof *guards, PROT_READ | PROT_WRITE,
           MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  CHECK(guards != MAP_FAILED);
  /* Taken before the cap: the table's slots exist already. */
  storectx_write_guard *g, *g2;
  CHECK_OK(storectx_async_store_try_write(s, &g));
  rlim_t hard = address_limit_set(192u << 20);
  size_t n = 0;
  storectx_status st = STORECTX_OK;
  while (n < MAX_GUARDS) {
    st = storectx_install(storectx_store_id_new(), &mem[0], &guards[n]);
    if (st != STORECTX_OK) break;
    n++;
  }
  CHECK_STATUS(st, STORECTX_ERR_EXHAUSTED);
  char before[256], after[256];
  storectx_describe(before, sizeof before);
  for (int again = 0; again < 2; again++) {
    storectx_install_guard ig = {0x77};
    CHECK_STATUS(storectx_install_async(g, &ig), STORECTX_ERR_EXHAUSTED);
    CHECK(ig.raw == 0x77);
    CHECK(storectx_depth() == n);
    storectx_describe(after, sizeof after);
    CHECK(strcmp(before, after) == 0);
    CHECK(storectx_write_guard_store(g) == &mem[0]);
  }
  address_limit_lift(hard); /* the probe thread needs a stack */
  CHECK(try_write_elsewhere() == STORECTX_ERR_BUSY);
  hard = address_limit_set(0);
  storectx_write_guard_release(g);
  CHECK_OK(storectx_async_store_try_write(s, &g2)); /* the lock was free */
  /* Room made by an uninstall: the install goes through. */
  CHECK_OK(storectx_uninstall(guards[--n]));
  storectx_install_guard ig;
  CHECK_OK(storectx_install_async(g2, &ig));
  CHECK(storectx_depth() == n + 1);
  CHECK_OK(storectx_uninstall(ig));
  while (n > 0) CHECK_OK(storectx_uninstall(guards[--n]));
  address_limit_lift(hard);
  CHECK(try_write_elsewhere() == STORECTX_OK);
  CHECK(storectx_is_empty());
  munmap(guards, MAX_GUARDS * sizeof *guards);
  puts("room: refused EXHAUSTED with the guard whole, installed once room was made");
}

int main(void) {
  CHECK_OK(storectx_async_store_new(storectx_store_id_new(), &mem[0], &s));
  numbers();
  room();
  storectx_async_store_release(s);
  puts("adversary_async_install_refused_for_room: ok");
  return 0;
}
