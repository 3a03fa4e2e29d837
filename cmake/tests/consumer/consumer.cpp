// consumer.cpp: a C++17 program built against an installed libstorectx runs:
// the C header works from C++, each std::thread has its own stack of stores,
// and, when the prefix also has storectx.hpp, that header compiles in an
// outside project and its error type is a std::runtime_error.
#include <storectx.h>

#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <thread>
#include <type_traits>

#if __has_include(<storectx.hpp>)
#include <storectx.hpp>
static_assert(std::is_base_of_v<std::runtime_error, storectx::Error>,
              "storectx::Error must derive from std::runtime_error");
static_assert(!std::is_copy_constructible_v<storectx::InstallGuard>,
              "storectx::InstallGuard must be move-only");
static_assert(std::is_move_constructible_v<storectx::InstallGuard>,
              "storectx::InstallGuard must be movable");
static constexpr bool have_hpp = true;
#else
static constexpr bool have_hpp = false;
#endif

#define EXPECT(cond)                                                      \
  do {                                                                    \
    if (!(cond)) {                                                        \
      std::fprintf(stderr, "%s:%d: failed: %s\n  last_error: %s\n",       \
                   __FILE__, __LINE__, #cond, storectx_last_error());     \
      return 1;                                                           \
    }                                                                     \
  } while (0)

int main() {
#ifdef STORECTX_EXPECTED_VERSION
  EXPECT(std::strcmp(storectx_version(), STORECTX_EXPECTED_VERSION) == 0);
#endif
  int store = 7;
  const storectx_store_id id = storectx_store_id_new();
  storectx_install_guard guard{};
  EXPECT(storectx_install(id, &store, &guard) == STORECTX_OK);

  // Another thread starts with an empty stack of its own.
  bool other_empty = false;
  storectx_status other_get = STORECTX_OK;
  std::thread other([&] {
    other_empty = storectx_is_empty();
    void *got = nullptr;
    other_get = storectx_get_current_transient(id, &got);
  });
  other.join();
  EXPECT(other_empty);
  EXPECT(other_get == STORECTX_ERR_NO_CONTEXT);

  void *got = nullptr;
  EXPECT(storectx_get_current_transient(id, &got) == STORECTX_OK);
  EXPECT(got == &store);
  EXPECT(storectx_uninstall(guard) == STORECTX_OK);
  EXPECT(storectx_uninstall(guard) == STORECTX_ERR_STALE_HANDLE);
  EXPECT(storectx_is_empty());

  std::printf("consumer (C++%s): libstorectx %s OK\n",
              have_hpp ? ", storectx.hpp" : ", C API only", storectx_version());
  return 0;
}
