"""CBOW: predict the center word from the mean of its context embeddings."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from w2v.models.architecture import Architecture
from w2v.models.full_softmax import SoftmaxInputs


class CBOW(Architecture):
    """Continuous bag of words: a window's context words, averaged, predict its center."""

    mean_context = True  # negative sampling and hierarchical softmax: one decision set a window, from the mean

    def softmax_inputs(self, batch):
        contexts, mask, centers = batch["contexts"], batch["mask"], batch["centers"]  # (B, 2W), (B, 2W), (B,)
        words, counts = contexts[mask], mask.sum(1)  # (S,) the valid context words, window by window; (B,)
        # The mean straight from the embedding's rows: gathering the (B, 2W, D) vectors first, then
        # weighting and summing them, takes several times as long (measured). CBOW's Adam is dense
        # (no `sparse_adam`), so no DeferredAdam hook needs the module's own forward pass.
        embed = self.in_embed
        if embed.max_norm is not None:  # a MaxNormEmbedding: its rows renormalised as its lookups would
            embed.renorm_(words)
        hidden = F.embedding_bag(words, embed.weight, counts.cumsum(0) - counts, mode="mean",
                                 sparse=embed.sparse)  # (B, D): every center has a context word
        rows = torch.arange(len(centers), device=centers.device)  # (B,) one target, the center, a row
        owners = rows.repeat_interleave(counts)  # (S,) the window of each word
        weights = (1.0 / counts).to(hidden.dtype).index_select(0, owners)  # (S,) the mean's weight
        return SoftmaxInputs(hidden, rows, centers, words, owners, weights)
