"""Vectorized training-sample generation: subsampling, (shrunk) context windows, noise words.

All of it runs on whole batches of center positions, in the data loader's thread (NumPy, and
Numba for the loops over windows and noise draws), so the training step receives ready examples;
nothing loops over tokens in Python and no epoch's pairs are ever materialized at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from w2v.errors import ConfigError, check_number


@dataclass(frozen=True)
class SamplerSettings:
    """What a model asks of the data: its window, frequent-word subsampling and, for negative sampling, noise words."""

    window: int
    shrink_window: bool = True
    subsample: float | None = None  # word2vec's `sample` threshold t; None or 0 keeps every token
    subsample_rule: str = "word2vec"  # the keep probability's formula, one of SUBSAMPLE_RULES
    negatives: int = 0  # noise words drawn per center (negative sampling); 0 draws none
    noise_power: float = 0.75  # noise words are drawn with probability ∝ count^noise_power
    pairs: bool = False  # data.batching=examples: an example is a (center, context) pair, else a whole window
    # What w2v's batching shuffles in a block under data.shuffle_unit=auto (document or position),
    # and the batch size under data.batch_size=auto.
    shuffle_unit: str = "position"
    batch_size: int = 4096
    # The model draws its samples itself from a corpus block's chunks (SGNS's GPU path, the
    # sequential CPU kernels): a batch is then a range of the block's chunks of `chunk_tokens`
    # positions, `step_tokens` positions a step. With `windows_too` it also trains on the loader's
    # windows, which the data settings the chunks cannot give (data.batching=examples, an explicit
    # data.shuffle_unit) then take.
    draws_samples: bool = False
    windows_too: bool = False
    batch_steps: bool = False  # the model's steps take data.batch_size positions where it is set, not step_tokens
    chunk_tokens: int = 1024
    step_tokens: int = 1 << 21

    def __post_init__(self) -> None:
        check_number("model.window", self.window, integer=True, least=1, unit=" (words on each side)")
        check_number("model.subsample", self.subsample, least=0, null="to keep every token (as 0 does)")
        check_subsample_rule(self.subsample_rule)
        check_number("model.negatives", self.negatives, integer=True, least=0, unit=" (noise words per pair)")
        for name in ("chunk_tokens", "step_tokens"):
            check_number(f"model.{name}", getattr(self, name), integer=True, least=1, unit=" (corpus positions)")


# How a token's keep probability follows from its word's relative frequency f and the threshold t:
# - word2vec: min(1, sqrt(t/f) + t/f), as word2vec's C code and gensim keep tokens;
# - notebook: max(0, 1 - sqrt(t/f)), the word2vec paper's *discard* probability taken as the keep
#   probability: frequent words are kept and words rarer than t are dropped. The notebooks' reported
#   neighbours come out this way, not word2vec's (docs/design.md), so their SGNS experiment uses it.
SUBSAMPLE_RULES = ("word2vec", "notebook")


def keep_probabilities(counts: np.ndarray, threshold: float | None, rule: str = "word2vec") -> np.ndarray:
    """(V,) probability of keeping each word under `rule` (SUBSAMPLE_RULES)."""
    check_subsample_rule(rule)
    counts = np.asarray(counts, dtype=np.float64)
    if not threshold:
        return np.ones_like(counts)
    freq = counts / counts.sum()
    with np.errstate(divide="ignore"):
        ratio = threshold / freq  # (V,) inf where the count is 0
    if rule == "word2vec":
        return np.minimum(1.0, np.sqrt(ratio) + ratio)
    return np.maximum(0.0, 1.0 - np.sqrt(ratio))  # notebook


def check_subsample_rule(rule: str) -> None:
    if rule not in SUBSAMPLE_RULES:
        raise ConfigError(f"model.subsample_rule={rule!r} is unknown; use one of {', '.join(SUBSAMPLE_RULES)}")


def noise_distribution(counts: np.ndarray, power: float = 0.75) -> np.ndarray:
    """(V,) noise distribution for negative sampling: count^power, normalized."""
    weights = np.asarray(counts, dtype=np.float64) ** power
    weights[np.asarray(counts) == 0] = 0.0
    return weights / weights.sum()


class NoiseTable:
    """Draws noise words with probability ∝ count^power, by Walker's alias method.

    Each word owns one slot of a (V,) table; a uniform draw picks a slot and, past the slot's
    threshold, returns the word it aliases instead. The probabilities are exact and the table
    the draws read (`_slots`: 16 bytes a word) stays in the processor's cache, where word2vec's
    table of 10^8 slots, one cache miss a draw, would not.
    """

    def __init__(self, counts: np.ndarray, power: float = 0.75):
        self.threshold, self.alias = _alias_table(noise_distribution(counts, power))  # (V,), (V,)
        # Both halves of a slot side by side (the alias exact in float64): one cache line a draw.
        self._slots = np.stack([self.threshold, self.alias.astype(np.float64)], axis=1)  # (V, 2)

    def sample(self, rows: int, k: int, rng: np.random.Generator) -> np.ndarray:
        """(rows, k) noise word ids."""
        return _alias_draws(rng.random((rows, k)), self._slots)


@njit(cache=True, nogil=True)
def _alias_table(probs):  # pragma: no cover - compiled
    """Vose's construction: slot i keeps word i with probability threshold[i], else gives alias[i]."""
    n = len(probs)
    scaled = probs * n  # (V,) a slot's share is 1
    threshold = np.ones(n)
    alias = np.arange(n)
    small = np.empty(n, dtype=np.int64)  # stacks of slots below and above their share
    large = np.empty(n, dtype=np.int64)
    n_small = n_large = 0
    for i in range(n):
        if scaled[i] < 1.0:
            small[n_small] = i
            n_small += 1
        else:
            large[n_large] = i
            n_large += 1
    while n_small and n_large:  # fill a small slot's remainder with the top large word, which shrinks
        n_small -= 1
        low, high = small[n_small], large[n_large - 1]
        threshold[low], alias[low] = scaled[low], high
        scaled[high] -= 1.0 - scaled[low]
        if scaled[high] < 1.0:  # below its share now: it moves to the small stack
            n_large -= 1
            small[n_small] = high
            n_small += 1
    # What is left is full up to rounding error: keep thresholds at 1 (their own word only),
    # except where the slot's word has probability 0 (a special token): it must never be drawn.
    for i in range(n):
        if probs[i] == 0.0 and alias[i] == i:
            threshold[i] = 0.0
            alias[i] = np.argmax(probs)
    return threshold, alias


