"""LightningDataModules for the corpora: IMDb reviews and the user's own text file.

Both share one pipeline: read documents -> spaCy tokens (cached) -> vocabulary -> vocabulary ids ->
per-epoch batches of (center, context window) examples, shaped for the model being trained.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
from abc import ABC, abstractmethod
from pathlib import Path
from queue import Empty, Queue
from typing import Any, BinaryIO, Callable, Iterable, Iterator

import lightning as L
import numpy as np
import torch
from torch.utils.data import IterableDataset

from w2v.data import imdb
from w2v.data.cache import cached_tokens, id_sink
from w2v.data.corpus import Corpus
from w2v.data.examples import Examples, draw_examples
from w2v.data.sampling import NoiseTable, SamplerSettings, WindowSampler
from w2v.data.text import READER_VERSION, check_text_file, iter_lines
from w2v.data.tokenize import TokenizedCorpus, TokenizerSettings, TokenMerger, resolve_workers, tokenize_stream
from w2v.data.vocab import Vocabulary, check_vocab_settings
from w2v.errors import ConfigError, check_number
from w2v.kernels.device_sampling import block_chunks

log = logging.getLogger(__name__)
_DONE = object()  # end-of-epoch marker in the batch queue
BATCHINGS = ("centers", "examples")
# What w2v's batching (data.batching=centers) shuffles within a block each epoch (`block_order`);
# auto: what the model trains best on (`SamplerSettings.shuffle_unit`).
SHUFFLE_UNITS = ("auto", "document", "position")
# The overrides that give a model that draws its own samples (SGNS's GPU path, the full softmax on
# a GPU) the data loader's windows instead.
LOADER_FIX = "model.kernels=torch for SGNS, model.sampling=loader for the full softmax"


class BatchStream(IterableDataset, ABC):
    """One epoch of batches, made in a background thread; a subclass says how many and how to make each.

    Every batch draws from its own generator, seeded by (seed, epoch, batch index): a process of a
    data-parallel run makes only its own share of the batches (batch i goes to rank i mod
    `world_size`), and a run resumed mid-epoch skips the batches it has done without making them,
    both drawing exactly what one uninterrupted process would. Lightning saves `state_dict()` in
    checkpoints and hands it back to `load_state_dict()` on resume.
    """

    def __init__(self, seed: int, progress: Callable[[], tuple[int, int]], rank: int = 0, world_size: int = 1):
        self.seed = seed
        self.progress = progress  # () -> (epoch, batches this process has completed in it)
        self.rank, self.world_size = rank, world_size
        self._resume: tuple[int, int] | None = None

    @abstractmethod
    def total_batches(self) -> int:
        """Batches in an epoch, over all processes."""

    @abstractmethod
    def epoch_batches(self, epoch: int) -> Callable[[int], tuple[dict[str, np.ndarray], int]]:
        """For `epoch`, a function making batch `index`: its examples (centers (B,), contexts (B, C),
        mask (B, C) and for negative sampling noise (B, K)) and the corpus tokens it stands for."""

    def __len__(self) -> int:
        # Every rank runs the same number of steps (DDP steps in lockstep); the last ranks of an
        # uneven split wrap around to the epoch's first batches.
        return math.ceil(self.total_batches() / self.world_size)

    def state_dict(self) -> dict[str, int]:
        epoch, done = self.progress()
        return {"epoch": epoch, "batches_done": done}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self._resume = (int(state["epoch"]), int(state["batches_done"]))

    def __iter__(self) -> Iterator[dict[str, Any]]:
        # Batches are made in a background thread, overlapping with training (NumPy releases the GIL).
        queue: Queue = Queue(maxsize=4)
        stop = threading.Event()
        thread = threading.Thread(target=self._produce, args=(queue, stop), daemon=True)
        thread.start()
        try:
            while (item := queue.get()) is not _DONE:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            while thread.is_alive():  # unblock a producer waiting on a full queue
                with contextlib.suppress(Empty):
                    queue.get(timeout=0.05)

    def _produce(self, queue: Queue, stop: threading.Event) -> None:
        try:
            for batch in self._batches():
                if stop.is_set():
                    return
                queue.put(batch)
            queue.put(_DONE)
        except BaseException as err:  # handed to the consumer, which raises it
            queue.put(err)

    def _batches(self) -> Iterator[dict[str, Any]]:
        epoch = self.progress()[0]
        start = 0
        if self._resume is not None and self._resume[0] == epoch:
            start = self._resume[1]
            log.info("Resuming epoch %d at batch %d of %d", epoch, start, len(self))
        self._resume = None
        make, total = self.epoch_batches(epoch), self.total_batches()
        for step in range(start, len(self)):
            examples, n_tokens = make((step * self.world_size + self.rank) % total)
            # centers (B,), contexts (B, C), mask (B, C) and for negative sampling noise (B, K), as tensors
            batch: dict[str, Any] = {k: _as_tensor(v) for k, v in examples.items()}
            batch["n_tokens"] = n_tokens  # corpus tokens the batch covers, before subsampling
            yield batch


def block_schedule(seed: int, epoch: int, block_batches: np.ndarray, shuffle: bool) -> tuple[np.ndarray, np.ndarray]:
    """An epoch's block order (drawn per epoch, identically on every rank) and the first batch index of
    each block in it: blocks (n_blocks,), first (n_blocks + 1,), given each block's batch count."""
    n_blocks = len(block_batches)
    blocks = np.random.default_rng([seed, epoch]).permutation(n_blocks) if shuffle else np.arange(n_blocks)
    return blocks, np.concatenate([[0], np.cumsum(block_batches[blocks])])


