"""Sequential: a list of layers, trained with one loss and one optimizer.

    model = Sequential(input_shape=(1, 28, 28), seed=0)
    model.add(Conv2D(1, 6, kernel_size=5, padding=2)) ...
    model.compile(loss="ce", optimizer=SGD(lr=0.1))
    model.fit(x_train, y_train, epochs=10, batch_size=128, validation_data=(x_test, y_test))

With loss "ce" the network's output is taken as logits; a final Activation("softmax") is then
skipped in training and fused into the loss (log-sum-exp), and applied by `predict`.
With loss "mse" the targets are one-hot vectors (0/1) of the labels.
With loss "paper" (LeCun et al. 1998, eq. 9) the outputs are penalties, e.g. the distances of an
RBFOutput layer: the predicted class is the *smallest* output (argmin), in training, evaluate
and for users of `predict` (which returns the penalties themselves).
"""
import inspect
import json
import math
import os
import sys
import time

import numpy as np

from . import backend, parallel
from .atomic import atomic_write
from .layers import LAYERS, Activation, BatchNorm, Layer, _size
from .npz import NpzReader
from .ops.losses import (LOSSES, PAPER_J, check_paper_j, loss_and_correct, loss_hessian_diagonal,
                         loss_squares_gradient)
from .optim import Optimizer
from .step import StaticStep

FORMAT = "lenet-gpu/1"


# An epoch whose mean training loss exceeds this many times the untrained network's loss (at
# least 1) has diverged: a working run never gets that far above its starting point.
DIVERGENCE_FACTOR = 10.0


class TrainingDiverged(RuntimeError):
    """The training loss became NaN or infinite, or blew up far above the untrained network's;
    the model holds the last good weights."""

    def __init__(self, epoch, history, why="became NaN or infinite"):
        super().__init__(f"training loss {why} in epoch {epoch}; "
                         f"weights restored to the end of epoch {epoch - 1}")
        self.epoch, self.history = epoch, history


def batch_bounds(n, batch_size):
    """(start, stop) of each batch of an epoch of n samples. A last batch of a single sample
    joins the one before it (batch_size + 1 samples): batch norm cannot normalise one value,
    and a step on one sample of a batch-B run is mostly noise. Every sample is used."""
    bounds = [(start, min(start + batch_size, n)) for start in range(0, n, batch_size)]
    if batch_size > 1 and len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] == 1:
        bounds[-2:] = [(bounds[-2][0], n)]
    return bounds


