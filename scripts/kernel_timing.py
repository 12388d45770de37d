"""Time the sequential CPU kernel alone on real steps: where an epoch's kernel time goes.

    python scripts/kernel_timing.py                      # CBOW with negative sampling, 15 steps
    python scripts/kernel_timing.py --mode sgns --steps 30

The first steps of epoch 0 (all IMDb reviews, word2vec's vocabulary, the model's default step:
262,144 positions for CBOW, 65,536 for Skip-gram) are drawn once (`chunk_windows.chunk_windows`, as
the model draws them), then trained by `sequential.sequential_sgd` from the same starting vectors
in each setting, taking turns (--rounds): one shard on one thread (word2vec's order, no copies),
the default two shards on two threads (the rows both touch on copies, merged after each piece),
and two shards lock-free (model.update_rule=hogwild). Prints each setting's milliseconds a step and its fastest round.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchmark import MODES, load_corpus  # noqa: E402

SETTINGS = {"1 shard, 1 thread": (1, False, 1), "2 shards, 2 threads": (2, False, 2), "2 shards, lock-free": (2, True, 2)}


def draw_steps(dm, mode: str, steps: int) -> tuple[list[tuple[np.ndarray, np.ndarray, np.ndarray]], int]:
    """The first `steps` steps' windows of epoch 0, as the model's chunk step draws them, and the
    positions a step."""
    import torch

    from w2v.api import build_model
    from w2v.kernels import chunk_windows
    from w2v.models.binary_output import SEQUENTIAL_CHUNK

    arch, output = MODES[mode]
    model = build_model(dm.vocab, f"model={arch}", f"model/output={output}")
    tables, window = model.window_tables(), model.hparams.window
    width = 1 + tables.negatives if tables.negatives else tables.paths.shape[1]
    per_step, drawn = model.sequential_batch() // SEQUENTIAL_CHUNK, []
    for index in range(dm.corpus.n_blocks):
        ids, offsets = dm.corpus.block(index)
        block = model._subsample_block({"seed": 0, "epoch": 0, "block": index, "shuffle": True,
                                        "ids": torch.from_numpy(ids.astype(np.int32)),
                                        "offsets": torch.from_numpy(offsets), "chunk_tokens": SEQUENTIAL_CHUNK})
        for first in range(0, len(block.order), per_step):
            chunks = min(per_step, len(block.order) - first)
            contexts = np.empty((chunks * SEQUENTIAL_CHUNK, 2 * window), dtype=np.int64)
            targets = np.empty((chunks * SEQUENTIAL_CHUNK, width), dtype=np.int64)
            labels = np.empty((chunks * SEQUENTIAL_CHUNK, width), dtype=np.float32)
            rows, _, _ = chunk_windows.chunk_windows(block.seq, block.docs, block.bounds, block.order, first, chunks,
                                                     block.window_key, block.noise_key, window,
                                                     model.hparams.shrink_window, tables.negatives, tables.threshold,
                                                     tables.alias, tables.paths, tables.path_labels, contexts, targets,
                                                     labels)
            drawn.append((contexts[:rows], targets[:rows], labels[:rows]))
            if len(drawn) == steps:
                return drawn, per_step * SEQUENTIAL_CHUNK
    return drawn, per_step * SEQUENTIAL_CHUNK


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=sorted(MODES), default="cbow-negative")
    parser.add_argument("--steps", type=int, default=15)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    from w2v.kernels.sequential import sequential_sgd
    from w2v.models.binary_output import SEQUENTIAL_SYNC

    dm = load_corpus(None, "word2vec")
    steps, positions = draw_steps(dm, args.mode, args.steps)
    mean_context = MODES[args.mode][0] == "cbow"
    start = (np.random.default_rng(0).random((len(dm.vocab), 100), dtype=np.float32) - 0.5) / 100
    times: dict[str, list[float]] = {name: [] for name in SETTINGS}
    for _ in range(args.rounds):
        for name, (shards, lock_free, threads) in SETTINGS.items():
            w_in, w_out = start.copy(), np.zeros_like(start)
            sequential_sgd(w_in, w_out, *steps[0], 0.025, 0.025, shards, SEQUENTIAL_SYNC, mean_context, False,
                           lock_free, threads)  # compiled or loaded before the clock starts
            w_in, w_out = start.copy(), np.zeros_like(start)
            began = time.perf_counter()
            for contexts, targets, labels in steps:
                sequential_sgd(w_in, w_out, contexts, targets, labels, 0.025, 0.025, shards, SEQUENTIAL_SYNC,
                               mean_context, False, lock_free, threads)
            times[name].append((time.perf_counter() - began) / len(steps) * 1e3)
    windows = np.mean([len(contexts) for contexts, _, _ in steps])
    print(f"{args.mode}: {len(steps)} steps of {positions:,} positions ({windows:,.0f} windows each), ms a step")
    for name, values in times.items():
        print(f"  {name}: {' '.join(f'{v:.1f}' for v in values)}   fastest {min(values):.1f}")


if __name__ == "__main__":
    main()
