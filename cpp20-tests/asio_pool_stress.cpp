/* asio_pool_stress.cpp: on a real executor (asio::thread_pool, 4 threads),
 * 1,000 asio::awaitable coroutines each hold a shared async store (write lock
 * via storectx_async_store_write + install_async) and a private sync store
 * (storectx_install), nested, across 12+ carried co_awaits (post, timers,
 * dispatch, and child awaitables that push a third store and hop themselves)
 * that move them between pool threads. After every resumption each checks
 * that get_current answers its own stores at the right depths, that it is
 * still the one holder of its async store (a per-store atomic), and at the
 * end that no update to the shared counters was lost, that some hops did
 * change thread, that every lock is free and no thread kept an entry.
 * STRESS_SCALE=N (e.g. 10 under valgrind) runs N times fewer coroutines. */
#include <asio.hpp>

#include "coro_support.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <thread>
#include <vector>

namespace {

constexpr int kThreads = 4;
constexpr int kSharedStores = 50;
constexpr int kAsyncTopHops = 4;   // hops with the async store on top
constexpr int kNestedHops = 8;     // hops with the sync store on top of it

struct SharedStore {
  storectx::StoreId id = storectx::new_store_id();
  long counter = 0;                 // guarded by the store's write lock only
  std::atomic<int> holder{-1};      // which coroutine holds the lock
  storectx::AsyncStore handle{id, this};
};

struct PrivateStore {
  storectx::StoreId id = storectx::new_store_id();
  long counter = 0;
};

std::atomic<long> hops_total{0};
std::atomic<long> hops_moved{0};
std::atomic<long> busy_retries{0};
std::atomic<int> finished{0};

/* get_current(id) must answer `want`, through a borrow that is given back. */
void expect_current(storectx::StoreId id, void *want) {
  void *store = nullptr;
  storectx_borrow b;
  CHECK_OK(storectx_get_current(id, &store, &b));
  CHECK(store == want);
  CHECK_OK(storectx_borrow_release(b));
}

void expect_paused(storectx::StoreId id) {
  void *store = nullptr;
  CHECK_STATUS(storectx_get_current_transient(id, &store), STORECTX_ERR_PAUSED);
}

/* One carried hop; which kind depends on `k`. Counts thread changes. */
asio::awaitable<void> hop(storectx::TaskContext &ctx, int k) {
  auto ex = co_await asio::this_coro::executor;
  const auto before = support::thread_id();
  switch (k % 3) {
    case 0:
      co_await storectx::carry(ctx, asio::post(ex, asio::use_awaitable));
      break;
    case 1: {
      asio::steady_timer t(ex, std::chrono::microseconds(k % 50));
      co_await storectx::carry(ctx, t.async_wait(asio::use_awaitable));
      break;
    }
    default:
      co_await storectx::carry(ctx, asio::dispatch(ex, asio::use_awaitable));
      break;
  }
  hops_total.fetch_add(1, std::memory_order_relaxed);
  if (support::thread_id() != before) {
    hops_moved.fetch_add(1, std::memory_order_relaxed);
  }
}

/* A child awaitable of the same task (same context, not carried itself): it
 * pushes a third store, hops, and sees all three at the right depths. */
asio::awaitable<int> child(storectx::TaskContext &ctx, int me, SharedStore &shared,
                           PrivateStore &mine, int k) {
  PrivateStore inner;
  storectx::InstallGuard g = storectx::install(inner.id, &inner);
  co_await hop(ctx, k);
  CHECK(storectx::depth() == ctx.base() + 3);
  expect_current(inner.id, &inner);
  expect_paused(mine.id);
  expect_paused(shared.id);
  CHECK(shared.holder.load() == me);
  co_return 1;
}

asio::awaitable<void> worker(int me, SharedStore &shared, PrivateStore &mine) {
  storectx::TaskContext ctx;  // first local: the task's base on this thread
  CHECK(ctx.base() == storectx::depth());
  auto ex = co_await asio::this_coro::executor;

  /* Take the shared store's lock without blocking a pool thread: try once
   * (timeout 0), else wait a little (carried, nothing to carry yet). */
  storectx_write_guard *w = nullptr;
  for (int attempt = 0;; ++attempt) {
    storectx_status st = storectx_async_store_write(shared.handle.raw(), 0, &w);
    if (st == STORECTX_OK) break;
    CHECK_STATUS(st, STORECTX_ERR_TIMED_OUT);
    busy_retries.fetch_add(1, std::memory_order_relaxed);
    asio::steady_timer t(ex, std::chrono::microseconds(50 + (me * 7 + attempt * 13) % 400));
    co_await storectx::carry(ctx, t.async_wait(asio::use_awaitable));
  }
  storectx_install_guard raw{};
  CHECK_OK(storectx_install_async(w, &raw));
  storectx::InstallGuard async_entry = storectx::InstallGuard::adopt(raw, false);
  CHECK(shared.holder.exchange(me) == -1);  // never two holders

  for (int k = 0; k < kAsyncTopHops; ++k) {
    const long v = storectx::get_current_transient<SharedStore>(shared.id)->counter;
    co_await hop(ctx, me + k);
    CHECK(storectx::depth() == ctx.base() + 1);
    expect_current(shared.id, &shared);
    CHECK(shared.holder.load() == me);
    storectx::get_current_transient<SharedStore>(shared.id)->counter = v + 1;
  }

  {
    storectx::InstallGuard sync_entry = storectx::install(mine.id, &mine);
    for (int k = 0; k < kNestedHops; ++k) {
      const long v = shared.counter;
      if (k % 2 == 1) {
        CHECK(co_await child(ctx, me, shared, mine, me + k) == 1);
      } else {
        co_await hop(ctx, me + k);
      }
      CHECK(storectx::depth() == ctx.base() + 2);
      expect_current(mine.id, &mine);
      expect_paused(shared.id);
      CHECK(shared.holder.load() == me);
      shared.counter = v + 1;
      storectx::get_current_transient<PrivateStore>(mine.id)->counter += 1;
    }
  }  // sync entry uninstalled, on whatever thread we are on now

  expect_current(shared.id, &shared);
  CHECK(shared.holder.exchange(-1) == me);
  async_entry.uninstall();  // unlocks
  CHECK(storectx::depth() == ctx.base());
  finished.fetch_add(1);
}

double shrink_from_env() {
  const char *e = std::getenv("STRESS_SCALE");
  if (e == nullptr || *e == '\0') return 1.0;
  double v = std::strtod(e, nullptr);
  if (!(v > 0.0)) return 1.0;
  return v < 1.0 ? 1.0 / v : v;
}

}  // namespace

