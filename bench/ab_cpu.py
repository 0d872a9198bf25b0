"""Our NumPy engine against an older version of itself, alternated in one process.

    git worktree add /tmp/old REV
    python bench/ab_cpu.py /tmp/old            # about a minute on 2 cores

On a shared machine two processes minutes apart differ by 20% or more; alternating the two
versions call by call in one process and taking medians leaves the ratio. Prints the median ms
of `evaluate` (10,000 images, batch 1000) and of a training step at batch 20, 128 and 1024,
LeNet-5 tanh + CE + SGD, for the old tree and this one.
"""
import os
import shutil
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_old(tree):
    """The old tree's package, imported as lenet_gpu_old (it imports itself relatively)."""
    tmp = tempfile.mkdtemp()
    shutil.copytree(os.path.join(tree, "lenet_gpu"), os.path.join(tmp, "lenet_gpu_old"))
    sys.path.insert(0, tmp)
    import lenet_gpu_old
    return lenet_gpu_old


def medians(fns, rounds):
    t = {k: [] for k in fns}
    for _ in range(rounds):
        for k, f in fns.items():
            s = time.perf_counter()
            f()
            t[k].append(time.perf_counter() - s)
    return {k: 1e3 * float(np.median(v)) for k, v in t.items()}


def main(old_tree):
    old = load_old(old_tree)
    sys.path.insert(0, HERE)
    import lenet_gpu as new
    new.backend.tune_cpu_allocator()
    rng = np.random.default_rng(0)
    x = rng.random((10_000, 1, 28, 28), dtype=np.float32) * 0.3
    y = rng.integers(0, 10, 10_000)
    models = {}
    for name, L in (("old", old), ("new", new)):
        models[name] = L.lenet5(activation="tanh", backend_name="numpy")
        models[name].compile("ce", L.SGD(0.01))
        models[name].evaluate(x, y)                     # warm up
    rows = [("evaluate 10k", medians({k: (lambda m=m: m.evaluate(x, y, batch_size=1000))
                                       for k, m in models.items()}, 7))]
    for B in (20, 128, 1024):
        rows.append((f"step batch {B}", medians({k: (lambda m=m: m.train_step(x[:B], y[:B]))
                                                 for k, m in models.items()}, max(7, 2000 // B))))
    print(f"{'median ms':<16} {'old':>9} {'new':>9} {'new/old':>8}")
    for name, r in rows:
        print(f"{name:<16} {r['old']:>9.2f} {r['new']:>9.2f} {r['new'] / r['old']:>8.2f}")


if __name__ == "__main__":
    if len(sys.argv) != 2 or not os.path.isdir(os.path.join(sys.argv[1], "lenet_gpu")):
        sys.exit("usage: python bench/ab_cpu.py OLD_TREE   (a directory with an older lenet_gpu/, "
                 "e.g. from `git worktree add /tmp/old REV`)")
    main(sys.argv[1])
