"""2-D convolution (cross-correlation, as in every DL library), NCHW.

    y[n, k, oh, ow] = b[k] + sum_{c, i, j} T[k, c] * W[k, c, i, j] * x_pad[n, c, oh*stride + i, ow*stride + j]

T is the optional connection table (K x C booleans; the paper's C3 table is 16 x 6 with 60
connections): an absent connection contributes nothing and its weights get zero gradient.

CPU path: im2col. The padded input is gathered into a matrix `cols` of shape
(C*KH*KW, N*OH*OW), and the convolution becomes a matrix product with the weights. The gather
and the product go a slice of the batch at a time (about SLICE_BYTES of columns), so the
product reads each slice from cache right after it was written, not from memory (conv1's
columns are 80 MB at batch 1024). Training keeps `cols` for the backward pass, which
uses it for dW and scatters dcols back with col2im (a loop over the KH*KW kernel offsets, each
one strided add); inference (keep=False) reuses one slice's buffer and keeps nothing. The first
layer skips dx (need_dx=False).

GPU path: kernels/conv2d.cu. Direct convolution (no im2col buffer), dx as a gather, dW and db
as per-block partial sums plus a fixed-order second pass, so gradients are reproducible bit for bit.
"""
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .. import cuda
from ..backend import is_gpu_array
from ._shapes import check_4d, check_float, out_size

SLICE_BYTES = 1 << 22   # im2col columns per batch slice: two threads (parallel.py) fit in L3


def _check(x, W, b, stride, pad, table):
    check_4d("x", x)
    check_4d("W", W)
    check_float("x", x)
    if x.dtype != W.dtype:
        raise TypeError(f"x and W must have the same dtype, got {x.dtype} and {W.dtype}")
    K, C, KH, KW = W.shape
    if x.shape[1] != C:
        raise ValueError(f"x has {x.shape[1]} channels but W expects {C} (W shape {tuple(W.shape)})")
    if b is not None and tuple(b.shape) != (K,):
        raise ValueError(f"b must have shape ({K},), got {tuple(b.shape)}")
    if int(stride) < 1 or int(pad) < 0:
        raise ValueError(f"stride must be >= 1 and pad >= 0, got stride={stride}, pad={pad}")
    if table is not None and tuple(table.shape) != (K, C):
        raise ValueError(f"connection table must have shape ({K}, {C}), got {tuple(table.shape)}")
    OH, OW = out_size(x.shape[2], KH, stride, pad), out_size(x.shape[3], KW, stride, pad)
    if OH < 1 or OW < 1:
        raise ValueError(f"kernel {KH}x{KW} does not fit input {x.shape[2]}x{x.shape[3]} "
                         f"with pad {pad}")
    return OH, OW


def conv2d_forward(x, W, b=None, stride=1, pad=0, table=None, keep=True):
    """x (N,C,H,W), W (K,C,KH,KW), b (K,) or None, table (K,C) bool or None -> (y, cache).
    keep=False: no backward pass will follow (inference); the cache is None."""
    OH, OW = _check(x, W, b, stride, pad, table)
    if is_gpu_array(x):
        y, cache = _forward_gpu(x, W, b, int(stride), int(pad), table, OH, OW)
    else:
        y, cache = _forward_cpu(x, W, b, int(stride), int(pad), table, OH, OW, keep)
    return y, cache if keep else None


def conv2d_backward(dy, cache, need_dx=True):
    """dy (N,K,OH,OW) -> (dx or None, dW, db or None). need_dx=False skips dx (first layer)."""
    if is_gpu_array(dy):
        return _backward_gpu(dy, cache, need_dx)
    return _backward_cpu(dy, cache, need_dx)


def _masked(W, table):
    return W if table is None else W * table[:, :, None, None].astype(W.dtype)


