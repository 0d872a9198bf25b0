#!/usr/bin/env bash
# The one script to run on a GPU machine, from the repository root:
#
#     bash bench/gpu_check.sh [STEP ...]          (no STEP: the short first run, "quick")
#
# Steps (each time-boxed; one failing or hanging step does not stop the others):
#   info       device, driver and package versions
#   nvcc       tools/check_kernels.py: every kernel and template instance with nvcc
#   tests      pytest -m gpu --require-gpu: every GPU test (kernels, dense, training, graph, paper)
#   memcheck   compute-sanitizer memcheck over the kernel tests at small sizes
#   racecheck  compute-sanitizer racecheck, same tests
#   kernels    bench/bench_kernels.py: each kernel at N = 20, 256, 4096 against cuDNN
#   epoch      bench/bench_train_gpu.py: one epoch at batch 20/128/1024, ours eager and graph
#              against PyTorch eager and CUDA graph
#   train      the study's baseline and ReLU+CE+BN, 20 epochs on the GPU, each twice (the two
#              runs must be identical), final errors against the CPU study's seed spread
#   paper      one SDLM pass of the 1998 network at batch 1 on the GPU
#   study      the study on the GPU: 7 configurations x 3 seeds x 20 epochs, 7 cells at a time
#              (--jobs), wall time printed (issue 12: <= 3 minutes); resumes if cut off
# Groups: quick = info nvcc tests memcheck racecheck; bench = kernels epoch; all = everything
# but study (run it on its own: bash bench/gpu_check.sh study).
#
# Needs MNIST for train and paper: mkdir -p .data/mnist && cp ../shared/data/mnist/*.gz .data/mnist/
# and carry .data. The whole log goes to $OUT/gpu_check.log (else bench/gpu_check-<date>.log),
# benchmark JSON and run directories beside it; a table of the steps is printed last.
# Environment: PYTHON (python3), GPU_CHECK_EPOCHS (20), STEP_TIMEOUT_<STEP> (seconds).
set -u
REPO="$(cd "$(dirname "$0")/.." && pwd)"
cd "$REPO"
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
[ -d "$REPO/.devdeps" ] && export PYTHONPATH="$PYTHONPATH:$REPO/.devdeps"
export LENET_GPU_DATA="${LENET_GPU_DATA:-$REPO/.data/mnist}"
PY="${PYTHON:-python3}"
export DEST="${DEST:-${OUT:-$REPO/bench/gpu_check-$(date +%Y%m%d-%H%M%S)}}"
EPOCHS="${GPU_CHECK_EPOCHS:-20}"
declare -A TIMEOUT=([info]=60 [nvcc]=180 [tests]=420 [memcheck]=420 [racecheck]=420
                    [kernels]=480 [epoch]=540 [train]=580 [paper]=300 [study]=580)

step_info() {
    nvidia-smi -L || echo "nvidia-smi not available"
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv || true
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
            extra = f" (CUDA runtime {mod.cuda.runtime.runtimeGetVersion()}, driver {mod.cuda.runtime.driverGetVersion()})"
        print(name, getattr(mod, "__version__", "?") + extra)
    except Exception as e:
        print(name, "NOT AVAILABLE:", type(e).__name__, e)
from lenet_gpu import backend
print("RESULT:", backend.resolve_backend("auto"), "on", backend.set_backend("auto") and backend.device_name())
PYEOF
}

step_nvcc() { "$PY" tools/check_kernels.py && echo "RESULT: every kernel and template instance compiles"; }

step_tests() {
    "$PY" -m pytest tests -m gpu --require-gpu -q -p no:cacheprovider -rfEs \
        --junitxml="$DEST/gpu_tests.xml" 2>&1 | tee "$DEST/gpu_tests.txt"
    local rc=${PIPESTATUS[0]}
    echo "RESULT: $(grep -E 'passed|failed|error|no tests ran' "$DEST/gpu_tests.txt" | tail -n 1)"
    return "$rc"
}

sanitize() {   # $1: memcheck | racecheck; the kernel tests at small sizes
    if ! command -v compute-sanitizer >/dev/null 2>&1; then
        echo "RESULT: compute-sanitizer not found"; return 1
    fi
    compute-sanitizer --tool "$1" --error-exitcode 86 --print-limit 20 \
        "$PY" -m pytest tests/test_gpu_ops.py -q -p no:cacheprovider -x \
        -k "N1 or N2- or N20 or odd or 1x1 or nonsquare or launcher" 2>&1 | tee "$DEST/$1.txt"
    local rc=${PIPESTATUS[0]}
    echo "RESULT: $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY|passed|failed' "$DEST/$1.txt" | tail -n 2 | tr '\n' ' ')"
    return "$rc"
}
step_memcheck() { sanitize memcheck; }
step_racecheck() { sanitize racecheck; }

step_kernels() {
    "$PY" -m pytest bench/bench_kernels.py -q -p no:cacheprovider --benchmark-json="$DEST/bench_kernels.json" \
        --benchmark-columns=median,iqr,rounds --benchmark-sort=name || return 1
    "$PY" bench/summarize.py "$DEST/bench_kernels.json" | tee "$DEST/kernel_table.md"
    echo "RESULT: kernel table in kernel_table.md"
}

