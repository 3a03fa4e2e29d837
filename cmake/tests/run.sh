#!/usr/bin/env bash
# Packaging test: install libstorectx into a fresh temporary prefix with the
# cmake/ install project, move the prefix (it must be relocatable), then build
# and run outside consumers against it:
#   1. find_package + storectx::storectx        (C and C++, NEEDED libstorectx.so.0)
#   2. find_package + storectx::storectx_static (C and C++, no libstorectx.so at all)
#   3. find_package(storectx 1.0) refused cleanly, 0.1 accepted
#   4. cc $(pkg-config --cflags --libs storectx)           (shared)
#   5. cc -static $(pkg-config --cflags --libs --static storectx)
# Run from anywhere: cmake/tests/run.sh. Exits non-zero on the first failure.
# STORECTX_CARGO_TARGET_DIR overrides cargo's target dir (default: <repo>/target);
# STORECTX_KEEP_TMP=1 keeps the temporary directory for inspection.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
tests="$repo/cmake/tests"

step() { printf '\n=== %s\n' "$*"; }
ok() { printf 'ok: %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }

# --- tools -------------------------------------------------------------------
missing=()
command -v cmake >/dev/null || missing+=(cmake)
command -v pkg-config >/dev/null || missing+=(pkg-config)
command -v c++ >/dev/null || missing+=(g++)
command -v cc >/dev/null || missing+=(gcc)
command -v readelf >/dev/null || missing+=(binutils)
if ((${#missing[@]})); then
  step "apt-get install ${missing[*]}"
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/storectx-pkg.XXXXXX")
if [ "${STORECTX_KEEP_TMP:-0}" = 1 ]; then
  trap 'echo "kept $work"' EXIT
else
  trap 'rm -rf "$work"' EXIT
fi
# Nothing may find the library except through the installed prefix.
unset LD_LIBRARY_PATH PKG_CONFIG_PATH CMAKE_PREFIX_PATH
jobs=$(nproc 2>/dev/null || echo 2)

needed() { readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'; }
expect_needs_shared() {
  grep -qx 'libstorectx.so.0' <<<"$(needed "$1")" || fail "$1 does not have NEEDED libstorectx.so.0"
  local loaded
  loaded=$(ldd "$1" | sed -n 's/^\s*libstorectx\.so\.0 => \(.*\) (0x.*/\1/p')
  [ -n "$loaded" ] && [ "$(readlink -f "$loaded")" = "$(readlink -f "$prefix/lib/libstorectx.so.0")" ] ||
    fail "$1 does not load libstorectx from $prefix/lib: $(ldd "$1" | grep storectx || true)"
  ok "$(basename "$1"): NEEDED libstorectx.so.0, resolved in the prefix"
}
expect_no_shared() {
  if grep -q storectx <<<"$(needed "$1")"; then fail "$1 depends on $(needed "$1")"; fi
  grep -q ' T storectx_version$' <<<"$(nm "$1")" || fail "$1 does not contain storectx_version"
  ok "$(basename "$1"): libstorectx linked in, no libstorectx.so dependency"
}

# --- 0. install --------------------------------------------------------------
step "install (cmake/CMakeLists.txt: cargo build --release + cmake --install)"
cd "$repo"
prefix="$work/staging-prefix"
build="$work/build-install"
extra=()
[ -n "${STORECTX_CARGO_TARGET_DIR:-}" ] && extra+=("-DSTORECTX_CARGO_TARGET_DIR=$STORECTX_CARGO_TARGET_DIR")
cmake -S cmake -B "$build" -DCMAKE_INSTALL_PREFIX="$prefix" "${extra[@]}"
cmake --build "$build"
cmake --install "$build"

version=$(sed -n '/^\[package\]/,/^\[/{s/^version *= *"\([^"]*\)".*/\1/p}' Cargo.toml)
version=${version%%$'\n'*}
[ -n "$version" ] || fail "no version in Cargo.toml"
major=${version%%.*}

# Relocatability: every consumer below uses the moved prefix.
mv "$prefix" "$work/prefix"
prefix="$work/prefix"
ok "installed storectx $version, then moved the prefix to $prefix"

step "installed layout"
for f in "lib/libstorectx.so.$version" lib/libstorectx.a include/storectx.h \
         lib/cmake/storectx/storectxConfig.cmake lib/cmake/storectx/storectxConfigVersion.cmake \
         lib/pkgconfig/storectx.pc; do
  [ -f "$prefix/$f" ] || fail "missing $f"
  ok "$f"
done
[ "$(readlink "$prefix/lib/libstorectx.so.$major")" = "libstorectx.so.$version" ] ||
  fail "lib/libstorectx.so.$major is not a link to libstorectx.so.$version"
[ "$(readlink "$prefix/lib/libstorectx.so")" = "libstorectx.so.$major" ] ||
  fail "lib/libstorectx.so is not a link to libstorectx.so.$major"
ok "lib/libstorectx.so -> libstorectx.so.$major -> libstorectx.so.$version"
soname=$(readelf -d "$prefix/lib/libstorectx.so.$version" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = "libstorectx.so.$major" ] || fail "SONAME is '$soname', expected libstorectx.so.$major"
ok "SONAME $soname"
if [ -f "$repo/include/storectx.hpp" ]; then
  [ -f "$prefix/include/storectx.hpp" ] || fail "include/storectx.hpp not installed"
  ok "include/storectx.hpp"
else
  echo "note: include/storectx.hpp does not exist yet; not installed"
fi

# --- 1, 2. find_package consumers --------------------------------------------
for kind in shared static; do
  step "find_package(storectx 0.1) consumer, $kind"
  cbuild="$work/consumer-$kind"
  static=OFF
  [ "$kind" = static ] && static=ON
  cmake -S "$tests/consumer" -B "$cbuild" -DCMAKE_PREFIX_PATH="$prefix" -DSTORECTX_STATIC=$static
  cmake --build "$cbuild" -j "$jobs"
  ctest --test-dir "$cbuild" --output-on-failure
  for exe in consumer_c consumer_cxx; do
    if [ "$kind" = shared ]; then expect_needs_shared "$cbuild/$exe"; else expect_no_shared "$cbuild/$exe"; fi
  done
done

# --- 3. version too new ------------------------------------------------------
step "find_package(storectx 1.0) refused, find_package(storectx 0.1) accepted"
cmake -S "$tests/version_too_new" -B "$work/vtn" -DCMAKE_PREFIX_PATH="$prefix"
step "find_package(storectx 1.0 REQUIRED) must fail configuration"
if cmake -S "$tests/version_too_new" -B "$work/vtn-required" -DCMAKE_PREFIX_PATH="$prefix" \
     -DSTORECTX_REQUIRE_TOO_NEW=ON >"$work/vtn-required.log" 2>&1; then
  cat "$work/vtn-required.log"
  fail "find_package(storectx 1.0 REQUIRED) succeeded"
fi
grep -q 'requested version "1.0"' "$work/vtn-required.log" &&
  grep -qF "$version" "$work/vtn-required.log" ||
  { cat "$work/vtn-required.log"; fail "the failure does not name the requested and installed versions"; }
sed -n '/CMake Error/,/^$/p' "$work/vtn-required.log"
ok "configuration failed, naming version 1.0 and the installed $version"

# --- 4, 5. pkg-config --------------------------------------------------------
step "pkg-config, shared"
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
[ "$(pkg-config --modversion storectx)" = "$version" ] || fail "pkg-config --modversion is not $version"
echo "pkg-config --cflags --libs storectx: $(pkg-config --cflags --libs storectx)"
cd "$work"
cp "$tests/consumer/consumer.c" app.c
cc app.c -o app $(pkg-config --cflags --libs storectx) -Wl,-rpath,"$(pkg-config --variable=libdir storectx)"
./app
expect_needs_shared "$work/app"

step "pkg-config --static"
echo "pkg-config --cflags --libs --static storectx: $(pkg-config --cflags --libs --static storectx)"
cc -static app.c -o app-static $(pkg-config --cflags --libs --static storectx)
./app-static
expect_no_shared "$work/app-static"
[ -z "$(needed "$work/app-static")" ] || fail "app-static is not fully static: $(needed "$work/app-static")"
ok "app-static: fully static executable"

step "all packaging checks passed"
