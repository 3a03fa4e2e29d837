/* heap_exhaust.h: takes every block the C heap can still hand the calling
 * thread, so that the library's next allocation on this thread fails
 * whatever its size. For the out-of-memory programs, under an address-space
 * limit (address_limit.h; include after it): the limit alone only fails
 * allocations that need a new mapping, while a small one is served from
 * memory the heap already holds (the thread's arena, a cache of freed
 * blocks). Sizes go down from 1 MiB by eighths, then by 16 bytes to 16, and
 * each is taken until malloc answers NULL, so no free block of any size
 * class is left (glibc's tcache and fast bins hold exact sizes; musl's
 * groups hold size classes). The blocks are kept in a list threaded through
 * them; heap_give_back frees them all. */
#ifndef STORECTX_HEAP_EXHAUST_H
#define STORECTX_HEAP_EXHAUST_H

#include <stdlib.h>

struct heap_block {
  struct heap_block *next;
};

/* Takes every block left; answers the list (NULL if none was left). */
static struct heap_block *heap_take_all(void) {
  struct heap_block *kept = NULL;
  for (size_t size = (size_t)1 << 20; size >= 16; size -= size > 4096 ? size / 8 : 16) {
    void *p;
    while ((p = malloc(size)) != NULL) {
      struct heap_block *b = p;
      b->next = kept;
      kept = b;
    }
  }
  return kept;
}

/* Frees what heap_take_all took. */
static void heap_give_back(struct heap_block *kept) {
  while (kept) {
    struct heap_block *next = kept->next;
    free(kept);
    kept = next;
  }
}

#endif
