"""CBOW: predict the center word from the mean of its context embeddings, through a full softmax."""

from __future__ import annotations

import torch
from torch import nn

from w2v.models.base import Word2VecModule
from w2v.models.losses import cbow_loss


class CBOW(Word2VecModule):
    """Continuous bag of words with a full-softmax output layer (`max_norm`: the notebooks' renormalisation)."""

    def __init__(self, vocab, max_norm: float | None = None, **kwargs):
        self._max_norm = max_norm
        super().__init__(vocab, **kwargs)
        self.out = nn.Linear(self.hparams.embedding_dim, len(vocab))

    def max_norm(self) -> float | None:
        return self._max_norm

    def example_losses(self, batch):
        contexts, mask = batch["contexts"], batch["mask"]  # (B, 2W): every center has a context word
        context_vecs = self.in_embed(contexts)  # (B, 2W, D)
        return cbow_loss(context_vecs, mask, self.out.weight, self.out.bias, batch["centers"])  # (B,)

    def output_matrix(self) -> torch.Tensor:
        return self.out.weight
