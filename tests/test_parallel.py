"""The NumPy engine's batch split over threads (lenet_gpu/parallel.py): a training step or an
evaluation split into parts gives the one-thread result up to rounding, the same every run;
batch norm, small batches and LENET_GPU_THREADS=1 keep the one-thread step."""
import numpy as np
import pytest

import lenet_gpu as L
from lenet_gpu import parallel
from lenet_gpu.layers import AvgPool2D, Activation, Conv2D, Dense, Flatten


@pytest.fixture
def threads(monkeypatch):
    """threads(p): split every batch into p parts (parts of any size); p = 1: one thread."""
    if not parallel._openblas():                     # no OpenBLAS to hold: pretend there is one
        monkeypatch.setattr(parallel, "_blas", (lambda n: None, lambda: 1))
    monkeypatch.setattr(parallel, "MIN_PART", 1)

    def use(p):
        monkeypatch.setenv("LENET_GPU_THREADS", str(p))
    return use


def small_net(dtype):
    model = L.Sequential(input_shape=(1, 12, 12), dtype=dtype, seed=3)
    for layer in (Conv2D(1, 4, 3, padding=1), Activation("tanh"), AvgPool2D(2), Conv2D(4, 6, 3),
                  Activation("tanh"), Flatten(), Dense(6 * 4 * 4, 10), Activation("softmax")):
        model.add(layer)
    return model


CASES = {   # name -> (builder, loss, input side, relative tolerance of the gradients)
    "float64-net-ce": (lambda: small_net(np.float64), "ce", 12, 1e-12),
    "lenet5-tanh-mse": (lambda: L.lenet5(activation="tanh", output="tanh"), "mse", 28, 1e-5),
    "paper-network": (L.lenet5_paper, "paper", 32, 1e-5),
}


def gradients(case, x, y):
    """(model, loss, gradients at the initial weights) of one step."""
    build, loss, _, _ = CASES[case]
    model = build().compile(loss, L.SGD(0.1))
    value = float(model.train_step(x.astype(model.dtype), y)[0])
    return model, value, [p.grad.copy() for p in model.params]


def train(case, x, y, steps=3):
    build, loss, _, _ = CASES[case]
    model = build().compile(loss, L.SGD(0.05, momentum=0.9))
    losses = [float(model.train_step(x.astype(model.dtype), y)[0]) for _ in range(steps)]
    return losses, [p.value.copy() for p in model.params]


@pytest.mark.parametrize("p", [2, 3])
@pytest.mark.parametrize("case", list(CASES))
def test_a_split_step_equals_the_one_thread_step(rng, threads, case, p):
    _, _, side, tol = CASES[case]
    x = rng.uniform(0, 1, (13, 1, side, side)).astype(np.float32)
    y = rng.integers(0, 10, 13)
    threads(1)
    _, loss1, grads1 = gradients(case, x, y)
    threads(p)
    model, loss, grads = gradients(case, x, y)
    assert model._split(13)[0] == parallel.bounds(13, p)          # the step really was split
    assert loss == pytest.approx(loss1, rel=tol)
    for g, g1 in zip(grads, grads1):    # float32: summation order moves small entries most
        np.testing.assert_allclose(g, g1, rtol=tol, atol=tol * np.abs(g1).max())
    assert _same(train(case, x, y), train(case, x, y))           # and it repeats exactly


def _same(a, b):
    """Two (losses, weights) results identical bit for bit."""
    return a[0] == b[0] and all(np.array_equal(u, v) for u, v in zip(a[1], b[1]))


def test_evaluate_and_predict_split_equal_one_thread(rng, threads):
    x = rng.uniform(0, 1, (50, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, 50)
    model = L.lenet5().compile("ce", L.SGD(0.1))
    threads(1)
    ev1, out1 = model.evaluate(x, y, batch_size=20), model.predict(x, batch_size=20)
    threads(3)
    assert len(model._split(20)[0]) == 3
    ev, out = model.evaluate(x, y, batch_size=20), model.predict(x, batch_size=20)
    np.testing.assert_allclose(out, out1, rtol=1e-6, atol=1e-7)
    assert ev["error_pct"] == ev1["error_pct"]
    assert ev["loss"] == pytest.approx(ev1["loss"], rel=1e-6)


def test_batch_norm_small_batches_and_one_thread_keep_the_one_thread_step(monkeypatch, threads):
    threads(2)
    assert L.lenet5(batchnorm=True)._split(64)[0] == [(0, 64)]
    assert len(L.lenet5()._split(64)[0]) == 2
    monkeypatch.setattr(parallel, "MIN_PART", 32)
    assert L.lenet5()._split(63)[0] == [(0, 63)]
    threads(1)
    assert L.lenet5()._split(1000)[0] == [(0, 1000)]


@pytest.mark.parametrize("n,p", [(13, 2), (13, 3), (64, 2), (7, 7), (100, 8)])
def test_bounds_cover_the_batch_in_nearly_equal_parts(n, p):
    spans = parallel.bounds(n, p)
    assert len(spans) == p and spans[0][0] == 0 and spans[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))
    sizes = [stop - start for start, stop in spans]
    assert max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes, reverse=True)


@pytest.mark.parametrize("text", ["0", "-2", "two", "1.5"])
def test_a_bad_thread_count_is_named(monkeypatch, text):
    monkeypatch.setenv("LENET_GPU_THREADS", text)
    with pytest.raises(ValueError, match="LENET_GPU_THREADS"):
        parallel.cpu_threads()
    with pytest.raises(ValueError, match="LENET_GPU_THREADS"):    # also where it would not split
        L.lenet5(batchnorm=True).evaluate(np.zeros((4, 1, 28, 28), np.float32), np.zeros(4, int))


def test_blas_threads_are_held_then_given_back():
    found = parallel._openblas()
    if not found:
        pytest.skip("NumPy's BLAS here is not an OpenBLAS this process can find")
    get_threads = found[1]
    before = get_threads()
    with parallel.blas_threads(1):
        assert get_threads() == 1
    assert get_threads() == before


def test_the_other_threads_follow_the_callers_floating_point_settings(threads):
    overflow_in_part_1 = lambda i: np.exp(np.float32(1000.0 if i else 0.0))
    with np.errstate(over="raise"), pytest.raises(FloatingPointError):
        parallel.run(overflow_in_part_1, 2)
    with np.errstate(over="ignore"):
        assert parallel.run(overflow_in_part_1, 2)[1] == np.inf
