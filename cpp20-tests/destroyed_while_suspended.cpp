/* destroyed_while_suspended.cpp: destroying a coroutine suspended in a
 * carried co_await (its handle destroyed on another thread) releases
 * everything it carried. The entries are put back on the destroying thread
 * so the frame's guards unwind them (no release-failure report), an entry
 * no guard owns is swept by ~TaskContext, and the destroying thread's own
 * stack ends as it began. When that thread already has one of the stores,
 * the segment is freed instead (locks released; the stale guards report).
 * Either way another thread can then take the lock. */
#include "coro_support.hpp"

namespace {

struct Engine {
  storectx::StoreId id = storectx::new_store_id();
};

Engine locked, inner, loose, own;
storectx::AsyncStore shared(locked.id, &locked);
std::atomic<void *> parked{nullptr};
std::atomic<int> frames{0};

struct FrameCounter {
  FrameCounter() { frames.fetch_add(1); }
  ~FrameCounter() { frames.fetch_sub(1); }
};

/* Pushes an entry no guard owns (raw C install), then two guarded ones. */
support::Fire task(bool with_loose_entry) {
  storectx::TaskContext ctx;
  FrameCounter alive;
  if (with_loose_entry) {
    storectx_install_guard raw;
    CHECK_OK(storectx_install(loose.id, &loose, &raw));  // never uninstalled
  }
  storectx::InstallGuard a = storectx::install_async(shared.write());
  storectx::InstallGuard b = storectx::install(inner.id, &inner);
  co_await storectx::carry(ctx, support::NewThread{});  // hop once
  co_await storectx::carry(ctx, support::Park{&parked});
  CHECK(!"a destroyed coroutine was resumed");
}

void expect_lock_free() {
  std::thread([] { CHECK(shared.try_write().has_value()); }).join();
}

}  // namespace

int main() {
  support::count_release_failures();

  /* 1. Destroyed on a thread holding a store of its own: the guards unwind
   *    on top of it; the loose entry is swept; the thread's entry stays. */
  task(true);
  std::coroutine_handle<> h = support::wait_parked(parked);
  CHECK(!shared.try_write().has_value());  // the suspended coroutine holds it
  std::thread([h] {
    storectx::InstallGuard mine = storectx::install(own.id, &own);
    h.destroy();
    CHECK(storectx::depth() == 1 && storectx::is_active(own.id));
    mine.uninstall();
  }).join();
  support::threads().join_all();
  CHECK(frames.load() == 0);
  CHECK(support::release_failures.load() == 0);
  expect_lock_free();

  /* 2. Destroyed on a thread that already has one of the stores: resuming
   *    there is refused, so the segment is freed; the two stale guards
   *    report; the thread's stack is untouched. */
  task(false);
  h = support::wait_parked(parked);
  std::thread([h] {
    storectx::InstallGuard mine = storectx::install(inner.id, &inner);
    h.destroy();
    CHECK(storectx::depth() == 1 && storectx::is_active(inner.id));
    mine.uninstall();
  }).join();
  support::threads().join_all();
  CHECK(frames.load() == 0);
  CHECK(support::release_failures.load() == 2);
  expect_lock_free();

  CHECK(storectx::is_empty());
  std::printf("suspended coroutines destroyed on other threads: guards unwound, loose entry "
              "swept, locks released\n");
  return 0;
}
