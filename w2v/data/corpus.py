"""A tokenized corpus seen through a vocabulary, read block by block so that memory stays flat.

The token ids stay on disk (the cache's file); a block of `block_tokens` tokens is read, mapped to
vocabulary ids (out-of-vocabulary tokens become <UNK> or are dropped) and handed to the sampler.
Blocks are cut at fixed token positions: a document spanning a cut is treated as two there.
"""

from __future__ import annotations

import math

import numpy as np

from w2v.data.tokenize import TokenizedCorpus
from w2v.data.vocab import Vocabulary
from w2v.errors import ConfigError, check_number

DEFAULT_BLOCK_TOKENS = 1 << 22  # about 4 M tokens, some 100 MB of working memory per block


class Corpus:
    """Vocabulary ids of `tokens`, in blocks; `len()` counts the tokens that remain after `vocab`."""

    def __init__(self, tokens: TokenizedCorpus, vocab: Vocabulary, block_tokens: int = DEFAULT_BLOCK_TOKENS):
        self.check_block_tokens(block_tokens)
        self.tokens, self.block_tokens = tokens, block_tokens
        self.lookup = vocab.lookup_table(tokens.words).astype(np.int32)  # (len(tokens.words),) vocab id or -1
        self.drop = vocab.unk_id is None
        n_blocks = max(1, math.ceil(len(tokens.ids) / block_tokens))
        self.bounds = [(b * block_tokens, min((b + 1) * block_tokens, len(tokens.ids))) for b in range(n_blocks)]
        # Tokens left in each block, and the most left of one document in a block (a window needs two
        # words): a pass over the file when out-of-vocabulary tokens are dropped.
        sizes, longest = [], 0
        for b, (start, end) in enumerate(self.bounds):
            offsets = self.block(b)[1] if self.drop else self._offsets_within(start, end)
            sizes.append(int(offsets[-1]))
            longest = max(longest, int(np.diff(offsets).max(initial=0)))
        self.block_sizes = np.array(sizes, dtype=np.int64)
        if self.block_sizes.sum() == 0:
            raise ConfigError(
                "no token of the corpus is in the vocabulary; lower data.vocab.min_count or use a larger corpus"
            )
        if longest < 2:
            raise ConfigError(
                "no document keeps two words after the vocabulary, so no word has a context to train on; put "
                "one document on each line (not one word), or lower data.vocab.min_count"
            )

    @staticmethod
    def check_block_tokens(block_tokens) -> None:
        check_number("data.block_tokens", block_tokens, integer=True, least=2,
                     unit=" (tokens read at once; a window needs two)")

    def __len__(self) -> int:
        return int(self.block_sizes.sum())

    @property
    def n_docs(self) -> int:
        return self.tokens.n_docs

    @property
    def n_blocks(self) -> int:
        return len(self.bounds)

    def _token_ids(self, start: int, end: int) -> np.ndarray:
        ids = self.tokens.ids
        if isinstance(ids, np.memmap):
            # A plain read, not a slice of the mapping: the pages of blocks already used do not stay
            # in the process's memory.
            return np.fromfile(ids.filename, dtype=ids.dtype, count=end - start, offset=start * ids.dtype.itemsize)
        return np.asarray(ids[start:end])

    def _offsets_within(self, start: int, end: int) -> np.ndarray:
        """(m + 1,) int64 the offsets, from 0 to end - start, of the documents in tokens start:end."""
        doc_offsets = self.tokens.offsets  # sorted
        first, last = np.searchsorted(doc_offsets, [start, end], side="right")[0], np.searchsorted(doc_offsets, end)
        inside = doc_offsets[first:last] - start  # the offsets strictly between start and end
        return np.concatenate([[0], inside, [end - start]]).astype(np.int64)

    def block(self, b: int) -> tuple[np.ndarray, np.ndarray]:
        """Block `b`: its vocabulary ids (n,) int32 and its document offsets (m + 1,) int64, from 0 to n."""
        start, end = self.bounds[b]
        ids = self.lookup[self._token_ids(start, end)]  # (n,)
        offsets = self._offsets_within(start, end)
        if self.drop:
            kept = ids >= 0
            kept_before = np.concatenate([[0], np.cumsum(kept)])
            ids, offsets = ids[kept], kept_before[offsets]
        return ids, offsets

    def all_ids(self) -> tuple[np.ndarray, np.ndarray]:
        """The whole corpus in memory: ids (N,) and document offsets; for baselines and small corpora only."""
        parts = [self.block(b) for b in range(self.n_blocks)]
        ids = np.concatenate([p[0] for p in parts])
        starts = np.cumsum([0] + [len(p[0]) for p in parts])
        offsets = np.unique(np.concatenate([p[1] + s for p, s in zip(parts, starts)]))
        return ids, offsets
