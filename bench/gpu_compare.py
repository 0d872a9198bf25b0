#!/usr/bin/env python3
"""Checks of GPU training runs for bench/gpu_check.sh; each prints one line ending in
"RESULT: ..." and exits non-zero when the check fails.

    python bench/gpu_compare.py study RUN_DIR CONFIG        final test error against the CPU
        study's seeds (docs/study/study.json): within mean +- max(3 std, 0.1) points. Two
        backends sum in different orders and follow different trajectories, so a GPU run is
        one more draw from the seed distribution, not a copy of the CPU run.
    python bench/gpu_compare.py identical RUN_A RUN_B       two runs with one seed: the same
        metrics (seconds aside) and bit-identical model arrays.
    python bench/gpu_compare.py paper RUN_DIR CPU_RUN_DIR   pass 1 of the paper network: test
        error and seconds beside the NumPy run's pass 1; fails when the two runs were made with
        different training options (then their pass 1 says nothing of the GPU).
"""
import json
import statistics
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent


def metrics(run):
    return json.loads((Path(run) / "metrics.json").read_text())


def study(run, config):
    cpu = json.loads((REPO / "docs/study/study.json").read_text())["configs"][config]
    seeds = list(cpu["per_seed_final_test_error_pct"].values())
    mean, std = statistics.mean(seeds), statistics.stdev(seeds)
    margin = max(3 * std, 0.1)
    m = metrics(run)
    err, epochs = m["final_test_error_pct"], len(m["epochs"])
    seconds = sum(e["seconds"] for e in m["epochs"]) / epochs
    ok = abs(err - mean) <= margin
    print(f"{config} on {m['device']}: {err:.2f}% after {epochs} epochs, {seconds:.2f} s/epoch; "
          f"CPU seeds {', '.join(f'{s:.2f}' for s in seeds)} (mean {mean:.2f} +- {margin:.2f}) "
          f"RESULT: {err:.2f}% {'within' if ok else 'OUTSIDE'} the CPU spread, {seconds:.2f} s/epoch")
    return ok


def identical(run_a, run_b):
    ma, mb = metrics(run_a), metrics(run_b)
    drop = ("seconds", "seconds_total")
    strip = [[{k: v for k, v in e.items() if k not in drop} for e in m["epochs"]] for m in (ma, mb)]
    same_metrics = strip[0] == strip[1]
    with np.load(Path(run_a) / "model.npz") as a, np.load(Path(run_b) / "model.npz") as b:
        same_arrays = a.files == b.files and all(np.array_equal(a[k], b[k]) for k in a.files)
    ok = same_metrics and same_arrays
    print(f"{run_a} vs {run_b}: metrics {'identical' if same_metrics else 'DIFFER'}, "
          f"model arrays {'bit-identical' if same_arrays else 'DIFFER'} "
          f"RESULT: reruns {'identical' if ok else 'DIFFER'}")
    return ok


# the options that decide pass 1 of the paper network (backend and run bookkeeping aside)
PAPER_OPTIONS = ("model", "init", "subsample_coef", "order", "optimizer", "lr", "sdlm_mu", "paper_j",
                 "batch_size", "seed", "augment")


def paper(run, cpu_run):
    gm, cm = metrics(run), metrics(cpu_run)
    g, c = gm["epochs"][0], cm["epochs"][0]
    differ = [k for k in PAPER_OPTIONS if gm["config"].get(k) != cm["config"].get(k)]
    print(f"pass 1 of the paper network at batch 1: {g['test_error_pct']:.2f}% in {g['seconds']:.1f} s "
          f"on {gm['device']}; NumPy: {c['test_error_pct']:.2f}% in {c['seconds']:.1f} s "
          + (f"RESULT: {g['test_error_pct']:.2f}% in {g['seconds']:.1f} s (NumPy {c['test_error_pct']:.2f}%, "
             f"{c['seconds']:.0f} s)" if not differ else
             f"RESULT: NOT COMPARABLE, options differ: {', '.join(differ)}"))
    return not differ


if __name__ == "__main__":
    commands = {"study": study, "identical": identical, "paper": paper}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        sys.exit(__doc__)
    sys.exit(0 if commands[sys.argv[1]](*sys.argv[2:]) else 1)
