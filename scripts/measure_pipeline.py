"""Measure the pipeline's speed and memory targets: preprocessing (cold and cached) and a training run.

    python scripts/measure_pipeline.py                 # preprocessing of all IMDb reviews, cold and cached
    python scripts/measure_pipeline.py --train         # ... plus the default experiment, end to end
    python scripts/measure_pipeline.py --train -- trainer.max_epochs=1 model=cbow   # any overrides

Each step runs in a fresh process, so its wall time includes start-up and its peak memory (maximum
resident set size, children included) is its own. The IMDb archive is found as w2v finds it
(W2V_DATA_DIR or ./data).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PREPROCESS = """
import sys, time
from hydra.utils import instantiate
from omegaconf import open_dict
from w2v.api import compose_config
import w2v.data.datamodule  # the datamodules and Lightning, imported before the clock: start-up, not the data step
cfg = compose_config(*sys.argv[2:])
with open_dict(cfg):
    cfg.paths.cache_dir = sys.argv[1]
start = time.perf_counter()
dm = instantiate(cfg.data)
dm.prepare_data()
dm.setup("fit")
print(f"data step {time.perf_counter() - start:.1f} s in-process; {dm.corpus.n_docs} documents, "
      f"{len(dm.corpus):,} tokens, {len(dm.vocab):,} words")
"""


def timed(cmd: list[str], env: dict | None = None) -> tuple[float, float, str]:
    """(wall seconds, peak RSS in GiB of the command and its children, last output line)."""
    start = time.perf_counter()
    result = subprocess.run(cmd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"command failed: {' '.join(cmd)}\n{result.stderr[-3000:]}")
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    return seconds, peak_kib / 2**20, lines[-1] if lines else ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", action="store_true", help="also run w2v-train end to end (cold cache)")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for both steps")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="w2v-measure-") as tmp:
        cache = str(Path(tmp) / "cache")
        for label in ("cold", "cached"):
            seconds, peak, line = timed([sys.executable, "-c", PREPROCESS, cache, *args.overrides])
            print(f"preprocessing ({label}): {seconds:6.1f} s, peak memory so far {peak:.2f} GiB  [{line}]", flush=True)
        if args.train:
            env = {**os.environ, "W2V_CACHE_DIR": str(Path(tmp) / "train-cache")}
            cmd = [sys.executable, "-m", "w2v", "train", f"hydra.run.dir={tmp}/run", "trainer.enable_progress_bar=false",
                   *args.overrides]
            seconds, peak, _ = timed(cmd, env)
            print(f"training run, preprocessing included: {seconds:6.1f} s ({seconds / 60:.1f} min), "
                  f"peak memory of all steps {peak:.2f} GiB", flush=True)


if __name__ == "__main__":
    main()
