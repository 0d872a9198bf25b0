"""Kernel launches per training step, counted under the CPU emulator (tools/count_launches.py):
at LeNet-5's size a GPU step costs about its number of launches, so a change that adds some
shows here. The budgets are today's counts at batch 20: 84, 81, 113, 183 and 255 before the
optimizer, loss and activation kernels; 55, 53, 81, 81, 83 with them; then split reductions
finished in one launch (batch norm, conv weight and bias gradients)."""
import importlib.util
import os
from pathlib import Path

import pytest

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(
    os.environ.get("GPU_EMU") != "1",
    reason="counting every array operation needs the emulator's NumPy-backed CuPy")]

spec = importlib.util.spec_from_file_location(
    "count_launches", Path(__file__).resolve().parent.parent / "tools" / "count_launches.py")
count_launches = importlib.util.module_from_spec(spec)
spec.loader.exec_module(count_launches)

BUDGET = {"tanh-mse": 47, "relu-ce": 45, "relu-ce-bn": 65, "recipe": 65, "relu-ce-bn-adam": 67}


@pytest.mark.parametrize("config", list(BUDGET))
def test_a_training_step_keeps_to_its_launch_budget(cp, config):
    counts = count_launches.count(config)
    total = sum(counts.values())
    detail = "\n".join(f"{n:3d} {kind} {op} {at}" for (kind, op, at), n in sorted(counts.items()))
    assert total <= BUDGET[config], f"{config}: {total} launches per step > {BUDGET[config]}:\n{detail}"
    # the optimizer is one kernel per parameter array, whatever the optimizer
    updates = sum(n for (kind, op, at), n in counts.items() if op.endswith("_update"))
    assert updates == (14 if "bn" in config or config == "recipe" else 10)
