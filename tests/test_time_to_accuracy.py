"""bench/time_to_accuracy.py on the CPU: our side of the recipe runs on NumPy, the JSON holds
every run, and the exit status says whether every seed reached the target. (The full recipe's
accuracy on the CPU is in bench/RESULTS.md; the PyTorch and graph sides need a GPU.)"""
import importlib.util
import json
from pathlib import Path

spec = importlib.util.spec_from_file_location(
    "time_to_accuracy", Path(__file__).resolve().parent.parent / "bench" / "time_to_accuracy.py")
tta = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tta)


def test_the_recipe_runs_on_numpy_and_reports_each_seed(mnist_dir, tmp_path, capsys):
    out = tmp_path / "tta.json"
    args = ["--data", mnist_dir, "--backend", "numpy", "--seeds", "2", "--limit", "1100",
            "--json", str(out)]
    assert tta.main(args + ["--target", "50"]) == 0
    report = json.loads(out.read_text())
    runs = report["runs"]["ours-eager"]
    assert [r["seed"] for r in runs] == [0, 1]
    assert all(r["seconds"] > 0 and 50 <= r["test_accuracy_pct"] <= 100 for r in runs)
    assert runs[0]["test_accuracy_pct"] != runs[1]["test_accuracy_pct"], "the seeds differ"
    assert report["table"]["ours-eager"]["seeds_at_target"] == 2
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("RESULT: CPU (NumPy): ours-eager")
    # 1,100 images for 2 epochs cannot reach 99.9%: the run says so through its exit status
    assert tta.main(args + ["--target", "99.9", "--seeds", "1"]) == 1
