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

from w2v.trainer_state import is_logging_step

log = logging.getLogger(__name__)



def _tensorboard(trainer: L.Trainer):
    """The SummaryWriter of the run's TensorBoard logger, or None when there is none."""
    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger):
            return logger.experiment
    return None


def _wait_for_device(pl_module) -> None:
    """Waits for the steps queued on a GPU, which returns from a launch before the work is done."""
    if pl_module.device.type == "cuda":
        torch.cuda.synchronize(pl_module.device)


class WordsPerSecond(L.Callback):
    """Logs corpus words (center positions) processed per second: per logging interval and per epoch."""

    def _start(self) -> None:
        self._epoch_start = self._window_start = time.perf_counter()
        self._epoch_words = self._window_words = 0

    def on_train_start(self, trainer, pl_module) -> None:
        self._start()  # a run resumed mid-epoch starts without on_train_epoch_start

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._start()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._epoch_words += batch["n_tokens"]
        self._window_words += batch["n_tokens"]
        if is_logging_step(trainer):
            _wait_for_device(pl_module)
            now = time.perf_counter()
            # Data-parallel processes step in lockstep on equal batches: the run's rate is this one's times their number.
            rate = self._window_words * trainer.world_size / max(now - self._window_start, 1e-9)
            pl_module.log("train/words_per_sec", rate, on_step=True, on_epoch=False, prog_bar=True, rank_zero_only=True)
            self._window_start, self._window_words = now, 0

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        _wait_for_device(pl_module)
        seconds = time.perf_counter() - self._epoch_start
        words = int(trainer.strategy.reduce(torch.tensor(float(self._epoch_words), device=pl_module.device), reduce_op="sum"))
        rate = words / max(seconds, 1e-9)
        pl_module.log("train/epoch_words_per_sec", rate, on_step=False, on_epoch=True, rank_zero_only=True)
        if trainer.is_global_zero:
            log.info("epoch %d: %s words in %.1f s, %.0f words/s", trainer.current_epoch, f"{words:,}", seconds, rate)


class NearestNeighbours(L.Callback):
    """At the end of every `every_n_epochs` epoch, logs the nearest neighbours of probe words as text."""

    def __init__(self, probe_words: Sequence[str], k: int = 8, every_n_epochs: int = 1):
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
    """At the end of fitting, writes the vectors into the run directory (train.py wrote `vocab.tsv`);
    also when a run resumed from its last epoch's checkpoint has nothing left to train.

    formats: `text` (vectors.txt) and `binary` (vectors.bin), both word2vec formats that gensim's
    `KeyedVectors.load_word2vec_format` reads, and `projector` (vectors.tsv + metadata.tsv, for the
    standalone TensorBoard projector).
    """

    FORMATS = ("text", "binary", "projector")

    def __init__(self, dirpath: str, formats: Sequence[str] = ("text",)):
        from w2v.errors import ConfigError

        unknown = sorted(set(formats) - set(self.FORMATS))
        if unknown:
            raise ConfigError(f"callbacks.export.formats: {unknown[0]!r} is unknown; use any of {', '.join(self.FORMATS)}")
        self.dirpath, self.formats = Path(dirpath), list(formats)

    @rank_zero_only
    def on_fit_end(self, trainer, pl_module) -> None:
        from w2v.vectors import save_projector_tsv

        vectors = pl_module.word_vectors()
        if "text" in self.formats:
            vectors.save_word2vec_format(self.dirpath / "vectors.txt")
        if "binary" in self.formats:
            vectors.save_word2vec_format(self.dirpath / "vectors.bin", binary=True)
        if "projector" in self.formats:
            save_projector_tsv(vectors, self.dirpath / "vectors.tsv", self.dirpath / "metadata.tsv")
        log.info("Saved vectors (%s) in %s", ", ".join(self.formats), self.dirpath)


