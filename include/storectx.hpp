/* storectx.hpp: C++17 RAII wrappers over the libstorectx C API (storectx.h).
 * Hand-written, header-only; link against libstorectx like a C program does.
 *
 * Every C handle gets a move-only owner whose destructor gives it back, so the
 * per-thread stack unwinds in LIFO order on return *and* on exception:
 *
 *   #include "storectx.hpp"
 *
 *   Engine engine;                                   // your store object
 *   const storectx::StoreId id = storectx::new_store_id();
 *   {
 *     storectx::InstallGuard call = storectx::install(id, &engine);   // Function::call
 *     storectx::Borrow cur = storectx::get_current(id);                // deep in an import
 *     cur.as<Engine>()->counter += 1;
 *   }                                  // borrow released, then the entry uninstalled
 *
 *   try {
 *     storectx::Borrow none = storectx::get_current(id);   // nothing installed now
 *   } catch (const storectx::Error &e) {
 *     // e.status() == STORECTX_ERR_NO_CONTEXT, e.message() is storectx_last_error()
 *   }
 *
 * Failures of the C API throw storectx::Error. Each throwing function below
 * names the statuses its C function returns (storectx.h says what each
 * means there). Two come from the calling thread's state in every call that
 * uses it: NO_CONTEXT once the thread is exiting and its state was torn down
 * (a call from a late thread-exit destructor), and EXHAUSTED when the
 * thread's first such call could not create that state. Any call may also
 * throw PANIC (an internal bug caught at the C boundary).
 *
 * Destructors never throw: when the
 * release done by a destructor fails (say a guard dropped out of LIFO order),
 * the failure goes to the release-failure handler (see
 * set_release_failure_handler; by default one line on stderr) and the
 * destructor returns normally; what it could not give back stays, owned by
 * no object (an entry dropped out of order stays on the thread's stack until
 * the thread exits). Call the explicit end functions (uninstall(),
 * release(), unpause(), ...) where you want such a failure to throw instead:
 * they keep the handle, so the caller can fix the cause and retry.
 *
 * The owner types are [[nodiscard]]: `storectx::install(id, &engine);` on its
 * own would uninstall at once, so the compiler warns about it.
 *
 * Threads: guards, borrows and pause guards are plain values naming an entry;
 * they follow their entry when a coroutine is suspended on one thread and
 * resumed on another (see Suspended), so the owner object may be moved to
 * the resuming thread along with the coroutine. None of these types is
 * internally synchronized: one thread uses a given object at a time.
 */
#ifndef STORECTX_HPP
#define STORECTX_HPP

// Every failure throws storectx::Error: without exceptions the compiler
// would stop inside this header with an error that does not say why.
#if !defined(__cpp_exceptions) && !defined(__EXCEPTIONS) && !defined(_CPPUNWIND)
#error "storectx.hpp throws storectx::Error, so it needs C++ exceptions (no -fno-exceptions); without them, call the C API of storectx.h directly"
#endif

#include "storectx.h"

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>

namespace storectx {

/// A store id: nonzero, unique in the process (see new_store_id()).
using StoreId = storectx_store_id;

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/// A failed C call: the status it returned and this thread's
/// storectx_last_error() text, captured at the moment of failure.
///
///   try { storectx::PauseGuard p = storectx::pause(id); }
///   catch (const storectx::Error &e) {
///     if (e.status() == STORECTX_ERR_PAUSED) { ... }
///     std::fprintf(stderr, "%s\n", e.what());   // message + status name
///   }
class Error : public std::runtime_error {
 public:
  Error(storectx_status status, const std::string &message)
      : std::runtime_error(message + " (" + storectx_status_str(status) + ")"),
        status_(status),
        message_len_(message.size()) {}

  /// The status code the C function returned (never STORECTX_OK).
  storectx_status status() const noexcept { return status_; }
  /// The storectx_last_error() text, e.g.
  /// "uninstall: install guard for store 7 is at depth 1, top is store 9 at depth 2".
  std::string message() const { return std::string(what(), message_len_); }
  /// The status' name and short meaning, from storectx_status_str().
  const char *status_str() const noexcept { return storectx_status_str(status_); }

