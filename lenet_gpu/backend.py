"""The NumPy/CuPy switch.

Arrays decide where an op runs: a CuPy array runs the GPU path, a NumPy array the CPU path
(`get_array_module`). The user decides where a *model* lives with `set_backend("auto" |
"numpy" | "cupy")`, the environment variable LENET_GPU_BACKEND or the CLI's --backend.
CuPy is optional: nothing here imports it unless a GPU is asked for.
"""
import os

import numpy as np

BACKENDS = ("auto", "numpy", "cupy")

_cupy = None          # the cupy module once imported successfully
_gpu_error = None     # why the GPU is not usable (str), once probed
_probed = False
_backend = None       # "numpy" or "cupy" once resolved


class BackendError(RuntimeError):
    """The requested backend cannot be used on this machine."""


def _probe():
    """Import CuPy and touch the device once; remember the outcome."""
    global _cupy, _gpu_error, _probed
    if _probed:
        return
    _probed = True
    try:
        import cupy
        n = cupy.cuda.runtime.getDeviceCount()
        if n < 1:
            raise RuntimeError("no CUDA device found")
        cupy.zeros(1).sum()  # fails here if the driver or runtime is unusable
        _cupy = cupy
    except Exception as e:  # ImportError, CUDARuntimeError, ...
        _gpu_error = f"{type(e).__name__}: {e}".strip()


def gpu_available():
    _probe()
    return _cupy is not None


def gpu_unavailable_reason():
    _probe()
    return _gpu_error


def device_name():
    """A human-readable name of the device the current backend computes on."""
    if get_backend() == "cupy":
        props = _cupy.cuda.runtime.getDeviceProperties(_cupy.cuda.Device().id)
        name = props["name"]
        return name.decode() if isinstance(name, bytes) else str(name)
    import platform
    return f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} threads)"


def resolve_backend(name=None):
    """Turn "auto" | "numpy" | "cupy" | None (= $LENET_GPU_BACKEND or "auto") into numpy/cupy."""
    if name is None:
        name = os.environ.get("LENET_GPU_BACKEND", "") or "auto"
    name = name.lower()
    if name not in BACKENDS:
        raise BackendError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    if name == "numpy":
        return "numpy"
    if gpu_available():
        return "cupy"
    if name == "cupy":
        raise BackendError(
            "backend 'cupy' was requested but no usable CUDA GPU was found "
            f"({gpu_unavailable_reason()}). Install the matching extra "
            "(pip install 'lenet-gpu[cuda12]' or '[cuda13]') on a machine with an NVIDIA GPU, "
            "or use --backend numpy.")
    return "numpy"


def set_backend(name="auto"):
    """Choose the backend for models built from now on; returns "numpy" or "cupy"."""
    global _backend
    _backend = resolve_backend(name)
    return _backend


def get_backend():
    if _backend is None:
        set_backend(None)
    return _backend


def xp():
    """The array module of the current backend."""
    return _cupy if get_backend() == "cupy" else np


def is_gpu_array(a):
    return _cupy is not None and isinstance(a, _cupy.ndarray)


def get_array_module(*arrays):
    """numpy or cupy, by the type of the arrays (any CuPy array makes it cupy)."""
    return _cupy if any(is_gpu_array(a) for a in arrays) else np


def to_cpu(a):
    return _cupy.asnumpy(a) if is_gpu_array(a) else np.asarray(a)


def to_gpu(a):
    if not gpu_available():
        raise BackendError(f"no usable CUDA GPU: {gpu_unavailable_reason()}")
    return _cupy.asarray(a)


def to_backend(a, backend=None):
    """Move an array to the given (default: current) backend."""
    return to_gpu(a) if (backend or get_backend()) == "cupy" else to_cpu(a)


_allocator_tuned = False


def tune_cpu_allocator():
    """Let glibc keep freed memory for reuse instead of returning it to the OS.

    A NumPy training step allocates and frees arrays of tens of MB (im2col matrices, layer
    outputs). By default glibc serves those with fresh mmap pages, so every step pays to fault
    in and zero them again: about 15% of a step at batch 1024. Raising the mmap and trim
    thresholds keeps them on the heap for reuse. Process-wide, Linux/glibc only, done once;
    set LENET_GPU_KEEP_MALLOC=1 to leave the allocator alone.
    """
    global _allocator_tuned
    if _allocator_tuned or os.environ.get("LENET_GPU_KEEP_MALLOC"):
        return
    _allocator_tuned = True
    try:
        import ctypes
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return                            # not glibc: nothing to tune
    M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3
    if not libc.mallopt(M_MMAP_THRESHOLD, 1 << 30):   # older glibc caps it at 32 MiB
        libc.mallopt(M_MMAP_THRESHOLD, 32 << 20)
    libc.mallopt(M_TRIM_THRESHOLD, 1 << 30)
    libc.mallopt(M_TOP_PAD, 64 << 20)
