/* readme_example.c: the example in README.md and docs/getting-started.md, a whole program verbatim
 * between the markers (tests/readme_snippets.rs checks they stay identical);
 * what it leaves behind is checked at exit, outside the README's lines. */
#include <stdlib.h>
#include <unistd.h>
#include "storectx.h"

/* Runs after the README's main returns: the stack it used is empty again. */
static void check_left_empty(void) {
  void *p;
  if (!storectx_is_empty() ||
      storectx_get_current_transient(1, &p) != STORECTX_ERR_NO_CONTEXT)
    _exit(1);
}

__attribute__((constructor)) static void register_check(void) { atexit(check_left_empty); }

/* README example begins */
#include <stdio.h>
#include "storectx.h"

typedef struct { const char *name; } Store;

static void host_import(storectx_store_id id) {   /* deep in a call chain */
  void *store; storectx_borrow b;
  if (storectx_get_current(id, &store, &b) != STORECTX_OK) {
    printf("refused: %s\n", storectx_last_error());
    return;
  }
  printf("import runs on %s\n", ((Store *)store)->name);
  storectx_borrow_release(b);
}

int main(void) {
  Store s1 = {"store1"}, s2 = {"store2"};
  storectx_store_id id1 = storectx_store_id_new(), id2 = storectx_store_id_new();
  storectx_install_guard g1, g2;
  storectx_install(id1, &s1, &g1);          /* call(store1, f1) */
  storectx_install(id2, &s2, &g2);          /*   -> import -> call(store2, f2) */
  host_import(id2);                         /* "import runs on store2" */
  host_import(id1);                         /* refused: store1 is paused */
  storectx_uninstall(g2);
  storectx_uninstall(g1);
  return 0;
}
/* README example ends */
