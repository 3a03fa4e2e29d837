#!/bin/sh
# profile.sh: instructions per operation under valgrind's callgrind, for the
# bench's single-thread cases at depth 1 and 1000 (libstorectx, the two
# floors, seed) and libstorectx's async/segment cases. Unlike ns/op,
# instruction counts do not depend on what else the machine runs: compare
# these when it is busy.
# Each case runs twice (N1 and N2 iterations); the difference divided by
# N2 - N1 is the per-operation count without setup and process start-up
# (the bench's loop, a few instructions per op, is included, as for every
# implementation).
# Then, for each hot operation at depth 1 and 1000: libstorectx's Ir/op, each
# floor's and the seed's, the ratio to the initial-exec floor (floor_ie) and
# the instruction target of issue 14 on that ratio, PASS or MISS.
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

results=$(mktemp)
trap 'rm -f "$results"' EXIT

printf '%-72s %10s\n' "case" "Ir/op"
"$bench" --list --only "${1:-threads=1}" | grep 'threads=1$' | grep -v 'depth=16 \|depth=256 ' |
  while IFS= read -r label; do
    a=$(ir "$label" $n1)
    b=$(ir "$label" $n2)
    per=$(echo "($b - $a) / ($n2 - $n1)" | bc -l)
    printf '%-72s %10.1f\n' "$label" "$per"
    printf '%s\t%s\n' "$label" "$per" >>"$results"
  done

# Labels are "<impl> <operation> depth=<D> threads=1".
awk -F '\t' '
  {
    label = $1; sub(/ threads=1$/, "", label)
    impl = label; sub(/ .*/, "", impl)
    depth = label; sub(/.* depth=/, "", depth)
    op = label; sub(/^[^ ]* /, "", op); sub(/ depth=[0-9]*$/, "", op)
    ir[op, depth, impl] = $2
  }
  function cell(v) { return v == "" ? "-" : sprintf("%.1f", v) }
  END {
    n = split("install+uninstall get_current+borrow_release pause+unpause is_active get_current_transient", ops, " ")
    split("1.5 1.15 1.15 1.05 1.05", limit, " ")
    printf "\nHot operations, Ir/op vs the initial-exec floor (issue 14 instruction targets)\n"
    printf "%-27s %5s %9s %9s %9s %9s %8s  %s\n", "operation", "depth", "storectx", "floor",
      "floor_ie", "seed", "x f_ie", "target"
    pass = 0; miss = 0
    for (o = 1; o <= n; o++)
      for (d = 1; d <= 1000; d += 999) {
        l = ir[ops[o], d, "storectx"]; f = ir[ops[o], d, "floor"]
        fi = ir[ops[o], d, "floor_ie"]; s = ir[ops[o], d, "seed"]
        if (l == "" && f == "" && fi == "" && s == "") continue
        ratio = "-"; verdict = ""
        if (l != "" && fi > 0) {
          ratio = sprintf("%.2fx", l / fi)
          ok = l / fi <= limit[o] + 0
          verdict = sprintf("%s (<= %.2fx)", ok ? "PASS" : "MISS", limit[o])
          if (ok) pass++; else miss++
        }
        printf "%-27s %5d %9s %9s %9s %9s %8s  %s\n", ops[o], d, cell(l), cell(f), cell(fi),
          cell(s), ratio, verdict
      }
    if (pass + miss) printf "  %d PASS, %d MISS\n", pass, miss
  }' "$results"
