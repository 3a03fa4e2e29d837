/* cpp_raii.cpp: the C++ RAII header (storectx.hpp) keeps the stack LIFO and
 * consistent: nested cross-store calls, unwinding on exception (guards,
 * borrows, pauses and write locks all given back), storectx::Error carrying
 * status and message, the release-failure hook instead of std::terminate, and
 * a coroutine frame that owns its guards migrating across std::threads. */
/* cprog: skip on=musl Debian's musl-tools has no C++ compiler (musl-gcc wraps gcc for C only); the C programs cover musl */
#include "storectx.hpp"

#include "check.h"

#include <atomic>
#include <chrono>
#include <cstring>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>

/* The ownership model, checked at compile time. */
static_assert(std::is_base_of_v<std::runtime_error, storectx::Error>);
static_assert(std::is_nothrow_copy_constructible_v<storectx::Error>);
static_assert(!std::is_copy_constructible_v<storectx::InstallGuard> &&
              std::is_nothrow_move_constructible_v<storectx::InstallGuard> &&
              std::is_nothrow_move_assignable_v<storectx::InstallGuard>);
static_assert(!std::is_copy_constructible_v<storectx::Borrow> &&
              std::is_nothrow_move_assignable_v<storectx::Borrow>);
static_assert(!std::is_copy_constructible_v<storectx::PauseGuard> &&
              std::is_nothrow_move_assignable_v<storectx::PauseGuard>);
static_assert(!std::is_copy_constructible_v<storectx::WriteGuard> &&
              std::is_nothrow_move_assignable_v<storectx::WriteGuard>);
static_assert(!std::is_copy_constructible_v<storectx::Suspended> &&
              std::is_nothrow_move_assignable_v<storectx::Suspended>);
static_assert(std::is_copy_constructible_v<storectx::AsyncStore> &&  // = clone
              std::is_nothrow_move_assignable_v<storectx::AsyncStore>);
static_assert(std::is_nothrow_destructible_v<storectx::InstallGuard>);

/* Expect `expr` to throw storectx::Error with status `want` and a message
 * naming the failing function. */
