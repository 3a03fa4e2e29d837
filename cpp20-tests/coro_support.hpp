/* coro_support.hpp: small hand-written coroutine pieces the non-asio C++20
 * tests share: a fire-and-forget coroutine type with no await_transform
 * (so any awaiter can be co_awaited), an awaiter that resumes the coroutine
 * on a brand-new std::thread, a "park" awaiter that hands the handle to the
 * test, a counting release-failure handler, and a thread id that clang
 * cannot cache across a co_await. */
#ifndef STORECTX_CORO_SUPPORT_HPP
#define STORECTX_CORO_SUPPORT_HPP

#include "storectx_coro.hpp"

#include "check.h"

#include <atomic>
#include <coroutine>
#include <cstdio>
#include <exception>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

namespace support {

/* The calling thread's id, asked afresh on every call. Clang may keep
 * std::this_thread::get_id() (pthread_self, declared const) or a
 * thread_local's address from before a co_await and reuse it after the
 * coroutine resumed on another thread; the empty asm stops that here. */
[[gnu::noinline]] inline std::thread::id thread_id() {
  asm volatile("" ::: "memory");
  return std::this_thread::get_id();
}

/* Eager, fire-and-forget; its frame frees itself at the end. An exception
 * escaping the coroutine fails the test. */
struct Fire {
  struct promise_type {
    Fire get_return_object() noexcept { return {}; }
    std::suspend_never initial_suspend() noexcept { return {}; }
    std::suspend_never final_suspend() noexcept { return {}; }
    void return_void() noexcept {}
    void unhandled_exception() noexcept {
      try {
        throw;
      } catch (const std::exception &e) {
        std::fprintf(stderr, "exception escaped a coroutine: %s\n", e.what());
      } catch (...) {
        std::fprintf(stderr, "exception escaped a coroutine\n");
      }
      std::exit(1);
    }
  };
};

/* Every thread started by NewThread, joined by join_all(). */
class Threads {
 public:
  template <class F>
  void spawn(F &&f) {
    std::lock_guard<std::mutex> lock(mutex_);
    threads_.emplace_back(std::forward<F>(f));
  }
  void join_all() {
    for (;;) {
      std::vector<std::thread> batch;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        batch.swap(threads_);
      }
      if (batch.empty()) return;
      for (auto &t : batch) t.join();
    }
  }

 private:
  std::mutex mutex_;
  std::vector<std::thread> threads_;
};

inline Threads &threads() {
  static Threads all;
  return all;
}

/* Resumes the coroutine on a new thread (one the library has never seen);
 * answers the id of the thread it resumed on. */
struct NewThread {
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) {
    threads().spawn([h] { h.resume(); });
  }
  std::thread::id await_resume() const noexcept { return thread_id(); }
};

/* Suspends and stores the handle in *slot; the test resumes or destroys it. */
struct Park {
  std::atomic<void *> *slot;
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) noexcept { slot->store(h.address()); }
  void await_resume() const noexcept {}
};

inline std::coroutine_handle<> wait_parked(std::atomic<void *> &slot) {
  void *p;
  while ((p = slot.exchange(nullptr)) == nullptr) std::this_thread::yield();
  return std::coroutine_handle<>::from_address(p);
}

inline std::atomic<int> release_failures{0};

/* Counts release failures of destructors instead of printing them. */
inline void count_release_failures() {
  storectx::set_release_failure_handler([](storectx_status, const char *, const char *) {
    release_failures.fetch_add(1);
  });
}

}  // namespace support

#endif