int main() {
  const int coroutines = static_cast<int>(1000 / shrink_from_env()) < 50
                             ? 50
                             : static_cast<int>(1000 / shrink_from_env());
  std::vector<std::unique_ptr<SharedStore>> shared;
  for (int i = 0; i < kSharedStores; ++i) shared.push_back(std::make_unique<SharedStore>());
  std::vector<std::unique_ptr<PrivateStore>> mine;
  for (int i = 0; i < coroutines; ++i) mine.push_back(std::make_unique<PrivateStore>());

  std::atomic<int> failed{0};
  {
    asio::thread_pool pool(kThreads);
    for (int i = 0; i < coroutines; ++i) {
      asio::co_spawn(pool, worker(i, *shared[i % kSharedStores], *mine[i]),
                     [&failed](std::exception_ptr e) {
                       if (e) {
                         try {
                           std::rethrow_exception(e);
                         } catch (const std::exception &x) {
                           std::fprintf(stderr, "coroutine failed: %s\n", x.what());
                         }
                         failed.fetch_add(1);
                       }
                       /* Between tasks a pool thread holds nothing. */
                       CHECK(storectx_is_empty());
                     });
    }
    pool.join();
  }

  CHECK(failed.load() == 0);
  CHECK(finished.load() == coroutines);
  long total = 0;
  for (auto &s : shared) {
    total += s->counter;
    CHECK(s->holder.load() == -1);
    storectx::WriteGuard free_now = *s->handle.try_write();  // lock is free
    CHECK(free_now);
  }
  CHECK(total == static_cast<long>(coroutines) * (kAsyncTopHops + kNestedHops));
  for (auto &m : mine) CHECK(m->counter == kNestedHops);
  const long expected_hops = static_cast<long>(coroutines) * (kAsyncTopHops + kNestedHops);
  CHECK(hops_total.load() == expected_hops);
  CHECK(hops_moved.load() > 0);
  CHECK(storectx_is_empty());
  std::printf("%d coroutines on %d threads: %ld carried hops, %ld changed thread, "
              "%ld busy retries; counters exact\n",
              coroutines, kThreads, hops_total.load(), hops_moved.load(),
              busy_retries.load());
  return 0;
}
