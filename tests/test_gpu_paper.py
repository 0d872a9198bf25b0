"""The 1998 network's own pieces on the GPU against NumPy: trainable subsampling (the pool2d
kernel plus per-channel maths), the RBF output, the paper's loss, the second-derivative pass
of SDLM, one SDLM training step of the whole network, and the distortions (same seed, same
images on both backends)."""
import numpy as np
import pytest

from lenet_gpu import augment
from lenet_gpu.models import lenet5_paper
from lenet_gpu.ops.losses import loss_hessian_diagonal, paper_loss
from lenet_gpu.ops.rbf import rbf_backward, rbf_backward_hessian, rbf_forward
from lenet_gpu.ops.subsample import subsample_backward, subsample_backward_hessian, subsample_forward
from lenet_gpu.optim import SDLM
from test_gpu_ops import EMULATED, assert_close

pytestmark = pytest.mark.gpu


def f32(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize("shape", [(20, 6, 28, 28), (257, 16, 10, 10), (1, 3, 7, 9)])
def test_subsample_matches_numpy(cp, rng, shape):
    N, C, H, W = shape
    x, coef, bias = f32(rng, *shape), f32(rng, C), f32(rng, C)
    y_ref, cache_ref = subsample_forward(x, coef, bias)
    y, cache = subsample_forward(cp.asarray(x), cp.asarray(coef), cp.asarray(bias))
    assert_close(y, y_ref, "forward")
    dy = f32(rng, *y_ref.shape)
    for name, g, g_ref in zip(("dx", "dcoef", "dbias"), subsample_backward(cp.asarray(dy), cache),
                              subsample_backward(dy, cache_ref)):
        assert_close(g, g_ref, name)
    d2y = np.abs(dy)
    for name, g, g_ref in zip(("d2x", "d2coef", "d2bias"),
                              subsample_backward_hessian(cp.asarray(d2y), cache),
                              subsample_backward_hessian(d2y, cache_ref)):
        assert_close(g, g_ref, name)


@pytest.mark.parametrize("N", [1, 20, 257])
def test_rbf_and_paper_loss_match_numpy(cp, rng, N):
    from lenet_gpu.digits import rbf_centres
    x, w = f32(rng, N, 84), rbf_centres(np.float32)
    labels = rng.integers(0, 10, N)
    y_ref, cache_ref = rbf_forward(x, w)
    y, cache = rbf_forward(cp.asarray(x), cp.asarray(w))
    assert_close(y, y_ref, "rbf forward")
    loss_ref, dy_ref = paper_loss(y_ref, labels)
    loss, dy = paper_loss(y, cp.asarray(labels))
    assert abs(float(loss) - float(loss_ref)) <= 1e-5 * abs(float(loss_ref)), "paper loss"
    assert_close(dy, dy_ref, "paper loss gradient")
    assert_close(rbf_backward(dy, cache), rbf_backward(dy_ref, cache_ref), "rbf dx")
    d2_ref = loss_hessian_diagonal("paper", y_ref, labels)
    d2 = loss_hessian_diagonal("paper", y, cp.asarray(labels))
    assert_close(d2, d2_ref, "paper loss second derivative")
    assert_close(rbf_backward_hessian(d2, dy, cache), rbf_backward_hessian(d2_ref, dy_ref, cache_ref),
                 "rbf d2x")


def test_sdlm_step_of_the_paper_network_matches_numpy(cp, rng):
    x = rng.uniform(-0.1, 1.175, (40, 1, 32, 32)).astype(np.float32)
    labels = rng.integers(0, 10, 40)
    models = []
    for backend_name in ("numpy", "cupy"):
        m = lenet5_paper(seed=3, backend_name="numpy")
        m = m.to(backend_name) if backend_name != "numpy" else m
        opt = SDLM(batch_size=20, hessian_samples=40, seed=0)
        m.compile(loss="paper", optimizer=opt)
        xd, yd = (x, labels) if backend_name == "numpy" else (cp.asarray(x), cp.asarray(labels))
        opt.start_epoch(1, m, xd, yd)
        m.train_step(xd[:20], yd[:20])
        models.append((m, opt))
    (cpu, opt_cpu), (gpu, opt_gpu) = models
    for h, h_ref in zip(opt_gpu.h, opt_cpu.h):
        assert_close(h, np.asarray(h_ref, np.float64), "hessian diagonal", rtol=1e-3)
    for p, p_ref in zip(gpu.params, cpu.params):
        assert_close(p.grad, p_ref.grad.astype(np.float64), f"{p.name} gradient", rtol=1e-3)
        assert_close(p.value, p_ref.value.astype(np.float64), f"{p.name} value")


@pytest.mark.parametrize("kind", ["affine", "elastic"])
def test_distortions_on_the_gpu_equal_the_cpu_ones(cp, rng, kind):
    x = rng.uniform(-0.1, 1.175, (16, 1, 32, 32)).astype(np.float32)
    fn = augment.make_augment(kind)
    ref = fn(x, np.random.default_rng(7))
    out = fn(cp.asarray(x), np.random.default_rng(7))
    assert isinstance(out, cp.ndarray) and out.dtype == x.dtype
    assert_close(out, ref.astype(np.float64), kind, rtol=1e-5)


def test_sdlm_at_batch_1_follows_the_numpy_pass(cp, rng):
    """Issue 12: the paper's pass at batch 1 on the GPU takes the NumPy pass's steps, up to
    float32 rounding, over the first 100 samples (losses step by step, weights after)."""
    steps = 5 if EMULATED else 100
    x = rng.uniform(-0.1, 1.175, (steps, 1, 32, 32)).astype(np.float32)
    labels = rng.integers(0, 10, steps)
    runs = []
    for backend_name in ("numpy", "cupy"):
        model = lenet5_paper(seed=1, init="fan_in:1.1", subsample_coef=0.5).to(backend_name)
        opt = SDLM(lr_scale=1.0, batch_size=1, hessian_samples=50, seed=0)
        model.compile("paper", opt)
        xd, yd = (x, labels) if backend_name == "numpy" else (cp.asarray(x), cp.asarray(labels))
        opt.start_epoch(1, model, xd, yd)
        losses = [float(model.train_step(xd[i:i + 1], yd[i:i + 1])[0]) for i in range(steps)]
        runs.append((model, losses))
    (cpu, ref), (gpu, got) = runs
    for i, (a, b) in enumerate(zip(got, ref)):
        assert abs(a - b) <= 1e-3 * abs(b), f"step {i + 1}: loss {a} vs NumPy {b}"
    for p, p_ref in zip(gpu.params, cpu.params):
        assert_close(p.value, p_ref.value.astype(np.float64), f"{p.name} after {steps} steps", rtol=1e-3)
