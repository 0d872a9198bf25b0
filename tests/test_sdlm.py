"""SDLM (LeCun et al. 1998, appendix C): the diagonal Gauss-Newton second-derivative pass of
every op against a brute-force diag(J^T diag(h) J) from finite-difference Jacobians, the loss
curvatures, a whole network, the learning-rate schedule and the update. float64."""
import numpy as np
import pytest

import lenet_gpu as L
from lenet_gpu.digits import rbf_centres
from lenet_gpu.layers import c3_table
from lenet_gpu.model import Sequential
from lenet_gpu.ops.activations import activation_backward_hessian, activation_forward
from lenet_gpu.ops.conv2d import conv2d_backward_hessian, conv2d_forward
from lenet_gpu.ops.dense import dense_backward_hessian, dense_forward
from lenet_gpu.ops.losses import loss_hessian_diagonal, mse, paper_loss, softmax_cross_entropy
from lenet_gpu.ops.pool2d import pool2d_backward_hessian, pool2d_forward
from lenet_gpu.ops.rbf import rbf_backward_hessian, rbf_forward
from lenet_gpu.ops.subsample import subsample_backward_hessian, subsample_forward
from lenet_gpu.optim import SDLM, SGD, paper_rate

from gradcheck import assert_close


def jacobian(f, a, eps=1e-6):
    """(outputs, a.size) matrix d f() / d a by central differences (a perturbed in place)."""
    cols, flat = [], a.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        fp = np.array(f(), dtype=float).ravel()
        flat[i] = old - eps
        fm = np.array(f(), dtype=float).ravel()
        flat[i] = old
        cols.append((fp - fm) / (2 * eps))
    return np.stack(cols, axis=1)


def gauss_newton_diag(f, a, h):
    """diag(J^T diag(h) J) for the output curvature h (shaped like f())."""
    J = jacobian(f, a)
    return ((J ** 2) * h.reshape(-1, 1)).sum(axis=0).reshape(a.shape)


@pytest.mark.parametrize("N,C,H,W,K,k,stride,pad,table", [
    (1, 1, 5, 5, 2, 3, 1, 0, None), (2, 2, 6, 5, 3, 3, 2, 1, None), (2, 6, 7, 7, 16, 5, 1, 0, "c3")])
def test_conv2d_hessian_matches_brute_force(rng, N, C, H, W, K, k, stride, pad, table):
    x, Wt, b = rng.standard_normal((N, C, H, W)), rng.standard_normal((K, C, k, k)), rng.standard_normal(K)
    t = c3_table() if table == "c3" else None
    y, cache = conv2d_forward(x, Wt, b, stride, pad, t)
    h = rng.random(y.shape)
    d2x, d2W, d2b = conv2d_backward_hessian(h, cache)

    def f():
        return conv2d_forward(x, Wt, b, stride, pad, t)[0]
    assert_close(d2x, gauss_newton_diag(f, x, h), name="d2x")
    assert_close(d2W, gauss_newton_diag(f, Wt, h), name="d2W")
    assert_close(d2b, gauss_newton_diag(f, b, h), name="d2b")


def test_dense_hessian_matches_brute_force(rng):
    x, W, b = rng.standard_normal((3, 5)), rng.standard_normal((5, 4)), rng.standard_normal(4)
    y, cache = dense_forward(x, W, b)
    h = rng.random(y.shape)
    d2x, d2W, d2b = dense_backward_hessian(h, cache)

    def f():
        return dense_forward(x, W, b)[0]
    for analytic, a, name in ((d2x, x, "d2x"), (d2W, W, "d2W"), (d2b, b, "d2b")):
        assert_close(analytic, gauss_newton_diag(f, a, h), name=name)


@pytest.mark.parametrize("N,C,H,W", [(1, 1, 4, 4), (2, 3, 5, 6)])
def test_subsample_hessian_matches_brute_force(rng, N, C, H, W):
    x, coef, bias = rng.standard_normal((N, C, H, W)), rng.standard_normal(C), rng.standard_normal(C)
    y, cache = subsample_forward(x, coef, bias)
    h = rng.random(y.shape)
    d2x, d2coef, d2bias = subsample_backward_hessian(h, cache)

    def f():
        return subsample_forward(x, coef, bias)[0]
    for analytic, a, name in ((d2x, x, "d2x"), (d2coef, coef, "d2coef"), (d2bias, bias, "d2bias")):
        assert_close(analytic, gauss_newton_diag(f, a, h), name=name)


