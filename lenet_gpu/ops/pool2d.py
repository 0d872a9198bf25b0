"""2-D average and max pooling, NCHW, window k x k moved by `stride`, no padding (floor mode).

    avg: y[n, c, oh, ow] = mean_{i, j < k} x[n, c, oh*stride + i, ow*stride + j]
    max: y[n, c, oh, ow] = max_{i, j < k}  x[n, c, oh*stride + i, ow*stride + j]

Backward: avg spreads dy/k^2 over the window; max sends dy to the first maximal element of the
window (PyTorch's choice for ties). Rows/columns past the last full window get zero gradient.
CPU path: non-overlapping windows (k == stride, LeNet's case) are a reshape; other windows are
a strided view. GPU path: kernels/pool2d.cu, a thread per output forward and a gather (a thread
per input element) backward.
"""
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .. import cuda
from ..backend import is_gpu_array
from ._shapes import check_4d, check_float, out_size

MODES = ("avg", "max")


def pool2d_forward(x, k, stride=None, mode="avg"):
    """x (N,C,H,W) -> (y (N,C,OH,OW), cache). stride defaults to k."""
    stride = k if stride is None else stride
    k, stride = int(k), int(stride)
    check_4d("x", x)
    check_float("x", x)
    if mode not in MODES:
        raise ValueError(f"pooling mode must be 'avg' or 'max', got {mode!r}")
    if k < 1 or stride < 1:
        raise ValueError(f"pool size and stride must be >= 1, got k={k}, stride={stride}")
    OH, OW = out_size(x.shape[2], k, stride, 0), out_size(x.shape[3], k, stride, 0)
    if OH < 1 or OW < 1:
        raise ValueError(f"pool window {k}x{k} does not fit input {x.shape[2]}x{x.shape[3]}")
    if is_gpu_array(x):
        return _forward_gpu(x, k, stride, mode, OH, OW)
    return _forward_cpu(x, k, stride, mode, OH, OW)


def pool2d_backward(dy, cache):
    if is_gpu_array(dy):
        return _backward_gpu(dy, cache)
    return _backward_cpu(dy, cache)


def pool2d_backward_hessian(d2y, cache):
    """Diagonal second derivatives: each input's d2y times its squared derivative, 1/k^4 for
    avg (the backward pass's 1/k^2, squared) and 1 for max (the maximum of each window)."""
    k, mode = cache[1], cache[3]
    return pool2d_backward(d2y * (1.0 / (k * k)) if mode == "avg" else d2y, cache)


def _windows(x, k, stride, OH, OW):
    """(N, C, OH, OW, k*k) view (a copy only when windows overlap or skip)."""
    N, C = x.shape[:2]
    if k == stride:
        x = x[:, :, :OH * k, :OW * k].reshape(N, C, OH, k, OW, k)
        return x.transpose(0, 1, 2, 4, 3, 5).reshape(N, C, OH, OW, k * k)
    w = sliding_window_view(x, (k, k), axis=(2, 3))[:, :, ::stride, ::stride][:, :, :OH, :OW]
    return w.reshape(N, C, OH, OW, k * k)


def _sum(views):
    """A new array holding the sum of the views, added in order; the first add makes it (no
    copy pass before it)."""
    total = views[0] + views[1] if len(views) > 1 else views[0].copy()
    for v in views[2:]:
        total += v
    return total


def _forward_cpu(x, k, stride, mode, OH, OW):
    N, C = x.shape[:2]
    if mode == "avg" and k == stride:
        # sum the k rows of each window, then the k columns: every step reads contiguous rows
        r = x[:, :, :OH * k, :OW * k].reshape(N, C, OH, k, OW * k)
        s = _sum([r[:, :, :, i] for i in range(k)]).reshape(N, C, OH, OW, k)
        y = _sum([s[..., j] for j in range(k)])
        y *= 1.0 / (k * k)
        return y, (x.shape, k, stride, mode, None)
    w = _windows(x, k, stride, OH, OW)
    if mode == "avg":
        return w.mean(axis=4, dtype=x.dtype), (x.shape, k, stride, mode, None)
    arg = w.argmax(axis=4)                       # first maximum in row-major window order
    y = np.take_along_axis(w, arg[..., None], axis=4)[..., 0]
    return y, (x.shape, k, stride, mode, arg)


