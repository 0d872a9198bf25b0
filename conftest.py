"""Options and markers for every test and benchmark in the repo (tests/ and bench/)."""
import pytest

from lenet_gpu import backend


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
