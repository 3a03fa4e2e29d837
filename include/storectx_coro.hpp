/* storectx_coro.hpp: C++20 coroutines carry their libstorectx entries across
 * every suspension, to whatever thread resumes them. Header-only, built on
 * storectx.hpp (C++17) and the C API; link against libstorectx as usual.
 *
 * THE RULE. A task records storectx_depth() when it starts (its base). Before
 * it suspends, the entries it pushed above its base are detached into a
 * segment it owns (storectx_suspend); when it resumes, on whatever thread,
 * they are pushed back on top of that thread's stack (storectx_resume) and
 * the new base is recorded. The task's guards, borrows, pauses and write
 * locks stay valid across the hop; no other task ever sees them.
 *
 *   asio::awaitable<void> handler(storectx::AsyncStore shared, Engine &mine) {
 *     storectx::TaskContext ctx;                         // first local: base
 *     storectx::InstallGuard a = storectx::install_async(shared.write());
 *     storectx::InstallGuard b = storectx::install(mine.id, &mine);
 *     co_await storectx::carry(ctx, timer.async_wait(asio::use_awaitable));
 *     storectx::Borrow cur = storectx::get_current(mine.id);   // any thread
 *   }
 *
 * THREE PIECES
 *   TaskContext       the task's base depth and, while it is suspended, its
 *                     segment. Not copyable, not movable.
 *   carry(ctx, a)     wraps any awaitable `a`: suspends the entries, then
 *                     awaits `a`, then resumes them, then returns a's result.
 *   CarryingPromise   a promise mixin for your own task types: its
 *                     await_transform carries every co_await of the task.
 *
 * WHY A WRAPPER, A MIXIN, AND A COROUTINE-SHAPED WRAPPER FOR ASIO.
 *   - carry() works with any awaiter (void/bool/handle await_suspend, member
 *     or free operator co_await, lvalues and rvalues) and any task type whose
 *     promise lets you co_await foreign awaiters: nothing to change in the
 *     task type, and the call site says which awaits may change thread.
 *   - The mixin is for task types you own: nobody can forget one co_await.
 *   - asio::awaitable<T> has its own promise, whose await_transform only
 *     accepts asio::awaitable (and asio's own tokens), so an awaiter object
 *     cannot be co_awaited there. For such task types carry() is itself a
 *     coroutine of the same type: carry(ctx, asio::awaitable<T>) returns an
 *     asio::awaitable<T> that suspends the entries, co_awaits the inner one,
 *     and resumes them. A task type opts in with the carry_by_coroutine
 *     trait; asio::awaitable opts in when <asio.hpp> (or
 *     <asio/awaitable.hpp>) is included before this header, with asio's
 *     coroutine support on (asio 1.22 turns it on for g++; for clang, build
 *     with -DASIO_HAS_CO_AWAIT=1). For Boost.Asio (not tested here):
 *       template <class T, class E>
 *       inline constexpr bool storectx::carry_by_coroutine<
 *           boost::asio::awaitable<T, E>> = true;
 *
 * ONE CONTEXT PER TASK. A chain of coroutines that await one another inline
 * (asio awaitables calling asio awaitables) is one task: create the
 * TaskContext in the outermost one and pass it down by reference; wrap the
 * awaits that leave the task (timers, I/O, post, another executor) in
 * carry(ctx, ...); do not wrap an await of a coroutine that carries the same
 * context itself (that is refused: INVALID_ARGUMENT, "already suspended").
 * A carried await of a child coroutine is allowed and means: the child runs
 * without the caller's entries (they are suspended while it runs).
 *
 * OWNERSHIP AND DESTRUCTION. The TaskContext owns the segment while the task
 * is suspended. When a suspended task is destroyed (pool stopped, handle
 * destroyed, awaitable abandoned), the carry() in flight puts the entries
 * back on the destroying thread so that the frame's own guards unwind them
 * in LIFO order (locks released, no release-failure reports); if that
 * thread cannot take them (one of the stores is on its stack), the segment
 * is freed instead (storectx_suspended_free: locks released; the guards then
 * report STALE_HANDLE through the release-failure handler). Whatever the
 * guards did not pop is detached and freed by ~TaskContext, so nothing stays
 * on the destroying thread. For that to be right, the TaskContext must be
 * destroyed by the same teardown as the guards it carries: make it the first
 * local of the outermost coroutine (or let the promise own it:
 * CarryingPromise). ~TaskContext also frees a segment still parked. A
 * context that outlives the teardown (one passed to a series of coroutines)
 * stops sweeping as soon as it is used again (restart() or a carry); until
 * then its destructor would sweep what the destroying thread pushed since
 * above the teardown base, so destroy or reuse it before that thread
 * installs its own entries.
 *
 * THREADS. Only the thread running the task touches its TaskContext; the
 * executor's hand-off (the one that resumes the coroutine) orders the
 * suspend on one thread before the resume on the next. A TaskContext is not
 * internally synchronized: it must not be awaited by two branches at once
 * (parallel groups, when_all): give each branch its own task and context.
 * libstorectx's per-thread state lives behind its calls, so a compiler that
 * keeps a thread-local address or pthread_self() across a co_await (clang
 * does) cannot make a resumed task read the previous thread's stack; your
 * own thread_locals, read around a carried co_await, may be so cached.
 *
 * ERRORS. Failures throw storectx::Error (status + storectx_last_error() text,
 * as in storectx.hpp) out of the co_await expression:
 *   INVALID_ARGUMENT  the task popped entries below its base (suspend), or
 *                     the context is already suspended by another carry
 *                     (refused for every awaiter shape, a ready one too:
 *                     await_ready() throws it); nothing was suspended, the
 *                     awaitable was not started and the enclosing carry's
 *                     entries stay parked.
 *   ALREADY_ON_STACK  the resuming thread already has one of the task's
 *                     stores on its stack: the task's entries are dropped
 *                     (storectx_suspended_free: locks released) before the
 *                     exception reaches it, its guards go stale, and the
 *                     awaited result is dropped. The resuming thread's own
 *                     stack is untouched.
 *   EXHAUSTED         millions of live segments.
 * An exception from the awaited operation (its await_suspend or
 * await_resume, or the inner asio::awaitable) propagates after the entries
 * are back on the current thread, so handlers and destructors see them. If
 * putting them back fails, that storectx::Error replaces the exception.
 *
 * COST. A task with nothing above its base pays two storectx_depth() calls
 * per hop; otherwise one storectx_suspend + storectx_resume (O(entries)).
 * See BENCHMARKS.md, "C++20 adapter: cost per hop".
 */
