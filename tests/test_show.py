"""lenet-gpu show: every figure is written as a PNG of the expected size, from the shipped model."""
import pytest

from lenet_gpu import cli

pytest.importorskip("matplotlib", reason="figures need matplotlib (the plot extra)")
PIL = pytest.importorskip("PIL", reason="reading the figures back needs Pillow")
from PIL import Image  # noqa: E402


def figure(path):
    with Image.open(path) as im:
        assert im.format == "PNG"
        return im.size


@pytest.mark.parametrize("what, extra", [
    ("maps", ["--index", "3"]),
    ("maps", ["--image", "tests/data/seven.png"]),
    ("kernels", []),
    ("confusion", []),
    ("errors", []),
])
def test_show_writes_each_figure(mnist_dir, tmp_path, capsys, what, extra):
    out = tmp_path / f"{what}.png"
    assert cli.main(["show", what, "--data", mnist_dir, "--out", str(out), *extra]) == 0
    w, h = figure(out)
    assert w > 200 and h > 150
    assert f"wrote {out}" in capsys.readouterr().out


def test_show_curves_of_several_runs(tmp_path):
    out = tmp_path / "curves.png"
    runs = ["docs/study/runs/tanh-mse/seed0", "docs/study/runs/relu-ce-bn/seed0/metrics.json"]
    assert cli.main(["show", "curves", *runs, "--out", str(out)]) == 0
    assert figure(out)[0] > 200


def test_show_names_bad_requests(tmp_path, capsys):
    assert cli.main(["show", "curves", "--out", str(tmp_path / "c.png")]) == 2
    assert "needs one or more run directories" in capsys.readouterr().err
    (tmp_path / "m.json").write_text("[]")
    assert cli.main(["show", "curves", str(tmp_path / "m.json"), "--out", str(tmp_path / "c.png")]) == 2
    assert "not a run's metrics.json" in capsys.readouterr().err
