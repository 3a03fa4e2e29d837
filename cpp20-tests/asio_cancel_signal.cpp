/* asio_cancel_signal.cpp: coroutines cancelled mid-flight release their
 * locks. On asio::thread_pool (4 threads), coroutines each hold an async
 * store's write lock plus a sync store and wait, carried, on a one-hour
 * timer; half are cancelled through an asio::cancellation_signal bound to
 * co_spawn, half by timer.cancel(). The operation_aborted error comes out
 * of the co_await with the coroutine's entries already back on the
 * resuming thread (checked in the handler), the guards unwind, and another
 * thread can then take every lock. */
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

constexpr int kCoroutines = 64;

struct Engine {
  storectx::StoreId id = storectx::new_store_id();
};

struct Slot {
  Engine locked;                                  // behind the async store
  storectx::AsyncStore shared{locked.id, &locked};
  Engine inner;                                   // sync, nested on top
  asio::cancellation_signal signal;
  std::unique_ptr<asio::steady_timer> timer;
  std::unique_ptr<asio::strand<asio::thread_pool::executor_type>> strand;
};

std::atomic<int> parked{0};
std::atomic<int> aborted_with_entries{0};
std::atomic<int> done{0};

asio::awaitable<void> holder(Slot &slot) {
  storectx::TaskContext ctx;
  storectx::InstallGuard a = storectx::install_async(slot.shared.write());
  storectx::InstallGuard b = storectx::install(slot.inner.id, &slot.inner);
  auto ex = co_await asio::this_coro::executor;
  slot.timer = std::make_unique<asio::steady_timer>(ex, std::chrono::hours(1));
  try {
    parked.fetch_add(1);
    co_await storectx::carry(ctx, slot.timer->async_wait(asio::use_awaitable));
    CHECK(!"the one-hour timer completed");
  } catch (const std::system_error &e) {
    CHECK(e.code() == asio::error::operation_aborted);
    /* The entries came back before the error reached us. */
    CHECK(storectx::depth() == ctx.base() + 2);
    CHECK(storectx::get_current_transient<Engine>(slot.inner.id) == &slot.inner);
    CHECK(storectx::is_paused(slot.locked.id));
    aborted_with_entries.fetch_add(1);
    throw;  // unwinds the guards: lock released here
  }
}

}  // namespace

int main() {
  std::vector<std::unique_ptr<Slot>> slots;
  for (int i = 0; i < kCoroutines; ++i) slots.push_back(std::make_unique<Slot>());
  {
    asio::thread_pool pool(4);
    for (int i = 0; i < kCoroutines; ++i) {
      Slot &s = *slots[i];
      s.strand = std::make_unique<asio::strand<asio::thread_pool::executor_type>>(
          asio::make_strand(pool.get_executor()));
      auto on_done = [](std::exception_ptr e) {
        CHECK(e != nullptr);  // cancelled, so it ended with the error
        CHECK(storectx_is_empty());
        done.fetch_add(1);
      };
      if (i % 2 == 0) {
        asio::co_spawn(*s.strand, holder(s),
                       asio::bind_cancellation_slot(s.signal.slot(), on_done));
      } else {
        asio::co_spawn(*s.strand, holder(s), on_done);
      }
    }
    while (parked.load() < kCoroutines) std::this_thread::sleep_for(std::chrono::milliseconds(1));

    /* Every lock is held by a suspended coroutine: another thread sees BUSY. */
    std::thread([&] {
      for (auto &s : slots) CHECK(!s->shared.try_write().has_value());
    }).join();

    for (int i = 0; i < kCoroutines; ++i) {
      Slot &s = *slots[i];
      asio::post(*s.strand, [&s, i] {
        if (i % 2 == 0) {
          s.signal.emit(asio::cancellation_type::terminal);
        } else {
          s.timer->cancel();
        }
      });
    }
    pool.join();
    for (auto &s : slots) {  // timers and strands go before their services
      s->timer.reset();
      s->strand.reset();
    }
  }
  CHECK(done.load() == kCoroutines);
  CHECK(aborted_with_entries.load() == kCoroutines);
  /* Another thread can take every lock now. */
  std::thread([&] {
    for (auto &s : slots) {
      std::optional<storectx::WriteGuard> w = s->shared.try_write();
      CHECK(w.has_value());
    }
  }).join();
  CHECK(storectx_is_empty());
  std::printf("%d coroutines cancelled mid-flight (signal and timer.cancel): locks released\n",
              kCoroutines);
  return 0;
}
