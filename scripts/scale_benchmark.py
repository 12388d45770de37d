"""Corpora larger than memory: preprocessing and one SGNS epoch on a synthetic corpus, with peak memory.

    python scripts/scale_benchmark.py                    # 100 million tokens (about 10 minutes on 2 cores)
    python scripts/scale_benchmark.py --tokens 5000000   # a quick check

The corpus is generated once into --dir (default ./cache/synthetic): documents of 50-350 words drawn
from a Zipf-like distribution over a vocabulary of random letter strings. Preprocessing and training
each run in a fresh process, so their wall time and peak memory (maximum resident set size of the
process; the tokenizer's worker processes are reported apart) are their own.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

PREPROCESS = """
import json, resource, sys, time
from w2v.api import build_datamodule
start = time.perf_counter()
dm = build_datamodule("data=text", f"data.path={sys.argv[1]}", f"data.cache_dir={sys.argv[2]}")  # word2vec's vocabulary
dm.prepare_data()
dm.setup("fit")
print(json.dumps({"seconds": time.perf_counter() - start, "tokens": len(dm.corpus), "words": len(dm.vocab),
                  "peak_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
                  "workers_peak_gib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20}))
"""

TRAIN = """
import json, resource, runpy, sys
sys.argv = ["w2v", "train"] + sys.argv[1:]
try:
    runpy.run_module("w2v", run_name="__main__")
finally:
    print("PEAK", json.dumps(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20), file=sys.stderr)
"""


def generate(path: Path, tokens: int, vocab: int = 100_000, seed: int = 0) -> None:
    """Write `tokens` words of Zipf-distributed random documents to `path`, one document per line."""
    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    words: set[str] = set()
    while len(words) < vocab:
        words.add("".join(rng.choice(letters, rng.integers(3, 11))))
    lexicon = np.array(sorted(words), dtype=object)
    rng.shuffle(lexicon)
    probs = 1.0 / (np.arange(vocab) + 2.7) ** 1.07  # roughly the rank-frequency law of English
    probs /= probs.sum()
    tmp = path.with_suffix(".part")
    written = 0
    with open(tmp, "w", encoding="utf-8") as out:
        while written < tokens:
            lengths = rng.integers(50, 351, 2_000)
            ids = rng.choice(vocab, size=int(lengths.sum()), p=probs)
            starts = np.concatenate([[0], np.cumsum(lengths)])
            out.write("".join(" ".join(lexicon[ids[a:b]]) + "\n" for a, b in zip(starts[:-1], starts[1:])))
            written += int(lengths.sum())
    tmp.rename(path)


def run(command: list[str], env: dict | None = None) -> tuple[float, subprocess.CompletedProcess]:
    """Wall seconds and the finished process; exits with its error output if it failed."""
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, **(env or {})})
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"error: {' '.join(command[:3])} ... failed:\n{done.stderr[-3000:]}")
    return seconds, done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tokens", type=int, default=100_000_000)
    parser.add_argument("--dir", type=Path, default=Path("cache/synthetic"))
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    corpus = args.dir / f"synthetic-{args.tokens}.txt"
    if not corpus.exists():
        start = time.perf_counter()
        generate(corpus, args.tokens)
        print(f"generated {corpus} ({corpus.stat().st_size / 2**30:.2f} GiB) in {time.perf_counter() - start:.0f} s")
    cache = args.dir / f"cache-{args.tokens}"
    if cache.exists():
        import shutil

        shutil.rmtree(cache)  # preprocessing is measured cold
    seconds, done = run([sys.executable, "-c", PREPROCESS, str(corpus), str(cache)])
    prep = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"preprocessing: {prep['tokens']:,} tokens, {prep['words']:,} words, {seconds:.0f} s wall, "
          f"peak {prep['peak_gib']:.2f} GiB (tokenizer workers: {prep['workers_peak_gib']:.2f} GiB each at most)")

    run_dir = args.dir / f"run-{args.tokens}-{int(time.time())}"
    train = [sys.executable, "-c", TRAIN, "data=text", f"data.path={corpus.resolve()}", "trainer.max_epochs=1",
             "trainer.enable_progress_bar=false", "callbacks.evaluation=null", "callbacks.tsne=null",
             "callbacks.neighbours=null", "callbacks.projector=null", f"hydra.run.dir={run_dir}"]
    seconds, done = run(train, env={"W2V_CACHE_DIR": str(cache.resolve())})
    peak = float(done.stderr.rsplit("PEAK", 1)[1].split()[0])
    metrics = json.loads((run_dir / "metrics.json").read_text())
    print(f"one SGNS epoch: {seconds:.0f} s wall (training {metrics['wall_seconds']:.0f} s, "
          f"{metrics['train/epoch_words_per_sec']:,.0f} words/s), peak {peak:.2f} GiB")


if __name__ == "__main__":
    main()
