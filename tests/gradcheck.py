"""Central-difference gradient checks in float64."""
import numpy as np


def numerical_grad(f, x, eps=1e-6):
    """d f() / d x for a scalar function f of the array x (perturbed in place)."""
    g = np.zeros_like(x)
    flat, gflat = x.reshape(-1), g.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        fp = f()
        flat[i] = old - eps
        fm = f()
        flat[i] = old
        gflat[i] = (fp - fm) / (2 * eps)
    return g


def assert_close(analytic, numeric, rtol=1e-5, atol=1e-8, name=""):
    """max |analytic - numeric| <= atol + rtol * max |numeric| (atol covers exactly-zero gradients,
    e.g. a bias followed by batch norm, where the difference quotient is rounding noise)."""
    err = np.max(np.abs(analytic - numeric))
    scale = np.max(np.abs(numeric))
    assert err <= atol + rtol * scale, f"{name}: gradient error {err:.2e} (max |numeric| {scale:.2e})"
