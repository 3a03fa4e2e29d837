/* Behaviour: a successful call leaves the thread's last error alone, on
 * every path a success can take, whether that message was read already or
 * is still unformatted (src/error.rs `LastError`: a refusal keeps its values
 * and the text is written when read; the slow halves that either do the job
 * or record a refusal in place, such as uninstall's one slow half
 * `boundary::done_refused_or`, must write nothing when they do the job).
 * Before each success a refusal with a message of its own (naming a fresh
 * store id, so that no two are alike) is made, read at once or left unread
 * after another read; after the success
 * storectx_last_error() must give exactly that message, and a second read
 * the same pointer and text. The successes: uninstall of an async entry
 * (the slow half pops it and unlocks), of an entry with a live pause, of an
 * entry whose nested pause was undone, of the no-op guard of the async
 * entry on top, and of an async entry with a pause; a nested pause and its
 * unpause; install past the stack's capacity (growth: the full path);
 * suspend and resume, of a segment with and without an async entry; a
 * refused install followed by a succeeding one; a borrow of an async entry
 * and its release; and write guards taken, released, and the lock waited
 * for with a timeout. */
#include <stdint.h>

#include "check.h"

static int mem[4];
static char want[600];
static int steps;

/* A refusal that names a new store (NOT_INSTALLED names the id asked
 * for). `read_now`: its text is formatted by a read now; else a second
 * refusal, naming another new store, is left unread, its text known from
 * the first one's with the id replaced. */
static void refuse(int read_now) {
  storectx_store_id missing = storectx_store_id_new();
  storectx_pause_guard p;
  CHECK_STATUS(storectx_pause(missing, &p), STORECTX_ERR_NOT_INSTALLED);
  snprintf(want, sizeof want, "%s", storectx_last_error());
  CHECK(strstr(want, "pause: store ") == want);
  if (read_now) return;
  storectx_store_id other = storectx_store_id_new();
  CHECK_STATUS(storectx_pause(other, &p), STORECTX_ERR_NOT_INSTALLED);
  char old_id[32], rest[512];
  snprintf(old_id, sizeof old_id, "pause: store %llu ", (unsigned long long)missing);
  CHECK(strncmp(want, old_id, strlen(old_id)) == 0);
  snprintf(rest, sizeof rest, "%s", want + strlen(old_id));
  snprintf(want, sizeof want, "pause: store %llu %s", (unsigned long long)other, rest);
}

static void kept(const char *what) {
  const char *got = storectx_last_error();
  if (strcmp(got, want) != 0) {
    fprintf(stderr, "FAULT after %s: last_error \"%s\", was \"%s\"\n", what, got, want);
    exit(1);
  }
  CHECK(storectx_last_error() == got && strcmp(got, want) == 0);
  steps++;
}