 private:
  // The message is kept only inside what(), so copying an Error never throws.
  storectx_status status_;
  std::size_t message_len_;
};

/// Called when a destructor (or a move assignment) could not give a handle
/// back: `status` is what the C function returned, `op` its name (e.g.
/// "storectx_uninstall"), `message` this thread's storectx_last_error().
/// It runs on the thread of the destructor, possibly during stack unwinding,
/// so it must not throw. It may log, count, or abort.
using ReleaseFailureHandler = void (*)(storectx_status status, const char *op,
                                       const char *message);

/// The default handler: one line on stderr, then carry on.
inline void print_release_failure(storectx_status status, const char *op,
                                  const char *message) noexcept {
  std::fprintf(stderr, "storectx: %s failed in a destructor: %s (%s)\n", op,
               message, storectx_status_str(status));
}

namespace detail {

inline std::atomic<ReleaseFailureHandler> release_failure_handler{
    &print_release_failure};

/// Throws Error for a failed status; captures storectx_last_error() first,
/// before anything else can touch this thread's message.
inline void check(storectx_status status) {
  if (status != STORECTX_OK) {
    throw Error(status, storectx_last_error());
  }
}

/// Destructor path: never throws, reports through the handler.
inline void report(storectx_status status, const char *op) noexcept {
  if (status != STORECTX_OK) {
    ReleaseFailureHandler handler = release_failure_handler.load();
    if (handler != nullptr) {
      handler(status, op, storectx_last_error());
    }
  }
}

}  // namespace detail

/// Installs `handler` for failures of releases done by destructors, for all
/// threads, and returns the previous one. nullptr restores the default
/// (print_release_failure).
///
///   storectx::set_release_failure_handler(
///       [](storectx_status, const char *op, const char *msg) { log(op, msg); });
inline ReleaseFailureHandler set_release_failure_handler(
    ReleaseFailureHandler handler) noexcept {
  if (handler == nullptr) {
    handler = &print_release_failure;
  }
  return detail::release_failure_handler.exchange(handler);
}

// ---------------------------------------------------------------------------
// Inspection (never fail)
// ---------------------------------------------------------------------------

/// "MAJOR.MINOR.PATCH" of the library actually linked.
inline const char *version() noexcept { return storectx_version(); }
/// Name and short meaning of a status; never NULL.
inline const char *status_str(storectx_status status) noexcept {
  return storectx_status_str(status);
}
/// This thread's message for its most recent failed call ("" if none).
inline const char *last_error() noexcept { return storectx_last_error(); }

/// A fresh store id: nonzero, never reused in this process.
inline StoreId new_store_id() noexcept { return storectx_store_id_new(); }
/// True iff `id` is the top entry of this thread's stack.
inline bool is_active(StoreId id) noexcept { return storectx_is_active(id); }
/// True iff `id` is on this thread's stack but not on top.
inline bool is_paused(StoreId id) noexcept { return storectx_is_paused(id); }
/// True iff this thread's stack has no entries.
inline bool is_empty() noexcept { return storectx_is_empty(); }
/// Number of entries on this thread's stack.
inline std::size_t depth() noexcept { return storectx_depth(); }
/// The top entry's store id, 0 when the stack is empty.
inline StoreId active_store() noexcept { return storectx_active_store(); }

/// This thread's stack, one line per entry, top first (for debugging).
inline std::string describe() {
  std::string text;
  std::size_t needed = storectx_describe(nullptr, 0);
  // The stack cannot change between the two calls (same thread); loop anyway
  // so a longer answer can never be truncated silently.
  for (;;) {
    text.resize(needed + 1);
    std::size_t got = storectx_describe(&text[0], text.size());
    if (got <= needed) {
      text.resize(got);
      return text;
    }
    needed = got;
  }
}

// ---------------------------------------------------------------------------
// InstallGuard
// ---------------------------------------------------------------------------

/// Owns one install (a storectx_install_guard): the entry pushed by
/// install() or install_async(). The destructor uninstalls it, which for an
/// async entry also releases the store's write lock.
///
/// install() of a store that is already on top as an *async* entry pushes
/// nothing and yields a no-op guard: is_noop() is true, installed() is false,
/// and uninstalling it (explicitly or by the destructor) pops nothing. It
/// keeps LIFO order like any guard: it succeeds while that async entry is on
/// top (OUT_OF_ORDER below another entry, STALE_HANDLE once it is gone).
///
///   {
///     storectx::InstallGuard g = storectx::install(id, &engine);
///     run_guest();                       // may call get_current(id)
///   }                                    // uninstalled here, also on throw
class [[nodiscard]] InstallGuard {
 public:
  /// An empty guard owning nothing.
  InstallGuard() noexcept = default;

