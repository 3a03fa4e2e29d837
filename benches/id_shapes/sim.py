#!/usr/bin/env python3
"""sim.py [DEPTH [TABLES]]: the store set's linear probing simulated for
shapes of store ids, each table with a multiplier drawn as
src/stack/store_set.rs draws it (an odd random number kept if
spreads_close_ids passes), sized as the stack sizes it for DEPTH entries.
For each shape: probes per id inserted (1 = its home slot was free; the
probe count of an install, and of a lookup of a present id), mean over
TABLES tables, their 99th percentile and worst, and the share of tables
whose mean exceeds 2, 4 and 8. 0.2's fixed Fibonacci multiplier, one
table, for comparison. Python's random stands in for fresh_multiplier's
splitmix64 (both uniform over odd numbers)."""
import random
import sys

M64 = (1 << 64) - 1
FIB = 0x9E3779B97F4A7C15


def spreads_close_ids(a, slots, max_quotient=8):
    n, d, q_prev, q = 1 << 64, a, 0, 1
    while d:
        t = n // d
        if t > max_quotient:
            return False
        q_next = t * q + q_prev
        if q_next >= slots:
            return True
        q_prev, q = q, q_next
        n, d = d, n - t * d
    return True


def slots_for(depth):  # Entries::try_reserve's capacity steps, then reserve_for
    cap = 16
    while cap < depth:
        step = (1 << (cap.bit_length() - 1)) // 4
        cap = (cap // step + 1) * step
    slots = 16
    while slots // 8 * 5 < cap:
        slots *= 2
    return slots


def probes(ids, a, slots):
    shift, table, total = 64 - (slots.bit_length() - 1), [0] * slots, 0
    for x in ids:
        i, p = ((x * a) & M64) >> shift, 1
        while table[i]:
            i, p = (i + 1) & (slots - 1), p + 1
        table[i] = x
        total += p
    return total / len(ids)


SHAPES = {
    "storectx_store_id_new (consecutive)": lambda k: 1000 + k,
    "separate mallocs of 100 B (112 apart)": lambda k: 0x55D4A3C012A0 + 112 * k,
    "objects of one array, 64 B": lambda k: 0x55D4A3C01280 + 64 * k,
    "objects of one array, 24 B": lambda k: 0x55D4A3C012A0 + 24 * k,
    "pages (4096 apart)": lambda k: 0x7F3A12345000 + 4096 * k,
    "huge pages (2 MiB apart)": lambda k: 0x7F3A00000000 + (k << 21),
    "high bits only ((k + 1) << 44)": lambda k: (k + 1) << 44,
    "random": None,
}


def main():
    depth = int(sys.argv[1]) if len(sys.argv) > 1 else 80
    tables = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    slots, rng = slots_for(depth), random.Random(1)
    print(f"{depth} ids, {slots} slots, {tables} tables: probes per id")
    for name, shape in SHAPES.items():
        means = []
        for _ in range(tables):
            a = rng.getrandbits(64) | 1
            while not spreads_close_ids(a, slots):
                a = rng.getrandbits(64) | 1
            if shape is None:
                ids = [rng.getrandbits(64) | 1 for _ in range(depth)]
            else:
                ids = [shape(k) for k in range(depth)]
            means.append(probes(ids, a, slots))
        means.sort()
        share = lambda x: 100 * sum(m > x for m in means) / tables
        fib = "" if shape is None else f"  (0.2: {probes([shape(k) for k in range(depth)], FIB, slots):.2f})"
        print(f"  {name:38s} mean {sum(means) / tables:5.2f} p99 {means[int(tables * .99)]:6.2f} "
              f"worst {means[-1]:7.2f}  >2 {share(2):4.1f}% >4 {share(4):4.1f}% >8 {share(8):4.1f}%{fib}")


main()
