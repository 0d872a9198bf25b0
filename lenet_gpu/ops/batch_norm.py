"""Batch normalization over the batch (and spatial) axes.

4-D input (N,C,H,W): statistics per channel over N,H,W.  2-D input (N,F): per feature over N.
With M the number of values per statistic:

    mean = sum x / M,  var = sum (x - mean)^2 / M  (biased, used to normalize)
    xhat = (x - mean) / sqrt(var + eps),   y = gamma * xhat + beta
    running <- (1 - momentum) * running + momentum * batch   (running var uses M/(M-1) * var)

Backward (training mode), with g = dy:
    dbeta = sum g,  dgamma = sum g * xhat
    dx = gamma / sqrt(var + eps) / M * (M * g - dbeta - xhat * dgamma)
"""
import numpy as np

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
        from . import batch_norm_gpu
        return batch_norm_gpu.forward_train(x, gamma, beta, running_mean, running_var, momentum, eps)
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
        from . import batch_norm_gpu
        return batch_norm_gpu.forward_infer(x, gamma, beta, running_mean, running_var, eps)
    axes, shape = _axes(x)
    scale = gamma / np.sqrt(running_var + eps)
    return x * scale.reshape(shape) + (beta - running_mean * scale).reshape(shape)


def batch_norm_backward(dy, cache):
    """Training-mode backward -> (dx, dgamma, dbeta)."""
    if is_gpu_array(dy):
        from . import batch_norm_gpu
        return batch_norm_gpu.backward(dy, cache)
    xhat, invstd, gamma = cache
    axes, shape = _axes(dy)
    M = dy.size // dy.shape[1]
    dbeta = dy.sum(axis=axes)
    dgamma = (dy * xhat).sum(axis=axes)
    k = (gamma * invstd / M).reshape(shape)
    dx = k * (M * dy - dbeta.reshape(shape) - xhat * dgamma.reshape(shape))
    return dx, dgamma, dbeta
