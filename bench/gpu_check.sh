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

echo "== baseline training on the GPU vs the NumPy run (issue 3, must-show 3)"
# Needs MNIST in .data/mnist (copy ../shared/data/mnist/*.gz there and carry .data). Skipped
# with GPU_CHECK_TRAIN=0. The NumPy reference: docs/runs/2026-11-23-cpu/baseline.json (0.93%).
if [ "${GPU_CHECK_TRAIN:-1}" != 0 ] && [ -f "$REPO/.data/mnist/t10k-labels-idx1-ubyte.gz" ]; then
    RUN="${OUT:-$REPO/runs}/gpu-baseline"
    "$PY" -m lenet_gpu train --data "$REPO/.data/mnist" --activation tanh --loss mse --lr 0.1 \
        --batch-size 20 --epochs "${GPU_CHECK_EPOCHS:-20}" --seed 0 --backend cupy --out "$RUN" \
        --overwrite --quiet || status=1
    "$PY" - "$RUN/metrics.json" "$REPO/docs/runs/2026-11-23-cpu/baseline.json" <<'PYEOF' || status=1
import json, sys
gpu, cpu = (json.load(open(p)) for p in sys.argv[1:3])
n = len(gpu["epochs"])
g, c = gpu["epochs"][-1]["test_error_pct"], cpu["epochs"][n - 1]["test_error_pct"]
s = sum(e["seconds"] for e in gpu["epochs"]) / n
print(f"cupy: test error {g:.2f}% after {n} epochs ({s:.2f} s/epoch on {gpu['device']}); "
      f"numpy reference after {n} epochs: {c:.2f}%; difference {g - c:+.2f} points")
sys.exit(0 if abs(g - c) <= 0.1 or n < 20 else 1)
PYEOF
else
    echo "skipped (no .data/mnist, or GPU_CHECK_TRAIN=0)"
fi

echo "== the 1998 network, one SDLM pass on the GPU vs the NumPy run (issue 6)"
# One pass at batch 1 (60,000 steps) with the recipe of docs/paper/REPORT.md; skipped with
# GPU_CHECK_PAPER=0. The NumPy reference: docs/paper/runs/paper-none/seed0 (pass 1).
if [ "${GPU_CHECK_PAPER:-1}" != 0 ] && [ -f "$REPO/.data/mnist/t10k-labels-idx1-ubyte.gz" ]; then
    RUN="${OUT:-$REPO/runs}/gpu-paper"
    "$PY" -m lenet_gpu train --data "$REPO/.data/mnist" --model lenet5-paper --optimizer sdlm \
        --batch-size 1 --epochs 1 --seed 0 --backend cupy --out "$RUN" --overwrite --quiet || status=1
    "$PY" - "$RUN/metrics.json" "$REPO/docs/paper/runs/paper-none/seed0/metrics.json" <<'PYEOF' || status=1
import json, sys
gpu, cpu = (json.load(open(p)) for p in sys.argv[1:3])
g, c = gpu["epochs"][0]["test_error_pct"], cpu["epochs"][0]["test_error_pct"]
print(f"cupy: lenet5-paper pass 1 test error {g:.2f}% ({gpu['epochs'][0]['seconds']:.1f} s on "
      f"{gpu['device']}); numpy pass 1: {c:.2f}% ({cpu['epochs'][0]['seconds']:.1f} s)")
PYEOF
else
    echo "skipped (no .data/mnist, or GPU_CHECK_PAPER=0)"
fi

echo "== summary ($JSON)"
if [ -f "$JSON" ]; then
    "$PY" bench/summarize.py "$JSON" || status=1
else
    echo "no benchmark JSON written"; status=1
fi
exit $status
