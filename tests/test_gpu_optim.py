"""The optimizers' update kernels (kernels/optim.cu) against the NumPy update they replace:
every optimizer, with and without weight decay, parameter arrays of several sizes (one element,
less than a block, several blocks), a learning rate that changes between steps. One kernel
launch per parameter array and nothing else: that is what the kernels are for."""
import numpy as np
import pytest

from lenet_gpu.layers import Param
from lenet_gpu.optim import SDLM, SGD, Adam, one_cycle_schedule
from test_gpu_ops import assert_close

pytestmark = pytest.mark.gpu

SHAPES = [(1,), (7,), (6, 1, 5, 5), (300, 2)]      # 1, 7, 150 and 600 elements
STEPS = 4
OPTIMIZERS = {
    "sgd": lambda wd: SGD(0.1, weight_decay=wd, step_schedule=one_cycle_schedule(STEPS)),
    "momentum": lambda wd: SGD(0.1, momentum=0.9, weight_decay=wd,
                               step_schedule=one_cycle_schedule(STEPS)),
    "nesterov": lambda wd: SGD(0.1, momentum=0.9, nesterov=True, weight_decay=wd,
                               step_schedule=one_cycle_schedule(STEPS)),
    "adam": lambda wd: Adam(1e-2, weight_decay=wd),
    "sdlm": lambda wd: SDLM(1.0, batch_size=4, weight_decay=wd),
}


def params(rng, xp):
    """One parameter array of each shape, the last two decayed (weights), the others not."""
    return [Param(f"p{i}", xp.asarray(rng.standard_normal(s).astype(np.float32)), i >= 2)
            for i, s in enumerate(SHAPES)]


def sdlm_rates(opt, ps, rng, xp):
    """SDLM's per-element step without a model: as start_epoch sets it, from made-up h >= 0."""
    opt.steps = [xp.asarray(4 * 5e-4 / (0.02 + rng.uniform(0, 1, p.value.shape)).astype(np.float32))
                 for p in ps]


@pytest.mark.parametrize("weight_decay", [0.0, 1e-2], ids=["no-decay", "decay"])
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_the_update_kernel_matches_numpy(cp, rng, name, weight_decay, launches):
    cpu, gpu = OPTIMIZERS[name](weight_decay), OPTIMIZERS[name](weight_decay)
    p_cpu = params(rng, np)
    p_gpu = [Param(p.name, cp.asarray(p.value), p.decay) for p in p_cpu]
    if name == "sdlm":
        sdlm_rates(cpu, p_cpu, np.random.default_rng(1), np)
        sdlm_rates(gpu, p_gpu, np.random.default_rng(1), cp)
    for step in range(STEPS):
        for pc, pg in zip(p_cpu, p_gpu):
            pc.grad = rng.standard_normal(pc.value.shape).astype(np.float32)
            pg.grad = cp.asarray(pc.grad)
        cpu.step(p_cpu)
        launches.clear()
        gpu.step(p_gpu)
        assert launches == [f"{name if name in ('adam', 'sdlm') else 'sgd'}_update"] * len(SHAPES)
        for pc, pg in zip(p_cpu, p_gpu):
            assert_close(pg.value, pc.value, f"{name} step {step + 1} {pc.name}", rtol=1e-6)
            for s_cpu, s_gpu in zip(_state(cpu, p_cpu.index(pc)), _state(gpu, p_gpu.index(pg))):
                assert_close(s_gpu, s_cpu, f"{name} step {step + 1} {pc.name} state", rtol=1e-5)


def _state(opt, i):
    s = opt.state.get(i)
    return () if s is None else s if isinstance(s, tuple) else (s,)


def test_a_parameter_without_gradient_is_left_alone(cp, rng):
    ps = params(rng, cp)
    before = [p.value.copy() for p in ps]
    for p in ps[1:]:
        p.grad = cp.ones_like(p.value)
    SGD(0.1, momentum=0.9).step(ps)
    assert bool((ps[0].value == before[0]).all())
    assert not bool((ps[1].value == before[1]).all())


def test_a_float64_gradient_is_refused_by_name(cp, rng):
    ps = params(rng, cp)[:1]
    ps[0].grad = cp.ones(ps[0].value.shape, dtype=cp.float64)
    with pytest.raises(TypeError, match="g must be float32"):
        SGD(0.1).step(ps)
