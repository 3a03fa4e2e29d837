/* Behaviour: an install guard of a sync entry with its kind bits changed to
 * the no-op guard's is no guard at all (issue 10, hole 1, the input;
 * SPEC: "a no-op install guard names an async entry, and only that").
 * Install a sync store (guard g), forged.raw = (g.raw & ~7) | 2:
 * uninstall(forged) answers STALE_HANDLE with the entry on top (it answered
 * OK, popping nothing) and with the entry one level below the top (it
 * answered OUT_OF_ORDER); the stack is unchanged and g still works. The
 * genuine no-op guard of an async entry on top still answers OK. The
 * exhaustive version is forged_handles_every_kind.c. */
#include <stdint.h>
#include <unistd.h>

#include "check.h"

#ifdef _WIN32 /* no alarm(): the harness's timeout bounds the run there */
#define alarm(seconds) ((void)(seconds))
#endif

static int store1, store2, store3;

static void describe_into(char *out, size_t len) { CHECK(storectx_describe(out, len) < len); }

static void refused_stale(storectx_install_guard forged) {
  char before[1024], after[1024];
  describe_into(before, sizeof before);
  CHECK_STATUS(storectx_uninstall(forged), STORECTX_ERR_STALE_HANDLE);
  CHECK(!storectx_install_guard_installed(forged));
  describe_into(after, sizeof after);
  CHECK(strcmp(before, after) == 0);
}

int main(void) {
  alarm(30);
  storectx_store_id s1 = storectx_store_id_new(), s2 = storectx_store_id_new();
  storectx_install_guard g1, g2;
  CHECK_OK(storectx_install(s1, &store1, &g1));
  storectx_install_guard forged = {(g1.raw & ~UINT64_C(7)) | 2};
  CHECK(forged.raw != g1.raw);

  refused_stale(forged); /* entry on top */
  CHECK_OK(storectx_install(s2, &store2, &g2));
  refused_stale(forged); /* entry one level below the top */
  CHECK_OK(storectx_uninstall(g2));
  CHECK_OK(storectx_uninstall(g1));
  CHECK(storectx_is_empty());
  refused_stale(forged); /* entry gone */

  /* The real no-op guard: an install onto the async entry on top. */
  storectx_store_id s3 = storectx_store_id_new();
  storectx_async_store *a;
  storectx_write_guard *w;
  storectx_install_guard ga, noop;
  CHECK_OK(storectx_async_store_new(s3, &store3, &a));
  CHECK_OK(storectx_async_store_try_write(a, &w));
  CHECK_OK(storectx_install_async(w, &ga));
  CHECK_OK(storectx_install(s3, &store3, &noop));
  CHECK(!storectx_install_guard_installed(noop));
  CHECK_OK(storectx_uninstall(noop));
  CHECK(storectx_depth() == 1);
  CHECK_OK(storectx_uninstall(ga));
  storectx_async_store_release(a);
  CHECK(storectx_is_empty());
  printf("a sync guard with no-op kind bits is refused on top, below the top and when gone\n");
  return 0;
}