  /// Takes ownership of a C guard (e.g. one from storectx_install()).
  /// `noop` says whether it is a no-op guard; by default it is asked from
  /// the library, which only gives the right answer on the thread that holds
  /// the entry, before any suspend.
  static InstallGuard adopt(storectx_install_guard raw) noexcept {
    return InstallGuard(raw, !storectx_install_guard_installed(raw));
  }
  static InstallGuard adopt(storectx_install_guard raw, bool noop) noexcept {
    return InstallGuard(raw, noop);
  }

  InstallGuard(InstallGuard &&other) noexcept
      : raw_(other.raw_), owns_(std::exchange(other.owns_, false)),
        noop_(other.noop_) {}
  InstallGuard &operator=(InstallGuard &&other) noexcept {
    if (this != &other) {
      drop();
      raw_ = other.raw_;
      owns_ = std::exchange(other.owns_, false);
      noop_ = other.noop_;
    }
    return *this;
  }
  InstallGuard(const InstallGuard &) = delete;
  InstallGuard &operator=(const InstallGuard &) = delete;
  ~InstallGuard() { drop(); }

  /// Uninstalls now. Throws Error and keeps owning the guard if the library
  /// refuses, so the caller can fix the cause and retry: OUT_OF_ORDER
  /// (another entry is above it), STILL_BORROWED (its entry has borrows),
  /// STALE_HANDLE (its entry is gone, or on another thread's stack),
  /// NO_CONTEXT / EXHAUSTED (this thread's state, see the top). No-op on an
  /// empty guard.
  void uninstall() {
    if (owns_) {
      detail::check(storectx_uninstall(raw_));
      owns_ = false;
    }
  }

  /// Gives up ownership without uninstalling; returns the C guard.
  storectx_install_guard detach() noexcept {
    owns_ = false;
    return raw_;
  }

  /// The C guard (still owned by this object).
  storectx_install_guard raw() const noexcept { return raw_; }
  /// True while this object owns a guard.
  explicit operator bool() const noexcept { return owns_; }
  /// True for the no-op guard of a store already on top as an async entry.
  bool is_noop() const noexcept { return noop_; }
  /// True iff the guard's entry is on this thread's stack now
  /// (storectx_install_guard_installed; false for a no-op guard).
  bool installed() const noexcept {
    return owns_ && storectx_install_guard_installed(raw_);
  }

 private:
  InstallGuard(storectx_install_guard raw, bool noop) noexcept
      : raw_(raw), owns_(true), noop_(noop) {}

  void drop() noexcept {
    if (owns_) {
      owns_ = false;
      detail::report(storectx_uninstall(raw_), "storectx_uninstall");
    }
  }

  storectx_install_guard raw_{};
  bool owns_ = false;
  bool noop_ = false;
};

/// Pushes a sync entry for `store` (the embedder's Function::call). Throws
/// Error: INVALID_ARGUMENT for id 0 or UINT64_MAX (reserved), NULL_ARGUMENT
/// for a null store, PAUSED if `id` is deeper in the stack, ADDRESS_MISMATCH
/// if `id` is on top as a sync entry with another address, EXHAUSTED if the
/// process used every entry number (2^61) or this thread's state could not
/// be created, NO_CONTEXT after this thread's teardown. If `id` is on top as
/// an async entry, `store` is not compared with its address: the answer is
/// the no-op guard (see InstallGuard) whatever `store` is.
inline InstallGuard install(StoreId id, void *store) {
  storectx_install_guard raw{};
  detail::check(storectx_install(id, store, &raw));
  return InstallGuard::adopt(raw);
}

// ---------------------------------------------------------------------------
// Borrow
// ---------------------------------------------------------------------------

/// Owns one borrow of the top entry (storectx_borrow) and the store pointer
/// it gave. The destructor releases the borrow; the entry must be on top
/// again by then, which LIFO scoping guarantees.
///
///   storectx::Borrow cur = storectx::get_current(id);
///   Engine *engine = cur.as<Engine>();
class [[nodiscard]] Borrow {
 public:
  /// An empty borrow owning nothing.
  Borrow() noexcept = default;

