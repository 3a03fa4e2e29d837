/* cpp20_hop.cpp: what storectx::carry() (include/storectx_coro.hpp) adds to
 * one coroutine hop, as a ratio to the same hop with a bare co_await.
 *
 *   benches/cpp20_hop.sh            # builds the library (release) and this
 *   benches/cpp20_hop.sh --quick    # fewer iterations
 *
 * Cases, each timed as the best of several rounds, in ns per hop:
 *   loop    a hand-written single-thread run queue: the awaiter queues the
 *           handle, the loop resumes it (a real suspend + resume, no
 *           executor cost): bare / carry with 0 entries / carry with 2
 *           entries (an async store's lock + a nested sync store);
 *   asio    asio::io_context on one thread, co_await asio::post(ex,
 *           use_awaitable): bare / carry with 2 entries (carry() is an
 *           asio::awaitable there: one more frame per hop).
 * Cross-thread hops are not timed here: they cost what the executor's
 * hand-off costs (microseconds on a shared machine), and the segment's own
 * cross-thread cost is in bench.c (suspend+resume across threads). */
#include <asio.hpp>

#include "storectx_coro.hpp"

#include <algorithm>
#include <chrono>
#include <coroutine>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>

namespace {

using Clock = std::chrono::steady_clock;

/* ---- loop: a minimal single-thread scheduler ---------------------------- */

std::deque<std::coroutine_handle<>> run_queue;

struct Yield {
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) { run_queue.push_back(h); }
  void await_resume() const noexcept {}
};

struct Fire {
  struct promise_type {
    Fire get_return_object() noexcept { return {}; }
    std::suspend_never initial_suspend() noexcept { return {}; }
    std::suspend_never final_suspend() noexcept { return {}; }
    void return_void() noexcept {}
    void unhandled_exception() noexcept { std::abort(); }
  };
};

void drain() {
  while (!run_queue.empty()) {
    std::coroutine_handle<> h = run_queue.front();
    run_queue.pop_front();
    h.resume();
  }
}

struct Engine {
  storectx::StoreId id = storectx::new_store_id();
};
Engine outer, inner;

enum class Kind { bare, carry0, carry2 };

Fire loop_task(Kind kind, long hops) {
  storectx::TaskContext ctx;
  storectx::AsyncStore shared(outer.id, &outer);
  storectx::InstallGuard a, b;
  if (kind == Kind::carry2) {
    a = storectx::install_async(shared.write());
    b = storectx::install(inner.id, &inner);
  }
  for (long i = 0; i < hops; ++i) {
    if (kind == Kind::bare) {
      co_await Yield{};
    } else {
      co_await storectx::carry(ctx, Yield{});
    }
  }
}

double time_loop(Kind kind, long hops) {
  const auto t0 = Clock::now();
  loop_task(kind, hops);
  drain();
  const auto t1 = Clock::now();
  return std::chrono::duration<double, std::nano>(t1 - t0).count() / hops;
}

/* ---- asio: post on a one-thread io_context ------------------------------ */

asio::awaitable<void> asio_task(bool carried, long hops) {
  storectx::TaskContext ctx;
  storectx::AsyncStore shared(outer.id, &outer);
  storectx::InstallGuard a, b;
  if (carried) {
    a = storectx::install_async(shared.write());
    b = storectx::install(inner.id, &inner);
  }
  auto ex = co_await asio::this_coro::executor;
  for (long i = 0; i < hops; ++i) {
    if (carried) {
      co_await storectx::carry(ctx, asio::post(ex, asio::use_awaitable));
    } else {
      co_await asio::post(ex, asio::use_awaitable);
    }
  }
}

double time_asio(bool carried, long hops) {
  asio::io_context io(1);
  asio::co_spawn(io, asio_task(carried, hops), asio::detached);
  const auto t0 = Clock::now();
  io.run();
  const auto t1 = Clock::now();
  return std::chrono::duration<double, std::nano>(t1 - t0).count() / hops;
}

template <class F>
double best_of(int rounds, F f) {
  double best = 1e300;
  for (int r = 0; r < rounds; ++r) best = std::min(best, f());
  return best;
}

}  // namespace

int main(int argc, char **argv) {
  const bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
  const long loop_hops = quick ? 200000 : 2000000;
  const long asio_hops = quick ? 50000 : 500000;
  const int rounds = quick ? 3 : 7;

  const double bare = best_of(rounds, [&] { return time_loop(Kind::bare, loop_hops); });
  const double c0 = best_of(rounds, [&] { return time_loop(Kind::carry0, loop_hops); });
  const double c2 = best_of(rounds, [&] { return time_loop(Kind::carry2, loop_hops); });
  const double abare = best_of(rounds, [&] { return time_asio(false, asio_hops); });
  const double ac2 = best_of(rounds, [&] { return time_asio(true, asio_hops); });

  std::printf("C++20 adapter, ns per hop (best of %d rounds)\n", rounds);
  std::printf("%-44s %8s %8s\n", "case", "ns/hop", "ratio");
  std::printf("%-44s %8.1f %8s\n", "loop: bare co_await", bare, "1.00x");
  std::printf("%-44s %8.1f %7.2fx\n", "loop: carry(), 0 entries", c0, c0 / bare);
  std::printf("%-44s %8.1f %7.2fx\n", "loop: carry(), 2 entries (async + sync)", c2, c2 / bare);
  std::printf("%-44s %8.1f %8s\n", "asio post: bare co_await", abare, "1.00x");
  std::printf("%-44s %8.1f %7.2fx\n", "asio post: carry(), 2 entries", ac2, ac2 / abare);
  std::printf("adapter cost per hop: loop %.1f ns (2 entries), asio %.1f ns (2 entries)\n",
              c2 - bare, ac2 - abare);
  return 0;
}
