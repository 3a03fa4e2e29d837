#!/usr/bin/env bash
# The build lines of docs/getting-started.md, docs/building.md ("The cargo
# output") and docs/cpp.md, verbatim, against what a plain
# `cargo build --release` leaves in target/release: no install, no symlink
# made by anyone, no environment but what the lines set. The docs' blocks
# are marked `<!-- snippet: tests/cargo_output.sh -->`, so
# tests/readme_snippets.rs fails if they drift from the lines below.
# Runs in a temporary directory laid out like the root: app.c
# (c-tests/readme_example.c), app.cpp (c-tests/cpp_readme_example.cpp),
# app20.cpp (cpp20-tests/readme_cpp20.cpp, needs libasio-dev: skipped
# without it unless STORECTX_REQUIRE_TOOLS=1), links to the checkout's
# include/ and bindings/,
# and target/release holding copies of exactly the two libraries cargo wrote
# there, so that no link another tool may have added to target/release can
# make the lines pass. Then, from the checkout's root, the README's
# `cargo run --example demo` and docs/python.md's `cargo build` +
# test_storectx.py lines (both marked `<!-- snippet-lines: ... -->`).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
(cd "$repo" && cargo build --release)
work=$(mktemp -d "${TMPDIR:-/tmp}/storectx-cargo-output.XXXXXX")
trap 'rm -rf "$work"' EXIT
ln -s "$repo/include" "$repo/bindings" "$work/"
mkdir -p "$work/target/release"
cp "$repo/target/release/libstorectx.so" "$repo/target/release/libstorectx.a" "$work/target/release/"
cp "$repo/c-tests/readme_example.c" "$work/app.c"
cp "$repo/c-tests/cpp_readme_example.cpp" "$work/app.cpp"
cp "$repo/cpp20-tests/readme_cpp20.cpp" "$work/app20.cpp"
cd "$work"
unset LD_LIBRARY_PATH STORECTX_LIB PYTHONPATH

set -x
cc app.c -Iinclude -Ltarget/release -lstorectx -Wl,-rpath,target/release -o app
./app
cc app.c -Iinclude target/release/libstorectx.a -lpthread -ldl -lm -o app-static
./app-static
LD_LIBRARY_PATH=target/release PYTHONPATH=bindings/python python3 -c 'import storectx; print(storectx.version())'
c++ -std=c++17 -pthread app.cpp -Iinclude -Ltarget/release -lstorectx -Wl,-rpath,target/release -o app-cpp
./app-cpp
set +x
if [ -e /usr/include/asio.hpp ] || [ "${STORECTX_REQUIRE_TOOLS:-0}" = 1 ]; then
  set -x
  c++ -std=c++20 -pthread app20.cpp -Iinclude -Ltarget/release -lstorectx -Wl,-rpath,target/release -o app-cpp20
  ./app-cpp20
  set +x
else
  echo "SKIPPED: the C++20 line (asio not installed: apt-get install libasio-dev)"
fi

# getting-started.md's lines for a project of your own outside the checkout:
# the same program, built in another directory against the checkout's
# absolute path (here the temporary root) and run from there.
mkdir "$work/mine"
cp app.c "$work/mine/app.c"
libstorectx=$work
(
  cd "$work/mine"
  set -x
  cc app.c -I"$libstorectx/include" -L"$libstorectx/target/release" -lstorectx -Wl,-rpath,"$libstorectx/target/release" -o app
  ./app
)

readelf -d app | grep -q 'NEEDED.*\[libstorectx.so\]' || { echo "FAIL: app does not need libstorectx.so" >&2; exit 1; }
if readelf -d app-static | grep -q storectx; then echo "FAIL: app-static needs libstorectx" >&2; exit 1; fi
# The README's first command and docs/python.md's lines for the binding's
# own tests, from the root of the checkout.
(
  cd "$repo"
  set -x
  cargo run --example demo
  cargo build
  STORECTX_LIB=target/debug/libstorectx.so python3 bindings/python/test_storectx.py
)

echo "cargo output: the docs' link-it-yourself lines run"