class Sequential:
    def __init__(self, layers=(), input_shape=None, seed=0, backend_name=None, dtype=np.float32):
        self.layers = []
        self.input_shape = None if input_shape is None else tuple(int(s) for s in input_shape)
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.backend = backend.resolve_backend(backend_name) if backend_name else backend.get_backend()
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise ValueError(f"dtype must be float32 or float64, got {self.dtype}")
        self.loss = None
        self.paper_j = PAPER_J  # the paper loss's constant j (ops/losses.py)
        self.optimizer = None
        self.meta = {}          # free-form, saved with the model (e.g. the preprocessing used)
        self._replicas = None   # the layers' copies for a step split over threads (parallel.py)
        for layer in layers:
            self.add(layer)

    # ---- building ------------------------------------------------------------------------
    def add(self, layer):
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential.add expects a Layer, got {type(layer).__name__}")
        if self.input_shape is not None:
            layer.output_shape(self.output_shape())   # raises a clear error on a mismatch
        if not layer.built:
            layer.build(self.rng, self.dtype, self.backend)
        self.layers.append(layer)
        return self

    def output_shape(self):
        shape = self.input_shape
        for layer in self.layers:
            shape = layer.output_shape(shape)
        return shape

    def compile(self, loss=None, optimizer=None, paper_j=None):
        """loss: "ce", "mse" or "paper"; None keeps the model's own (lenet5_paper sets "paper"),
        else "ce". paper_j: the paper loss's constant j (None keeps the model's, PAPER_J)."""
        loss = loss or self.loss or "ce"
        if loss not in LOSSES:
            raise ValueError(f"unknown loss {loss!r}; choose one of {', '.join(LOSSES)}")
        if paper_j is not None:
            if loss != "paper":
                raise ValueError(f"paper_j is a constant of the paper loss, not of {loss!r}")
            self.paper_j = check_paper_j(paper_j)
        if optimizer is not None and not isinstance(optimizer, Optimizer):
            raise TypeError(f"optimizer must be an Optimizer, got {type(optimizer).__name__}")
        self.loss, self.optimizer = loss, optimizer
        return self

    @property
    def params(self):
        return [p for layer in self.layers for p in layer.params]

    def num_params(self):
        return sum(layer.num_params() for layer in self.layers)

    def to(self, backend_name):
        """Move every parameter and buffer to "numpy" or "cupy" (or "auto")."""
        self.backend = backend.resolve_backend(backend_name)
        for layer in self.layers:
            layer.to(self.backend)
        if self.optimizer is not None:
            self.optimizer.reset()
        return self

    def summary(self, file=None):
        rows = [("Layer", "Output shape", "Params")]
        shape = self.input_shape
        for i, layer in enumerate(self.layers):
            shape = layer.output_shape(shape) if shape is not None else None
            rows.append((f"{i}: {layer.describe()}", "?" if shape is None else str(shape), f"{layer.num_params():,}"))
        w = [max(len(r[i]) for r in rows) for i in range(3)]
        lines = [f"{a:<{w[0]}}  {b:<{w[1]}}  {c:>{w[2]}}" for a, b, c in rows]
        lines.insert(1, "-" * len(lines[0]))
        lines.append("-" * len(lines[0]))
        lines.append(f"Total parameters: {self.num_params():,}")
        text = "\n".join(lines)
        print(text, file=file or sys.stdout)
        return text

    # ---- forward / backward --------------------------------------------------------------
    def _fused_softmax(self):
        """CE on a model ending in softmax: train on the logits, skip that last layer."""
        last = self.layers[-1] if self.layers else None
        return self.loss == "ce" and isinstance(last, Activation) and last.name == "softmax"

    def _trained_layers(self, logits):
        """The layers a forward pass runs: all, or all but a final softmax fused into CE."""
        return self.layers[:-1] if (logits and self._fused_softmax()) else self.layers

    def forward(self, x, training=False, logits=False, keep=True):
        """Run the layers. logits=True stops before a final softmax fused into CE; keep=False
        (inference only) lets the layers drop what only a backward pass needs, and splits the
        batch over the CPU's cores (parallel.py)."""
        if training and not keep:
            raise ValueError("keep=False is for inference: training needs the backward caches")
        if not keep:
            n = len(self._trained_layers(logits))
            spans, layers = self._split(x.shape[0])

            def infer(i):
                out = x[slice(*spans[i])]
                for layer in layers[i][:n]:
                    out = layer.infer(out)
                return out
            outs = parallel.run(infer, len(spans))
            return outs[0] if len(outs) == 1 else backend.get_array_module(x).concatenate(outs)
        for layer in self._trained_layers(logits):
            x = layer.forward(x, training)
        return x

    def backward(self, dout, logits=False):
        return _backward(self._trained_layers(logits), dout)

    def _split(self, n):
        """(spans, layer lists) of the parts a batch of n samples runs as: one part (the model's
        own layers) on the GPU, with batch norm, for batches under 2 * parallel.MIN_PART, or
        on one core."""
        p = 1 if self.backend != "numpy" else parallel.parts(n)
        if p == 1 or any(isinstance(layer, BatchNorm) for layer in self.layers):
            return [(0, n)], [self.layers]
        self._replicas = parallel.replicas(self.layers, p, self._replicas)
        parallel.share_weights(self._replicas)
        return parallel.bounds(n, p), self._replicas

    def _loss(self, out, labels):
        """(loss, dL/dout, number of correct predictions) as arrays on the device."""
        return loss_and_correct(self.loss, out, labels, self.paper_j)

    def hessian_diagonal(self, x, labels, batch_size=100):
        """Diagonal Gauss-Newton estimate of d2E/dw^2 for every parameter, E the mean loss over
        the samples (x, labels) (device arrays): the paper's h_kk (appendix C), averaged over
        the samples. One list of arrays, in the order of `self.params`. Used by SDLM.
        """
        if self.loss is None:
            raise RuntimeError("call model.compile(loss=...) before estimating second derivatives")
        xp = backend.get_array_module(x)
        n = x.shape[0]
        total = [xp.zeros_like(p.value) for p in self.params]
        layers = self._trained_layers(logits=True)
        for start in range(0, n, batch_size):
            xb, yb = x[start:start + batch_size], labels[start:start + batch_size]
            out = self.forward(xb, training=True, logits=True)
            d2 = loss_hessian_diagonal(self.loss, out, yb, self.paper_j)
            own = loss_squares_gradient(self.loss, out, yb)    # for an RBF output's own curvature
            for i in range(len(layers) - 1, -1, -1):
                d2 = layers[i].backward_hessian(d2, dy=own if i == len(layers) - 1 else None,
                                                need_dx=i > 0)
            for t, p in zip(total, self.params):
                t += p.hess * (xb.shape[0] / n)      # chunk mean -> mean over all n samples
        return total

    def train_step(self, x, labels):
        """One forward, backward and update on a batch (device arrays) -> (loss, n_correct)."""
        if self.loss is None or self.optimizer is None:
            raise RuntimeError("call model.compile(loss=..., optimizer=...) before training")
        self.optimizer.prepare(self.params)
        return self.device_step(x, labels)

    def device_step(self, x, labels):
        """train_step's device work, with the optimizer already prepared: the part a CUDA graph
        captures (lenet_gpu/step.py). -> (loss, n_correct) as 0-d device arrays.
        On the CPU the batch is split over the cores (parallel.py): each part's gradient of its
        share of the batch's mean loss, summed over the parts in order."""
        n = x.shape[0]
        cut = len(self._trained_layers(logits=True))
        spans, layers = self._split(n)

        def part(i):
            start, stop = spans[i]
            out = x[start:stop]
            for layer in layers[i][:cut]:
                out = layer.forward(out, True)
            loss, grad, correct = self._loss(out, labels[start:stop])
            share = (stop - start) / n      # the part's mean -> its share of the batch's mean
            if len(spans) > 1:
                loss, grad = loss * share, grad * share
            _backward(layers[i][:cut], grad)
            return loss, correct
        results = parallel.run(part, len(spans))
        loss, correct = results[0]
        for i in range(1, len(spans)):
            loss, correct = loss + results[i][0], correct + results[i][1]
            for q, t in zip(self.params, (t for layer in layers[i] for t in layer.params)):
                q.grad = q.grad + t.grad
        self.optimizer.update(self.params)
        return loss, correct

    # ---- data helpers --------------------------------------------------------------------
    def _device_data(self, x, y=None, what="inputs", allow_empty=False):
        """x (and labels y) checked and moved to the model's device: x float of the model's
        input shape with finite values, y integers in [0, outputs). ValueError names the problem."""
        if not backend.is_gpu_array(x):
            try:
                x = np.asarray(x)
            except (TypeError, ValueError) as e:
                raise ValueError(f"{what} are not an array of numbers ({e})") from None
        if x.ndim != 1 + len(self.input_shape or x.shape[1:]) or (
                self.input_shape and tuple(x.shape[1:]) != self.input_shape):
            raise ValueError(f"{what} have shape {tuple(x.shape)}; the model expects "
                             f"(N, {', '.join(map(str, self.input_shape))})")
        if x.shape[0] == 0 and not allow_empty:
            raise ValueError(f"{what} are empty (0 samples)")
        if x.dtype.kind != "f":
            hint = (" (0..255 pixels: scale them first, e.g. lenet_gpu.data.preprocess, as the "
                    "model's training data were)" if x.dtype == np.uint8 else "")
            raise ValueError(f"{what} must be floating point, got {x.dtype}{hint}")
        finite = backend.get_array_module(x).isfinite(x).all(axis=tuple(range(1, x.ndim)))
        if not bool(finite.all()):
            bad = int(np.argmin(backend.to_cpu(finite)))
            raise ValueError(f"{what} contain NaN or infinite values (first in sample {bad})")
        xd = backend.to_backend(x.astype(self.dtype, copy=False), self.backend)
        if y is None:
            return xd
        y = backend.to_cpu(y)
        if y.shape != (x.shape[0],):
            raise ValueError(f"labels must have shape ({x.shape[0]},) to match the {what}, got {y.shape}")
        if y.dtype.kind == "f":
            whole = np.isfinite(y) & (y == np.round(y))
            if not whole.all():
                bad = int(np.argmin(whole))
                raise ValueError(f"labels must be whole numbers, got label[{bad}] = {y[bad]}")
        elif y.dtype.kind not in "iu":
            raise ValueError(f"labels must be integers, got {y.dtype}")
        n_out = self.output_shape()[0] if self.input_shape else None
        if y.min() < 0 or (n_out and y.max() >= n_out):
            raise ValueError(f"labels must be integers in [0, {n_out}), got range "
                             f"[{y.min()}, {y.max()}]")
        return xd, backend.to_backend(y.astype(np.int64), self.backend)

    # ---- training and evaluation ---------------------------------------------------------
    def fit(self, x, y, epochs=1, batch_size=32, validation_data=None, shuffle=True, seed=None,
            verbose=None, callback=None, augment=None, graph=None):
        """Train; returns the history (a dict of lists, one entry per epoch).

        Each epoch takes the samples in batches of batch_size; when n % batch_size == 1 the lone
        last sample joins the batch before it (see batch_bounds), so every sample is used and
        batch norm always sees at least 2 samples.
        shuffle: True draws a new order every epoch; "once" draws one and keeps it for every
        epoch (the paper's "constant random order", appendix C); False keeps the data's order.
        augment(x_batch, rng) -> x_batch, e.g. augment.make_augment("elastic"), distorts each
        training batch (with its own generator, seeded from `seed`); an augment with
        per_sample = True (augment.FixedAffineCopies) is called as augment(x_batch,
        sample_indices, epoch) instead.
        graph: None (default) runs the full batches through a StaticStep (lenet_gpu/step.py),
        captured once as a CUDA graph and replayed, on the GPU, and eagerly on NumPy; False runs
        every step eagerly; True also runs the static step on NumPy (the CPU tests compare it
        with the eager one). Both give the same numbers.
        verbose: None = a progress bar on a terminal, a line per epoch otherwise; 0 = silent.
        callback(epoch, record, model) is called after every epoch (e.g. to save a checkpoint).
        Raises TrainingDiverged (with the last good weights restored) if the loss is not finite.
        """
        batch_size = _size("fit", "batch_size", batch_size)
        epochs = _size("fit", "epochs", epochs, minimum=0)
        if shuffle not in (True, False, "once"):
            raise ValueError(f"shuffle must be True, False or 'once', got {shuffle!r}")
        if self.loss is None or self.optimizer is None:
            raise RuntimeError("call model.compile(loss=..., optimizer=...) before training")
        if self.backend == "numpy":
            backend.tune_cpu_allocator()
        xd, yd = self._device_data(x, y, "training inputs")
        if validation_data is not None:       # moved to the device once, not every epoch
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                raise ValueError("validation_data must be a pair (x, y)")
            validation_data = self._device_data(*validation_data, what="validation inputs")
        n = xd.shape[0]
        self._check_batch_norm_batch(min(batch_size, n))
        start_loss = self._untrained_loss(xd[:batch_size], yd[:batch_size])
        batches = batch_bounds(n, batch_size)
        xp = backend.get_array_module(xd)
        static = graph if graph is not None else self.backend == "cupy"
        step = StaticStep(self, min(batch_size, n), capture=graph is not False,
                          sample_shape=xd.shape[1:])
        rng = np.random.default_rng(self.seed if seed is None else seed)
        kept_order = rng.permutation(n) if shuffle == "once" else None
        aug_rng = np.random.default_rng([self.seed if seed is None else seed, 1]) if augment else None
        verbose = (1 if sys.stderr.isatty() else 2) if verbose is None else verbose
        history = {k: [] for k in ("epoch", "lr", "train_loss", "train_error_pct", "test_loss",
                                   "test_error_pct", "seconds")}
        for epoch in range(1, epochs + 1):
            snapshot = self._snapshot()
            t0 = time.perf_counter()
            if self.optimizer is not None:      # SDLM: learning rate and second derivatives
                self.optimizer.start_epoch(epoch, self, xd, yd)
            step.reset()
            # the epoch's order goes to the device once: no host synchronisation per batch
            order_host = kept_order if kept_order is not None else \
                rng.permutation(n) if shuffle else np.arange(n)
            order = xp.asarray(order_host)

            def distort(xb, start, stop):
                if getattr(augment, "per_sample", False):
                    return augment(xb, order_host[start:stop], epoch)
                return augment(xb, aug_rng)
            todo = batches
            if verbose == 1:
                from tqdm.auto import tqdm
                todo = tqdm(batches, desc=f"epoch {epoch}/{epochs}", unit="batch", leave=True,
                            file=sys.stderr)
            # a diverging run overflows: that is reported after the epoch, not warned here
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                for start, stop in todo:
                    idx = order[start:stop]
                    if static and stop - start == step.batch_size:
                        if augment is None:
                            step.feed(xd, yd, idx)
                        else:
                            step.feed(distort(xd[idx], start, stop), yd[idx])
                        step()
                    else:
                        xb = xd[idx] if augment is None else distort(xd[idx], start, stop)
                        loss, c = self.train_step(xb, yd[idx])
                        step.add(loss, c, stop - start)
            loss_sum, correct = step.loss_sum, step.correct
            train_loss = float(loss_sum) / n        # the one host synchronisation of the epoch
            if not math.isfinite(train_loss):
                self._restore(snapshot)
                raise TrainingDiverged(epoch, history)
            if train_loss > DIVERGENCE_FACTOR * max(start_loss, 1.0):
                self._restore(snapshot)
                raise TrainingDiverged(epoch, history, f"blew up to {train_loss:.4g}, more than "
                                       f"{DIVERGENCE_FACTOR:g}x the untrained network's "
                                       f"{start_loss:.4g}")
            record = {"epoch": epoch, "lr": self.optimizer.lr, "train_loss": train_loss,
                      "train_error_pct": 100.0 * (1 - int(correct) / n),
                      **self.optimizer.epoch_info()}
            if validation_data is not None:
                ev = self.evaluate(*validation_data)
                record.update(test_loss=ev["loss"], test_error_pct=ev["error_pct"])
            record["seconds"] = time.perf_counter() - t0
            for k in history:
                history[k].append(record.get(k))
            if verbose:
                line = (f"epoch {epoch}/{epochs}: train loss {train_loss:.4f}, "
                        f"train error {record['train_error_pct']:.2f}%")
                if validation_data is not None:
                    line += f", test error {record['test_error_pct']:.2f}%"
                print(line + f" ({record['seconds']:.1f} s)", file=sys.stderr if verbose == 1 else sys.stdout,
                      flush=True)
            if callback is not None:
                callback(epoch, record, self)
        return history

    def _untrained_loss(self, x, labels):
        """The loss on one batch before training (inference mode), the yardstick of divergence."""
        with np.errstate(all="ignore"):
            return float(self._loss(self.forward(x, logits=True), labels)[0])

    def _check_batch_norm_batch(self, batch_size):
        """Batch norm in training normalises over the batch: a layer that sees one value per
        channel per sample (BatchNorm after a Dense layer, or on 1x1 maps) needs >= 2 samples."""
        shape = self.input_shape
        for i, layer in enumerate(self.layers):
            if shape is not None and isinstance(layer, BatchNorm) and batch_size < 2 \
                    and int(np.prod(shape[1:])) == 1:
                raise ValueError(f"layer {i} ({layer.describe()}) normalises over the batch, so "
                                 f"training needs at least 2 samples per batch; got batches of "
                                 f"{batch_size}")
            shape = layer.output_shape(shape) if shape is not None else None

    def _snapshot(self):
        xp = backend.get_array_module(*(p.value for p in self.params))
        return [xp.copy(p.value) for p in self.params] + \
               [xp.copy(b) for layer in self.layers for b in layer.buffers.values()]

    def _restore(self, snapshot):
        arrays = [p.value for p in self.params] + \
                 [b for layer in self.layers for b in layer.buffers.values()]
        for dst, src in zip(arrays, snapshot):
            dst[...] = src

    def evaluate(self, x, y, batch_size=1000):
        """-> {"loss", "error_pct", "accuracy", "n"} in inference mode."""
        batch_size = _size("evaluate", "batch_size", batch_size)
        xd, yd = self._device_data(x, y)
        xp = backend.get_array_module(xd)
        loss_sum, correct = xp.zeros((), np.float64), xp.zeros((), np.int64)
        for start in range(0, xd.shape[0], batch_size):
            out = self.forward(xd[start:start + batch_size], logits=True, keep=False)
            loss, _, c = self._loss(out, yd[start:start + batch_size])
            loss_sum += loss * out.shape[0]
            correct += c
        n = xd.shape[0]
        acc = int(correct) / n
        return {"loss": float(loss_sum) / n, "error_pct": 100.0 * (1 - acc), "accuracy": acc, "n": n}

    def predict(self, x, batch_size=1000):
        """Network outputs as a NumPy array: class probabilities for a softmax model, penalties
        (RBF distances) for a "paper" model, whose predicted class is then `.argmin(axis=1)`."""
        batch_size = _size("predict", "batch_size", batch_size)
        xd = self._device_data(x, allow_empty=True)
        if xd.shape[0] == 0:
            return np.zeros((0,) + self.output_shape(), self.dtype)
        outs = [backend.to_cpu(self.forward(xd[s:s + batch_size], keep=False))
                for s in range(0, xd.shape[0], batch_size)]
        return np.concatenate(outs)

    # ---- save / load ---------------------------------------------------------------------
    def architecture(self):
        return {"format": FORMAT, "input_shape": self.input_shape, "seed": self.seed,
                "dtype": self.dtype.name, "loss": self.loss, "paper_j": self.paper_j,
                "layers": [{"class": type(l).__name__, "config": l.config()} for l in self.layers],
                "meta": self.meta}

    def save(self, path):
        """Write architecture and weights to one .npz, atomically (a crash never leaves a
        half-written file in place of a good one)."""
        path = os.fspath(path)
        arrays = {"architecture": np.array(json.dumps(self.architecture()))}
        for i, layer in enumerate(self.layers):
            for p in layer.params:
                arrays[f"layers.{i}.{p.name}"] = backend.to_cpu(p.value)
            for name, b in layer.buffers.items():
                arrays[f"layers.{i}.{name}"] = backend.to_cpu(b)
        atomic_write(path, lambda f: np.savez(f, **arrays))
        return path

    @classmethod
    def load(cls, path, backend_name=None):
        """Rebuild a saved model (no pickle, no user code needed).

        The file is checked before anything is built: the architecture record, each layer's
        class and settings, and the shape and dtype of every array against what the layers
        declare, from the arrays' headers alone. A bad file raises ValueError naming the file
        and the problem, having allocated no more than the file holds."""
        path = os.fspath(path)
        with NpzReader(path) as f:
            arch = None
            if "architecture" in f.headers and f.headers["architecture"][1].kind == "U":
                try:
                    arch = json.loads(str(f.read("architecture")))
                except ValueError:
                    pass
            if not isinstance(arch, dict) or arch.get("format") != FORMAT:
                raise ValueError(f"{path} is not a lenet-gpu model (no '{FORMAT}' architecture record)")
            layers, shape, dtype = _layers_from_architecture(path, arch)
            expected = {f"layers.{i}.{name}": s
                        for i, layer in enumerate(layers) for name, s in layer.array_shapes().items()}
            found = {k: v for k, v in f.headers.items() if k != "architecture"}
            for key, want in expected.items():
                if key not in found:
                    raise ValueError(f"{path}: missing array {key!r}")
                got, got_dtype = found[key]
                if got != tuple(want):
                    raise ValueError(f"{path}: {key} has shape {got}, expected {tuple(want)}")
                if got_dtype.kind != "f":
                    raise ValueError(f"{path}: {key} has dtype {got_dtype}, expected floats")
            if set(found) - set(expected):
                raise ValueError(f"{path}: unexpected arrays {sorted(set(found) - set(expected))}")
            model = cls(input_shape=shape, seed=arch.get("seed", 0), backend_name="numpy", dtype=dtype)
            for i, layer in enumerate(layers):
                model.add(layer)
                for p in layer.params:
                    p.value[...] = f.read(f"layers.{i}.{p.name}")
                for name, b in layer.buffers.items():
                    b[...] = f.read(f"layers.{i}.{name}")
        model.loss, model.meta = arch.get("loss"), arch.get("meta") or {}
        model.paper_j = float(arch.get("paper_j", 1.0))  # files without it were trained at j = 1
        if backend_name is not None or backend.get_backend() != "numpy":
            model.to(backend_name or backend.get_backend())
        return model


