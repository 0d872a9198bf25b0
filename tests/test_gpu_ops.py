"""GPU kernels against the NumPy reference: every op, forward and backward, many shapes.

Inputs are fresh random arrays (the `rng` fixture); errors are measured as
max |gpu - ref| / max |ref| in float32. Also: run-to-run determinism of every reduction,
the launcher's argument checks, and batch norm's running-statistics update.
"""
import os

import numpy as np
import pytest

from lenet_gpu import cuda
from lenet_gpu.layers import c3_table
from lenet_gpu.ops.batch_norm import (batch_norm_backward, batch_norm_forward_infer,
                                      batch_norm_forward_train)
from lenet_gpu.ops.conv2d import conv2d_backward, conv2d_forward
from lenet_gpu.ops.dense import column_sums, dense_backward, dense_forward, matmul
from lenet_gpu.ops.pool2d import pool2d_backward, pool2d_forward

pytestmark = pytest.mark.gpu

RTOL = 1e-4
# under ../shared/tools/gpu_emu (CPU emulation, ~1000x slower): multi-step trajectories are
# shortened there, they check on a GPU what a few steps check in emulation
EMULATED = os.environ.get("GPU_EMU") == "1"


def rel_error(gpu, ref):
    gpu = gpu.get() if hasattr(gpu, "get") else gpu
    assert gpu.shape == ref.shape, (gpu.shape, ref.shape)
    scale = float(np.max(np.abs(ref))) if ref.size else 0.0
    return float(np.max(np.abs(gpu.astype(np.float64) - ref))) / max(scale, 1e-30)


def assert_close(gpu, ref, what, rtol=RTOL):
    err = rel_error(gpu, ref)
    assert err < rtol, f"{what}: relative error {err:.2e} >= {rtol:.0e}"


def assert_grads_close(got, ref, bias):
    """(dx, dW, db) of a layer's backward against the NumPy reference's; db is None without bias."""
    assert_close(got[0], ref[0], "dx")
    assert_close(got[1], ref[1], "dW")
    if bias:
        assert_close(got[2], ref[2], "db")
    else:
        assert got[2] is None


