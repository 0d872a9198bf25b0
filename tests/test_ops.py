"""Every op against a direct reference and its own numerical gradient, in float64."""
import numpy as np
import pytest

from lenet_gpu.layers import c3_table
from lenet_gpu.ops import conv2d
from lenet_gpu.ops.activations import ACTIVATIONS, activation_backward, activation_forward
from lenet_gpu.ops.batch_norm import (batch_norm_backward, batch_norm_forward_infer,
                                      batch_norm_forward_train)
from lenet_gpu.ops.conv2d import conv2d_backward, conv2d_forward
from lenet_gpu.ops.dense import dense_backward, dense_forward
from lenet_gpu.ops.losses import mse, softmax_cross_entropy
from lenet_gpu.ops.pool2d import pool2d_backward, pool2d_forward

from gradcheck import assert_close, numerical_grad


def conv_direct(x, W, b, stride, pad, table):
    """The definition, loop by loop (slow, obviously right)."""
    N, C, H, Wd = x.shape
    K, _, KH, KW = W.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    OH, OW = (H + 2 * pad - KH) // stride + 1, (Wd + 2 * pad - KW) // stride + 1
    y = np.zeros((N, K, OH, OW))
    for k in range(K):
        for c in range(C):
            if table is not None and not table[k, c]:
                continue
            for oh in range(OH):
                for ow in range(OW):
                    patch = xp[:, c, oh * stride:oh * stride + KH, ow * stride:ow * stride + KW]
                    y[:, k, oh, ow] += (patch * W[k, c]).sum(axis=(1, 2))
    return y + (0 if b is None else b[None, :, None, None])


CONV_CASES = [  # N, C, H, W, K, k, stride, pad, table
    (1, 1, 7, 7, 2, 3, 1, 0, None),
    (3, 2, 8, 6, 3, 3, 2, 1, None),        # non-square, stride 2, padding
    (2, 3, 9, 9, 4, 5, 1, 2, None),        # odd size, "same" padding
    (2, 6, 9, 9, 16, 5, 1, 0, "c3"),      # the paper's C3 table
    (5, 2, 6, 5, 1, 2, 3, 0, None),        # stride larger than the kernel
    (2, 4, 5, 5, 6, 5, 1, 0, None),        # C5-like: output 1x1
]


@pytest.mark.parametrize("slice_bytes", [None, 1], ids=["whole", "sample-slices"])
@pytest.mark.parametrize("N,C,H,W,K,k,stride,pad,table", CONV_CASES)
def test_conv2d_forward_and_gradients(rng, monkeypatch, N, C, H, W, K, k, stride, pad, table,
                                      slice_bytes):
    if slice_bytes is not None:         # the CPU im2col one sample at a time
        monkeypatch.setattr(conv2d, "SLICE_BYTES", slice_bytes)
    x = rng.standard_normal((N, C, H, W))
    Wt = rng.standard_normal((K, C, k, k))
    b = rng.standard_normal(K)
    t = c3_table() if table == "c3" else None
    y, cache = conv2d_forward(x, Wt, b, stride, pad, t)
    np.testing.assert_allclose(y, conv_direct(x, Wt, b, stride, pad, t), rtol=1e-10, atol=1e-10)
    y_infer, no_cache = conv2d_forward(x, Wt, b, stride, pad, t, keep=False)
    assert no_cache is None and np.array_equal(y_infer, y)

    R = rng.standard_normal(y.shape)              # L = sum(y * R), so dL/dy = R
    dx, dW, db = conv2d_backward(R, cache)

    def L():
        return (conv2d_forward(x, Wt, b, stride, pad, t)[0] * R).sum()
    assert_close(dx, numerical_grad(L, x), name="dx")
    assert_close(dW, numerical_grad(L, Wt), name="dW")
    assert_close(db, numerical_grad(L, b), name="db")
    if t is not None:
        assert np.all(dW[~t] == 0), "absent connections must get zero gradient"
    assert conv2d_backward(R, cache, need_dx=False)[0] is None


