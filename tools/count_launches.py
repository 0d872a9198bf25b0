#!/usr/bin/env python3
"""How many GPU kernels one training step launches, and where: the number a captured CUDA
graph replays, and at LeNet-5's size the step's cost (lenet_gpu/step.py). Runs under the CPU
emulator, whose stand-in CuPy arrays are NumPy arrays underneath, so every array operation
can be counted without a GPU:

    GPU_EMU=1 PYTHONPATH=../shared/tools/gpu_emu/fake:. python3 tools/count_launches.py [CONFIG ...]

It counts our kernels (lenet_gpu.cuda.launch) and the CuPy array operations, each one kernel
on a GPU: ufuncs and their reductions, argmax, fill, astype, copy and element assignment.
(A real CuPy launches a kernel for each of those too; an operation it does without one, a
view or a reshape, is not counted here either.) The step is the second one, after the first
has created the optimizer's state, as a capture would record it.
"""
import argparse
import collections
import sys
import traceback
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

CONFIGS = {   # name -> (lenet5 options, loss, optimizer)
    "tanh-mse": (dict(activation="tanh", output="tanh"), "mse", "sgd"),
    "relu-ce": (dict(activation="relu"), "ce", "sgd"),
    "relu-ce-bn": (dict(activation="relu", batchnorm=True), "ce", "sgd"),
    "recipe": (dict(activation="relu", batchnorm=True), "ce", "nesterov"),   # the fast recipe
    "relu-ce-bn-adam": (dict(activation="relu", batchnorm=True), "ce", "adam"),
}


def count(config, batch=20):
    """-> Counter {(kind, operation, where in lenet_gpu): launches} of one training step."""
    try:
        import cupy
    except ImportError:
        cupy = None
    if cupy is None or not cupy.__version__.endswith("+gpu_emu"):
        raise SystemExit("count_launches needs the emulator's stand-in CuPy: run it as the "
                         "module docstring says")
    import lenet_gpu as L
    from lenet_gpu import cuda
    from lenet_gpu.optim import make_optimizer
    from lenet_gpu.step import StaticStep

    counts, active = collections.Counter(), [False]

    def where():
        for frame in reversed(traceback.extract_stack()[:-2]):
            if "lenet_gpu" in frame.filename and "count_launches" not in frame.filename:
                return f"{frame.filename.split('lenet_gpu/')[-1]}:{frame.name}"
        return "?"

    def plain(a):
        return a.view(np.ndarray) if isinstance(a, cupy.ndarray) else a

    def array_ufunc(self, ufunc, method, *inputs, **kw):
        if active[0]:
            counts[("cupy", f"{ufunc.__name__}.{method}", where())] += 1
        out = kw.get("out")
        if out is not None:
            kw["out"] = tuple(map(plain, out))
        r = getattr(ufunc, method)(*map(plain, inputs), **kw)
        if out is not None:
            return out[0] if len(out) == 1 else out
        return np.asarray(r).view(cupy.ndarray) if isinstance(r, (np.ndarray, np.generic)) else r

    def counted_method(name):
        method = getattr(np.ndarray, name)

        def f(self, *a, **k):
            if active[0]:
                counts[("cupy", name, where())] += 1
            return method(self, *a, **k)
        return f

    real_launch = cuda.launch

    def launch(filename, name, *a, **k):
        if active[0]:
            counts[("ours", name, where())] += 1
        return real_launch(filename, name, *a, **k)

    methods = ("__array_ufunc__", "fill", "astype", "copy", "__setitem__", "argmax", "argmin", "take")
    saved = {name: cupy.ndarray.__dict__.get(name) for name in methods}
    try:
        cupy.ndarray.__array_ufunc__ = array_ufunc
        for name in methods[1:]:
            setattr(cupy.ndarray, name, counted_method(name))
        cuda.launch = launch
        options, loss, optimizer = CONFIGS[config]
        model = L.lenet5(backend_name="cupy", **options).compile(loss, make_optimizer(optimizer, 0.01))
        rng = np.random.default_rng(0)
        x = cupy.asarray(rng.random((batch, 1, 28, 28), dtype=np.float32))
        labels = cupy.asarray(rng.integers(0, 10, batch))
        step = StaticStep(model, batch, capture=False)
        step.feed(x, labels)
        step()
        active[0] = True
        step()
        active[0] = False
    finally:
        cuda.launch = real_launch
        for name, method in saved.items():
            if method is None:
                delattr(cupy.ndarray, name)
            else:
                setattr(cupy.ndarray, name, method)
    return counts


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("configs", nargs="*", default=list(CONFIGS), metavar="CONFIG",
                    help=f"any of {', '.join(CONFIGS)} (default: all)")
    ap.add_argument("--batch", type=int, default=20)
    ap.add_argument("--detail", action="store_true", help="each operation and where it runs")
    args = ap.parse_args(argv)
    unknown = [c for c in args.configs if c not in CONFIGS]
    if unknown:
        ap.error(f"unknown CONFIG {' '.join(unknown)}; choose from {', '.join(CONFIGS)}")
    for config in args.configs:
        counts = count(config, args.batch)
        ours = sum(v for k, v in counts.items() if k[0] == "ours")
        print(f"{config}: {sum(counts.values())} launches per step ({ours} our kernels, "
              f"{sum(counts.values()) - ours} CuPy operations), batch {args.batch}")
        if args.detail:
            for (kind, op, at), n in sorted(counts.items(), key=lambda kv: kv[0][2]):
                print(f"  {n:3d}  {kind:4s}  {op:40s} {at}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
