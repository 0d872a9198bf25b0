#!/usr/bin/env bash
# The one script to run on a GPU machine, from the repository root:
#     bash bench/gpu_check.sh
# Prints the device and versions, runs the GPU tests (--require-gpu: no silent skips), then the
# kernel benchmarks (JSON to $OUT/bench.json, or bench/bench-<date>.json without $OUT), then a
# markdown summary table. Keeps going after test failures so the benchmarks still run; exits
# non-zero at the end if anything failed. A .devdeps/ folder (pip install --target .devdeps
# pytest pytest-benchmark) is put on PYTHONPATH for machines without those packages.
set -u
REPO="$(cd "$(dirname "$0")/.." && pwd)"
cd "$REPO"
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
[ -d "$REPO/.devdeps" ] && export PYTHONPATH="$PYTHONPATH:$REPO/.devdeps"
PY="${PYTHON:-python}"

echo "== device"
nvidia-smi -L || echo "nvidia-smi not available"
"$PY" - <<'PYEOF'
import sys
print("python", sys.version.split()[0])
for name in ("numpy", "cupy", "torch", "pytest", "pytest_benchmark"):
    try:
        mod = __import__(name)
        extra = ""
        if name == "torch":
            extra = f" (CUDA {mod.version.cuda}, cudnn {mod.backends.cudnn.version()}, available={mod.cuda.is_available()})"
        if name == "cupy":
            extra = f" (CUDA runtime {mod.cuda.runtime.runtimeGetVersion()})"
        print(name, getattr(mod, "__version__", "?") + extra)
    except Exception as e:
        print(name, "NOT AVAILABLE:", type(e).__name__, e)
PYEOF

status=0
echo "== kernels compile (nvcc)"
if command -v nvcc >/dev/null 2>&1 || [ -n "${NVCC:-}${CUDA_HOME:-}" ] || [ -x /usr/local/cuda/bin/nvcc ]; then
    "$PY" tools/check_kernels.py || status=1
else
    echo "nvcc not found: skipped (CuPy compiles the kernels with NVRTC in the tests below)"
fi

echo "== GPU tests"
"$PY" -m pytest tests -m gpu --require-gpu -q -p no:cacheprovider || status=1

echo "== kernel benchmarks"
JSON="${OUT:+$OUT/bench.json}"
JSON="${JSON:-$REPO/bench/bench-$(date +%Y%m%d-%H%M%S).json}"
"$PY" -m pytest bench/bench_kernels.py -q -p no:cacheprovider --benchmark-json="$JSON" \
    --benchmark-columns=median,iqr,rounds --benchmark-sort=name || status=1

echo "== summary ($JSON)"
if [ -f "$JSON" ]; then
    "$PY" bench/summarize.py "$JSON" || status=1
else
    echo "no benchmark JSON written"; status=1
fi
exit $status
