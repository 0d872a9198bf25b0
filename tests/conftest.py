import os
import zlib
from pathlib import Path

import numpy as np
import pytest

from lenet_gpu import backend

REPO = Path(__file__).resolve().parent.parent


def pytest_addoption(parser):
    parser.addoption("--require-gpu", action="store_true",
                     help="fail (instead of skip) the gpu-marked tests when no CUDA device is usable")


def pytest_collection_modifyitems(config, items):
    gpu_items = [i for i in items if "gpu" in i.keywords]
    if not gpu_items or backend.gpu_available():
        return
    reason = f"no usable CUDA GPU ({backend.gpu_unavailable_reason()})"
    if config.getoption("--require-gpu"):
        raise pytest.UsageError(f"--require-gpu was given but {reason}")
    for item in gpu_items:
        item.add_marker(pytest.mark.skip(reason=reason))


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
