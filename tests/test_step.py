"""The static training step (lenet_gpu/step.py) on NumPy: fit through fixed buffers, device-side
scalars and accumulators gives exactly what the eager fit gives, for every optimizer, with and
without batch norm, distortions, learning-rate schedules (per epoch and per step) and a short
last batch. This is how the restructuring behind the captured CUDA graph is checked without a
GPU."""
import numpy as np
import pytest

import lenet_gpu as L
from lenet_gpu.augment import make_augment
from lenet_gpu.optim import SDLM, cosine_schedule, one_cycle_schedule
from lenet_gpu.step import StaticStep

# name -> (builder, loss, optimizer factory, fit options)
CASES = {
    "tanh-mse-sgd": (lambda: L.lenet5(activation="tanh", output="tanh"), "mse",
                     lambda: L.SGD(0.1), {}),
    "relu-ce-bn-nesterov-l2": (lambda: L.lenet5(activation="relu", batchnorm=True), "ce",
                               lambda: L.SGD(0.05, momentum=0.9, nesterov=True, weight_decay=1e-3), {}),
    "adam-cosine": (lambda: L.lenet5(activation="relu", pool="max"), "ce",
                    lambda: L.Adam(1e-3, schedule=cosine_schedule(3)), {}),
    "one-cycle-nesterov": (lambda: L.lenet5(activation="relu", batchnorm=True), "ce",
                           lambda: L.SGD(0.2, momentum=0.9, nesterov=True,
                                         step_schedule=one_cycle_schedule(15)), {}),
    "momentum-affine": (lambda: L.lenet5(activation="tanh", c3_table=True), "ce",
                        lambda: L.SGD(0.05, momentum=0.9), {"augment": make_augment("affine")}),
    "paper-sdlm": (lambda: L.lenet5_paper(), "paper",
                   lambda: SDLM(batch_size=4, hessian_samples=8), {}),
}


def data(rng, case, n):
    side = 32 if case == "paper-sdlm" else 28
    x = rng.uniform(0, 1, (n, 1, side, side)).astype(np.float32)
    return x, rng.integers(0, 10, n)


def train(case, x, y, graph, batch_size=4, epochs=3):
    build, loss, make_opt, options = CASES[case]
    model = build().compile(loss, make_opt())
    history = model.fit(x, y, epochs=epochs, batch_size=batch_size, verbose=0, graph=graph,
                        validation_data=(x[:6], y[:6]), **options)
    del history["seconds"]
    arrays = [p.value for p in model.params] + \
             [b for layer in model.layers for b in layer.buffers.values()]
    return history, arrays


@pytest.mark.parametrize("n", [16, 18, 17], ids=["full-batches", "short-last-batch", "lone-last-sample"])
@pytest.mark.parametrize("case", list(CASES))
def test_static_step_equals_the_eager_step_exactly(rng, case, n):
    x, y = data(rng, case, n)
    eager_history, eager = train(case, x, y, graph=False)
    static_history, static = train(case, x, y, graph=True)
    assert static_history == eager_history
    for i, (a, b) in enumerate(zip(static, eager)):
        assert np.array_equal(a, b), f"array {i} differs between the static and the eager fit"


def test_the_sdlm_paper_step_at_batch_1_equals_the_eager_step(rng):
    x, y = data(rng, "paper-sdlm", 6)
    (static_history, static), (eager_history, eager) = (
        train("paper-sdlm", x, y, graph, batch_size=1, epochs=2) for graph in (True, False))
    assert static_history == eager_history
    assert all(np.array_equal(a, b) for a, b in zip(static, eager))


def test_the_static_step_writes_only_its_own_buffers(rng):
    """feed copies the batch in (the caller's arrays are never aliased); the sums accumulate
    across calls until reset."""
    model = L.lenet5().compile("ce", L.SGD(0.1))
    step = StaticStep(model, 4)
    x, y = data(rng, "tanh-mse-sgd", 8)
    x_before = x.copy()
    step.reset()
    step.feed(x, y, np.array([5, 1, 7, 2]))
    assert np.array_equal(step.x, x[[5, 1, 7, 2]]) and np.array_equal(step.labels, y[[5, 1, 7, 2]])
    step()
    first = float(step.loss_sum)
    step.feed(x[:4], y[:4])
    step()
    assert float(step.loss_sum) > first > 0 and np.array_equal(x, x_before)
    step.reset()
    assert float(step.loss_sum) == 0 and int(step.correct) == 0
    assert not step.capture, "NumPy has nothing to capture"