#ifndef STORECTX_CORO_HPP
#define STORECTX_CORO_HPP

#if !defined(__cpp_impl_coroutine) && !defined(_MSC_VER)
#error "storectx_coro.hpp needs C++20 coroutines (-std=c++20)"
#endif

#include "storectx.hpp"

#include <coroutine>
#include <cstddef>
#include <exception>
#include <optional>
#include <thread>
#include <type_traits>
#include <utility>

namespace storectx {

// ---------------------------------------------------------------------------
// TaskContext
// ---------------------------------------------------------------------------

/// A task's base depth and, while the task is suspended, the segment holding
/// the entries it pushed. Construct it where the task starts running (its
/// first local, or its promise: see CarryingPromise); keep it alive as long
/// as the task's guards. Neither copyable nor movable (awaiters refer to it).
///
/// The members below are what carry() calls; call them yourself only for a
/// suspension carry() cannot wrap.
class TaskContext {
 public:
  /// Records the calling thread's depth as the task's base.
  TaskContext() noexcept : base_(storectx_depth()) {}
  TaskContext(const TaskContext &) = delete;
  TaskContext &operator=(const TaskContext &) = delete;

  /// Frees a segment still parked (locks released) and, after a teardown
  /// (see abandon()), detaches and frees whatever the frame's guards left
  /// above the teardown base on this thread.
  ~TaskContext() {
    storectx_suspended_free(std::exchange(parked_, nullptr));
    if (torn_down_ && teardown_thread_ == std::this_thread::get_id() &&
        storectx_depth() > teardown_base_) {
      storectx_suspended *rest = nullptr;
      if (storectx_suspend(teardown_base_, &rest) == STORECTX_OK) {
        storectx_suspended_free(rest);
      }
    }
  }

