#!/usr/bin/env bash
# Packaging test. Installs libstorectx into a fresh temporary prefix with the
# root CMakeLists.txt, moves the prefix (it must be relocatable), then builds
# and runs outside consumers against it; then builds consumers that take
# libstorectx from its source tree:
#   1. find_package + storectx::storectx        (C and C++, NEEDED libstorectx.so.<abi>)
#   2. find_package + storectx::storectx_static (C and C++, no libstorectx.so at all)
#   3. version policy: find_package(storectx MAJOR.MINOR) accepted; the
#      previous and next minor and 1.0 refused (SameMinorVersion while 0.x)
#   4. cc $(pkg-config --cflags --libs storectx)           (shared)
#   5. cc -static $(pkg-config --cflags --libs --static storectx); and
#      libstorectx.a named by its path in a dynamic executable
#   6. SONAME, file names, CMake version file, pkg-config and header version
#      macros all agree with Cargo.toml's version
#   7. source tree: add_subdirectory(<checkout>), FetchContent by a file://
#      git URL, FetchContent by SOURCE_DIR; storectx::storectx and
#      storectx::storectx_static, C and C++ (CMake >= 3.16)
#   8. docs/building.md's own lines: the install (step 0, from the root of a
#      copy of the checkout), the reader's CMakeLists.txt (cmake/tests/app)
#      and its build lines, and each source form (cmake/tests/app_source)
#   9. Meson: cmake/tests/meson, dependency('storectx', version: '>=0.2'),
#      shared and static: true, through pkg-config
# Run from anywhere: cmake/tests/run.sh. Exits non-zero on the first failure.
# STORECTX_CARGO_TARGET_DIR overrides cargo's target dir for every CMake build
# (default: <repo>/target/cmake, shared by all of them);
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
command -v meson >/dev/null || missing+=(meson)
command -v ninja >/dev/null || missing+=(ninja-build)
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

