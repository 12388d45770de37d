"""Skip-gram: predict each context word from its center word (full softmax), or the center from
each context word (negative sampling, hierarchical softmax: word2vec's order of the pair)."""

from __future__ import annotations

import torch

from w2v.models.architecture import Architecture
from w2v.models.full_softmax import SoftmaxInputs


class SkipGram(Architecture):
    """Skip-gram: every (center, context word) pair of a window is an example.

    Through a full softmax, the softmax depends only on the center word, so it is computed once per
    distinct center of the batch for all of its context words (a frequent word is the center of
    several windows: 64 IMDb windows have about 50 distinct centers); the per-pair losses are those
    of scoring each pair alone.
    """

    pair_examples = True

    def softmax_inputs(self, batch, padded=False):
        contexts, mask = batch["contexts"], batch["mask"]  # (B, 2W), (B, 2W)
        # The distinct centers (a GPU waits for their count: computing a softmax row for each window
        # instead would take several times the products, measured on IMDb's batches).
        centers, center_rows = torch.unique(batch["centers"], return_inverse=True)  # (U,) sorted, (B,)
        embed = self.in_embed
        if padded:  # every (window, context slot) a pair, those outside the window padding
            if embed.max_norm is not None:  # the rows of centers with a context word (this waits on the device)
                embed.renorm_(batch["centers"][mask.any(1)])
            hidden = embed.weight.index_select(0, centers)  # (U, D) no DeferredAdam hook: padded steps settle it first
            rows = center_rows.unsqueeze(1).expand_as(mask).reshape(-1)  # (B·2W,)
            return SoftmaxInputs(hidden, rows, contexts.reshape(-1), centers, torch.arange(len(centers), device=centers.device),
                                 hidden.new_ones(len(centers)), distinct=True, real=mask.reshape(-1))
        hidden = embed(centers)  # (U, D): every center has a context word
        rows = center_rows.unsqueeze(1).expand_as(mask)[mask]  # (P,) in window order
        owners = torch.arange(len(centers), device=centers.device)  # (U,) each row is one input vector
        return SoftmaxInputs(hidden, rows, contexts[mask], centers, owners, hidden.new_ones(len(centers)), distinct=True)
