#!/bin/sh
# run.sh [DEPTH [THREADS]]: instructions per install+uninstall, thread by
# thread, for each shape of store ids (shapes.c), under callgrind: each
# thread pushes DEPTH (default 80) ids of the shape and pops them, 3 and
# then 13 times; the difference of its two counts over 10 * DEPTH is one
# install+uninstall averaged over the stack's depths, on that thread's
# table (callgrind keeps addresses, so thread k draws alike in both runs).
# Prints the mean over THREADS (default 128) fresh threads, the median,
# the 90th and 99th percentiles and the worst thread. Not a timed test: a
# measurement (BENCHMARKS.md, "Does the id's hash matter?"). SHAPES="a b"
# runs those shapes only.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
depth=${1:-80}
threads=${2:-128}
command -v valgrind >/dev/null || { echo "run.sh: valgrind is not installed" >&2; exit 2; }
cargo build --release --manifest-path "$root/Cargo.toml" >&2
out=$root/target/id_shapes
mkdir -p "$out"
${CC:-cc} -std=c11 -O2 -Wall -Wextra -I"$root/include" -o "$out/shapes" "$here/shapes.c" \
  -L"$root/target/release" -lstorectx -Wl,-rpath,"$root/target/release" -lpthread
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for shape in ${SHAPES:-new random arr64 arr24 page huge high fresh}; do
  for r in 2 12; do
    valgrind --tool=callgrind --callgrind-out-file="$tmp/$shape.$r" "$out/shapes" "$shape" "$depth" "$r" \
      "$threads" >/dev/null 2>&1
  done
  python3 - "$tmp" "$shape" "$depth" <<'PY'
import glob, sys
tmp, shape, depth = sys.argv[1], sys.argv[2], int(sys.argv[3])
def totals(r):
    out = {}
    for f in glob.glob(f"{tmp}/{shape}.{r}.*"):
        for line in open(f):
            if line.startswith("totals:"):
                out[int(f.rsplit(".", 1)[1])] = int(line.split()[1])
    return out
a, b = totals(2), totals(12)
per = sorted((b[k] - a[k]) / (10 * depth) for k in a if k in b)
pick = lambda q: per[min(len(per) - 1, int(len(per) * q))]
print(f"{shape:7s} depth {depth}: {len(per)} threads, instructions per install+uninstall: "
      f"mean {sum(per) / len(per):6.1f} median {pick(.5):6.1f} p90 {pick(.9):6.1f} "
      f"p99 {pick(.99):6.1f} worst {per[-1]:6.1f}")
PY
done
