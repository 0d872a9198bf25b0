"""A training step on fixed buffers, captured once as a CUDA graph and replayed for every batch.

At LeNet-5's size a GPU step is bound by kernel launches, not arithmetic: 47 to 65 small
kernels at batch 20 (tools/count_launches.py counts them), each costing more to launch from
Python than to run. A CUDA graph replays all of them with one launch. What capture needs, and how this step provides it:

- Fixed addresses. `feed` copies each batch into the step's own input buffers; the loss and
  correct-count accumulators are the step's own arrays, zeroed once per epoch (`reset`).
- No host work inside. Step-dependent scalars (the learning rate, Adam's bias corrections)
  live in device memory, written by `optimizer.prepare` before each replay (optim.py). The
  dense and RBF products are kernels of ours (ops/dense.py), not cuBLAS, which CuPy cannot
  capture; there are no host<->device copies and no random numbers in the step (distortions
  are applied to the batch in `feed`, outside the graph).
- Memory that stays put. Everything the step allocates while it is captured comes from a
  memory pool of its own, kept alive with the graph: nothing a replay writes is ever handed
  to another array (CuPy returns memory freed after a capture to its pool, cupy#8318, #9655).
- Compiled kernels. The first call runs eagerly (NVRTC builds every kernel, the optimizer
  makes its state), the second captures the step on a stream of its own and launches it,
  every later call replays it.

On NumPy the same step runs directly. It must give exactly what Sequential.train_step gives:
the CPU tests check the restructuring that way, and the GPU tests check that a captured run
equals an eager one bit for bit.
"""
import sys

import numpy as np


class StaticStep:
    """step = StaticStep(model, batch_size); step.reset(); step.feed(x, y); step(); ...
    then step.loss_sum and step.correct hold the epoch's sums (0-d device arrays)."""

    def __init__(self, model, batch_size, capture=True, sample_shape=None):
        xp = np if model.backend == "numpy" else _cupy()
        self.model, self.batch_size, self.xp = model, int(batch_size), xp
        shape = tuple(sample_shape or model.input_shape)
        self.x = xp.empty((self.batch_size, *shape), dtype=model.dtype)
        self.labels = xp.empty((self.batch_size,), dtype=np.int64)
        self.loss_sum = xp.zeros((), np.float64)
        self.correct = xp.zeros((), np.int64)
        self.capture = bool(capture) and xp is not np
        self.graph = None
        self.calls = 0

    def reset(self):
        """Zero the accumulators (start of an epoch)."""
        self.loss_sum.fill(0)
        self.correct.fill(0)

    def feed(self, x, labels, idx=None):
        """Copy a batch into the step's buffers: x[idx], labels[idx] (device arrays) with idx
        given, else x and labels themselves."""
        if idx is None:
            self.x[...] = x
            self.labels[...] = labels
        else:
            self.xp.take(x, idx, axis=0, out=self.x)
            self.xp.take(labels, idx, axis=0, out=self.labels)

    def add(self, loss, correct, n):
        """Add a batch's mean loss (times its n samples) and correct count to the sums."""
        self.loss_sum += loss * n
        self.correct += correct

    def _body(self):
        loss, correct = self.model.device_step(self.x, self.labels)
        self.add(loss, correct, self.batch_size)

    def __call__(self):
        """One training step on the fed batch."""
        self.model.optimizer.prepare(self.model.params)
        if self.capture and self.calls > 0:
            if self.graph is None:
                self._capture()
            if self.graph is not None:
                self.graph.launch(self.stream)
                self.calls += 1
                return
        self._body()
        self.calls += 1

    def _capture(self):
        """Record _body into a CUDA graph. If CuPy refuses something in it, say so once and
        go on eagerly: the step has not run yet (a capture records, it does not execute)."""
        cupy = _cupy()
        try:
            self.stream = cupy.cuda.Stream()     # blocking: ordered after the null stream's feed
            self.pool = cupy.cuda.MemoryPool()   # the graph's own memory, never lent to others
            with self.stream, cupy.cuda.using_allocator(self.pool.malloc):
                self.stream.begin_capture()
                try:
                    self._body()
                finally:
                    graph = self.stream.end_capture()
            self.graph = graph
        except Exception as e:
            self.capture = False
            print(f"lenet-gpu: could not capture the training step as a CUDA graph "
                  f"({type(e).__name__}: {e}); training goes on without one", file=sys.stderr)


def _cupy():
    import cupy
    return cupy