def randn(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


# ---- convolution -----------------------------------------------------------------------------
# (N, C, H, W, K, kernel, stride, pad, table): LeNet's layers, then the awkward cases
CONV_CASES = {
    "C1-N20": (20, 1, 28, 28, 6, 5, 1, 2, None),
    "C3-N20": (20, 6, 14, 14, 16, 5, 1, 0, None),
    "C3-table-N20": (20, 6, 14, 14, 16, 5, 1, 0, "c3"),
    "C5-N20": (20, 16, 5, 5, 120, 5, 1, 0, None),
    "C1-N1": (1, 1, 28, 28, 6, 5, 1, 2, None),
    "C3-table-N257": (257, 6, 14, 14, 16, 5, 1, 0, "c3"),
    "C5-N257": (257, 16, 5, 5, 120, 5, 1, 0, None),
    "odd-3x3-stride2-pad1": (3, 3, 9, 7, 5, 3, 2, 1, None),
    "nonsquare-4x4-stride3-pad2": (2, 2, 8, 11, 3, 4, 3, 2, None),
    "5x5-stride2-pad2": (5, 4, 13, 10, 7, 5, 2, 2, None),
    "1x1": (3, 5, 6, 7, 9, 1, 1, 0, None),
    "random-table-generic": (2, 5, 7, 9, 6, 3, 1, 1, "random"),
    "K3-few-channels": (4, 2, 12, 12, 3, 5, 1, 0, None),
}


def conv_inputs(rng, case, bias=True):
    N, C, H, W, K, k, stride, pad, table = CONV_CASES[case]
    x, Wt = randn(rng, N, C, H, W), randn(rng, K, C, k, k)
    b = randn(rng, K) if bias else None
    if table == "c3":
        table = c3_table()
    elif table == "random":
        table = rng.random((K, C)) < 0.5
        table[:, 0] = True
    if table is not None:
        Wt *= table[:, :, None, None]
    return x, Wt, b, stride, pad, table


def to_gpu(cp, *arrays):
    return [None if a is None else cp.asarray(a) for a in arrays]


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("case", list(CONV_CASES))
def test_conv2d_matches_numpy(cp, rng, case, bias):
    x, Wt, b, stride, pad, table = conv_inputs(rng, case, bias)
    y_ref, cache_ref = conv2d_forward(x, Wt, b, stride, pad, table)
    y, cache = conv2d_forward(*to_gpu(cp, x, Wt, b), stride, pad, *to_gpu(cp, table))
    assert_close(y, y_ref, "y")

    dy = randn(rng, *y_ref.shape)
    dx, dW, db = conv2d_backward(cp.asarray(dy), cache)
    assert_grads_close((dx, dW, db), conv2d_backward(dy, cache_ref), bias)
    if table is not None:
        assert not cp.any(dW[cp.asarray(~table)]), "absent connections must get zero gradient"
    assert_counters_are_back_to_zero(cp)


def test_conv2d_skips_dx_for_the_first_layer(cp, rng):
    x, Wt, b, stride, pad, table = conv_inputs(rng, "C1-N20")
    y, cache = conv2d_forward(*to_gpu(cp, x, Wt, b), stride, pad)
    dx, dW, db = conv2d_backward(cp.asarray(randn(rng, *y.shape)), cache, need_dx=False)
    assert dx is None and dW.shape == Wt.shape and db.shape == b.shape


def test_conv2d_accepts_non_contiguous_inputs(cp, rng):
    x, Wt, b, stride, pad, _ = conv_inputs(rng, "C3-N20")
    x_wide = randn(rng, 20, 6, 14, 28)
    x_wide[..., ::2] = x
    y_ref, _ = conv2d_forward(x, Wt, b, stride, pad)
    y, _ = conv2d_forward(cp.asarray(x_wide)[..., ::2], cp.asarray(Wt), cp.asarray(b), stride, pad)
    assert_close(y, y_ref, "y from a strided view")


def test_conv2d_rejects_float64_naming_the_argument(cp, rng):
    x, Wt, b, stride, pad, _ = conv_inputs(rng, "C3-N20")
    with pytest.raises(TypeError, match=r"\bx must be float32"):
        conv2d_forward(cp.asarray(x, dtype=cp.float64), cp.asarray(Wt, dtype=cp.float64), None)
    with pytest.raises(TypeError, match=r"\bb must be float32"):
        conv2d_forward(cp.asarray(x), cp.asarray(Wt), cp.asarray(b, dtype=cp.float64))


# ---- pooling ---------------------------------------------------------------------------------
# (N, C, H, W, k, stride)
POOL_CASES = {
    "S2-N20": (20, 6, 28, 28, 2, 2),
    "S4-N257": (257, 16, 10, 10, 2, 2),
    "N1": (1, 1, 4, 4, 2, 2),
    "odd-size-leftover-rows": (3, 2, 7, 9, 2, 2),
    "overlapping-3-stride-2": (2, 3, 9, 8, 3, 2),
    "stride1": (2, 2, 6, 7, 2, 1),
    "3x3-stride3-nonsquare": (1, 4, 10, 14, 3, 3),
}


@pytest.mark.parametrize("mode", ["avg", "max"])
@pytest.mark.parametrize("case", list(POOL_CASES))
def test_pool2d_matches_numpy(cp, rng, case, mode):
    N, C, H, W, k, stride = POOL_CASES[case]
    x = randn(rng, N, C, H, W)
    if mode == "max":   # small integers: many ties, which must go to the first maximum
        x = rng.integers(-2, 3, size=x.shape).astype(np.float32)
    y_ref, cache_ref = pool2d_forward(x, k, stride, mode)
    y, cache = pool2d_forward(cp.asarray(x), k, stride, mode)
    assert_close(y, y_ref, "y")
    dy = randn(rng, *y_ref.shape)
    assert_close(pool2d_backward(cp.asarray(dy), cache), pool2d_backward(dy, cache_ref), "dx")


def test_pool2d_rejects_float64(cp, rng):
    with pytest.raises(TypeError, match=r"\bx must be float32"):
        pool2d_forward(cp.asarray(rng.standard_normal((2, 2, 4, 4))), 2)


# ---- batch norm ------------------------------------------------------------------------------
BN_SHAPES = {
    "C1-N20": (20, 6, 28, 28),
    "S49-N64": (64, 2, 28, 28),      # 49 blocks per channel: more partials than a warp has lanes
    "C5-N257": (257, 120, 1, 1),
    "odd-4d": (3, 5, 7, 9),
    "N1-4d": (1, 4, 3, 5),
    "F6-2d": (20, 84),
    "2d-N257": (257, 7),
    "2d-N2": (2, 3),
}


def bn_inputs(rng, shape):
    C = shape[1]
    x = randn(rng, *shape) * 3 + 2      # a mean far from 0 tests the variance's stability
    gamma, beta = randn(rng, C), randn(rng, C)
    running_mean, running_var = randn(rng, C), rng.uniform(0.5, 2, C).astype(np.float32)
    return x, gamma, beta, running_mean, running_var


def assert_bn_dx_close(dx, x, gamma, dy, rtol=RTOL):
    """dx = k (M g - dbeta - xhat dgamma) is a difference of terms that can nearly cancel (with
    M = 2 samples it is zero up to eps/var): even the float32 NumPy result is then off the
    exact one by far more than 1e-4 of its size. So compare with a float64 reference, on the
    scale of the terms that cancel, k (M |g| + |dbeta| + |xhat dgamma|), per element."""
    x64, g64, dy64 = (a.astype(np.float64) for a in (x, gamma, dy))
    _, cache = batch_norm_forward_train(x64, g64, 0 * g64, 0 * g64, 1 + 0 * g64, 0.1, 1e-5)
    dx_ref, dgamma_ref, dbeta_ref = batch_norm_backward(dy64, cache)
    xhat, invstd, _ = cache
    shape = (1, -1) + (1,) * (x.ndim - 2)
    M = x.size // x.shape[1]
    k = np.abs(g64 * invstd / M).reshape(shape)
    scale = k * (M * np.abs(dy64) + np.abs(dbeta_ref).reshape(shape)
                 + np.abs(xhat * dgamma_ref.reshape(shape)))
    err = float(np.max(np.abs(dx.get().astype(np.float64) - dx_ref) / scale))
    assert err < rtol, f"dx: error {err:.2e} of the cancelling terms' size >= {rtol:.0e}"


@pytest.mark.parametrize("case", list(BN_SHAPES))
def test_batch_norm_matches_numpy(cp, rng, case):
    x, gamma, beta, rm, rv = bn_inputs(rng, BN_SHAPES[case])
    rm_gpu, rv_gpu = cp.asarray(rm), cp.asarray(rv)
    y_ref, cache_ref = batch_norm_forward_train(x, gamma, beta, rm, rv, 0.1, 1e-5)
    y, cache = batch_norm_forward_train(*to_gpu(cp, x, gamma, beta), rm_gpu, rv_gpu, 0.1, 1e-5)
    assert_close(y, y_ref, "y")
    assert_close(rm_gpu, rm, "running_mean")   # updated in place on both sides
    assert_close(rv_gpu, rv, "running_var")

    dy = randn(rng, *x.shape)
    dx_ref, dgamma_ref, dbeta_ref = batch_norm_backward(dy, cache_ref)
    dx, dgamma, dbeta = batch_norm_backward(cp.asarray(dy), cache)
    assert_bn_dx_close(dx, x, gamma, dy)
    assert_close(dgamma, dgamma_ref, "dgamma")
    assert_close(dbeta, dbeta_ref, "dbeta")

    y_ref = batch_norm_forward_infer(x, gamma, beta, rm, rv, 1e-5)
    y = batch_norm_forward_infer(*to_gpu(cp, x, gamma, beta), rm_gpu, rv_gpu, 1e-5)
    assert_close(y, y_ref, "y (inference)")
    assert_counters_are_back_to_zero(cp)


def assert_counters_are_back_to_zero(cp):
    """Kernels that finish a split reduction in one launch count the blocks that arrive
    (last_block_to_arrive): each must leave its counters at 0, or the next launch goes wrong."""
    buffers = list(cuda._counters.values())
    assert buffers and all(int(cp.count_nonzero(b)) == 0 for b in buffers)


def test_batch_norm_running_stats_update(cp, rng):
    """momentum blends in the batch mean and the unbiased (M/(M-1)) batch variance."""
    x, gamma, beta, rm, rv = bn_inputs(rng, (20, 6, 5, 5))
    rm_gpu, rv_gpu = cp.asarray(rm), cp.asarray(rv)
    batch_norm_forward_train(*to_gpu(cp, x, gamma, beta), rm_gpu, rv_gpu, 0.25, 1e-5)
    x64 = x.astype(np.float64)
    M = x.size // x.shape[1]
    mean, var = x64.mean(axis=(0, 2, 3)), x64.var(axis=(0, 2, 3))
    np.testing.assert_allclose(rm_gpu.get(), 0.75 * rm + 0.25 * mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(rv_gpu.get(), 0.75 * rv + 0.25 * var * M / (M - 1), rtol=1e-5, atol=1e-6)


def test_batch_norm_running_stats_must_be_updatable_in_place(cp, rng):
    x, gamma, beta, rm, rv = bn_inputs(rng, (4, 3, 2, 2))
    with pytest.raises(cuda.KernelArgumentError, match="running_mean.*float32"):
        batch_norm_forward_train(*to_gpu(cp, x, gamma, beta), cp.asarray(rm, dtype=cp.float64),
                                 cp.asarray(rv), 0.1, 1e-5)
    strided = cp.asarray(np.repeat(rv, 2))[::2]
    with pytest.raises(cuda.KernelArgumentError, match="running_var.*C-contiguous"):
        batch_norm_forward_train(*to_gpu(cp, x, gamma, beta), cp.asarray(rm), strided, 0.1, 1e-5)


# ---- dense (kernels/dense.cu) ------------------------------------------------------------------
# (N, in, out): LeNet's F6 and output layers, the RBF's product, then shapes that leave partial
# tiles and a batch long enough to be split over several chunks (the dW sum)
DENSE_CASES = {
    "F6-N20": (20, 120, 84),
    "out-N20": (20, 84, 10),
    "F6-N1": (1, 120, 84),
    "rbf-N3": (3, 84, 10),
    "F6-N300-split": (300, 120, 84),
    "odd-N33": (33, 17, 5),
    "1x1": (1, 1, 1),
}


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("case", list(DENSE_CASES))
def test_dense_matches_numpy(cp, rng, case, bias):
    N, n_in, n_out = DENSE_CASES[case]
    x, W = randn(rng, N, n_in), randn(rng, n_in, n_out)
    b = randn(rng, n_out) if bias else None
    y_ref, cache_ref = dense_forward(x, W, b)
    y, cache = dense_forward(*to_gpu(cp, x, W, b))
    assert_close(y, y_ref, "y")
    dy = randn(rng, N, n_out)
    assert_grads_close(dense_backward(cp.asarray(dy), cache), dense_backward(dy, cache_ref), bias)


@pytest.mark.parametrize("trans_a, trans_b", [(False, False), (False, True), (True, False), (True, True)])
def test_matmul_every_transpose(cp, rng, trans_a, trans_b):
    M, K, N = 19, 37, 23
    a = randn(rng, K, M) if trans_a else randn(rng, M, K)
    b = randn(rng, N, K) if trans_b else randn(rng, K, N)
    ref = (a.T if trans_a else a) @ (b.T if trans_b else b)
    assert_close(matmul(cp.asarray(a), cp.asarray(b), trans_a, trans_b), ref, "op(a) @ op(b)")


def test_matmul_rejects_shapes_that_do_not_chain(cp, rng):
    with pytest.raises(ValueError, match=r"shapes \(3, 4\) and \(5, 2\) do not chain"):
        matmul(cp.asarray(randn(rng, 3, 4)), cp.asarray(randn(rng, 5, 2)))


def test_column_sums_match_numpy(cp, rng):
    dy = randn(rng, 300, 7)
    assert_close(column_sums(cp.asarray(dy)), dy.sum(axis=0), "column sums")


# ---- determinism -----------------------------------------------------------------------------
@pytest.mark.parametrize("case", ["C1-N20", "C3-table-N257", "C5-N257"])
def test_conv2d_backward_is_bit_identical_run_to_run(cp, rng, case):
    x, Wt, b, stride, pad, table = conv_inputs(rng, case)
    y, cache = conv2d_forward(*to_gpu(cp, x, Wt, b), stride, pad, *to_gpu(cp, table))
    dy = cp.asarray(randn(rng, *y.shape))
    first, second = conv2d_backward(dy, cache), conv2d_backward(dy, cache)
    for name, a, b2 in zip(("dx", "dW", "db"), first, second):
        assert cp.array_equal(a, b2), f"{name} differs between two identical runs"


def test_dense_backward_is_bit_identical_run_to_run(cp, rng):
    x, W, b = to_gpu(cp, randn(rng, 300, 120), randn(rng, 120, 84), randn(rng, 84))
    _, cache = dense_forward(x, W, b)
    dy = cp.asarray(randn(rng, 300, 84))
    for name, a, b2 in zip(("dx", "dW", "db"), dense_backward(dy, cache), dense_backward(dy, cache)):
        assert cp.array_equal(a, b2), f"{name} differs between two identical runs"


@pytest.mark.parametrize("case", ["C1-N20", "2d-N257"])
def test_batch_norm_is_bit_identical_run_to_run(cp, rng, case):
    x, gamma, beta, rm, rv = bn_inputs(rng, BN_SHAPES[case])
    args = to_gpu(cp, x, gamma, beta)
    dy = cp.asarray(randn(rng, *x.shape))
    runs = []
    for _ in range(2):
        y, cache = batch_norm_forward_train(*args, cp.asarray(rm), cp.asarray(rv), 0.1, 1e-5)
        runs.append((y, *batch_norm_backward(dy, cache)))
    for name, a, b in zip(("y", "dx", "dgamma", "dbeta"), *runs):
        assert cp.array_equal(a, b), f"{name} differs between two identical runs"


# ---- the launcher ----------------------------------------------------------------------------
def pool_args(cp, x, y):
    N, C, H, W = x.shape
    return [("x", x, cuda.F32), ("NC", N * C, cuda.INT), ("H", H, cuda.INT), ("W", W, cuda.INT),
            ("OH", y.shape[2], cuda.INT), ("OW", y.shape[3], cuda.INT), ("k", 2, cuda.INT),
            ("stride", 2, cuda.INT), ("inv_area", 0.25, cuda.FLOAT), ("y", y, cuda.F32)]


def test_launcher_runs_a_kernel_with_python_scalars(cp, rng):
    x = cp.asarray(randn(rng, 2, 3, 4, 6))
    y = cp.empty((2, 3, 2, 3), dtype=cp.float32)
    cuda.launch("pool2d.cu", "pool2d_forward_avg", cuda.blocks(y.size), pool_args(cp, x, y))
    assert_close(y, pool2d_forward(x.get(), 2)[0], "y")


def test_launcher_rejects_wrong_dtype(cp, rng):
    x = cp.asarray(rng.standard_normal((2, 3, 4, 6)))   # float64
    y = cp.empty((2, 3, 2, 3), dtype=cp.float32)
    with pytest.raises(cuda.KernelArgumentError, match=r"pool2d_forward_avg: argument 'x' must be float32"):
        cuda.launch("pool2d.cu", "pool2d_forward_avg", 1, pool_args(cp, x, y))


def test_launcher_rejects_non_contiguous_arrays(cp, rng):
    x = cp.asarray(randn(rng, 2, 3, 4, 12))[..., ::2]
    y = cp.empty((2, 3, 2, 3), dtype=cp.float32)
    with pytest.raises(cuda.KernelArgumentError, match=r"argument 'x' must be C-contiguous"):
        cuda.launch("pool2d.cu", "pool2d_forward_avg", 1, pool_args(cp, x, y))


def test_launcher_rejects_host_arrays_and_bad_scalars(cp, rng):
    x = randn(rng, 2, 3, 4, 6)
    y = cp.empty((2, 3, 2, 3), dtype=cp.float32)
    with pytest.raises(cuda.KernelArgumentError, match=r"argument 'x' must be a CuPy array"):
        cuda.launch("pool2d.cu", "pool2d_forward_avg", 1, pool_args(cp, x, y))
    args = pool_args(cp, cp.asarray(x), y)
    args[1] = ("NC", 6.0, cuda.INT)
    with pytest.raises(cuda.KernelArgumentError, match=r"argument 'NC' must be an int"):
        cuda.launch("pool2d.cu", "pool2d_forward_avg", 1, args)
    args[1] = ("NC", 2 ** 31, cuda.INT)
    with pytest.raises(cuda.KernelArgumentError, match=r"'NC' = 2147483648 does not fit in int32"):
        cuda.launch("pool2d.cu", "pool2d_forward_avg", 1, args)


def test_launcher_rejects_unlisted_kernels(cp):
    with pytest.raises(KeyError, match="not listed"):
        cuda.get_kernel("conv2d.cu", "conv2d_forward<3, 3, 8>")


def test_every_listed_kernel_loads(cp):
    for filename, names in cuda.KERNELS.items():
        for name in names:
            assert cuda.get_kernel(filename, name) is not None
