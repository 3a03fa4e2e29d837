/* address_limit.h: bound this process's address space (RLIMIT_AS) to what
 * it uses now plus some bytes, so that the library's next allocations fail
 * (Linux: RLIMIT_AS bounds every mapping). For the out-of-memory programs;
 * include after check.h. */
#ifndef STORECTX_ADDRESS_LIMIT_H
#define STORECTX_ADDRESS_LIMIT_H

#include <stdbool.h>
#include <sys/resource.h>
#include <unistd.h>

/* Bytes of address space mapped now (/proc/self/statm's first field). */
static size_t vm_bytes(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  CHECK(f != NULL);
  unsigned long pages = 0;
  CHECK(fscanf(f, "%lu", &pages) == 1);
  fclose(f);
  return pages * (size_t)sysconf(_SC_PAGESIZE);
}

/* ASan and valgrind need address space of their own beyond any such limit:
 * true (and says so) when `program` runs under either. */
static bool address_limit_unusable(const char *program) {
  const char *preload = getenv("LD_PRELOAD");
  if (UNDER_ASAN || (preload && strstr(preload, "vgpreload"))) {
    printf("%s: skipped (ASan or valgrind)\n", program);
    return true;
  }
  return false;
}

/* Sets the soft limit to what is mapped now plus `extra` bytes; answers
 * the limit to put back with address_limit_lift. */
static rlim_t address_limit_set(size_t extra) {
  printf("limit: %zu MiB in use + %zu MiB\n", vm_bytes() >> 20, extra >> 20);
  fflush(stdout);
  struct rlimit r;
  CHECK(getrlimit(RLIMIT_AS, &r) == 0);
  rlim_t hard = r.rlim_max;
  r.rlim_cur = vm_bytes() + extra;
  CHECK(setrlimit(RLIMIT_AS, &r) == 0);
  return hard;
}

/* Puts the soft limit back to `hard`. */
static void address_limit_lift(rlim_t hard) {
  struct rlimit r;
  CHECK(getrlimit(RLIMIT_AS, &r) == 0);
  r.rlim_cur = hard;
  CHECK(setrlimit(RLIMIT_AS, &r) == 0);
}

#endif
