/* asio_pool_destroyed.cpp: coroutines destroyed while suspended release
 * everything. Coroutines on asio::thread_pool (4 threads) hold an async
 * store's lock and a sync store and wait, carried, on one-hour timers; the
 * pool is stopped and destroyed, which destroys their frames on the main
 * thread. The adapter puts each coroutine's entries back there so its own
 * guards unwind them: no release-failure report, the main thread's stack
 * is as before (it holds a store of its own throughout), and another
 * thread can take every lock afterwards. */
#include <asio.hpp>

#include "storectx_coro.hpp"

#include "check.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <thread>
#include <vector>

namespace {

constexpr int kCoroutines = 100;

struct Engine {
  storectx::StoreId id = storectx::new_store_id();
};

struct Slot {
  Engine locked;
  storectx::AsyncStore shared{locked.id, &locked};
  Engine inner;
};

std::atomic<int> parked{0};
std::atomic<int> frames_alive{0};
std::atomic<int> release_failures{0};

struct FrameCounter {
  FrameCounter() { frames_alive.fetch_add(1); }
  ~FrameCounter() { frames_alive.fetch_sub(1); }
};

asio::awaitable<void> sleeper(Slot &slot) {
  storectx::TaskContext ctx;
  FrameCounter alive;
  storectx::InstallGuard a = storectx::install_async(slot.shared.write());
  storectx::InstallGuard b = storectx::install(slot.inner.id, &slot.inner);
  auto ex = co_await asio::this_coro::executor;
  co_await storectx::carry(ctx, asio::post(ex, asio::use_awaitable));  // hop once
  asio::steady_timer t(ex, std::chrono::hours(1));
  parked.fetch_add(1);
  co_await storectx::carry(ctx, t.async_wait(asio::use_awaitable));
  CHECK(!"the one-hour timer completed");
}

}  // namespace

int main() {
  storectx::set_release_failure_handler(
      [](storectx_status, const char *op, const char *msg) {
        std::fprintf(stderr, "release failure: %s: %s\n", op, msg);
        release_failures.fetch_add(1);
      });
  Engine own;
  storectx::InstallGuard main_entry = storectx::install(own.id, &own);

  std::vector<std::unique_ptr<Slot>> slots;
  for (int i = 0; i < kCoroutines; ++i) slots.push_back(std::make_unique<Slot>());
  {
    asio::thread_pool pool(4);
    for (auto &s : slots) asio::co_spawn(pool, sleeper(*s), asio::detached);
    while (parked.load() < kCoroutines) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    CHECK(frames_alive.load() == kCoroutines);
    std::thread([&] {
      for (auto &s : slots) CHECK(!s->shared.try_write().has_value());
    }).join();
    pool.stop();
    pool.join();
  }  // ~thread_pool destroys the suspended frames, here on the main thread

  CHECK(frames_alive.load() == 0);
  CHECK(release_failures.load() == 0);
  CHECK(storectx::depth() == 1);
  CHECK(storectx::is_active(own.id));
  std::thread([&] {
    for (auto &s : slots) {
      std::optional<storectx::WriteGuard> w = s->shared.try_write();
      CHECK(w.has_value());
    }
  }).join();
  main_entry.uninstall();
  std::printf("%d suspended coroutines destroyed with the pool: locks released, "
              "guards unwound cleanly\n",
              kCoroutines);
  return 0;
}