def _backward(layers, dout):
    """Backward through `layers` from dL/d(their output); the first layer skips dx."""
    for i in range(len(layers) - 1, -1, -1):
        dout = layers[i].backward(dout, need_dx=i > 0)
    return dout


def _layers_from_architecture(path, arch):
    """(layers, input shape, dtype) of an architecture record, each layer constructed (nothing
    allocated yet) after its class and settings were checked; ValueError names what is wrong."""
    def bad(what):
        return ValueError(f"{path}: bad architecture record: {what}")
    shape = arch.get("input_shape")
    if not (isinstance(shape, list) and len(shape) in (1, 3)
            and all(isinstance(d, int) and 0 < d <= 1 << 16 for d in shape)):
        raise bad(f"input_shape must be 1 or 3 sizes in 1..65536, got {shape!r}")
    dtype = arch.get("dtype", "float32")
    if dtype not in ("float32", "float64"):
        raise bad(f"dtype must be float32 or float64, got {dtype!r}")
    if arch.get("loss") not in (None, *LOSSES):
        raise bad(f"unknown loss {arch.get('loss')!r}")
    if not isinstance(arch.get("meta", {}), (dict, type(None))):
        raise bad("meta must be an object")
    specs = arch.get("layers")
    if not isinstance(specs, list) or not specs:
        raise bad("layers must be a non-empty list")
    layers = []
    for i, spec in enumerate(specs):
        if not isinstance(spec, dict) or not isinstance(spec.get("config", {}), dict):
            raise bad(f"layer {i} must be an object with 'class' and 'config'")
        name, config = spec.get("class"), spec.get("config", {})
        if name not in LAYERS:
            raise ValueError(f"{path}: unknown layer class {name!r} at position {i}")
        params = {p: v for p, v in inspect.signature(LAYERS[name].__init__).parameters.items()
                  if v.kind not in (v.VAR_POSITIONAL, v.VAR_KEYWORD)}
        unknown = sorted(set(config) - set(params) - {"self"})
        missing = [p for p, v in params.items() if p != "self" and v.default is v.empty and p not in config]
        if unknown or missing:
            raise bad(f"layer {i} ({name}): " + "; ".join(
                ([f"unknown setting(s) {unknown}"] if unknown else []) +
                ([f"missing setting(s) {missing}"] if missing else [])))
        try:
            layers.append(LAYERS[name](**config))
        except (TypeError, ValueError, OverflowError) as e:
            raise bad(f"layer {i} ({name}): {e}") from None
    return layers, tuple(shape), dtype
