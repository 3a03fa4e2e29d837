/* header_alone.c: storectx.h compiles on its own as C (no other include before
 * it) and twice (include guard), and its declarations link. */
#include "storectx.h"
#include "storectx.h"

int main(void) {
  const char *v = storectx_version();
  return (v != NULL && v[0] != '\0') ? 0 : 1;
}
