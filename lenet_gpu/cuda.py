"""The one CUDA loader: reads kernels/*.cu, builds each cupy.RawModule once, launches kernels.

    launch("pool2d.cu", "pool2d_forward_max", grid, [
        ("x", x, F32), ("NC", N * C, INT), ..., ("y", y, F32), ("arg", arg, I32)])

Every argument is named, so a wrong one raises an error that says which: arrays must be CuPy
arrays of the declared dtype, C-contiguous (a raw kernel ignores strides) and on the current
device; scalars are passed as numpy.int32 / numpy.float32 (a Python float would reach a
`float` parameter as garbage, a Python int as a 64-bit value).

KERNELS lists every kernel of every file, template instances written exactly as they are
looked up; tools/check_kernels.py compiles the same list with nvcc, so the two cannot drift.
Nothing here imports CuPy at module import: `import lenet_gpu` works without it.
"""
import hashlib
from pathlib import Path

import numpy as np

THREADS = 256  # threads per block of every launch (LENET_THREADS in kernels/common.cuh)

# -DLENET_THREADS ties the kernels' block size to THREADS; the include path is added at build time.
OPTIONS = ("-std=c++17", f"-DLENET_THREADS={THREADS}")

KERNELS = {
    "conv2d.cu": [
        "conv2d_forward<5, 5, 8>", "conv2d_forward<5, 5, 1>",
        "conv2d_forward<0, 0, 8>", "conv2d_forward<0, 0, 1>",
        "conv2d_backward_data<5, 5>", "conv2d_backward_data<0, 0>",
        "conv2d_backward_weights<5, 5>", "conv2d_backward_weights<0, 0>",
        "conv2d_backward_bias", "sum_partials",
    ],
    "pool2d.cu": [
        "pool2d_forward_avg", "pool2d_forward_max", "pool2d_backward_avg", "pool2d_backward_max",
    ],
    "dense.cu": ["matmul<false, false>", "matmul<false, true>", "matmul<true, false>",
                 "matmul<true, true>"],
    "batch_norm.cu": [
        "bn_mean", "bn_var", "bn_grad", "bn_apply_train", "bn_apply_infer", "bn_backward_dx",
    ],
    "optim.cu": ["sgd_update", "adam_update", "sdlm_update"],
    "losses.cu": ["softmax_cross_entropy", "mse_onehot"],
    "activations.cu": ["activation_forward", "activation_backward"],
}

# argument kinds for launch()
# None for an optional array reaches the kernel as a null pointer: CuPy >= 14.0 passes it so
# (13.x passed 0xffffffff, cupy#9046; pyproject asks for 14.2)
F32, I32, I64, BOOL = "float32*", "int32*", "int64*", "bool*"   # device arrays ("?": None allowed)
F32_OPT, BOOL_OPT = F32 + "?", BOOL + "?"
INT, FLOAT = "int", "float"                          # scalars
_DTYPES = {F32: np.dtype(np.float32), I32: np.dtype(np.int32), I64: np.dtype(np.int64),
           BOOL: np.dtype(np.bool_)}

_INT32_MAX = 2 ** 31 - 1
_modules = {}    # (file, device id) -> cupy.RawModule
_functions = {}  # (file, name, device id) -> cupy.RawKernel


class KernelArgumentError(ValueError):
    """A kernel argument has the wrong type, dtype, layout or device."""


def kernel_dir():
    """kernels/ inside the installed package, else at the top of the source tree."""
    here = Path(__file__).resolve().parent
    for d in (here / "kernels", here.parent / "kernels"):
        if (d / "common.cuh").is_file():
            return d
    raise FileNotFoundError(f"CUDA kernel sources not found in {here / 'kernels'} or "
                            f"{here.parent / 'kernels'}; the installation is incomplete")


def template_instances(filename):
    return [name for name in KERNELS[filename] if "<" in name]


def get_module(filename):
    """The compiled RawModule of kernels/<filename> on the current device (built once)."""
    import cupy
    key = (filename, cupy.cuda.Device().id)
    if key not in _modules:
        if filename not in KERNELS:
            raise KeyError(f"unknown kernel file {filename!r}; known: {', '.join(KERNELS)}")
        d = kernel_dir()
        # CuPy caches compiled modules by source text, and common.cuh is only included: its hash
        # in a comment makes an edit to it rebuild every module
        header = hashlib.sha1((d / "common.cuh").read_bytes()).hexdigest()
        code = (f"// common.cuh sha1 {header}\n"
                f'#line 1 "kernels/{filename}"\n' + (d / filename).read_text())
        # every kernel is a name expression (templates must be; listing the extern "C" ones too
        # is CuPy's documented form and makes each lookup go through NVRTC's lowered names)
        _modules[key] = cupy.RawModule(code=code, options=OPTIONS + (f"-I{d}",),
                                       name_expressions=KERNELS[filename])
    return _modules[key]