/* Runs a successful call between a refusal and the read, both ways. */
#define KEPT(expr)            \
  do {                        \
    for (int r_ = 0; r_ < 2; r_++) { \
      refuse(r_);             \
      expr;                   \
      kept(#expr);            \
    }                         \
  } while (0)

static storectx_async_store *new_async(void) {
  storectx_async_store *as = NULL;
  CHECK_OK(storectx_async_store_new(storectx_store_id_new(), &mem[1], &as));
  return as;
}

static storectx_install_guard install_async_entry(storectx_async_store *as) {
  storectx_write_guard *w = NULL;
  storectx_install_guard g;
  CHECK_OK(storectx_async_store_try_write(as, &w));
  CHECK_OK(storectx_install_async(w, &g));
  return g;
}

int main(void) {
  storectx_install_guard base_g;
  storectx_store_id base = storectx_store_id_new();
  CHECK_OK(storectx_install(base, &mem[0], &base_g));

  for (int round = 0; round < 2; round++) {
    storectx_async_store *as = new_async();
    storectx_install_guard g, noop;
    storectx_pause_guard p, p2;
    storectx_write_guard *w = NULL;

    /* uninstall of an async entry: the slow half pops and unlocks. */
    g = install_async_entry(as);
    KEPT(CHECK_OK(storectx_uninstall(g)); g = install_async_entry(as));
    /* its no-op guard, with the async entry on top. */
    KEPT(CHECK_OK(storectx_install(storectx_async_store_id(as), &mem[2], &noop));
         CHECK_OK(storectx_uninstall(noop)));
    /* an async entry with a pause. */
    KEPT(CHECK_OK(storectx_pause(storectx_async_store_id(as), &p)); CHECK_OK(storectx_uninstall(g));
         g = install_async_entry(as));
    /* a borrow of the async entry, and its release. */
    KEPT({
      storectx_async_store *got = NULL;
      void *store = NULL;
      storectx_borrow b;
      CHECK_OK(storectx_get_current_async(storectx_async_store_id(as), &got, &store, &b));
      CHECK(store == &mem[1]);
      storectx_async_store_release(got);
      CHECK_OK(storectx_borrow_release(b));
    });
    /* suspend and resume of a segment holding the async entry. */
    KEPT({
      storectx_suspended *seg = NULL;
      size_t at = 0;
      CHECK_OK(storectx_suspend(1, &seg));
      CHECK_OK(storectx_resume(seg, &at));
      CHECK(at == 1);
    });
    CHECK_OK(storectx_uninstall(g));
    /* write guards: taken, released; the lock waited for. */
    KEPT(CHECK_OK(storectx_async_store_try_write(as, &w)); storectx_write_guard_release(w));
    KEPT(CHECK_OK(storectx_async_store_write(as, 1000000, &w)); storectx_write_guard_release(w));

    /* a sync entry with a live pause: the slow half pops it. */
    storectx_store_id s = storectx_store_id_new();
    KEPT(CHECK_OK(storectx_install(s, &mem[3], &g)); CHECK_OK(storectx_pause(s, &p));
         CHECK_OK(storectx_uninstall(g)));
    /* a nested pause and its unpause (the full paths), then the pop. */
    CHECK_OK(storectx_install(s, &mem[3], &g));
    CHECK_OK(storectx_pause(s, &p));
    KEPT(CHECK_OK(storectx_pause(s, &p2)); CHECK_OK(storectx_unpause(p2)));
    KEPT(CHECK_OK(storectx_unpause(p)); CHECK_OK(storectx_pause(s, &p)));
    CHECK_OK(storectx_unpause(p));
    KEPT(CHECK_OK(storectx_pause(s, &p)); CHECK_OK(storectx_pause(s, &p2)); CHECK_OK(storectx_unpause(p2));
         CHECK_OK(storectx_uninstall(g)); CHECK_OK(storectx_install(s, &mem[3], &g)));
    CHECK_OK(storectx_uninstall(g));
    /* a refused install, then one that succeeds. */
    CHECK_OK(storectx_install(s, &mem[3], &g));
    KEPT(CHECK_STATUS(storectx_install(s, &mem[2], &noop), STORECTX_ERR_ADDRESS_MISMATCH);
         refuse(1); CHECK_OK(storectx_install(s, &mem[3], &noop)); CHECK_OK(storectx_uninstall(noop)));
    CHECK_OK(storectx_uninstall(g));
    /* suspend and resume of sync entries only, and of none. */
    KEPT({
      storectx_suspended *seg = NULL;
      size_t at = 0;
      CHECK_OK(storectx_install(s, &mem[3], &g));
      CHECK_OK(storectx_suspend(0, &seg));
      CHECK_OK(storectx_resume(seg, &at));
      CHECK(at == 0);
      CHECK_OK(storectx_suspend(storectx_depth(), &seg));
      CHECK_OK(storectx_resume(seg, &at));
      CHECK_OK(storectx_uninstall(g));
    });
    /* installs past the stack's capacity (growth), and back. */
    static storectx_install_guard deep[300];
    KEPT({
      for (int i = 0; i < 300; i++)
        CHECK_OK(storectx_install(storectx_store_id_new(), &mem[0], &deep[i]));
      for (int i = 299; i >= 0; i--) CHECK_OK(storectx_uninstall(deep[i]));
    });
    storectx_async_store_release(as);
  }
  CHECK_OK(storectx_uninstall(base_g));
  CHECK(storectx_is_empty());
  printf("%d successes, the last error kept across each\n", steps);
  return 0;
}
