#!/bin/sh
# cpp20_hop.sh: builds libstorectx (release) and benches/cpp20_hop.cpp (needs
# a C++20 compiler and libasio-dev), then runs it with this script's
# arguments (`--quick` for a short run). Output binary: target/bench/cpp20_hop.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
out=$root/target/bench
cxx=${CXX:-c++}

cargo build --release --manifest-path "$root/Cargo.toml"
mkdir -p "$out/cpp20"
cp "$root/target/release/libstorectx.so" "$out/cpp20/libstorectx.so"
ln -sf libstorectx.so "$out/cpp20/libstorectx.so.0"
"$cxx" -std=c++20 -O2 -DNDEBUG -DASIO_HAS_CO_AWAIT=1 -Wall -Wextra -I"$root/include" \
  -o "$out/cpp20_hop" "$here/cpp20_hop.cpp" \
  -L"$out/cpp20" -lstorectx -Wl,-rpath,"$out/cpp20" -pthread
exec "$out/cpp20_hop" "$@"
