#!/usr/bin/env bash
# Other platforms, by emulation where no such machine exists (issue 18;
# docs/platforms.md has the table this script keeps true):
#   * cargo check (lib and tests) for macOS arm64/x86-64, FreeBSD x86-64 and
#     Windows MSVC: there is no linker or SDK for them here;
#   * Linux aarch64 glibc: build, then the C suite under qemu-aarch64;
#   * Linux x86-64 musl: build (the .so with musl-gcc, the static library
#     with the Rust musl target's self-contained libunwind), the C suite
#     against musl;
#   * Windows x86-64 GNU: build the DLL with mingw-w64, the C suite under
#     wine, the CMake package and its consumers (cmake/tests/windows_gnu.sh).
# Programs that only make sense on some platforms say so in a `cprog: skip`
# line, and the harness prints each skip with its reason.
#
# Cost: measured 8.3 min wall on 2 cores shared with other builds, from a
# warm cargo cache (qemu suite ~4 min at STRESS_SCALE=5, musl ~2 min, wine
# suite ~2 min, CMake for Windows ~0.5 min); on a clean machine add the apt
# installs and ~2 min of compiling for the seven targets. Budget: 12 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n--- cross: %s (%ss)\n' "$1" "$SECONDS"; }

step "tools"
need=()
for tool in qemu-aarch64:qemu-user aarch64-linux-gnu-gcc:gcc-aarch64-linux-gnu \
    aarch64-linux-gnu-g++:g++-aarch64-linux-gnu musl-gcc:musl-tools \
    x86_64-w64-mingw32-gcc-posix:mingw-w64 x86_64-w64-mingw32-g++-posix:mingw-w64 wine:wine cmake:cmake; do
  command -v "${tool%%:*}" >/dev/null 2>&1 || need+=("${tool#*:}")
done
[ -e /usr/aarch64-linux-gnu/lib/libc.so ] || need+=(libc6-dev-arm64-cross)
[ -e /usr/lib/wine/wine64 ] || need+=(wine64)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
targets=(aarch64-apple-darwin x86_64-apple-darwin x86_64-unknown-freebsd x86_64-pc-windows-msvc
  aarch64-unknown-linux-gnu x86_64-unknown-linux-musl aarch64-unknown-linux-musl x86_64-pc-windows-gnu)
installed=$(rustup target list --installed)
for t in "${targets[@]}"; do
  grep -qx "$t" <<<"$installed" || rustup target add "$t"
done

step "cargo check: macOS (arm64, x86-64), FreeBSD, Windows MSVC"
for t in aarch64-apple-darwin x86_64-apple-darwin x86_64-unknown-freebsd x86_64-pc-windows-msvc; do
  echo "$t"
  cargo check --quiet --target "$t" --lib --tests --features testing
  cargo check --quiet --target "$t" --lib --no-default-features
done

# The C harness (tests/c_programs.rs) runs on this machine and builds the
# programs for STORECTX_TEST_TARGET against the library cargo built there.
suite() {
  STORECTX_TEST_TARGET="$1" cargo test --quiet --features testing --test c_programs
}

step "Linux aarch64 glibc: build, C suite under qemu-aarch64"
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
cargo build --quiet --features testing --target aarch64-unknown-linux-gnu
# qemu runs the programs 5-10x slower: STRESS_SCALE shrinks the stress
# programs' loops, as under valgrind.
STRESS_SCALE=5 STORECTX_TEST_RUNNER="qemu-aarch64 -L /usr/aarch64-linux-gnu" suite aarch64-unknown-linux-gnu

step "Linux x86-64 musl: build, C suite against musl"
# The Rust musl target links statically by default and then makes no .so;
# -crt-static makes one, linked by musl-gcc. Its unwinder: Rust asks for
# libgcc_s, which exists only for glibc here, so a linker script of that
# name points at the self-contained libunwind.a the musl target ships. The
# static library's programs link the same libunwind.a (STORECTX_TEST_LIBS):
# gcc's libgcc_eh wants glibc's _dl_find_object.
unwind="$(rustc --print sysroot)/lib/rustlib/x86_64-unknown-linux-musl/lib/self-contained/libunwind.a"
mkdir -p target/musl-unwind
echo "INPUT($unwind)" >target/musl-unwind/libgcc_s.so
export CARGO_TARGET_X86_64_UNKNOWN_LINUX_MUSL_LINKER=musl-gcc
export CARGO_TARGET_X86_64_UNKNOWN_LINUX_MUSL_RUSTFLAGS="-C target-feature=-crt-static -L native=$PWD/target/musl-unwind"
cargo build --quiet --features testing --target x86_64-unknown-linux-musl
if readelf -d target/x86_64-unknown-linux-musl/debug/libstorectx.so | grep -E 'NEEDED.*(libgcc_s|ld-linux)'; then
  echo "the musl libstorectx.so needs a glibc library" >&2
  exit 1
fi
STORECTX_TEST_LIBS="$unwind" suite x86_64-unknown-linux-musl

step "Linux aarch64 musl: the static library builds (no aarch64 musl C compiler in Debian to run the suite)"
# The same code as x86-64 musl and aarch64 glibc, both run above; this keeps
# the target building. The musl target makes no .so by default (static).
CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER=aarch64-linux-gnu-gcc \
  cargo build --quiet --release --target aarch64-unknown-linux-musl 2>&1 | grep -v "dropping unsupported crate type" || true
[ -e target/aarch64-unknown-linux-musl/release/libstorectx.a ] || { echo "no aarch64 musl libstorectx.a" >&2; exit 1; }

step "Windows x86-64 GNU: DLL + import library, C suite under wine"
cargo build --quiet --features testing --target x86_64-pc-windows-gnu
for f in storectx.dll libstorectx.dll.a libstorectx.a; do
  [ -e "target/x86_64-pc-windows-gnu/debug/$f" ] || { echo "missing $f" >&2; exit 1; }
done
export WINEPREFIX="$PWD/target/wine-prefix" WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
[ -d "$WINEPREFIX/drive_c/windows/system32" ] || wineboot -i >/dev/null 2>&1
# Wine 8 (Debian 12) lacks bcryptprimitives.dll, which Rust's std imports.
x86_64-w64-mingw32-gcc -O2 -shared -Wl,--kill-at -o "$WINEPREFIX/drive_c/windows/system32/bcryptprimitives.dll" \
  .ci/wine/bcryptprimitives.c -ladvapi32
# POSIX-thread variants: C++ std::thread needs them; the C programs use winpthreads.
CC_x86_64_pc_windows_gnu=x86_64-w64-mingw32-gcc-posix CXX_x86_64_pc_windows_gnu=x86_64-w64-mingw32-g++-posix \
  STORECTX_TEST_RUNNER=wine suite x86_64-pc-windows-gnu

step "Windows x86-64 GNU: CMake package (storectx.dll + IMPORTED_IMPLIB) and consumers via a mingw-w64 toolchain file"
cmake/tests/windows_gnu.sh
wineserver -k || true

step "done"