step_epoch() {
    "$PY" -m pytest bench/bench_train_gpu.py -q -p no:cacheprovider --benchmark-json="$DEST/bench_train.json" \
        --benchmark-columns=median,min,rounds --benchmark-sort=name 2>&1 | tee "$DEST/bench_train.txt"
    local rc=${PIPESTATUS[0]}
    echo "RESULT: see the ratio table in bench_train.txt"
    return "$rc"
}

train_run() {  # $1 config name, $2 run dir, then train options
    local name=$1 dir=$2; shift 2
    "$PY" -m lenet_gpu train --data "$LENET_GPU_DATA" --batch-size 20 --epochs "$EPOCHS" --seed 0 \
        --backend cupy --out "$dir" --overwrite --quiet "$@"
}

step_train() {
    local rc=0 results=""
    for config in tanh-mse relu-ce-bn; do
        case $config in
            tanh-mse) opts=(--activation tanh --loss mse --lr 0.1) ;;
            relu-ce-bn) opts=(--activation relu --loss ce --batchnorm --lr 0.1) ;;
        esac
        train_run "$config" "$DEST/train/$config/a" "${opts[@]}" || rc=1
        train_run "$config" "$DEST/train/$config/b" "${opts[@]}" || rc=1
        line=$("$PY" bench/gpu_compare.py study "$DEST/train/$config/a" "$config") || rc=1
        echo "$line"
        same=$("$PY" bench/gpu_compare.py identical "$DEST/train/$config/a" "$DEST/train/$config/b") || rc=1
        echo "$same"
        results="$results $config: ${line##*: } ${same##*: };"
    done
    echo "RESULT:$results"
    return $rc
}

step_paper() {
    "$PY" -m lenet_gpu train --data "$LENET_GPU_DATA" --model lenet5-paper --optimizer sdlm \
        --batch-size 1 --epochs 1 --seed 0 --backend cupy --out "$DEST/paper" --overwrite --quiet || return 1
    "$PY" bench/gpu_compare.py paper "$DEST/paper" docs/paper/runs/paper-j10-mu02/seed0
}

step_study() {
    local start=$SECONDS
    "$PY" -m lenet_gpu study --data "$LENET_GPU_DATA" --backend cupy --seeds 3 --jobs "${STUDY_JOBS:-7}" \
        --configs tanh-mse tanh-mse-l2 relu-ce relu-ce-l2 tanh-mse-bn relu-ce-bn relu-ce-bn-cosine \
        --out "$DEST/study-gpu" --notes docs/study/notes.md || return 1
    echo "RESULT: 21 cells in $((SECONDS - start)) s wall; report $DEST/study-gpu/REPORT.md"
}

if [ "${1:-}" = --one ]; then   # one step, in a child process that `timeout` can stop
    "step_$2"
    exit $?
fi

mkdir -p "$DEST"
LOG="$DEST/gpu_check.log"
TABLE="$DEST/steps.tsv"
: > "$TABLE"
exec > >(tee -a "$LOG") 2>&1

run_step() {
    local name=$1 var="STEP_TIMEOUT_${1^^}"
    local t=${!var:-${TIMEOUT[$1]}}
    echo; echo "===== $name (time limit ${t} s) ====="
    local start=$SECONDS
    timeout -k 15 "$t" bash "$0" --one "$name" 2>&1 | tee "$DEST/step_$name.txt"
    local rc=${PIPESTATUS[0]}
    local result
    result=$(grep -a '^RESULT:' "$DEST/step_$name.txt" | tail -n 1 | cut -c 9- | cut -c 1-160)
    if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then result="TIMED OUT after ${t} s. $result"; fi
    printf '%s\t%s\t%s\t%s\n' "$name" "$([ "$rc" = 0 ] && echo ok || echo "FAIL($rc)")" \
        "$((SECONDS - start))" "$result" >> "$TABLE"
}

steps=("$@")
[ ${#steps[@]} = 0 ] && steps=(quick)
expanded=()
for s in "${steps[@]}"; do
    case $s in
        quick) expanded+=(info nvcc tests memcheck racecheck) ;;
        bench) expanded+=(kernels epoch) ;;
        all) expanded+=(info nvcc tests memcheck racecheck kernels epoch train paper) ;;
        *) if [ -z "${TIMEOUT[$s]:-}" ]; then echo "unknown step $s"; exit 2; fi; expanded+=("$s") ;;
    esac
done
echo "gpu_check $(date -u +%Y-%m-%dT%H:%MZ): ${expanded[*]} -> $DEST"
for s in "${expanded[@]}"; do run_step "$s"; done

echo; echo "===== summary ($LOG)"
printf '| step | status | seconds | result |\n|---|---|---:|---|\n'
awk -F'\t' '{printf "| %s | %s | %s | %s |\n", $1, $2, $3, $4}' "$TABLE"
! grep -q FAIL "$TABLE"
