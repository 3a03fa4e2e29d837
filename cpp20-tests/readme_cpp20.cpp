/* readme_cpp20.cpp: the README's "C++20 coroutines" example, run as a test:
 * an asio::awaitable on a thread pool holds an async store's lock and a
 * nested sync store across carried co_awaits that change thread, and a
 * host function deep in the call finds its store by id wherever it runs. */
#include <asio.hpp>

#include "storectx_coro.hpp"

#include <chrono>
#include <cstdio>

// README C++20 snippet begins
struct Instance { storectx::StoreId id = storectx::new_store_id(); int calls = 0; };

void host_import(storectx::StoreId id) {             // deep in guest code
  storectx::Borrow cur = storectx::get_current(id);  // throws storectx::Error if not on top
  cur.as<Instance>()->calls += 1;
}

asio::awaitable<void> serve(storectx::AsyncStore shared, Instance &mine) {
  storectx::TaskContext ctx;                         // first local: the task's base
  storectx::InstallGuard a = storectx::install_async(shared.write());  // lock held
  storectx::InstallGuard b = storectx::install(mine.id, &mine);        // nested call
  auto ex = co_await asio::this_coro::executor;
  for (int i = 0; i < 3; ++i) {
    asio::steady_timer t(ex, std::chrono::milliseconds(1));
    co_await storectx::carry(ctx, t.async_wait(asio::use_awaitable));  // any thread now
    host_import(mine.id);                            // a and b came along
  }
}  // b, then a uninstalled (lock released) on the thread it ended on

int main() {
  Instance outer, inner;
  storectx::AsyncStore shared(outer.id, &outer);
  asio::thread_pool pool(4);
  asio::co_spawn(pool, serve(shared, inner), asio::detached);
  pool.join();
  std::printf("%d calls\n", inner.calls);            // 3 calls
  return inner.calls == 3 ? 0 : 1;
}
// README C++20 snippet ends
