"""Callbacks that make a run inspectable: throughput, probe-word neighbours, projector, exported vectors."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Sequence

import lightning as L
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only

log = logging.getLogger(__name__)

PROBE_WORDS = ("movie", "actor", "scene", "music", "dvd", "story", "funny", "laugh", "love", "director")


def _tensorboard(trainer: L.Trainer):
    """The SummaryWriter of the run's TensorBoard logger, or None when there is none."""
    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger):
            return logger.experiment
    return None


class WordsPerSecond(L.Callback):
    """Logs corpus words (center positions) processed per second: per logging interval and per epoch."""

    def __init__(self, log_every_n_steps: int = 50):
        self.log_every_n_steps = log_every_n_steps

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._epoch_start = self._window_start = time.perf_counter()
        self._epoch_words = self._window_words = 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._epoch_words += batch["n_tokens"]
        self._window_words += batch["n_tokens"]
        if (batch_idx + 1) % self.log_every_n_steps == 0:
            now = time.perf_counter()
            pl_module.log("train/words_per_sec", self._window_words / max(now - self._window_start, 1e-9),
                          on_step=True, on_epoch=False, prog_bar=True)
            self._window_start, self._window_words = now, 0

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        seconds = time.perf_counter() - self._epoch_start
        rate = self._epoch_words / max(seconds, 1e-9)
        pl_module.log("train/epoch_words_per_sec", rate, on_step=False, on_epoch=True)
        log.info("epoch %d: %s words in %.1f s, %.0f words/s", trainer.current_epoch, f"{self._epoch_words:,}", seconds, rate)


class NearestNeighbours(L.Callback):
    """At the end of every `every_n_epochs` epoch, logs the nearest neighbours of probe words as text."""

    def __init__(self, probe_words: Sequence[str] = PROBE_WORDS, k: int = 8, every_n_epochs: int = 1):
        self.probe_words, self.k, self.every_n_epochs = list(probe_words), k, every_n_epochs

    def table(self, pl_module) -> str:
        vectors = pl_module.word_vectors()
        rows = ["| word | nearest neighbours |", "|---|---|"]
        for word in self.probe_words:
            if word in vectors:
                near = ", ".join(f"{w} ({s:.2f})" for w, s in vectors.most_similar(word, topn=self.k))
            else:
                near = "*(not in vocabulary)*"
            rows.append(f"| {word} | {near} |")
        return "\n".join(rows)

    @rank_zero_only
    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if (trainer.current_epoch + 1) % self.every_n_epochs:
            return
        table = self.table(pl_module)
        log.info("nearest neighbours after epoch %d:\n%s", trainer.current_epoch, table)
        writer = _tensorboard(trainer)
        if writer is not None:
            writer.add_text("neighbours", table, global_step=trainer.global_step)


class EmbeddingProjector(L.Callback):
    """At the end of training, logs the `n_words` most frequent words' vectors to the Projector tab."""

    def __init__(self, n_words: int = 2000):
        self.n_words = n_words

    @rank_zero_only
    def on_train_end(self, trainer, pl_module) -> None:
        writer = _tensorboard(trainer)
        if writer is None:
            return
        vectors = pl_module.word_vectors()  # in vocabulary order, which is by decreasing frequency
        writer.add_embedding(torch.from_numpy(vectors.vectors[: self.n_words]), metadata=vectors.words[: self.n_words],
                             tag="word_vectors", global_step=trainer.global_step)


class ExportVectors(L.Callback):
    """At the end of training, writes `vectors.txt` (word2vec text format) and `vocab.tsv` into the run directory."""

    def __init__(self, dirpath: str, binary: bool = False):
        self.dirpath, self.binary = Path(dirpath), binary

    @rank_zero_only
    def on_train_end(self, trainer, pl_module) -> None:
        pl_module.vocab.save_tsv(self.dirpath / "vocab.tsv")
        name = "vectors.bin" if self.binary else "vectors.txt"
        pl_module.word_vectors().save_word2vec_format(self.dirpath / name, binary=self.binary)
        log.info("Saved %s and vocab.tsv in %s", name, self.dirpath)
