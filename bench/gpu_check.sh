#!/usr/bin/env bash
# The one script to run on a GPU machine, from the repository root:
#
#     bash bench/gpu_check.sh [STEP ...]          (no STEP: "first", what one lent session runs)
#
# A session is lent 15 minutes of device time, machine start included, and one command runs
# at most 10 minutes: so the whole script keeps to a budget (GPU_CHECK_BUDGET, 540 s), each
# step is time-boxed within what is left, a step that no longer fits is skipped and says so,
# and the steps run in the order of their worth (issue 10's checks first). Call it with
# timeout_s 570 and carry [".data"].
#
# Steps:
#   info       device, driver and package versions
#   nvcc       tools/check_kernels.py: every kernel and template instance with nvcc (CI does it too)
#   tests      pytest -m gpu --require-gpu: every GPU test (kernels, dense, training, graph, paper)
#   memcheck   compute-sanitizer memcheck over the kernel tests at small sizes
#   racecheck  compute-sanitizer racecheck, same tests
#   kernels    bench/bench_kernels.py: each kernel at N = 20, 256, 4096 against cuDNN
#   train      the study's baseline and ReLU+CE+BN, GPU_CHECK_EPOCHS epochs on the GPU, each
#              twice, the four runs side by side: the two runs must be identical, the final
#              errors within the CPU study's seed spread
#   epoch      bench/bench_train_gpu.py: one epoch at batch 20/128/1024, ours eager and graph
#              against PyTorch eager and CUDA graph
#   tta        bench/time_to_accuracy.py: time to 99.0% test accuracy, ours against PyTorch
#              with a CUDA graph, 3 seeds (issue 11)
#   paper      one SDLM pass of the 1998 network at batch 1 on the GPU (issue 12: <= 10 s)
#   study      the study on the GPU: 7 configurations x 3 seeds x 20 epochs, 7 cells at a time
#              (--jobs), wall time printed (issue 12: <= 3 minutes); resumes if cut off
# Groups: first = info tests memcheck racecheck kernels train epoch tta paper (the budget cuts
# the tail); quick = info nvcc tests memcheck racecheck; bench = kernels epoch tta; all = every
# step but study (run it on its own: GPU_CHECK_BUDGET=560 bash bench/gpu_check.sh study).
#
# Needs MNIST for train, tta and paper: mkdir -p .data/mnist && cp ../shared/data/mnist/*.gz
# .data/mnist/ and carry .data. Under $OUT (the device tool brings back at most 8 files) it
# leaves three: gpu_check.log (everything, written as it runs), summary.md (the step table)
# and gpu_check.tar.gz (every step's files: test reports, benchmark JSON, run directories),
# both rewritten after every step so a cut-off run still returns them. Without $OUT all of it
# goes to bench/gpu_check-<date>/. The step table is printed last.
# Environment: PYTHON (python3), GPU_CHECK_BUDGET (540), GPU_CHECK_EPOCHS (20),
# STEP_TIMEOUT_<STEP> (seconds, a step's own cap).
set -u
REPO="$(cd "$(dirname "$0")/.." && pwd)"
cd "$REPO"
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
[ -d "$REPO/.devdeps" ] && export PYTHONPATH="$PYTHONPATH:$REPO/.devdeps"
export LENET_GPU_DATA="${LENET_GPU_DATA:-$REPO/.data/mnist}"
PY="${PYTHON:-python3}"
if [ -n "${OUT:-}" ]; then export DEST="${DEST:-/tmp/gpu_check}"
else export DEST="${DEST:-$REPO/bench/gpu_check-$(date +%Y%m%d-%H%M%S)}"; fi
EPOCHS="${GPU_CHECK_EPOCHS:-20}"
BUDGET="${GPU_CHECK_BUDGET:-540}"
declare -A TIMEOUT=([info]=60 [nvcc]=180 [tests]=240 [memcheck]=90 [racecheck]=90
                    [kernels]=150 [train]=240 [epoch]=240 [tta]=180 [paper]=180 [study]=560)

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
    "$PY" -m pytest bench/bench_kernels.py -q -p no:cacheprovider -k "not numpy" \
        --benchmark-json="$DEST/bench_kernels.json" \
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

train_run() {  # $1 run dir, then train options
    local dir=$1; shift
    "$PY" -m lenet_gpu train --data "$LENET_GPU_DATA" --batch-size 20 --epochs "$EPOCHS" --seed 0 \
        --backend cupy --out "$dir" --overwrite --quiet "$@" > "$dir.txt" 2>&1
}

