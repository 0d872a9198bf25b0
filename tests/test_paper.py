"""The 1998 paper-faithful LeNet-5: trainable subsampling, RBF output, the paper's loss, the
network's parameter counts, save/load, and a small overfit. Gradients in float64."""
import json

import numpy as np
import pytest

import lenet_gpu as L
from lenet_gpu.digits import bitmap, rbf_centres
from lenet_gpu.model import Sequential
from lenet_gpu.ops.losses import PAPER_J, paper_loss
from lenet_gpu.ops.rbf import rbf_backward, rbf_forward
from lenet_gpu.ops.subsample import subsample_backward, subsample_forward
from lenet_gpu.optim import SGD

from gradcheck import assert_close, numerical_grad


def subsample_direct(x, coef, bias, k):
    N, C, H, W = x.shape
    OH, OW = H // k, W // k
    y = np.zeros((N, C, OH, OW))
    for oh in range(OH):
        for ow in range(OW):
            s = x[:, :, oh * k:oh * k + k, ow * k:ow * k + k].sum(axis=(2, 3))
            y[:, :, oh, ow] = coef * s + bias
    return y


@pytest.mark.parametrize("N,C,H,W,k", [(1, 1, 2, 2, 2), (1, 3, 6, 4, 2), (4, 5, 7, 9, 2),
                                       (2, 2, 6, 6, 3)])
