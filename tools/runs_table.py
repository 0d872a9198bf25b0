#!/usr/bin/env python3
"""Summarise groups of `lenet-gpu train` runs laid out as DIR/<name>/seed<S>/metrics.json: one
Markdown row per <name> with the final and best test error (mean ± std over seeds), each seed's
final error, epochs done and seconds per epoch. Unfinished runs show how far they got.

    python3 tools/runs_table.py docs/paper/runs
"""
import glob
import json
import os
import sys

from lenet_gpu.study import mean_std


def fmt(values):
    mean, std = mean_std(values)
    return "-" if not values else f"{mean:.2f} ± {std:.2f}"


def table(root):
    rows = ["| runs | seeds | epochs | final test error % | best test error % | per seed (final) | s / epoch |",
            "| --- | --- | --- | --- | --- | --- | --- |"]
    for group in sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d))):
        runs = []
        for path in sorted(glob.glob(os.path.join(root, group, "seed*", "metrics.json"))):
            with open(path) as f:
                runs.append(json.load(f))
        runs = [m for m in runs if m.get("epochs")]
        if not runs:
            continue
        final = [m["epochs"][-1]["test_error_pct"] for m in runs]
        best = [min(e["test_error_pct"] for e in m["epochs"]) for m in runs]
        epochs = sorted({len(m["epochs"]) for m in runs})
        secs = [e["seconds"] for m in runs for e in m["epochs"]]
        seeds = ", ".join(f"{m['config']['seed']}: {v:.2f}" for m, v in zip(runs, final))
        rows.append(f"| {group} | {len(runs)} | {'/'.join(map(str, epochs))} | {fmt(final)} | "
                    f"{fmt(best)} | {seeds} | {sum(secs) / len(secs):.0f} |")
    return "\n".join(rows)


if __name__ == "__main__":
    if len(sys.argv) != 2 or not os.path.isdir(sys.argv[1]):
        sys.exit("usage: runs_table.py DIR   (DIR/<name>/seed<S>/metrics.json)")
    print(table(sys.argv[1]))
