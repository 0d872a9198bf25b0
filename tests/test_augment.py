"""Distortions: shapes and dtypes, reproducibility by seed, identity at zero magnitude,
exact translations, and the --augment / show-augment commands."""
import numpy as np
import pytest

import lenet_gpu as L
from lenet_gpu.augment import affine_transform, elastic, make_augment, random_affine


def impulse(N=2, H=9, W=11, at=(4, 5), bg=-0.1, dtype=np.float32):
    x = np.full((N, 1, H, W), bg, dtype)
    x[:, 0, at[0], at[1]] = 1.175
    return x


@pytest.mark.parametrize("fn", [random_affine, elastic])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_shape_dtype_and_reproducibility(rng, fn, dtype):
    x = rng.random((3, 1, 12, 10)).astype(dtype)
    a, b, c = fn(x, 5), fn(x, 5), fn(x, 6)
    assert a.shape == x.shape and a.dtype == dtype
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert not np.array_equal(a, x)
    # a generator works too, and each image gets its own draw
    y = fn(np.repeat(x[:1], 2, axis=0), np.random.default_rng(0))
    assert not np.array_equal(y[0], y[1])


def test_zero_magnitudes_are_the_identity(rng):
    x = rng.random((2, 1, 10, 10)).astype(np.float32)
    np.testing.assert_array_equal(random_affine(x, 0, max_shift=0, max_scale=0, max_squeeze=0,
                                                max_shear=0), x)
    np.testing.assert_array_equal(elastic(x, 0, alpha=0), x)


@pytest.mark.parametrize("shift, moved_to", [((0, 1), (4, 6)), ((1, 0), (5, 5)), ((-2, -3), (2, 2))])
def test_translation_moves_an_impulse_by_whole_pixels(shift, moved_to):
    y = affine_transform(impulse(), np.eye(2), shift)
    expected = impulse(at=moved_to)
    np.testing.assert_allclose(y, expected, atol=1e-6)


def test_outside_reads_the_background():
    y = affine_transform(impulse(), np.eye(2), (0, 20))        # everything shifted out
    np.testing.assert_allclose(y, -0.1, atol=1e-6)


def test_scaling_about_the_centre_keeps_the_centre(rng):
    x = impulse(H=9, W=9, at=(4, 4))
    y = affine_transform(x, 1.3 * np.eye(2), (0, 0))
    assert np.unravel_index(y[0, 0].argmax(), (9, 9)) == (4, 4)


def test_bad_input_is_named(rng):
    with pytest.raises(ValueError, match=r"\(N, 1, H, W\)"):
        elastic(rng.random((2, 3, 8, 8)), 0)
    with pytest.raises(ValueError, match="max_shift must be >= 0, got -1"):
        random_affine(rng.random((2, 1, 8, 8)), 0, max_shift=-1)
    with pytest.raises(ValueError, match="unknown augmentation 'blur'"):
        make_augment("blur")
    assert make_augment("none") is None


def test_fit_with_augment_is_reproducible(rng):
    import lenet_gpu as L
    from lenet_gpu.optim import SGD
    x, y = rng.random((12, 1, 28, 28), dtype=np.float32), rng.integers(0, 10, 12)

    def run():
        model = L.lenet5(seed=1)
        model.compile("ce", SGD(0.05))
        return model.fit(x, y, epochs=1, batch_size=6, verbose=0, augment=make_augment("elastic"))
    h1, h2 = run(), run()
    assert h1["train_loss"] == h2["train_loss"]
    model = L.lenet5(seed=1)
    model.compile("ce", SGD(0.05))
    assert model.fit(x, y, epochs=1, batch_size=6, verbose=0)["train_loss"] != h1["train_loss"]


def test_show_augment_writes_a_png(mnist_dir, tmp_path):
    pytest.importorskip("matplotlib")
    from lenet_gpu.cli import main
    out = tmp_path / "grid.png"
    assert main(["show-augment", "--data", mnist_dir, "--augment", "affine", "--out", str(out),
                 "--rows", "2", "--cols", "3"]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_show_augment_without_matplotlib_is_a_clear_error(mnist_dir, tmp_path, monkeypatch):
    import sys
    from lenet_gpu.cli import main
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(SystemExit, match="needs matplotlib"):
        main(["show-augment", "--data", mnist_dir, "--out", str(tmp_path / "g.png")])


def test_train_with_augment(mnist_dir, tmp_path):
    import json
    from lenet_gpu.cli import main
    out = tmp_path / "run"
    assert main(["train", "--data", mnist_dir, "--out", str(out), "--train-limit", "200",
                 "--epochs", "1", "--batch-size", "50", "--quiet", "--backend", "numpy",
                 "--augment", "affine"]) == 0
    assert json.loads((out / "metrics.json").read_text())["config"]["augment"] == "affine"


def test_fixed_affine_copies_show_each_version_in_turn(rng):
    """The paper's regime: every image has 1 + copies fixed versions (0 = the original); over
    1 + copies passes each is shown exactly once, and a version is the same image every time."""
    from lenet_gpu.augment import FixedAffineCopies
    x = rng.uniform(0, 1, (5, 1, 12, 12)).astype(np.float32)
    fixed = FixedAffineCopies(5, copies=3, seed=4)
    idx = np.arange(5)
    passes = [fixed(x, idx, epoch) for epoch in range(1, 9)]
    for i in range(5):
        versions = [p[i] for p in passes[:4]]
        originals = [np.array_equal(v, x[i]) for v in versions]
        assert sum(originals) == 1, "the original once per cycle of 1 + copies passes"
        distinct = {v.tobytes() for v in versions}
        assert len(distinct) == 4
        for a, b in zip(passes[:4], passes[4:]):        # the next cycle repeats the same images
            assert np.array_equal(a[i], b[i])
    # a sub-batch in another order gets the same images as in the full batch
    sub = fixed(x[[3, 1]], np.array([3, 1]), 2)
    assert np.array_equal(sub, passes[1][[3, 1]])


def test_fixed_affine_copies_train_through_fit(rng):
    x = rng.uniform(0, 1, (12, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, 12)
    model = L.lenet5().compile("ce", L.SGD(0.1))
    hist = model.fit(x, y, epochs=2, batch_size=4, verbose=0, shuffle="once",
                     augment=make_augment("affine-fixed", n=12, seed=1))
    assert np.isfinite(hist["train_loss"]).all()
