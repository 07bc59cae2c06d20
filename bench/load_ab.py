#!/usr/bin/env python3
"""load_ab.py - before/after of bench_load on a shared machine: runs two (or more) bench_load
commands alternately, one repetition each per round (the order flipped every round), and
prints the median of every column of bench_load's table per case and variant, with the load
averages the runs saw. Developer-run, never by ctest.

usage: bench/load_ab.py ROUNDS NAME=COMMAND [NAME=COMMAND ...]
  e.g. bench/load_ab.py 7 "before=/tmp/bench_load.old --file M.gguf --reps 1" \\
                          "after=build/bench_load --file M.gguf --reps 1"
"""
import re
import statistics
import subprocess
import sys

COLS = ['cat', 'cold', 'c.wall', 'c/cat', 'memcpy', 'fresh', 'warm', 'w.wall', 'w/mcpy', 'HWM/a']


def main():
    if len(sys.argv) < 3 or not sys.argv[1].isdigit() or any('=' not in a for a in sys.argv[2:]):
        sys.exit(__doc__)
    rounds = int(sys.argv[1])
    variants = [a.split('=', 1) for a in sys.argv[2:]]
    rows, loads, cases = {}, [], []
    for r in range(rounds):
        for name, cmd in (variants if r % 2 == 0 else variants[::-1]):
            out = subprocess.run(cmd, shell=True, capture_output=True, text=True)
            if out.returncode:
                sys.exit(f'{name}: {cmd} failed:\n{out.stderr}')
            m = re.search(r'load average ([\d.]+) ', out.stdout)
            if m:
                loads.append(float(m.group(1)))
            for line in out.stdout.splitlines():
                if '|' not in line or line.startswith('file'):
                    continue
                head, *parts = line.split('|')
                case = ':'.join(head.split()[:2])
                if case not in cases:
                    cases.append(case)
                rows.setdefault((name, case), []).append(
                    [float(x) for p in parts for x in p.split()])
    print(f'{rounds} rounds, alternating; load average (1 min) at the runs: min {min(loads):.2f}, '
          f'median {statistics.median(loads):.2f}, max {max(loads):.2f}')
    print('GB/s of the file; c/cat = cold load / cat, w/mcpy = warm load / memcpy (medians of '
          'the per-run ratios)')
    print(f"{'case':40s} {'variant':8s} " + ' '.join(f'{c:>7s}' for c in COLS))
    for case in cases:
        for name, _ in variants:
            v = rows.get((name, case))
            if v:
                med = [statistics.median(x[i] for x in v) for i in range(len(COLS))]
                print(f'{case[:40]:40s} {name:8s} ' + ' '.join(f'{x:7.2f}' for x in med))


if __name__ == '__main__':
    main()
