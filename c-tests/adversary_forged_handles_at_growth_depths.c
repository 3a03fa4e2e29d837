/* Behaviour: forged handles are refused, with nothing changed, at every
 * depth where the entry vector grows (quarter steps from 16: 16, 20, 24,
 * 28, 32, 40, ... 1,024, 1,280, ... 65,536, 81,920) and one past it, also
 * against the one-word pause records (src/stack/entries.rs `PauseRecord`:
 * the guard's raw handle with the borrow it took in bit 0). At each depth
 * the top entry has a borrow and two nested pauses (the outer took the
 * borrow away, the inner did not) and the bottom entry has a borrow and a
 * pause too. Every genuine handle (the top's and the bottom's install
 * guard, borrow, pause guards) is altered: each of its 64 bits flipped,
 * +-1..8, +-32 (the next entry's or pause's number), its 8 kind-bit
 * patterns; each altered value is given to uninstall, borrow_release,
 * borrow_clone, unpause and install_guard_installed. None may succeed (an
 * altered value that is a genuine handle of that function's kind is
 * skipped); each refusal is STALE_HANDLE or OUT_OF_ORDER with a message;
 * the stack is unchanged (depth, top, the top's borrow count and pauses,
 * which must unwind exactly afterwards). Also: a pause taken on one entry
 * survives the entries moving through several growths above it, and the
 * guards of entries popped before a growth stay stale after it. At 65,536
 * and more only the kind bits and +-32 are tried (each refusal scans the
 * stack: error paths may cost O(depth)). */
#include <stdbool.h>
#include <stdint.h>

#include "check.h"

#define MAX_DEPTH 90000

static int store_mem;
static storectx_install_guard guards[MAX_DEPTH];
static storectx_store_id ids[MAX_DEPTH];
static size_t depth;
static long tried, faults;

static void push(void) {
  ids[depth] = storectx_store_id_new();
  CHECK_OK(storectx_install(ids[depth], &store_mem, &guards[depth]));
  depth++;
}

/* The top entry's line of describe (which formats the whole stack: only
 * at small depths; deeper, the id on top stands for it, and the exact
 * unwinding afterwards checks the borrows and pauses). */
static void top_line(char *buf, size_t len) {
  if (depth > 64) {
    snprintf(buf, len, "store %llu", (unsigned long long)storectx_active_store());
    return;
  }
  storectx_describe(buf, len);
  char *nl = strchr(buf, '\n');
  if (nl) *nl = 0;
}

/* The genuine handles of the moment, to skip. */
static uint64_t genuine_guard[2], genuine_borrow[2], genuine_pause[3];

static bool is_genuine(const uint64_t *set, size_t n, uint64_t v) {
  for (size_t i = 0; i < n; i++)
    if (set[i] == v) return true;
  return false;
}

static void refused(const char *api, uint64_t v, storectx_status st, const char *before) {
  tried++;
  if (st == STORECTX_OK) {
    fprintf(stderr, "FAULT depth %zu: %s(%#llx) succeeded\n", depth, api, (unsigned long long)v);
    faults++;
    return;
  }
  if (st != STORECTX_ERR_STALE_HANDLE && st != STORECTX_ERR_OUT_OF_ORDER) {
    fprintf(stderr, "FAULT depth %zu: %s(%#llx) answered %s\n", depth, api, (unsigned long long)v,
            storectx_status_str(st));
    faults++;
  }
  if (storectx_last_error()[0] == 0) {
    fprintf(stderr, "FAULT depth %zu: %s(%#llx) left no message\n", depth, api,
            (unsigned long long)v);
    faults++;
  }
  char after[256];
  top_line(after, sizeof after);
  if (storectx_depth() != depth || strcmp(before, after) != 0) {
    fprintf(stderr, "FAULT depth %zu: %s(%#llx) changed the stack: '%s' -> '%s' (depth %zu)\n",
            depth, api, (unsigned long long)v, before, after, storectx_depth());
    exit(1);
  }
}

static void try_value(uint64_t v, const char *before) {
  if (!is_genuine(genuine_guard, 2, v)) {
    storectx_install_guard g = {v};
    storectx_status st = storectx_uninstall(g);
    refused("uninstall", v, st, before);
    /* Installed exactly when it names an entry here (below the top). */
    if (storectx_install_guard_installed(g) != (st == STORECTX_ERR_OUT_OF_ORDER)) {
      fprintf(stderr, "FAULT depth %zu: install_guard_installed(%#llx) is %d, uninstall said %s\n",
              depth, (unsigned long long)v, storectx_install_guard_installed(g),
              storectx_status_str(st));
      faults++;
    }
  }
  if (!is_genuine(genuine_borrow, 2, v)) {
    storectx_borrow b = {v}, out = {UINT64_C(0x5e5e)};
    refused("borrow_release", v, storectx_borrow_release(b), before);
    refused("borrow_clone", v, storectx_borrow_clone(b, &out), before);
    CHECK(out.raw == UINT64_C(0x5e5e));
  }
  if (!is_genuine(genuine_pause, 3, v)) {
    storectx_pause_guard p = {v};
    refused("unpause", v, storectx_unpause(p), before);
  }
}

