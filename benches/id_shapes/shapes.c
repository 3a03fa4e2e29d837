/* shapes.c: what a stack of stores costs, thread by thread, for one shape
 * of store ids (benches/id_shapes/run.sh drives it under callgrind). Each of
 * THREADS fresh threads, one after the other, pushes DEPTH distinct ids of
 * the shape and pops them, ROUNDS + 1 times; callgrind's counts are zeroed
 * when a thread starts and dumped when it ends, so each dump is one
 * thread: its table, its multiplier's draw. Usage:
 *   shapes SHAPE DEPTH ROUNDS THREADS
 * SHAPE: new (storectx_store_id_new: consecutive), arr64 / arr24 (objects
 * of one malloc'd array), page (4096 apart), huge (2 MiB apart), high
 * ((k + 1) << 44), random; fresh: random ids drawn anew for each round
 * (each thread's table meets 10 new stacks of ids in the measured rounds,
 * so that the far-probe redraw can fire in them: with the same ids every
 * round it fires in the first round only, which the difference cancels;
 * the draw of the ids, a splitmix64 each, is counted in). */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <valgrind/callgrind.h>

#include "storectx.h"

static int depth, rounds;
static uint64_t *ids;
static int mem;
static int fresh;
static unsigned long long fresh_seed;

static uint64_t splitmix(uint64_t *x) {
  uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static void *run(void *arg) {
  (void)arg;
  storectx_install_guard *g = malloc(sizeof *g * (size_t)depth);
  uint64_t *own = malloc(sizeof *own * (size_t)depth);
  if (!g || !own) abort();
  uint64_t seed = __atomic_add_fetch(&fresh_seed, 1, __ATOMIC_RELAXED) << 32;
  const uint64_t *use = fresh ? own : ids;
  CALLGRIND_ZERO_STATS;
  for (int r = 0; r <= rounds; r++) {
    for (int i = 0; fresh && i < depth; i++) own[i] = splitmix(&seed) | 1;
    for (int i = 0; i < depth; i++)
      if (storectx_install(use[i], &mem, &g[i])) abort();
    for (int i = depth - 1; i >= 0; i--)
      if (storectx_uninstall(g[i])) abort();
  }
  CALLGRIND_DUMP_STATS;
  free(g);
  free(own);
  return NULL;
}

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: shapes SHAPE DEPTH ROUNDS THREADS\n");
    return 2;
  }
  const char *shape = argv[1];
  depth = atoi(argv[2]);
  rounds = atoi(argv[3]);
  int threads = atoi(argv[4]);
  ids = malloc(sizeof *ids * (size_t)depth);
  char *arr = malloc(64 * (size_t)depth);
  char *pages = aligned_alloc(4096, 4096);
  if (!ids || !arr || !pages) abort();
  for (int k = 0; k < depth; k++) {
    uint64_t u = (uint64_t)k;
    if (!strcmp(shape, "new")) ids[k] = storectx_store_id_new();
    else if (!strcmp(shape, "arr64")) ids[k] = (uintptr_t)arr + 64 * u;
    else if (!strcmp(shape, "arr24")) ids[k] = (uintptr_t)arr + 24 * u;
    else if (!strcmp(shape, "page")) ids[k] = (uintptr_t)pages + 4096 * u;
    else if (!strcmp(shape, "huge")) ids[k] = (uintptr_t)pages + (u << 21);
    else if (!strcmp(shape, "high")) ids[k] = (u + 1) << 44;
    else if (!strcmp(shape, "fresh")) fresh = 1;
    else if (!strcmp(shape, "random")) {
      uint64_t z = (u + 1) * 0x9E3779B97F4A7C15ull; /* splitmix64 */
      z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
      z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
      ids[k] = (z ^ (z >> 31)) | 1;
    } else {
      fprintf(stderr, "shapes: unknown shape %s\n", shape);
      return 2;
    }
  }
  for (int t = 0; t < threads; t++) {
    pthread_t th;
    if (pthread_create(&th, NULL, run, NULL) != 0) abort();
    pthread_join(th, NULL);
  }
  return 0;
}
