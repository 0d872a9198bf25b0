"""The NumPy engine on several cores: a batch split into parts, one thread per part.

NumPy runs each operation on one core (only its BLAS products use more). A training step at
batch B is therefore split into P parts of about B/P samples, P the number of cores: each part
runs forward and backward on its own thread, through its own copy of the layers (the same
weight arrays, its own caches and gradients), and the parts' gradients are summed in a fixed
order before one optimizer update. NumPy releases the interpreter lock inside its loops and
BLAS calls, so the threads really run side by side; BLAS is held to one thread meanwhile, or
P threads would each start BLAS workers on the same cores. Inference splits its batches the
same way.

This is the gradient of the same mean loss, summed in another order: it equals the one-thread
step up to rounding, and a run is repeatable on a machine (P is fixed by the core count; set
LENET_GPU_THREADS=1 for the one-thread step, or to a number to fix P). Layers that couple the
samples of a batch (BatchNorm) keep the one-thread step, and so does the GPU.
"""
import copy
import ctypes
import os
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager

import numpy as np

MIN_PART = 32           # samples per part: parts of 10 were slower than one thread, 32 faster

_pool, _pool_size = None, 0      # the worker threads (part 0 runs on the caller's thread)
_blas = None            # (set_num_threads, get_num_threads) of the loaded OpenBLAS, or False


def cpu_threads():
    """Threads the NumPy engine may use: LENET_GPU_THREADS, else the cores this process may run
    on. A bad LENET_GPU_THREADS is a ValueError naming it."""
    text = os.environ.get("LENET_GPU_THREADS", "").strip()
    if text:
        try:
            n = int(text)
        except ValueError:
            n = 0
        if n < 1:
            raise ValueError(f"LENET_GPU_THREADS must be a whole number >= 1, got {text!r}")
        return n
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:                    # not Linux
        return os.cpu_count() or 1


def parts(batch_size):
    """How many parts a batch of this size is split into (1: the one-thread step)."""
    threads = cpu_threads()                   # first: a bad LENET_GPU_THREADS is an error everywhere
    if _openblas() is False:                  # BLAS threads not ours to hold: stay on one thread
        return 1
    return max(1, min(threads, batch_size // MIN_PART))


def bounds(n, p):
    """(start, stop) of p nearly equal parts of n samples, the larger parts first."""
    q, r = divmod(n, p)
    edges = [0]
    for i in range(p):
        edges.append(edges[-1] + q + (i < r))
    return list(zip(edges[:-1], edges[1:]))


def run(fn, p):
    """[fn(0), ..., fn(p - 1)], part 0 on this thread and the others on the pool's threads,
    with BLAS on one thread and this thread's floating-point error settings (np.errstate)."""
    global _pool, _pool_size
    if p == 1:
        return [fn(0)]
    if _pool_size < p - 1:
        if _pool is not None:
            _pool.shutdown(wait=False)
        _pool, _pool_size = ThreadPoolExecutor(p - 1, thread_name_prefix="lenet-gpu"), p - 1
    errors = np.geterr()

    def call(i):
        with np.errstate(**errors):
            return fn(i)
    with blas_threads(1):
        futures = [_pool.submit(call, i) for i in range(1, p)]
        try:
            first = fn(0)
        finally:
            wait(futures)                     # no part is still running when this returns
    return [first] + [f.result() for f in futures]


def replicas(layers, p, old=None):
    """p lists of layers for p parts: the layers themselves, then copies that share every
    parameter's array (and buffers) but hold their own caches and gradients. `old` (the
    previous result) is reused when it was made for these layers."""
    if old is not None and len(old) >= p and all(a is b for a, b in zip(old[0], layers)) \
            and len(old[0]) == len(layers):
        return old
    return [list(layers)] + [[_copy(layer) for layer in layers] for _ in range(p - 1)]


def _copy(layer):
    twin = copy.copy(layer)
    twin.params = [copy.copy(q) for q in layer.params]
    for q in twin.params:
        q.grad = q.hess = None
    return twin


def share_weights(replica_lists):
    """Point every copy's parameters at the current weight arrays (an optimizer or a restore
    may have replaced them)."""
    first = replica_lists[0]
    for layers in replica_lists[1:]:
        for layer, twin in zip(first, layers):
            for q, t in zip(layer.params, twin.params):
                t.value = q.value


@contextmanager
def blas_threads(n):
    """Hold the loaded OpenBLAS to n threads inside the block (nothing if none is found)."""
    found = _openblas()
    if not found:
        yield
        return
    set_threads, get_threads = found
    before = get_threads()
    set_threads(n)
    try:
        yield
    finally:
        set_threads(before)


def _openblas():
    """(set, get) thread-count functions of the OpenBLAS NumPy uses, found by name in this
    process's loaded libraries (Linux); False when there is none (another BLAS, another OS)."""
    global _blas
    if _blas is not None:
        return _blas
    _blas = False
    try:
        with open("/proc/self/maps") as f:
            paths = {line.split()[-1] for line in f if "openblas" in line.lower()}
    except OSError:
        return _blas
    for path in sorted(paths):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for name in ("scipy_openblas_{}_num_threads64_", "openblas_{}_num_threads64_",
                     "openblas_{}_num_threads"):
            try:
                set_threads, get_threads = (getattr(lib, name.format(w)) for w in ("set", "get"))
            except AttributeError:
                continue
            set_threads.argtypes, set_threads.restype = [ctypes.c_int], None
            get_threads.argtypes, get_threads.restype = [], ctypes.c_int
            _blas = (set_threads, get_threads)
            return _blas
    return _blas