class IntrinsicEvaluation(L.Callback):
    """Scores the vectors on WordSim-353, SimLex-999 and the Google analogies every `every_n_epochs`.

    Files default to gensim's copies; name others in the config, which are read at once, so that a
    bad path or line stops the run before training, not after its first epoch. Without gensim's
    copies (no gensim), training goes on and one warning says how to get the files.
    """

    metric_names = ("eval/wordsim353_spearman", "eval/simlex999_spearman", "eval/analogy_3cosadd", "eval/analogy_3cosmul")

    def __init__(self, every_n_epochs: int = 1, wordsim: str | None = None, simlex: str | None = None,
                 analogies: str | None = None, restrict_vocab: int = 300_000):
        from w2v.errors import ConfigError, check_number
        from w2v.evaluation import read_analogies, read_word_pairs

        check_number("callbacks.evaluation.every_n_epochs", every_n_epochs, integer=True, least=1)
        check_number("callbacks.evaluation.restrict_vocab", restrict_vocab, integer=True, least=1,
                     null="for the whole vocabulary")
        self.every_n_epochs = every_n_epochs
        self.files = {"wordsim": wordsim, "simlex": simlex, "analogies": analogies}
        for key, path in self.files.items():
            if path is not None:
                try:
                    (read_analogies if key == "analogies" else read_word_pairs)(path)
                except ConfigError as err:
                    raise ConfigError(f"callbacks.evaluation.{key}: {err}") from None
        self.restrict_vocab = restrict_vocab
        self._disabled = False

    def scores(self, pl_module) -> dict[str, float]:
        from w2v.evaluation import evaluate_all

        metrics = evaluate_all(pl_module.word_vectors(), restrict_vocab=self.restrict_vocab, **self.files)
        return {f"eval/{name}": value for name, value in metrics.items()}

    @rank_zero_only  # the processes of a data-parallel run hold the same vectors
    def on_train_epoch_end(self, trainer, pl_module) -> None:
        last = trainer.current_epoch + 1 >= trainer.max_epochs
        if self._disabled or ((trainer.current_epoch + 1) % self.every_n_epochs and not last):
            return
        from w2v.errors import ConfigError

        try:
            scores = self.scores(pl_module)
        except ConfigError as err:
            log.warning("intrinsic evaluation skipped: %s", err)
            self._disabled = True
            return
        # NaN (too few known pairs) would break the logger's aggregation; it is left out instead.
        scores = {k: v for k, v in scores.items() if v == v}
        pl_module.log_dict(scores, on_step=False, on_epoch=True, rank_zero_only=True)
        log.info("evaluation after epoch %d: %s", trainer.current_epoch,
                 ", ".join(f"{k.split('/')[1]} {v:.3f}" for k, v in scores.items()))


class TsneFigure(L.Callback):
    """At the end of training, the t-SNE map of the probe words' neighbourhoods: TensorBoard figure and PNG."""

    def __init__(self, path: str, probe_words: Sequence[str], k: int = 10):
        from w2v.errors import check_number

        check_number("callbacks.tsne.k", k, integer=True, least=1, unit=" (neighbours per probe word)")
        self.path, self.probe_words, self.k = Path(path), list(probe_words), k

    @rank_zero_only
    def on_train_end(self, trainer, pl_module) -> None:
        from w2v.errors import ConfigError
        from w2v.plots import save_figure, tsne_figure

        try:
            figure = tsne_figure(pl_module.word_vectors(), self.probe_words, self.k)
        except ConfigError as err:  # too few words for a map: the run's vectors matter more than its figure
            log.warning("t-SNE figure skipped: %s", err)
            return
        if figure is None:
            log.warning("t-SNE figure skipped: none of the probe words is in the vocabulary")
            return
        save_figure(figure, self.path)
        writer = _tensorboard(trainer)
        if writer is not None:
            writer.add_figure("tsne_neighbours", figure, global_step=trainer.global_step)
