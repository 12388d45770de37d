"""scripts/gpu_benchmark.py's parts that run without a GPU."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_the_process_clock_counts_from_the_process_start():
    """The default experiment's wall time counts the imports: the clock starts with the process, so a
    child that sleeps a second before importing the script reads at least that, and at most its life."""
    code = "import time; time.sleep(1.0); from scripts.gpu_benchmark import process_seconds; print(process_seconds())"
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    lifetime = time.perf_counter() - start
    assert 1.0 <= float(done.stdout) <= lifetime + 0.02  # /proc counts in ticks of 0.01 s
