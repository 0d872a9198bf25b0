"""Fully connected layer: y = x @ W + b, with x (N, in), W (in, out), b (out,).

Backward: dx = dy @ W^T,  dW = x^T @ dy,  db = sum_n dy.
Second derivatives for SDLM: dense_backward_hessian, the same with x and W squared.

The products go through `matmul`: NumPy's @ (BLAS) on the CPU, kernels/dense.cu on the GPU.
Not cuBLAS on the GPU: CuPy cannot capture cuBLAS in a CUDA graph (lenet_gpu/step.py), and our
kernel sums dW over the batch in a fixed order, so GPU runs are bit-identical.
"""
from .. import cuda
from ..backend import is_gpu_array
from .conv2d import bias_gradient


def dense_forward(x, W, b=None):
    if x.ndim != 2:
        raise ValueError(f"dense input must be 2-D (N, features), got shape {tuple(x.shape)}; "
                         "add a Flatten layer before it")
    if x.shape[1] != W.shape[0]:
        raise ValueError(f"dense input has {x.shape[1]} features but W expects {W.shape[0]} "
                         f"(W shape {tuple(W.shape)})")
    return matmul(x, W, bias=b), (x, W, b is not None)


def dense_backward(dy, cache, need_dx=True):
    x, W, has_b = cache
    dW = matmul(x, dy, trans_a=True)
    db = column_sums(dy) if has_b else None
    dx = matmul(dy, W, trans_b=True) if need_dx else None
    return dx, dW, db


def dense_backward_hessian(d2y, cache, need_dx=True):
    """Diagonal second derivatives (Gauss-Newton, off-diagonal terms dropped):
    d2x = d2y @ (W^2)^T,  d2W = (x^2)^T @ d2y,  d2b = sum_n d2y."""
    x, W, has_b = cache
    return dense_backward(d2y, (x * x, W * W, has_b), need_dx)


def matmul(a, b, trans_a=False, trans_b=False, bias=None):
    """op(a) @ op(b) (+ bias), op(a) = a.T if trans_a (a 2-D array), likewise b."""
    a_ = a.T if trans_a else a
    b_ = b.T if trans_b else b
    if a_.shape[1] != b_.shape[0]:
        raise ValueError(f"matmul: shapes {tuple(a_.shape)} and {tuple(b_.shape)} do not chain")
    if is_gpu_array(a):
        return _matmul_gpu(a, b, trans_a, trans_b, bias)
    y = a_ @ b_
    if bias is not None:
        y += bias
    return y


def column_sums(dy):
    """sum over the rows of a 2-D array (the bias gradient); on the GPU in a fixed order."""
    if not is_gpu_array(dy):
        return dy.sum(axis=0)
    (dy,) = cuda.float32(dy=dy)
    return bias_gradient(dy.reshape(*dy.shape, 1))       # dy as (N, K, 1x1 maps)


TILE = 16            # kernels/dense.cu's tile side
_K_PER_CHUNK = 128   # a split-K chunk: 128 multiply-adds per thread before its partial is written


def _matmul_gpu(a, b, trans_a, trans_b, bias):
    import cupy
    a, b, bias = cuda.float32(a=a, b=b, bias=bias)
    M, K = a.shape[::-1] if trans_a else a.shape
    N = b.shape[0] if trans_b else b.shape[1]
    if bias is not None and tuple(bias.shape) != (N,):
        raise ValueError(f"matmul: bias must have shape ({N},), got {tuple(bias.shape)}")
    tiles = -(-M // TILE) * -(-N // TILE)
    # split K (the batch, for dW) over S chunks when the tiles alone leave the GPU idle
    S = 1 if bias is not None else max(1, min(-(-K // _K_PER_CHUNK), -(-2048 // tiles), 65535))
    chunk = -(-max(K, 1) // S)
    chunk = -(-chunk // TILE) * TILE
    S = -(-max(K, 1) // chunk)
    out = cupy.empty((S, M, N), dtype=cupy.float32)
    cuda.launch("dense.cu", f"matmul<{str(trans_a).lower()}, {str(trans_b).lower()}>",
                (-(-N // TILE), -(-M // TILE), S),
                [("A", a, cuda.F32), ("B", b, cuda.F32), ("bias", bias, cuda.F32_OPT),
                 ("M", M, cuda.INT), ("N", N, cuda.INT), ("K", K, cuda.INT),
                 ("chunk", chunk, cuda.INT), ("C", out, cuda.F32)])
    return out[0] if S == 1 else cuda.sum_partials(out)
