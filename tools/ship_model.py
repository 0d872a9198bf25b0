#!/usr/bin/env python3
"""Make a finished run the model shipped in the package (lenet_gpu/pretrained/lenet5.npz).

    python tools/ship_model.py RUN_DIR

Copies RUN_DIR/model.npz with, in its metadata ("training"), the command that trained it
(rebuilt from RUN_DIR/metrics.json), the seed, the final test error, the data's sha256 and the
date, and writes the same record to docs/pretrained.json. Refuses a run above 0.7% test error.
"""
import json
import shlex
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from lenet_gpu.cli import make_parser  # noqa: E402
from lenet_gpu.model import Sequential  # noqa: E402
from lenet_gpu.predict import PRETRAINED  # noqa: E402

MAX_ERROR = 0.7


def command(config):
    """The `lenet-gpu train` command of a run's config: every option that differs from the
    parser's default, so the command rebuilds the run (with --data DIR)."""
    defaults = vars(make_parser().parse_args(["train"]))
    args = ["lenet-gpu", "train", "--data", "DIR"]
    for name, value in config.items():
        if name in ("command", "quiet", "overwrite") or value == defaults.get(name, value) and \
                name not in ("seed",):
            continue
        flag = "--" + name.replace("_", "-")
        if value is True:
            args.append(flag)
        elif value is False:
            args.append("--no-" + name.replace("_", "-"))
        elif value is not None:
            args += [flag, str(value)]
    return shlex.join(args)


def main(run):
    run = Path(run)
    m = json.loads((run / "metrics.json").read_text())
    error = m["final_test_error_pct"]
    if error > MAX_ERROR:
        sys.exit(f"{run}: test error {error:.2f}% is above the {MAX_ERROR}% a shipped model must reach")
    model = Sequential.load(run / "model.npz")
    record = {"command": command(m["config"]), "seed": m["config"]["seed"],
              "test_error_pct": round(error, 4), "epochs": len(m["epochs"]),
              "backend": m["backend"], "device": m["device"], "dataset": m["dataset"],
              "date": time.strftime("%Y-%m-%d"),
              "test_error_per_epoch": [round(e["test_error_pct"], 4) for e in m["epochs"]]}
    model.meta["training"] = record
    PRETRAINED.parent.mkdir(exist_ok=True)
    model.save(PRETRAINED)
    (REPO / "docs" / "pretrained.json").write_text(json.dumps(record, indent=2) + "\n")
    print(f"shipped {PRETRAINED} ({PRETRAINED.stat().st_size:,} bytes): {record['command']}, "
          f"{error:.2f}% test error")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
