/* promise_mixin_task.cpp: a minimal hand-written lazy task type whose
 * promise derives from storectx::CarryingPromise carries every co_await
 * without carry() at the call sites: the base is recorded when the body
 * starts (on the thread that starts it, not where the task was created),
 * the entries follow each hop to a new thread, a child task awaited by the
 * parent runs without the parent's entries and with its own, the parent's
 * are back after it, and destroying a suspended task releases its lock. */
#include "coro_support.hpp"

namespace {

/* A lazy task: starts when awaited or start()ed; owns its frame. */
template <class T>
class Task {
 public:
  struct promise_type : storectx::CarryingPromise<std::suspend_always> {
    T value{};
    std::coroutine_handle<> continuation;
    Task get_return_object() {
      return Task(std::coroutine_handle<promise_type>::from_promise(*this));
    }
    auto final_suspend() noexcept {
      struct ToContinuation {
        bool await_ready() noexcept { return false; }
        std::coroutine_handle<> await_suspend(std::coroutine_handle<promise_type> h) noexcept {
          std::coroutine_handle<> next = h.promise().continuation;
          return next ? next : std::noop_coroutine();
        }
        void await_resume() noexcept {}
      };
      return ToContinuation{};
    }
    void return_value(T v) { value = std::move(v); }
    void unhandled_exception() { std::terminate(); }
  };

  explicit Task(std::coroutine_handle<promise_type> h) : h_(h) {}
  Task(Task &&o) noexcept : h_(std::exchange(o.h_, nullptr)) {}
  Task(const Task &) = delete;
  ~Task() {
    if (h_) h_.destroy();
  }

  /* Awaiting a task starts it and resumes the awaiter when it is done. */
  bool await_ready() const noexcept { return false; }
  std::coroutine_handle<> await_suspend(std::coroutine_handle<> awaiter) noexcept {
    h_.promise().continuation = awaiter;
    return h_;
  }
  T await_resume() { return std::move(h_.promise().value); }

  void start() { h_.resume(); }
  bool done() const { return h_.done(); }
  T result() const { return h_.promise().value; }

 private:
  std::coroutine_handle<promise_type> h_;
};

struct Engine {
  storectx::StoreId id = storectx::new_store_id();
  int hops = 0;
};

Engine parent_async, parent_sync, child_sync, outsider;
storectx::AsyncStore parent_shared(parent_async.id, &parent_async);

Task<int> child() {
  /* The parent's entries are away while the child runs. */
  CHECK(storectx::is_empty());
  storectx::InstallGuard g = storectx::install(child_sync.id, &child_sync);
  for (int i = 0; i < 3; ++i) {
    co_await support::NewThread{};  // carried by the promise
    CHECK(storectx::depth() == 1);
    CHECK(storectx::get_current_transient<Engine>(child_sync.id) == &child_sync);
  }
  co_return 5;
}

Task<int> parent() {
  storectx::InstallGuard a = storectx::install_async(parent_shared.write());
  storectx::InstallGuard b = storectx::install(parent_sync.id, &parent_sync);
  std::thread::id before = support::thread_id();
  int moved = 0;
  for (int i = 0; i < 10; ++i) {
    co_await support::NewThread{};  // no carry() here: await_transform does it
    moved += support::thread_id() != before;
    before = support::thread_id();
    CHECK(storectx::depth() == 2);
    storectx::Borrow cur = storectx::get_current(parent_sync.id);
    cur.as<Engine>()->hops += 1;
    CHECK(storectx::is_paused(parent_async.id));
  }
  CHECK(moved == 10);
  int five = co_await child();
  CHECK(five == 5);
  CHECK(storectx::depth() == 2 && storectx::is_active(parent_sync.id));
  b.uninstall();
  a.uninstall();
  co_return parent_sync.hops;
}

std::atomic<void *> parked{nullptr};

Task<int> sleeper() {
  storectx::InstallGuard a = storectx::install_async(parent_shared.write());
  co_await support::NewThread{};
  co_await support::Park{&parked};
  co_return 0;
}

}  // namespace

int main() {
  support::count_release_failures();
  /* Created here, where a store of ours is installed (depth 1); started on
   * a fresh thread (depth 0): the base is taken where the body starts. */
  storectx::InstallGuard mine = storectx::install(outsider.id, &outsider);
  Task<int> t = parent();
  std::thread([&t] { t.start(); }).join();
  support::threads().join_all();
  CHECK(t.done() && t.result() == 10);
  CHECK(storectx::depth() == 1 && storectx::is_active(outsider.id));

  /* A suspended task destroyed on this thread: its lock is released and its
   * guard unwinds cleanly on top of our entry. */
  {
    Task<int> s = sleeper();
    s.start();
    support::wait_parked(parked);
    CHECK(!parent_shared.try_write().has_value());
  }  // ~Task destroys the suspended frame here
  support::threads().join_all();
  CHECK(storectx::depth() == 1 && storectx::is_active(outsider.id));
  CHECK(parent_shared.try_write().has_value());
  CHECK(support::release_failures.load() == 0);
  mine.uninstall();
  std::printf("CarryingPromise task: 10 hops + child task carried, base taken at start, "
              "destroyed task released its lock\n");
  return 0;
}