# The version and the ABI rule of "Versioning and ABI" in the README, from
# Cargo.toml: every file below must agree with these.
version=$(sed -n '/^\[package\]/,/^\[/{s/^version *= *"\([^"]*\)".*/\1/p}' "$repo/Cargo.toml")
version=${version%%$'\n'*}
[ -n "$version" ] || fail "no version in Cargo.toml"
major=${version%%.*}
minor=${version#*.}; minor=${minor%%.*}
patch=${version##*.}
if [ "$major" = 0 ]; then sover="0.$minor"; else sover="$major"; fi
soname="libstorectx.so.$sover"
echo "Cargo.toml: $version; ABI rule: SONAME $soname; $(cmake --version | head -n1)"

cargo_target="${STORECTX_CARGO_TARGET_DIR:-$repo/target/cmake}"

needed() { readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'; }
# expect_needs_shared <exe> <dir>: NEEDED is the SONAME, and it loads from <dir>.
expect_needs_shared() {
  local dir=${2:-$prefix/lib}
  grep -qxF "$soname" <<<"$(needed "$1")" || fail "$1 does not have NEEDED $soname: $(needed "$1")"
  local loaded
  loaded=$(ldd "$1" | awk -v n="$soname" '$1 == n && $2 == "=>" { print $3 }')
  [ -n "$loaded" ] && [ "$(readlink -f "$loaded")" = "$(readlink -f "$dir/$soname")" ] ||
    fail "$1 does not load libstorectx from $dir: $(ldd "$1" | grep storectx || true)"
  "$1" >/dev/null || fail "$1 failed"
  ok "$(basename "$1"): NEEDED $soname, resolved in $dir, runs"
}
expect_no_shared() {
  if grep -q storectx <<<"$(needed "$1")"; then fail "$1 depends on $(needed "$1")"; fi
  grep -q ' T storectx_version$' <<<"$(nm "$1")" || fail "$1 does not contain storectx_version"
  ok "$(basename "$1"): libstorectx linked in, no libstorectx.so dependency"
}

# --- 0. install --------------------------------------------------------------
# A git repository holding exactly the files of this checkout (committed or
# not, minus what .gitignore ignores), for FetchContent's GIT_REPOSITORY.
step "git repository of this checkout for FetchContent (file:// URL)"
upstream="$work/upstream"
mkdir -p "$upstream"
(cd "$repo" && git ls-files -z --cached --others --exclude-standard |
  while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
  xargs -0 cp --parents -t "$upstream")
git -C "$upstream" init -q
git -C "$upstream" add -A
git -C "$upstream" -c user.name=test -c user.email=test@invalid commit -q -m snapshot
rev=$(git -C "$upstream" rev-parse HEAD)
ok "file://$upstream at $rev"

# docs/building.md "Install with CMake", its lines as they are, from the root
# of that copy of the checkout. CMake's default cargo target dir is
# build/cargo: a link to the shared one spares a second release build.
step "install (docs/building.md's lines: cargo build --release + cmake --install)"
cd "$upstream"
mkdir -p build "$cargo_target"
ln -s "$cargo_target" build/cargo
home=$HOME
HOME="$work/home"
prefix="$HOME/.local"
HOME=$home
cmake -S . -B build -DCMAKE_INSTALL_PREFIX="$prefix"
cmake --build build
cmake --install build

# A re-configure with another prefix warns about nothing (GNUInstallDirs
# once warned "Unable to determine default CMAKE_INSTALL_LIBDIR" there);
# then back to the documented prefix.
cmake -S . -B build -DCMAKE_INSTALL_PREFIX="$work/other-prefix" >"$work/reconfigure.log" 2>&1 ||
  { cat "$work/reconfigure.log"; fail "re-configure with another prefix failed"; }
if grep -q "CMake Warning" "$work/reconfigure.log"; then
  cat "$work/reconfigure.log"; fail "re-configure with another prefix warns"
fi
cmake -S . -B build -DCMAKE_INSTALL_PREFIX="$prefix" >/dev/null
ok "re-configure with another prefix: no warning"

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
[ "$(readlink "$prefix/lib/$soname")" = "libstorectx.so.$version" ] ||
  fail "lib/$soname is not a link to libstorectx.so.$version"
[ "$(readlink "$prefix/lib/libstorectx.so")" = "$soname" ] ||
  fail "lib/libstorectx.so is not a link to $soname"
ok "lib/libstorectx.so -> $soname -> libstorectx.so.$version"
for h in "$repo"/include/*.h "$repo"/include/*.hpp; do
  [ -f "$prefix/include/$(basename "$h")" ] || fail "include/$(basename "$h") not installed"
  ok "include/$(basename "$h")"
done

step "versions agree with Cargo.toml ($version)"
got=$(readelf -d "$prefix/lib/libstorectx.so.$version" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$got" = "$soname" ] || fail "SONAME is '$got', expected $soname"
ok "SONAME $got"
grep -qF "IMPORTED_SONAME \"$soname\"" "$prefix/lib/cmake/storectx/storectxConfig.cmake" ||
  fail "storectxConfig.cmake does not declare IMPORTED_SONAME $soname"
ok "storectxConfig.cmake: IMPORTED_SONAME $soname"
# configure_package_config_file expands @VAR@ in comments too: the template
# once named PACKAGE_INIT between at-signs in a comment, which pasted the
# whole init block (macros and all) a second time into the middle of it.
inits=$(grep -c 'Expanded from @PACKAGE_INIT@' "$prefix/lib/cmake/storectx/storectxConfig.cmake" || true)
[ "$inits" = 1 ] || fail "storectxConfig.cmake holds $inits expansions of PACKAGE_INIT, expected 1"
ok "storectxConfig.cmake: one PACKAGE_INIT block"
grep -qF "set(PACKAGE_VERSION \"$version\")" "$prefix/lib/cmake/storectx/storectxConfigVersion.cmake" ||
  fail "storectxConfigVersion.cmake does not say version $version"
if [ "$major" = 0 ]; then
  grep -q 'requested major and minor versions are the same' "$prefix/lib/cmake/storectx/storectxConfigVersion.cmake" ||
    fail "storectxConfigVersion.cmake is not SameMinorVersion while 0.x"
  ok "storectxConfigVersion.cmake: $version, SameMinorVersion (behaviour checked in step 3)"
fi
grep -qx "Version: $version" "$prefix/lib/pkgconfig/storectx.pc" || fail "storectx.pc has no 'Version: $version'"
ok "storectx.pc: Version: $version"
for part in MAJOR:$major MINOR:$minor PATCH:$patch; do
  for h in "$repo/include/storectx.h" "$prefix/include/storectx.h"; do
    grep -qx "#define STORECTX_VERSION_${part%%:*} ${part#*:}" "$h" ||
      fail "$h does not define STORECTX_VERSION_${part%%:*} ${part#*:}"
  done
done
ok "storectx.h: STORECTX_VERSION_MAJOR/MINOR/PATCH $major $minor $patch"

# --- 1, 2. find_package consumers --------------------------------------------
for kind in shared static; do
  step "find_package(storectx $major.$minor) consumer, $kind"
  cbuild="$work/consumer-$kind"
  static=OFF
  [ "$kind" = static ] && static=ON
  cmake -S "$tests/consumer" -B "$cbuild" -DCMAKE_PREFIX_PATH="$prefix" -DSTORECTX_STATIC=$static \
    -DSTORECTX_WANT="$major.$minor"
  cmake --build "$cbuild" -j "$jobs"
  (cd "$cbuild" && ctest --output-on-failure)  # no --test-dir: CMake 3.16
  for exe in consumer_c consumer_cxx; do
    if [ "$kind" = shared ]; then expect_needs_shared "$cbuild/$exe"; else expect_no_shared "$cbuild/$exe"; fi
  done
done

# --- 3. version policy ------------------------------------------------------
refuse="$((major + 1)).0"
if [ "$major" = 0 ]; then
  refuse="$refuse;0.$((minor + 1))"
  [ "$minor" -gt 0 ] && refuse="$refuse;0.$((minor - 1))"
fi
step "find_package(storectx $major.$minor) accepted; $refuse refused"
cmake -S "$tests/version_policy" -B "$work/vp" -DCMAKE_PREFIX_PATH="$prefix" \
  -DSTORECTX_ACCEPT="$major.$minor" -DSTORECTX_REFUSE="$refuse"
for wanted in ${refuse//;/ }; do
  step "find_package(storectx $wanted REQUIRED) must fail configuration"
  if cmake -S "$tests/version_policy" -B "$work/vp-$wanted" -DCMAKE_PREFIX_PATH="$prefix" \
       -DSTORECTX_REQUIRE="$wanted" >"$work/vp-$wanted.log" 2>&1; then
    cat "$work/vp-$wanted.log"
    fail "find_package(storectx $wanted REQUIRED) succeeded"
  fi
  grep -qF "requested version \"$wanted\"" "$work/vp-$wanted.log" &&
    grep -qF "$version" "$work/vp-$wanted.log" ||
    { cat "$work/vp-$wanted.log"; fail "the failure does not name the requested and installed versions"; }
  ok "configuration failed, naming version $wanted and the installed $version"
done

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

step "pkg-config: libstorectx.a in an otherwise dynamic executable"
cc app.c -o app-mixed $(pkg-config --cflags storectx) "$(pkg-config --variable=libdir storectx)/libstorectx.a" -lutil -lrt -lpthread -lm -ldl
./app-mixed
expect_no_shared "$work/app-mixed"

# --- 9. Meson (docs/building.md "Use it from Meson") --------------------------
step "Meson: dependency('storectx', version: '>=0.2'), shared and static: true"
mkdir "$work/meson"
cp "$tests/meson/meson.build" "$work/meson/meson.build"
cp "$tests/consumer/consumer.c" "$work/meson/app.c"
meson setup "$work/meson/build" "$work/meson"
meson compile -C "$work/meson/build"
expect_needs_shared "$work/meson/build/app"
expect_no_shared "$work/meson/build/app-static"

# --- 8. the reader's project of docs/building.md "Use it from CMake" ---------
step "docs/building.md: the reader's CMakeLists.txt (cmake/tests/app) against the install"
mkdir "$work/reader"
cd "$work/reader"
cp "$tests/app/CMakeLists.txt" CMakeLists.txt
cp "$tests/consumer/consumer.c" app.c
cmake -S . -B build -DCMAKE_PREFIX_PATH="$prefix"
cmake --build build
./build/app
expect_needs_shared "$work/reader/build/app"

# The same file with the find_package line replaced by each source form
# (cmake/tests/app_source): third_party/libstorectx and ../libstorectx are
# links to the checkout; FetchContent is pointed at it by
# FETCHCONTENT_SOURCE_DIR_STORECTX (the git download: fetch_git below).
for form in inside outside fetch; do
  step "docs/building.md: the reader's CMakeLists.txt, libstorectx from source ($form)"
  proj="$work/forms-$form/app"
  mkdir -p "$proj/third_party"
  cp "$tests/app_source/CMakeLists.txt" "$proj/CMakeLists.txt"
  cp "$tests/consumer/consumer.c" "$proj/app.c"
  ln -s "$repo" "$proj/third_party/libstorectx"
  ln -s "$repo" "$work/forms-$form/libstorectx"
  cmake -S "$proj" -B "$proj/build" -DAPP_FORM=$form -DFETCHCONTENT_SOURCE_DIR_STORECTX="$repo" \
    -DSTORECTX_CARGO_TARGET_DIR="$cargo_target"
  cmake --build "$proj/build" -j "$jobs"
  grep -qxF "$soname" <<<"$(needed "$proj/build/app")" || fail "$form: app does not have NEEDED $soname"
  "$proj/build/app" >/dev/null || fail "$form: app failed"
  ok "$form: app built with the doc's lines, NEEDED $soname, runs"
done

# --- 7. from the source tree -------------------------------------------------
for how in subdirectory fetch_git fetch_source; do
  step "source tree: $how"
  case $how in
    fetch_git) src="file://$upstream" ;;
    *) src="$repo" ;;
  esac
  sbuild="$work/source-$how"
  cmake -S "$tests/source_tree" -B "$sbuild" -DSTORECTX_HOW=$how -DSTORECTX_SOURCE="$src" \
    -DSTORECTX_GIT_TAG="$rev" -DSTORECTX_EXPECTED_VERSION="$version" \
    -DSTORECTX_CARGO_TARGET_DIR="$cargo_target"
  cmake --build "$sbuild" -j "$jobs"
  (cd "$sbuild" && ctest --output-on-failure)  # no --test-dir: CMake 3.16
  stage=$(dirname "$(find "$sbuild" -path '*/stage/libstorectx.a' | head -n1)")
  [ -d "$stage" ] || fail "$how: no staged libstorectx in the build tree"
  for lang in c cxx; do
    expect_needs_shared "$sbuild/consumer_${lang}_shared" "$stage"
    expect_no_shared "$sbuild/consumer_${lang}_static"
  done
  if [ $how = fetch_git ]; then
    [ -f "$sbuild/_deps/storectx-src/Cargo.toml" ] || fail "fetch_git: no clone in _deps/storectx-src"
    [ "$(git -C "$sbuild/_deps/storectx-src" rev-parse HEAD)" = "$rev" ] || fail "fetch_git: wrong commit"
    ok "fetch_git: built from the clone at $rev"
  fi
done

step "all packaging checks passed"
