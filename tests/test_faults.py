"""Bad arguments, bad places and faults on the command line: each gives a one-line message that
names the problem and the documented exit status (README, "Exit statuses"), never a traceback,
and never costs the user a good model. (Hostile model and IDX files, bad values given to fit,
divergence and the download's limits are tested in test_model.py and test_data.py.)"""
import json
import os

import numpy as np
import pytest

from lenet_gpu import cli
from lenet_gpu.model import Sequential
from test_data import fake_mnist


@pytest.fixture
def small(tmp_path):
    return str(fake_mnist(tmp_path / "mnist", n_train=24, n_test=6))


def train(data, out, *extra):
    return cli.main(["train", "--data", data, "--out", str(out), "--epochs", "2", "--batch-size",
                     "8", "--quiet", "--backend", "numpy", *extra])


def no_traceback(err):
    assert "Traceback" not in err
    return err


def test_out_that_is_a_file_is_named_before_any_data_is_read(tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    assert train(str(tmp_path / "no-such-data"), tmp_path / "f") == 2
    err = no_traceback(capsys.readouterr().err)
    assert f"--out {tmp_path / 'f'} is a file, not a directory" in err


def test_out_below_a_file(tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    assert train(str(tmp_path / "no-such-data"), tmp_path / "f" / "run") == 2
    assert "a part of the path is a file, not a directory" in no_traceback(capsys.readouterr().err)


def test_out_that_cannot_be_written(small, tmp_path, capsys, monkeypatch):
    from lenet_gpu import rundir
    real_open = os.open

    def refuse(path, *a, **k):
        if str(path).endswith(".lock"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *a, **k)
    monkeypatch.setattr(rundir.os, "open", refuse)
    assert train(small, tmp_path / "run") == 4
    assert "cannot write in --out" in no_traceback(capsys.readouterr().err)


def test_a_directory_that_stops_being_writable_keeps_the_last_model(small, tmp_path, capsys,
                                                                    monkeypatch):
    real_save, calls = Sequential.save, []

    def save(self, path):
        calls.append(path)
        if len(calls) > 1:
            raise PermissionError(13, "Permission denied", str(path))
        return real_save(self, path)
    monkeypatch.setattr(Sequential, "save", save)
    assert train(small, tmp_path / "run") == 4
    err = no_traceback(capsys.readouterr().err)
    assert "cannot write the run's files" in err and "Permission denied" in err
    assert "the model after epoch 1 is in" in err
    Sequential.load(tmp_path / "run" / "model.npz")        # epoch 1's model, intact


def test_two_runs_cannot_share_a_run_directory(small, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / ".lock").write_text(f"{os.getpid()} {os.uname().nodename} 2026-11-23 12:00:00\n")
    assert train(small, run) == 5
    err = no_traceback(capsys.readouterr().err)
    assert f"in use by another run (pid {os.getpid()} on" in err and ".lock" in err
    assert not (run / "metrics.json").exists()


def test_a_lock_left_by_a_dead_run_is_taken_over_and_released(small, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)                                         # a pid that no longer runs
    (run / ".lock").write_text(f"{pid} {os.uname().nodename} 2026-11-23 12:00:00\n")
    assert train(small, run) == 0
    assert not (run / ".lock").exists()


def test_interrupt_in_the_first_epoch_says_no_model_was_written(small, tmp_path, capsys,
                                                                 monkeypatch):
    def interrupted(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(Sequential, "fit", interrupted)
    assert train(small, tmp_path / "run") == 130
    err = capsys.readouterr().err
    assert "interrupted; no model was written" in err
    assert not (tmp_path / "run" / "model.npz").exists() and not (tmp_path / "run" / ".lock").exists()


@pytest.mark.parametrize("option, value, message", [
    ("--train-limit", "0", "--train-limit must be >= 1, got 0"),
    ("--train-limit", "-5", "--train-limit must be >= 1, got -5"),
    ("--seed", "-1", "--seed must be >= 0, got -1"),       # numpy's own words were "expected non-negative integer"
    ("--momentum", "2", "--momentum must be in [0, 1), got 2.0"),   # was ignored by plain sgd
])
def test_out_of_range_options_are_named(small, tmp_path, capsys, option, value, message):
    assert train(small, tmp_path / "run", option, value) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_an_empty_split_is_named(tmp_path, capsys):
    data = fake_mnist(tmp_path / "mnist", n_train=10, n_test=0)
    assert train(str(data), tmp_path / "run") == 2
    assert "holds no images (the test split is empty)" in no_traceback(capsys.readouterr().err)


def test_bad_init_is_named_before_data_are_read(tmp_path, capsys):
    assert train(str(tmp_path / "none"), tmp_path / "run", "--init", "fan_in:zero") == 2
    assert "initializer 'fan_in:zero'" in capsys.readouterr().err


def test_run_records_name_the_data_by_content_not_path_and_are_readable_by_others(small, tmp_path):
    assert train(small, tmp_path / "run") == 0
    text = (tmp_path / "run" / "metrics.json").read_text()
    m = json.loads(text)
    assert str(tmp_path) not in text and "data" not in m["config"] and "out" not in m["config"]
    assert m["dataset"]["name"] == "MNIST" and m["dataset"]["official"] is False
    assert len(m["dataset"]["sha256"]) == 4
    umask = os.umask(0)
    os.umask(umask)
    for name in ("metrics.json", "model.npz"):
        assert (tmp_path / "run" / name).stat().st_mode & 0o777 == 0o666 & ~umask


def test_a_study_cell_whose_metrics_are_not_a_record_runs_again(tmp_path):
    from lenet_gpu.study import finished
    for content in ("[1, 2]", '"text"', '{"epochs": 5}', '{"epochs": [], "config": []}'):
        cell = tmp_path / "cell"
        cell.mkdir(exist_ok=True)
        (cell / "metrics.json").write_text(content)
        assert finished(str(cell), 1, ["--epochs", "1"]) is None


def test_official_mnist_is_recognised(mnist_dir):
    from lenet_gpu.data import dataset_record
    assert dataset_record(mnist_dir)["official"] is True


def test_npz_members_hold_no_pickles(tmp_path):
    path = tmp_path / "m.npz"
    np.savez(path, architecture=np.array(["x"], dtype=object))
    with pytest.raises(ValueError, match="holds Python objects; refused"):
        Sequential.load(path)
