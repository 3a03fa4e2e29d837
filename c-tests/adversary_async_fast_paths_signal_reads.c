/* Behaviour: the documented signal-handler rule (docs/threading.md: the
 * read-only calls, in a handler that does not interrupt a libstorectx call
 * on the same thread) holds around the async path's fast halves. Thread X
 * runs try_write + install_async + uninstall + release cycles with the
 * signal blocked around each call (so a handler never interrupts one) and
 * unblocked between them; a timer thread sends it SIGUSR1 thousands of
 * times. The handler reads X's stack (depth, active store, is_active,
 * is_paused, is_empty, describe into its buffer) and must see it between
 * calls, whole: either just X's base sync entry, or that plus the async
 * entry on top. It also reads storectx_write_guard_store of the guard
 * thread Y is passing through its own fast halves at that moment (no
 * per-thread state, no allocation, no lock): Y's store's address or NULL,
 * never another store's. */
/* cprog: skip on=windows no POSIX signals there */
/* cprog: timeout 120 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include "check.h"

static int mem_base, mem_x, mem_y;
static storectx_store_id base_id, x_id;
static storectx_async_store *xs, *ys;
static _Atomic(storectx_write_guard *) y_guard;
static atomic_int stop, handled, faults;
static pthread_t x_thread;

static void handler(int sig) {
  (void)sig;
  size_t depth = storectx_depth();
  storectx_store_id top = storectx_active_store();
  int ok = (depth == 1 && top == base_id) || (depth == 2 && top == x_id);
  ok = ok && storectx_is_active(top) && !storectx_is_empty();
  ok = ok && (depth == 1 || storectx_is_paused(base_id));
  char buf[256];
  size_t need = storectx_describe(buf, sizeof buf);
  ok = ok && need > 0 && need < sizeof buf && strlen(buf) == need;
  void *addr = storectx_write_guard_store(atomic_load(&y_guard));
  ok = ok && (addr == NULL || addr == &mem_y);
  if (!ok) atomic_fetch_add(&faults, 1);
  atomic_fetch_add(&handled, 1);
}

static void *x_main(void *arg) {
  (void)arg;
  sigset_t usr1;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  CHECK(pthread_sigmask(SIG_BLOCK, &usr1, NULL) == 0);
  storectx_install_guard base;
  CHECK_OK(storectx_install(base_id, &mem_base, &base));
  storectx_write_guard *g;
  storectx_install_guard ig;
  int installed = 0, holding = 0;
  for (unsigned i = 0; !atomic_load(&stop); i++) {
    switch (i % 4) {
      case 0:
        CHECK_OK(storectx_async_store_try_write(xs, &g));
        holding = 1;
        break;
      case 1:
        CHECK_OK(storectx_install_async(g, &ig));
        installed = 1;
        holding = 0;
        break;
      case 2:
        CHECK_OK(storectx_uninstall(ig));
        installed = 0;
        break;
      case 3:
        CHECK_OK(storectx_async_store_try_write(xs, &g));
        storectx_write_guard_release(g);
        break;
    }
    /* Between calls: a pending signal is handled here. */
    CHECK(pthread_sigmask(SIG_UNBLOCK, &usr1, NULL) == 0);
    CHECK(pthread_sigmask(SIG_BLOCK, &usr1, NULL) == 0);
  }
  if (holding) storectx_write_guard_release(g); /* taken, not installed */
  if (installed) CHECK_OK(storectx_uninstall(ig));
  CHECK_OK(storectx_uninstall(base));
  return NULL;
}

static void *y_main(void *arg) {
  (void)arg;
  storectx_install_guard prime;
  CHECK_OK(storectx_install(storectx_store_id_new(), &mem_y, &prime));
  CHECK_OK(storectx_uninstall(prime));
  while (!atomic_load(&stop)) {
    storectx_write_guard *g;
    storectx_install_guard ig;
    CHECK_OK(storectx_async_store_try_write(ys, &g));
    atomic_store(&y_guard, g);
    CHECK_OK(storectx_install_async(g, &ig));
    CHECK_OK(storectx_uninstall(ig));
    CHECK_OK(storectx_async_store_try_write(ys, &g));
    atomic_store(&y_guard, g);
    storectx_write_guard_release(g);
  }
  return NULL;
}

int main(void) {
  const char *e = getenv("STRESS_SCALE");
  double scale = e && *e ? strtod(e, NULL) : 1.0;
  int signals = scale > 1.0 ? (int)(20000 / scale) : 20000;
  base_id = storectx_store_id_new();
  x_id = storectx_store_id_new();
  CHECK_OK(storectx_async_store_new(x_id, &mem_x, &xs));
  CHECK_OK(storectx_async_store_new(storectx_store_id_new(), &mem_y, &ys));
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = handler;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  CHECK(sigaction(SIGUSR1, &sa, NULL) == 0);
  /* Main never takes the signal: only X unblocks it. */
  sigset_t usr1;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  CHECK(pthread_sigmask(SIG_BLOCK, &usr1, NULL) == 0);
  pthread_t y;
  CHECK(pthread_create(&x_thread, NULL, x_main, NULL) == 0);
  CHECK(pthread_create(&y, NULL, y_main, NULL) == 0);
  for (int i = 0; i < signals; i++) {
    CHECK(pthread_kill(x_thread, SIGUSR1) == 0);
    if (i % 64 == 0) {
      struct timespec ts = {0, 100000};
      nanosleep(&ts, NULL);
    }
  }
  while (atomic_load(&handled) == 0) {
    struct timespec ts = {0, 1000000};
    nanosleep(&ts, NULL);
  }
  atomic_store(&stop, 1);
  CHECK(pthread_join(x_thread, NULL) == 0);
  CHECK(pthread_join(y, NULL) == 0);
  if (atomic_load(&faults) != 0) {
    fprintf(stderr, "FAULT: %d of %d handler reads saw a torn stack or a wrong guard\n",
            atomic_load(&faults), atomic_load(&handled));
    return 1;
  }
  storectx_write_guard *g;
  CHECK_OK(storectx_async_store_try_write(xs, &g));
  storectx_write_guard_release(g);
  CHECK_OK(storectx_async_store_try_write(ys, &g));
  storectx_write_guard_release(g);
  storectx_async_store_release(xs);
  storectx_async_store_release(ys);
  printf("adversary_async_fast_paths_signal_reads: %d handler runs\n", atomic_load(&handled));
  return 0;
}
