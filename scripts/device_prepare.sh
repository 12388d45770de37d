#!/usr/bin/env bash
# Packs what a GPU check needs into .device/ (git-ignored), for the `device` tool's `carry`:
# the hydra-core, omegaconf and antlr4 wheels the GPU machine lacks, the tokenized cache of all
# reviews (the default experiment's entry), the archive's path, size and mtime, which the cache's
# key holds, the three benchmark files (gensim's copies: the GPU machine has no gensim) and, with
# CPU_RUN, a finished CPU run's metrics.json for the table's last column. Then, on the GPU machine:
# bash scripts/device_check.sh
#
#     W2V_DATA_DIR=../shared/data W2V_CACHE_DIR=cache bash scripts/device_prepare.sh
#     CPU_RUN=outputs/train/runs/<run> W2V_DATA_DIR=../shared/data W2V_CACHE_DIR=cache bash scripts/device_prepare.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
: "${W2V_CACHE_DIR:?set W2V_CACHE_DIR to the cache folder holding the default experiment entry}"
if [ -n "${CPU_RUN:-}" ] && [ ! -f "$CPU_RUN/metrics.json" ]; then
    echo "error: no metrics.json in CPU_RUN=$CPU_RUN; name a finished run's directory" >&2; exit 1
fi
rm -rf .device && mkdir -p .device/whl
$PY -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
    --platform manylinux2014_x86_64 -d .device/whl hydra-core==1.3.2 omegaconf==2.3.0
$PY -m pip wheel --quiet --no-deps -w .device/whl antlr4-python3-runtime==4.9.3
# The default experiment's entry: all reviews, the default tokenizer (found by building the datamodule).
entry=$($PY -c "
from w2v.api import build_datamodule
from w2v.data.cache import entry_folder
dm = build_datamodule()
print(entry_folder(dm.cache_dir, dm.name, dm.cache_description()))")
[ -f "$entry/meta.json" ] || { echo "error: no cache entry at $entry; run w2v-train once (or W2V_CACHE_DIR=...)" >&2; exit 1; }
tar -C "$(dirname "$entry")" -cf - "$(basename "$entry")" | xz -1 -T2 > .device/cache.tar.xz
$PY - "$entry" > .device/archive.json <<'PY'
import json, sys
from pathlib import Path
print(json.dumps(json.loads((Path(sys.argv[1]) / "meta.json").read_text())["description"]["source"]))
PY
mkdir -p .device/eval
$PY - .device/eval <<'PY'
import shutil, sys
from w2v.evaluation import benchmark_paths
for key, path in zip(("wordsim", "simlex", "analogies"), benchmark_paths().values()):
    shutil.copy(path, f"{sys.argv[1]}/{key}{path.suffix}")
PY
if [ -n "${CPU_RUN:-}" ]; then
    mkdir -p .device/cpu-run && cp "$CPU_RUN/metrics.json" .device/cpu-run/
fi
du -sh .device