#define CHECK_THROWS(expr, want)                                               \
  do {                                                                         \
    bool check_threw_ = false;                                                 \
    try {                                                                      \
      (void)(expr);                                                            \
    } catch (const storectx::Error &check_e_) {                                \
      check_threw_ = true;                                                     \
      if (check_e_.status() != (want)) {                                       \
        fprintf(stderr, "%s:%d: %s threw %s, expected %s\n  what: %s\n",       \
                __FILE__, __LINE__, #expr, check_e_.status_str(),              \
                storectx_status_str(want), check_e_.what());                   \
        exit(1);                                                               \
      }                                                                        \
      if (check_e_.message().empty()) {                                        \
        fprintf(stderr, "%s:%d: %s threw without a message\n", __FILE__,       \
                __LINE__, #expr);                                              \
        exit(1);                                                               \
      }                                                                        \
    }                                                                          \
    if (!check_threw_) {                                                       \
      fprintf(stderr, "%s:%d: %s did not throw %s\n", __FILE__, __LINE__,      \
              #expr, storectx_status_str(want));                               \
      exit(1);                                                                 \
    }                                                                          \
  } while (0)

#define FAIL(msg)                                                              \
  do {                                                                         \
    fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, msg);                  \
    exit(1);                                                                   \
  } while (0)

namespace {

struct Engine {
  storectx::StoreId id = storectx::new_store_id();
  int calls = 0;
};

/* Release failures seen by the hook; most tests expect none. */
std::atomic<int> g_release_failures{0};
std::atomic<int> g_last_failure_status{STORECTX_OK};

void count_release_failure(storectx_status status, const char *op,
                           const char *message) {
  g_release_failures.fetch_add(1);
  g_last_failure_status.store(status);
  CHECK(op != nullptr && std::strncmp(op, "storectx_", 9) == 0);
  CHECK(message != nullptr && message[0] != '\0');
}

bool starts_with(const std::string &s, const char *prefix) {
  return s.compare(0, std::strlen(prefix), prefix) == 0;
}

/* True if another thread can take the store's lock right now. */
bool lock_is_free_elsewhere(const storectx::AsyncStore &store) {
  bool free = false;
  std::thread([&] {
    storectx::AsyncStore mine = store;  // copy = clone, used on this thread
    std::optional<storectx::WriteGuard> w = mine.try_write();
    free = w.has_value();
  }).join();
  return free;
}

/* ---- nested cross-store calls ------------------------------------------ */

/* call(store1, f1) -> guest -> import -> call(store2, f2) -> guest -> import:
 * the inner import may use store2 only. */
void inner_import(Engine &e1, Engine &e2) {
  storectx::Borrow cur = storectx::get_current(e2.id);
  CHECK(cur.as<Engine>() == &e2);
  CHECK(cur.store_id() == e2.id);
  cur.as<Engine>()->calls++;
  CHECK(storectx::depth() == 2);
  CHECK(storectx::is_active(e2.id));
  CHECK(storectx::is_paused(e1.id));
  CHECK(storectx::active_store() == e2.id);
  CHECK_THROWS(storectx::get_current(e1.id), STORECTX_ERR_PAUSED);
  CHECK_THROWS(storectx::pause(e1.id), STORECTX_ERR_PAUSED);
  CHECK_THROWS(storectx::install(e1.id, &e1), STORECTX_ERR_PAUSED);
  CHECK(storectx::get_current_transient<Engine>(e2.id) == &e2);

  std::string text = storectx::describe();
  CHECK(text.find("depth 2") != std::string::npos);
  const std::size_t at2 = text.find("store " + std::to_string(e2.id) + " ");
  const std::size_t at1 = text.find("store " + std::to_string(e1.id) + " ");
  CHECK(at2 != std::string::npos && at1 != std::string::npos && at2 < at1);  // top first
}

void call_store2(Engine &e1, Engine &e2) {
  storectx::InstallGuard call = storectx::install(e2.id, &e2);
  CHECK(call && !call.is_noop() && call.installed());
  inner_import(e1, e2);
}

void outer_import(Engine &e1, Engine &e2) {
  storectx::Borrow cur = storectx::get_current(e1.id);
  CHECK(cur.as<Engine>() == &e1);
  {
    storectx::PauseGuard paused = storectx::pause(e1.id);  // guest runs
    call_store2(e1, e2);
    /* A re-entrant call on the same store pushes a second entry. */
    storectx::InstallGuard again = storectx::install(e1.id, &e1);
    CHECK(storectx::depth() == 2);
    Engine other;
    CHECK_THROWS(storectx::install(e1.id, &other), STORECTX_ERR_ADDRESS_MISMATCH);
  }
  CHECK(storectx::depth() == 1);
  cur.as<Engine>()->calls++;
}

void test_nested_calls() {
  Engine e1, e2;
  {
    storectx::InstallGuard call = storectx::install(e1.id, &e1);
    outer_import(e1, e2);
    CHECK(storectx::is_active(e1.id) && !storectx::is_paused(e2.id));
  }
  CHECK(storectx::is_empty());
  CHECK(e1.calls == 1 && e2.calls == 1);

  /* Installing a store that is on top as an async entry is a no-op guard. */
  Engine e3;
  storectx::AsyncStore shared(e3.id, &e3);
  CHECK(shared.id() == e3.id);
  {
    storectx::InstallGuard entry = storectx::install_async(shared.write());
    CHECK(entry && !entry.is_noop() && entry.installed());
    CHECK(!lock_is_free_elsewhere(shared));
    storectx::InstallGuard noop = storectx::install(e3.id, &e3);
    CHECK(noop && noop.is_noop() && !noop.installed());
    CHECK(storectx::depth() == 1);
    noop.uninstall();  // explicit: OK, nothing popped
    CHECK(!noop && storectx::depth() == 1);
    storectx::InstallGuard noop2 = storectx::install(e3.id, &e3);
    CHECK(noop2.is_noop());
    /* get_current_async hands out the entry's async store. */
    storectx::CurrentAsync cur = storectx::get_current_async(e3.id);
    CHECK(cur.async_store && cur.async_store.id() == e3.id);
    CHECK(cur.borrow.as<Engine>() == &e3);
    CHECK_THROWS(cur.borrow.clone(), STORECTX_ERR_NOT_SYNC);
  }  // cur, noop2 (a no-op), entry (unlocks): in that order
  CHECK(storectx::is_empty());
  CHECK(lock_is_free_elsewhere(shared));
  CHECK(g_release_failures.load() == 0);
}

/* ---- unwinding on exception -------------------------------------------- */

struct GuestTrap : std::runtime_error {
  GuestTrap() : std::runtime_error("guest trapped") {}
};

struct World {
  Engine sync1, sync3;
  Engine async2_engine;
  storectx::AsyncStore async2{async2_engine.id, &async2_engine};
};

/* Three levels of calls, each owning guards; the innermost throws. */
void level3(World &w, bool library_error) {
  storectx::InstallGuard call = storectx::install(w.sync3.id, &w.sync3);
  storectx::Borrow b = storectx::get_current(w.sync3.id);
  storectx::Borrow b2 = b.clone();
  storectx::PauseGuard p = storectx::pause(w.sync3.id);
  storectx::InstallGuard reentry = storectx::install(w.sync3.id, &w.sync3);
  CHECK(storectx::depth() == 4);
  CHECK(!lock_is_free_elsewhere(w.async2));
  if (library_error) {
    /* The library's own Error unwinds the same way. */
    (void)storectx::get_current(w.sync1.id);  // paused: throws
    FAIL("get_current of a paused store returned");
  }
  throw GuestTrap();
}

void level2(World &w, bool library_error) {
  storectx::InstallGuard call = storectx::install_async(w.async2.write());
  storectx::CurrentAsync cur = storectx::get_current_async(w.async2_engine.id);
  CHECK(cur.borrow.as<Engine>() == &w.async2_engine);
  storectx::PauseGuard p = storectx::pause(w.async2_engine.id);
  level3(w, library_error);
}

void level1(World &w, bool library_error) {
  storectx::InstallGuard call = storectx::install(w.sync1.id, &w.sync1);
  storectx::Borrow b = storectx::get_current(w.sync1.id);
  storectx::PauseGuard p = storectx::pause(w.sync1.id);
  level2(w, library_error);
}

void test_unwinding() {
  World w;
  bool caught = false;
  try {
    level1(w, false);
  } catch (const GuestTrap &) {
    caught = true;
  }
  CHECK(caught);
  CHECK(storectx::is_empty() && storectx::depth() == 0);
  CHECK(lock_is_free_elsewhere(w.async2));
  CHECK(g_release_failures.load() == 0);

  caught = false;
  try {
    level1(w, true);
  } catch (const storectx::Error &e) {
    caught = true;
    CHECK(e.status() == STORECTX_ERR_PAUSED);
  }
  CHECK(caught);
  CHECK(storectx::is_empty());
  CHECK(lock_is_free_elsewhere(w.async2));
  CHECK(g_release_failures.load() == 0);

  /* The stack is usable again: same stores, same thread. */
  storectx::InstallGuard call = storectx::install(w.sync1.id, &w.sync1);
  storectx::InstallGuard entry = storectx::install_async(w.async2.write());
  CHECK(storectx::depth() == 2);
}

/* ---- storectx::Error ---------------------------------------------------- */

void test_errors() {
  Engine e1, e2;
  CHECK(storectx::is_empty());

  /* Status, message and what(). */
  try {
    (void)storectx::get_current(e1.id);
    FAIL("get_current on an empty stack returned");
  } catch (const storectx::Error &e) {
    CHECK(e.status() == STORECTX_ERR_NO_CONTEXT);
    CHECK(starts_with(e.message(), "get_current"));
    std::string what = e.what();
    CHECK(what.find(e.message()) != std::string::npos);
    CHECK(what.find(storectx_status_str(STORECTX_ERR_NO_CONTEXT)) != std::string::npos);
    CHECK(std::strcmp(e.status_str(), storectx_status_str(e.status())) == 0);
  }
  /* Catchable as std::runtime_error. */
  bool caught = false;
  try {
    (void)storectx::install(0, &e1);
  } catch (const std::runtime_error &e) {
    caught = std::strstr(e.what(), "install") != nullptr;
  }
  CHECK(caught);
  CHECK_THROWS(storectx::install(e1.id, nullptr), STORECTX_ERR_NULL_ARGUMENT);
  CHECK_THROWS(storectx::install(0, &e1), STORECTX_ERR_INVALID_ARGUMENT);
  CHECK_THROWS(storectx::pause(e1.id), STORECTX_ERR_NO_CONTEXT);
  CHECK_THROWS(storectx::get_current_unborrowed(), STORECTX_ERR_NO_CONTEXT);
  CHECK_THROWS(storectx::AsyncStore(0, &e1), STORECTX_ERR_INVALID_ARGUMENT);
  CHECK_THROWS(storectx::suspend(1), STORECTX_ERR_INVALID_ARGUMENT);
  CHECK_THROWS(storectx::resume(storectx::Suspended()), STORECTX_ERR_NULL_ARGUMENT);
  CHECK(storectx::is_empty());

  /* A refused explicit uninstall throws and keeps the guard. */
  {
    storectx::InstallGuard g1 = storectx::install(e1.id, &e1);
    storectx::InstallGuard g2 = storectx::install(e2.id, &e2);
    CHECK_THROWS(g1.uninstall(), STORECTX_ERR_OUT_OF_ORDER);
    CHECK(starts_with(storectx::last_error(), "uninstall"));
    CHECK(g1 && storectx::depth() == 2);
    storectx::Borrow b = storectx::get_current(e2.id);
    CHECK_THROWS(g2.uninstall(), STORECTX_ERR_STILL_BORROWED);
    CHECK(g2);
    CHECK_THROWS(storectx::get_current_unborrowed(), STORECTX_ERR_BORROWED);
    b.release();
    CHECK(!b);
    storectx::Borrow u = storectx::get_current_unborrowed();
    CHECK(u.store_id() == e2.id && u.get() == &e2);
    u.release();
    g2.uninstall();
    g1.uninstall();
    CHECK(!g1 && !g2 && storectx::is_empty());
  }

  /* install_async consumes the write guard only on success. */
  Engine e3;
  storectx::AsyncStore shared(e3.id, &e3);
  {
    storectx::InstallGuard sync_same_id = storectx::install(e3.id, &e3);
    storectx::WriteGuard w = shared.write();
    CHECK(w.as<Engine>() == &e3);
    CHECK_THROWS(storectx::install_async(std::move(w)), STORECTX_ERR_ALREADY_ON_STACK);
    CHECK(w && w.store() == &e3);  // still ours, still locked
    CHECK(!lock_is_free_elsewhere(shared));
    sync_same_id.uninstall();
    storectx::InstallGuard entry = storectx::install_async(std::move(w));
    CHECK(!w && entry.installed());
    /* This thread's own stack holds the lock. */
    CHECK_THROWS(shared.write(), STORECTX_ERR_WOULD_DEADLOCK);
    CHECK_THROWS(shared.write_for(std::chrono::milliseconds(1)),
                 STORECTX_ERR_WOULD_DEADLOCK);
  }
  {
    /* Held outside the stack: BUSY and TIMED_OUT are answers, not errors. */
    storectx::WriteGuard w = shared.write();
    CHECK(!shared.try_write().has_value());
    CHECK(!shared.write_for(std::chrono::milliseconds(1)).has_value());
    /* A zero or negative timeout tries once (storectx.hpp says so). */
    CHECK(!shared.write_for(std::chrono::nanoseconds(0)).has_value());
    CHECK(!shared.write_for(std::chrono::seconds(-5)).has_value());
    w.unlock();
    CHECK(!w);
    std::optional<storectx::WriteGuard> again = shared.try_write();
    CHECK(again.has_value() && again->store() == &e3);
    again.reset();
    std::optional<storectx::WriteGuard> once = shared.write_for(std::chrono::seconds(-5));
    CHECK(once.has_value() && once->store() == &e3);
  }
  /* An empty AsyncStore answers NULL_ARGUMENT. */
  storectx::AsyncStore empty;
  CHECK(!empty && empty.id() == 0);
  CHECK_THROWS(empty.try_write(), STORECTX_ERR_NULL_ARGUMENT);
  CHECK(storectx::is_empty());
  CHECK(g_release_failures.load() == 0);
}

/* ---- destructors report, never throw ------------------------------------ */

void test_release_failure_hook() {
  Engine e1, e2;
  const int before = g_release_failures.load();
  storectx_install_guard leaked{};
  storectx_borrow leaked_borrow{};
  {
    std::optional<storectx::InstallGuard> g1 = storectx::install(e1.id, &e1);
    storectx::InstallGuard g2 = storectx::install(e2.id, &e2);
    leaked = g1->raw();
    g1.reset();  // out of LIFO order: reported, not thrown, not terminated
    CHECK(g_release_failures.load() == before + 1);
    CHECK(g_last_failure_status.load() == STORECTX_ERR_OUT_OF_ORDER);
    CHECK(storectx::depth() == 2);
  }
  /* The failed release left the entry in place; the C handle still ends it. */
  CHECK(storectx::depth() == 1);
  CHECK_OK(storectx_uninstall(leaked));
  CHECK(storectx::is_empty());

  /* A throwing scope whose guard fails to release still unwinds normally. */
  bool caught = false;
  try {
    storectx::InstallGuard g1 = storectx::install(e1.id, &e1);
    storectx::Borrow b = storectx::get_current(e1.id);
    leaked = g1.raw();
    storectx::InstallGuard moved = std::move(g1);
    storectx::Borrow kept = std::move(b);
    leaked_borrow = kept.detach();  // never released: uninstall will refuse
    throw GuestTrap();
  } catch (const GuestTrap &) {
    caught = true;
  }
  CHECK(caught);
  CHECK(g_release_failures.load() == before + 2);
  CHECK(g_last_failure_status.load() == STORECTX_ERR_STILL_BORROWED);
  CHECK(storectx::depth() == 1);
  CHECK_OK(storectx_borrow_release(leaked_borrow));
  CHECK_OK(storectx_uninstall(leaked));
  CHECK(storectx::is_empty());

  /* A no-op guard is LIFO too: it outlived the async entry it stands for. */
  Engine e3;
  storectx::AsyncStore shared(e3.id, &e3);
  std::optional<storectx::InstallGuard> noop;
  {
    storectx::InstallGuard entry = storectx::install_async(shared.write());
    noop = storectx::install(e3.id, &e3);
    CHECK(noop->is_noop() && storectx::depth() == 1);
  }  // entry uninstalled (unlocked) while the no-op guard lives on
  CHECK(storectx::is_empty() && lock_is_free_elsewhere(shared));
  noop.reset();
  CHECK(g_release_failures.load() == before + 3);
  CHECK(g_last_failure_status.load() == STORECTX_ERR_STALE_HANDLE);
  CHECK(storectx::is_empty());

  /* The setter returns the previous handler; nullptr restores the default. */
  storectx::ReleaseFailureHandler mine = storectx::set_release_failure_handler(nullptr);
  CHECK(mine == &count_release_failure);
  CHECK(storectx::set_release_failure_handler(mine) == &storectx::print_release_failure);
}

/* ---- a coroutine migrating across std::threads ------------------------- */

/* A stackless coroutine: its frame is on the heap and owns its guards, as a
 * C++20 coroutine frame or an engine's fiber record would. It starts on one
 * thread, yields, is resumed on a second, yields again, finishes on a third. */
struct Coroutine {
  Engine sync_engine, async_engine;
  storectx::AsyncStore async_store{async_engine.id, &async_engine};
  std::size_t base = 0;
  storectx::InstallGuard sync_call, async_call;
  storectx::Borrow sync_borrow, async_borrow;
  storectx::PauseGuard async_pause;

  storectx::Suspended start() {
    base = storectx::depth();
    sync_call = storectx::install(sync_engine.id, &sync_engine);
    sync_borrow = storectx::get_current(sync_engine.id);
    async_call = storectx::install_async(async_store.write());
    async_borrow = storectx::get_current(async_engine.id);
    async_pause = storectx::pause(async_engine.id);
    CHECK(storectx::depth() == base + 2);
    return storectx::suspend(base);  // yield
  }

  storectx::Suspended middle(storectx::Suspended &&yielded) {
    base = storectx::resume(std::move(yielded));
    CHECK(!yielded);
    CHECK(storectx::depth() == base + 2);
    CHECK(storectx::is_active(async_engine.id) && storectx::is_paused(sync_engine.id));
    CHECK(sync_call.installed() && async_call.installed());
    CHECK(storectx::get_current_transient<Engine>(async_engine.id) == &async_engine);
    async_pause.unpause();   // handles made on the first thread
    async_borrow.release();
    storectx::Borrow here = storectx::get_current(async_engine.id);
    here.as<Engine>()->calls++;
    here.release();
    return storectx::suspend(base);  // yield again
  }

  void finish(storectx::Suspended &&yielded) {
    base = storectx::resume(std::move(yielded));
    CHECK(storectx::describe().find("store " + std::to_string(async_engine.id)) !=
          std::string::npos);
    async_call.uninstall();  // unlocks, on this thread
    storectx::Borrow here = storectx::get_current(sync_engine.id);
    here.as<Engine>()->calls++;
    here.release();
    sync_borrow.release();
    sync_call.uninstall();
    CHECK(storectx::depth() == base);
  }
};

void test_coroutine_migration() {
  Engine host_a;
  auto co = std::make_unique<Coroutine>();

  /* Thread A (this one) runs it on top of its own host entry. */
  storectx::InstallGuard host = storectx::install(host_a.id, &host_a);
  storectx::Suspended yielded = co->start();
  CHECK(yielded.len() == 2);
  CHECK(storectx::depth() == 1 && storectx::is_active(host_a.id));
  CHECK(!co->sync_call.installed());          // not on this thread any more
  CHECK(!lock_is_free_elsewhere(co->async_store));  // the segment holds it

  /* Thread B: new to the library; refuses while a store is already there. */
  std::thread b([&co, seg = std::move(yielded)]() mutable {
    CHECK(storectx::is_empty());
    {
      storectx::InstallGuard clash = storectx::install(co->sync_engine.id, &co->sync_engine);
      CHECK_THROWS(storectx::resume(std::move(seg)), STORECTX_ERR_ALREADY_ON_STACK);
      CHECK(seg && seg.len() == 2);  // not consumed
    }
    storectx::Suspended again = co->middle(std::move(seg));
    CHECK(storectx::is_empty() && again.len() == 2);
    /* Thread C: resumes on top of its own host entry. */
    std::thread c([&co, seg2 = std::move(again)]() mutable {
      Engine host;
      storectx::InstallGuard host_call = storectx::install(host.id, &host);
      co->finish(std::move(seg2));
      CHECK(storectx::depth() == 1 && storectx::is_active(host.id));
    });
    c.join();
  });
  b.join();

  CHECK(co->async_engine.calls == 1 && co->sync_engine.calls == 1);
  CHECK(lock_is_free_elsewhere(co->async_store));
  CHECK(storectx::depth() == 1 && storectx::is_active(host_a.id));
  host.uninstall();

  /* The wasmer-style flow: uninstall (unlock) on yield, lock + install again
   * on whatever thread polls next. */
  Engine polled;
  storectx::AsyncStore shared(polled.id, &polled);
  {
    storectx::InstallGuard entry = storectx::install_async(shared.write());
    (void)storectx::get_current_transient(polled.id);
  }  // yield
  CHECK(lock_is_free_elsewhere(shared));
  std::thread([shared]() mutable {
    storectx::InstallGuard entry = storectx::install_async(shared.write());
    storectx::Borrow b = storectx::get_current(shared.id());
    b.as<Engine>()->calls++;
  }).join();
  CHECK(polled.calls == 1);

  /* A cancelled coroutine: freeing the segment unlocks; the frame's handles
   * are stale, so their destructors report through the hook. */
  const int before = g_release_failures.load();
  {
    auto cancelled = std::make_unique<Coroutine>();
    storectx::Suspended seg = cancelled->start();
    CHECK(!lock_is_free_elsewhere(cancelled->async_store));
    std::thread([s = std::move(seg)]() mutable { s.cancel(); }).join();
    CHECK(lock_is_free_elsewhere(cancelled->async_store));
  }  // 5 stale handles: pause, 2 borrows, 2 installs
  CHECK(g_release_failures.load() == before + 5);
  CHECK(g_last_failure_status.load() == STORECTX_ERR_STALE_HANDLE);
  CHECK(storectx::is_empty());
}

}  // namespace

int main() {
  CHECK(std::strcmp(storectx::version(), storectx_version()) == 0);
  storectx::set_release_failure_handler(&count_release_failure);

  test_nested_calls();
  test_unwinding();
  CHECK(storectx::is_empty());
  test_errors();
  test_release_failure_hook();
  test_coroutine_migration();

  CHECK(storectx::is_empty());
  return 0;
}
