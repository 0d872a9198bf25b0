"""Whole-model checks on the GPU: one training step of each of the study's six configurations
equals the NumPy step; two GPU runs with one seed give bit-identical weights; models move
between GPU and CPU through save/load."""
import numpy as np
import pytest

from lenet_gpu import SGD, Sequential, lenet5
from test_gpu_ops import EMULATED, rel_error

pytestmark = pytest.mark.gpu

# the study's configurations: (activation, output, loss, L2 weight decay, batch norm)
CONFIGS = {
    "tanh-mse": ("tanh", "tanh", "mse", 0.0, False),
    "tanh-mse-l2": ("tanh", "tanh", "mse", 0.001, False),
    "relu-ce": ("relu", "softmax", "ce", 0.0, False),
    "relu-ce-l2": ("relu", "softmax", "ce", 0.001, False),
    "tanh-mse-bn": ("tanh", "tanh", "mse", 0.0, True),
    "relu-ce-bn": ("relu", "softmax", "ce", 0.0, True),
}
BATCH = 20
STEPS = 3 if EMULATED else 30


def build(config, backend_name="numpy", seed=0):
    activation, output, loss, weight_decay, batchnorm = CONFIGS[config]
    model = lenet5(activation=activation, output=output, batchnorm=batchnorm, seed=seed,
                   backend_name="numpy")
    model.compile(loss, SGD(lr=0.1, weight_decay=weight_decay))
    return model.to(backend_name) if backend_name != "numpy" else model


def batch(rng, n=BATCH):
    x = rng.uniform(0, 1, (n, 1, 28, 28)).astype(np.float32)   # image-like pixel values
    return x, rng.integers(0, 10, n).astype(np.int64)


@pytest.mark.parametrize("config", list(CONFIGS))
def test_one_training_step_matches_numpy(cp, rng, config):
    cpu, gpu = build(config), build(config, "cupy")
    x, labels = batch(rng)
    loss_ref, correct_ref = cpu.train_step(x, labels)
    loss, correct = gpu.train_step(cp.asarray(x), cp.asarray(labels))
    assert abs(float(loss) - float(loss_ref)) <= 1e-5 * abs(float(loss_ref))
    assert int(correct) == int(correct_ref)
    for i, (layer_ref, layer) in enumerate(zip(cpu.layers, gpu.layers)):
        for p_ref, p in zip(layer_ref.params, layer.params):
            where = f"layer {i} ({layer!r}) {p.name}"
            # the gradients themselves (the update lr*g is small next to the weights)
            assert rel_error(p.grad, p_ref.grad) < 1e-3, f"{where}: gradient"
            assert rel_error(p.value, p_ref.value) < 1e-4, f"{where}: updated value"
        for name, b_ref in layer_ref.buffers.items():
            assert rel_error(layer.buffers[name], b_ref) < 1e-4, f"layer {i} {name}"


@pytest.mark.parametrize("config", ["tanh-mse", "relu-ce-bn"])
def test_two_gpu_runs_with_one_seed_are_bit_identical(cp, rng, config):
    batches = [batch(rng) for _ in range(3)]
    weights = []
    for _ in range(2):
        model = build(config, "cupy")
        for x, labels in batches:
            model.train_step(cp.asarray(x), cp.asarray(labels))
        weights.append([p.value for p in model.params] +
                       [b for layer in model.layers for b in layer.buffers.values()])
    for i, (a, b) in enumerate(zip(*weights)):
        assert cp.array_equal(a, b), f"array {i} differs between two runs with the same seed"


@pytest.mark.parametrize("direction", ["gpu-to-cpu", "cpu-to-gpu"])
def test_save_on_one_device_load_on_the_other(cp, rng, tmp_path, direction):
    source, target = ("cupy", "numpy") if direction == "gpu-to-cpu" else ("numpy", "cupy")
    model = build("relu-ce-bn", source)
    xp = cp if source == "cupy" else np
    for _ in range(2):
        x, labels = batch(rng)
        model.train_step(xp.asarray(x), xp.asarray(labels))
    path = model.save(tmp_path / "model.npz")
    loaded = Sequential.load(path, backend_name=target)
    x, _ = batch(rng, 37)
    expected, got = model.predict(x), loaded.predict(x)
    assert isinstance(got, np.ndarray)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)
    assert (got.argmax(axis=1) == expected.argmax(axis=1)).all()


@pytest.mark.parametrize("config", ["tanh-mse", "relu-ce-bn"])
def test_the_first_steps_follow_the_numpy_trajectory(cp, rng, config):
    """Two backends sum in different orders, so long runs drift apart like two seeds; over the
    first steps the trajectories still agree: the losses step by step and the weights after."""
    cpu, gpu = build(config), build(config, "cupy")
    losses = []
    for _ in range(STEPS):
        x, labels = batch(rng)
        ref, _ = cpu.train_step(x, labels)
        got, _ = gpu.train_step(cp.asarray(x), cp.asarray(labels))
        losses.append((float(got), float(ref)))
    for i, (got, ref) in enumerate(losses):
        assert abs(got - ref) <= 1e-4 * abs(ref), f"step {i + 1}: loss {got} vs NumPy {ref}"
    for p_ref, p in zip(cpu.params, gpu.params):
        # a bias starts at 0: its value is the sum of its updates, each known to the gradient
        # tolerance of the one-step test (a bias's gradient sums N*OH*OW terms that cancel)
        assert rel_error(p.value, p_ref.value) < 1e-3, f"{p.name} after {STEPS} steps"
