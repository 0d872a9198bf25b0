#!/usr/bin/env python3
"""Summarize a pytest-benchmark JSON from bench/bench_kernels.py as a markdown table.

    python bench/summarize.py bench.json

One row per (kernel, N): median times in microseconds of ours, cuDNN and NumPy, the ratio
cuDNN / ours (above 1: ours is faster), and our achieved bandwidth (bytes moved at the memory
floor / time) and arithmetic rate. Standard library only.
"""
import json
import sys


def main(path):
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError) as e:
        sys.exit(f"{path}: not a readable pytest-benchmark JSON ({e})")
    rows = {}
    for bench in data["benchmarks"]:
        info = bench.get("extra_info", {})
        if "kernel" not in info:
            continue
        row = rows.setdefault((info["kernel"], info["N"]), {"bytes": info["bytes"], "flops": info["flops"]})
        row[info["impl"]] = bench["stats"]["median"]   # seconds
    if not rows:
        sys.exit(f"{path}: no kernel benchmarks found")
    machine = data.get("machine_info", {})
    print(f"Kernel benchmarks, {data.get('datetime', '')} on {machine.get('node', '?')} "
          "(median of the timed rounds; ratio = cuDNN / ours)\n")
    print("| kernel | N | ours us | cuDNN us | ratio cuDNN/ours | NumPy us | ours GB/s | ours GFLOP/s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")

    def us(t):
        return "-" if t is None else f"{t * 1e6:,.1f}"

    kernels = list(dict.fromkeys(k for k, _ in rows))   # first-seen order
    for kernel in kernels:
        for N in sorted(n for k, n in rows if k == kernel):
            r = rows[(kernel, N)]
            ours, cudnn, numpy = r.get("ours"), r.get("cudnn"), r.get("numpy")
            ratio = f"{cudnn / ours:.2f}" if ours and cudnn else "-"
            gbs = f"{r['bytes'] / ours / 1e9:,.0f}" if ours else "-"
            gflops = f"{r['flops'] / ours / 1e9:,.0f}" if ours else "-"
            print(f"| {kernel} | {N} | {us(ours)} | {us(cudnn)} | {ratio} | {us(numpy)} | {gbs} | {gflops} |")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python bench/summarize.py BENCH_JSON")
    main(sys.argv[1])
