/* carry_every_shape.cpp: the promise of storectx_coro.hpp, kept for every
 * awaiter shape -- await_ready() true; await_suspend returning void, bool
 * true, bool false, the coroutine's own handle, another handle
 * (noop_coroutine, the coroutine resumed on a new thread):
 *   1. the task's entries (one async, one sync) are on the thread the task
 *      continues on, and the awaited result comes through;
 *   2. an exception from await_resume, or from await_suspend, reaches the
 *      task with its entries already back;
 *   3. a carry of a TaskContext that an enclosing carry already suspended
 *      (a carried child coroutine carrying its parent's context) is refused
 *      with storectx::Error(INVALID_ARGUMENT): the inner awaiter is neither
 *      suspended on nor resumed, and the parent's entries stay parked (they
 *      are not resumed inside the child); the parent gets them back when the
 *      child returns. Before the fix a ready awaiter was not refused: its
 *      await_resume resumed the parent's segment inside the child. */
#include "coro_support.hpp"

#include <stdexcept>
#include <string>

namespace {

struct Engine {
  storectx::StoreId id = storectx::new_store_id();
};

Engine async_engine, sync_engine;
storectx::AsyncStore shared(async_engine.id, &async_engine);

enum class Shape { Ready, Void, BoolTrue, BoolFalse, HandleSelf, HandleOther };
enum class Fail { None, InSuspend, InResume };

struct Calls {
  int suspend = 0;
  int resume = 0;
};

/* One awaiter per shape; answers 7, or throws where `fail` says. */
template <Shape S>
struct Awaiter {
  Calls *calls;
  Fail fail = Fail::None;

  bool await_ready() const noexcept { return S == Shape::Ready; }

  auto await_suspend(std::coroutine_handle<> h) {
    ++calls->suspend;
    /* The entries are away while the awaiter runs. */
    CHECK(storectx::is_empty());
    if (fail == Fail::InSuspend) throw std::runtime_error("await_suspend failed");
    if constexpr (S == Shape::Ready) {
      CHECK(!"await_suspend of a ready awaiter");
    } else if constexpr (S == Shape::Void) {
      support::threads().spawn([h] { h.resume(); });
    } else if constexpr (S == Shape::BoolTrue) {
      support::threads().spawn([h] { h.resume(); });
      return true;
    } else if constexpr (S == Shape::BoolFalse) {
      return false;
    } else if constexpr (S == Shape::HandleSelf) {
      return h;
    } else {
      support::threads().spawn([h] { h.resume(); });
      return std::coroutine_handle<>(std::noop_coroutine());
    }
  }

  int await_resume() const {
    ++calls->resume;
    if (fail == Fail::InResume) throw std::runtime_error("await_resume failed");
    return 7;
  }
};

/* A lazy child coroutine, started by co_await (symmetric transfer), which
 * continues its awaiter when done, on the thread it ends on. */
struct Child {
  struct promise_type {
    std::coroutine_handle<> continuation;
    Child get_return_object() {
      return Child(std::coroutine_handle<promise_type>::from_promise(*this));
    }
    std::suspend_always initial_suspend() noexcept { return {}; }
    auto final_suspend() noexcept {
      struct ToContinuation {
        bool await_ready() noexcept { return false; }
        std::coroutine_handle<> await_suspend(std::coroutine_handle<promise_type> h) noexcept {
          return h.promise().continuation;
        }
        void await_resume() noexcept {}
      };
      return ToContinuation{};
    }
    void return_void() noexcept {}
    void unhandled_exception() noexcept {
      std::fprintf(stderr, "exception escaped a child coroutine\n");
      std::exit(1);
    }
  };

  explicit Child(std::coroutine_handle<promise_type> h) : h_(h) {}
  Child(Child &&o) noexcept : h_(std::exchange(o.h_, nullptr)) {}
  Child(const Child &) = delete;
  ~Child() {
    if (h_) h_.destroy();
  }
  bool await_ready() const noexcept { return false; }
  std::coroutine_handle<> await_suspend(std::coroutine_handle<> awaiter) noexcept {
    h_.promise().continuation = awaiter;
    return h_;
  }
  void await_resume() const noexcept {}

