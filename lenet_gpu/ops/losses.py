"""Losses, each averaged over the batch; each returns (loss, dL/d(input)).

    mse:                   L = 1/N sum_n 0.5 ||a_n - t_n||^2              dL/da = (a - t) / N
    softmax_cross_entropy: L = 1/N sum_n -log softmax(z_n)[label_n]      dL/dz = (softmax(z) - onehot) / N
Cross-entropy takes the logits z (before softmax) and uses log-sum-exp, so it never takes log(0).
The loss is returned as a 0-d array on the input's device (no host synchronisation).
"""
from ..backend import get_array_module

LOSSES = ("mse", "ce")


def mse(a, t):
    if a.shape != t.shape:
        raise ValueError(f"mse: output shape {tuple(a.shape)} and target shape {tuple(t.shape)} differ")
    N = a.shape[0]
    d = a - t
    return 0.5 * (d * d).sum() / N, d / N


def softmax_cross_entropy(z, labels):
    xp = get_array_module(z)
    if z.ndim != 2 or labels.shape != (z.shape[0],):
        raise ValueError(f"cross-entropy expects logits (N, classes) and labels (N,), got "
                         f"{tuple(z.shape)} and {tuple(labels.shape)}")
    N = z.shape[0]
    shifted = z - z.max(axis=1, keepdims=True)
    e = xp.exp(shifted)
    s = e.sum(axis=1, keepdims=True)
    rows = xp.arange(N)
    loss = (xp.log(s[:, 0]) - shifted[rows, labels]).sum() / N
    grad = e / s
    grad[rows, labels] -= 1
    return loss, grad / N