def test_conv2d_float32_matches_float64(rng):
    x = rng.standard_normal((4, 6, 14, 14))
    W = rng.standard_normal((16, 6, 5, 5))
    y64 = conv2d_forward(x, W, None)[0]
    y32 = conv2d_forward(x.astype(np.float32), W.astype(np.float32), None)[0]
    assert y32.dtype == np.float32
    np.testing.assert_allclose(y32, y64, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("bad, message", [
    (lambda x, W: (x[0], W), "4-D"),
    (lambda x, W: (x[:, :1], W), "channels"),
    (lambda x, W: (x.astype(np.int32), W), "float"),
    (lambda x, W: (x, W.astype(np.float32)), "same dtype"),
    (lambda x, W: (x[:, :, :3, :3], W), "does not fit"),
])
def test_conv2d_bad_input_is_named(rng, bad, message):
    x, W = rng.standard_normal((2, 3, 8, 8)), rng.standard_normal((4, 3, 5, 5))
    with pytest.raises((ValueError, TypeError), match=message):
        conv2d_forward(*bad(x, W))


def pool_direct(x, k, stride, mode):
    N, C, H, W = x.shape
    OH, OW = (H - k) // stride + 1, (W - k) // stride + 1
    y = np.zeros((N, C, OH, OW))
    for oh in range(OH):
        for ow in range(OW):
            win = x[:, :, oh * stride:oh * stride + k, ow * stride:ow * stride + k]
            y[:, :, oh, ow] = win.mean(axis=(2, 3)) if mode == "avg" else win.max(axis=(2, 3))
    return y


@pytest.mark.parametrize("mode", ["avg", "max"])
@pytest.mark.parametrize("N,C,H,W,k,stride", [
    (1, 1, 4, 4, 2, 2), (3, 2, 7, 5, 2, 2),   # odd sizes: last row/column unused
    (2, 3, 7, 7, 3, 2),                        # overlapping windows
    (2, 2, 8, 9, 2, 3),                        # gaps between windows
    (2, 4, 6, 6, 3, 3),
    (2, 2, 3, 4, 1, 1)])                       # 1x1 windows: the identity
def test_pool2d_forward_and_gradients(rng, mode, N, C, H, W, k, stride):
    x = rng.standard_normal((N, C, H, W))
    y, cache = pool2d_forward(x, k, stride, mode)
    np.testing.assert_allclose(y, pool_direct(x, k, stride, mode), rtol=1e-12)
    R = rng.standard_normal(y.shape)
    dx = pool2d_backward(R, cache)
    assert_close(dx, numerical_grad(lambda: (pool2d_forward(x, k, stride, mode)[0] * R).sum(), x))


def test_maxpool_tie_goes_to_first_maximum():
    x = np.ones((1, 1, 2, 2))
    _, cache = pool2d_forward(x, 2, 2, "max")
    dx = pool2d_backward(np.ones((1, 1, 1, 1)), cache)
    np.testing.assert_array_equal(dx[0, 0], [[1, 0], [0, 0]])


@pytest.mark.parametrize("shape", [(4, 3, 5, 6), (1, 2, 3, 3), (7, 5), (2, 4)])
def test_batch_norm_train_gradients_and_running_stats(rng, shape):
    x = rng.standard_normal(shape) * 3 + 1
    C = shape[1]
    gamma, beta = rng.standard_normal(C), rng.standard_normal(C)
    rm, rv = rng.standard_normal(C), rng.random(C) + 0.5
    rm0, rv0 = rm.copy(), rv.copy()
    y, cache = batch_norm_forward_train(x, gamma, beta, rm, rv, momentum=0.1, eps=1e-5)
    axes = (0, 2, 3) if x.ndim == 4 else (0,)
    M = x.size // C
    np.testing.assert_allclose(rm, 0.9 * rm0 + 0.1 * x.mean(axis=axes))
    np.testing.assert_allclose(rv, 0.9 * rv0 + 0.1 * x.var(axis=axes) * M / (M - 1))
    shp = (1, C, 1, 1) if x.ndim == 4 else (1, C)
    xhat = (x - x.mean(axis=axes).reshape(shp)) / np.sqrt(x.var(axis=axes).reshape(shp) + 1e-5)
    np.testing.assert_allclose(y, gamma.reshape(shp) * xhat + beta.reshape(shp), rtol=1e-10, atol=1e-12)

    R = rng.standard_normal(y.shape)
    dx, dgamma, dbeta = batch_norm_backward(R, cache)

    def L():
        return (batch_norm_forward_train(x, gamma, beta, rm.copy(), rv.copy())[0] * R).sum()
    assert_close(dx, numerical_grad(L, x), name="dx")
    assert_close(dgamma, numerical_grad(L, gamma), name="dgamma")
    assert_close(dbeta, numerical_grad(L, beta), name="dbeta")


def test_batch_norm_inference_uses_running_stats(rng):
    x = rng.standard_normal((3, 2, 4, 4))
    gamma, beta = rng.standard_normal(2), rng.standard_normal(2)
    rm, rv = rng.standard_normal(2), rng.random(2) + 0.5
    y = batch_norm_forward_infer(x, gamma, beta, rm, rv, eps=1e-5)
    expect = (x - rm[None, :, None, None]) / np.sqrt(rv[None, :, None, None] + 1e-5)
    np.testing.assert_allclose(y, gamma[None, :, None, None] * expect + beta[None, :, None, None])
    with pytest.raises(ValueError, match="gamma must have shape"):
        batch_norm_forward_infer(x, gamma[:1], beta, rm, rv)


def test_dense_gradients(rng):
    x, W, b = rng.standard_normal((5, 7)), rng.standard_normal((7, 3)), rng.standard_normal(3)
    y, cache = dense_forward(x, W, b)
    np.testing.assert_allclose(y, x @ W + b)
    R = rng.standard_normal(y.shape)
    dx, dW, db = dense_backward(R, cache)

    def L():
        return (dense_forward(x, W, b)[0] * R).sum()
    for name, a, p in (("dx", dx, x), ("dW", dW, W), ("db", db, b)):
        assert_close(a, numerical_grad(L, p), name=name)
    with pytest.raises(ValueError, match="Flatten"):
        dense_forward(rng.standard_normal((2, 7, 1)), W, b)


@pytest.mark.parametrize("name", ACTIVATIONS)
@pytest.mark.parametrize("shape", [(1, 10), (3, 2, 5, 4)])
def test_activation_gradients(rng, name, shape):
    x = rng.standard_normal(shape) * 2
    x[np.abs(x) < 1e-3] = 0.5                      # keep ReLU away from its kink
    y, saved = activation_forward(name, x)
    R = rng.standard_normal(y.shape)
    dx = activation_backward(name, R, saved)
    assert_close(dx, numerical_grad(lambda: (activation_forward(name, x)[0] * R).sum(), x), name=name)


def test_activation_values():
    x = np.array([-800.0, -1.0, 0.0, 2.0, 800.0])
    np.testing.assert_allclose(activation_forward("scaled_tanh", x)[0], 1.7159 * np.tanh(2 * x / 3))
    s = activation_forward("sigmoid", x)[0]
    assert np.all(np.isfinite(s)) and s[0] == 0 and s[-1] == 1
    p = activation_forward("softmax", x[None])[0]
    assert np.all(np.isfinite(p)) and abs(p.sum() - 1) < 1e-12
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        activation_forward("swish", x)


def test_losses_values_and_gradients(rng):
    a, t = rng.standard_normal((4, 10)), rng.standard_normal((4, 10))
    loss, grad = mse(a, t)
    assert loss == pytest.approx(0.5 * ((a - t) ** 2).sum() / 4)
    assert_close(grad, numerical_grad(lambda: mse(a, t)[0], a))

    z, labels = rng.standard_normal((6, 10)) * 3, rng.integers(0, 10, 6)
    loss, grad = softmax_cross_entropy(z, labels)
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    assert loss == pytest.approx(-np.log(p[np.arange(6), labels]).mean())
    assert_close(grad, numerical_grad(lambda: softmax_cross_entropy(z, labels)[0], z))


def test_cross_entropy_is_stable_for_huge_logits():
    z = np.array([[1000.0, -1000.0, 0.0], [-1e4, 1e4, 3.0]])
    loss, grad = softmax_cross_entropy(z, np.array([1, 1]))
    assert np.isfinite(loss) and np.all(np.isfinite(grad))
    assert loss == pytest.approx(1000.0)
