"""The vocabulary: most frequent words with their counts, special tokens, and an out-of-vocabulary policy."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from w2v.errors import ConfigError, check_number
from w2v.fileio import atomic_write

log = logging.getLogger(__name__)

OOV_POLICIES = ("unk", "drop")


@dataclass
class Vocabulary:
    """Words in id order (special tokens first) and their corpus counts (0 for unused specials)."""

    words: list[str]
    counts: np.ndarray  # (V,) int64
    specials: tuple[str, ...] = ()
    unk_token: str | None = None
    index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.counts = np.asarray(self.counts, dtype=np.int64)
        if len(self.words) != len(self.counts):
            raise ValueError("words and counts differ in length")
        self.index = {w: i for i, w in enumerate(self.words)}

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: str) -> bool:
        return word in self.index

    @property
    def unk_id(self) -> int | None:
        return None if self.unk_token is None else self.index[self.unk_token]

    @classmethod
    def build(
        cls,
        word_counts: np.ndarray,
        words: Sequence[str],
        max_size: int | None = None,
        min_count: int = 1,
        specials: Sequence[str] = ("<PAD>", "<UNK>"),
        oov: str = "unk",
        unk_token: str = "<UNK>",
    ) -> "Vocabulary":
        """Keep the most frequent words (ties broken by first appearance), at most `max_size` entries in all."""
        check_vocab_settings(max_size, min_count, specials, oov, unk_token)
        specials = tuple(specials)
        counts = np.asarray(word_counts, dtype=np.int64)
        # A stable sort keeps ties in first-appearance order, which makes the vocabulary deterministic.
        order = np.argsort(-counts, kind="stable")
        order = order[counts[order] >= min_count]
        special_set = set(specials)
        order = np.array([i for i in order if words[i] not in special_set], dtype=np.int64)
        if max_size is not None:
            order = order[: max_size - len(specials)]
        kept_words = [words[i] for i in order]
        kept_counts = counts[order]
        special_counts = np.zeros(len(specials), dtype=np.int64)
        if oov == "unk":
            special_counts[specials.index(unk_token)] = counts.sum() - kept_counts.sum()
        return cls(
            words=list(specials) + kept_words,
            counts=np.concatenate([special_counts, kept_counts]),
            specials=specials,
            unk_token=unk_token if oov == "unk" else None,
        )

    def lookup_table(self, words: Sequence[str]) -> np.ndarray:
        """(len(words),) vocabulary id of each of `words`; -1 for dropped out-of-vocabulary words."""
        fallback = -1 if self.unk_id is None else self.unk_id
        return np.fromiter((self.index.get(w, fallback) for w in words), dtype=np.int64, count=len(words))

    def describe(self, total_tokens: int) -> str:
        in_vocab = self.counts.sum() - (0 if self.unk_id is None else self.counts[self.unk_id])
        share = in_vocab / total_tokens if total_tokens else 0.0
        return (
            f"vocabulary: {len(self) - len(self.specials):,} words + {len(self.specials)} special tokens; "
            f"they cover {share:.2%} of {total_tokens:,} tokens"
            + ("" if self.unk_id is None else f"; {int(self.counts[self.unk_id]):,} tokens map to {self.unk_token}")
        )

    def save_tsv(self, path: str | os.PathLike) -> None:
        """Write `word<TAB>count` lines in id order."""
        with atomic_write(path) as out:
            for word, count in zip(self.words, self.counts):
                out.write(f"{word}\t{int(count)}\n")

    @classmethod
    def load_tsv(cls, path: str | os.PathLike, specials: Sequence[str] = (), unk_token: str | None = None) -> "Vocabulary":
        words, counts = [], []
        for line in Path(path).read_text(encoding="utf-8").splitlines():
            word, count = line.rsplit("\t", 1)
            words.append(word)
            counts.append(int(count))
        return cls(words=words, counts=np.array(counts), specials=tuple(specials), unk_token=unk_token)


def check_vocab_settings(max_size, min_count, specials, oov, unk_token) -> None:
    """One-line errors for vocabulary settings that cannot work, raised before any corpus is read."""
    if oov not in OOV_POLICIES:
        raise ConfigError(f"data.vocab.oov={oov!r} is unknown; use one of {', '.join(OOV_POLICIES)}")
    if len(set(specials)) != len(specials):
        raise ConfigError(f"data.vocab.specials={list(specials)} lists a token twice; list each once")
    if oov == "unk" and unk_token not in specials:
        raise ConfigError(
            f"data.vocab.oov=unk needs the unknown token {unk_token!r} in data.vocab.specials={list(specials)}; "
            f"add it or set data.vocab.oov=drop"
        )
    check_number("data.vocab.min_count", min_count, integer=True, least=1)
    check_number("data.vocab.max_size", max_size, integer=True, least=1, null="for no limit")
    if max_size is not None and max_size <= len(specials):
        raise ConfigError(
            f"data.vocab.max_size={max_size} leaves no room for words after the {len(specials)} special tokens "
            f"{list(specials)}; raise max_size above {len(specials)} or remove special tokens"
        )