  /// Takes ownership of a C borrow and the store pointer / id it came with.
  static Borrow adopt(storectx_borrow raw, void *store, StoreId id) noexcept {
    return Borrow(raw, store, id);
  }

  Borrow(Borrow &&other) noexcept
      : raw_(other.raw_), store_(other.store_), id_(other.id_),
        owns_(std::exchange(other.owns_, false)) {}
  Borrow &operator=(Borrow &&other) noexcept {
    if (this != &other) {
      drop();
      raw_ = other.raw_;
      store_ = other.store_;
      id_ = other.id_;
      owns_ = std::exchange(other.owns_, false);
    }
    return *this;
  }
  Borrow(const Borrow &) = delete;
  Borrow &operator=(const Borrow &) = delete;
  ~Borrow() { drop(); }

  /// A second borrow of the same (sync, top) entry. Throws Error: NOT_SYNC
  /// for an async entry, OUT_OF_ORDER if the entry is not on top,
  /// STALE_HANDLE if it is gone (or on another thread's stack), NOT_BORROWED
  /// if its borrow count is 0, INVALID_ARGUMENT if the count is at
  /// UINT32_MAX, NO_CONTEXT / EXHAUSTED (this thread's state, see the top).
  Borrow clone() const {
    storectx_borrow out{};
    detail::check(storectx_borrow_clone(raw_, &out));
    return Borrow(out, store_, id_);
  }

  /// Releases now. Throws Error and keeps ownership if the library refuses:
  /// OUT_OF_ORDER (the entry is not on top), STALE_HANDLE (it is gone, or on
  /// another thread's stack), NOT_BORROWED (its borrow count is 0),
  /// NO_CONTEXT / EXHAUSTED (this thread's state, see the top).
  void release() {
    if (owns_) {
      detail::check(storectx_borrow_release(raw_));
      owns_ = false;
    }
  }

  /// Gives up ownership without releasing; returns the C borrow.
  storectx_borrow detach() noexcept {
    owns_ = false;
    return raw_;
  }

  /// The store address given to install / async_store_new.
  void *get() const noexcept { return store_; }
  /// The store address as the embedder's type.
  template <class T>
  T *as() const noexcept {
    return static_cast<T *>(store_);
  }
  /// The borrowed entry's store id.
  StoreId store_id() const noexcept { return id_; }
  /// The C borrow (still owned by this object).
  storectx_borrow raw() const noexcept { return raw_; }
  /// True while this object owns a borrow.
  explicit operator bool() const noexcept { return owns_; }

 private:
  Borrow(storectx_borrow raw, void *store, StoreId id) noexcept
      : raw_(raw), store_(store), id_(id), owns_(true) {}

  void drop() noexcept {
    if (owns_) {
      owns_ = false;
      detail::report(storectx_borrow_release(raw_), "storectx_borrow_release");
    }
  }

