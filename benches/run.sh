#!/bin/sh
# run.sh: build libstorectx (release), the baselines (the two floors from one
# source, libfloor.so with the default TLS model and libfloor_ie.so with
# initial-exec TLS; the seed design's libseed.so) and bench.c, then run the bench with this script's
# arguments. `benches/run.sh --quick` is the CI smoke run; see bench.c for
# the other flags; `--build-only` (first argument) builds and stops.
# Outputs go to <root>/target/bench/.
# STORECTX_ROOT=<checkout> benchmarks the library of another tree (default:
# the tree this script is in).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "${STORECTX_ROOT:-$here/..}" && pwd)
out=$root/target/bench
cc=${CC:-cc}

cargo build --release --manifest-path "$root/Cargo.toml"
CARGO_TARGET_DIR=$out/seed-target cargo build --release --manifest-path "$here/seed/Cargo.toml"

mkdir -p "$out"
"$cc" -O2 -fPIC -shared -fvisibility=hidden -Wall -Wextra -pthread \
  -o "$out/libfloor.so" "$here/floor/floor.c"
"$cc" -O2 -fPIC -shared -fvisibility=hidden -Wall -Wextra -pthread \
  -DFLOOR_PREFIX=floor_ie_ -ftls-model=initial-exec \
  -o "$out/libfloor_ie.so" "$here/floor/floor.c"
cp "$out/seed-target/release/libseed.so" "$out/libseed.so"

# Link against a copy in $out (only the .so there: no static fallback). A
# plain cargo build sets no SONAME, so the program needs libstorectx.so itself.
cp "$root/target/release/libstorectx.so" "$out/libstorectx.so"

"$cc" -std=c11 -O2 -Wall -Wextra -I"$root/include" -o "$out/bench" "$here/bench.c" \
  -L"$out" -lstorectx -lfloor -lfloor_ie -lseed -Wl,-rpath,"$out" -pthread

if [ "${1:-}" = --build-only ]; then
  exit 0
fi
exec "$out/bench" "$@"
