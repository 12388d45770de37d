#!/usr/bin/env bash
# The GPU checks, in one go, on a machine lent by the `device` tool, with .device/ carried from
# scripts/device_prepare.sh: installs the carried wheels, unpacks the tokenized cache and recreates
# the archive's stub (same path, size and mtime, which the cache's key holds), then runs the CUDA
# stages named in STAGES (default tests, softmax and benchmark, in this order):
#   tests      tests/test_gpu_path.py, test_softmax_triton.py, test_sampling_triton.py and test_softmax_on_device.py's CUDA tests;
#   softmax    scripts/softmax_kernel_bench.py, the full softmax's step alone, fused beside PyTorch's (SOFTMAX_ARGS);
#   kernel     scripts/sgns_kernel_bench.py, the SGNS kernel alone, variant beside variant (KERNEL_ARGS);
#   benchmark  scripts/gpu_benchmark.py, SGNS, CBOW and Skip-gram through w2v-train trainer=gpu, each with
#              PROFILE_STEPS (20; 0: none) of its steps profiled (scripts/step_profile.py).
# Scores come from the carried benchmark files (the machine has no gensim). Each stage runs under
# its own time limit in seconds (TESTS_LIMIT 240, SOFTMAX_LIMIT 90, KERNEL_LIMIT 300, BENCHMARK_LIMIT
# 240 unless set), so that the default stages fit one call of the tool (600 s); logs go to $OUT (what the tool brings back),
# unbuffered, so a stage cut off at its limit keeps what it printed. Extra arguments go to
# gpu_benchmark.py.
#
#     bash scripts/device_check.sh
#     STAGES=benchmark BENCHMARK_LIMIT=540 bash scripts/device_check.sh --sgns-epochs 2   # a second call
#     STAGES=kernel KERNEL_ARGS="--epochs 2 --variant damped --variant plain" bash scripts/device_check.sh
#     STAGES=softmax SOFTMAX_ARGS="--blocks 128,64,8,3 --blocks 64,128,8,3" bash scripts/device_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-outputs/device}
mkdir -p "$OUT"
[ -d .device ] || { echo "error: no .device/ here; run scripts/device_prepare.sh and carry .device" >&2; exit 1; }
STAGES=${STAGES:-tests softmax benchmark}
for stage in $STAGES; do
    case $stage in tests|softmax|kernel|benchmark) ;; *) echo "error: unknown stage $stage in STAGES; use tests, softmax, kernel or benchmark" >&2; exit 1 ;; esac
done
PY=python3  # the GPU machine's interpreter with PyTorch
export PYTHONUNBUFFERED=1
$PY -m pip install --quiet --no-index --no-deps --no-compile --target /tmp/site .device/whl/*.whl
export PYTHONPATH=/tmp/site:$PWD
mkdir -p .device/cache && xz -dc .device/cache.tar.xz | tar -C .device/cache -xf -
# W2V_DATA_DIR: the archive's folder; the stub: only its path, size and mtime are read when the cache is valid
W2V_DATA_DIR=$($PY - <<'PY'
import json, os
from pathlib import Path
source = json.loads(Path(".device/archive.json").read_text())
archive = Path(source["archive"])
if not archive.exists():
    archive.parent.mkdir(parents=True, exist_ok=True)
    with open(archive, "wb") as handle:
        handle.truncate(source["size"])
os.utime(archive, ns=(source["mtime_ns"], source["mtime_ns"]))
print(archive.parent)
PY
) || { echo "error: could not recreate the archive named in .device/archive.json" >&2; exit 1; }
export W2V_DATA_DIR
export W2V_CACHE_DIR=$PWD/.device/cache
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/gpu.txt" 2>&1
scoring=()
for key in wordsim simlex analogies; do
    file=$(ls .device/eval/"$key".* 2>/dev/null | head -1)
    [ -n "$file" ] && scoring+=("callbacks.evaluation.$key=$PWD/$file")
done
cpu_run=()
[ -f .device/cpu-run/metrics.json ] && cpu_run=(--cpu-run .device/cpu-run)
for stage in $STAGES; do
    case $stage in
        tests) limit=${TESTS_LIMIT:-240}  # the kernels' ahead-of-time compile is checked on any machine: not here
            command=($PY -m pytest -q tests/test_gpu_path.py tests/test_softmax_triton.py tests/test_sampling_triton.py
                     tests/test_softmax_on_device.py
                     -k '(not test_softmax_on_device or cuda) and not compile_for_a_gpu' --durations=10) ;;
        softmax) limit=${SOFTMAX_LIMIT:-90}; command=($PY scripts/softmax_kernel_bench.py ${SOFTMAX_ARGS:-}) ;;
        kernel) limit=${KERNEL_LIMIT:-300}; command=($PY scripts/sgns_kernel_bench.py ${KERNEL_ARGS:-} "${scoring[@]}") ;;
        benchmark) limit=${BENCHMARK_LIMIT:-240}
            command=($PY scripts/gpu_benchmark.py -o outputs/gpu_benchmark --profile-steps "${PROFILE_STEPS:-20}"
                     "${cpu_run[@]}" "$@" "${scoring[@]}") ;;
    esac
    timeout "$limit" "${command[@]}" > "$OUT/$stage.log" 2>&1
    echo "$stage: exit $? (124: cut off at $limit s)" | tee -a "$OUT/$stage.log"
    tail -25 "$OUT/$stage.log"
done
