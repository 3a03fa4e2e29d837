// cpp_readme_example.cpp: docs/cpp.md's C++17 program, verbatim:
// nested calls into two stores, an error as storectx::Error, and a coroutine
// that yields on one std::thread and is resumed on another.
#include "storectx.hpp"

#include <cstdio>
#include <thread>

struct Engine {
  int calls = 0;
};

// A host import called by guest code: finds its store from nothing but the id.
static void host_import(storectx::StoreId id) {
  storectx::Borrow current = storectx::get_current(id);
  current.as<Engine>()->calls += 1;
}

int main() {
  Engine engine1, engine2;
  const storectx::StoreId id1 = storectx::new_store_id();
  const storectx::StoreId id2 = storectx::new_store_id();

  {
    storectx::InstallGuard call1 = storectx::install(id1, &engine1);  // call(store1, f1)
    host_import(id1);
    storectx::InstallGuard call2 = storectx::install(id2, &engine2);  // -> call(store2, f2)
    host_import(id2);
    try {
      host_import(id1);  // store1 is paused under store2
    } catch (const storectx::Error &e) {
      std::printf("refused as expected: %s\n", e.what());  // e.status() == STORECTX_ERR_PAUSED
    }
  }  // call2 then call1 uninstalled, also when an exception passes through

  // An async store: its entry holds the store's write lock, and a suspended
  // coroutine carries the entry (and the lock) to whichever thread resumes it.
  Engine engine3;
  storectx::AsyncStore shared(storectx::new_store_id(), &engine3);
  const std::size_t base = storectx::depth();
  storectx::InstallGuard entry = storectx::install_async(shared.write());
  storectx::Suspended yielded = storectx::suspend(base);  // yield
  std::thread([&] {
    storectx::resume(std::move(yielded));  // the entry is on this thread now
    host_import(shared.id());
    entry.uninstall();  // pops it and unlocks the store
  }).join();

  std::printf("calls: %d %d %d, stack empty: %d\n", engine1.calls, engine2.calls,
              engine3.calls, storectx::is_empty());
  return (engine1.calls == 1 && engine2.calls == 1 && engine3.calls == 1) ? 0 : 1;
}

/* cprog: skip on=musl Debian's musl-tools has no C++ compiler (musl-gcc wraps gcc for C only); the C programs cover musl */
