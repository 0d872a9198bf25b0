"""Batch normalization over the batch (and spatial) axes.

4-D input (N,C,H,W): statistics per channel over N,H,W.  2-D input (N,F): per feature over N.
With M the number of values per statistic:

    mean = sum x / M,  var = sum (x - mean)^2 / M  (biased, used to normalize)
    xhat = (x - mean) / sqrt(var + eps),   y = gamma * xhat + beta
    running <- (1 - momentum) * running + momentum * batch   (running var uses M/(M-1) * var)

Backward (training mode), with g = dy:
    dbeta = sum g,  dgamma = sum g * xhat
    dx = gamma / sqrt(var + eps) / M * (M * g - dbeta - xhat * dgamma)

GPU path: kernels/batch_norm.cu; the sums are per-block partials plus a fixed-order second pass
(reproducible bit for bit), and the cache keeps x, mean and invstd instead of xhat.
"""
import numpy as np

from .. import cuda
from ..backend import is_gpu_array


def _axes(x):
    if x.ndim == 4:
        return (0, 2, 3), (1, -1, 1, 1)
    if x.ndim == 2:
        return (0,), (1, -1)
    raise ValueError(f"batch norm expects a 4-D (N,C,H,W) or 2-D (N,F) input, got shape {tuple(x.shape)}")


def _check(x, gamma, beta):
    _axes(x)
    C = x.shape[1]
    for name, a in (("gamma", gamma), ("beta", beta)):
        if tuple(a.shape) != (C,):
            raise ValueError(f"{name} must have shape ({C},) for input shape {tuple(x.shape)}, "
                             f"got {tuple(a.shape)}")


def batch_norm_forward_train(x, gamma, beta, running_mean, running_var, momentum=0.1, eps=1e-5):
    """Normalize with batch statistics; updates running_mean/running_var in place -> (y, cache)."""
    _check(x, gamma, beta)
    M = x.size // x.shape[1]
    if M < 2:
        raise ValueError(f"batch norm in training mode needs more than one value per channel, "
                         f"got input shape {tuple(x.shape)}")
    if is_gpu_array(x):
        return _forward_train_gpu(x, gamma, beta, running_mean, running_var, momentum, eps)
    axes, shape = _axes(x)
    mean = x.mean(axis=axes, dtype=x.dtype)
    xc = x - mean.reshape(shape)
    var = np.mean(xc * xc, axis=axes, dtype=x.dtype)
    invstd = 1.0 / np.sqrt(var + eps)
    xhat = xc * invstd.reshape(shape)
    y = xhat * gamma.reshape(shape) + beta.reshape(shape)
    running_mean *= 1 - momentum
    running_mean += momentum * mean
    running_var *= 1 - momentum
    running_var += (momentum * M / (M - 1)) * var
    return y, (xhat, invstd, gamma)


def batch_norm_forward_infer(x, gamma, beta, running_mean, running_var, eps=1e-5):
    """Normalize with the running statistics (evaluation mode) -> y."""
    _check(x, gamma, beta)
    if is_gpu_array(x):
        return _forward_infer_gpu(x, gamma, beta, running_mean, running_var, eps)
    axes, shape = _axes(x)
    scale = gamma / np.sqrt(running_var + eps)
    return x * scale.reshape(shape) + (beta - running_mean * scale).reshape(shape)


def batch_norm_backward(dy, cache):
    """Training-mode backward -> (dx, dgamma, dbeta)."""
    if is_gpu_array(dy):
        return _backward_gpu(dy, cache)
    xhat, invstd, gamma = cache
    axes, shape = _axes(dy)
    M = dy.size // dy.shape[1]
    dbeta = dy.sum(axis=axes)
    dgamma = (dy * xhat).sum(axis=axes)
    k = (gamma * invstd / M).reshape(shape)
    dx = k * (M * dy - dbeta.reshape(shape) - xhat * dgamma.reshape(shape))
    return dx, dgamma, dbeta


# ---- GPU path: kernels/batch_norm.cu -----------------------------------------------------------
def _channels(x):
    """(N, C, HW, M): the input seen as (N, C, HW); M values per channel."""
    N, C = x.shape[:2]
    HW = x.size // (N * C) if x.size else 0
    return N, C, HW, N * HW


