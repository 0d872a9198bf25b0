"""Layers, Sequential, optimizers, save/load."""
import json
import os

import numpy as np
import pytest

import lenet_gpu as L
from lenet_gpu.layers import c3_table
from lenet_gpu.model import Sequential, TrainingDiverged
from lenet_gpu.optim import SGD, Adam, make_optimizer

from gradcheck import assert_close, numerical_grad
from test_data import peak_bytes


def small_batch(rng, n=8):
    return rng.random((n, 1, 28, 28), dtype=np.float32), rng.integers(0, 10, n)


def test_lenet5_parameter_counts():
    assert L.lenet5().num_params() == 61_706
    # the paper's C3: 60 connections x 25 weights + 16 biases = 1,516 (instead of 2,416)
    assert L.lenet5(c3_table=True).num_params() == 61_706 - 2_416 + 1_516
    assert c3_table().sum() == 60 and c3_table().shape == (16, 6)
    assert L.mlp().num_params() == 784 * 500 + 500 + 500 * 150 + 150 + 150 * 10 + 10


def test_summary_lists_layers_shapes_and_total():
    text = L.lenet5(c3_table=True).summary(file=open("/dev/null", "w"))
    assert "(16, 10, 10)" in text and "table 60/96" in text and "Total parameters: 60,806" in text


def test_classic_network_reads_like_keras():
    model = Sequential(input_shape=(1, 28, 28), seed=0)
    model.add(L.Conv2D(1, 6, kernel_size=5, padding=2))
    model.add(L.Activation("tanh"))
    model.add(L.AvgPool2D(2))
    model.add(L.Conv2D(6, 16, kernel_size=5))
    model.add(L.Activation("tanh"))
    model.add(L.AvgPool2D(2))
    model.add(L.Conv2D(16, 120, kernel_size=5))
    model.add(L.Activation("tanh"))
    model.add(L.Flatten())
    model.add(L.Dense(120, 84))
    model.add(L.Activation("tanh"))
    model.add(L.Dense(84, 10))
    model.add(L.Activation("softmax"))
    assert model.output_shape() == (10,)
    ref = L.lenet5(seed=0)
    for p, q in zip(model.params, ref.params):
        np.testing.assert_array_equal(p.value, q.value)


def test_inference_keeps_no_cache_and_gives_the_training_forward_values(rng):
    """evaluate/predict run forward(keep=False): the convolutions keep no im2col columns, the
    outputs are those of the ordinary forward, and a backward after it is refused by name."""
    model = L.lenet5(activation="tanh", backend_name="numpy")
    model.compile("ce", SGD(0.01))
    x = rng.random((5, 1, 28, 28)).astype(np.float32)
    kept = model.forward(x)
    lean = model.forward(x, keep=False)
    assert np.array_equal(lean, kept)
    np.testing.assert_array_equal(model.predict(x), kept)
    conv = model.layers[0]
    assert conv._cache is None
    with pytest.raises(RuntimeError, match="backward needs a forward pass that keeps its cache"):
        conv.backward(np.ones((5, 6, 28, 28), np.float32))
    with pytest.raises(ValueError, match="keep=False is for inference"):
        model.forward(x, training=True, keep=False)


def test_add_rejects_mismatched_shapes():
    model = Sequential(input_shape=(1, 28, 28))
    model.add(L.Conv2D(1, 6, 5))
    with pytest.raises(ValueError, match="expects input"):
        model.add(L.Conv2D(3, 6, 5))
    with pytest.raises(ValueError, match="Flatten"):
        model.add(L.Dense(6 * 24 * 24, 10))


def test_connection_table_weights_stay_zero(rng):
    model = L.lenet5(c3_table=True)
    model.compile("ce", Adam(1e-2, weight_decay=1e-3))
    x, y = small_batch(rng)
    for _ in range(3):
        model.train_step(x, y)
    W = model.layers[3].params[0].value
    assert np.all(W[~c3_table()] == 0) and np.all(W[c3_table()] != 0)


