"""The loss kernels (kernels/losses.cu) against the NumPy reference (ops/losses.py): the loss,
its gradient and the count of correct predictions, for batches from one row to more rows than
a block has threads, tied maxima, logits large enough to overflow a naive softmax."""
import numpy as np
import pytest

from lenet_gpu.ops.losses import loss_and_correct
from test_gpu_ops import assert_close

pytestmark = pytest.mark.gpu


def reference(name, out, labels):
    loss, grad, correct = loss_and_correct(name, out.astype(np.float64), labels)
    return float(loss), grad, int(correct)


@pytest.mark.parametrize("N, K", [(1, 10), (3, 10), (20, 10), (300, 10), (600, 3), (5, 1)])
@pytest.mark.parametrize("name", ["ce", "mse"])
def test_the_loss_kernel_matches_numpy(cp, rng, launches, name, N, K):
    out = rng.standard_normal((N, K)).astype(np.float32) * 3
    labels = rng.integers(0, K, N)
    out[::4, 0] = out[::4].max(axis=1) + 1       # every 4th row: some predictions are right
    if K > 2:
        out[1::5, 1] = out[1::5, 2] = out[1::5].max(axis=1) + 1   # tied maxima: the first counts
    loss_ref, grad_ref, correct_ref = reference(name, out, labels)
    loss, grad, correct = loss_and_correct(name, cp.asarray(out), cp.asarray(labels))
    assert launches == ["softmax_cross_entropy" if name == "ce" else "mse_onehot"]
    assert loss.shape == () and abs(float(loss) - loss_ref) <= 1e-5 * abs(loss_ref) + 1e-7
    assert_close(grad, grad_ref, f"{name} gradient", rtol=1e-5)
    assert int(correct) == correct_ref


def test_cross_entropy_is_stable_for_large_logits(cp, rng):
    out = (rng.standard_normal((8, 10)) * 1e4).astype(np.float32)
    labels = rng.integers(0, 10, 8)
    loss_ref, grad_ref, _ = reference("ce", out, labels)
    loss, grad, _ = loss_and_correct("ce", cp.asarray(out), cp.asarray(labels))
    assert np.isfinite(float(loss)) and abs(float(loss) - loss_ref) <= 1e-5 * loss_ref
    assert_close(grad, grad_ref, "large-logit gradient", rtol=1e-5)


def test_the_loss_kernel_refuses_mismatched_labels(cp, rng):
    with pytest.raises(ValueError, match=r"ce loss expects outputs \(N, classes\) and labels \(N,\), got \(4, 10\) and \(3,\)"):
        loss_and_correct("ce", cp.zeros((4, 10), cp.float32), cp.zeros(3, cp.int64))