def _forward_train_gpu(x, gamma, beta, running_mean, running_var, momentum, eps):
    import cupy
    x, gamma, beta = cuda.float32(x=x, gamma=gamma, beta=beta)
    N, C, HW, M = _channels(x)
    S = cuda.splits(M, C)
    dims = [("N", N, cuda.INT), ("C", C, cuda.INT), ("HW", HW, cuda.INT), ("S", S, cuda.INT)]
    partial = cupy.empty((S, C), dtype=cupy.float32)
    counter = cuda.counters(C)
    mean = cupy.empty(C, dtype=cupy.float32)
    invstd = cupy.empty(C, dtype=cupy.float32)

    cuda.launch("batch_norm.cu", "bn_mean", (C, S),
                [("x", x, cuda.F32), *dims, ("partial", partial, cuda.F32),
                 ("counter", counter, cuda.I32), ("mean", mean, cuda.F32)])
    # the variance as a second pass over x - mean: no cancellation when |mean| >> std
    cuda.launch("batch_norm.cu", "bn_var", (C, S),
                [("x", x, cuda.F32), ("mean", mean, cuda.F32), *dims, ("eps", eps, cuda.FLOAT),
                 ("momentum", momentum, cuda.FLOAT), ("keep", 1 - momentum, cuda.FLOAT),
                 ("var_weight", momentum * M / (M - 1), cuda.FLOAT), ("partial", partial, cuda.F32),
                 ("counter", counter, cuda.I32), ("invstd", invstd, cuda.F32),
                 ("running_mean", running_mean, cuda.F32), ("running_var", running_var, cuda.F32)])
    y = cupy.empty_like(x)
    cuda.launch("batch_norm.cu", "bn_apply_train", cuda.blocks(x.size),
                [("x", x, cuda.F32), ("mean", mean, cuda.F32), ("invstd", invstd, cuda.F32),
                 ("gamma", gamma, cuda.F32), ("beta", beta, cuda.F32), ("total", x.size, cuda.INT),
                 ("C", C, cuda.INT), ("HW", HW, cuda.INT), ("y", y, cuda.F32)])
    return y, (x, mean, invstd, gamma)


def _forward_infer_gpu(x, gamma, beta, running_mean, running_var, eps):
    import cupy
    x, gamma, beta, running_mean, running_var = cuda.float32(
        x=x, gamma=gamma, beta=beta, running_mean=running_mean, running_var=running_var)
    N, C, HW, M = _channels(x)
    y = cupy.empty_like(x)
    cuda.launch("batch_norm.cu", "bn_apply_infer", cuda.blocks(x.size),
                [("x", x, cuda.F32), ("running_mean", running_mean, cuda.F32),
                 ("running_var", running_var, cuda.F32), ("gamma", gamma, cuda.F32), ("beta", beta, cuda.F32),
                 ("total", x.size, cuda.INT), ("C", C, cuda.INT), ("HW", HW, cuda.INT),
                 ("eps", eps, cuda.FLOAT), ("y", y, cuda.F32)])
    return y


def _backward_gpu(dy, cache):
    import cupy
    x, mean, invstd, gamma = cache
    (dy,) = cuda.float32(dy=dy)
    N, C, HW, M = _channels(x)
    S = cuda.splits(M, C)
    partial_dbeta = cupy.empty((S, C), dtype=cupy.float32)
    partial_dgamma = cupy.empty((S, C), dtype=cupy.float32)
    dbeta = cupy.empty(C, dtype=cupy.float32)
    dgamma = cupy.empty(C, dtype=cupy.float32)
    cuda.launch("batch_norm.cu", "bn_grad", (C, S),
                [("dy", dy, cuda.F32), ("x", x, cuda.F32), ("mean", mean, cuda.F32),
                 ("invstd", invstd, cuda.F32), ("N", N, cuda.INT), ("C", C, cuda.INT), ("HW", HW, cuda.INT),
                 ("S", S, cuda.INT), ("partial_dbeta", partial_dbeta, cuda.F32),
                 ("partial_dgamma", partial_dgamma, cuda.F32), ("counter", cuda.counters(C), cuda.I32),
                 ("dbeta", dbeta, cuda.F32), ("dgamma", dgamma, cuda.F32)])
    dx = cupy.empty_like(x)
    cuda.launch("batch_norm.cu", "bn_backward_dx", cuda.blocks(x.size),
                [("dy", dy, cuda.F32), ("x", x, cuda.F32), ("mean", mean, cuda.F32), ("invstd", invstd, cuda.F32),
                 ("gamma", gamma, cuda.F32), ("dbeta", dbeta, cuda.F32), ("dgamma", dgamma, cuda.F32),
                 ("total", x.size, cuda.INT), ("C", C, cuda.INT), ("HW", HW, cuda.INT), ("M", M, cuda.INT),
                 ("dx", dx, cuda.F32)])
    return dx, dgamma, dbeta
