"""Kernel benchmarks: ours (GPU) against NumPy and PyTorch/cuDNN on LeNet's shapes.

    python -m pytest bench/bench_kernels.py --benchmark-json=bench.json -q
    python bench/summarize.py bench.json

Each kernel (conv, pooling, batch norm, the dense layer's matmul) at N = 20, 256 and 4096;
NumPy only up to N = 256 (far too slow beyond); cuDNN (cuBLAS for dense) when torch with CUDA
is importable. Every timed call synchronizes the device before returning.
Groups are "<kernel> N=<N>"; extra_info carries bytes moved (each input read once, each output
written once: the memory floor) and FLOPs, so summarize.py can report GB/s and GFLOP/s.
"""
import numpy as np
import pytest

from lenet_gpu import backend

pytestmark = pytest.mark.gpu

if not backend.gpu_available():
    pytest.skip(f"no usable CUDA GPU ({backend.gpu_unavailable_reason()})", allow_module_level=True)

import cupy  # noqa: E402

from lenet_gpu.ops import batch_norm, conv2d, dense, pool2d  # noqa: E402

try:
    import torch
    import torch.nn.functional as F
    HAVE_TORCH = torch.cuda.is_available()
    # our kernels compute in full FP32: compare with cuDNN in FP32 too, not TF32
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
except ImportError:
    HAVE_TORCH = False

SIZES = (20, 256, 4096)
NUMPY_MAX_N = 256
CONVS = {  # name: (C, H, K, pad) with W = H, 5x5 kernels, stride 1
    "C1": (1, 28, 6, 2),
    "C3": (6, 14, 16, 0),
    "C5": (16, 5, 120, 0),
}
KERNELS = ([f"conv_{c}_{part}" for c in CONVS for part in ("fwd", "bwd_data", "bwd_weights")]
           + ["pool_fwd", "pool_bwd", "bn_fwd", "bn_bwd", "dense_fwd", "dense_bwd"])
IMPLS = ("ours", "cudnn", "numpy")


