"""The command line, end to end on a small slice of the real MNIST files."""
import json
import subprocess
import sys

import pytest

from lenet_gpu.cli import main


def train(mnist_dir, out, *extra):
    return main(["train", "--data", mnist_dir, "--out", str(out), "--train-limit", "600",
                 "--epochs", "2", "--batch-size", "50", "--quiet", "--backend", "numpy", *extra])


def test_train_writes_metrics_and_model_then_evaluate(mnist_dir, tmp_path, capsys):
    assert train(mnist_dir, tmp_path / "run", "--loss", "ce", "--activation", "relu",
                 "--batchnorm", "--optimizer", "momentum") == 0
    m = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert [e["epoch"] for e in m["epochs"]] == [1, 2]
    for e in m["epochs"]:
        assert set(e) >= {"train_loss", "train_error_pct", "test_error_pct", "seconds"}
    assert m["backend"] == "numpy" and m["device"].startswith("CPU")
    assert m["config"]["batchnorm"] and m["config"]["lr"] == 0.01
    assert m["final_test_error_pct"] == m["epochs"][-1]["test_error_pct"] < 50
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / "run" / "model.npz"), "--data", mnist_dir, "--json"]) == 0
    ev = json.loads(capsys.readouterr().out)
    assert ev["error_pct"] == pytest.approx(m["final_test_error_pct"])


def test_same_seed_same_metrics(mnist_dir, tmp_path):
    for name in ("a", "b"):
        assert train(mnist_dir, tmp_path / name, "--loss", "mse", "--seed", "7") == 0
    a, b = (json.loads((tmp_path / n / "metrics.json").read_text())["epochs"] for n in "ab")
    strip = [{k: v for k, v in e.items() if k != "seconds"} for e in a]
    assert strip == [{k: v for k, v in e.items() if k != "seconds"} for e in b]


def test_one_cycle_runs_its_cycle_over_the_whole_training(mnist_dir, tmp_path):
    """--lr-schedule one-cycle counts the run's steps (600 images at batch 50: 12 an epoch), so
    the last step of the last epoch sits at the cycle's end, lr / 250000."""
    assert train(mnist_dir, tmp_path / "run", "--optimizer", "nesterov", "--lr", "0.4",
                 "--lr-schedule", "one-cycle") == 0
    m = json.loads((tmp_path / "run" / "metrics.json").read_text())
    from lenet_gpu.optim import one_cycle_schedule
    assert [e["lr"] for e in m["epochs"]] == pytest.approx(
        [0.4 * one_cycle_schedule(24)(t) for t in (12, 24)], rel=1e-6)
    assert m["epochs"][-1]["lr"] == pytest.approx(0.4 / 250000)


def test_refuses_to_overwrite_a_run(mnist_dir, tmp_path, capsys):
    assert train(mnist_dir, tmp_path / "run") == 0
    before = (tmp_path / "run" / "model.npz").read_bytes()
    assert train(mnist_dir, tmp_path / "run") == 2
    assert "already holds a run (metrics.json, model.npz)" in capsys.readouterr().err
    assert (tmp_path / "run" / "model.npz").read_bytes() == before


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # overflow is the point
def test_nan_loss_stops_with_message_and_keeps_last_good_model(mnist_dir, tmp_path, capsys):
    code = train(mnist_dir, tmp_path / "run", "--loss", "mse", "--activation", "relu",
                 "--lr", "1e9")
    assert code == 3
    err = capsys.readouterr().err
    assert ("NaN or infinite" in err or "blew up" in err) and "no model was written" in err
    assert not (tmp_path / "run" / "model.npz").exists(), "an untrained model is no checkpoint"
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["diverged_in_epoch"] == 1


def test_bad_data_dir_is_a_clear_error(tmp_path, capsys):
    assert main(["train", "--data", str(tmp_path), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and str(tmp_path) in err


def test_cupy_backend_without_gpu_is_a_clear_error(mnist_dir, tmp_path, capsys):
    from lenet_gpu import backend
    if backend.gpu_available():
        pytest.skip("a GPU is usable here")
    assert train(mnist_dir, tmp_path / "run", "--backend", "cupy") == 2
    assert "no usable CUDA GPU" in capsys.readouterr().err


def test_module_entry_point_runs():
    r = subprocess.run([sys.executable, "-m", "lenet_gpu", "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and "lenet-gpu" in r.stdout


def test_one_epoch_on_mnist_reaches_3_percent(mnist_dir, tmp_path):
    """The issue's end-to-end check: one full epoch on the CPU, test error below 3%."""
    out = tmp_path / "run"
    assert main(["train", "--data", mnist_dir, "--out", str(out), "--epochs", "1",
                 "--batch-size", "32", "--activation", "relu", "--loss", "ce",
                 "--optimizer", "momentum", "--backend", "numpy", "--quiet"]) == 0
    err = json.loads((out / "metrics.json").read_text())["final_test_error_pct"]
    assert err < 3.0, f"test error after one epoch: {err:.2f}%"


def test_bench_and_info_commands(capsys):
    assert main(["bench", "--backend", "numpy", "--batch-size", "8", "--steps", "2"]) == 0
    assert "ms/step" in capsys.readouterr().out
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("lenet-gpu ") and "GPU:" in out


def test_progress_bar_mode_runs(mnist_dir, capsys):
    """verbose=1 is what a terminal gets: a tqdm bar per epoch plus one line."""
    from lenet_gpu import lenet5, SGD
    from lenet_gpu.data import load_mnist, preprocess
    x, y, _, _ = load_mnist(mnist_dir)
    model = lenet5()
    model.compile("ce", SGD(0.1))
    model.fit(preprocess(x[:64]), y[:64], epochs=1, batch_size=32, verbose=1)
    err = capsys.readouterr().err
    assert "epoch 1/1" in err and "2/2" in err


@pytest.mark.parametrize("preset, expected", [
    (None, dict(activation="relu", loss="ce", batchnorm=True, lr_schedule="cosine", pool="avg",
                augment="none", epochs=20, batch_size=20, lr=0.1)),
    ("classic", dict(activation="tanh", loss="mse", batchnorm=False, lr_schedule="constant",
                     pool="avg", lr=0.1)),
    ("modern", dict(activation="relu", batchnorm=True, pool="max", augment="affine", epochs=30)),
    ("paper", dict(model="lenet5-paper", optimizer="sdlm", batch_size=1, loss="paper", lr=1.0,
                   init="fan_in:1.1", order="fixed")),
])
def test_presets_fill_the_options_not_given(preset, expected, monkeypatch):
    from lenet_gpu import cli
    monkeypatch.setattr(cli, "RunDir", lambda *a, **k: (_ for _ in ()).throw(SystemExit(0)))
    args = cli.make_parser().parse_args(["train"] + (["--preset", preset] if preset else []))
    with pytest.raises(SystemExit):       # stops where the run directory would be made
        cli.cmd_train(args)
    assert {k: vars(args)[k] for k in expected} == expected


def test_an_explicit_option_beats_the_preset():
    from lenet_gpu import cli
    args = cli.make_parser().parse_args(["train", "--preset", "modern", "--no-batchnorm",
                                         "--epochs", "3"])
    cli.apply_preset(args)
    assert args.batchnorm is False and args.epochs == 3 and args.pool == "max"
