#!/bin/sh
# profile.sh: instructions per operation under valgrind's callgrind, for the
# bench's single-thread cases at depth 1 and 1000 (libstorectx, the two
# floors, seed), libstorectx's async/segment cases beside a pthread_mutex
# equivalent, the id-hash check and the refusals. Unlike ns/op, instruction
# counts do not depend on what else the machine runs: compare these when it
# is busy.
# Each case runs twice (N1 and N2 iterations); the difference divided by
# N2 - N1 is the per-operation count without setup and process start-up
# (the bench's loop, a few instructions per op, is included, as for every
# implementation). For the refusals, the count is also taken per exported
# function (callgrind_annotate --inclusive: the export and all it calls, no
# loop), for the refused call and for the same function succeeding.
# Then, for each hot operation at depth 1 and 1000: libstorectx's Ir/op, each
# floor's and the seed's, the ratio to the initial-exec floor (floor_ie) and
# the instruction target of issues 14/20 on that ratio, PASS or MISS; the
# per-extra-entry cost of suspend+resume, the id-hash check, and each
# refusal against its function's success (issue 20: at most 3x).
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

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
results=$tmp/results

cg() { # one case ($1) with $2 iterations, callgrind's output in $3
  valgrind --tool=callgrind --callgrind-out-file="$3" "$bench" --case "$1" --iters "$2" \
    --rounds 1 >/dev/null 2>&1
}
total() { sed -n 's/^totals: //p' "$1"; }
incl() { # inclusive instructions of function $2 in callgrind output $1 (0 if not run)
  callgrind_annotate --inclusive=yes --threshold=100 "$1" 2>/dev/null |
    awk -v f="$2" '{ for (i = 1; i <= NF; i++) if ($i ~ (":" f "$") && $(i + 1) ~ /^\[/) {
      gsub(",", "", $1); print $1; found = 1; exit } } END { if (!found) print 0 }'
}

# The exported functions a case calls: "refused <fn> (why)" calls <fn>; the
# hot pairs call their two halves. Prefixed with the implementation.
functions() { # label
  impl=${1%% *}
  case "$1" in
    *" refused "*) f=${1#* refused }; echo "${impl}_${f%% *}" ;;
    *" install+uninstall depth="*) echo "${impl}_install ${impl}_uninstall" ;;
    *" get_current+borrow_release depth="*) echo "${impl}_get_current ${impl}_borrow_release" ;;
    *" pause+unpause depth="*) echo "${impl}_pause ${impl}_unpause" ;;
    *" is_active depth="*) echo "${impl}_is_active" ;;
    *" get_current_transient depth="*) echo "${impl}_get_current_transient" ;;
  esac
}

printf '%-72s %10s\n' "case" "Ir/op"
"$bench" --list --only "${1:-threads=1}" | grep 'threads=1$' |
  grep -v -E '(uninstall|borrow_release|unpause|is_active|get_current_transient) depth=(16|256) ' |
  while IFS= read -r label; do
    cg "$label" $n1 "$tmp/a"
    cg "$label" $n2 "$tmp/b"
    per=$(echo "($(total "$tmp/b") - $(total "$tmp/a")) / ($n2 - $n1)" | bc -l)
    printf '%-72s %10.1f\n' "$label" "$per"
    fns=""
    for f in $(functions "$label"); do
      x=$(echo "($(incl "$tmp/b" "$f") - $(incl "$tmp/a" "$f")) / ($n2 - $n1)" | bc -l)
      fns="$fns $f=$x"
    done
    printf '%s\t%s\t%s\n' "$label" "$per" "$fns" >>"$results"
  done

# Labels are "<impl> <operation> depth=<D> threads=1".
awk -F '\t' '
  {
    label = $1; sub(/ threads=1$/, "", label)
    impl = label; sub(/ .*/, "", impl)
    depth = label; sub(/.* depth=/, "", depth)
    op = label; sub(/^[^ ]* /, "", op); sub(/ depth=[0-9]*$/, "", op)
    ir[op, depth, impl] = $2
    nf = split($3, pairs, " ")
    for (i = 1; i <= nf; i++) {
      split(pairs[i], kv, "=")
      fn[op, depth, impl, kv[1]] = kv[2]
      # A function succeeding: its count in the hot pair at depth 1.
      if (op !~ /^refused / && depth == 1) success[kv[1]] = kv[2]
    }
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

    # Suspend+resume: what each entry past the first costs (issue 20: <= 60).
    s1 = ir["suspend+resume, 1 entry", 1, "storectx"]
    s4 = ir["suspend+resume, 4 entries", 4, "storectx"]
    s16 = ir["suspend+resume, 16 entries", 16, "storectx"]
    if (s1 != "" && s4 != "" && s16 != "") {
      per = (s16 - s1) / 15
      printf "\nsuspend+resume: 1 entry %.1f, 4 entries %.1f, 16 entries %.1f; each extra entry %.1f (1 -> 4) / %.1f (1 -> 16)  %s (<= 60)\n",
        s1, s4, s16, (s4 - s1) / 3, per, per <= 60 ? "PASS" : "MISS"
    }
    a = ir["try_write+install_async+uninstall", 1, "storectx"]
    m = ir["try_write+install_async+uninstall", 1, "floor_ie"]
    if (a != "" && m != "")
      printf "try_write+install_async+uninstall %.1f, pthread_mutex equivalent (floor_ie) %.1f: %.2fx\n", a, m, a / m
    c = ir["install+uninstall, ids colliding under a fixed hash", 2, "storectx"]
    p = ir["install+uninstall, ids apart under a fixed hash", 2, "storectx"]
    if (c != "" && p != "")
      printf "install+uninstall above one store (mean over 512 threads, each table its own multiplier), ids colliding under a fixed hash %.1f, apart %.1f: %+.1f  %s (same count within 0.5)\n",
        c, p, c - p, c - p < 0.5 && p - c < 0.5 ? "PASS" : "MISS"

    # Refusals: the count of the export itself (inclusive, no loop), refused and succeeding.
    printf "\nRefusals, instructions per call of the export (inclusive, loop excluded)\n"
    printf "%-48s %5s %9s %9s %8s %9s  %s\n", "refused call", "depth", "refused", "success", "ratio",
      "floor_ie", "target"
    rp = 0; rm = 0
    for (k in fn) {
      split(k, kk, SUBSEP)
      if (kk[3] != "storectx" || kk[1] !~ /^refused /) continue
      name = kk[1]; d = kk[2]; f = kk[4]
      sub(/^storectx_/, "", f)
      ok_fn = "storectx_" f
      succ = success[ok_fn]
      fie = fn[name, 2, "floor_ie", "floor_ie_" f]
      ratio = succ > 0 ? fn[k] / succ : 0
      verdict = ""
      if (f != "is_active" && succ > 0) {
        good = ratio <= 3
        verdict = sprintf("%s (<= 3x)", good ? "PASS" : "MISS")
        if (good) rp++; else rm++
      }
      print sprintf("%-48s %5d %9.1f %9s %8s %9s  %s", name, d, fn[k],
        succ > 0 ? sprintf("%.1f", succ) : "-", succ > 0 ? sprintf("%.2fx", ratio) : "-",
        fie != "" ? sprintf("%.1f", fie) : "-", verdict) | "sort"
    }
    close("sort")
    if (rp + rm) printf "  %d PASS, %d MISS\n", rp, rm
  }' "$results"
