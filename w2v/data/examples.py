"""The notebooks' training examples (`data.batching=examples`): built once, shuffled over every epoch.

The notebooks this project reproduces join the corpus into one stream of ids (contexts cross
document boundaries), subsample it and draw each center's window once, list every training
example, and shuffle that list every epoch: an example is one (center, context) pair for
Skip-gram (SGNS too), one center with its whole window for CBOW. Centers whose window reaches past
the stream's ends are skipped. w2v's default batching (`datamodule.EpochBatches`) instead draws
windows afresh every epoch and batches by centers; these examples are for reproducing the
notebooks, on corpora that fit in memory.

The examples are kept as positions in the subsampled stream (and, for pairs, each context word's
offset), not as copies of the words.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from w2v.data.sampling import SamplerSettings, keep_probabilities


@dataclass(frozen=True)
class Examples:
    """Training examples over `stream`: `positions[e]` is example e's center; its context is the word
    at `offsets[e]` from it (pairs), or every word within `radius[e]` of it (windows)."""

    stream: np.ndarray  # (M,) int32 the subsampled stream of vocabulary ids
    positions: np.ndarray  # (E,) int32
    window: int
    offsets: np.ndarray | None = None  # (E,) int16, pairs
    radius: np.ndarray | None = None  # (E,) int16, windows

    def __len__(self) -> int:
        return len(self.positions)

    def take(self, chosen: np.ndarray) -> dict[str, np.ndarray]:
        """Examples `chosen` (B,) as the models' batches: centers (B,), contexts (B, C) and mask (B, C),
        C = 1 for pairs and 2W for windows, whose slots beyond the example's radius hold the center, masked."""
        where = self.positions[chosen]  # (B,)
        centers = self.stream[where].astype(np.int64)
        if self.offsets is not None:
            contexts = self.stream[where + self.offsets[chosen]][:, None].astype(np.int64)  # (B, 1)
            return {"centers": centers, "contexts": contexts, "mask": np.ones(contexts.shape, dtype=bool)}
        span = window_span(self.window)  # (2W,)
        mask = np.abs(span) <= self.radius[chosen][:, None]  # (B, 2W)
        contexts = np.where(mask, self.stream[where[:, None] + np.where(mask, span, 0)], centers[:, None])  # (B, 2W)
        return {"centers": centers, "contexts": contexts.astype(np.int64), "mask": mask}


def window_span(window: int) -> np.ndarray:
    """(2W,) a window's offsets from its center: -W..-1, 1..W."""
    return np.concatenate([np.arange(-window, 0), np.arange(1, window + 1)])


def draw_examples(ids: np.ndarray, counts: np.ndarray, settings: SamplerSettings, pairs: bool,
                  rng: np.random.Generator) -> Examples:
    """The examples of the stream `ids` (N,): tokens kept with the probability that `settings.subsample`
    and `.subsample_rule` give, then each kept token's window radius (1..W when
    `settings.shrink_window`, else W), in that order from `rng`.

    pairs: one example per (center, context word) of each window, else one per window.
    """
    window = settings.window
    keep = None
    if settings.subsample:
        keep = rng.random(len(ids)) < keep_probabilities(counts, settings.subsample, settings.subsample_rule)[ids]
    stream = np.ascontiguousarray(ids if keep is None else ids[keep], dtype=np.int32)  # (M,)
    m = len(stream)
    radius = rng.integers(1, window + 1, size=m) if settings.shrink_window else np.full(m, window)  # (M,)
    where = np.arange(m)
    centers = where[(where >= radius) & (where + radius < m)]  # (E_w,) windows inside the stream
    if not pairs:
        return Examples(stream, centers.astype(np.int32), window, radius=radius[centers].astype(np.int16))
    span = window_span(window)  # (2W,)
    within = np.abs(span)[None, :] <= radius[centers][:, None]  # (E_w, 2W) the slots of each drawn window
    rows, slots = np.nonzero(within)  # window by window, in offset order
    return Examples(stream, centers[rows].astype(np.int32), window, offsets=span[slots].astype(np.int16))