  storectx_borrow raw_{};
  void *store_ = nullptr;
  StoreId id_ = 0;
  bool owns_ = false;
};

/// Borrows the current store: `id` must be the top entry. Throws Error:
/// NO_CONTEXT (the stack is empty, or this thread's state was torn down),
/// NOT_INSTALLED, PAUSED (`id` is deeper in the stack), INVALID_ARGUMENT
/// (id 0 or UINT64_MAX, or the entry's borrow count is at UINT32_MAX),
/// EXHAUSTED (this thread's state could not be created).
inline Borrow get_current(StoreId id) {
  void *store = nullptr;
  storectx_borrow raw{};
  detail::check(storectx_get_current(id, &store, &raw));
  return Borrow::adopt(raw, store, id);
}

/// Borrows the top entry whatever its id, only if it has no borrow yet.
/// O(1). Throws Error: NO_CONTEXT (the stack is empty, or this thread's
/// state was torn down), BORROWED (the top entry has a borrow), EXHAUSTED
/// (this thread's state could not be created). The id is in
/// Borrow::store_id().
inline Borrow get_current_unborrowed() {
  StoreId id = 0;
  void *store = nullptr;
  storectx_borrow raw{};
  detail::check(storectx_get_current_unborrowed(&id, &store, &raw));
  return Borrow::adopt(raw, store, id);
}

/// The current store's address without taking a borrow (valid while the
/// entry stays on top). Throws Error like get_current(): NO_CONTEXT,
/// NOT_INSTALLED, PAUSED, INVALID_ARGUMENT (id 0 or UINT64_MAX), EXHAUSTED.
template <class T = void>
T *get_current_transient(StoreId id) {
  void *store = nullptr;
  detail::check(storectx_get_current_transient(id, &store));
  return static_cast<T *>(store);
}

// ---------------------------------------------------------------------------
// PauseGuard
// ---------------------------------------------------------------------------

/// Owns one pause (storectx_pause_guard): while guest code runs, the top
/// entry's borrow is handed back; the destructor restores it. Pauses of one
/// entry nest LIFO.
///
///   storectx::Borrow cur = storectx::get_current(id);
///   {
///     storectx::PauseGuard p = storectx::pause(id);   // borrow count -1
///     call_guest();                                   // may re-borrow
///   }                                                 // borrow count restored
class [[nodiscard]] PauseGuard {
 public:
  /// An empty pause guard owning nothing.
  PauseGuard() noexcept = default;

  /// Takes ownership of a C pause guard.
  static PauseGuard adopt(storectx_pause_guard raw) noexcept {
    return PauseGuard(raw);
  }

  PauseGuard(PauseGuard &&other) noexcept
      : raw_(other.raw_), owns_(std::exchange(other.owns_, false)) {}
  PauseGuard &operator=(PauseGuard &&other) noexcept {
    if (this != &other) {
      drop();
      raw_ = other.raw_;
      owns_ = std::exchange(other.owns_, false);
    }
    return *this;
  }
  PauseGuard(const PauseGuard &) = delete;
  PauseGuard &operator=(const PauseGuard &) = delete;
  ~PauseGuard() { drop(); }

  /// Unpauses now. Throws Error and keeps ownership if the library refuses:
  /// OUT_OF_ORDER (the entry is not on top, or an inner pause is still
  /// open), STALE_HANDLE (the pause ended, its entry is gone, or it is on
  /// another thread's stack), INVALID_ARGUMENT (the restored borrow would
  /// take the count past UINT32_MAX), NO_CONTEXT / EXHAUSTED (this thread's
  /// state, see the top).
  void unpause() {
    if (owns_) {
      detail::check(storectx_unpause(raw_));
      owns_ = false;
    }
  }

  /// Gives up ownership without unpausing; returns the C pause guard.
  storectx_pause_guard detach() noexcept {
    owns_ = false;
    return raw_;
  }

  /// The C pause guard (still owned by this object).
  storectx_pause_guard raw() const noexcept { return raw_; }
  /// True while this object owns a pause guard.
  explicit operator bool() const noexcept { return owns_; }

 private:
  explicit PauseGuard(storectx_pause_guard raw) noexcept
      : raw_(raw), owns_(true) {}

  void drop() noexcept {
    if (owns_) {
      owns_ = false;
      detail::report(storectx_unpause(raw_), "storectx_unpause");
    }
  }