@pytest.mark.parametrize("loss,act,bn", [("mse", "tanh", False), ("ce", "relu", True),
                                         ("ce", "sigmoid", False), ("mse", "scaled_tanh", True)])
def test_model_gradient_matches_numerical(rng, loss, act, bn):
    """Backprop through a whole (small) network equals finite differences of the loss."""
    model = Sequential(input_shape=(2, 9, 9), dtype=np.float64, seed=1)
    for layer in [L.Conv2D(2, 3, 3, stride=2, padding=1), *([L.BatchNorm(3)] if bn else []),
                  L.Activation(act), L.MaxPool2D(2), L.Flatten(), L.Dense(12, 5),
                  *([L.BatchNorm(5)] if bn else []), L.Activation(act), L.Dense(5, 4),
                  L.Activation("softmax" if loss == "ce" else "tanh")]:
        model.add(layer)
    model.compile(loss, SGD(0.1))
    x, y = rng.standard_normal((6, 2, 9, 9)), rng.integers(0, 4, 6)

    def loss_value():
        return float(model._loss(model.forward(x, True, logits=True), y)[0])
    out = model.forward(x, True, logits=True)
    model.backward(model._loss(out, y)[1], logits=True)
    for p in model.params:
        analytic = p.grad.copy()
        assert_close(analytic, numerical_grad(loss_value, p.value), rtol=1e-4, name=p.name)


@pytest.mark.parametrize("opt", [SGD(0.1), SGD(0.05, momentum=0.9), SGD(0.05, momentum=0.9, nesterov=True),
                                 Adam(3e-3)])
def test_small_batch_is_overfit(rng, opt):
    x, y = small_batch(rng, 16)
    model = L.lenet5(activation="relu", batchnorm=True)
    model.compile("ce", opt)
    for _ in range(60):
        loss, _ = model.train_step(x, y)
    assert float(loss) < 0.05
    assert (model.predict(x).argmax(axis=1) == y).all()


def test_mse_model_overfits(rng):
    # sparse, digit-like inputs: a random stroke image per sample
    y = rng.integers(0, 10, 16)
    x = (rng.random((16, 1, 28, 28)) < 0.15).astype(np.float32)
    model = L.lenet5(activation="tanh", output="tanh")
    model.compile("mse", SGD(0.1))
    first = float(model.train_step(x, y)[0])
    for _ in range(150):
        loss, _ = model.train_step(x, y)
    assert float(loss) < first / 10
    assert model.evaluate(x, y)["error_pct"] == 0


def test_weight_decay_only_on_weights(rng):
    model = L.lenet5(batchnorm=True)
    for p in model.params:
        p.grad = np.zeros_like(p.value)
    before = [p.value.copy() for p in model.params]
    make_optimizer("sgd", 0.1, weight_decay=0.5).step(model.params)
    for p, b in zip(model.params, before):
        if p.name == "W":
            np.testing.assert_allclose(p.value, b * (1 - 0.05), rtol=1e-6)
        else:
            np.testing.assert_array_equal(p.value, b)


def test_adam_first_step_moves_each_weight_by_lr(rng):
    model = L.lenet5()
    for p in model.params:     # |g| >= 0.5: far from eps, so each step is lr * sign(g)
        g = rng.standard_normal(p.value.shape)
        p.grad = (np.sign(g) * (0.5 + np.abs(g))).astype(np.float32)
    before = [p.value.copy() for p in model.params]
    Adam(1e-3).step(model.params)
    for p, b in zip(model.params, before):
        np.testing.assert_allclose(b - p.value, 1e-3 * np.sign(p.grad), atol=1e-6)


def test_a_model_step_is_one_optimizer_step(rng):
    """train_step prepares the optimizer once: Adam's first step through the model moves each
    weight by about lr (its bias corrections at t = 1), and t counts one step."""
    x, y = small_batch(rng)
    model = L.lenet5(activation="tanh")
    opt = Adam(1e-3)
    model.compile("ce", opt)
    before = [p.value.copy() for p in model.params]
    model.train_step(x, y)
    assert opt.steps_taken == 1
    moved = np.concatenate([np.abs(p.value - b).ravel() for p, b in zip(model.params, before)])
    assert moved.max() <= 1e-3 * (1 + 1e-4)     # |m / sqrt(v)| <= 1 at t = 1
    assert np.median(moved) == pytest.approx(1e-3, rel=1e-4)   # most gradients are far from eps


