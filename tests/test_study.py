"""`lenet-gpu study`: cells, resume, report."""
import json

from lenet_gpu import cli


def run(mnist_dir, out, *extra):
    return cli.main(["study", "--data", mnist_dir, "--out", str(out), "--seeds", "2", "--epochs", "1",
                     "--train-limit", "300", "--backend", "numpy",
                     "--configs", "tanh-mse", "tanh-mse-bn", *extra])


def test_study_writes_report_and_resumes_without_rerunning(mnist_dir, tmp_path, monkeypatch):
    assert run(mnist_dir, tmp_path) == 0
    s = json.loads((tmp_path / "study.json").read_text())
    assert set(s["configs"]) == {"tanh-mse", "tanh-mse-bn"}
    c = s["configs"]["tanh-mse"]
    assert c["seeds"] == [0, 1] and len(c["test_error_curves"]) == 2
    mean, std = c["final_test_error_pct"]
    per_seed = list(c["per_seed_final_test_error_pct"].values())
    assert abs(mean - sum(per_seed) / 2) < 1e-9 and std >= 0
    report = (tmp_path / "REPORT.md").read_text()
    assert "Reduced study" in report and "batch norm (tanh-mse -> tanh-mse-bn)" in report
    assert "--seed 1" in c["command"]["1"] and c["command"]["1"] in report

    # a finished cell is never trained again; a deleted one is
    calls = []
    real_main = cli.main
    monkeypatch.setattr(cli, "main", lambda argv=None: calls.append(argv) or real_main(argv))
    (tmp_path / "runs" / "tanh-mse-bn" / "seed1" / "metrics.json").unlink()
    assert run(mnist_dir, tmp_path) == 0
    trained = [argv for argv in calls if argv[0] == "train"]
    assert len(trained) == 1
    assert "tanh-mse-bn" in trained[0][trained[0].index("--out") + 1]
    assert trained[0][trained[0].index("--seed") + 1] == "1"


def test_unknown_configuration_is_named(mnist_dir, tmp_path, capsys):
    assert cli.main(["study", "--data", mnist_dir, "--out", str(tmp_path), "--configs", "sigmoid-l1"]) == 2
    assert "sigmoid-l1" in capsys.readouterr().err


def test_a_cell_trained_with_other_options_runs_again(mnist_dir, tmp_path, monkeypatch):
    from lenet_gpu import study
    assert run(mnist_dir, tmp_path, "--seeds", "1") == 0
    monkeypatch.setitem(study.CONFIGS, "tanh-mse",
                        ("tanh + MSE", ["--activation", "tanh", "--loss", "mse", "--lr", "0.05"]))
    calls = []
    real_main = cli.main
    monkeypatch.setattr(cli, "main", lambda argv=None: calls.append(argv) or real_main(argv))
    assert run(mnist_dir, tmp_path, "--seeds", "1") == 0
    trained = [argv for argv in calls if argv[0] == "train"]
    assert len(trained) == 1 and trained[0][trained[0].index("--lr") + 1] == "0.05"


def test_cells_run_as_parallel_processes_with_jobs(mnist_dir, tmp_path):
    assert run(mnist_dir, tmp_path, "--seeds", "1", "--jobs", "2") == 0
    s = json.loads((tmp_path / "study.json").read_text())
    assert all(c["seeds"] == [0] for c in s["configs"].values())
    for name in ("tanh-mse", "tanh-mse-bn"):
        m = json.loads((tmp_path / "runs" / name / "seed0" / "metrics.json").read_text())
        assert m["config"]["batchnorm"] is name.endswith("bn")
        assert m["config"]["lr_schedule"] == "constant"
