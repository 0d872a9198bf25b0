"""The paper's trainable subsampling (S2, S4 of LeNet-5), NCHW, k x k blocks (k = 2), no overlap.

    s[n, c, oh, ow] = sum_{i, j < k} x[n, c, oh*k + i, ow*k + j]        (the block sum)
    y[n, c, oh, ow] = coef[c] * s[n, c, oh, ow] + bias[c]               (2 parameters per map)

Backward:  dx[block of (oh, ow)] = coef[c] * dy[n, c, oh, ow]   (every input of the block)
           dcoef[c] = sum_{n, oh, ow} dy * s,    dbias[c] = sum_{n, oh, ow} dy
Rows/columns past the last full block get zero gradient (floor mode, like pooling).
Second derivatives for SDLM (subsample_backward_hessian) square coef and s in the same formulas.
The squashing function that follows in the paper is a separate Activation layer.

The block sum is k^2 times an average pool, so this op reuses pool2d (CPU and GPU paths) and
adds per-channel array maths: the same code runs on NumPy and CuPy.
"""
from .pool2d import pool2d_backward, pool2d_forward


def _per_channel(name, a, C):
    if tuple(a.shape) != (C,):
        raise ValueError(f"{name} must have shape ({C},) (one per channel), got {tuple(a.shape)}")
    return a[None, :, None, None]


def subsample_forward(x, coef, bias, k=2):
    """x (N,C,H,W), coef (C,), bias (C,) -> (y (N,C,H//k,W//k), cache)."""
    if getattr(x, "ndim", None) != 4:
        raise ValueError(f"x must be 4-D (N, C, H, W), got shape {tuple(getattr(x, 'shape', ()))}")
    C = x.shape[1]
    c, b = _per_channel("coef", coef, C), _per_channel("bias", bias, C)
    mean, pool_cache = pool2d_forward(x, k, k, "avg")
    s = mean * (k * k)
    return c * s + b, (s, coef, k, pool_cache)


def subsample_backward(dy, cache):
    """dy (N,C,OH,OW) -> (dx, dcoef, dbias)."""
    s, coef, k, pool_cache = cache
    dcoef = (dy * s).sum(axis=(0, 2, 3))
    dbias = dy.sum(axis=(0, 2, 3))
    # the average pool's backward spreads g / k^2 over each block: scale by k^2 to spread g
    dx = pool2d_backward(dy * (coef[None, :, None, None] * (k * k)), pool_cache)
    return dx, dcoef, dbias


def subsample_backward_hessian(d2y, cache):
    """Diagonal second derivatives (each is exact for this op, which is linear in x and in coef):
    d2x[block] = coef^2 d2y,  d2coef = sum dy2 * s^2,  d2bias = sum d2y."""
    s, coef, k, pool_cache = cache
    d2coef = (d2y * (s * s)).sum(axis=(0, 2, 3))
    d2bias = d2y.sum(axis=(0, 2, 3))
    d2x = pool2d_backward(d2y * ((coef * coef)[None, :, None, None] * (k * k)), pool_cache)
    return d2x, d2coef, d2bias
