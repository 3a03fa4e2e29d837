/* context_reused_after_teardown.cpp: a TaskContext that outlives one
 * coroutine destroyed mid-await (a session's context, passed by reference
 * to each request's coroutine) is used again by the next request; when the
 * session ends, ~TaskContext must not sweep the entries the thread pushed
 * since. Before the fix the teardown mark stayed set: ~TaskContext detached
 * and freed the caller's own entry above the old teardown base, and the
 * caller's uninstall threw STALE_HANDLE (terminate). */
#include "coro_support.hpp"

#include <memory>

namespace {

struct Engine {
  storectx::StoreId id = storectx::new_store_id();
};

Engine request_store, caller_store, locked;
storectx::AsyncStore shared(locked.id, &locked);
support::Parking parked;

/* One request of the session: an async and a sync entry across a carry. */
support::Fire request(storectx::TaskContext &session) {
  storectx::InstallGuard a = storectx::install_async(shared.write());
  storectx::InstallGuard b = storectx::install(request_store.id, &request_store);
  co_await storectx::carry(session, support::Park{&parked});
  b.uninstall();
  a.uninstall();
}

}  // namespace

int main() {
  support::count_release_failures();
  auto session = std::make_unique<storectx::TaskContext>();

  request(*session);
  support::wait_parked(parked).destroy();  // dropped mid-await: its guards unwind here
  CHECK(storectx::is_empty());
  CHECK(shared.try_write().has_value());

  request(*session);  // the next request, with the same context
  support::wait_parked(parked).resume();
  CHECK(storectx::is_empty());

  storectx::InstallGuard mine = storectx::install(caller_store.id, &caller_store);
  session.reset();  // the session ends while the caller's entry is installed
  CHECK(storectx::depth() == 1);
  CHECK(storectx::is_active(caller_store.id));
  mine.uninstall();

  CHECK(support::release_failures.load() == 0);
  CHECK(storectx::is_empty());
  CHECK(shared.try_write().has_value());
  std::printf("a context reused after a teardown sweeps nothing of the caller's\n");
  return 0;
}