def test_save_load_roundtrip(tmp_path, rng):
    x, y = small_batch(rng)
    model = L.lenet5(activation="relu", batchnorm=True, c3_table=True, pool="max")
    model.compile("ce", SGD(0.05))
    model.meta["preprocessing"] = {"scale": "unit", "pad": 0}
    model.fit(x, y, epochs=2, batch_size=4, verbose=0)
    path = model.save(tmp_path / "m.npz")
    loaded = Sequential.load(path)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    assert loaded.meta == model.meta and loaded.loss == "ce"
    assert loaded.num_params() == model.num_params()
    with np.load(path, allow_pickle=False) as f:       # no pickled objects inside
        assert "architecture" in f.files


def test_load_rejects_bad_files(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="bad.npz"):
        Sequential.load(bad)
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    with pytest.raises(ValueError, match="not a lenet-gpu model"):
        Sequential.load(tmp_path / "other.npz")
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        Sequential.load(tmp_path / "missing.npz")


def test_save_is_atomic(tmp_path, monkeypatch):
    """A failure while writing leaves the previous good file untouched and no temp file."""
    model = L.lenet5()
    path = model.save(tmp_path / "m.npz")
    good = path and open(path, "rb").read()
    monkeypatch.setattr(np, "savez", lambda *a, **k: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError, match="disk full"):
        model.save(tmp_path / "m.npz")
    assert open(tmp_path / "m.npz", "rb").read() == good
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npz"]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # overflow is the point
def test_divergence_restores_last_good_weights(rng):
    x, y = small_batch(rng, 20)
    model = L.lenet5(activation="relu", output=None)
    model.compile("mse", SGD(1e6))          # explodes within the second epoch at the latest
    good = []

    def keep(epoch, record, m):
        good[:] = [p.value.copy() for p in m.params]
    with pytest.raises(TrainingDiverged) as info:
        model.fit(x, y, epochs=5, batch_size=5, verbose=0, callback=keep)
    restored = [p.value for p in model.params]
    assert all(np.all(np.isfinite(v)) for v in restored)
    if good:    # it diverged after a finite epoch: those weights are back
        for a, b in zip(restored, good):
            np.testing.assert_array_equal(a, b)
    assert "NaN or infinite" in str(info.value)


def test_fit_is_deterministic(rng):
    x, y = small_batch(rng, 40)

    def run():
        model = L.lenet5(seed=3)
        model.compile("ce", SGD(0.1, momentum=0.9))
        return model.fit(x, y, epochs=2, batch_size=8, verbose=0), model
    (h1, m1), (h2, m2) = run(), run()
    assert h1["train_loss"] == h2["train_loss"]
    for p, q in zip(m1.params, m2.params):
        np.testing.assert_array_equal(p.value, q.value)


def test_fit_rejects_bad_inputs(rng):
    model = L.lenet5()
    model.compile("ce", SGD(0.1))
    x, y = small_batch(rng)
    with pytest.raises(ValueError, match="model expects"):
        model.fit(x[:, :, :20], y, verbose=0)
    with pytest.raises(ValueError, match="labels must have shape"):
        model.fit(x, y[:3], verbose=0)
    with pytest.raises(ValueError, match="labels must be integers in"):
        model.fit(x, y + 10, verbose=0)
    with pytest.raises(RuntimeError, match="compile"):
        L.lenet5().train_step(x, y)


def test_backend_choice_errors(monkeypatch):
    from lenet_gpu import backend
    with pytest.raises(backend.BackendError, match="unknown backend"):
        backend.resolve_backend("tpu")
    if not backend.gpu_available():
        with pytest.raises(backend.BackendError, match="no usable CUDA GPU"):
            backend.resolve_backend("cupy")
        monkeypatch.setenv("LENET_GPU_BACKEND", "cupy")
        with pytest.raises(backend.BackendError):
            backend.resolve_backend(None)
        assert backend.resolve_backend("auto") == "numpy"