  storectx_pause_guard raw_{};
  bool owns_ = false;
};

/// Pauses the borrow of the top entry `id`. Throws Error: NO_CONTEXT (the
/// stack is empty, or this thread's state was torn down), NOT_INSTALLED,
/// PAUSED (`id` is deeper in the stack), INVALID_ARGUMENT (id 0 or
/// UINT64_MAX), EXHAUSTED (the process used every pause number, 2^61, or
/// this thread's state could not be created).
inline PauseGuard pause(StoreId id) {
  storectx_pause_guard raw{};
  detail::check(storectx_pause(id, &raw));
  return PauseGuard::adopt(raw);
}

// ---------------------------------------------------------------------------
// WriteGuard
// ---------------------------------------------------------------------------

/// Owns the write lock of an async store (storectx_write_guard *). The
/// destructor unlocks; it may run on any thread. install_async() consumes
/// it on success, after which the lock belongs to the entry.
class [[nodiscard]] WriteGuard {
 public:
  /// An empty write guard owning nothing.
  WriteGuard() noexcept = default;

  /// Takes ownership of a C write guard.
  static WriteGuard adopt(storectx_write_guard *raw) noexcept {
    return WriteGuard(raw);
  }

  WriteGuard(WriteGuard &&other) noexcept
      : raw_(std::exchange(other.raw_, nullptr)) {}
  WriteGuard &operator=(WriteGuard &&other) noexcept {
    if (this != &other) {
      unlock();
      raw_ = std::exchange(other.raw_, nullptr);
    }
    return *this;
  }
  WriteGuard(const WriteGuard &) = delete;
  WriteGuard &operator=(const WriteGuard &) = delete;
  ~WriteGuard() { unlock(); }

  /// Releases the lock now (cannot fail). No-op on an empty guard.
  void unlock() noexcept {
    storectx_write_guard_release(std::exchange(raw_, nullptr));
  }

  /// Gives up ownership without unlocking; returns the C write guard.
  storectx_write_guard *detach() noexcept {
    return std::exchange(raw_, nullptr);
  }

  /// The locked store's address (nullptr for an empty guard).
  void *store() const noexcept {
    return raw_ != nullptr ? storectx_write_guard_store(raw_) : nullptr;
  }
  template <class T>
  T *as() const noexcept {
    return static_cast<T *>(store());
  }
  /// The C write guard (still owned by this object).
  storectx_write_guard *raw() const noexcept { return raw_; }
  /// True while this object owns a write guard.
  explicit operator bool() const noexcept { return raw_ != nullptr; }

 private:
  explicit WriteGuard(storectx_write_guard *raw) noexcept : raw_(raw) {}

  storectx_write_guard *raw_ = nullptr;
};

/// Pushes an async entry holding `guard`'s lock. On success `guard` is
/// consumed (left empty) and the returned InstallGuard owns the lock; on
/// failure Error is thrown and `guard` still owns it: ALREADY_ON_STACK if
/// the store is anywhere on this thread's stack, NULL_ARGUMENT for an empty
/// guard, STALE_HANDLE if its C guard was already released or consumed,
/// EXHAUSTED if the process used every entry number (2^61) or this thread's
/// state could not be created, NO_CONTEXT after this thread's teardown.
///
///   storectx::WriteGuard w = store.write();
///   storectx::InstallGuard g = storectx::install_async(std::move(w));
///
/// (The rvalue reference is a promise to be consumed, kept only on success,
/// like std::map::try_emplace.)
inline InstallGuard install_async(WriteGuard &&guard) {
  storectx_install_guard raw{};
  detail::check(storectx_install_async(guard.raw(), &raw));
  guard.detach();
  return InstallGuard::adopt(raw, false);
}

// ---------------------------------------------------------------------------
// AsyncStore
// ---------------------------------------------------------------------------

/// A reference to a refcounted async store (storectx_async_store *): a store
/// behind a write lock, usable from any thread. Copying takes another
/// reference (storectx_async_store_clone); the destructor drops one.
///
///   storectx::AsyncStore shared(id, &engine);
///   {
///     storectx::InstallGuard g = storectx::install_async(shared.write());
///     run_guest();                  // get_current(id) works; lock held
///   }                               // uninstalled, lock released
class AsyncStore {
 public:
  /// An empty reference (operator bool is false).
  AsyncStore() noexcept = default;

  /// A new async store for `store` under `id`. Throws Error:
  /// INVALID_ARGUMENT for id 0 or UINT64_MAX (reserved), NULL_ARGUMENT for a
  /// null store, EXHAUSTED when there is no memory for it. `store` must stay valid until the last reference, write
  /// guard, entry and segment of this async store is gone.
  AsyncStore(StoreId id, void *store) {
    detail::check(storectx_async_store_new(id, store, &raw_));
  }

