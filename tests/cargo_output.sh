#!/usr/bin/env bash
# The README's "Link it yourself" lines, verbatim, against what a plain
# `cargo build --release` leaves in target/release: no install, no symlink
# made by anyone, no environment but what the lines set. The README block
# is marked `<!-- snippet: tests/cargo_output.sh -->`, so tests/readme_snippets.rs
# fails if it drifts from the lines below.
# Runs in a temporary directory laid out like the root: app.c
# (c-tests/readme_example.c), links to the checkout's include/ and bindings/,
# and target/release holding copies of exactly the two libraries cargo wrote
# there, so that no link another tool may have added to target/release can
# make the lines pass.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
(cd "$repo" && cargo build --release)
work=$(mktemp -d "${TMPDIR:-/tmp}/storectx-cargo-output.XXXXXX")
trap 'rm -rf "$work"' EXIT
ln -s "$repo/include" "$repo/bindings" "$work/"
mkdir -p "$work/target/release"
cp "$repo/target/release/libstorectx.so" "$repo/target/release/libstorectx.a" "$work/target/release/"
cp "$repo/c-tests/readme_example.c" "$work/app.c"
cd "$work"
unset LD_LIBRARY_PATH STORECTX_LIB PYTHONPATH

set -x
cc app.c -Iinclude -Ltarget/release -lstorectx -Wl,-rpath,target/release -o app
./app
cc app.c -Iinclude target/release/libstorectx.a -lpthread -ldl -lm -o app-static
./app-static
LD_LIBRARY_PATH=target/release PYTHONPATH=bindings/python python3 -c 'import storectx; print(storectx.version())'
set +x

readelf -d app | grep -q 'NEEDED.*\[libstorectx.so\]' || { echo "FAIL: app does not need libstorectx.so" >&2; exit 1; }
if readelf -d app-static | grep -q storectx; then echo "FAIL: app-static needs libstorectx" >&2; exit 1; fi
echo "cargo output: the README's link-it-yourself lines run"
