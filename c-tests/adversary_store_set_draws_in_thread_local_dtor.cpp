// Behaviour: a thread's store set draws its hash multiplier when a table is
// made (its first install, each growth), and that draw may happen in a C++
// thread_local destructor while the thread exits, after other thread_local
// destructors (the C++ runtime's, Rust's) have run: it must touch nothing
// they tore down, and every answer stays exact. Two threads construct a
// thread_local object whose destructor installs 150 stores (ids from
// storectx_store_id_new, pointers into one array, ids near UINT64_MAX),
// crossing several growths of the store set, checks every id after each
// install (is_active, is_paused, PAUSED naming the topmost depth,
// NOT_INSTALLED), unwinds 80 and leaves the rest to the thread's teardown.
// The first thread's first libstorectx call is in that destructor; the
// second installed 12 stores before it exited (its first table was drawn
// during its life, after the object was constructed, so a thread_local the
// draw used would be destroyed before this destructor runs). With a draw
// that uses a thread_local with a destructor, the second thread's
// destructor panics ("cannot access a Thread Local Storage value during or
// after destruction"; seen by mutation of fresh_multiplier).
/* cprog: skip on=windows thread_local destructors in mingw-w64 programs corrupt the heap under Wine 8 (see thread_exit_first_call_in_thread_local_dtor.cpp); adversary_store_set_drawn_hashes.c covers draws in a key destructor */
/* cprog: skip on=musl Debian's musl-tools has no C++ compiler (musl-gcc wraps gcc for C only); the C programs cover musl */
// cprog: timeout 60
#include <pthread.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "storectx.h"

namespace {

constexpr size_t kIds = 200;
constexpr size_t kBefore = 12;   // installed by the second thread in its life
constexpr size_t kInDtor = 150;  // installed by the destructor
constexpr size_t kLeft = 70;     // left to the thread's teardown

storectx_store_id ids[kIds];
struct Obj {
  char bytes[48];
};
Obj objects[kIds / 2];
int store_mem;

void fail(const char *what, size_t i) {
  std::fprintf(stderr, "%s (id %zu, %#llx): %s\n", what, i,
               static_cast<unsigned long long>(ids[i]), storectx_last_error());
  std::exit(1);
}

// The stack holds ids[0 .. depth) in order (distinct stores).
void verify(size_t depth) {
  if (storectx_depth() != depth) fail("depth", 0);
  storectx_store_id top = depth ? ids[depth - 1] : 0;
  for (size_t i = 0; i < kIds; i++) {
    bool present = i < depth, paused = present && ids[i] != top;
    if (storectx_is_paused(ids[i]) != paused) fail("is_paused", i);
    if (storectx_is_active(ids[i]) != (ids[i] == top)) fail("is_active", i);
    if (ids[i] == top) continue;
    void *p = nullptr;
    storectx_status st = storectx_get_current_transient(ids[i], &p);
    if (paused) {
      char want[64];
      std::snprintf(want, sizeof want, "paused at depth %zu;", i + 1);
      if (st != STORECTX_ERR_PAUSED || !std::strstr(storectx_last_error(), want))
        fail("not refused as paused at its depth", i);
    } else if (st != (depth ? STORECTX_ERR_NOT_INSTALLED : STORECTX_ERR_NO_CONTEXT)) {
      fail("not refused as absent", i);
    }
  }
}

storectx_install_guard guards[kIds];
size_t depth;  // one thread at a time
bool done;

struct GrowsAtExit {
  ~GrowsAtExit() {
    for (size_t n = 0; n < kInDtor; n++) {
      if (storectx_install(ids[depth], &store_mem, &guards[depth]) != STORECTX_OK)
        fail("install in a thread_local destructor", depth);
      depth++;
      verify(depth);
    }
    while (depth > kLeft) {
      if (storectx_uninstall(guards[--depth]) != STORECTX_OK) fail("uninstall", depth);
      verify(depth);
    }
    done = true;  // the rest is dropped by the thread's teardown
  }
  int touched = 0;
};

thread_local GrowsAtExit grows;

void *thread_main(void *arg) {
  grows.touched = 1;  // constructed (and its destructor registered) first
  depth = 0;
  if (arg != nullptr) {
    for (; depth < kBefore; depth++)
      if (storectx_install(ids[depth], &store_mem, &guards[depth]) != STORECTX_OK)
        fail("install", depth);
    verify(depth);
  }
  return nullptr;
}

}  // namespace

int main() {
  for (size_t k = 0; k < kIds / 2; k++) {
    ids[2 * k] = k % 2 ? storectx_store_id_new() : UINT64_MAX - 1 - k;
    ids[2 * k + 1] = reinterpret_cast<uintptr_t>(&objects[k]);
  }
  for (int t = 0; t < 2; t++) {
    done = false;
    pthread_t th;
    if (pthread_create(&th, nullptr, thread_main, t ? &store_mem : nullptr) != 0) return 1;
    if (pthread_join(th, nullptr) != 0) return 1;
    if (!done) {
      std::fprintf(stderr, "thread %d: the destructor did not finish\n", t);
      return 1;
    }
  }
  std::puts("store set draws in thread_local destructors: answers exact");
  return 0;
}
