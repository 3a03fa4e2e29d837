// thread_exit_first_call_in_thread_local_dtor: a thread whose FIRST
/* cprog: skip on=windows this program's two thread_local destructors in a mingw-w64 program (GCC 12, winpthreads, libstdc++'s thread-exit list) corrupt the heap under Wine 8 (a page fault in free) also with every storectx function stubbed out and libstorectx not linked at all; the first call from a destructor at thread exit is covered on Windows by thread_exit_first_call_in_key_destructor */
/* cprog: skip on=musl Debian's musl-tools has no C++ compiler (musl-gcc wraps gcc for C only); the C programs cover musl */
// libstorectx call is made from a C++ `thread_local` object's destructor
// while it exits (issue 11, input 1, sibling: "First call during thread
// exit"; SPEC "Edges": "from a pthread_key or C++ thread_local destructor").
// The destructor write-locks an async store, install_async's it and installs
// a sync entry on top; once the thread is joined, another thread takes the
// lock within 1 s. Two shapes: the object was constructed by the thread's
// start routine, and the object was first touched inside another
// thread_local's destructor (registered while the C++ runtime is already
// running the thread's destructors). valgrind (.ci/run) checks nothing leaks.
#include <pthread.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "storectx.h"

// cprog: timeout 60

namespace {

constexpr uint64_t kOneSecondNs = 1000000000ull;
int failures = 0;

struct Store {
  int value;
};

struct Job {
  storectx_async_store *s = nullptr;
  Store sync_store{0};
  storectx_status write_st = STORECTX_OK, install_st = STORECTX_OK,
                  sync_st = STORECTX_OK;
  size_t depth = 0;
  bool ran = false;
};

void first_call(Job *j) {
  j->ran = true;
  storectx_write_guard *w = nullptr;
  j->write_st = storectx_async_store_write(j->s, kOneSecondNs, &w);
  if (j->write_st != STORECTX_OK) return;
  storectx_install_guard ig;
  j->install_st = storectx_install_async(w, &ig);
  if (j->install_st != STORECTX_OK) {
    storectx_write_guard_release(w);  // refused: the guard is still ours
    return;
  }
  storectx_install_guard gs;
  j->sync_st = storectx_install(storectx_store_id_new(), &j->sync_store, &gs);
  j->depth = storectx_depth();
  // exits with both entries on the stack
}

// Its destructor makes the thread's first libstorectx call.
struct CallsAtExit {
  Job *job = nullptr;
  ~CallsAtExit() {
    if (job) first_call(job);
  }
};

thread_local CallsAtExit calls_at_exit;

// Its destructor first touches `calls_at_exit`, whose destructor is then
// registered while the thread's destructors already run.
struct TouchesLater {
  Job *job = nullptr;
  ~TouchesLater() {
    if (job) calls_at_exit.job = job;
  }
};

thread_local TouchesLater touches_later;

void *direct(void *arg) {
  calls_at_exit.job = static_cast<Job *>(arg);
  return nullptr;
}

void *nested(void *arg) {
  touches_later.job = static_cast<Job *>(arg);
  return nullptr;
}

void run(void *(*start)(void *), const char *what) {
  Store st{1};
  Job j;
  if (storectx_async_store_new(storectx_store_id_new(), &st, &j.s) != STORECTX_OK) {
    std::fprintf(stderr, "%s: async_store_new failed\n", what);
    std::exit(1);
  }
  pthread_t t;
  if (pthread_create(&t, nullptr, start, &j) != 0 || pthread_join(t, nullptr) != 0) {
    std::fprintf(stderr, "%s: pthread_create/join failed\n", what);
    std::exit(1);
  }
  if (!j.ran) {
    std::fprintf(stderr, "%s: the thread_local destructor never ran\n", what);
    std::exit(1);
  }
  if (j.write_st != STORECTX_OK || j.install_st != STORECTX_OK ||
      j.sync_st != STORECTX_OK || j.depth != 2) {
    std::fprintf(stderr,
                 "%s: first calls refused: write %s, install_async %s, install %s,"
                 " depth %zu (want OK, OK, OK, 2)\n",
                 what, storectx_status_str(j.write_st),
                 storectx_status_str(j.install_st), storectx_status_str(j.sync_st),
                 j.depth);
    failures++;
  }
  storectx_write_guard *g = nullptr;
  storectx_status st_w = storectx_async_store_write(j.s, kOneSecondNs, &g);
  if (st_w == STORECTX_OK) {
    storectx_write_guard_release(g);
  } else {
    std::fprintf(stderr,
                 "%s: after the thread exited, its lock is still held: "
                 "storectx_async_store_write(1 s) answered %s\n",
                 what, storectx_status_str(st_w));
    failures++;
  }
  storectx_async_store_release(j.s);
}

}  // namespace

int main() {
  run(direct, "first call in a thread_local destructor");
  run(nested, "first call in a thread_local first touched by another's destructor");
  if (failures) {
    std::fprintf(stderr, "thread_exit_first_call_in_thread_local_dtor: %d failures\n",
                 failures);
    return 1;
  }
  std::puts("thread_exit_first_call_in_thread_local_dtor: ok");
  return 0;
}