  /// Takes ownership of one C reference.
  static AsyncStore adopt(storectx_async_store *raw) noexcept {
    AsyncStore s;
    s.raw_ = raw;
    return s;
  }

  AsyncStore(const AsyncStore &other) noexcept
      : raw_(storectx_async_store_clone(other.raw_)) {}
  AsyncStore &operator=(const AsyncStore &other) noexcept {
    if (this != &other) {
      storectx_async_store *copy = storectx_async_store_clone(other.raw_);
      storectx_async_store_release(raw_);
      raw_ = copy;
    }
    return *this;
  }
  AsyncStore(AsyncStore &&other) noexcept
      : raw_(std::exchange(other.raw_, nullptr)) {}
  AsyncStore &operator=(AsyncStore &&other) noexcept {
    if (this != &other) {
      storectx_async_store_release(raw_);
      raw_ = std::exchange(other.raw_, nullptr);
    }
    return *this;
  }
  ~AsyncStore() { storectx_async_store_release(raw_); }

  /// Drops this reference now; the object becomes empty.
  void reset() noexcept { storectx_async_store_release(std::exchange(raw_, nullptr)); }

  /// Gives up ownership of the reference; returns the C pointer.
  storectx_async_store *detach() noexcept { return std::exchange(raw_, nullptr); }

  /// Takes the lock if free; std::nullopt if held (BUSY). Throws Error:
  /// NULL_ARGUMENT for an empty reference, EXHAUSTED when 4,194,304 write
  /// guards are live at once.
  std::optional<WriteGuard> try_write() {
    storectx_write_guard *out = nullptr;
    storectx_status status = storectx_async_store_try_write(raw_, &out);
    if (status == STORECTX_ERR_BUSY) {
      return std::nullopt;
    }
    detail::check(status);
    return WriteGuard::adopt(out);
  }

  /// Waits for the lock up to `timeout`; std::nullopt on TIMED_OUT. A zero
  /// or negative `timeout` tries once, without waiting (it is passed to
  /// storectx_async_store_write as 0). Throws Error: WOULD_DEADLOCK at once
  /// if this thread's own stack holds the lock, NULL_ARGUMENT for an empty
  /// reference, EXHAUSTED when 4,194,304 write guards are live at once.
  std::optional<WriteGuard> write_for(std::chrono::nanoseconds timeout) {
    const std::uint64_t ns =
        timeout.count() > 0 ? static_cast<std::uint64_t>(timeout.count()) : 0;
    storectx_write_guard *out = nullptr;
    storectx_status status = storectx_async_store_write(raw_, ns, &out);
    if (status == STORECTX_ERR_TIMED_OUT) {
      return std::nullopt;
    }
    detail::check(status);
    return WriteGuard::adopt(out);
  }

  /// Waits for the lock without a time limit (never TIMED_OUT). Throws
  /// Error: WOULD_DEADLOCK at once if this thread's own stack holds it,
  /// NULL_ARGUMENT for an empty reference, EXHAUSTED when 4,194,304 write
  /// guards are live at once.
  WriteGuard write() {
    storectx_write_guard *out = nullptr;
    detail::check(storectx_async_store_write(raw_, UINT64_MAX, &out));
    return WriteGuard::adopt(out);
  }

  /// The store id (0 for an empty reference).
  StoreId id() const noexcept { return storectx_async_store_id(raw_); }
  /// The C pointer (still owned by this object).
  storectx_async_store *raw() const noexcept { return raw_; }
  /// True unless empty.
  explicit operator bool() const noexcept { return raw_ != nullptr; }

