#!/usr/bin/env bash
# The ABI promise, enforced (issue 21; docs/abi.md). Builds the shared
# library as it ships (release, versioned SONAME, as the CMake build makes
# it) and checks:
#   1. nothing is exported but the functions of include/storectx.h, each
#      with the version node storectx.map gives it (nm -D --defined-only);
#   2. abidiff against the committed baseline abi/libstorectx.so.abi (libabigail,
#      Debian package abigail-tools): any difference fails — a removed or
#      changed function, symbol version or SONAME is an ABI break, and an added
#      function must be recorded in a new version node and a new baseline.
# The baseline holds the ELF ABI (symbols, versions, SONAME, needed
# libraries) of the stripped library we ship; the types are the header's,
# which the header freshness step of .ci/run keeps equal to the code.
#   .ci/abi.sh            check
#   .ci/abi.sh --update   rewrite abi/libstorectx.so.abi from this tree (commit it
#                         with the change that needs it; docs/abi.md says when)
# Cost: one release build of the library in target/abi (~1 min on 2 cores,
# less when cached) and two abigail runs (< 2 s).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v abidiff >/dev/null 2>&1 || ! command -v nm >/dev/null 2>&1; then
  echo "installing: abigail-tools binutils"
  apt-get update -qq
  apt-get install -y -qq abigail-tools binutils >/dev/null
fi

baseline=abi/libstorectx.so.abi
STORECTX_SONAME=1 CARGO_TARGET_DIR=target/abi cargo build --quiet --release
lib=target/abi/release/libstorectx.so
current=target/abi/libstorectx.so.abi
abidw --no-corpus-path --no-comp-dir-path --no-show-locs "$lib" >"$current"

if [ "${1:-}" = --update ]; then
  cp "$current" "$baseline"
  echo "wrote $baseline from $lib; commit it with the change that needs it"
  exit 0
fi

# 1. The exports: the header's functions, each name@@<its node>, and the
# version nodes themselves (absolute symbols); nothing else.
header_fns=$(grep -v '^ *\*\|^ */' include/storectx.h | grep -o '\bstorectx_[a-z_0-9]*(' | tr -d '(' | sort -u)
expected=$(awk '
  { sub(/\/\*.*\*\//, "") }
  /\/\*/ { comment = 1 } comment { if (/\*\//) comment = 0; next }
  /^[A-Z_0-9.]+ *\{/ { node = $1; sub(/\{.*/, "", node); next }
  /local:/ { node = "" } /^\}/ { node = "" }
  node != "" && /^ *storectx_[a-z_0-9]*;/ { gsub(/[ ;]/, ""); print $0 "@@" node }
' storectx.map | sort)
exported=$(nm -D --defined-only "$lib" | awk '$2 != "A" { print $3 }' | sort)
if [ "$exported" != "$expected" ]; then
  echo "FAIL: $lib exports differ from storectx.map (< exported, > map):" >&2
  diff <(echo "$exported") <(echo "$expected") >&2 || true
  exit 1
fi
if [ "$(echo "$expected" | sed 's/@@.*//' | sort -u)" != "$header_fns" ]; then
  echo "FAIL: storectx.map does not list exactly the functions of include/storectx.h" >&2
  exit 1
fi
echo "exports: $(echo "$exported" | wc -l) functions, all versioned, nothing else ($(nm -D --defined-only "$lib" | awk '$2 == "A" { print $3 }' | tr '\n' ' '))"

# 2. The ABI against the baseline.
status=0
abidiff --no-show-locs "$baseline" "$current" || status=$?
if [ "$status" != 0 ]; then
  echo "FAIL: abidiff exit $status against $baseline (4: ABI changed, 8: incompatible)." >&2
  echo "If the change is meant, follow docs/abi.md (new version node, or a new SONAME)" >&2
  echo "and run .ci/abi.sh --update." >&2
  exit 1
fi
echo "ABI: identical to $baseline (SONAME $(readelf -d "$lib" | sed -n 's/.*soname: \[\(.*\)\]/\1/p'))"