 private:
  std::coroutine_handle<promise_type> h_;
};

/* The two entries of the task are on this thread, sync on top. */
void expect_entries(const storectx::TaskContext &ctx) {
  CHECK(!ctx.suspended());
  CHECK(ctx.carried() == 0);
  CHECK(storectx::depth() == ctx.base() + 2);
  CHECK(storectx::get_current_transient<Engine>(sync_engine.id) == &sync_engine);
  CHECK(storectx::is_paused(async_engine.id));
}

std::atomic<int> refused{0};

/* Carried by its parent with the parent's own context: must refuse to
 * carry that context again, whatever the awaiter's shape. */
template <Shape S>
Child nested(storectx::TaskContext &ctx) {
  CHECK(ctx.suspended() && ctx.carried() == 2);
  CHECK(storectx::is_empty());  // the parent's entries are parked
  Calls calls;
  bool was_refused = false;
  try {
    (void)co_await storectx::carry(ctx, Awaiter<S>{&calls});
  } catch (const storectx::Error &e) {
    CHECK(e.status() == STORECTX_ERR_INVALID_ARGUMENT);
    CHECK(e.message().find("already suspended") != std::string::npos);
    was_refused = true;
  }
  CHECK(was_refused);
  CHECK(calls.suspend == 0 && calls.resume == 0);  // not started
  /* Nothing changed: the parent's entries are still parked, not here. */
  CHECK(ctx.suspended() && ctx.carried() == 2);
  CHECK(storectx::is_empty());
  refused.fetch_add(1);
}

template <Shape S>
Child every_promise(storectx::TaskContext &ctx) {
  constexpr bool suspends = S != Shape::Ready;

  /* 1. The entries follow; the result comes through. */
  Calls calls;
  for (int i = 0; i < 3; ++i) {
    CHECK(co_await storectx::carry(ctx, Awaiter<S>{&calls}) == 7);
    expect_entries(ctx);
  }
  CHECK(calls.suspend == (suspends ? 3 : 0) && calls.resume == 3);

  /* 2a. await_resume throws: the entries are back first. */
  bool caught = false;
  try {
    (void)co_await storectx::carry(ctx, Awaiter<S>{&calls, Fail::InResume});
  } catch (const std::runtime_error &) {
    caught = true;
    expect_entries(ctx);
  }
  CHECK(caught);

  /* 2b. await_suspend throws: the task did not suspend; entries back. */
  if constexpr (suspends) {
    caught = false;
    try {
      (void)co_await storectx::carry(ctx, Awaiter<S>{&calls, Fail::InSuspend});
    } catch (const std::runtime_error &) {
      caught = true;
      expect_entries(ctx);
    }
    CHECK(caught);
  }

  /* 3. A nested carry of the same context is refused. */
  co_await storectx::carry(ctx, nested<S>(ctx));
  expect_entries(ctx);
}

std::atomic<bool> finished{false};

support::Fire task() {
  storectx::TaskContext ctx;
  storectx::InstallGuard a = storectx::install_async(shared.write());
  storectx::InstallGuard b = storectx::install(sync_engine.id, &sync_engine);
  /* Awaited inline: one task, one context, passed down. */
  co_await every_promise<Shape::Ready>(ctx);
  co_await every_promise<Shape::Void>(ctx);
  co_await every_promise<Shape::BoolTrue>(ctx);
  co_await every_promise<Shape::BoolFalse>(ctx);
  co_await every_promise<Shape::HandleSelf>(ctx);
  co_await every_promise<Shape::HandleOther>(ctx);
  b.uninstall();
  a.uninstall();
  CHECK(storectx::depth() == ctx.base());
  finished = true;
}

}  // namespace

int main() {
  task();
  support::threads().join_all();
  CHECK(finished.load());
  CHECK(refused.load() == 6);
  CHECK(shared.try_write().has_value());  // unlocked
  CHECK(storectx::is_empty());
  std::printf("every awaiter shape (ready, void, bool true/false, own/other handle): entries "
              "follow, exceptions arrive with them, nested carry refused\n");
  return 0;
}