@pytest.mark.parametrize("mode", ["avg", "max"])
@pytest.mark.parametrize("k,stride", [(2, 2), (3, 2)])
def test_pool2d_hessian_matches_brute_force(rng, mode, k, stride):
    x = rng.standard_normal((2, 3, 7, 6))
    y, cache = pool2d_forward(x, k, stride, mode)
    h = rng.random(y.shape)
    assert_close(pool2d_backward_hessian(h, cache),
                 gauss_newton_diag(lambda: pool2d_forward(x, k, stride, mode)[0], x, h))


@pytest.mark.parametrize("name", ["scaled_tanh", "tanh", "sigmoid", "relu"])
def test_activation_hessian_is_squared_derivative(rng, name):
    a = rng.standard_normal((3, 7)) + 0.05          # away from relu's kink
    y, _ = activation_forward(name, a)
    h = rng.random(y.shape)
    d2a = activation_backward_hessian(name, h, y)
    assert_close(d2a, gauss_newton_diag(lambda: activation_forward(name, a)[0], a, h))
    with pytest.raises(ValueError, match="softmax"):
        activation_backward_hessian("softmax", h, y)


def test_rbf_hessian_is_gauss_newton_plus_its_exact_curvature(rng):
    x, w = rng.standard_normal((2, 84)) * 0.5, rbf_centres()
    y, cache = rbf_forward(x, w)
    h, g = rng.random(y.shape), rng.standard_normal(y.shape)
    d2x = rbf_backward_hessian(h, g, cache)

    def f():
        return rbf_forward(x, w)[0]
    # the RBF's own curvature sum_i g_i d2y_i/dx_j^2, by second differences (y is quadratic)
    eps, own, flat = 1e-3, np.zeros_like(x), x.reshape(-1)
    gy = lambda: (rbf_forward(x, w)[0] * g).sum()     # noqa: E731
    for i in range(flat.size):
        old, f0 = flat[i], gy()
        flat[i] = old + eps
        fp = gy()
        flat[i] = old - eps
        fm = gy()
        flat[i] = old
        own.reshape(-1)[i] = (fp - 2 * f0 + fm) / eps ** 2
    assert_close(d2x, gauss_newton_diag(f, x, h) + own, rtol=1e-5)


@pytest.mark.parametrize("name", ["mse", "ce", "paper"])
def test_loss_hessian_diagonal_is_the_exact_diagonal(rng, name):
    out = np.abs(rng.standard_normal((4, 10))) * 2
    labels = rng.integers(0, 10, 4)

    def grad():
        if name == "mse":
            return mse(out, np.eye(10)[labels])[1]
        return (softmax_cross_entropy if name == "ce" else paper_loss)(out, labels)[1]
    # d/d out_k of dL/d out_k, column by column of the Jacobian of the gradient
    J = jacobian(grad, out)
    exact = np.diag(J).reshape(out.shape)
    assert_close(loss_hessian_diagonal(name, out, labels), exact, rtol=1e-5)


def test_model_hessian_diagonal_matches_gauss_newton_of_a_dense_net(rng):
    """One hidden layer and MSE: here the diagonal propagation is the exact Gauss-Newton
    diagonal (1/N) diag(J^T J), J the Jacobian of the outputs w.r.t. each parameter."""
    model = Sequential(input_shape=(3,), dtype=np.float64, seed=2)
    for layer in [L.Dense(3, 5, init="lecun"), L.Activation("scaled_tanh"), L.Dense(5, 4, init="lecun")]:
        model.add(layer)
    model.compile("mse", SGD(0.1))
    x, y = rng.standard_normal((6, 3)), rng.integers(0, 4, 6)
    hess = model.hessian_diagonal(x, y, batch_size=4)        # two chunks: 4 + 2
    for p, h in zip(model.params, hess):
        brute = gauss_newton_diag(lambda: model.forward(x), p.value, np.full((6, 4), 1 / 6))
        assert_close(h, brute, name=p.name)


