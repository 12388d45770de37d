#!/usr/bin/env bash
# The GPU checks, in one go, on a machine lent by the `device` tool, with .device/ carried from
# scripts/device_prepare.sh: installs the carried wheels, unpacks the tokenized cache and recreates
# the archive's stub (same path, size and mtime, which the cache's key holds), then runs the CUDA
# tests and scripts/gpu_benchmark.py. Logs go to $OUT (what the tool brings back).
#
#     bash scripts/device_check.sh [gpu_benchmark.py arguments, e.g. --sgns-epochs 2]
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-outputs/device}
mkdir -p "$OUT"
[ -d .device ] || { echo "error: no .device/ here; run scripts/device_prepare.sh and carry .device" >&2; exit 1; }
pip install --quiet --no-index --no-deps --target /tmp/site .device/whl/*.whl
export PYTHONPATH=/tmp/site:$PWD
mkdir -p .device/cache && xz -dc .device/cache.tar.xz | tar -C .device/cache -xf -
# W2V_DATA_DIR: the archive's folder; the stub: only its path, size and mtime are read when the cache is valid
W2V_DATA_DIR=$(python - <<'PY'
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
python -m pytest -q -x tests/test_gpu_path.py > "$OUT/tests.log" 2>&1
echo "tests: exit $?" | tee -a "$OUT/tests.log"
python scripts/gpu_benchmark.py -o outputs/gpu_benchmark "$@" > "$OUT/gpu_benchmark.log" 2>&1
echo "gpu_benchmark: exit $?" | tee -a "$OUT/gpu_benchmark.log"
tail -40 "$OUT/gpu_benchmark.log"
