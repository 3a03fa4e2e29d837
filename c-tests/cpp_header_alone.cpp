/* cpp_header_alone.cpp: storectx.hpp compiles on its own as C++17 (no other
 * include before it) and twice (include guard), and storectx.h after it is a
 * no-op; the C declarations link from C++ (extern "C"). */
/* cprog: skip on=musl Debian's musl-tools has no C++ compiler (musl-gcc wraps gcc for C only); the C programs cover musl */
#include "storectx.hpp"
#include "storectx.hpp"
#include "storectx.h"

int main() {
  const char *v = storectx_version();
  return (v != nullptr && v[0] != '\0' && v == std::string(storectx::version())) ? 0 : 1;
}
