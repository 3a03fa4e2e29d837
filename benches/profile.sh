#!/bin/sh
# profile.sh: instructions per operation under valgrind's callgrind, for the
# bench's single-thread cases at depth 1 and 1000 (libstorectx, floor, seed)
# and libstorectx's async/segment cases. Unlike ns/op, instruction counts do
# not depend on what else the machine runs: compare these when it is busy.
# Each case runs twice (N1 and N2 iterations); the difference divided by
# N2 - N1 is the per-operation count without setup and process start-up.
# Usage: benches/profile.sh [SUBSTR]   (only the cases whose label contains SUBSTR)
# STORECTX_ROOT as for run.sh.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "${STORECTX_ROOT:-$here/..}" && pwd)
bench=$root/target/bench/bench
n1=20000
n2=220000

command -v valgrind >/dev/null || { echo "profile.sh: valgrind is not installed" >&2; exit 2; }
"$here/run.sh" --build-only >&2

ir() { # total instructions of one case run with $2 iterations
  valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bench" --case "$1" --iters "$2" \
    --rounds 1 2>&1 >/dev/null | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}

printf '%-72s %10s\n' "case" "Ir/op"
"$bench" --list --only "${1:-threads=1}" | grep 'threads=1$' | grep -v 'depth=16 \|depth=256 ' |
  while IFS= read -r label; do
    a=$(ir "$label" $n1)
    b=$(ir "$label" $n2)
    printf '%-72s %10.1f\n' "$label" "$(echo "($b - $a) / ($n2 - $n1)" | bc -l)"
  done