def _backward_cpu(dy, cache):
    (N, C, H, W), k, stride, mode, arg = cache
    OH, OW = dy.shape[2], dy.shape[3]
    if mode == "avg" and k == stride:
        g = np.repeat(dy * (1.0 / (k * k)), k, axis=3)            # (N, C, OH, OW*k)
        exact = OH * k == H and OW * k == W                       # no leftover rows/columns
        dx = (np.empty if exact else np.zeros)((N, C, H, W), dtype=dy.dtype)
        dx[:, :, :OH * k, :OW * k].reshape(N, C, OH, k, OW * k)[...] = g[:, :, :, None]
        return dx
    dx = np.zeros((N, C, H, W), dtype=dy.dtype)
    for i in range(k):            # each window offset (i, j) adds back to a strided slice
        for j in range(k):
            g = dy * (1.0 / (k * k)) if mode == "avg" else np.where(arg == i * k + j, dy, 0)
            dx[:, :, i:i + stride * OH:stride, j:j + stride * OW:stride] += g
    return dx


# ---- GPU path: kernels/pool2d.cu ---------------------------------------------------------------
def _sizes(N, C, H, W, OH, OW, k, stride):
    return [("NC", N * C, cuda.INT), ("H", H, cuda.INT), ("W", W, cuda.INT), ("OH", OH, cuda.INT),
            ("OW", OW, cuda.INT), ("k", k, cuda.INT), ("stride", stride, cuda.INT)]


def _forward_gpu(x, k, stride, mode, OH, OW):
    import cupy
    (x,) = cuda.float32(x=x)
    N, C, H, W = x.shape
    y = cupy.empty((N, C, OH, OW), dtype=cupy.float32)
    sizes = _sizes(N, C, H, W, OH, OW, k, stride)
    grid = cuda.blocks(y.size)
    if mode == "avg":
        cuda.launch("pool2d.cu", "pool2d_forward_avg", grid,
                    [("x", x, cuda.F32), *sizes, ("inv_area", 1.0 / (k * k), cuda.FLOAT), ("y", y, cuda.F32)])
        return y, (x.shape, k, stride, mode, None)
    arg = cupy.empty((N, C, OH, OW), dtype=cupy.int32)   # offset i*k + j of each window's maximum
    cuda.launch("pool2d.cu", "pool2d_forward_max", grid,
                [("x", x, cuda.F32), *sizes, ("y", y, cuda.F32), ("arg", arg, cuda.I32)])
    return y, (x.shape, k, stride, mode, arg)


def _backward_gpu(dy, cache):
    import cupy
    (N, C, H, W), k, stride, mode, arg = cache
    (dy,) = cuda.float32(dy=dy)
    OH, OW = dy.shape[2], dy.shape[3]
    dx = cupy.empty((N, C, H, W), dtype=cupy.float32)
    sizes = _sizes(N, C, H, W, OH, OW, k, stride)
    grid = cuda.blocks(dx.size)
    if mode == "avg":
        cuda.launch("pool2d.cu", "pool2d_backward_avg", grid,
                    [("dy", dy, cuda.F32), *sizes, ("inv_area", 1.0 / (k * k), cuda.FLOAT),
                     ("dx", dx, cuda.F32)])
    else:
        cuda.launch("pool2d.cu", "pool2d_backward_max", grid,
                    [("dy", dy, cuda.F32), ("arg", arg, cuda.I32), *sizes, ("dx", dx, cuda.F32)])
    return dx
