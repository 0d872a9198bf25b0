"""Fully connected layer: y = x @ W + b, with x (N, in), W (in, out), b (out,).

Backward: dx = dy @ W^T,  dW = x^T @ dy,  db = sum_n dy.
Second derivatives for SDLM: dense_backward_hessian, the same with x and W squared.
Plain array maths, so the same code runs on NumPy and CuPy (cuBLAS).
"""


def dense_forward(x, W, b=None):
    if x.ndim != 2:
        raise ValueError(f"dense input must be 2-D (N, features), got shape {tuple(x.shape)}; "
                         "add a Flatten layer before it")
    if x.shape[1] != W.shape[0]:
        raise ValueError(f"dense input has {x.shape[1]} features but W expects {W.shape[0]} "
                         f"(W shape {tuple(W.shape)})")
    y = x @ W
    if b is not None:
        y += b
    return y, (x, W, b is not None)


def dense_backward(dy, cache, need_dx=True):
    x, W, has_b = cache
    dW = x.T @ dy
    db = dy.sum(axis=0) if has_b else None
    dx = dy @ W.T if need_dx else None
    return dx, dW, db


def dense_backward_hessian(d2y, cache, need_dx=True):
    """Diagonal second derivatives (Gauss-Newton, off-diagonal terms dropped):
    d2x = d2y @ (W^2)^T,  d2W = (x^2)^T @ d2y,  d2b = sum_n d2y."""
    x, W, has_b = cache
    return dense_backward(d2y, (x * x, W * W, has_b), need_dx)