def _forward_cpu(x, W, b, stride, pad, table, OH, OW, keep):
    N, C, H, Wd = x.shape
    K, _, KH, KW = W.shape
    if pad:
        xp = np.zeros((N, C, H + 2 * pad, Wd + 2 * pad), dtype=x.dtype)
        xp[:, :, pad:pad + H, pad:pad + Wd] = x
    else:
        xp = x
    # shifts[n, c, r, ow, j] = xp[n, c, r, ow*stride + j]  (a view, no copy)
    shifts = sliding_window_view(xp, KW, axis=3)[:, :, :, ::stride][:, :, :, :OW]
    Wm = _masked(W, table).reshape(K, -1)
    y = np.empty((N, K, OH, OW), dtype=x.dtype)
    per_sample = C * KH * KW * OH * OW
    step = max(1, SLICE_BYTES // (per_sample * x.itemsize))
    # cols[(c, i, j), (n, oh, ow)]: rows follow W's layout, the long axis stays innermost
    cols = np.empty((C * KH * KW, N * OH * OW) if keep else (C * KH * KW, min(step, N) * OH * OW),
                    dtype=x.dtype)
    rows = np.empty((C, KW, min(step, N), xp.shape[2], OW), dtype=x.dtype)
    for n0 in range(0, N, step):
        s = slice(n0, min(n0 + step, N))
        n = s.stop - s.start
        part = cols[:, n0 * OH * OW:s.stop * OH * OW] if keep else cols[:, :n * OH * OW]
        view = part.view()
        view.shape = (C, KH, KW, n, OH, OW)            # a view of `part`, never a copy
        # Two copies, the column shifts first: rows[c, j, n, r, ow] = xp[n, c, r, ow*stride + j]
        # (runs of OW values), then view[c, i, j, n, oh, ow] = rows[c, j, n, oh*stride + i, ow]
        # (at stride 1 runs of OH*OW values): 1.5-2x faster than one copy in runs of OW.
        r = rows[:, :, :n]
        r[...] = shifts[s].transpose(1, 4, 0, 2, 3)
        for i in range(KH):
            view[:, i] = r[:, :, :, i:i + stride * (OH - 1) + 1:stride]
        ys = (Wm @ part).reshape(K, n, OH, OW).transpose(1, 0, 2, 3)
        if b is None:
            y[s] = ys
        else:
            np.add(ys, b[:, None, None], out=y[s])
    return y, (cols, x.shape, W, b is not None, stride, pad, table)


def _backward_cpu(dy, cache, need_dx):
    cols, (N, C, H, Wd), W, has_b, stride, pad, table = cache
    K, _, KH, KW = W.shape
    OH, OW = dy.shape[2], dy.shape[3]
    dy_m = dy.transpose(1, 0, 2, 3).reshape(K, N * OH * OW)
    dW = (dy_m @ cols.T).reshape(W.shape)
    if table is not None:
        dW *= table[:, :, None, None]
    db = dy_m.sum(axis=1) if has_b else None
    if not need_dx:
        return None, dW, db
    # col2im in (C, H, W, N) order: with N innermost every strided add runs over long
    # contiguous rows (OW*N values), about twice as fast as in NCHW order.
    dy_t = np.ascontiguousarray(dy.transpose(1, 2, 3, 0)).reshape(K, OH * OW * N)
    dcols = (_masked(W, table).reshape(K, -1).T @ dy_t).reshape(C, KH, KW, OH, OW, N)
    dxp = np.zeros((C, H + 2 * pad, Wd + 2 * pad, N), dtype=dy.dtype)
    for i in range(KH):
        for j in range(KW):
            dxp[:, i:i + stride * OH:stride, j:j + stride * OW:stride] += dcols[:, i, j]
    dx = dxp[:, pad:pad + H, pad:pad + Wd]
    return np.ascontiguousarray(dx.transpose(3, 0, 1, 2)), dW, db


# ---- GPU path: kernels/conv2d.cu (see its header for the thread mapping) ------------------------
def _template(KH, KW):
    """Template arguments of the conv kernels: unrolled 5x5 (LeNet) or sizes read at run time."""
    return "5, 5" if (KH, KW) == (5, 5) else "0, 0"


def _sizes(N, C, H, Wd, K, OH, OW, KH, KW, stride, pad):
    return [("N", N, cuda.INT), ("C", C, cuda.INT), ("H", H, cuda.INT), ("W", Wd, cuda.INT),
            ("K", K, cuda.INT), ("OH", OH, cuda.INT), ("OW", OW, cuda.INT), ("KH", KH, cuda.INT),
            ("KW", KW, cuda.INT), ("stride", stride, cuda.INT), ("pad", pad, cuda.INT)]


def _forward_gpu(x, W, b, stride, pad, table, OH, OW):
    import cupy
    x, W, b = cuda.float32(x=x, W=W, b=b)
    if table is not None:
        table = cupy.ascontiguousarray(cupy.asarray(table, dtype=cupy.bool_))
    N, C, H, Wd = x.shape
    K, _, KH, KW = W.shape
    KT = 8 if table is None and K >= 4 else 1   # output channels per thread (1: skip per (k, c))
    y = cupy.empty((N, K, OH, OW), dtype=cupy.float32)
    cuda.launch("conv2d.cu", f"conv2d_forward<{_template(KH, KW)}, {KT}>",
                (cuda.blocks(N * OH * OW), -(-K // KT)),
                [("x", x, cuda.F32), ("W", W, cuda.F32), ("b", b, cuda.F32_OPT),
                 ("table", table, cuda.BOOL_OPT), *_sizes(N, C, H, Wd, K, OH, OW, KH, KW, stride, pad),
                 ("y", y, cuda.F32)])
    return y, (x, W, b is not None, stride, pad, table)


def _backward_gpu(dy, cache, need_dx):
    (dy,) = cuda.float32(dy=dy)
    dx = _backward_data_gpu(dy, cache) if need_dx else None
    dW, db = _backward_weights_gpu(dy, cache)
    return dx, dW, db


def _backward_data_gpu(dy, cache):
    """dx as a gather: one thread per input element. dy: contiguous float32."""
    import cupy
    x, W, has_b, stride, pad, table = cache
    N, C, H, Wd = x.shape
    K, _, KH, KW = W.shape
    dx = cupy.empty(x.shape, dtype=cupy.float32)
    cuda.launch("conv2d.cu", f"conv2d_backward_data<{_template(KH, KW)}>", (cuda.blocks(N * H * Wd), C),
                [("dy", dy, cuda.F32), ("W", W, cuda.F32), ("table", table, cuda.BOOL_OPT),
                 *_sizes(N, C, H, Wd, K, dy.shape[2], dy.shape[3], KH, KW, stride, pad),
                 ("dx", dx, cuda.F32)])
    return dx


def _backward_weights_gpu(dy, cache):
    """(dW, db or None): per-block partial sums over chunks of the N*OH*OW positions, added in
    a fixed order by the last block of each output, one launch each. dy: contiguous float32."""
    import cupy
    x, W, has_b, stride, pad, table = cache
    N, C, H, Wd = x.shape
    K, _, KH, KW = W.shape
    OH, OW = dy.shape[2], dy.shape[3]
    S = cuda.splits(N * OH * OW, K * C)
    partial = cupy.empty((S, K, C, KH, KW), dtype=cupy.float32)
    dW = cupy.empty((K, C, KH, KW), dtype=cupy.float32)
    cuda.launch("conv2d.cu", f"conv2d_backward_weights<{_template(KH, KW)}>", (K * C, S),
                [("x", x, cuda.F32), ("dy", dy, cuda.F32), ("table", table, cuda.BOOL_OPT),
                 *_sizes(N, C, H, Wd, K, OH, OW, KH, KW, stride, pad), ("S", S, cuda.INT),
                 ("partial", partial, cuda.F32), ("counter", cuda.counters(K * C), cuda.I32),
                 ("dW", dW, cuda.F32)])
    return dW, (bias_gradient(dy.reshape(N, K, OH * OW)) if has_b else None)


def bias_gradient(dy):
    """db[k] = sum of dy[n, k, p] over n and p, dy (N, K, P) float32 contiguous (the dense
    layers' too, with P = 1), in a fixed order: one launch."""
    import cupy
    N, K, P = dy.shape
    S = cuda.splits(N * P, K)
    partial = cupy.empty((S, K), dtype=cupy.float32)
    db = cupy.empty(K, dtype=cupy.float32)
    cuda.launch("conv2d.cu", "conv2d_backward_bias", (K, S),
                [("dy", dy, cuda.F32), ("N", N, cuda.INT), ("K", K, cuda.INT), ("OHW", P, cuda.INT),
                 ("S", S, cuda.INT), ("partial", partial, cuda.F32),
                 ("counter", cuda.counters(K), cuda.I32), ("db", db, cuda.F32)])
    return db


# ---- Gauss-Newton second derivatives (the paper's SDLM, appendix C) -----------------------------
def conv2d_backward_hessian(d2y, cache, need_dx=True):
    """Diagonal second derivatives, propagated like the gradient with squared factors:

        d2x[n, c, h, w] = sum_{k, i, j} T W[k, c, i, j]^2 d2y[n, k, oh, ow]   (over the outputs it feeds)
        d2W[k, c, i, j] = sum_{n, oh, ow} x_pad[n, c, oh*s + i, ow*s + j]^2 d2y[n, k, oh, ow]
        d2b[k]          = sum_{n, oh, ow} d2y[n, k, oh, ow]
    i.e. the backward pass with W and the input squared (off-diagonal terms dropped, as in the
    paper). Both caches hold (input or its columns, ..., W, ...) in known places, so this is
    conv2d_backward on a squared copy of the cache.
    """
    if is_gpu_array(d2y):       # GPU cache: (x, W, has_b, stride, pad, table)
        x, W, *rest = cache
        squared = (x * x, W * W, *rest)
    else:                       # CPU cache: (cols, x.shape, W, has_b, stride, pad, table)
        cols, shape, W, *rest = cache
        squared = (cols * cols, shape, W * W, *rest)
    return conv2d_backward(d2y, squared, need_dx)