def test_subsample_forward_and_gradients(rng, N, C, H, W, k):
    x, coef, bias = rng.standard_normal((N, C, H, W)), rng.standard_normal(C), rng.standard_normal(C)
    y, cache = subsample_forward(x, coef, bias, k)
    np.testing.assert_allclose(y, subsample_direct(x, coef, bias, k), rtol=1e-12, atol=1e-12)
    R = rng.standard_normal(y.shape)
    dx, dcoef, dbias = subsample_backward(R, cache)

    def L_():
        return (subsample_forward(x, coef, bias, k)[0] * R).sum()
    assert_close(dx, numerical_grad(L_, x), name="dx")
    assert_close(dcoef, numerical_grad(L_, coef), name="dcoef")
    assert_close(dbias, numerical_grad(L_, bias), name="dbias")
    if H % k:       # rows past the last full block get no gradient
        assert np.all(dx[:, :, (H // k) * k:] == 0)


def test_subsample_bad_input_is_named(rng):
    x = rng.standard_normal((2, 3, 4, 4))
    with pytest.raises(ValueError, match=r"coef must have shape \(3,\)"):
        subsample_forward(x, np.ones(2), np.ones(3))
    with pytest.raises(ValueError, match="4-D"):
        subsample_forward(x[0], np.ones(3), np.ones(3))


@pytest.mark.parametrize("N", [1, 5])
def test_rbf_forward_and_gradient(rng, N):
    x, w = rng.standard_normal((N, 84)), rbf_centres()
    y, cache = rbf_forward(x, w)
    np.testing.assert_allclose(y, ((x[:, None, :] - w[None]) ** 2).sum(-1), rtol=1e-12)
    R = rng.standard_normal(y.shape)
    dx = rbf_backward(R, cache)
    assert_close(dx, numerical_grad(lambda: (rbf_forward(x, w)[0] * R).sum(), x))
    with pytest.raises(ValueError, match="80 features"):
        rbf_forward(x[:, :80], w)


def paper_loss_direct(y, labels, j):
    return np.mean([y[n, labels[n]] + np.log(np.exp(-j) + np.exp(-y[n]).sum())
                    for n in range(len(labels))])


@pytest.mark.parametrize("scale", [1.0, 30.0])
def test_paper_loss_value_and_gradient(rng, scale):
    y = np.abs(rng.standard_normal((6, 10))) * scale
    labels = rng.integers(0, 10, 6)
    loss, grad = paper_loss(y, labels)
    assert float(loss) == pytest.approx(paper_loss_direct(y, labels, PAPER_J), rel=1e-12)
    assert_close(grad, numerical_grad(lambda: float(paper_loss(y, labels)[0]), y))


def test_paper_loss_is_stable_for_large_and_small_penalties():
    y = np.array([[1e4] * 10, [-1e3] + [1e4] * 9])       # exp(-y) under- and overflows
    loss, grad = paper_loss(y, np.array([0, 0]))
    assert np.isfinite(loss) and np.all(np.isfinite(grad))
    # far from every centre: log term -> -j;  one class at -1e3: log term -> 1e3
    assert float(loss) == pytest.approx(((1e4 - PAPER_J) + (-1e3 + 1e3)) / 2)
    with pytest.raises(ValueError, match="j must be > 0"):
        paper_loss(y, np.array([0, 0]), j=0)


def test_digit_bitmaps_are_84_signs_and_distinct():
    w = rbf_centres()
    assert w.shape == (10, 84) and set(np.unique(w)) == {-1.0, 1.0}
    assert bitmap(7).shape == (12, 7)
    differing = ((w[:, None] != w[None]).sum(-1) + np.eye(10, dtype=int) * 84).min()
    assert differing >= 6, "two digit bitmaps are nearly the same"


def test_paper_network_parameter_counts_match_the_paper():
    model = L.lenet5_paper()
    counts = [layer.num_params() for layer in model.layers if layer.num_params()]
    assert counts == [156, 12, 1_516, 32, 48_120, 10_164]      # C1 S2 C3 S4 C5 F6
    assert model.num_params() == 60_000
    assert model.output_shape() == (10,) and model.input_shape == (1, 32, 32)
    text = model.summary(file=open("/dev/null", "w"))
    assert "Total parameters: 60,000" in text and "RBFOutput" in text
    # the RBF centres are fixed: a buffer, not a parameter
    assert not model.layers[-1].params and "centres" in model.layers[-1].buffers


@pytest.mark.parametrize("init, scale", [("lecun", lambda F: 2.4 / F),
                                         ("lecun_sqrt", lambda F: 2.4 / np.sqrt(F))])
def test_paper_init_bounds(init, scale):
    model = L.lenet5_paper(seed=1, init=init)
    W_c5 = model.layers[8].params[0].value
    assert scale(16 * 25) >= np.abs(W_c5).max() > 0.9 * scale(16 * 25)
    W_f6 = model.layers[11].params[0].value
    assert scale(120) >= np.abs(W_f6).max() > 0.9 * scale(120)
    coef = model.layers[2].params[0].value
    assert np.abs(coef).max() <= scale(4)


def test_paper_network_defaults_to_the_start_that_gives_the_papers_rates():
    """U(+-1.1/sqrt F) and S2/S4 coefficients 0.5 (test_sdlm checks the rates they give);
    the paper's literal U(+-2.4/F) is one argument away."""
    model = L.lenet5_paper()
    assert all(layer.init == "fan_in:1.1" for layer in model.layers if hasattr(layer, "init"))
    assert all(np.all(model.layers[i].params[0].value == 0.5) for i in (2, 6))
    literal = L.lenet5_paper(init="lecun", subsample_coef=None)
    assert np.abs(literal.layers[8].params[0].value).max() <= 2.4 / 400


def small_paper_net(seed=1):
    """Paper-style, tiny: conv, subsampling, C3-like table, F6 of 84 units, RBF, float64."""
    model = Sequential(input_shape=(1, 10, 10), dtype=np.float64, seed=seed)
    table = np.array([[1, 1], [0, 1], [1, 0]], bool)
    for layer in [L.Conv2D(1, 2, 3, init="lecun"), L.Activation("scaled_tanh"),
                  L.Subsampling(2), L.Activation("scaled_tanh"),
                  L.Conv2D(2, 3, 3, table=table, init="lecun"), L.Activation("scaled_tanh"),
                  L.Flatten(), L.Dense(12, 84, init="lecun"), L.Activation("scaled_tanh"),
                  L.RBFOutput()]:
        model.add(layer)
    return model


def test_small_paper_net_gradient_matches_numerical(rng):
    model = small_paper_net()
    model.compile("paper", SGD(0.1))
    x, y = rng.standard_normal((3, 1, 10, 10)), rng.integers(0, 10, 3)

    def loss_value():
        return float(model._loss(model.forward(x, True), y)[0])
    out = model.forward(x, True)
    model.backward(model._loss(out, y)[1])
    for p in model.params:
        assert_close(p.grad.copy(), numerical_grad(loss_value, p.value), rtol=1e-5, name=p.name)


def test_save_load_roundtrip_keeps_centres(tmp_path, rng):
    model = L.lenet5_paper(seed=2)
    model.compile("paper", SGD(0.01))
    model.meta["preprocessing"] = {"scale": "paper", "pad": 2}
    x = rng.uniform(-0.1, 1.175, (4, 1, 32, 32)).astype(np.float32)
    model.train_step(x, rng.integers(0, 10, 4))
    loaded = Sequential.load(model.save(tmp_path / "p.npz"))
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    np.testing.assert_array_equal(loaded.layers[-1].buffers["centres"], rbf_centres(np.float32))
    assert loaded.loss == "paper" and loaded.num_params() == 60_000
    assert [type(a) for a in loaded.layers] == [type(a) for a in model.layers]
    assert loaded.paper_j == PAPER_J


def test_paper_j_reaches_the_loss_its_second_derivatives_and_the_saved_model(tmp_path, rng):
    model = small_paper_net()       # its penalties are ~80: only a large j makes the log term act
    model.compile("paper", SGD(0.1), paper_j=100.0)
    x, y = rng.standard_normal((3, 1, 10, 10)), rng.integers(0, 10, 3)
    out = model.forward(x, True)
    assert float(model._loss(out, y)[0]) == pytest.approx(paper_loss_direct(out, y, 100.0), rel=1e-12)
    h = model.hessian_diagonal(x, y)
    model.paper_j = PAPER_J
    assert any(not np.allclose(a, b) for a, b in zip(h, model.hessian_diagonal(x, y)))
    model.paper_j = 100.0
    assert Sequential.load(model.save(tmp_path / "j.npz")).paper_j == 100.0
    # a file from before j was saved was trained at j = 1
    with np.load(tmp_path / "j.npz") as f:
        arrays = dict(f)
    arch = json.loads(str(arrays["architecture"]))
    del arch["paper_j"]
    arrays["architecture"] = np.array(json.dumps(arch))
    np.savez(tmp_path / "old.npz", **arrays)
    assert Sequential.load(tmp_path / "old.npz").paper_j == 1.0
    for bad, message in [(("paper", None, 0), "j must be > 0"), (("ce", None, 2), "not of 'ce'")]:
        with pytest.raises(ValueError, match=message):
            model.compile(*bad)


def bitmap_images(rng, labels):
    """Each label's own 7x12 bitmap, doubled to 14x24, at a random place in a 32x32 frame."""
    x = np.full((len(labels), 1, 32, 32), -0.1, np.float32)
    for n, d in enumerate(labels):
        img = np.kron(bitmap(d) > 0, np.ones((2, 2)))
        r, c = rng.integers(2, 7), rng.integers(6, 13)
        x[n, 0, r:r + 24, c:c + 14] = np.where(img, 1.175, -0.1)
    return x


def test_paper_net_overfits_a_small_batch(rng):
    """16 images, SGD with momentum: the paper loss falls clearly, the argmin of the penalties
    is right. (After a plateau where F6 sits at the mean centre, which plain SGD leaves slowly.)"""
    y = np.arange(16) % 10
    x = bitmap_images(rng, y)
    model = L.lenet5_paper(seed=0)
    model.compile("paper", SGD(0.005, momentum=0.9))
    first = float(model.train_step(x, y)[0])
    for _ in range(70):
        loss, _ = model.train_step(x, y)
    assert float(loss) < first / 10
    assert model.evaluate(x, y)["error_pct"] == 0
    assert (model.predict(x).argmin(axis=1) == y).all()


def test_cli_trains_the_paper_network(mnist_dir, tmp_path, capsys):
    from lenet_gpu.cli import main
    out = tmp_path / "run"
    assert main(["train", "--model", "lenet5-paper", "--data", mnist_dir, "--out", str(out),
                 "--train-limit", "300", "--epochs", "1", "--batch-size", "10", "--quiet",
                 "--optimizer", "sdlm", "--backend", "numpy"]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["config"]["optimizer"] == "sdlm" and m["config"]["lr"] == 1.0   # the paper's own rates
    assert (m["config"]["init"], m["config"]["subsample_coef"]) == ("fan_in:1.1", 0.5)
    assert m["config"]["order"] == "fixed"
    assert (m["config"]["loss"], m["config"]["scale"], m["config"]["pad"]) == ("paper", "paper", 2)
    assert m["num_params"] == 60_000
    model = Sequential.load(out / "model.npz")
    assert model.loss == "paper" and model.meta["preprocessing"] == {"scale": "paper", "pad": 2}
    capsys.readouterr()
    assert main(["evaluate", str(out / "model.npz"), "--data", mnist_dir, "--json"]) == 0
    ev = json.loads(capsys.readouterr().out)
    assert ev["error_pct"] == pytest.approx(m["final_test_error_pct"])


@pytest.mark.parametrize("args, message", [
    (["--model", "lenet5-paper", "--loss", "ce"], "implies --loss paper"),
    (["--model", "lenet5-paper", "--pad", "0"], "implies --pad 2"),
    (["--model", "lenet5", "--loss", "paper"], "needs an RBF output"),
    (["--model", "lenet5", "--paper-j", "5"], "--paper-j is a constant of the paper loss"),
    (["--model", "lenet5-paper", "--paper-j", "0"], "--paper-j must be > 0"),
])
def test_cli_paper_option_conflicts_are_clear_errors(mnist_dir, tmp_path, capsys, args, message):
    from lenet_gpu.cli import main
    assert main(["train", "--data", mnist_dir, "--out", str(tmp_path / "r"), *args]) == 2
    assert message in capsys.readouterr().err


def test_papers_init_shrinks_activations_and_the_sqrt_reading_keeps_them(rng):
    """From the paper's U(+-2.4/F) the F6 outputs of digit-like inputs start ~1000x below the
    squashing function's range (the diagonal second derivatives SDLM divides by are ~0 there,
    so its steps start at the eta/mu ceiling); U(+-2.4/sqrt(F)) keeps them in range."""
    x = bitmap_images(rng, np.arange(50) % 10)

    def f6_rms(init):
        model = L.lenet5_paper(seed=0, init=init)
        a = x
        for layer in model.layers[:-1]:
            a = layer.forward(a)
        return float(np.sqrt((a ** 2).mean()))
    assert f6_rms("lecun") < 0.01 < 0.3 < f6_rms("lecun_sqrt")
