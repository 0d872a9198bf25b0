"""The captured training step on the GPU: a fit replayed from a CUDA graph gives the same bits
as the eager GPU fit, run after run, for every case of test_step.py; the graph is really
captured (no silent fallback); the captured step leaves no memory of its own to other arrays."""
import os

import numpy as np
import pytest

from lenet_gpu.step import StaticStep
from test_step import CASES, data

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(
    os.environ.get("GPU_EMU") == "1", reason="gpu_emu does not emulate CUDA graph capture")]


def train_gpu(case, x, y, graph, batch_size=4, epochs=3):
    build, loss, make_opt, options = CASES[case]
    model = build().to("cupy").compile(loss, make_opt())
    history = model.fit(x, y, epochs=epochs, batch_size=batch_size, verbose=0, graph=graph,
                        validation_data=(x[:6], y[:6]), **options)
    del history["seconds"]
    return history, [p.value.get() for p in model.params] + \
        [b.get() for layer in model.layers for b in layer.buffers.values()]


@pytest.mark.parametrize("case", list(CASES))
def test_captured_fit_equals_the_eager_gpu_fit_bit_for_bit(cp, rng, case, capsys):
    x, y = data(rng, case, 18)                 # 4 full batches and a short one
    captured_history, captured = train_gpu(case, x, y, graph=None)
    assert "could not capture" not in capsys.readouterr().err
    eager_history, eager = train_gpu(case, x, y, graph=False)
    assert captured_history == eager_history
    for i, (a, b) in enumerate(zip(captured, eager)):
        assert np.array_equal(a, b), f"array {i} differs between the captured and the eager fit"


@pytest.mark.parametrize("case", ["relu-ce-bn-nesterov-l2", "paper-sdlm"])
def test_two_captured_runs_are_bit_identical(cp, rng, case):
    x, y = data(rng, case, 16)
    first, second = train_gpu(case, x, y, None), train_gpu(case, x, y, None)
    assert first[0] == second[0]
    assert all(np.array_equal(a, b) for a, b in zip(first[1], second[1]))


def test_the_step_is_captured_and_replayed(cp, rng):
    build, loss, make_opt, _ = CASES["adam-cosine"]
    model = build().to("cupy").compile(loss, make_opt())
    step = StaticStep(model, 4)
    x, y = data(rng, "adam-cosine", 4)
    step.reset()
    for _ in range(4):
        step.feed(cp.asarray(x), cp.asarray(y))
        step()
    assert step.graph is not None and step.capture
    assert model.optimizer.steps_taken == 4, "Adam's step counter advances on every replay"
    # new allocations never land in the graph's pool
    before = step.pool.used_bytes()
    scratch = [cp.empty(1 << 20, cp.float32) for _ in range(8)]
    assert step.pool.used_bytes() == before and all(s.data.mem.size for s in scratch)
    assert float(step.loss_sum) > 0
