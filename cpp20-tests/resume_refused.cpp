/* resume_refused.cpp: a coroutine resumed on a thread that already has one
 * of its stores on its stack cannot take its entries back there: the
 * carried co_await throws storectx::Error(STORECTX_ERR_ALREADY_ON_STACK)
 * with storectx_last_error()'s text; the entries are dropped before the
 * exception reaches the coroutine (write lock released, the resuming
 * thread's own stack untouched), and the coroutine's guards, now stale,
 * report through the release-failure handler instead of throwing. */
#include "coro_support.hpp"

#include <string>

namespace {

struct Engine {
  storectx::StoreId id = storectx::new_store_id();
};

Engine locked, both;
storectx::AsyncStore shared(locked.id, &locked);
std::atomic<void *> parked{nullptr};
std::atomic<bool> caught{false};

support::Fire task() {
  storectx::TaskContext ctx;
  storectx::InstallGuard a = storectx::install_async(shared.write());
  storectx::InstallGuard b = storectx::install(both.id, &both);
  try {
    co_await storectx::carry(ctx, support::Park{&parked});
    CHECK(!"resumed with a store the thread already has");
  } catch (const storectx::Error &e) {
    CHECK(e.status() == STORECTX_ERR_ALREADY_ON_STACK);
    CHECK(!e.message().empty());
    CHECK(e.message().find("resume") != std::string::npos);
    /* The entries are gone, their lock released; this thread's own entry
     * (store `both`, pushed by the resuming thread) is untouched. */
    CHECK(!ctx.suspended() && ctx.carried() == 0);
    CHECK(storectx::depth() == 1 && storectx::is_active(both.id));
    std::thread([] { CHECK(shared.try_write().has_value()); }).join();
    caught = true;
  }
}  // a and b are stale here: two release-failure reports, no throw

}  // namespace

int main() {
  support::count_release_failures();
  task();
  std::coroutine_handle<> h = support::wait_parked(parked);
  CHECK(storectx::is_empty());  // the entries left with the coroutine
  std::thread([h] {
    storectx::InstallGuard mine = storectx::install(both.id, &both);
    h.resume();  // runs to the end: catch block, then the frame is freed
    CHECK(storectx::depth() == 1 && storectx::is_active(both.id));
    mine.uninstall();
  }).join();
  support::threads().join_all();
  CHECK(caught.load());
  CHECK(support::release_failures.load() == 2);
  CHECK(shared.try_write().has_value());
  std::printf("resume on a thread that has the store: ALREADY_ON_STACK, entries dropped, "
              "lock released\n");
  return 0;
}