  /// Records the calling thread's depth as the base again (a task whose
  /// context was constructed before it started running, e.g. in a lazy
  /// task's promise). Only while the task runs.
  void restart() noexcept {
    base_ = storectx_depth();
    torn_down_ = false;  // a new task: the last teardown's sweep is not for it
  }

  /// Before the task suspends: detaches every entry above the base into a
  /// segment this context owns (nothing to detach: no segment). Throws Error:
  /// INVALID_ARGUMENT if the stack is below the base, or if this context is
  /// already suspended; nothing changes then.
  void before_suspend() {
    refuse_if_suspended();
    if (storectx_depth() != base_) {
      storectx_suspended *seg = nullptr;
      detail::check(storectx_suspend(base_, &seg));
      parked_ = seg;
    }
    away_ = true;
    // Used again after a teardown (a context that outlives one task, e.g. a
    // session's, passed to each request's coroutine): that teardown is over,
    // and ~TaskContext must not sweep what the thread pushed since.
    torn_down_ = false;
  }

  /// Throws Error(INVALID_ARGUMENT) if this context is already suspended
  /// (by an enclosing carry of it); nothing changes. carry() calls it before
  /// it touches the inner awaiter, also when that one is ready at once.
  void refuse_if_suspended() const {
    if (away_) {
      throw Error(STORECTX_ERR_INVALID_ARGUMENT,
                  "carry: this TaskContext is already suspended (an await "
                  "that carries it is awaited inside another carry of it)");
    }
  }

  /// After the task resumes, on the resuming thread: pushes the segment back
  /// on top of this thread's stack and records the new base. No-op unless
  /// suspended. Throws Error (ALREADY_ON_STACK: one of the task's stores is
  /// on this thread's stack); the segment stays parked then (carry() then
  /// drops it through abandon(), before the exception reaches the task).
  void after_resume() {
    if (!away_) {
      return;
    }
    if (parked_ != nullptr) {
      std::size_t base = 0;
      detail::check(storectx_resume(parked_, &base));
      parked_ = nullptr;
      base_ = base;
    } else {
      base_ = storectx_depth();
    }
    away_ = false;
  }

  /// The task is being destroyed while suspended: puts the entries back on
  /// this thread so that the frame's guards, destroyed next, unwind them; if
  /// this thread refuses them, frees the segment (locks released). Never
  /// throws. No-op unless suspended.
  void abandon() noexcept {
    if (!away_) {
      return;
    }
    away_ = false;
    if (parked_ == nullptr) {
      return;
    }
    std::size_t base = 0;
    if (storectx_resume(parked_, &base) == STORECTX_OK) {
      parked_ = nullptr;
      torn_down_ = true;
      teardown_base_ = base;
      teardown_thread_ = std::this_thread::get_id();
    } else {
      storectx_suspended_free(std::exchange(parked_, nullptr));
    }
  }

  /// The depth at which the task's entries start on the thread running it.
  std::size_t base() const noexcept { return base_; }
  /// True between before_suspend() and after_resume() / abandon().
  bool suspended() const noexcept { return away_; }
  /// Number of entries parked in the segment (0 while the task runs).
  std::size_t carried() const noexcept {
    return parked_ != nullptr ? storectx_suspended_len(parked_) : 0;
  }