static void attack(uint64_t h, bool thorough, const char *before) {
  for (unsigned tag = 0; tag < 8; tag++) try_value((h & ~UINT64_C(7)) | tag, before);
  try_value(h + 32, before);
  try_value(h - 32, before);
  if (!thorough) return;
  for (int bit = 0; bit < 64; bit++) try_value(h ^ (UINT64_C(1) << bit), before);
  for (uint64_t d = 1; d <= 8; d++) {
    try_value(h + d, before);
    try_value(h - d, before);
  }
}

int main(void) {
  static const size_t depths[] = {1,   2,   15,  16,  17,   20,   21,   24,    25,    28,   29,
                                  32,  33,  40,  41,  48,   49,   1023, 1024,  1025,  1280, 1281,
                                  1536, 1537, 65535, 65536, 65537};
  void *p;
  /* The bottom entry, borrowed and paused for the whole run. */
  push();
  storectx_borrow b0;
  storectx_pause_guard q0;
  CHECK_OK(storectx_get_current(ids[0], &p, &b0));
  CHECK_OK(storectx_pause(ids[0], &q0));
  storectx_install_guard stale = {0};
  for (size_t k = 0; k < sizeof depths / sizeof depths[0]; k++) {
    size_t want = depths[k];
    while (depth < want - 1) push();
    /* An entry popped just below the boundary: its guard stays stale. */
    if (depth >= 1) {
      push();
      stale = guards[depth - 1];
      CHECK_OK(storectx_uninstall(stale));
      depth--;
    }
    if (depth < want) push();
    CHECK(storectx_depth() == want);
    storectx_store_id top = ids[depth - 1];
    storectx_borrow b;
    storectx_pause_guard p1, p2;
    if (depth > 1) {
      CHECK_OK(storectx_get_current(top, &p, &b));
      CHECK_OK(storectx_pause(top, &p1)); /* took the borrow: count 0 */
      CHECK_OK(storectx_pause(top, &p2)); /* took none */
    } else {
      b = b0;
      p1 = q0;
      CHECK_OK(storectx_pause(top, &p2));
    }
    genuine_guard[0] = guards[depth - 1].raw;
    genuine_guard[1] = guards[0].raw;
    genuine_borrow[0] = b.raw;
    genuine_borrow[1] = b0.raw;
    genuine_pause[0] = p1.raw;
    genuine_pause[1] = p2.raw;
    genuine_pause[2] = q0.raw;
    char before[256];
    top_line(before, sizeof before);
    bool thorough = depth < 60000;
    const uint64_t handles[] = {guards[depth - 1].raw, guards[0].raw, b.raw, b0.raw,
                                p1.raw, p2.raw, q0.raw, stale.raw};
    for (size_t i = 0; i < sizeof handles / sizeof handles[0]; i++)
      attack(handles[i], thorough, before);
    storectx_install_guard sg = stale;
    if (sg.raw) CHECK_STATUS(storectx_uninstall(sg), STORECTX_ERR_STALE_HANDLE);
    /* Unwind exactly: the inner pause first, the borrow comes back last. */
    CHECK_STATUS(storectx_unpause(p1), STORECTX_ERR_OUT_OF_ORDER);
    CHECK_OK(storectx_unpause(p2));
    if (depth > 1) {
      CHECK_STATUS(storectx_borrow_release(b), STORECTX_ERR_NOT_BORROWED);
      CHECK_OK(storectx_unpause(p1));
      CHECK_STATUS(storectx_uninstall(guards[depth - 1]), STORECTX_ERR_STILL_BORROWED);
      CHECK_OK(storectx_borrow_release(b));
      CHECK_STATUS(storectx_unpause(p1), STORECTX_ERR_STALE_HANDLE);
    }
  }
  /* A pause on an entry survives growths of the entries above it. */
  size_t mid = depth;
  storectx_pause_guard pm;
  CHECK_OK(storectx_pause(ids[mid - 1], &pm));
  size_t grown = depth + 20000;
  while (depth < grown) push();
  CHECK_STATUS(storectx_unpause(pm), STORECTX_ERR_OUT_OF_ORDER);
  while (depth > mid) {
    CHECK_OK(storectx_uninstall(guards[depth - 1]));
    depth--;
  }
  CHECK_OK(storectx_unpause(pm));
  CHECK_STATUS(storectx_unpause(pm), STORECTX_ERR_STALE_HANDLE);
  while (depth > 1) {
    CHECK_OK(storectx_uninstall(guards[depth - 1]));
    depth--;
  }
  CHECK_OK(storectx_unpause(q0));
  CHECK_OK(storectx_borrow_release(b0));
  CHECK_OK(storectx_uninstall(guards[0]));
  CHECK(storectx_is_empty());
  printf("%ld altered handles refused at %zu depths, %ld faults\n", tried,
         sizeof depths / sizeof depths[0], faults);
  return faults ? 1 : 0;
}
