#!/usr/bin/env python3
"""GPU time per fused-loop cycle from an Nsight Compute trace (docs/fused-loop.md).

    ncu --target-processes all --launch-skip 30000 --launch-count 2000 \
        --metrics gpu__time_duration.sum --csv node --import tsx bench/gpu/engines.ts MODEL ... > trace.csv
    python3 bench/gpu/ncu-cycle.py trace.csv[.gz] [--marker REGEX] [--per-cycle N] [--top 15]

The trace holds each kernel's own duration (ncu serializes kernels, locks clocks to base and flushes caches
by default, so this is an upper bound on the GPU's busy time). The cycles are cut at a marker kernel that
runs N times per cycle (default: onnxruntime's GatherElements/ScatterElements kernel on 8-byte values, which
the eagle loop runs 8 times a cycle: one per draft head's and the verify's two-level TopK, one for the tree).
Prints the kernels' time per complete cycle and the kernels that take most of it.
"""
import argparse
import collections
import csv
import gzip
import io
import re


def read_rows(path):
    opener = gzip.open if path.endswith('.gz') else open
    with opener(path, 'rt') as f:
        lines = [line for line in f if line.startswith('"')]
    return list(csv.DictReader(io.StringIO(''.join(lines))))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('trace')
    parser.add_argument('--marker', default=r'_GatherScatterElementsKernel<double')
    parser.add_argument('--per-cycle', type=int, default=8)
    parser.add_argument('--top', type=int, default=15)
    args = parser.parse_args()
    rows = [r for r in read_rows(args.trace) if r.get('Metric Name') == 'gpu__time_duration.sum']
    if not rows:
        raise SystemExit(f'{args.trace}: no gpu__time_duration.sum rows (run ncu with --metrics gpu__time_duration.sum --csv)')
    scale = {'ns': 1e-6, 'us': 1e-3, 'usecond': 1e-3, 'nsecond': 1e-6, 'ms': 1.0, 'msecond': 1.0}
    kernels = [(r['Kernel Name'], float(r['Metric Value'].replace(',', '')) * scale[r['Metric Unit']]) for r in rows]
    marks = [i for i, (name, _) in enumerate(kernels) if re.search(args.marker, name)]
    cycles = (len(marks) - 1) // args.per_cycle
    if cycles < 1:
        raise SystemExit(f'{args.trace}: fewer than {args.per_cycle + 1} marker kernels ({len(marks)}); pick --marker / --per-cycle for this loop')
    window = kernels[marks[0]:marks[cycles * args.per_cycle]]
    total = sum(ms for _, ms in window)
    print(f'{args.trace}: {len(kernels)} kernels, {cycles} complete cycles of {len(window) / cycles:.0f} kernels, '
          f'GPU time {total / cycles:.2f} ms per cycle')
    by_name = collections.defaultdict(lambda: [0, 0.0])
    for name, ms in window:
        by_name[name][0] += 1
        by_name[name][1] += ms
    for name, (count, ms) in sorted(by_name.items(), key=lambda item: -item[1][1])[:args.top]:
        print(f'  {ms / cycles:7.3f} ms  {count / cycles:5.1f}×  {name[:110]}')


if __name__ == '__main__':
    main()
