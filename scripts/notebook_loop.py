"""The notebooks' own training loop, re-implemented plainly as the reference for w2v's notebook experiments.

Every example is materialized up front (Python lists of ids, as the notebooks build them), a
shuffled `DataLoader` batches them, and `nn.Embedding` / `nn.Linear` with autograd and
`torch.optim.Adam` on all parameters train:
- cbow: 256 centers a batch, each with its 8 context words (window 4), the sum of their
  embeddings through a linear layer with bias, cross-entropy;
- skipgram: 512 (center, context) pairs a batch (window 4), the center's embedding through the
  linear layer, cross-entropy;
- sgns: 256 (center, context) pairs a batch, window of 1 to 3 words drawn per center, tokens
  subsampled with threshold 1e-5 (kept with probability 1 - sqrt(t/f)), 10 noise words drawn for
  every pair from count^0.75.
Both weight matrices start uniform in ±0.5/D (the linear layer's bias as nn.Linear's own).
The corpus is one stream (contexts cross reviews) and centers whose window reaches past the
stream's ends are skipped. Subsampling and window sizes are drawn from the same generator, in the
same order, as `w2v.data.examples.draw_examples`, so both train on the same examples; their order
and the noise words differ.

Used by scripts/notebook_parity.py and scripts/benchmark.py, and by the tests.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

@dataclass(frozen=True)
class LoopSettings:
    window: int
    shrink: bool  # window sizes drawn per center from 1..window
    subsample: float | None  # threshold t
    subsample_rule: str  # the keep probability: "word2vec" min(1, sqrt(t/f) + t/f), "notebook" max(0, 1 - sqrt(t/f))
    negatives: int
    batch_size: int
    max_norm: float | None
    cbow_mean: bool = False  # CBOW's context vectors averaged, or summed as the notebooks' neighbours imply
    out_init: str = "uniform"  # the linear layer's weight: "uniform" in ±0.5/D, or "linear" (nn.Linear's own)


SETTINGS = {"cbow": LoopSettings(4, False, None, "word2vec", 0, 256, 1.0),
            "skipgram": LoopSettings(4, False, None, "word2vec", 0, 512, 1.0),
            "sgns": LoopSettings(3, True, 1e-5, "notebook", 10, 256, None)}
DIM, LR = 100, 0.001


def examples(ids: np.ndarray, counts: np.ndarray, arch: str, seed: int, settings: LoopSettings | None = None
             ) -> tuple[list, list]:
    """The epoch's examples as (inputs, targets) lists: CBOW's (8 context ids, center), the others' (center, context)."""
    settings = settings or SETTINGS[arch]
    window, shrink, threshold = settings.window, settings.shrink, settings.subsample
    rng = np.random.default_rng([seed, 2])
    if threshold:
        total = int(sum(counts))
        # 0 for a word that never occurs (the specials)
        ratios = [threshold / (c / total) if c else math.inf for c in counts.tolist()]
        if settings.subsample_rule == "word2vec":
            keep = [min(1.0, math.sqrt(r) + r) if c else 0.0 for r, c in zip(ratios, counts.tolist())]
        else:  # the notebooks': the paper's discard probability as the keep probability
            keep = [max(0.0, 1.0 - math.sqrt(r)) for r in ratios]
        draws = rng.random(len(ids))
        ids = [w for w, u in zip(ids.tolist(), draws) if u < keep[w]]
    else:
        ids = ids.tolist()
    radii = rng.integers(1, window + 1, size=len(ids)).tolist() if shrink else [window] * len(ids)
    inputs, targets = [], []
    for i, (word, r) in enumerate(zip(ids, radii)):
        if i - r < 0 or i + r >= len(ids):
            continue
        context = ids[i - r:i] + ids[i + 1:i + r + 1]
        if arch == "cbow":
            inputs.append(context)
            targets.append(word)
        else:
            inputs.extend([word] * len(context))
            targets.extend(context)
    return inputs, targets


@dataclass
class EpochResult:
    loss: float  # mean of the epoch's batch losses
    seconds: float
    steps: int
    examples: int
    batch_sizes: set


class NotebookModel(nn.Module):
    """The notebooks' models: an input embedding and an output layer (nn.Linear, or SGNS's output embedding)."""

    def __init__(self, arch: str, vocab_size: int, settings: LoopSettings):
        super().__init__()
        self.arch, self.cbow_mean = arch, settings.cbow_mean
        self.embed = nn.Embedding(vocab_size, DIM, max_norm=settings.max_norm)
        nn.init.uniform_(self.embed.weight, -0.5 / DIM, 0.5 / DIM)
        self.out = nn.Embedding(vocab_size, DIM) if arch == "sgns" else nn.Linear(DIM, vocab_size)
        if arch == "sgns" or settings.out_init == "uniform":
            nn.init.uniform_(self.out.weight, -0.5 / DIM, 0.5 / DIM)

    def loss(self, x: torch.Tensor, y: torch.Tensor, noise: torch.Tensor | None) -> torch.Tensor:
        if self.arch == "cbow":  # x (B, 8)
            context = self.embed(x)  # (B, 8, D)
            return F.cross_entropy(self.out(context.mean(1) if self.cbow_mean else context.sum(1)), y)
        if self.arch == "skipgram":
            return F.cross_entropy(self.out(self.embed(x)), y)
        center = self.embed(x)  # (B, D)
        positive = (center * self.out(y)).sum(-1)  # (B,)
        negative = torch.bmm(self.out(noise), center.unsqueeze(-1)).squeeze(-1)  # (B, K)
        return -(F.logsigmoid(positive) + F.logsigmoid(-negative).sum(-1)).mean()


def train(ids: np.ndarray, counts: np.ndarray, arch: str, epochs: int, seed: int = 42,
          on_epoch: Callable[[int, EpochResult, NotebookModel], None] | None = None,
          max_steps: int | None = None, settings: LoopSettings | None = None) -> NotebookModel:
    """Trains the notebooks' model of `arch` on the stream `ids` (N,) for `epochs`; `on_epoch` sees each
    epoch's result (its time excludes what `on_epoch` does). `max_steps`: stop each epoch early (benchmarks)."""
    settings = settings or SETTINGS[arch]
    torch.manual_seed(seed)
    inputs, targets = examples(ids, counts, arch, seed, settings)
    data = TensorDataset(torch.tensor(inputs, dtype=torch.long), torch.tensor(targets, dtype=torch.long))
    negatives, batch_size = settings.negatives, settings.batch_size
    model = NotebookModel(arch, len(counts), settings)
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    noise_dist = torch.from_numpy(np.asarray(counts, dtype=np.float64) ** 0.75)
    for epoch in range(epochs):
        start, total, steps, n, sizes = time.perf_counter(), 0.0, 0, 0, set()
        for x, y in DataLoader(data, batch_size=batch_size, shuffle=True):
            if steps == max_steps:
                break
            noise = torch.multinomial(noise_dist, len(y) * negatives, replacement=True).view(len(y), -1) if negatives else None
            loss = model.loss(x, y, noise)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total, steps, n = total + loss.item(), steps + 1, n + len(y)
            sizes.add(len(y))
        result = EpochResult(total / max(steps, 1), time.perf_counter() - start, steps, n, sizes)
        if on_epoch is not None:
            on_epoch(epoch, result, model)
    return model
