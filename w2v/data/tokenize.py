"""spaCy preprocessing: tokenize, keep alphabetic tokens, lemmatize, lower-case; in parallel, with progress.

Documents are read as they are needed, a few chunks ahead of the workers. Workers return each
chunk as its own small word list plus int32 ids into it, far cheaper to send between processes
than lists of strings; the parent merges them and streams the ids on (to the cache file).
"""

from __future__ import annotations

import itertools
import logging
import math
import multiprocessing as mp
import os
from array import array
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Sequence, Sized

import numpy as np
from tqdm.auto import tqdm

from w2v.errors import ConfigError, check_number

log = logging.getLogger(__name__)

_CHUNK_DOCS = 500  # documents per task: big enough to amortize IPC, small enough for a smooth progress bar
_IN_PROCESS_BELOW = 2_000  # smaller corpora are not worth starting worker processes for
_LONG_DOC_CHARS = 100_000  # a chunk with a longer document is tokenized a piece at a time


@dataclass(frozen=True)
class TokenizerSettings:
    """Every setting that changes the token stream (and therefore the cache key)."""

    spacy_model: str = "blank:en"
    alpha_only: bool = True
    lemmatize: bool = False
    lowercase: bool = True
    max_doc_chars: int = 1_000_000  # longer documents are tokenized in pieces of at most this many characters

    def __post_init__(self) -> None:
        check_number("data.tokenizer.max_doc_chars", self.max_doc_chars, integer=True, least=1)


@dataclass
class TokenizedCorpus:
    """A corpus as one flat array of ids into `words`, with `offsets[i]:offsets[i+1]` the i-th document."""

    words: list[str]
    ids: np.ndarray  # (N,) int32 indices into words; memory-mapped when loaded from the cache
    offsets: np.ndarray  # (n_docs + 1,) int64
    counts: np.ndarray  # (len(words),) int64 corpus frequency of each word

    @property
    def n_docs(self) -> int:
        return len(self.offsets) - 1


def load_pipeline(settings: TokenizerSettings):
    """A spaCy pipeline: `blank:LANG` (+ lookup lemmatizer when needed) or an installed package name."""
    import spacy

    name = settings.spacy_model
    if name.startswith("blank:"):
        nlp = spacy.blank(name.split(":", 1)[1])
        if settings.lemmatize:
            try:
                nlp.add_pipe("lemmatizer", config={"mode": "lookup"})
                nlp.initialize()
            except Exception as err:  # spaCy raises several types when lookup tables are missing
                raise ConfigError(
                    f"spaCy lookup lemmatizer unavailable ({err}); pip install spacy-lookups-data "
                    f"or set data.tokenizer.lemmatize=false"
                ) from err
        return nlp
    try:
        # What a lemmatizer reads: the tags (tagger, or morphologizer in many non-English pipelines)
        # and the layer under them; parsing and entities only cost time.
        keep = ({"transformer", "tok2vec", "tagger", "morphologizer", "attribute_ruler", "lemmatizer",
                 "trainable_lemmatizer"} if settings.lemmatize else set())
        nlp = spacy.load(name)
        for pipe in list(nlp.pipe_names):
            if pipe not in keep:
                nlp.remove_pipe(pipe)
        return nlp
    except OSError as err:
        raise ConfigError(
            f"spaCy pipeline {name!r} is not installed; install it (python -m spacy download {name}) "
            f"or use data.tokenizer.spacy_model=blank:en"
        ) from err


_loaded: dict[TokenizerSettings, object] = {}  # this process's pipeline, loaded on its first chunk


def _pipeline(settings: TokenizerSettings):
    if settings not in _loaded:
        _loaded.clear()  # one at a time: a trained pipeline takes tens of megabytes
        nlp = load_pipeline(settings)
        # spaCy refuses longer texts; lower-casing a piece may lengthen it a little ("İ" takes two)
        nlp.max_length = max(nlp.max_length, 2 * settings.max_doc_chars)
        _loaded[settings] = nlp
    return _loaded[settings]


def pieces(text: str, limit: int) -> Iterator[str]:
    """`text` in consecutive pieces of at most `limit` characters, cut at a space or tab where the
    piece has one (a longer run of other characters is cut where the limit falls)."""
    start = 0
    while len(text) - start > limit:
        cut = max(text.rfind(" ", start + 1, start + limit), text.rfind("\t", start + 1, start + limit))
        cut = cut if cut > start else start + limit
        yield text[start:cut]
        start = cut
    yield text[start:]


def _token_strings(doc, settings: TokenizerSettings) -> Iterable[str]:
    for token in doc:
        if settings.alpha_only and not token.is_alpha:
            continue
        if token.is_space:
            continue
        text = token.lemma_ if settings.lemmatize and token.lemma_ else token.text
        yield text.lower() if settings.lowercase else text


