"""A corpus in vocabulary ids: one flat id array and document offsets, ready for sample generation."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from w2v.data.tokenize import TokenizedCorpus
from w2v.data.vocab import Vocabulary
from w2v.errors import ConfigError


@dataclass
class Corpus:
    """`ids[offsets[d]:offsets[d+1]]` are the vocabulary ids of document d."""

    ids: np.ndarray  # (N,) int32 vocabulary ids
    offsets: np.ndarray  # (n_docs + 1,) int64

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def n_docs(self) -> int:
        return len(self.offsets) - 1

    @classmethod
    def from_tokens(cls, tokens: TokenizedCorpus, vocab: Vocabulary) -> "Corpus":
        """Map tokens to vocabulary ids; out-of-vocabulary tokens become <UNK> or are dropped, per `vocab`."""
        ids = vocab.lookup_table(tokens.words).astype(np.int32)[np.asarray(tokens.ids)]
        offsets = np.asarray(tokens.offsets, dtype=np.int64)
        if vocab.unk_id is None:
            kept = ids >= 0
            kept_before = np.concatenate([[0], np.cumsum(kept)])
            ids, offsets = ids[kept], kept_before[offsets]
        if len(ids) == 0:
            raise ConfigError(
                "no token of the corpus is in the vocabulary; lower data.vocab.min_count or use a larger corpus"
            )
        return cls(ids=ids, offsets=offsets)


def count_words(tokens: TokenizedCorpus) -> np.ndarray:
    """(len(tokens.words),) corpus frequency of each distinct token."""
    return np.bincount(np.asarray(tokens.ids), minlength=len(tokens.words)).astype(np.int64)