 private:
  std::size_t base_;
  storectx_suspended *parked_ = nullptr;
  bool away_ = false;
  bool torn_down_ = false;
  std::size_t teardown_base_ = 0;
  std::thread::id teardown_thread_{};
};

namespace detail {

/// The awaiter of an awaitable: its operator co_await (member or free), or
/// the object itself (then a reference to it).
template <class A>
decltype(auto) get_awaiter(A &&a) {
  if constexpr (requires { static_cast<A &&>(a).operator co_await(); }) {
    return static_cast<A &&>(a).operator co_await();
  } else if constexpr (requires { operator co_await(static_cast<A &&>(a)); }) {
    return operator co_await(static_cast<A &&>(a));
  } else {
    return static_cast<A &&>(a);
  }
}

/// Suspends the context on arm() and abandons it if the scope ends while it
/// is still suspended by this scope: the coroutine frame holding the scope
/// is being destroyed mid-await.
class AwayScope {
 public:
  explicit AwayScope(TaskContext &ctx) noexcept : ctx_(ctx) {}
  AwayScope(const AwayScope &) = delete;
  AwayScope &operator=(const AwayScope &) = delete;
  ~AwayScope() {
    if (armed_) {
      ctx_.abandon();
    }
  }

  /// ctx.before_suspend(); from here on, this scope answers for it.
  void arm() {
    ctx_.before_suspend();
    armed_ = true;
  }
  /// ctx.after_resume() if armed (a ready awaiter never armed: nothing to
  /// resume, and the context may be suspended by an enclosing carry, whose
  /// entries must not come back here); the scope stays armed if that throws.
  void disarm() {
    if (!armed_) {
      return;
    }
    ctx_.after_resume();
    armed_ = false;
  }

  /// The context this scope answers for.
  TaskContext &context() const noexcept { return ctx_; }

 private:
  TaskContext &ctx_;
  bool armed_ = false;
};

}  // namespace detail

// ---------------------------------------------------------------------------
// carry(): any awaiter
// ---------------------------------------------------------------------------

/// Task types whose promise refuses foreign awaiters: carry() is then a
/// coroutine of that type (see the file comment). The type must name its
/// result `value_type`. Specialize to true for such a type.
template <class Task>
inline constexpr bool carry_by_coroutine = false;

/// The awaiter carry() returns for an ordinary awaitable `A` (kept by value
/// for an rvalue, by reference for an lvalue). Use it in one co_await
/// expression; it cannot be copied or moved.
template <class A>
class [[nodiscard]] Carried {
  using Stored =
      std::conditional_t<std::is_lvalue_reference_v<A>, A, std::remove_cvref_t<A>>;
  using Awaiter = decltype(detail::get_awaiter(std::declval<Stored &&>()));

 public:
  Carried(TaskContext &ctx, A &&a)
      : awaitable_(static_cast<A &&>(a)),
        awaiter_(detail::get_awaiter(static_cast<Stored &&>(awaitable_))),
        away_(ctx) {}
  Carried(const Carried &) = delete;
  Carried &operator=(const Carried &) = delete;

  /// Refuses a context already suspended by an enclosing carry (throws
  /// Error(INVALID_ARGUMENT) before the inner awaiter is asked anything),
  /// whatever the inner awaiter's shape: a ready one included.
  bool await_ready() {
    away_.context().refuse_if_suspended();
    return awaiter_.await_ready();
  }

  /// Detaches the entries, then hands the coroutine to the inner awaiter.
  /// Nothing here touches `this` after the inner await_suspend: another
  /// thread may already be resuming (and destroying) the coroutine.
  template <class P>
  decltype(auto) await_suspend(std::coroutine_handle<P> h) {
    away_.arm();
    using R = decltype(awaiter_.await_suspend(h));
    try {
      if constexpr (std::is_void_v<R>) {
        awaiter_.await_suspend(h);
      } else {
        return awaiter_.await_suspend(h);
      }
    } catch (...) {
      // The coroutine did not suspend: its entries come back before the
      // exception reaches it.
      away_.disarm();
      throw;
    }
  }

  /// Re-attaches the entries on this thread (nothing to do after a ready
  /// awaiter: nothing was suspended), then answers the inner result (or lets
  /// its exception through, entries already back).
  decltype(auto) await_resume() {
    away_.disarm();
    return awaiter_.await_resume();
  }

