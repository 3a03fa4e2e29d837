#!/usr/bin/env python3
"""instr.py: where one bench case's instructions go, instruction by instruction.

Runs the case under callgrind (--dump-instr=yes) with a fixed number of
iterations, then prints the disassembly (objdump -d) of each named function
with the instructions it executed per operation, and its total per op.
Setup outside the timed loop (fillers at depth 1000) adds ~1 % to counts
in the install/uninstall functions.

Usage: benches/instr.py LABEL FUNC [FUNC...]
  LABEL  a case label (bench --list), e.g. "storectx install+uninstall depth=1 threads=1"
  FUNC   a symbol: storectx_install, floor_ie_install, or the bench's loop
         (storectx_install_uninstall, floor_ie_get_release, ...)
Build first (benches/run.sh --build-only). STORECTX_ROOT as for run.sh.
"""
import collections
import os
import re
import subprocess
import sys
import tempfile

ITERS = 100000


def per_instruction_costs(path):
    """{(object, function): {runtime address: self Ir}} from a callgrind file."""
    names = {}
    cost = collections.defaultdict(lambda: collections.defaultdict(int))
    ob = fn = None
    last = [0, 0]  # the compressed positions: instruction address, line
    after_calls = False

    def name(kind, s):
        m = re.match(r"\((\d+)\)(?: (.*))?$", s)
        if not m:
            return s
        if m.group(2) is not None:
            names[(kind, m.group(1))] = m.group(2)
        return names[(kind, m.group(1))]

    def position(tok, i):
        if tok == "*":
            return last[i]
        if tok[0] in "+-":
            return last[i] + int(tok, 0)
        return int(tok, 0)

    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            key, _, value = line.partition("=")
            if key == "ob":
                ob = name("ob", value)
            elif key == "fn":
                fn = name("fn", value)
            elif key == "cob":
                name("ob", value)
            elif key == "cfn":
                name("fn", value)
            elif key in ("fl", "fi", "fe", "cfl", "cfi"):
                name("fl", value)
            elif key == "calls":
                after_calls = True  # the next cost line is the call's inclusive cost
            elif line[0] in "0123456789+-*":
                toks = line.split()
                last[0] = position(toks[0], 0)
                if len(toks) > 2:
                    last[1] = position(toks[1], 1)
                if after_calls:
                    after_calls = False
                    continue
                cost[(ob, fn)][last[0]] += int(toks[-1])
    return cost


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    label, funcs = sys.argv[1], sys.argv[2:]
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.abspath(os.environ.get("STORECTX_ROOT", os.path.join(here, "..")))
    bench = os.path.join(root, "target", "bench", "bench")
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "callgrind.out")
        subprocess.run(["valgrind", "--tool=callgrind", "--dump-instr=yes",
                        "--callgrind-out-file=" + out, bench, "--case", label,
                        "--iters", str(ITERS), "--rounds", "1"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cost = per_instruction_costs(out)
    for func in funcs:
        found = [(o, m) for (o, f), m in cost.items() if f == func]
        if not found:
            print("== %s: not executed" % func)
            continue
        for obj, m in found:
            dis = subprocess.run(["objdump", "-d", "--no-show-raw-insn", "-M", "intel", obj],
                                 capture_output=True, text=True, check=True).stdout
            sym = re.search(r"^([0-9a-f]+) <%s>:$" % re.escape(func), dis, re.M)
            start = int(sym.group(1), 16)
            # The object's load bias: page-aligned, and the entry was executed.
            bias = next(a - start for a in sorted(m) if (a - start) % 0x1000 == 0)
            print("== %s (%s), instructions per op" % (func, obj))
            total = 0
            for line in dis[sym.end():].split("\n\n")[0].splitlines():
                mm = re.match(r"\s*([0-9a-f]+):\s*(.*)", line)
                if not mm:
                    continue
                c = m.get(int(mm.group(1), 16) + bias, 0)
                total += c
                if c * 2 >= ITERS:
                    print("  %5.2f  %s" % (c / ITERS, line.strip()))
            print("  total %.2f per op" % (total / ITERS))


if __name__ == "__main__":
    main()
