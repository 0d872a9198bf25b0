"""Shared by the benchmarks: a registry of median times and a ratio table at the end of the run."""
import pytest

RESULTS = {}   # (group, implementation) -> median seconds


@pytest.fixture
def record():
    """record(benchmark, group, impl): keep the benchmark's median for the ratio table."""
    def _record(benchmark, group, impl):
        RESULTS[(group, impl)] = benchmark.stats.stats.median
    return _record


def pytest_terminal_summary(terminalreporter):
    if not RESULTS:
        return
    groups = sorted({g for g, _ in RESULTS}, key=str)
    # the reference first, so the ratios read "ours / reference": PyTorch's best (its CUDA
    # graph, the GPU goal's yardstick) where it ran, else PyTorch or cuDNN
    preferred = ("torch-graph", "torch", "torch-eager", "cudnn")
    impls = sorted({i for _, i in RESULTS},
                   key=lambda i: (preferred.index(i) if i in preferred else len(preferred), i))
    tr = terminalreporter
    tr.section("median seconds, and each implementation's time divided by the reference's (first column)")
    base = impls[0]
    tr.write_line(" | ".join(["group"] + impls + [f"{i}/{base}" for i in impls[1:]]))
    for g in groups:
        row = [str(g)] + [f"{RESULTS[(g, i)]:.4g}" if (g, i) in RESULTS else "-" for i in impls]
        for i in impls[1:]:
            ok = (g, i) in RESULTS and (g, base) in RESULTS
            row.append(f"{RESULTS[(g, i)] / RESULTS[(g, base)]:.2f}" if ok else "-")
        tr.write_line(" | ".join(row))