@njit(cache=True, nogil=True)
def _alias_draws(uniform, slots):  # pragma: no cover - compiled
    """(rows, k) words from (rows, k) uniform draws in [0, 1): the integer part of u·V picks the slot,
    the fraction decides between its word and its alias; slots (V, 2) holds each slot's threshold and alias."""
    out = np.empty(uniform.shape, dtype=np.int64)
    n = slots.shape[0]
    for i in range(uniform.shape[0]):
        for j in range(uniform.shape[1]):
            x = uniform[i, j] * n
            slot = min(int(x), n - 1)
            out[i, j] = slot if x - slot < slots[slot, 0] else int(slots[slot, 1])
    return out


class WindowSampler:
    """Turns batches of positions in a block of the corpus into (center, context window) examples."""

    def __init__(self, counts: np.ndarray, settings: SamplerSettings):
        self.settings = settings
        keep = keep_probabilities(counts, settings.subsample, settings.subsample_rule)
        self.keep_prob = keep.astype(np.float32)  # (V,)
        self._subsampling = bool(settings.subsample) and bool((self.keep_prob < 1).any())
        self.noise = NoiseTable(counts, settings.noise_power) if settings.negatives else None

    def start_block(self, ids: np.ndarray, offsets: np.ndarray, rng: np.random.Generator) -> None:
        """Take block `ids` (n,) with document `offsets` and draw its subsampling: kept tokens form a
        shorter sequence, documents stay apart."""
        if self._subsampling:
            keep = rng.random(len(ids), dtype=np.float32) < self.keep_prob[ids]  # (n,)
        else:
            keep = np.ones(len(ids), dtype=bool)
        self._slot, self._seq, self._doc_span = _subsampled(ids, offsets, keep)

    def batch(self, positions: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """The examples of the kept tokens among block `positions` that have a context word:
        centers (B,), contexts (B, 2W) and mask (B, 2W) of the valid slots, and with negatives K
        noise words (B, K) drawn once per center (Ji et al.), shared by the pairs of its window."""
        window = self.settings.window
        if self.settings.shrink_window:
            radius = rng.integers(1, window + 1, size=len(positions))  # (n,) one per position, kept or not
        else:
            radius = np.full(len(positions), window)
        centers, contexts, mask = _window_examples(positions, radius, window, self._slot, self._seq, self._doc_span)
        examples = {"centers": centers, "contexts": contexts, "mask": mask}
        if self.noise is not None:
            examples["noise"] = self.noise.sample(len(centers), self.settings.negatives, rng)
        return examples


@njit(cache=True, nogil=True)
def _subsampled(ids, offsets, keep):  # pragma: no cover - compiled
    """The block `ids` (n,) with document `offsets` (docs+1,) after subsampling, where keep (n,) is
    True: each block position's place in the subsampled sequence (n,) int32 (-1: dropped), the
    sequence (m,), and each kept token's document span there (m, 2) int32, its first and last
    position, side by side for the batches' lookups at scattered positions. One pass, where NumPy
    takes a dozen over the block."""
    n = len(ids)
    m = 0
    for i in range(n):
        m += keep[i]
    slot = np.empty(n, dtype=np.int32)
    seq = np.empty(m, dtype=ids.dtype)
    doc_span = np.empty((m, 2), dtype=np.int32)
    found = 0
    for doc in range(len(offsets) - 1):
        first = found
        for i in range(offsets[doc], offsets[doc + 1]):
            if keep[i]:
                slot[i] = found
                seq[found] = ids[i]
                found += 1
            else:
                slot[i] = -1
        for k in range(first, found):
            doc_span[k, 0], doc_span[k, 1] = first, found - 1
    return slot, seq, doc_span


@njit(cache=True, nogil=True)
def _window_examples(positions, radius, window, slot, seq, doc_span):  # pragma: no cover - compiled
    """centers (B,), contexts (B, 2W) int64 and mask (B, 2W) of the kept block `positions` (n,) that
    have a context word within their `radius` (n,) in their document; empty slots hold the center.

    One pass per center instead of a dozen NumPy (B, 2W) temporaries: the data loader's thread
    shares the CPU with the training step, so its time is the step's time.
    """
    n, width = len(positions), 2 * window
    # The positions are scattered over the block, each lookup a likely cache miss: every loop that
    # looks up is free of branches, so that the processor overlaps the misses.
    where = np.empty(n, dtype=np.int64)
    for i in range(n):
        where[i] = slot[positions[i]]
    kept = np.empty(n, dtype=np.int64)
    n_kept = 0
    for i in range(n):
        kept[n_kept] = i
        n_kept += where[i] >= 0
    first = np.empty(n_kept, dtype=np.int64)
    last = np.empty(n_kept, dtype=np.int64)
    for k in range(n_kept):
        pos, reach = where[kept[k]], radius[kept[k]]
        first[k] = max(doc_span[pos, 0], pos - reach)  # the window's first and last valid positions
        last[k] = min(doc_span[pos, 1], pos + reach)
    centers = np.empty(n_kept, dtype=np.int64)
    contexts = np.empty((n_kept, width), dtype=np.int64)
    mask = np.empty((n_kept, width), dtype=np.bool_)
    found = 0
    for k in range(n_kept):
        if first[k] == last[k]:  # a one-word document (or all its other words subsampled away): no example
            continue
        pos = where[kept[k]]
        center = seq[pos]
        for s in range(width):
            p = pos - window + s + (s >= window)  # offsets -W..-1, 1..W
            valid = first[k] <= p <= last[k]
            contexts[found, s] = seq[min(max(p, first[k]), last[k])] if valid else center  # clamped: no branch
            mask[found, s] = valid
        centers[found] = center
        found += 1
    return centers[:found], contexts[:found], mask[:found]