def test_paper_network_hessian_is_positive_and_finite(rng):
    model = L.lenet5_paper(seed=0)
    model.compile("paper", SDLM())
    x = rng.uniform(-0.1, 1.175, (6, 1, 32, 32)).astype(np.float32)
    hess = model.hessian_diagonal(x, rng.integers(0, 10, 6))
    assert len(hess) == len(model.params)
    for p, h in zip(model.params, hess):
        assert h.shape == p.value.shape and np.all(np.isfinite(h)) and np.all(h >= 0)
    # C3's absent connections have no curvature either
    assert np.all(hess[4][~c3_table()] == 0)     # C1 W, b, S2 coef, bias, C3 W


def test_paper_schedule():
    rates = [paper_rate(e) for e in range(1, 22)]
    assert rates == [5e-4] * 2 + [2e-4] * 3 + [1e-4] * 3 + [5e-5] * 4 + [1e-5] * 9
    with pytest.raises(ValueError, match="from 1"):
        paper_rate(0)


def test_sdlm_step_is_eta_over_mu_plus_h(rng):
    model = L.lenet5_paper(seed=0)
    opt = SDLM(lr_scale=2.0, batch_size=4)
    model.compile("paper", opt)
    x = rng.uniform(-0.1, 1.175, (8, 1, 32, 32)).astype(np.float32)
    y = rng.integers(0, 10, 8)
    with pytest.raises(RuntimeError, match="start_epoch"):
        model.train_step(x[:4], y[:4])
    opt.hessian_samples = 8
    opt.start_epoch(3, model, x, y)
    assert opt.lr == pytest.approx(2 * 2e-4)
    before = [p.value.copy() for p in model.params]
    model.train_step(x[:4], y[:4])
    for p, b, h in zip(model.params, before, opt.h):
        expected = b - (4 * opt.lr / (0.02 + h)) * p.grad
        np.testing.assert_allclose(p.value, expected, rtol=1e-5, atol=1e-7)


def test_sdlm_trains_the_paper_network_on_mnist(mnist_dir):
    """The recipe of docs/paper: the paper's init, SDLM at batch 1 with its default rate (the
    paper's schedule x 0.1). One pass over 3,000 images leaves the start's plateau (loss 83,
    every F6 unit near 0, 90% error); about 7 s."""
    from lenet_gpu import data
    x_train, y_train, x_test, y_test = data.load_mnist(mnist_dir)
    x = data.preprocess(x_train[:3000], "paper", pad=2)
    model = L.lenet5_paper(seed=0)
    model.compile("paper", SDLM(batch_size=1))
    before = model.evaluate(x[:500], y_train[:500])["loss"]
    hist = model.fit(x, y_train[:3000], epochs=1, batch_size=1, verbose=0)
    assert hist["train_loss"][-1] < before / 3
    assert model.evaluate(data.preprocess(x_test[:1000], "paper", pad=2), y_test[:1000])["error_pct"] < 30


def test_layers_without_a_second_derivative_pass_say_so(rng):
    model = L.lenet5(batchnorm=True, output=None)
    model.compile("mse", SDLM())
    x = rng.random((2, 1, 28, 28), dtype=np.float32)
    with pytest.raises(NotImplementedError, match="BatchNorm has no second-derivative pass"):
        model.hessian_diagonal(x, np.array([1, 2]))


def test_sdlm_runs_on_the_classic_lenet5(rng):
    """Average pooling and a fused softmax + cross-entropy: every layer has its pass."""
    model = L.lenet5(activation="tanh")
    model.compile("ce", SDLM(hessian_samples=8))
    x, y = rng.random((8, 1, 28, 28), dtype=np.float32), rng.integers(0, 10, 8)
    hist = model.fit(x, y, epochs=1, batch_size=4, verbose=0)
    assert np.isfinite(hist["train_loss"][0])


def test_fan_in_initializer_takes_a_gain():
    from lenet_gpu.layers import check_initializer
    rng = np.random.default_rng(0)
    w = check_initializer("fan_in:1.2")(rng, (100000,), 25, 1)
    assert np.abs(w).max() <= 1.2 / 5 and np.abs(w).max() > 0.99 * 1.2 / 5
    assert np.abs(check_initializer("fan_in")(rng, (1000,), 25, 1)).max() <= 1 / 5
    for bad in ("fan_in:0", "fan_in:x", "xavier:2", "nope"):
        with pytest.raises(ValueError, match=f"initializer '{bad}'"):
            check_initializer(bad)