def case(kernel, N, rng):
    """-> {impl: zero-argument function}, bytes, flops for one kernel at batch size N."""
    f32 = np.float32
    if kernel.startswith("conv"):
        _, layer, part = kernel.split("_", 2)
        C, H, K, pad = CONVS[layer]
        x, W, b = (rng.standard_normal(s).astype(f32) for s in ((N, C, H, H), (K, C, 5, 5), (K,)))
        y, cache_np = conv2d.conv2d_forward(x, W, b, 1, pad) if N <= NUMPY_MAX_N else (None, None)
        OH = H + 2 * pad - 4
        dy = rng.standard_normal((N, K, OH, OH)).astype(f32)
        xg, Wg, bg, dyg = (cupy.asarray(a) for a in (x, W, b, dy))
        _, cache = conv2d.conv2d_forward(xg, Wg, bg, 1, pad)
        flops = 2 * N * K * OH * OH * C * 25
        fns = {}
        if part == "fwd":
            fns["ours"] = lambda: conv2d.conv2d_forward(xg, Wg, bg, 1, pad)
            fns["numpy"] = lambda: conv2d.conv2d_forward(x, W, b, 1, pad)
            nbytes = 4 * (x.size + W.size + b.size + dy.size)
        elif part == "bwd_data":
            fns["ours"] = lambda: conv2d._backward_data_gpu(dyg, cache)
            fns["numpy"] = lambda: conv2d.conv2d_backward(dy, cache_np, need_dx=True)
            nbytes = 4 * (dy.size + W.size + x.size)
        else:
            fns["ours"] = lambda: conv2d._backward_weights_gpu(dyg, cache)
            fns["numpy"] = lambda: conv2d.conv2d_backward(dy, cache_np, need_dx=False)
            nbytes = 4 * (x.size + dy.size + W.size + b.size)
        if HAVE_TORCH:
            xt, Wt, bt, dyt = (torch.as_tensor(a, device="cuda") for a in (x, W, b, dy))
            fns["cudnn"] = {
                "fwd": lambda: F.conv2d(xt, Wt, bt, padding=pad),
                "bwd_data": lambda: torch.nn.grad.conv2d_input(xt.shape, Wt, dyt, padding=pad),
                "bwd_weights": lambda: (torch.nn.grad.conv2d_weight(xt, Wt.shape, dyt, padding=pad),
                                        dyt.sum(dim=(0, 2, 3))),
            }[part]
        return fns, nbytes, flops

    if kernel.startswith("dense"):  # F6: 120 -> 84 (kernels/dense.cu; cuBLAS for PyTorch)
        x, W, b = (rng.standard_normal(s).astype(f32) for s in ((N, 120), (120, 84), (84,)))
        dy = rng.standard_normal((N, 84)).astype(f32)
        xg, Wg, bg, dyg = (cupy.asarray(a) for a in (x, W, b, dy))
        _, cache = dense.dense_forward(xg, Wg, bg)
        _, cache_np = dense.dense_forward(x, W, b)
        if kernel == "dense_fwd":
            fns = {"ours": lambda: dense.dense_forward(xg, Wg, bg),
                   "numpy": lambda: dense.dense_forward(x, W, b)}
            nbytes, flops = 4 * (x.size + W.size + b.size + dy.size), 2 * N * 120 * 84
        else:
            fns = {"ours": lambda: dense.dense_backward(dyg, cache),
                   "numpy": lambda: dense.dense_backward(dy, cache_np)}
            nbytes, flops = 4 * (2 * x.size + 2 * W.size + dy.size), 4 * N * 120 * 84
        if HAVE_TORCH:
            xt, Wt, bt, dyt = (torch.as_tensor(a, device="cuda") for a in (x, W, b, dy))
            fns["cudnn"] = (lambda: torch.addmm(bt, xt, Wt)) if kernel == "dense_fwd" else \
                (lambda: (dyt @ Wt.T, xt.T @ dyt, dyt.sum(0)))
        return fns, nbytes, flops

    if kernel.startswith("pool"):   # S2: 2x2 average pooling of C1's output
        x = rng.standard_normal((N, 6, 28, 28)).astype(f32)
        dy = rng.standard_normal((N, 6, 14, 14)).astype(f32)
        xg, dyg = cupy.asarray(x), cupy.asarray(dy)
        _, cache = pool2d.pool2d_forward(xg, 2)
        _, cache_np = pool2d.pool2d_forward(x, 2)
        nbytes = 4 * (x.size + dy.size)
        if kernel == "pool_fwd":
            fns = {"ours": lambda: pool2d.pool2d_forward(xg, 2), "numpy": lambda: pool2d.pool2d_forward(x, 2)}
            if HAVE_TORCH:
                xt = torch.as_tensor(x, device="cuda")
                fns["cudnn"] = lambda: F.avg_pool2d(xt, 2)
        else:
            fns = {"ours": lambda: pool2d.pool2d_backward(dyg, cache),
                   "numpy": lambda: pool2d.pool2d_backward(dy, cache_np)}
            if HAVE_TORCH:
                xt, dyt = torch.as_tensor(x, device="cuda"), torch.as_tensor(dy, device="cuda")
                fns["cudnn"] = lambda: torch.ops.aten.avg_pool2d_backward(
                    dyt, xt, [2, 2], [2, 2], [0, 0], False, True, None)
        return fns, nbytes, x.size

    # batch norm over C1's output (N, 6, 28, 28), training mode
    x = rng.standard_normal((N, 6, 28, 28)).astype(f32)
    dy = rng.standard_normal(x.shape).astype(f32)
    gamma, beta = rng.standard_normal(6).astype(f32), rng.standard_normal(6).astype(f32)
    rm, rv = np.zeros(6, f32), np.ones(6, f32)
    xg, dyg, gg, bg, rmg, rvg = (cupy.asarray(a) for a in (x, dy, gamma, beta, rm, rv))
    _, cache = batch_norm.batch_norm_forward_train(xg, gg, bg, rmg, rvg)
    _, cache_np = batch_norm.batch_norm_forward_train(x, gamma, beta, rm, rv)
    if kernel == "bn_fwd":
        fns = {"ours": lambda: batch_norm.batch_norm_forward_train(xg, gg, bg, rmg, rvg),
               "numpy": lambda: batch_norm.batch_norm_forward_train(x, gamma, beta, rm, rv)}
        nbytes, flops = 4 * 2 * x.size, 8 * x.size
    else:
        fns = {"ours": lambda: batch_norm.batch_norm_backward(dyg, cache),
               "numpy": lambda: batch_norm.batch_norm_backward(dy, cache_np)}
        nbytes, flops = 4 * 3 * x.size, 10 * x.size
    if HAVE_TORCH:
        xt, dyt, gt, bt, rmt, rvt = (torch.as_tensor(a, device="cuda") for a in (x, dy, gamma, beta, rm, rv))
        if kernel == "bn_fwd":
            fns["cudnn"] = lambda: F.batch_norm(xt, rmt, rvt, gt, bt, training=True, momentum=0.1, eps=1e-5)
        else:
            _, save_mean, save_invstd = torch.ops.aten.native_batch_norm(xt, gt, bt, rmt, rvt, True, 0.1, 1e-5)
            fns["cudnn"] = lambda: torch.ops.aten.native_batch_norm_backward(
                dyt, xt, gt, rmt, rvt, save_mean, save_invstd, True, 1e-5, [True, True, True])
    return fns, nbytes, flops


def synchronized(fn, impl):
    sync = torch.cuda.synchronize if impl == "cudnn" else cupy.cuda.Device().synchronize

    def run():
        fn()
        if impl != "numpy":
            sync()
    return run


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("N", SIZES)
@pytest.mark.parametrize("kernel", KERNELS)
def test_kernel(benchmark, kernel, N, impl):
    if impl == "numpy" and N > NUMPY_MAX_N:
        pytest.skip(f"NumPy is too slow at N = {N}")
    if impl == "cudnn" and not HAVE_TORCH:
        pytest.skip("torch with CUDA is not importable")
    fns, nbytes, flops = case(kernel, N, np.random.default_rng(N))
    benchmark.group = f"{kernel} N={N}"
    benchmark.extra_info.update(kernel=kernel, N=N, impl=impl, bytes=int(nbytes), flops=int(flops))
    rounds, warmup = (3, 1) if impl == "numpy" else (30, 5)
    benchmark.pedantic(synchronized(fns[impl], impl), rounds=rounds, iterations=1, warmup_rounds=warmup)
