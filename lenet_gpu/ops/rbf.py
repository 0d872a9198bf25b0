"""Euclidean radial basis function output (LeNet-5's output layer), fixed centres.

    y[n, i] = sum_j (x[n, j] - w[i, j])^2          x (N, F), w (K, F) fixed, y (N, K)

Each y_i is the squared distance between the input and centre i: a "penalty", small for the
class the input looks like. The centres are not trained (the paper's are +-1 bitmaps of the
digits, lenet_gpu/digits.py), so the backward pass gives dx only:

    dx[n, j] = 2 sum_i dy[n, i] (x[n, j] - w[i, j]) = 2 (x[n, j] sum_i dy[n, i] - (dy @ w)[n, j])
Second derivatives for SDLM: rbf_backward_hessian.
Array maths plus dense.matmul (BLAS on NumPy, kernels/dense.cu on CuPy).
"""
from .dense import matmul


def rbf_forward(x, w):
    """x (N,F), w (K,F) -> (y (N,K), cache)."""
    if x.ndim != 2:
        raise ValueError(f"RBF input must be 2-D (N, features), got shape {tuple(x.shape)}")
    if w.ndim != 2 or x.shape[1] != w.shape[1]:
        raise ValueError(f"RBF input has {x.shape[1]} features but the centres have shape "
                         f"{tuple(w.shape)} (K, features)")
    # |x|^2 - 2 x.w_i + |w_i|^2: one matrix product, no (N, K, F) temporary
    y = ((x * x).sum(axis=1, keepdims=True) - 2 * matmul(x, w, trans_b=True)
         + (w * w).sum(axis=1)[None, :])
    return y, (x, w)


def rbf_backward(dy, cache):
    """dy (N,K) -> dx (N,F)."""
    x, w = cache
    return 2 * (x * dy.sum(axis=1, keepdims=True) - matmul(dy, w))


def rbf_backward_hessian(d2y, dy, cache):
    """Diagonal second derivative w.r.t. x, given d2E/dy_i^2 (d2y) and the weights dy of the
    RBF's own curvature:

        d2x[n, j] = sum_i 4 (x_j - w_ij)^2 d2y[n, i]   +   2 sum_i dy[n, i]
    The first term is Gauss-Newton (squared Jacobian); the second is the exact curvature of the
    penalties themselves (d2y_i/dx_j^2 = 2) weighted by dy. Sequential.hessian_diagonal passes
    for dy the gradient of the loss's sum-of-squares part only: for the paper's loss its data
    term y_c = ||x - w_c||^2, exactly 2 per F6 unit, while the competitive log-sum-exp term
    enters through Gauss-Newton, like every other layer. (With the whole gradient, the
    competitive term's -2 p_i would cut the F6 curvature from 2 to 2 (1 - sum_i p_i) as the
    network learns, about 0.9 after one pass, and SDLM's second pass would take steps ~2x
    too large at the output and far more below: docs/paper/REPORT.md.)
    """
    x, w = cache
    s = d2y.sum(axis=1, keepdims=True)
    gn = 4 * (x * x * s - 2 * x * matmul(d2y, w) + matmul(d2y, w * w))
    return gn + 2 * dy.sum(axis=1, keepdims=True)
