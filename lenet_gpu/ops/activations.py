"""Element-wise activations and softmax. Each backward uses the forward *output* y.

    tanh         y = tanh(x)                    dy/dx = 1 - y^2
    scaled_tanh  y = A tanh(S x), A = 1.7159, S = 2/3 (LeCun 1998)   dy/dx = S/A (A^2 - y^2)
    relu         y = max(x, 0)                  dy/dx = [y > 0]
    sigmoid      y = 1 / (1 + e^-x)             dy/dx = y (1 - y)
    softmax      y_i = e^x_i / sum_j e^x_j      dx = y * (g - sum_j g_j y_j)   (over the last axis)
The same code runs on NumPy and CuPy; on the GPU the element-wise ones are one kernel each way
(kernels/activations.cu) in place of up to six elementwise kernels, and this code is their
reference.
"""
from .. import cuda
from ..backend import get_array_module, is_gpu_array

A, S = 1.7159, 2.0 / 3.0


def _sigmoid(xp, x):
    # exp of a non-positive number only: no overflow for large |x|
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e))


def _softmax(xp, x):
    e = xp.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


_FORWARD = {
    "tanh": lambda xp, x: xp.tanh(x),
    "scaled_tanh": lambda xp, x: A * xp.tanh(S * x),
    "relu": lambda xp, x: xp.maximum(x, 0),
    "sigmoid": _sigmoid,
    "softmax": _softmax,
}

def _tanh_backward(xp, y, g, a2=1.0, scale=1.0):
    """g * scale * (a2 - y^2), in one buffer: large temporaries cost more than the maths."""
    t = xp.multiply(y, y)
    xp.subtract(a2, t, out=t)
    t *= g
    if scale != 1.0:
        t *= scale
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
KERNEL_KINDS = ("tanh", "scaled_tanh", "relu", "sigmoid")   # kernels/activations.cu's `kind`


def check_activation(name):
    if name not in _FORWARD:
        raise ValueError(f"unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}")
    return name


def activation_forward(name, x):
    if check_activation(name) in KERNEL_KINDS and is_gpu_array(x):
        y = _elementwise_gpu("activation_forward", name, x=x)
    else:
        y = _FORWARD[name](get_array_module(x), x)
    return y, y


def activation_backward(name, dy, y):
    if name in KERNEL_KINDS and is_gpu_array(dy):
        return _elementwise_gpu("activation_backward", name, y=y, dy=dy)
    return _BACKWARD[name](get_array_module(dy), y, dy)


def _elementwise_gpu(kernel, name, **arrays):
    """kernel(*arrays, n, kind, out) over the arrays' elements (all of one shape) -> out."""
    import cupy
    arrays = dict(zip(arrays, cuda.float32(**arrays)))
    shapes = {tuple(a.shape) for a in arrays.values()}
    if len(shapes) > 1:
        raise ValueError(f"{name} backward: y and dy shapes differ: {', '.join(map(str, shapes))}")
    first = next(iter(arrays.values()))
    out = cupy.empty_like(first)
    cuda.launch("activations.cu", kernel, cuda.blocks(first.size),
                [*((k, a, cuda.F32) for k, a in arrays.items()), ("n", first.size, cuda.INT),
                 ("kind", KERNEL_KINDS.index(name), cuda.INT), ("out", out, cuda.F32)])
    return out


def activation_backward_hessian(name, d2y, y):
    """Gauss-Newton: d2x = f'(x)^2 d2y, ignoring f'' (the paper's appendix C). Element-wise
    activations only; softmax has no diagonal form here."""
    if name == "softmax":
        raise ValueError("second derivatives through softmax are not supported; use loss 'ce' "
                         "on the logits instead")
    xp = get_array_module(d2y)
    fprime = _BACKWARD[name](xp, y, xp.ones_like(y))
    return fprime * fprime * d2y