def block_order(offsets: np.ndarray, rng: np.random.Generator, shuffle: bool, unit: str) -> np.ndarray:
    """(n,) int32 the order in which an epoch visits a block's positions, given its document offsets (m + 1,).

    document: the documents in random order, each document's positions in order, as word2vec reads
    them. Consecutive centers share most of their context rows, which stay in the processor's
    cache, and the sampler's lookups run along memory instead of jumping across the block.
    position: the positions in random order, every batch a sample drawn from the whole block.
    """
    n = int(offsets[-1])
    if not shuffle or unit == "position":
        order = np.arange(n, dtype=np.int32)
        if shuffle:
            rng.shuffle(order)
        return order
    lengths = np.diff(offsets)  # (m,)
    docs = rng.permutation(len(lengths))  # (m,)
    placed_at = np.cumsum(lengths[docs]) - lengths[docs]  # (m,) where each document starts in the order
    return (np.repeat(offsets[:-1][docs] - placed_at, lengths[docs]) + np.arange(n)).astype(np.int32)


def _as_tensor(value):
    """A batch's NumPy arrays as tensors, int64 or bool; anything else as it is."""
    if not isinstance(value, np.ndarray):
        return value
    return torch.from_numpy(value) if value.dtype == bool else torch.from_numpy(value).long()


