#!/usr/bin/env bash
# loom model-checks the real code of the store lock and the registry (claim,
# consume, peek, free stack, parking spots, chunk publication): built with
# --cfg loom, src/sync.rs hands them loom's atomics, cells and futex model.
# Each model prints the interleavings it explored. Preemption bound 3
# (LOOM_MAX_PREEMPTIONS overrides). Budget: <= 6 minutes on 2 cores (build
# included; figures in RELIABILITY.md, "loom").
set -euo pipefail
cd "$(dirname "$0")/.."
export RUSTFLAGS="--cfg loom ${RUSTFLAGS:-}"
export LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-3}"
# Its own target directory: other RUSTFLAGS would rebuild everything each time.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}/loom"
cargo test --release --lib loom_ -- --nocapture --test-threads=1
