"""spaCy preprocessing: tokenize, keep alphabetic tokens, lemmatize, lower-case; in parallel, with progress.

Workers return each chunk as its own small word list plus int32 ids into it, which is far
cheaper to send between processes than lists of strings, and the parent merges them.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
from tqdm.auto import tqdm

from w2v.errors import ConfigError

log = logging.getLogger(__name__)

_CHUNK_DOCS = 500  # documents per task: big enough to amortize IPC, small enough for a smooth progress bar
_IN_PROCESS_BELOW = 2_000  # smaller corpora are not worth starting worker processes for


@dataclass(frozen=True)
class TokenizerSettings:
    """Every setting that changes the token stream (and therefore the cache key)."""

    spacy_model: str = "blank:en"
    alpha_only: bool = True
    lemmatize: bool = False
    lowercase: bool = True
    max_doc_chars: int = 1_000_000

    def __post_init__(self) -> None:
        if self.max_doc_chars < 1:
            raise ConfigError(f"data.tokenizer.max_doc_chars={self.max_doc_chars} must be at least 1")


@dataclass
class TokenizedCorpus:
    """A corpus as one flat array of ids into `words`, with `offsets[i]:offsets[i+1]` the i-th document."""

    words: list[str]
    ids: np.ndarray  # (N,) int32 indices into words
    offsets: np.ndarray  # (n_docs + 1,) int64

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
        keep = {"tok2vec", "tagger", "attribute_ruler", "lemmatizer"} if settings.lemmatize else set()
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


_worker_nlp = None
_worker_settings: TokenizerSettings | None = None


def _init_worker(settings: TokenizerSettings) -> None:
    global _worker_nlp, _worker_settings
    _worker_settings = settings
    _worker_nlp = load_pipeline(settings)


def _token_strings(doc, settings: TokenizerSettings) -> Iterable[str]:
    for token in doc:
        if settings.alpha_only and not token.is_alpha:
            continue
        if token.is_space:
            continue
        text = token.lemma_ if settings.lemmatize and token.lemma_ else token.text
        yield text.lower() if settings.lowercase else text


def _tokenize_chunk(texts: Sequence[str]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(local words, local ids, document lengths) for one chunk, in the worker's pipeline."""
    settings, nlp = _worker_settings, _worker_nlp
    index: dict[str, int] = {}
    ids: list[int] = []
    lengths = np.zeros(len(texts), dtype=np.int64)
    clipped = (t[: settings.max_doc_chars] for t in texts)
    if settings.lowercase and settings.spacy_model.startswith("blank:"):
        # Lookup tables are keyed by lower-case forms ("Dogs" is not in them, "dogs" is); a trained
        # pipeline keeps the case, which its tagger needs.
        clipped = (t.lower() for t in clipped)
    for i, doc in enumerate(nlp.pipe(clipped, batch_size=64)):
        before = len(ids)
        for word in _token_strings(doc, settings):
            ids.append(index.setdefault(word, len(index)))
        lengths[i] = len(ids) - before
    return list(index), np.asarray(ids, dtype=np.int32), lengths


def _merge(chunks: Iterable[tuple[list[str], np.ndarray, np.ndarray]]) -> TokenizedCorpus:
    index: dict[str, int] = {}
    id_parts, length_parts = [], []
    for local_words, local_ids, lengths in chunks:
        remap = np.fromiter((index.setdefault(w, len(index)) for w in local_words), dtype=np.int32, count=len(local_words))
        id_parts.append(remap[local_ids] if len(local_ids) else local_ids)
        length_parts.append(lengths)
    lengths = np.concatenate(length_parts) if length_parts else np.zeros(0, dtype=np.int64)
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    ids = np.concatenate(id_parts) if id_parts else np.zeros(0, dtype=np.int32)
    return TokenizedCorpus(words=list(index), ids=ids, offsets=offsets)


def resolve_workers(n_process: int) -> int:
    if n_process == 0 or n_process < -1:
        raise ConfigError(f"data.tokenizer.n_process={n_process} is invalid; use -1 (all cores) or a positive count")
    available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return available if n_process == -1 else n_process


def tokenize(texts: Sequence[str], settings: TokenizerSettings, n_process: int = -1) -> TokenizedCorpus:
    """Tokenize `texts` with spaCy on `n_process` processes (-1: all cores), showing progress."""
    workers = resolve_workers(n_process)
    chunks = [texts[i : i + _CHUNK_DOCS] for i in range(0, len(texts), _CHUNK_DOCS)]
    bar = dict(desc="preprocess (spaCy)", unit=" chunks", total=len(chunks))
    if workers == 1 or len(texts) < _IN_PROCESS_BELOW:
        _init_worker(settings)
        return _merge(_tokenize_chunk(c) for c in tqdm(chunks, **bar))
    log.info("Tokenizing %d documents on %d processes", len(texts), workers)
    # spawn, not fork: the parent may already run torch's thread pools, which do not survive a fork.
    with mp.get_context("spawn").Pool(workers, initializer=_init_worker, initargs=(settings,)) as pool:
        return _merge(tqdm(pool.imap(_tokenize_chunk, chunks), **bar))
