/* carry_any_awaiter.cpp: storectx::carry(ctx, a) works with any awaiter, in
 * a coroutine type that has no await_transform: await_suspend returning
 * void, bool (true and false) or a handle; await_ready true (nothing is
 * suspended); member and free operator co_await; lvalue awaitables;
 * move-only results. Each time the coroutine's async + sync entries are on
 * the thread it continues on (which changes: new std::threads), and
 * exceptions thrown by await_suspend or await_resume reach the coroutine
 * with its entries already back. */
#include "coro_support.hpp"

#include <memory>
#include <stdexcept>

namespace {

using support::Fire;
using support::NewThread;

struct Engine {
  storectx::StoreId id = storectx::new_store_id();
  int value = 0;
};

Engine async_engine, sync_engine;
storectx::AsyncStore shared(async_engine.id, &async_engine);

/* The two entries of the task are on this thread, sync on top. */
void expect_entries(const storectx::TaskContext &ctx) {
  CHECK(!ctx.suspended());
  CHECK(storectx::depth() == ctx.base() + 2);
  storectx::Borrow top = storectx::get_current(sync_engine.id);
  CHECK(top.as<Engine>() == &sync_engine);
  CHECK(storectx::is_paused(async_engine.id));
}

struct BoolAwaiter {  // await_suspend -> bool
  bool suspend;
  bool await_ready() const noexcept { return false; }
  bool await_suspend(std::coroutine_handle<> h) {
    if (suspend) support::threads().spawn([h] { h.resume(); });
    return suspend;
  }
  int await_resume() const noexcept { return suspend ? 1 : 0; }
};

struct SelfTransfer {  // await_suspend -> handle (itself: resumes at once)
  bool await_ready() const noexcept { return false; }
  std::coroutine_handle<> await_suspend(std::coroutine_handle<> h) noexcept { return h; }
  void await_resume() const noexcept {}
};

struct Ready {  // never suspends
  int value;
  bool await_ready() const noexcept { return true; }
  void await_suspend(std::coroutine_handle<>) { CHECK(!"await_suspend of a ready awaiter"); }
  int await_resume() const noexcept { return value; }
};

struct MemberCoAwait {  // operator co_await as a member
  NewThread operator co_await() const noexcept { return {}; }
};
struct FreeCoAwait {};  // operator co_await as a free function
NewThread operator co_await(FreeCoAwait) noexcept { return {}; }

struct MoveOnlyResult {  // hops, answers a move-only value
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) {
    support::threads().spawn([h] { h.resume(); });
  }
  std::unique_ptr<int> await_resume() const { return std::make_unique<int>(7); }
};

struct ThrowsInSuspend {
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<>) {
    /* The entries are away while the awaiter runs. */
    CHECK(storectx::is_empty());
    throw std::runtime_error("refused to suspend");
  }
  void await_resume() const noexcept {}
};

struct ThrowsInResume {
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) {
    support::threads().spawn([h] { h.resume(); });
  }
  void await_resume() const { throw std::runtime_error("operation failed"); }
};

std::atomic<int> finished{0};

Fire task() {
  storectx::TaskContext ctx;
  CHECK(ctx.base() == 0);
  storectx::InstallGuard a = storectx::install_async(shared.write());
  storectx::InstallGuard b = storectx::install(sync_engine.id, &sync_engine);

  /* void await_suspend, on new threads each time: the thread changes. */
  std::thread::id before = support::thread_id();
  for (int i = 0; i < 5; ++i) {
    std::thread::id now = co_await storectx::carry(ctx, NewThread{});
    CHECK(now == support::thread_id());
    CHECK(now != before);
    before = now;
    expect_entries(ctx);
  }

  /* bool await_suspend: false resumes at once on this thread, true hops. */
  CHECK(co_await storectx::carry(ctx, BoolAwaiter{false}) == 0);
  expect_entries(ctx);
  CHECK(co_await storectx::carry(ctx, BoolAwaiter{true}) == 1);
  expect_entries(ctx);

  /* handle-returning await_suspend (symmetric transfer to itself). */
  co_await storectx::carry(ctx, SelfTransfer{});
  expect_entries(ctx);

  /* await_ready: nothing is suspended, the result comes through. */
  CHECK(co_await storectx::carry(ctx, Ready{42}) == 42);
  expect_entries(ctx);

  /* operator co_await, member and free; lvalue awaitables. */
  co_await storectx::carry(ctx, MemberCoAwait{});
  expect_entries(ctx);
  co_await storectx::carry(ctx, FreeCoAwait{});
  expect_entries(ctx);
  NewThread lvalue;
  co_await storectx::carry(ctx, lvalue);
  expect_entries(ctx);
  MemberCoAwait lvalue_member;
  co_await storectx::carry(ctx, lvalue_member);
  expect_entries(ctx);

  /* A move-only result. */
  std::unique_ptr<int> seven = co_await storectx::carry(ctx, MoveOnlyResult{});
  CHECK(seven && *seven == 7);
  expect_entries(ctx);

  /* await_suspend throws: the coroutine did not suspend; entries back. */
  bool caught = false;
  try {
    co_await storectx::carry(ctx, ThrowsInSuspend{});
  } catch (const std::runtime_error &) {
    caught = true;
    expect_entries(ctx);
  }
  CHECK(caught);

  /* await_resume throws on the new thread: entries back there first. */
  caught = false;
  before = support::thread_id();
  try {
    co_await storectx::carry(ctx, ThrowsInResume{});
  } catch (const std::runtime_error &) {
    caught = true;
    CHECK(support::thread_id() != before);
    expect_entries(ctx);
  }
  CHECK(caught);

  /* The entries did the work: the store behind the lock is ours. */
  storectx::get_current_transient<Engine>(sync_engine.id)->value += 1;
  b.uninstall();
  storectx::get_current_transient<Engine>(async_engine.id)->value += 1;
  a.uninstall();
  CHECK(storectx::depth() == ctx.base());
  finished.fetch_add(1);
}

/* A task that ran nothing above its base carries nothing (no segment). */
Fire empty_task() {
  storectx::TaskContext ctx;
  for (int i = 0; i < 3; ++i) {
    co_await storectx::carry(ctx, NewThread{});
    CHECK(storectx::is_empty());
    CHECK(ctx.base() == 0 && ctx.carried() == 0);
  }
  finished.fetch_add(1);
}

}  // namespace

int main() {
  task();
  support::threads().join_all();
  empty_task();
  support::threads().join_all();
  CHECK(finished.load() == 2);
  CHECK(async_engine.value == 1 && sync_engine.value == 1);
  CHECK(shared.try_write().has_value());  // unlocked
  CHECK(storectx::is_empty());
  std::printf("carry() with void/bool/handle/ready awaiters, operator co_await, lvalues, "
              "move-only results, exceptions: entries followed\n");
  return 0;
}