def _tokenize_chunk(texts: Sequence[str], settings: TokenizerSettings) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(local words, local ids, document lengths) for one chunk. A document longer than
    `max_doc_chars` is tokenized in pieces (`pieces`), whose tokens stay one document: a corpus on
    one line, as text8, is read whole. In a worker process a pipeline that fails to load raises
    here, so its error reaches the parent through the chunk's result."""
    nlp = _pipeline(settings)
    index: dict[str, int] = {}
    ids = array("i")  # 4 bytes a token (a list takes about 36): a corpus on one line is one chunk
    lengths = np.zeros(len(texts), dtype=np.int64)
    # Lookup tables are keyed by lower-case forms ("Dogs" is not in them, "dogs" is); a trained
    # pipeline keeps the case, which its tagger needs.
    lower = settings.lowercase and settings.spacy_model.startswith("blank:")
    stream = ((piece.lower() if lower else piece, i)  # (text, its document), one piece at a time
              for i, text in enumerate(texts) for piece in pieces(text, settings.max_doc_chars))
    # spaCy holds a batch's documents at once: a long document's pieces go one by one.
    batch = 64 if max(map(len, texts), default=0) <= _LONG_DOC_CHARS else 1
    for doc, i in nlp.pipe(stream, as_tuples=True, batch_size=batch):
        before = len(ids)
        for word in _token_strings(doc, settings):
            ids.append(index.setdefault(word, len(index)))
        lengths[i] += len(ids) - before
    return list(index), np.frombuffer(ids, dtype=np.int32), lengths


class TokenMerger:
    """Merges chunk results, in order, into one id space; the ids go to `sink` as they come, so a
    corpus of any size passes through without being held: only its words, their counts and the
    document lengths stay in memory."""

    def __init__(self, sink: Callable[[np.ndarray], None]):
        self.sink = sink
        self.index: dict[str, int] = {}
        self._counts = np.zeros(0, dtype=np.int64)  # (capacity,) the first len(index) are the words'
        self._lengths: list[np.ndarray] = []
        self.n_tokens = 0

    def add(self, local_words: list[str], local_ids: np.ndarray, lengths: np.ndarray) -> None:
        index = self.index
        remap = np.fromiter((index.setdefault(w, len(index)) for w in local_words), dtype=np.int32, count=len(local_words))
        ids = remap[local_ids] if len(local_ids) else local_ids  # (n,) int32
        if len(index) > len(self._counts):  # grown by half again, so that a large vocabulary is copied few times
            grown = np.zeros(max(len(index), len(self._counts) * 3 // 2), dtype=np.int64)
            grown[: len(self._counts)] = self._counts
            self._counts = grown
        # Counted in the chunk's own ids: the work follows the chunk's size, not the vocabulary's.
        self._counts[remap] += np.bincount(local_ids, minlength=len(local_words))
        self._lengths.append(lengths)
        self.n_tokens += len(ids)
        self.sink(ids)

    @property
    def words(self) -> list[str]:
        return list(self.index)

    @property
    def counts(self) -> np.ndarray:
        """(len(words),) int64 each word's count."""
        return self._counts[: len(self.index)]

    def offsets(self) -> np.ndarray:
        lengths = np.concatenate(self._lengths) if self._lengths else np.zeros(0, dtype=np.int64)
        offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        return offsets


def resolve_workers(n_process: int) -> int:
    if n_process == 0 or n_process < -1:
        raise ConfigError(f"data.tokenizer.n_process={n_process} is invalid; use -1 (all cores) or a positive count")
    available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return available if n_process == -1 else n_process


def _chunks(texts: Iterable[str]) -> Iterator[list[str]]:
    iterator = iter(texts)
    while chunk := list(itertools.islice(iterator, _CHUNK_DOCS)):
        yield chunk


def tokenize_stream(texts: Iterable[str], settings: TokenizerSettings, n_process: int,
                    sink: Callable[[np.ndarray], None]) -> TokenMerger:
    """Tokenize `texts` (any iterable, read as it goes) on `n_process` processes; ids go to `sink` in order."""
    workers = resolve_workers(n_process)
    merger = TokenMerger(sink)
    chunks = _chunks(texts)
    head = list(itertools.islice(chunks, _IN_PROCESS_BELOW // _CHUNK_DOCS))
    total = math.ceil(len(texts) / _CHUNK_DOCS) if isinstance(texts, Sized) else None
    bar = tqdm(desc="preprocess (spaCy)", unit=" chunks", total=total, disable=None)  # None: no bar in a log file
    with bar:
        if workers == 1 or len(head) < _IN_PROCESS_BELOW // _CHUNK_DOCS:
            for chunk in itertools.chain(head, chunks):
                merger.add(*_tokenize_chunk(chunk, settings))
                bar.update()
            return merger
        log.info("Tokenizing on %d processes", workers)
        # spawn, not fork: the parent may already run torch's thread pools, which do not survive a fork.
        # An executor, not multiprocessing.Pool: a worker that dies (killed for memory, say) breaks it
        # and the wait below ends in an error, where a Pool would start another worker and wait forever.
        pool = ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"))
        try:
            pending: deque = deque()
            for chunk in itertools.chain(head, chunks):  # read here, a few chunks ahead of the workers
                pending.append(pool.submit(_tokenize_chunk, chunk, settings))
                if len(pending) >= 3 * workers:
                    merger.add(*pending.popleft().result())
                    bar.update()
            while pending:
                merger.add(*pending.popleft().result())
                bar.update()
        except BrokenProcessPool as err:
            raise RuntimeError(
                "a spaCy worker process stopped abruptly (killed for lack of memory, or see its error above); "
                "set data.tokenizer.n_process to fewer processes, or 1 to tokenize in this process"
            ) from err
        finally:
            pool.shutdown(cancel_futures=True)
    return merger


def tokenize(texts: Iterable[str], settings: TokenizerSettings, n_process: int = -1) -> TokenizedCorpus:
    """Tokenize `texts` in memory with spaCy on `n_process` processes (-1: all cores), showing progress."""
    parts: list[np.ndarray] = []
    merger = tokenize_stream(texts, settings, n_process, parts.append)
    ids = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int32)
    return TokenizedCorpus(words=merger.words, ids=ids, offsets=merger.offsets(), counts=merger.counts)