step_train() {   # the four runs side by side: the GPU is mostly idle between launches
    local rc=0 results="" config line same
    declare -A opts=([tanh-mse]="--activation tanh --loss mse --lr 0.1"
                     [relu-ce-bn]="--activation relu --loss ce --batchnorm --lr 0.1")
    mkdir -p "$DEST/train"
    for config in tanh-mse relu-ce-bn; do
        for run in a b; do
            # shellcheck disable=SC2086
            train_run "$DEST/train/$config-$run" ${opts[$config]} &
        done
    done
    wait
    for config in tanh-mse relu-ce-bn; do
        cat "$DEST/train/$config-a.txt"
        line=$("$PY" bench/gpu_compare.py study "$DEST/train/$config-a" "$config") || rc=1
        echo "$line"
        same=$("$PY" bench/gpu_compare.py identical "$DEST/train/$config-a" "$DEST/train/$config-b") || rc=1
        echo "$same"
        results="$results $config: ${line##*: } ${same##*: };"
    done
    echo "RESULT:$results"
    return $rc
}

step_tta() {
    "$PY" bench/time_to_accuracy.py --data "$LENET_GPU_DATA" --seeds 3 --json "$DEST/tta.json"
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
LOG="${OUT:-$DEST}/gpu_check.log"
TABLE="$DEST/steps.tsv"
: > "$TABLE"
exec > >(tee -a "$LOG") 2>&1
DEADLINE=$((SECONDS + BUDGET))

summary() {
    printf '| step | status | seconds | result |\n|---|---|---:|---|\n'
    awk -F'\t' '{printf "| %s | %s | %s | %s |\n", $1, $2, $3, $4}' "$TABLE"
}

save() {   # what comes back from the device: the table and every step's files, after each step
    summary > "$DEST/summary.md"
    [ -n "${OUT:-}" ] || return 0
    cp "$DEST/summary.md" "$OUT/summary.md"
    tar -czf "$OUT/gpu_check.tar.gz.part" -C "$DEST" . && mv "$OUT/gpu_check.tar.gz.part" "$OUT/gpu_check.tar.gz"
}

run_step() {
    local name=$1 var="STEP_TIMEOUT_${1^^}"
    local t=${!var:-${TIMEOUT[$1]}} left=$((DEADLINE - SECONDS - 20))
    if [ "$left" -lt "$t" ]; then t=$left; fi
    if [ "$t" -lt 30 ]; then
        printf '%s\t%s\t%s\t%s\n' "$name" "skipped" 0 "not run: ${left} s of the ${BUDGET} s budget left" >> "$TABLE"
        return
    fi
    echo; echo "===== $name (time limit ${t} s, $((DEADLINE - SECONDS)) s of the budget left) ====="
    local start=$SECONDS
    timeout -k 10 "$t" bash "$0" --one "$name" 2>&1 | tee "$DEST/step_$name.txt"
    local rc=${PIPESTATUS[0]}
    local result
    result=$(grep -a '^RESULT:' "$DEST/step_$name.txt" | tail -n 1 | cut -c 9- | cut -c 1-160)
    if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then result="TIMED OUT after ${t} s. $result"; fi
    printf '%s\t%s\t%s\t%s\n' "$name" "$([ "$rc" = 0 ] && echo ok || echo "FAIL($rc)")" \
        "$((SECONDS - start))" "$result" >> "$TABLE"
    save
}

steps=("$@")
[ ${#steps[@]} = 0 ] && steps=(first)
expanded=()
for s in "${steps[@]}"; do
    case $s in
        first) expanded+=(info tests memcheck racecheck kernels train epoch tta paper) ;;
        quick) expanded+=(info nvcc tests memcheck racecheck) ;;
        bench) expanded+=(kernels epoch tta) ;;
        all) expanded+=(info nvcc tests memcheck racecheck kernels train epoch tta paper) ;;
        *) if [ -z "${TIMEOUT[$s]:-}" ]; then echo "unknown step $s"; exit 2; fi; expanded+=("$s") ;;
    esac
done
echo "gpu_check $(date -u +%Y-%m-%dT%H:%MZ): ${expanded[*]} -> $DEST, budget ${BUDGET} s"
for s in "${expanded[@]}"; do run_step "$s"; done

echo; echo "===== summary ($LOG)"
save
summary
! grep -q FAIL "$TABLE"
