#!/usr/bin/env bash
# Packaging test for Windows x86-64 GNU, cross-built with mingw-w64 (issue
# 18): the root CMakeLists.txt, configured with cmake/tests/mingw-w64-x86_64.cmake,
# builds x86_64-pc-windows-gnu and installs bin/storectx.dll,
# lib/libstorectx.dll.a (import library) and lib/libstorectx.a, no SONAME and
# no .so; the CMake package's storectx::storectx carries IMPORTED_IMPLIB; the
# consumer project (cmake/tests/consumer) builds against the package, shared
# and static, and the programs import storectx.dll (shared) or nothing of it
# (static). With wine (WINEPREFIX set by the caller, .ci/cross.sh) the
# programs also run. ~2 minutes (one cargo release build for the target).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
tests="$repo/cmake/tests"
toolchain="$tests/mingw-w64-x86_64.cmake"
step() { printf '\n=== %s\n' "$*"; }
ok() { printf 'ok: %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/storectx-wingnu.XXXXXX")
trap 'rm -rf "$work"' EXIT
unset PKG_CONFIG_PATH CMAKE_PREFIX_PATH
prefix="$work/prefix"
cargo_target="${STORECTX_CARGO_TARGET_DIR:-$repo/target/cmake}"

step "install for x86_64-pc-windows-gnu (mingw-w64 toolchain file)"
cmake -S "$repo" -B "$work/build" -DCMAKE_TOOLCHAIN_FILE="$toolchain" \
  -DCMAKE_INSTALL_PREFIX="$prefix" -DSTORECTX_CARGO_TARGET_DIR="$cargo_target" >"$work/configure.log" ||
  { cat "$work/configure.log"; fail "configure"; }
cmake --build "$work/build"
cmake --install "$work/build" >/dev/null
for f in bin/storectx.dll lib/libstorectx.dll.a lib/libstorectx.a include/storectx.h \
    lib/cmake/storectx/storectxConfig.cmake lib/pkgconfig/storectx.pc; do
  [ -f "$prefix/$f" ] || fail "$f not installed: $(cd "$prefix" && find . -type f | sort | tr '\n' ' ')"
done
if find "$prefix" -name '*.so*' -o -name '*.dylib' | grep -q .; then
  fail "ELF/Mach-O names installed for Windows: $(find "$prefix" -name '*.so*' -o -name '*.dylib')"
fi
config="$prefix/lib/cmake/storectx/storectxConfig.cmake"
grep -q 'IMPORTED_IMPLIB' "$config" || fail "storectxConfig.cmake sets no IMPORTED_IMPLIB"
if grep -q 'IMPORTED_SONAME "[^"]' "$config"; then fail "storectxConfig.cmake declares a SONAME for a DLL"; fi
grep -q 'DLL Name: KERNEL32.dll' <<<"$(x86_64-w64-mingw32-objdump -p "$prefix/bin/storectx.dll")" ||
  fail "storectx.dll is not a Windows DLL"
ok "bin/storectx.dll, lib/libstorectx.dll.a, lib/libstorectx.a; IMPORTED_IMPLIB, no SONAME, no .so"

imports() { x86_64-w64-mingw32-objdump -p "$1" | sed -n 's/.*DLL Name: //p'; }
for kind in shared static; do
  step "find_package consumer, $kind (mingw-w64)"
  static=OFF; [ "$kind" = static ] && static=ON
  cbuild="$work/consumer-$kind"
  # -static: libgcc, libstdc++ and winpthreads inside the programs, so only
  # storectx.dll (shared) is loaded beside them.
  cmake -S "$tests/consumer" -B "$cbuild" -DCMAKE_TOOLCHAIN_FILE="$toolchain" \
    -DCMAKE_PREFIX_PATH="$prefix" -DSTORECTX_STATIC=$static -DCMAKE_EXE_LINKER_FLAGS=-static >"$cbuild.log" ||
    { cat "$cbuild.log"; fail "consumer configure ($kind)"; }
  cmake --build "$cbuild" >"$cbuild.build.log" || { cat "$cbuild.build.log"; fail "consumer build ($kind)"; }
  for exe in consumer_c consumer_cxx; do
    file="$cbuild/$exe.exe"
    if [ "$kind" = shared ]; then
      grep -qx 'storectx.dll' <<<"$(imports "$file")" || fail "$exe.exe does not import storectx.dll: $(imports "$file" | tr '\n' ' ')"
      cp "$prefix/bin/storectx.dll" "$cbuild/"
    else
      if grep -qi storectx <<<"$(imports "$file")"; then fail "$exe.exe imports storectx.dll although static"; fi
    fi
    if command -v wine >/dev/null 2>&1 && [ -n "${WINEPREFIX:-}" ]; then
      (cd "$cbuild" && wine "./$exe.exe" >/dev/null) || fail "$exe.exe failed under wine"
      ok "$exe.exe ($kind): builds, $( [ $kind = shared ] && echo 'imports storectx.dll' || echo 'no storectx.dll'), runs under wine"
    else
      ok "$exe.exe ($kind): builds, $( [ $kind = shared ] && echo 'imports storectx.dll' || echo 'no storectx.dll') (not run: no wine)"
    fi
  done
done

step "pkg-config names for Windows GNU"
grep -q -- '-lstorectx' "$prefix/lib/pkgconfig/storectx.pc" || fail "storectx.pc has no -lstorectx"
grep -q -- '-lsynchronization' "$prefix/lib/pkgconfig/storectx.pc" || fail "storectx.pc Libs.private lacks the Windows libraries"
ok "storectx.pc: -lstorectx (GNU ld takes libstorectx.dll.a first), Libs.private with the Windows libraries"
step "all Windows GNU packaging checks passed"
