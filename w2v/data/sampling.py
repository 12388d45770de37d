"""Vectorized training-sample generation: subsampling, (shrunk) context windows, noise words.

All of it runs on whole batches of center positions (NumPy, one Numba loop for the windows), in
the data loader's thread, so
the training step receives ready examples; nothing loops over tokens in Python and no epoch's
pairs are ever materialized at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from w2v.errors import ConfigError


@dataclass(frozen=True)
class SamplerSettings:
    """What a model asks of the data: its window and, for SGNS, frequent-word subsampling."""

    window: int
    shrink_window: bool = True
    subsample: float | None = None  # word2vec's `sample` threshold t; None or 0 keeps every token
    negatives: int = 0  # noise words drawn per center (SGNS); 0 draws none
    noise_power: float = 0.75  # noise words are drawn with probability ∝ count^noise_power

    def __post_init__(self) -> None:
        if not isinstance(self.window, int) or self.window < 1:
            raise ConfigError(f"model.window={self.window} must be an integer of at least 1 (words on each side)")
        if self.subsample is not None and self.subsample < 0:
            raise ConfigError(f"model.subsample={self.subsample} must be positive, or 0/null to keep every token")
        if not isinstance(self.negatives, int) or self.negatives < 0:
            raise ConfigError(f"model.negatives={self.negatives} must be a whole number (noise words per pair)")


def keep_probabilities(counts: np.ndarray, threshold: float | None) -> np.ndarray:
    """(V,) probability of keeping each word: min(1, sqrt(t/f) + t/f), f its relative frequency."""
    counts = np.asarray(counts, dtype=np.float64)
    if not threshold:
        return np.ones_like(counts)
    freq = counts / counts.sum()
    with np.errstate(divide="ignore"):
        ratio = threshold / freq
    return np.minimum(1.0, np.sqrt(ratio) + ratio)


def noise_distribution(counts: np.ndarray, power: float = 0.75) -> np.ndarray:
    """(V,) noise distribution for negative sampling: count^power, normalized."""
    weights = np.asarray(counts, dtype=np.float64) ** power
    weights[np.asarray(counts) == 0] = 0.0
    return weights / weights.sum()


class NoiseTable:
    """Draws noise words with probability ∝ count^power.

    Like word2vec, it looks draws up in a table where each word fills a share of the slots equal to
    its probability: one random integer and one lookup per draw, with probabilities rounded to
    1/`table_size` (every word that occurs keeps at least one slot).
    """

    def __init__(self, counts: np.ndarray, power: float = 0.75, table_size: int = 1 << 24):
        probs = noise_distribution(counts, power)
        slots = np.floor(probs * table_size).astype(np.int64)
        slots[(probs > 0) & (slots == 0)] = 1
        # Hand the rounding remainder to the most probable words, so the table is exactly full.
        shortfall = table_size - slots.sum()
        order = np.argsort(-(probs * table_size - slots), kind="stable")
        slots[order[: max(shortfall, 0)]] += 1
        self.table = np.repeat(np.arange(len(probs), dtype=np.int32), slots)  # (table_size,)

    def sample(self, rows: int, k: int, rng: np.random.Generator) -> np.ndarray:
        """(rows, k) noise word ids."""
        return self.table[rng.integers(len(self.table), size=(rows, k))]


class WindowSampler:
    """Turns batches of positions in a block of the corpus into (center, context window) examples."""

    def __init__(self, counts: np.ndarray, settings: SamplerSettings):
        self.settings = settings
        self.keep_prob = keep_probabilities(counts, settings.subsample).astype(np.float32)  # (V,)
        self._subsampling = bool(settings.subsample) and bool((self.keep_prob < 1).any())
        self.noise = NoiseTable(counts, settings.noise_power) if settings.negatives else None

    def start_block(self, ids: np.ndarray, offsets: np.ndarray, rng: np.random.Generator) -> None:
        """Take block `ids` (n,) with document `offsets` and draw its subsampling: kept tokens form a
        shorter sequence, documents stay apart."""
        if self._subsampling:
            keep = rng.random(len(ids), dtype=np.float32) < self.keep_prob[ids]  # (n,)
        else:
            keep = np.ones(len(ids), dtype=bool)
        rank = np.cumsum(keep, dtype=np.int64).astype(np.int32) - 1  # (n,) position of each kept token in the subsampled sequence
        kept_before = np.concatenate([[0], rank + 1])
        self._keep, self._rank = keep, rank
        self._seq, self._seq_offsets = ids[keep], kept_before[offsets]  # (m,), (docs + 1,)
        self._doc_of = np.repeat(np.arange(len(offsets) - 1, dtype=np.int32), np.diff(self._seq_offsets))  # (m,)

    def batch(self, positions: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """The examples of the kept tokens among block `positions` that have a context word:
        centers (B,), contexts (B, 2W) and mask (B, 2W) of the valid slots, and with negatives K
        noise words (B, K) drawn once per center (Ji et al.), shared by the pairs of its window."""
        positions = self._rank[positions[self._keep[positions]]]  # (n,) the kept ones, in the subsampled sequence
        window = self.settings.window
        if self.settings.shrink_window:
            radius = rng.integers(1, window + 1, size=len(positions))  # (n,)
        else:
            radius = np.full(len(positions), window)
        centers, contexts, mask = _window_examples(positions, radius, window, self._seq, self._doc_of, self._seq_offsets)
        examples = {"centers": centers, "contexts": contexts, "mask": mask}
        if self.noise is not None:
            examples["noise"] = self.noise.sample(len(centers), self.settings.negatives, rng)
        return examples


@njit(cache=True, nogil=True)
def _window_examples(positions, radius, window, seq, doc_of, offsets):  # pragma: no cover - compiled
    """centers (B,), contexts (B, 2W) int64 and mask (B, 2W) of the `positions` (n,) in the subsampled
    sequence that have a context word within their `radius` (n,) in their document; empty slots
    hold the center.

    One pass per center instead of a dozen NumPy (B, 2W) temporaries: the data loader's thread
    shares the CPU with the training step, so its time is the step's time.
    """
    n, width = len(positions), 2 * window
    # The positions are scattered over the block: look every window's bounds up first, in a loop
    # without branches, so that the processor overlaps the cache misses.
    first = np.empty(n, dtype=np.int64)
    last = np.empty(n, dtype=np.int64)
    for i in range(n):
        doc = doc_of[positions[i]]
        first[i] = max(offsets[doc], positions[i] - radius[i])  # the window's first and last valid positions
        last[i] = min(offsets[doc + 1] - 1, positions[i] + radius[i])
    centers = np.empty(n, dtype=np.int64)
    contexts = np.empty((n, width), dtype=np.int64)
    mask = np.empty((n, width), dtype=np.bool_)
    found = 0
    for i in range(n):
        if first[i] == last[i]:  # a one-word document (or all its other words subsampled away): no example
            continue
        pos, center = positions[i], seq[positions[i]]
        for s in range(width):
            p = pos - window + s + (s >= window)  # offsets -W..-1, 1..W
            valid = first[i] <= p <= last[i]
            contexts[found, s] = seq[min(max(p, first[i]), last[i])] if valid else center  # clamped: no branch
            mask[found, s] = valid
        centers[found] = center
        found += 1
    return centers[:found], contexts[:found], mask[:found]