class EpochBatches(BatchStream):
    """w2v's batching: the corpus's blocks in (shuffled) order, each block's positions in the order
    `block_order` draws (`shuffle_unit`), `batch_size` center positions a batch, each with its
    window, drawn afresh every epoch.

    The batch count is fixed (every position is visited), so the progress bar and the linear
    learning-rate decay know the length of an epoch; subsampling only thins each batch.
    """

    def __init__(self, corpus: Corpus, sampler: WindowSampler, batch_size: int, shuffle: bool, seed: int,
                 progress: Callable[[], tuple[int, int]], rank: int = 0, world_size: int = 1, *,
                 shuffle_unit: str):
        super().__init__(seed, progress, rank, world_size)
        self.corpus, self.sampler, self.batch_size, self.shuffle = corpus, sampler, batch_size, shuffle
        self.shuffle_unit = shuffle_unit
        self.block_batches = -(-corpus.block_sizes // batch_size)  # (n_blocks,) batches of each block

    def total_batches(self) -> int:
        return int(self.block_batches.sum())

    def epoch_batches(self, epoch):
        blocks, first = block_schedule(self.seed, epoch, self.block_batches, self.shuffle)
        loaded: dict[str, Any] = {"k": None}

        def make(index: int):
            k = int(np.searchsorted(first, index, side="right")) - 1  # the index's block, in this epoch's order
            if k != loaded["k"]:  # a block's subsampling and order are drawn from its own generator
                block_rng = np.random.default_rng([self.seed, epoch, 1, int(blocks[k])])
                ids, offsets = self.corpus.block(int(blocks[k]))
                self.sampler.start_block(ids, offsets, block_rng)
                loaded.update(k=k, order=block_order(offsets, block_rng, self.shuffle, self.shuffle_unit))
            j = index - first[k]
            positions = loaded["order"][j * self.batch_size : (j + 1) * self.batch_size]
            return self.sampler.batch(positions, np.random.default_rng([self.seed, epoch, 0, index])), len(positions)

        return make


class ExampleBatches(BatchStream):
    """The notebooks' batching (`data.batching=examples`): the examples drawn once (`examples.draw_examples`),
    shuffled over the whole epoch, `batch_size` examples a batch, each pair with its own noise words."""

    def __init__(self, examples: Examples, n_tokens: int, batch_size: int, shuffle: bool, seed: int,
                 progress: Callable[[], tuple[int, int]], noise: NoiseTable | None = None, negatives: int = 0,
                 rank: int = 0, world_size: int = 1):
        super().__init__(seed, progress, rank, world_size)
        if len(examples) == 0:
            raise ConfigError("no training example: the corpus is shorter than a window; use a longer corpus "
                              "or a smaller model.window")
        self.examples, self.n_tokens, self.batch_size, self.shuffle = examples, n_tokens, batch_size, shuffle
        self.noise, self.negatives = noise, negatives

    def total_batches(self) -> int:
        return -(-len(self.examples) // self.batch_size)

    def epoch_batches(self, epoch):
        n = len(self.examples)
        order = np.random.default_rng([self.seed, epoch]).permutation(n) if self.shuffle else np.arange(n)
        total = self.total_batches()

        def make(index: int):
            examples = self.examples.take(order[index * self.batch_size : (index + 1) * self.batch_size])
            if self.noise is not None:  # (B, K) independent draws for every pair
                rng = np.random.default_rng([self.seed, epoch, 0, index])
                examples["noise"] = self.noise.sample(len(examples["centers"]), self.negatives, rng)
            # the stream's tokens spread over the batches, so that an epoch's sum is the corpus's length
            return examples, (index + 1) * self.n_tokens // total - index * self.n_tokens // total

        return make


class ChunkBatches(BatchStream):
    """For a model that draws its own samples (SGNS's GPU path, the sequential CPU kernels): an epoch
    visits the corpus's blocks in (shuffled) order, each cut into chunks of `chunk_tokens` positions,
    `step_tokens` positions' worth of chunks a step. A batch names the block and the step's chunks;
    the first batch of a block also carries the block's ids (n,) int32, its document offsets and the
    chunks' size, which the model keeps (on its device) for the block's other steps. Subsampling,
    the chunks' order, windows and noise words are the model's to draw, from counter-based streams
    keyed by (seed, epoch, block).
    """

    def __init__(self, corpus: Corpus, chunk_tokens: int, step_tokens: int, shuffle: bool, seed: int,
                 progress: Callable[[], tuple[int, int]], rank: int = 0, world_size: int = 1):
        super().__init__(seed, progress, rank, world_size)
        if world_size > 1:
            raise ConfigError("a model that draws its own samples on the device trains on one device; use "
                              f"trainer.devices=1, or the data loader's windows for data-parallel training ({LOADER_FIX})")
        # A step of fewer positions than a chunk takes chunks of its size.
        self.corpus, self.chunk_tokens, self.shuffle = corpus, min(chunk_tokens, step_tokens), shuffle
        self.per_step = max(1, step_tokens // self.chunk_tokens)
        # (n_blocks,) as the model cuts each block on the device
        self.block_chunks = np.array([block_chunks(int(size), self.chunk_tokens) for size in corpus.block_sizes])
        self.block_steps = -(-self.block_chunks // self.per_step)  # (n_blocks,)

    def total_batches(self) -> int:
        return int(self.block_steps.sum())

    def epoch_batches(self, epoch):
        blocks, first = block_schedule(self.seed, epoch, self.block_steps, self.shuffle)
        loaded: dict[str, Any] = {"k": None}

        def make(index: int):
            k = int(np.searchsorted(first, index, side="right")) - 1  # the index's block, in this epoch's order
            block, j = int(blocks[k]), int(index - first[k])
            first_chunk = j * self.per_step
            chunks = min(self.per_step, int(self.block_chunks[block]) - first_chunk)
            size = int(self.corpus.block_sizes[block])
            batch: dict[str, Any] = {"seed": self.seed, "epoch": epoch, "block": block, "shuffle": self.shuffle,
                                     "first_chunk": first_chunk, "chunks": chunks}
            if k != loaded["k"]:
                ids, offsets = self.corpus.block(block)
                batch.update(ids=torch.from_numpy(ids.astype(np.int32)), offsets=torch.from_numpy(offsets),
                             chunk_tokens=self.chunk_tokens)
                loaded["k"] = k
            covered = min(size, (first_chunk + chunks) * self.chunk_tokens) - first_chunk * self.chunk_tokens
            return batch, covered

        return make


class CorpusDataModule(L.LightningDataModule, ABC):
    """Shared pipeline; subclasses say how to read documents and how to fingerprint the source."""

    name = "corpus"

    def __init__(self, *, cache_dir: str, batch_size: int | str, max_docs: int | None, shuffle: bool, seed: int,
                 tokenizer: dict, vocab: dict, block_tokens: int, batching: str, shuffle_unit: str = "auto"):
        """Every setting comes from the data config (conf/data/), the one place defaults are written;
        `w2v.api.build_datamodule(*overrides)` builds one from it."""
        super().__init__()
        if batch_size != "auto":
            check_number("data.batch_size", batch_size, integer=True, least=1,
                         unit=" (centers, or examples, a batch), or auto (the model's)")
        if batching not in BATCHINGS:
            raise ConfigError(f"data.batching={batching!r} is unknown; use centers (w2v's) or examples (the notebooks')")
        if shuffle_unit not in SHUFFLE_UNITS:
            raise ConfigError(f"data.shuffle_unit={shuffle_unit!r} is unknown; use auto (the model's), document "
                              "(each document's positions in order, as word2vec reads them) or position")
        check_number("data.max_docs", max_docs, integer=True, least=1, null="for the whole corpus")
        tokenizer = dict(tokenizer)
        self.n_process = resolve_workers(tokenizer.pop("n_process", -1))
        self.tokenizer = TokenizerSettings(**tokenizer)
        self.vocab_settings = {**vocab, "specials": list(vocab["specials"])}
        check_vocab_settings(**self.vocab_settings)
        self.cache_dir, self.batch_size, self.max_docs, self.shuffle, self.seed = cache_dir, batch_size, max_docs, shuffle, seed
        Corpus.check_block_tokens(block_tokens)  # before any heavy work
        self.block_tokens, self.batching, self.shuffle_unit = block_tokens, batching, shuffle_unit
        self.vocab: Vocabulary | None = None
        self.corpus: Corpus | None = None
        self._tokens: TokenizedCorpus | None = None
        self.raw_tokens = 0

    # -- what subclasses provide -------------------------------------------------------------
    def check_source(self) -> None:
        """Raise a one-line ConfigError if the source cannot be read; called before any heavy work."""

    @abstractmethod
    def source_description(self) -> dict:
        """What identifies the source's content, for the cache key (path, size, modification time)."""

    @abstractmethod
    def documents(self) -> Iterable[str]:
        """The documents, in a fixed order, the first `max_docs` only; read as they are consumed where the source allows."""

    # -- the shared pipeline ---------------------------------------------------------------
    def tokens(self) -> TokenizedCorpus:
        """The tokenized corpus, built or verified and loaded from the cache once per datamodule."""
        if self._tokens is None:
            self._tokens = cached_tokens(self.cache_dir, self.name, self.cache_description(), self._tokenize)
        return self._tokens

    def cache_description(self) -> dict:
        """What the corpus's cache entry is keyed by (`cache.entry_folder` finds it): the source's
        identity, max_docs and the tokenizer's settings."""
        return {"source": self.source_description(), "max_docs": self.max_docs, "tokenizer": vars(self.tokenizer)}

    def _tokenize(self, ids_file: BinaryIO) -> TokenMerger:
        merger = tokenize_stream(self.documents(), self.tokenizer, self.n_process, id_sink(ids_file))
        if merger.n_tokens == 0:
            raise ConfigError(
                f"no token left after preprocessing {len(merger.offsets()) - 1} documents; check the corpus text "
                f"or relax data.tokenizer (alpha_only={self.tokenizer.alpha_only})"
            )
        return merger

    def prepare_data(self) -> None:
        self.check_source()
        self.tokens()

    def setup(self, stage: str | None = None) -> None:
        if self.corpus is not None:
            return
        self.check_source()
        tokens = self.tokens()
        self.raw_tokens = len(tokens.ids)
        self.vocab = Vocabulary.build(tokens.counts, tokens.words, **self.vocab_settings)
        self.corpus = Corpus(tokens, self.vocab, self.block_tokens)
        log.info("%d documents, %s", tokens.n_docs, self.vocab.describe(self.raw_tokens))

    def train_dataloader(self) -> BatchStream:
        trainer = self.trainer
        settings: SamplerSettings = trainer.lightning_module.sampler_settings()

        def progress() -> tuple[int, int]:
            return trainer.current_epoch, trainer.fit_loop.epoch_loop.batch_progress.current.processed

        # Returned as is, not in a DataLoader: it batches itself, and Lightning checkpoints its state.
        shard = {"rank": trainer.global_rank, "world_size": trainer.world_size}
        batch_size = settings.batch_size if self.batch_size == "auto" else self.batch_size
        windows_asked = (self.batching, self.shuffle_unit) != ("centers", "auto")  # only the loader gives these
        if settings.draws_samples and not (settings.windows_too and windows_asked):
            if self.batching != "centers":
                raise ConfigError(f"data.batching={self.batching} cannot feed a model that draws its own samples; use "
                                  f"data.batching=centers, or the data loader's windows ({LOADER_FIX})")
            if self.shuffle_unit != "auto":
                raise ConfigError(f"data.shuffle_unit={self.shuffle_unit} orders the data loader's windows; a model "
                                  f"that draws its own samples orders them itself; use data.shuffle_unit=auto, or "
                                  f"the data loader's windows ({LOADER_FIX})")
            # data.batch_size sets the CPU kernels' steps (whole chunks) and the full softmax's, not
            # SGNS's GPU path's (model.step_tokens)
            step_tokens = self.batch_size if settings.batch_steps and self.batch_size != "auto" else settings.step_tokens
            return ChunkBatches(self.corpus, settings.chunk_tokens, step_tokens, self.shuffle, self.seed, progress,
                                **shard)
        if self.batching == "centers":
            sampler = WindowSampler(self.vocab.counts, settings)
            unit = settings.shuffle_unit if self.shuffle_unit == "auto" else self.shuffle_unit
            return EpochBatches(self.corpus, sampler, batch_size, self.shuffle, self.seed, progress, **shard,
                                shuffle_unit=unit)
        ids, _ = self.corpus.all_ids()  # one stream: the notebooks' contexts cross documents
        examples = draw_examples(ids, self.vocab.counts, settings, settings.pairs, np.random.default_rng([self.seed, 2]))
        log.info("%s training examples (%s), drawn once from a stream of %s tokens", f"{len(examples):,}",
                 "pairs" if settings.pairs else "windows", f"{len(examples.stream):,}")
        noise = NoiseTable(self.vocab.counts, settings.noise_power) if settings.negatives else None
        return ExampleBatches(examples, len(ids), batch_size, self.shuffle, self.seed, progress, noise,
                              settings.negatives, **shard)


class ImdbDataModule(CorpusDataModule):
    """The IMDb Large Movie Review dataset: 100,000 reviews, found locally or downloaded once."""

    name = "imdb"

    def __init__(self, *, data_dir: str | None, archive: str | None, download: bool, url: str = imdb.IMDB_URL,
                 md5: str | None = imdb.IMDB_MD5, **kwargs):
        super().__init__(**kwargs)
        self.data_dir, self.archive, self.url, self.md5, self.download = data_dir, archive, url, md5, download
        self._archive_path: Path | None = None

    def archive_path(self) -> Path:
        if self._archive_path is None:
            found = imdb.locate_archive(self.data_dir, self.archive)
            if found is None:
                if not self.download or self.data_dir is None:
                    raise ConfigError(
                        f"IMDb archive {imdb.ARCHIVE_NAME} not found; download it from {self.url} into the data "
                        f"directory (W2V_DATA_DIR or paths.data_dir) or pass data.archive=PATH"
                    )
                found = imdb.download_archive(self.url, Path(self.data_dir).expanduser() / imdb.ARCHIVE_NAME, self.md5)
            self._archive_path = found
        return self._archive_path

    def check_source(self) -> None:
        self.archive_path()

    def source_description(self) -> dict:
        path = self.archive_path().resolve()
        stat = path.stat()
        return {"archive": str(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}

    def documents(self) -> list[str]:
        return imdb.read_reviews(self.archive_path(), self.max_docs, move_aside=self.archive is None)


class TextDataModule(CorpusDataModule):
    """The user's own corpus: a UTF-8 text file (plain or .gz), one document per line."""

    name = "text"

    def __init__(self, *, path: str, **kwargs):
        super().__init__(**kwargs)
        if not path:
            raise ConfigError("data=text needs a corpus file; pass data.path=PATH (UTF-8 text, one document per line)")
        self.path = path

    def check_source(self) -> None:
        check_text_file(self.path)

    def source_description(self) -> dict:
        path = Path(self.path).expanduser().resolve()
        stat = path.stat()
        return {"path": str(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "reader": READER_VERSION}

    def documents(self) -> Iterator[str]:
        return iter_lines(self.path, self.max_docs)