def test_cosine_schedule_sets_each_epochs_lr(rng):
    from lenet_gpu.optim import cosine_schedule
    f = cosine_schedule(4)
    assert [round(f(e), 6) for e in (1, 2, 3, 4)] == [1.0, round(0.5 * (1 + np.cos(np.pi / 4)), 6),
                                                     0.5, round(0.5 * (1 + np.cos(3 * np.pi / 4)), 6)]
    x, y = small_batch(rng, 8)
    model = L.lenet5()
    model.compile("ce", make_optimizer("momentum", 0.04, schedule="cosine", epochs=4))
    history = model.fit(x, y, epochs=4, batch_size=4, verbose=0)
    assert history["lr"] == pytest.approx([0.04 * f(e) for e in (1, 2, 3, 4)])
    assert make_optimizer("sgd", 0.1).schedule is None
    with pytest.raises(ValueError, match="unknown lr schedule 'linear'; choose constant, cosine or one-cycle"):
        make_optimizer("sgd", 0.1, schedule="linear")


def test_one_cycle_schedule_follows_pytorchs_one_cycle_lr():
    """PyTorch's OneCycleLR (two cosine phases): step 1 at max/div, the peak 1 at step
    pct_start * T, the last step at max/(div * final_div); steps past T keep that value."""
    from lenet_gpu.optim import one_cycle_schedule
    f = one_cycle_schedule(100, pct_start=0.3, div=25, final_div=1e4)
    assert f(1) == pytest.approx(1 / 25)
    assert f(30) == pytest.approx(1.0)
    assert f(100) == pytest.approx(1 / 25e4) and f(150) == f(100)
    # halfway through each phase the multiplier is halfway between its ends
    assert f(1 + 29 / 2) == pytest.approx((1 / 25 + 1) / 2)
    assert f(30 + 70 / 2) == pytest.approx((1 + 1 / 25e4) / 2)
    m = [f(t) for t in range(1, 101)]
    assert m[:30] == sorted(m[:30]) and m[29:] == sorted(m[29:], reverse=True)
    for bad in (dict(total_steps=1), dict(total_steps=10, pct_start=1.0), dict(total_steps=10, div=0)):
        with pytest.raises(ValueError, match="one-cycle needs"):
            one_cycle_schedule(**bad)


@pytest.mark.parametrize("graph", [False, True], ids=["eager", "static"])
def test_a_step_schedule_sets_every_steps_lr(rng, graph):
    """A step schedule gives each step its own lr, the short last batch's too (the epoch record
    shows the epoch's last); the static step, which a CUDA graph captures, reads the same."""
    from lenet_gpu.model import batch_bounds
    from lenet_gpu.optim import one_cycle_schedule
    x, y = small_batch(rng, 10)
    assert len(batch_bounds(10, 4)) == 3                       # 4 + 4 + a short batch of 2
    opt = make_optimizer("nesterov", 0.05, schedule="one-cycle", epochs=3, steps_per_epoch=3)
    assert opt.schedule is None
    seen = []
    update = opt.update
    opt.update = lambda params: (seen.append(float(opt.scalars["lr"])), update(params))
    model = L.lenet5(activation="relu", batchnorm=True).compile("ce", opt)
    history = model.fit(x, y, epochs=3, batch_size=4, verbose=0, graph=graph)
    expected = [0.05 * one_cycle_schedule(9)(t) for t in range(1, 10)]
    assert seen == pytest.approx(expected, rel=1e-6)
    assert history["lr"] == pytest.approx(expected[2::3])
    with pytest.raises(ValueError, match="not both"):
        L.SGD(0.1, schedule=lambda e: 1, step_schedule=lambda t: 1)
    with pytest.raises(ValueError, match="sdlm follows the paper's own schedule"):
        make_optimizer("sdlm", 1, schedule="one-cycle", epochs=3, steps_per_epoch=2)


