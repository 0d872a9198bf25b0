"""The activation kernels (kernels/activations.cu) against the NumPy reference
(ops/activations.py): every element-wise activation, forward and backward, one launch each,
on shapes from one element to a LeNet-5 feature map, inputs up to +-100 (sigmoid's e^-x
would overflow written naively)."""
import numpy as np
import pytest

from lenet_gpu.ops.activations import KERNEL_KINDS, activation_backward, activation_forward
from test_gpu_ops import assert_close

pytestmark = pytest.mark.gpu


@pytest.mark.parametrize("shape", [(1,), (7,), (20, 84), (20, 6, 28, 28)])
@pytest.mark.parametrize("name", KERNEL_KINDS)
def test_the_activation_kernels_match_numpy(cp, rng, launches, name, shape):
    x = (rng.standard_normal(shape) * 3).astype(np.float32)
    if x.size > 2:      # (in a 1-element array the backward would be exactly 0 in float64)
        x.flat[0], x.flat[-1] = 100.0, -100.0
    dy = rng.standard_normal(shape).astype(np.float32)
    y_ref, _ = activation_forward(name, x.astype(np.float64))
    y, cache = activation_forward(name, cp.asarray(x))
    dx = activation_backward(name, cp.asarray(dy), cache)
    assert launches == ["activation_forward", "activation_backward"]
    assert y.dtype == dx.dtype == np.float32 and y.shape == dx.shape == shape
    assert_close(y, y_ref, f"{name} forward", rtol=1e-6)
    # the backward is a function of (y, dy): its reference takes the kernel's own y, and its
    # error is measured against dy's scale (1 - y^2 near saturation is all cancellation)
    dx_ref = activation_backward(name, dy.astype(np.float64), y.get().astype(np.float64))
    err = float(np.max(np.abs(dx.get() - dx_ref))) / float(np.max(np.abs(dy)))
    assert err < 1e-6, f"{name} backward: error {err:.2e} of max |dy|"


def test_relu_keeps_nan(cp):
    """A diverged run must still show: NumPy's maximum(NaN, 0) is NaN, and so is the kernel's."""
    y, _ = activation_forward("relu", cp.asarray(np.array([np.nan, -1, 2], np.float32)))
    assert np.isnan(float(y[0])) and float(y[1]) == 0 and float(y[2]) == 2


def test_the_backward_kernel_refuses_mismatched_shapes(cp):
    with pytest.raises(ValueError, match="tanh backward: y and dy shapes differ"):
        activation_backward("tanh", cp.ones((2, 3), cp.float32), cp.ones((3, 2), cp.float32))
