"""bench/gpu_compare.py, the checks bench/gpu_check.sh runs on the GPU's training runs: they must
fail when they should, which no GPU run can show us beforehand."""
import importlib.util
import json
from pathlib import Path

import numpy as np

spec = importlib.util.spec_from_file_location(
    "gpu_compare", Path(__file__).resolve().parent.parent / "bench" / "gpu_compare.py")
gpu_compare = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gpu_compare)


def run(tmp_path, name, config, err=2.9, seconds=1.0, w=0.0):
    d = tmp_path / name
    d.mkdir()
    (d / "metrics.json").write_text(json.dumps({
        "config": config, "device": "test",
        "epochs": [{"test_error_pct": err, "seconds": seconds}]}))
    np.savez(d / "model.npz", w=np.full(3, w, np.float32))
    return d


PAPER = {"model": "lenet5-paper", "init": "fan_in:1.1", "subsample_coef": 0.5, "order": "fixed",
         "optimizer": "sdlm", "lr": 1.0, "sdlm_mu": 0.02, "paper_j": None, "batch_size": 1,
         "seed": 0, "augment": "none", "backend": "numpy"}


def test_paper_pass_one_needs_the_same_options(tmp_path, capsys):
    cpu = run(tmp_path, "cpu", PAPER)
    gpu = run(tmp_path, "gpu", {**PAPER, "backend": "cupy"}, err=3.1, seconds=9.0)
    assert gpu_compare.paper(gpu, cpu)
    assert "RESULT: 3.10% in 9.0 s (NumPy 2.90%" in capsys.readouterr().out
    other = run(tmp_path, "other", {**PAPER, "backend": "cupy", "sdlm_mu": 0.05})
    assert not gpu_compare.paper(other, cpu)
    assert "NOT COMPARABLE, options differ: sdlm_mu" in capsys.readouterr().out


def test_identical_reruns(tmp_path, capsys):
    a = run(tmp_path, "a", PAPER, seconds=1.0)
    assert gpu_compare.identical(a, run(tmp_path, "b", PAPER, seconds=2.0))   # seconds aside
    assert "reruns identical" in capsys.readouterr().out
    assert not gpu_compare.identical(a, run(tmp_path, "c", PAPER, err=3.0))
    assert "metrics DIFFER, model arrays bit-identical" in capsys.readouterr().out
    assert not gpu_compare.identical(a, run(tmp_path, "d", PAPER, w=1e-7))
    assert "metrics identical, model arrays DIFFER" in capsys.readouterr().out
