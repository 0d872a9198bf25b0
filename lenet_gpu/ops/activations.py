"""Element-wise activations and softmax. Each backward uses the forward *output* y.

    tanh         y = tanh(x)                    dy/dx = 1 - y^2
    scaled_tanh  y = A tanh(S x), A = 1.7159, S = 2/3 (LeCun 1998)   dy/dx = S/A (A^2 - y^2)
    relu         y = max(x, 0)                  dy/dx = [y > 0]
    sigmoid      y = 1 / (1 + e^-x)             dy/dx = y (1 - y)
    softmax      y_i = e^x_i / sum_j e^x_j      dx = y * (g - sum_j g_j y_j)   (over the last axis)
The same code runs on NumPy and CuPy.
"""
import numpy as np

from ..backend import get_array_module

A, S = 1.7159, 2.0 / 3.0


PIECE = 1 << 15   # elements: a piece of three float32 arrays stays in a core's L2 cache


def _pieces(xp, *arrays):
    """Matching flat pieces of same-shaped arrays, for a chain of element-wise passes: on the
    CPU each piece is read from cache by every pass after the first, not from memory. (On the
    GPU, or for non-contiguous arrays, the whole arrays as one piece.)"""
    if xp is not np or arrays[0].size <= PIECE or not all(a.flags.c_contiguous for a in arrays):
        return [arrays]
    flat = [a.reshape(-1) for a in arrays]
    return [[f[i:i + PIECE] for f in flat] for i in range(0, flat[0].size, PIECE)]


def _scaled_tanh(xp, x):
    y = xp.empty_like(x)
    for yy, xx in _pieces(xp, y, x):
        xp.multiply(xx, S, out=yy)
        xp.tanh(yy, out=yy)
        yy *= A
    return y


def _sigmoid(xp, x):
    # exp of a non-positive number only: no overflow for large |x|
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e))


def _softmax(xp, x):
    e = xp.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


_FORWARD = {
    "tanh": lambda xp, x: xp.tanh(x),
    "scaled_tanh": _scaled_tanh,
    "relu": lambda xp, x: xp.maximum(x, 0),
    "sigmoid": _sigmoid,
    "softmax": _softmax,
}

def _tanh_backward(xp, y, g, a2=1.0, scale=1.0):
    """g * scale * (a2 - y^2), in one buffer: large temporaries cost more than the maths."""
    t = xp.empty(y.shape, dtype=xp.result_type(y, g))
    for tt, yy, gg in _pieces(xp, t, y, g):
        xp.multiply(yy, yy, out=tt)
        xp.subtract(a2, tt, out=tt)
        tt *= gg
        if scale != 1.0:
            tt *= scale
    return t


def _sigmoid_backward(xp, y, g):
    t = xp.subtract(1, y)
    t *= y
    t *= g
    return t


_BACKWARD = {  # (xp, y, g) -> dL/dx
    "tanh": _tanh_backward,
    "scaled_tanh": lambda xp, y, g: _tanh_backward(xp, y, g, A * A, S / A),
    "relu": lambda xp, y, g: g * (y > 0),
    "sigmoid": _sigmoid_backward,
    "softmax": lambda xp, y, g: y * (g - (g * y).sum(axis=-1, keepdims=True)),
}

ACTIVATIONS = tuple(_FORWARD)


def check_activation(name):
    if name not in _FORWARD:
        raise ValueError(f"unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}")
    return name


def activation_forward(name, x):
    y = _FORWARD[check_activation(name)](get_array_module(x), x)
    return y, y


def activation_backward(name, dy, y):
    return _BACKWARD[name](get_array_module(dy), y, dy)


def activation_backward_hessian(name, d2y, y):
    """Gauss-Newton: d2x = f'(x)^2 d2y, ignoring f'' (the paper's appendix C). Element-wise
    activations only; softmax has no diagonal form here."""
    if name == "softmax":
        raise ValueError("second derivatives through softmax are not supported; use loss 'ce' "
                         "on the logits instead")
    xp = get_array_module(d2y)
    fprime = _BACKWARD[name](xp, y, xp.ones_like(y))
    return fprime * fprime * d2y
