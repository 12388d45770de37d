"""CBOW: predict the center word from the mean of its context embeddings, through a full softmax."""

from __future__ import annotations

import torch

from w2v.models.full_softmax import FullSoftmaxModule, SoftmaxInputs
from w2v.models.losses import masked_mean


class CBOW(FullSoftmaxModule):
    """Continuous bag of words with a full-softmax output layer (`max_norm`: the notebooks' renormalisation)."""

    def __init__(self, vocab, max_norm: float | None = None, **kwargs):
        self._max_norm = max_norm
        super().__init__(vocab, **kwargs)

    def max_norm(self) -> float | None:
        return self._max_norm

    def softmax_inputs(self, batch):
        contexts, mask, centers = batch["contexts"], batch["mask"], batch["centers"]  # (B, 2W), (B, 2W), (B,)
        hidden = masked_mean(self.in_embed(contexts), mask)  # (B, D): every center has a context word
        rows = torch.arange(len(centers), device=centers.device)  # (B,) one target, the center, a row
        owners = rows.unsqueeze(1).expand_as(mask)[mask]  # (S,) the window of each valid context slot
        weights = (1.0 / mask.sum(1)).to(hidden.dtype)[owners]  # (S,) the mean's weight
        return SoftmaxInputs(hidden, rows, centers, contexts[mask], owners, weights)
