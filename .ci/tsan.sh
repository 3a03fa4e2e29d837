#!/usr/bin/env bash
# ThreadSanitizer over the concurrent core, with NO suppressions: the library
# and std built with -Zsanitizer=thread (nightly, -Zbuild-std), then
#  - the crate's unit tests (registry and store lock under threads included),
#  - the concurrent C/C++ programs of c-tests/, compiled with clang
#    -fsanitize=thread and linked to the TSan-built libstorectx (.so and .a).
# Budget: <= 12 minutes on 2 cores (about 4 of them building std; the
# figures are in RELIABILITY.md, "ThreadSanitizer").
set -euo pipefail
cd "$(dirname "$0")/.."

if ! rustup component list --toolchain nightly --installed 2>/dev/null | grep -q '^rust-src'; then
  rustup toolchain install nightly --profile minimal --component rust-src
fi
# The C side needs the clang of the LLVM nightly rustc uses: the
# instrumented Rust calls runtime entry points (__tsan_memcpy, ...) that
# older runtimes lack (clang 14's does).
llvm=$(rustc +nightly -vV | sed -n 's/^LLVM version: \([0-9]*\).*/\1/p')
if ! command -v "clang-$llvm" >/dev/null 2>&1 ||
  ! ls /usr/lib/llvm-"$llvm"/lib/clang/*/lib/*/libclang_rt.tsan-x86_64.a >/dev/null 2>&1; then
  apt-get update -qq
  apt-get install -y -qq "clang-$llvm" "libclang-rt-$llvm-dev" >/dev/null
fi

target=x86_64-unknown-linux-gnu
export RUSTFLAGS="-Zsanitizer=thread -Cforce-frame-pointers=yes"
export RUSTDOCFLAGS="$RUSTFLAGS"
# halt_on_error: the first report fails the run (exit code 66).
export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1"
# Its own target directory: other RUSTFLAGS would rebuild everything each time.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}/tsan"
step() { printf -- "--- %s (%ss)\n" "$1" "$SECONDS"; }
tsan() { cargo +nightly test -Zbuild-std --target "$target" --features testing "$@"; }

step "unit tests"
tsan --lib
step "model-based sequences"
# Model-based sequences through the exports, on several threads at once
# (300 of the default 2000: TSan runs them ~15x slower).
STORECTX_MODEL_SEQUENCES=300 tsan --test model_based

step "concurrent C programs"
# The C side: the programs that run threads against the library, the
# ucontext coroutines included (c-tests/check.h announces their swapcontext
# calls to TSan as fiber switches). Not run: thread_exit_calls_in_every_
# destructor_round and thread_exit_late_call_changes_nothing_or_is_cleaned,
# whose own C code runs in the 4th pthread-key destructor round, after TSan
# has torn down the thread's state: TSan crashes (SEGV in
# __tsan::TraceSwitchPart on entry to the program's destructor function,
# before any library call). memcheck and helgrind run them in .ci/run.
# Nor, for the same reason, adversary_async_fast_paths_exit_fork_crowd (its
# destructors run to round 4), nor adversary_async_install_refused_for_room
# (an RLIMIT_AS cap leaves TSan's shadow memory no room).
CC="clang-$llvm" CXX="clang++-$llvm" STORECTX_TEST_CFLAGS="-fsanitize=thread -fno-omit-frame-pointer -g" STRESS_SCALE=4 \
  tsan --test c_programs -- coroutine_migrates wasmer_flow async_interleaved readme_ucontext async_misuse \
  thread_exit_first_call_in_key_destructor thread_exit_first_call_in_thread_local_dtor thread_exit_releases \
  stress_migration readme_coroutines readme_thread_pool demo cpp_raii misuse_foreign_thread \
  consume_while_peeked exhaustion adversary_async_fast_paths_across adversary_async_fast_paths_stolen \
  adversary_async_uninstall_after adversary_async_fast_paths_signal \
  adversary_segment_fast_paths adversary_segment_len_races adversary_segment_resume_at_every
step "done"
