"""Notebook parity: each notebook experiment beside the notebooks' own loop, on the same data and seed.

    python scripts/notebook_parity.py                           # all three, 5 epochs, first 10,000 reviews
    python scripts/notebook_parity.py --arch sgns --epochs 2
    python scripts/notebook_parity.py --figures docs            # also each experiment's t-SNE figure
    python scripts/notebook_parity.py --arch skipgram --epochs 1 --max-steps 3000   # the start of an epoch

For each architecture, the notebooks' loop (scripts/notebook_loop.py) and w2v's experiment
(experiment=notebook, notebook_cbow, notebook_skipgram) train on the same tokens and vocabulary
(w2v's cache), each with torch on 2 threads; after every epoch both print the mean loss, the five
nearest words of movie and actor, WordSim-353 and SimLex-999, and the epoch's training seconds
(evaluation excluded). The closing lines give w2v's loss relative to the loop's and its speed-up.
Set W2V_DATA_DIR to the folder of aclImdb_v1.tar.gz and W2V_CACHE_DIR to reuse a tokenized cache.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import lightning as L
import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import open_dict

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # w2v from this checkout when not installed
import notebook_loop  # noqa: E402  (beside this script)

from w2v.evaluation import evaluate_all  # noqa: E402
from w2v.api import compose_config  # noqa: E402
from w2v.training import instantiate_model  # noqa: E402
from w2v.vectors import WordVectors  # noqa: E402

EXPERIMENTS = {"sgns": "notebook", "cbow": "notebook_cbow", "skipgram": "notebook_skipgram"}
PROBES = ("movie", "actor")
SEED_WORDS = ("movie", "actor", "scene", "music", "dvd", "story", "funny", "laugh", "love", "director")
THREADS = 2


def epoch_report(vectors: WordVectors) -> dict:
    scores = evaluate_all(vectors)
    return {"neighbours": {p: [w for w, _ in vectors.most_similar(p, topn=5)] if p in vectors else [] for p in PROBES},
            "wordsim353": scores["wordsim353_spearman"], "simlex999": scores["simlex999_spearman"]}


def show_progress(run: str, rows: list[dict]) -> None:
    """One line on stderr per finished epoch, so a run of hours shows (and keeps) its results as it goes."""
    r = rows[-1]
    print(f"[{time.strftime('%H:%M:%S')}] {run} epoch {len(rows)}: loss {r['loss']:.4f}, {r['seconds']:.0f} s, "
          f"movie → {', '.join(r['neighbours']['movie'])}; actor → {', '.join(r['neighbours']['actor'])}; "
          f"WordSim-353 {r['wordsim353']:.3f}, SimLex-999 {r['simlex999']:.3f}", file=sys.stderr, flush=True)


class EpochRecorder(L.Callback):
    """w2v's side: each epoch's training seconds, mean loss and report."""

    def __init__(self):
        self.rows: list[dict] = []

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        seconds = time.perf_counter() - self._start
        self.rows.append({"loss": pl_module.epoch_loss(), "seconds": seconds, **epoch_report(pl_module.word_vectors())})
        show_progress("w2v", self.rows)


def notebook_config(arch: str, max_docs: int, epochs: int):
    cfg = compose_config(f"experiment={EXPERIMENTS[arch]}")
    with open_dict(cfg):
        cfg.data.max_docs = max_docs
        cfg.trainer.max_epochs = epochs
        cfg.paths.cache_dir = os.environ.get("W2V_CACHE_DIR", cfg.paths.cache_dir)
    return cfg


def run_w2v(cfg, datamodule, figure: Path | None, max_steps: int | None) -> list[dict]:
    L.seed_everything(cfg.seed, verbose=False)
    model = instantiate_model(cfg.model, datamodule.vocab)
    recorder = EpochRecorder()
    trainer = L.Trainer(max_epochs=cfg.trainer.max_epochs, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, callbacks=[recorder],
                        limit_train_batches=max_steps)
    trainer.fit(model, datamodule=datamodule)
    if figure is not None:
        from w2v.plots import save_figure, tsne_figure

        save_figure(tsne_figure(model.word_vectors(), SEED_WORDS, k=5), figure)
    return recorder.rows


def run_loop(arch: str, cfg, datamodule, max_steps: int | None) -> list[dict]:
    ids, _ = datamodule.corpus.all_ids()
    vocab = datamodule.vocab
    used = np.flatnonzero(vocab.counts > 0)
    rows = []

    def record(epoch, result, model):
        vectors = WordVectors([vocab.words[i] for i in used], model.embed.weight.detach().numpy()[used])
        rows.append({"loss": result.loss, "seconds": result.seconds, **epoch_report(vectors)})
        show_progress("loop", rows)

    notebook_loop.train(ids, vocab.counts, arch, cfg.trainer.max_epochs, seed=cfg.seed, on_epoch=record,
                        max_steps=max_steps)
    return rows


def print_table(arch: str, runs: dict[str, list[dict]]) -> None:
    print(f"\n### {arch} ({EXPERIMENTS[arch]})\n")
    print("| epoch | run | mean loss | movie → | actor → | WordSim-353 | SimLex-999 | seconds |")
    print("|---|---|---|---|---|---|---|---|")
    for epoch in range(len(runs["loop"])):
        for name, rows in runs.items():
            r = rows[epoch]
            print(f"| {epoch + 1} | {name} | {r['loss']:.4f} | {', '.join(r['neighbours']['movie'])} | "
                  f"{', '.join(r['neighbours']['actor'])} | {r['wordsim353']:.3f} | {r['simlex999']:.3f} | "
                  f"{r['seconds']:.0f} |")
    losses = ", ".join(f"{w['loss'] / n['loss'] - 1:+.1%}" for w, n in zip(runs["w2v"], runs["loop"]))
    speed = ", ".join(f"{n['seconds'] / w['seconds']:.2f}x" for w, n in zip(runs["w2v"], runs["loop"]))
    print(f"\nw2v's mean loss against the loop's, by epoch: {losses}; w2v's speed-up per epoch: {speed}\n", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", choices=sorted(EXPERIMENTS), action="append",
                        help="architecture to compare (repeatable; default: all three)")
    parser.add_argument("--epochs", type=int, default=5, help="epochs of each run (default 5)")
    parser.add_argument("--max-docs", type=int, default=10_000, help="first N reviews (default 10,000, the notebooks')")
    parser.add_argument("--max-steps", type=int, help="end each epoch of both runs after N optimizer steps "
                                                      "(the start of an epoch, where a whole one takes too long)")
    parser.add_argument("--figures", type=Path, help="folder for each experiment's t-SNE figure (tsne-<experiment>.png)")
    args = parser.parse_args()
    if args.max_steps is not None and args.max_steps < 1:
        raise SystemExit("error: --max-steps must be at least 1")
    torch.set_num_threads(THREADS)
    print(f"## Notebook parity: first {args.max_docs:,} reviews, {args.epochs} epoch(s)"
          + (f" of {args.max_steps:,} steps" if args.max_steps else "") + f", {THREADS} threads, {time.strftime('%Y-%m-%d')}")
    for arch in args.arch or ["sgns", "cbow", "skipgram"]:
        cfg = notebook_config(arch, args.max_docs, args.epochs)
        datamodule = instantiate(cfg.data)
        datamodule.prepare_data()
        datamodule.setup("fit")
        figure = args.figures / f"tsne-{EXPERIMENTS[arch]}.png" if args.figures else None
        runs = {"loop": run_loop(arch, cfg, datamodule, args.max_steps),
                "w2v": run_w2v(cfg, datamodule, figure, args.max_steps)}
        print_table(arch, runs)


if __name__ == "__main__":
    main()