def get_kernel(filename, name):
    import cupy
    key = (filename, name, cupy.cuda.Device().id)
    if key not in _functions:
        if name not in KERNELS.get(filename, ()):
            raise KeyError(f"kernel {name!r} is not listed in KERNELS[{filename!r}]")
        _functions[key] = get_module(filename).get_function(name)
    return _functions[key]


def _convert(kernel, arg_name, value, kind):
    """One argument as the kernel expects it, or a KernelArgumentError naming it."""
    import cupy
    where = f"{kernel}: argument {arg_name!r}"
    if kind == INT:
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
            raise KernelArgumentError(f"{where} must be an int, got {type(value).__name__}")
        if not -_INT32_MAX - 1 <= int(value) <= _INT32_MAX:
            raise KernelArgumentError(f"{where} = {value} does not fit in int32")
        return np.int32(value)
    if kind == FLOAT:
        if not isinstance(value, (int, float, np.integer, np.floating)):
            raise KernelArgumentError(f"{where} must be a float, got {type(value).__name__}")
        return np.float32(value)
    optional = kind.endswith("?")
    dtype = _DTYPES[kind.rstrip("?")]
    if value is None:
        if optional:
            return None
        raise KernelArgumentError(f"{where} is required, got None")
    if not isinstance(value, cupy.ndarray):
        raise KernelArgumentError(f"{where} must be a CuPy array, got {type(value).__name__}")
    if value.dtype != dtype:
        raise KernelArgumentError(f"{where} must be {dtype.name}, got {value.dtype.name}")
    if not value.flags.c_contiguous:
        raise KernelArgumentError(f"{where} must be C-contiguous (use cupy.ascontiguousarray); "
                                  f"got strides {value.strides} for shape {value.shape}")
    if value.device.id != cupy.cuda.Device().id:
        raise KernelArgumentError(f"{where} is on device {value.device.id}, but the current "
                                  f"device is {cupy.cuda.Device().id}")
    if value.size > _INT32_MAX:
        raise KernelArgumentError(f"{where} has {value.size} elements; the kernels index "
                                  f"with int32 (at most {_INT32_MAX})")
    return value


def launch(filename, name, grid, args, block=THREADS):
    """Check and convert `args` [(name, value, kind), ...], then launch the kernel on `grid`."""
    kernel = get_kernel(filename, name)
    values = tuple(_convert(name, arg_name, value, kind) for arg_name, value, kind in args)
    grid = tuple(int(g) for g in (grid if isinstance(grid, tuple) else (grid,)))
    kernel(grid, (int(block),), values)


def blocks(n, per_block=THREADS):
    """Blocks of `per_block` threads needed for n threads (at least one)."""
    return max(1, -(-int(n) // per_block))


def splits(length, groups, min_per_thread=4, target_blocks=2048):
    """How many chunks to cut each of `groups` reductions of `length` values into.

    Enough blocks to fill the GPU (about target_blocks in all), but at least min_per_thread
    values per thread. A function of the shapes only, so the summation order (and hence the
    result, bit for bit) is the same on every run.
    """
    by_work = -(-int(length) // (THREADS * min_per_thread))
    by_blocks = -(-target_blocks // max(1, int(groups)))
    return max(1, min(by_work, by_blocks, 65535))


_counters = {}   # device id -> the arrival counters of last_block_to_arrive (common.cuh)


def counters(n):
    """n arrival counters for a kernel that finishes its split reduction in the same launch
    (last_block_to_arrive in kernels/common.cuh): int32 zeros, which every such launch leaves
    at zero. One buffer per device, shared by all those launches (launches on one stream never
    overlap; the captured step's stream waits for the null stream), made on first use: a
    training step's first call is eager, so it exists before any capture."""
    import cupy
    device = cupy.cuda.Device().id
    buf = _counters.get(device)
    if buf is None or buf.size < n:
        buf = _counters[device] = cupy.zeros(max(int(n), 4096), dtype=cupy.int32)
    return buf[:n]


def float32(**arrays):
    """Each array as a C-contiguous float32 CuPy array, in order (None stays None); any other
    dtype raises a TypeError naming the argument (the kernels take float32 only)."""
    import cupy
    out = []
    for name, a in arrays.items():
        if a is not None:
            if a.dtype != np.float32:
                raise TypeError(f"{name} must be float32 on the GPU, got {a.dtype}")
            a = cupy.ascontiguousarray(a)
        out.append(a)
    return out


def sum_partials(partial):
    """partial (S, *shape) -> its sum over the first axis, added in a fixed order (one warp per
    output), so a reduction split over S blocks gives the same bits on every run."""
    import cupy
    S, count = partial.shape[0], partial[0].size
    out = cupy.empty(partial.shape[1:], dtype=cupy.float32)
    launch("conv2d.cu", "sum_partials", blocks(count * 32),
           [("partial", partial, F32), ("S", S, INT), ("count", count, INT), ("out", out, F32)])
    return out
