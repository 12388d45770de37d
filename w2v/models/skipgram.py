"""Skip-gram: predict each context word from its center word, through a full softmax."""

from __future__ import annotations

import torch
from torch import nn

from w2v.models.base import Word2VecModule
from w2v.models.losses import skipgram_loss


class SkipGram(Word2VecModule):
    """Skip-gram with a full-softmax output layer; the softmax is computed once per center word."""

    def __init__(self, vocab, **kwargs):
        super().__init__(vocab, **kwargs)
        self.out = nn.Linear(self.hparams.embedding_dim, len(vocab))

    def example_losses(self, batch):
        center_vecs = self.in_embed(batch["centers"])  # (B, D): every center has a context word
        return skipgram_loss(center_vecs, self.out.weight, self.out.bias, batch["contexts"], batch["mask"])  # (P,)

    def output_matrix(self) -> torch.Tensor:
        return self.out.weight