@pytest.mark.parametrize("n, batch, expected", [
    (10, 4, [(0, 4), (4, 8), (8, 10)]),
    (9, 4, [(0, 4), (4, 9)]),                # the lone 9th sample joins the last full batch
    (8, 4, [(0, 4), (4, 8)]),
    (1, 4, [(0, 1)]),
    (3, 1, [(0, 1), (1, 2), (2, 3)]),
])
def test_batch_bounds_fold_a_lone_last_sample_into_the_batch_before(n, batch, expected):
    from lenet_gpu.model import batch_bounds
    assert batch_bounds(n, batch) == expected


def test_fit_with_a_last_batch_of_one_sample_trains_with_batch_norm(rng):
    """n % batch_size == 1 used to raise inside batch norm partway through the epoch."""
    x, y = small_batch(rng, 9)
    model = L.lenet5(activation="relu", batchnorm=True).compile("ce", L.SGD(lr=0.05))
    history = model.fit(x, y, epochs=2, batch_size=4, verbose=0)
    assert len(history["train_loss"]) == 2 and np.isfinite(history["train_loss"]).all()


def test_fit_says_batch_norm_needs_two_samples_per_batch(rng):
    x, y = small_batch(rng, 6)
    model = L.lenet5(batchnorm=True).compile("ce", L.SGD(lr=0.05))
    with pytest.raises(ValueError, match=r"layer 9 \(BatchNorm\(num_features=120.*at least 2 samples per batch; "
                                         r"got batches of 1"):
        model.fit(x, y, epochs=1, batch_size=1, verbose=0)
    with pytest.raises(ValueError, match="at least 2 samples per batch"):
        model.fit(x[:1], y[:1], epochs=1, batch_size=4, verbose=0)


def test_shuffle_once_keeps_one_order_for_every_epoch(rng):
    """The paper's "constant random order": with shuffle="once" every epoch sees the same order."""
    seen = []

    def recording(x, idx, epoch):
        seen.append((epoch, tuple(idx)))
        return x
    recording.per_sample = True
    x, y = small_batch(rng, 12)
    model = L.lenet5().compile("ce", L.SGD(0.01))
    model.fit(x, y, epochs=3, batch_size=12, verbose=0, shuffle="once", augment=recording)
    orders = [order for _, order in seen]
    assert len(orders) == 3 and orders[0] == orders[1] == orders[2]
    assert orders[0] != tuple(range(12))
    seen.clear()
    model.fit(x, y, epochs=2, batch_size=12, verbose=0, shuffle=True, augment=recording)
    assert seen[0][1] != seen[1][1]
    with pytest.raises(ValueError, match="shuffle must be True, False or 'once'"):
        model.fit(x, y, shuffle="twice", verbose=0)


def _model_file(path, layers, arrays=None, **arch):
    record = {"format": "lenet-gpu/1", "input_shape": [120], "seed": 0, "dtype": "float32",
              "loss": "ce", "layers": layers, "meta": {}, **arch}
    np.savez(path, architecture=np.array(json.dumps(record)), **(arrays or {}))
    return path