def test_sdlm_rate_stats_are_eta_over_mu_plus_h_without_absent_connections(rng):
    model = L.lenet5_paper(seed=0, init="fan_in:1.1", subsample_coef=0.5)
    opt = SDLM(lr_scale=1.0, hessian_samples=16)
    model.compile("paper", opt)
    x = rng.uniform(-0.1, 1.175, (16, 1, 32, 32)).astype(np.float32)
    opt.start_epoch(1, model, x, rng.integers(0, 10, 16))
    r = opt.rates
    assert r["ceiling"] == pytest.approx(5e-4 / 0.02)
    rates = np.concatenate([(opt.lr / (0.02 + h.astype(np.float64))).ravel() for h in opt.h])
    c3 = model.layers[4]
    absent = ~np.broadcast_to(c3.table[:, :, None, None], c3.params[0].value.shape)
    assert np.all(opt.h[4][absent] == 0), "absent C3 weights have no curvature"
    counted = sum(a.size for a in opt.h) - int(absent.sum())
    assert counted == 60_000
    assert r["min"] == pytest.approx(rates.min()) and r["max"] < r["ceiling"]
    c3_rates = (opt.lr / (0.02 + opt.h[4].astype(np.float64)))[~absent]   # 1,500 present weights
    assert r["arrays"]["layers.4.W"]["at_ceiling_pct"] == pytest.approx(
        100 * np.mean(c3_rates >= 0.9 * r["ceiling"]))
    assert opt.epoch_info() == {"sdlm_rates": r}


def test_cli_sdlm_rates_prints_the_first_pass_range(mnist_dir, capsys):
    from lenet_gpu.cli import main
    import json
    assert main(["sdlm-rates", "--data", mnist_dir, "--init", "fan_in:1.1", "--subsample-coef",
                 "0.5", "--lr", "1", "--backend", "numpy", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert 3.5e-5 < r["min"] < 1.4e-4 and 8e-3 < r["max"] < 0.032     # the paper's 7e-5 .. 0.016, x/2
    assert r["at_ceiling_pct"] == 0.0 and "layers.0.W" in r["arrays"]
    assert main(["sdlm-rates", "--data", mnist_dir, "--backend", "numpy"]) == 0
    assert "the paper: about 7e-05 .. 0.016" in capsys.readouterr().out
    assert main(["sdlm-rates", "--data", mnist_dir, "--init", "fan_in:-1"]) == 2
    assert "gain after ':' must be a number > 0" in capsys.readouterr().err
    # the paper network's default mu is the paper's 0.02 (ceiling eta/mu = 0.025); a larger mu
    # lowers the ceiling and every rate; mu <= 0 is refused by name
    assert r["ceiling"] == pytest.approx(5e-4 / 0.02)
    assert main(["sdlm-rates", "--data", mnist_dir, "--init", "fan_in:1.1", "--subsample-coef",
                 "0.5", "--backend", "numpy", "--sdlm-mu", "0.05", "--json"]) == 0
    r05 = json.loads(capsys.readouterr().out)
    assert r05["ceiling"] == pytest.approx(5e-4 / 0.05) and r05["max"] < r["max"]
    assert r05["min"] < r["min"]
    assert main(["sdlm-rates", "--data", mnist_dir, "--sdlm-mu", "0"]) == 2
    assert "mu must be > 0, got 0.0" in capsys.readouterr().err


def test_the_paper_losss_data_term_keeps_its_full_curvature_at_the_rbf(rng):
    """hessian_diagonal weights the RBF's own curvature by the gradient of the data term only
    (one-hot / N): at an F6 output on its class centre the second derivative is 2 per unit,
    however confident the competitive term is (with the whole gradient it fell to 2(1 - sum p))."""
    from lenet_gpu.ops.losses import loss_squares_gradient
    w = rbf_centres()
    labels = np.array([3, 7])
    x = w[labels] + 0.01 * rng.standard_normal((2, 84))      # on the centres: confident
    y, cache = rbf_forward(x, w)
    own = loss_squares_gradient("paper", y, labels)
    assert np.array_equal(own, np.eye(10)[labels] / 2)
    d2x = rbf_backward_hessian(loss_hessian_diagonal("paper", y, labels), own, cache)
    assert np.allclose(d2x, 2 / 2, rtol=0.01)          # 2 per unit, batch mean over N = 2
    assert loss_squares_gradient("ce", y, labels) is None