 private:
  // Destroyed first (declared last): a coroutine destroyed while suspended
  // in this await gives its entries back before the awaitable goes.
  Stored awaitable_;
  Awaiter awaiter_;
  detail::AwayScope away_;
};

/// Awaits `a` with the task's entries carried across the suspension:
///   auto n = co_await storectx::carry(ctx, socket.async_read(...));
template <class A>
  requires(!carry_by_coroutine<std::remove_cvref_t<A>>)
Carried<A> carry(TaskContext &ctx, A &&a) {
  return Carried<A>(ctx, static_cast<A &&>(a));
}

/// The same for a task type whose promise only awaits its own kind (e.g.
/// asio::awaitable): a coroutine of that type which suspends the entries,
/// co_awaits `inner`, resumes them on the thread it continues on, and
/// returns inner's result or rethrows its exception.
template <class Task>
  requires carry_by_coroutine<Task>
Task carry(TaskContext &ctx, Task inner) {
  using T = typename Task::value_type;
  detail::AwayScope away(ctx);  // torn down mid-await: abandon()
  away.arm();
  std::exception_ptr failure;
  if constexpr (std::is_void_v<T>) {
    try {
      co_await std::move(inner);
    } catch (...) {
      failure = std::current_exception();
    }
    away.disarm();
    if (failure) {
      std::rethrow_exception(failure);
    }
  } else {
    std::optional<T> result;
    try {
      result.emplace(co_await std::move(inner));
    } catch (...) {
      failure = std::current_exception();
    }
    away.disarm();
    if (failure) {
      std::rethrow_exception(failure);
    }
    co_return std::move(*result);
  }
}

// ---------------------------------------------------------------------------
// CarryingPromise: a mixin for your own task types
// ---------------------------------------------------------------------------

namespace detail {

/// initial_suspend() of a carrying promise: the task's base is recorded when
/// its body starts, on the thread that starts it.
template <class Initial>
struct Starting {
  TaskContext &ctx;
  Initial inner;
  bool await_ready() noexcept { return inner.await_ready(); }
  template <class P>
  decltype(auto) await_suspend(std::coroutine_handle<P> h) noexcept {
    return inner.await_suspend(h);
  }
  void await_resume() noexcept {
    inner.await_resume();
    ctx.restart();
  }
};

}  // namespace detail

/// Derive your promise_type from it: every co_await in the task is carried
/// (await_transform), the base is recorded when the body starts
/// (initial_suspend, `Initial` = std::suspend_always for a lazy task,
/// std::suspend_never for an eager one), and the promise owns the
/// TaskContext, so destroying a suspended task releases its entries.
///
///   struct promise_type : storectx::CarryingPromise<> {
///     Task get_return_object();
///     std::suspend_always final_suspend() noexcept;
///     void return_void();
///     void unhandled_exception();
///   };
///
/// If your promise defines initial_suspend() itself, call
/// storectx_context().restart() when the body starts. co_yield is not seen by
/// await_transform: return storectx::carry(storectx_context(), your_awaiter)
/// from yield_value() to carry it too.
template <class Initial = std::suspend_always>
class CarryingPromise {
 public:
  /// The task's context (for carry() in yield_value, or inspection).
  TaskContext &storectx_context() noexcept { return ctx_; }

  detail::Starting<Initial> initial_suspend() noexcept {
    return detail::Starting<Initial>{ctx_, Initial{}};
  }

  /// Every co_await of the task goes through carry().
  template <class A>
  decltype(auto) await_transform(A &&a) {
    return carry(ctx_, static_cast<A &&>(a));
  }

 private:
  TaskContext ctx_;
};

}  // namespace storectx

#endif  // STORECTX_CORO_HPP

// Outside the include guard: including this header again after <asio.hpp>
// still enables carry() for asio::awaitable.
#if defined(ASIO_AWAITABLE_HPP) && defined(ASIO_HAS_CO_AWAIT) && !defined(STORECTX_CORO_ASIO)
#define STORECTX_CORO_ASIO
namespace storectx {
template <class T, class Executor>
inline constexpr bool carry_by_coroutine<asio::awaitable<T, Executor>> = true;
}  // namespace storectx
#endif