def test_a_hostile_model_file_is_refused_before_anything_is_built(tmp_path):
    """A 1 KB file declaring Dense(8000, 8000) used to allocate ~800 MB before failing."""
    path = _model_file(tmp_path / "big.npz", [{"class": "Dense", "config": {"in_features": 8000,
                                                                          "out_features": 8000}}],
                       input_shape=[8000])
    assert path.stat().st_size < 2000
    with pytest.raises(ValueError, match=r"big\.npz: missing array 'layers\.0\.W'"):
        Sequential.load(path)
    assert peak_bytes(lambda: pytest.raises(ValueError, Sequential.load, path)) < 1 << 20
    huge = {"class": "Dense", "config": {"in_features": 10 ** 6, "out_features": 10 ** 6}}
    path = _model_file(tmp_path / "huge.npz", [huge], {"layers.0.W": np.zeros((2, 2), np.float32),
                                                        "layers.0.b": np.zeros(2, np.float32)},
                       input_shape=[10 ** 6 // 16])
    with pytest.raises(ValueError, match=r"layers\.0\.W has shape \(2, 2\), expected \(1000000, 1000000\)"):
        Sequential.load(path)
    assert peak_bytes(lambda: pytest.raises(ValueError, Sequential.load, path)) < 1 << 20


def test_an_array_that_claims_more_than_the_file_holds_is_refused(tmp_path):
    path = tmp_path / "lie.npz"
    _model_file(path, [{"class": "Dense", "config": {"in_features": 120, "out_features": 4}}],
                {"layers.0.W": np.zeros((120, 4), np.float32), "layers.0.b": np.zeros(4, np.float32)})
    blob = path.read_bytes()
    # rewrite W's header to claim (120000, 4): the zip entry's size no longer matches
    blob = blob.replace(b"'shape': (120, 4)", b"'shape': (120000, 4)", 1)
    path.write_bytes(blob)
    with pytest.raises(ValueError, match=r"lie\.npz: member 'layers\.0\.W' declares|lie\.npz.*not a"):
        Sequential.load(path)
    assert peak_bytes(lambda: pytest.raises(ValueError, Sequential.load, path)) < 1 << 20


@pytest.mark.parametrize("layers, message", [
    ([{"class": "Dense", "config": {"in_features": 120}}], r"layer 0 \(Dense\): missing setting\(s\) \['out_features'\]"),
    ([{"class": "Dense", "config": {"in_features": 120, "out_features": 4, "colour": 1}}],
     r"unknown setting\(s\) \['colour'\]"),
    ([{"class": "Dense", "config": {"in_features": "x", "out_features": 4}}], r"layer 0 \(Dense\): Dense: in_features must be a whole number, got 'x'"),
    ([{"class": "Nope", "config": {}}], r"unknown layer class 'Nope' at position 0"),
    ([["Dense"]], r"layer 0 must be an object"),
    ("Dense", r"layers must be a non-empty list"),
])
def test_bad_layer_records_name_the_layer_and_the_setting(tmp_path, layers, message):
    path = _model_file(tmp_path / "m.npz", layers)
    with pytest.raises(ValueError, match=message):
        Sequential.load(path)


@pytest.mark.parametrize("make, message", [
    (lambda: L.Conv2D(0, 6, 5), r"Conv2D: in_channels must be >= 1, got 0"),
    (lambda: L.Conv2D(1, 6, 2.5), r"Conv2D: kernel_size must be a whole number, got 2\.5"),
    (lambda: L.Conv2D(1, 6, 5, padding=-1), r"Conv2D: padding must be >= 0, got -1"),
    (lambda: L.Dense(-1, 3), r"Dense: in_features must be >= 1, got -1"),
    (lambda: L.Dense(84, "ten"), r"Dense: out_features must be a whole number, got 'ten'"),
    (lambda: L.AvgPool2D(0), r"AvgPool2D: pool_size must be >= 1, got 0"),
    (lambda: L.MaxPool2D(2, stride=0), r"MaxPool2D: stride must be >= 1, got 0"),
    (lambda: L.BatchNorm(0), r"BatchNorm: num_features must be >= 1, got 0"),
    (lambda: L.BatchNorm(6, eps=0), r"BatchNorm needs momentum in \[0, 1\] and eps > 0"),
    (lambda: L.Subsampling(6, size=True), r"Subsampling: size must be a whole number, got True"),
    (lambda: L.Adam(beta1=1.0), r"Adam's beta1 and beta2 must be in \[0, 1\), got 1\.0"),
    (lambda: L.Adam(eps=0), r"Adam's eps must be > 0"),
])
def test_layer_and_optimizer_settings_are_checked_when_made(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_saving_onto_a_directory_names_it(tmp_path):
    with pytest.raises(IsADirectoryError, match=r"cannot write .*: it is a directory"):
        L.lenet5().save(tmp_path)
    assert os.listdir(tmp_path) == []


def test_a_finite_blow_up_is_divergence_too_and_warns_nothing(rng, recwarn):
    """lr 1e9 with tanh used to keep a finite loss near 1e10, exit 0 and leave 86% error."""
    x, y = small_batch(rng, 20)
    model = L.lenet5(activation="tanh").compile("ce", SGD(1e9))
    with pytest.raises(TrainingDiverged, match=r"blew up to .*more than 10x the untrained "
                                               r"network's .* in epoch 1"):
        model.fit(x, y, epochs=3, batch_size=5, verbose=0)
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


@pytest.mark.parametrize("change, message", [
    (lambda x, y: (np.where(np.arange(8)[:, None, None, None] == 5, np.nan, x), y),
     r"training inputs contain NaN or infinite values \(first in sample 5\)"),
    (lambda x, y: ((x * 255).astype(np.uint8), y), r"training inputs must be floating point, "
                                                   r"got uint8 \(0\.\.255 pixels: scale them"),
    (lambda x, y: (x, y + 0.5), r"labels must be whole numbers, got label\[0\] = "),
    (lambda x, y: (x, y.astype(str)), r"labels must be integers, got <U"),
    (lambda x, y: (x[:0], y[:0]), r"training inputs are empty"),
])
def test_fit_names_bad_values(rng, change, message):
    x, y = change(*small_batch(rng))
    model = L.lenet5().compile("ce", SGD(0.1))
    with pytest.raises(ValueError, match=message):
        model.fit(x, y, verbose=0)


def test_whole_float_labels_are_taken_and_uint8_predict_is_refused(rng):
    x, y = small_batch(rng)
    model = L.lenet5().compile("ce", SGD(0.1))
    model.fit(x, y.astype(np.float32), epochs=1, verbose=0)
    with pytest.raises(ValueError, match="inputs must be floating point, got uint8"):
        model.predict((x * 255).astype(np.uint8))
    assert model.predict(x[:0]).shape == (0, 10)


@pytest.mark.parametrize("call, message", [
    (lambda m, x, y: m.fit(x, y, batch_size=2.5, verbose=0), r"fit: batch_size must be a whole number, got 2\.5"),
    (lambda m, x, y: m.fit(x, y, epochs="two", verbose=0), r"fit: epochs must be a whole number"),
    (lambda m, x, y: m.fit(x, y, validation_data=(x,), verbose=0), r"validation_data must be a pair"),
    (lambda m, x, y: m.fit([[1, 2], [3]], y, verbose=0), r"training inputs are not an array of numbers"),
    (lambda m, x, y: m.evaluate(x, y, batch_size=0), r"evaluate: batch_size must be >= 1, got 0"),
    (lambda m, x, y: m.predict(x, batch_size=-1), r"predict: batch_size must be >= 1, got -1"),
    (lambda m, x, y: m.predict(7), r"inputs have shape \(\); the model expects"),
])
def test_calls_name_bad_arguments(rng, call, message):
    model = L.lenet5().compile("ce", SGD(0.1))
    with pytest.raises(ValueError, match=message):
        call(model, *small_batch(rng))


@pytest.mark.parametrize("make, error, message", [
    (lambda: L.lenet5(output="svm"), ValueError, r"unknown output 'svm'.*or None for plain logits"),
    (lambda: L.mlp(output="svm"), ValueError, r"unknown output 'svm'"),
    (lambda: L.lenet5_paper(subsample_coef=float("nan")), ValueError,
     r"Subsampling: coef must be a finite number, got nan"),
    (lambda: L.Sequential(input_shape=(1, 4, 4), dtype=np.int32), ValueError,
     r"dtype must be float32 or float64, got int32"),
    (lambda: SGD("fast"), TypeError, r"learning rate and weight decay must be numbers, got 'fast'"),
    (lambda: SGD(float("inf")), ValueError, r"learning rate must be > 0 and finite, got inf"),
    (lambda: L.Adam(1e-3, weight_decay=float("nan")), ValueError, r"weight decay must be >= 0"),
])
def test_constructors_name_bad_settings(make, error, message):
    with pytest.raises(error, match=message):
        make()
