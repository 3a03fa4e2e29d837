/* consumer.c: a C program built against an installed libstorectx (through
 * find_package or pkg-config) runs: the installed header and library agree on
 * the version, and nested installs of two stores, a borrow and an
 * out-of-order uninstall behave as the contract says. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <storectx.h>

#define EXPECT(cond)                                                         \
  do {                                                                       \
    if (!(cond)) {                                                           \
      fprintf(stderr, "%s:%d: failed: %s\n  last_error: %s\n", __FILE__,     \
              __LINE__, #cond, storectx_last_error());                       \
      return 1;                                                              \
    }                                                                        \
  } while (0)

#define STR_(x) #x
#define STR(x) STR_(x)

int main(void) {
  const char *header_version = STR(STORECTX_VERSION_MAJOR) "." STR(
      STORECTX_VERSION_MINOR) "." STR(STORECTX_VERSION_PATCH);
  EXPECT(strcmp(storectx_version(), header_version) == 0);
#ifdef STORECTX_EXPECTED_VERSION
  /* The version the build system found (CMake package / pkg-config). */
  EXPECT(strcmp(storectx_version(), STORECTX_EXPECTED_VERSION) == 0);
#endif

  int store1 = 1, store2 = 2;
  storectx_store_id id1 = storectx_store_id_new();
  storectx_store_id id2 = storectx_store_id_new();
  EXPECT(id1 != 0 && id2 != 0 && id1 != id2);
  EXPECT(storectx_is_empty());

  storectx_install_guard g1, g2;
  EXPECT(storectx_install(id1, &store1, &g1) == STORECTX_OK);
  EXPECT(storectx_install(id2, &store2, &g2) == STORECTX_OK);
  EXPECT(storectx_depth() == 2);
  EXPECT(storectx_active_store() == id2);
  EXPECT(storectx_is_paused(id1));

  void *got = NULL;
  storectx_borrow borrow;
  EXPECT(storectx_get_current(id2, &got, &borrow) == STORECTX_OK);
  EXPECT(got == &store2);
  EXPECT(storectx_get_current(id1, &got, &borrow) == STORECTX_ERR_PAUSED);
  EXPECT(storectx_last_error()[0] != '\0');
  EXPECT(storectx_status_str(STORECTX_ERR_PAUSED) != NULL);
  EXPECT(storectx_borrow_release(borrow) == STORECTX_OK);

  EXPECT(storectx_uninstall(g1) == STORECTX_ERR_OUT_OF_ORDER);
  EXPECT(storectx_uninstall(g2) == STORECTX_OK);
  EXPECT(storectx_uninstall(g1) == STORECTX_OK);
  EXPECT(storectx_is_empty());

  printf("consumer (C): libstorectx %s OK\n", storectx_version());
  return 0;
}
