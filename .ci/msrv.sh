#!/usr/bin/env bash
# The minimum supported Rust (Cargo.toml `rust-version`, stated in README.md
# and docs/getting-started.md) builds the library and every test target.
# A new-user trial once found the documented minimum did not build: this
# keeps the figure true. Warnings are errors: a lint that only the minimum
# compiler raises (Rust 1.85 once called a function used only in a `const _`
# assert "never used") fails here, not in a user's build log. Cost: ~1 min
# download + ~1.5 min build on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
msrv=$(sed -n 's/^rust-version = "\(.*\)"/\1/p' Cargo.toml)
[ -n "$msrv" ] || { echo "no rust-version in Cargo.toml" >&2; exit 1; }
rustup toolchain list | grep -q "^$msrv-" ||
  rustup toolchain install "$msrv" --profile minimal --no-self-update
RUSTFLAGS="-D warnings" CARGO_TARGET_DIR=target/msrv cargo "+$msrv" build --locked --lib --tests --features testing
echo "Rust $msrv builds the library and every test target"