 private:
  storectx_async_store *raw_ = nullptr;
};

/// What get_current_async() returns: the borrow, and the entry's async store
/// (a new reference), empty when the entry is sync.
struct CurrentAsync {
  Borrow borrow;
  AsyncStore async_store;
};

/// Like get_current(), plus the entry's async store when it has one.
/// Throws Error like get_current(): NO_CONTEXT, NOT_INSTALLED, PAUSED,
/// INVALID_ARGUMENT (id 0 or UINT64_MAX, or the borrow count is at
/// UINT32_MAX), EXHAUSTED.
inline CurrentAsync get_current_async(StoreId id) {
  storectx_async_store *async_store = nullptr;
  void *store = nullptr;
  storectx_borrow raw{};
  detail::check(storectx_get_current_async(id, &async_store, &store, &raw));
  return CurrentAsync{Borrow::adopt(raw, store, id), AsyncStore::adopt(async_store)};
}

// ---------------------------------------------------------------------------
// Suspended
// ---------------------------------------------------------------------------

/// Owns a detached segment of entries (storectx_suspended *): what a
/// coroutine carries between a yield and the next resume. It may be moved
/// to, and resumed on, any thread. The destructor cancels it: entries are
/// dropped, their write locks released, and their guards/borrows/pauses go
/// stale (so their owners' destructors report STALE_HANDLE; detach() them
/// first when cancelling on purpose).
///
///   const std::size_t base = storectx::depth();          // coroutine start
///   ... install guards held by the coroutine frame ...
///   storectx::Suspended seg = storectx::suspend(base);  // yield
///   std::thread([seg = std::move(seg)]() mutable {
///     storectx::resume(std::move(seg));                 // guards valid here
///   }).join();
class [[nodiscard]] Suspended {
 public:
  /// An empty segment holder.
  Suspended() noexcept = default;

  /// Takes ownership of a C segment.
  static Suspended adopt(storectx_suspended *raw) noexcept {
    return Suspended(raw);
  }

  Suspended(Suspended &&other) noexcept
      : raw_(std::exchange(other.raw_, nullptr)) {}
  Suspended &operator=(Suspended &&other) noexcept {
    if (this != &other) {
      cancel();
      raw_ = std::exchange(other.raw_, nullptr);
    }
    return *this;
  }
  Suspended(const Suspended &) = delete;
  Suspended &operator=(const Suspended &) = delete;
  ~Suspended() { cancel(); }

  /// Drops the segment now (storectx_suspended_free). No-op when empty.
  void cancel() noexcept { storectx_suspended_free(std::exchange(raw_, nullptr)); }

  /// Gives up ownership; returns the C segment.
  storectx_suspended *detach() noexcept { return std::exchange(raw_, nullptr); }

  /// Number of entries carried (0 when empty).
  std::size_t len() const noexcept {
    return raw_ != nullptr ? storectx_suspended_len(raw_) : 0;
  }
  /// The C segment (still owned by this object).
  storectx_suspended *raw() const noexcept { return raw_; }
  /// True unless empty.
  explicit operator bool() const noexcept { return raw_ != nullptr; }

 private:
  explicit Suspended(storectx_suspended *raw) noexcept : raw_(raw) {}

  storectx_suspended *raw_ = nullptr;
};

/// Detaches every entry above `base_depth` from this thread (zero entries is
/// fine). Throws Error: INVALID_ARGUMENT if base_depth > depth(), EXHAUSTED
/// when 4,194,304 segments are live at once or this thread's state could
/// not be created, NO_CONTEXT after this thread's teardown.
inline Suspended suspend(std::size_t base_depth) {
  storectx_suspended *out = nullptr;
  detail::check(storectx_suspend(base_depth, &out));
  return Suspended::adopt(out);
}

/// Re-attaches `segment` on top of this thread's stack and returns the depth
/// it starts at (the coroutine's new base). On success `segment` is consumed
/// (left empty); on failure Error is thrown and `segment` still owns the
/// entries: ALREADY_ON_STACK if one of its stores is on this thread's stack,
/// NULL_ARGUMENT for an empty one, STALE_HANDLE for a C segment already
/// resumed or freed, EXHAUSTED if this thread's state could not be created,
/// NO_CONTEXT after this thread's teardown.
inline std::size_t resume(Suspended &&segment) {
  std::size_t base_depth = 0;
  detail::check(storectx_resume(segment.raw(), &base_depth));
  segment.detach();
  return base_depth;
}

}  // namespace storectx

#endif  // STORECTX_HPP
