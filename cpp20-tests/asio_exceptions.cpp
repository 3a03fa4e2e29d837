/* asio_exceptions.cpp: exceptions thrown across carried co_awaits on
 * asio::thread_pool (4 threads). A carried child awaitable that hops and
 * throws; a child of the same task (sharing the context) that pushes a
 * store, hops and throws; a coroutine whose exception escapes after a hop;
 * and the adapter's own errors (storectx::Error with status and message):
 * a nested carry of the same context (INVALID_ARGUMENT) and a task that
 * popped below its base (INVALID_ARGUMENT). In every case the catching
 * coroutine finds its entries on the thread it continues on, and every lock
 * is free at the end. */
#include <asio.hpp>

#include "storectx_coro.hpp"

#include "check.h"

#include <atomic>
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

constexpr int kCoroutines = 200;

struct Engine {
  storectx::StoreId id = storectx::new_store_id();
};

struct Slot {
  Engine locked;
  storectx::AsyncStore shared{locked.id, &locked};
  Engine inner;
  Engine extra;
};

std::atomic<int> caught{0};
std::atomic<int> escaped{0};

void expect_entries(const storectx::TaskContext &ctx, Slot &s) {
  CHECK(storectx::depth() == ctx.base() + 2);
  CHECK(storectx::get_current_transient<Engine>(s.inner.id) == &s.inner);
  CHECK(storectx::is_paused(s.locked.id));
}

/* Its own task (carried by the caller, so it runs without the caller's
 * entries): hops, then throws. */
asio::awaitable<int> failing_operation() {
  storectx::TaskContext ctx;
  CHECK(storectx::depth() == ctx.base());
  auto ex = co_await asio::this_coro::executor;
  co_await storectx::carry(ctx, asio::post(ex, asio::use_awaitable));
  throw std::runtime_error("operation failed");
  co_return 0;
}

/* Part of the caller's task (same context, not carried by the caller). */
asio::awaitable<void> failing_step(storectx::TaskContext &ctx, Slot &s) {
  storectx::InstallGuard g = storectx::install(s.extra.id, &s.extra);
  auto ex = co_await asio::this_coro::executor;
  co_await storectx::carry(ctx, asio::post(ex, asio::use_awaitable));
  CHECK(storectx::depth() == ctx.base() + 3);
  throw std::logic_error("step failed");  // g unwinds here, on this thread
}

/* Carries the context it is given: awaiting it inside carry(ctx, ...) is
 * the nested-carry misuse. */
asio::awaitable<void> carries(storectx::TaskContext &ctx) {
  auto ex = co_await asio::this_coro::executor;
  co_await storectx::carry(ctx, asio::post(ex, asio::use_awaitable));
}

asio::awaitable<void> worker(Slot &s, int me) {
  storectx::TaskContext ctx;
  storectx::InstallGuard a = storectx::install_async(s.shared.write());
  storectx::InstallGuard b = storectx::install(s.inner.id, &s.inner);
  auto ex = co_await asio::this_coro::executor;

  try {
    co_await storectx::carry(ctx, failing_operation());
    CHECK(!"no exception");
  } catch (const std::runtime_error &e) {
    CHECK(std::string(e.what()) == "operation failed");
    expect_entries(ctx, s);
    caught.fetch_add(1);
  }

  try {
    co_await failing_step(ctx, s);
    CHECK(!"no exception");
  } catch (const std::logic_error &) {
    expect_entries(ctx, s);  // the child's store is gone, ours are here
    caught.fetch_add(1);
  }

  try {
    co_await storectx::carry(ctx, carries(ctx));
    CHECK(!"no exception");
  } catch (const storectx::Error &e) {
    CHECK(e.status() == STORECTX_ERR_INVALID_ARGUMENT);
    CHECK(e.message().find("already suspended") != std::string::npos);
    expect_entries(ctx, s);
    caught.fetch_add(1);
  }

  /* Popping below the base: the next carried await refuses, nothing moves. */
  {
    storectx::InstallGuard c = storectx::install(s.extra.id, &s.extra);
    ctx.restart();  // the base is now above b
    c.uninstall();
    try {
      co_await storectx::carry(ctx, asio::post(ex, asio::use_awaitable));
      CHECK(!"no exception");
    } catch (const storectx::Error &e) {
      CHECK(e.status() == STORECTX_ERR_INVALID_ARGUMENT);
      CHECK(!e.message().empty());
      caught.fetch_add(1);
    }
    b.uninstall();
    a.uninstall();
    ctx.restart();
  }

  /* An exception escaping the coroutine after a hop: guards unwind on the
   * thread it ended on, the lock is released. */
  storectx::InstallGuard a2 = storectx::install_async(s.shared.write());
  co_await storectx::carry(ctx, asio::post(ex, asio::use_awaitable));
  CHECK(storectx::is_active(s.locked.id));
  if (me >= 0) throw std::out_of_range("escapes");
}

}  // namespace

int main() {
  std::vector<std::unique_ptr<Slot>> slots;
  for (int i = 0; i < kCoroutines; ++i) slots.push_back(std::make_unique<Slot>());
  {
    asio::thread_pool pool(4);
    for (int i = 0; i < kCoroutines; ++i) {
      asio::co_spawn(pool, worker(*slots[i], i), [](std::exception_ptr e) {
        try {
          if (e) std::rethrow_exception(e);
        } catch (const std::out_of_range &) {
          escaped.fetch_add(1);
        }
        CHECK(storectx_is_empty());
      });
    }
    pool.join();
  }
  CHECK(caught.load() == 4 * kCoroutines);
  CHECK(escaped.load() == kCoroutines);
  std::thread([&] {
    for (auto &s : slots) CHECK(s->shared.try_write().has_value());
  }).join();
  std::printf("%d coroutines: exceptions across carried co_awaits found their entries; "
              "locks free\n",
              kCoroutines);
  return 0;
}
