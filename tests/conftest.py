import os
import zlib
from pathlib import Path

import numpy as np
import pytest


REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def rng(request):
    """A fresh generator per test, seeded from the test's name (reproducible, never all zeros)."""
    seed = zlib.crc32(request.node.nodeid.encode())
    return np.random.default_rng(seed)


@pytest.fixture(scope="session")
def mnist_dir():
    """The real MNIST files: $LENET_GPU_DATA (CI sets it to ../shared/data/mnist)."""
    d = os.environ.get("LENET_GPU_DATA") or str(REPO.parent / "shared" / "data" / "mnist")
    if not (Path(d) / "train-images-idx3-ubyte.gz").exists() and \
            not (Path(d) / "train-images-idx3-ubyte").exists():
        pytest.skip(f"MNIST not found in {d}; set LENET_GPU_DATA")
    return d


@pytest.fixture
def cp():
    """CuPy, for the tests marked gpu (not importorskip: under --require-gpu a missing CuPy
    must fail, not skip)."""
    import cupy
    return cupy


@pytest.fixture(autouse=True)
def numpy_backend_by_default():
    """Every test starts on the NumPy reference unless it moves a model to the GPU itself
    (`auto` would otherwise build every model on the GPU of a GPU machine), and a test that
    chose a backend (the CLI's --backend auto, say) does not leave it to the next one."""
    from lenet_gpu import backend
    backend.set_backend("numpy")
    yield
    backend.set_backend("numpy")


@pytest.fixture
def launches(monkeypatch):
    """The names of the kernels lenet_gpu.cuda.launch runs during the test, in order (they
    still run); a test may clear() it between its steps."""
    from lenet_gpu import cuda
    names, launch = [], cuda.launch
    monkeypatch.setattr(cuda, "launch", lambda f, k, *a, **kw: (names.append(k), launch(f, k, *a, **kw)))
    return names
