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
    several windows: in the notebooks' setting, 64 IMDb windows have about 50 distinct centers); the
    per-pair losses are those of scoring each pair alone.
    """

    pair_examples = True

    def softmax_inputs(self, batch, padded=False):
        contexts, mask = batch["contexts"], batch["mask"]  # (B, 2W), (B, 2W)
        embed = self.in_embed
        if not padded:
            # The distinct centers (a GPU waits for their count: computing a softmax row for each window
            # instead would take several times the products, measured on IMDb's batches).
            centers, center_rows = torch.unique(batch["centers"], return_inverse=True)  # (U,) sorted, (B,)
            hidden = embed(centers)  # (U, D): every center has a context word
            rows = center_rows.unsqueeze(1).expand_as(mask)[mask]  # (P,) in window order
            owners = torch.arange(len(centers), device=centers.device)  # (U,) each row is one input vector
            return SoftmaxInputs(hidden, rows, contexts[mask], centers, owners, hidden.new_ones(len(centers)),
                                 distinct=True)
        # every (window, context slot) a pair, those outside the window padding
        if embed.max_norm is not None:  # the rows of centers with a context word (this waits on the device)
            embed.renorm_(batch["centers"][mask.any(1)])
        if self.fused_step():  # the fused kernels take the count of distinct centers on the device
            words, center_rows, row_count = distinct_counted(batch["centers"])  # (B,), (B,), (1,)
        else:
            words, center_rows = torch.unique(batch["centers"], return_inverse=True)  # (U,) sorted, (B,)
            row_count = None
        hidden = embed.weight.index_select(0, words)  # (U, D), or (B, D) counted; no DeferredAdam hook: padded steps settle it first
        rows = center_rows.unsqueeze(1).expand_as(mask).reshape(-1)  # (B·2W,)
        return SoftmaxInputs(hidden, rows, contexts.reshape(-1), words, torch.arange(len(words), device=words.device),
                             hidden.new_ones(len(words)), distinct=row_count is None, real=mask.reshape(-1),
                             row_count=row_count)


def distinct_counted(values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """torch.unique(values, return_inverse=True) in fixed shapes, its count left on the device
    (unique's output size makes a GPU's host wait): the distinct values sorted, then the largest
    repeated up to len(values); each value's place among them; their count (1,) int32.
    values (N,) -> (N,), (N,), (1,)"""
    ordered = torch.sort(values).values  # (N,)
    first = torch.ones_like(ordered, dtype=torch.bool)
    first[1:] = ordered[1:] != ordered[:-1]  # (N,) each distinct value's first place
    rank = first.cumsum(0) - 1  # (N,) each sorted value's place among the distinct ones
    inverse = rank[torch.searchsorted(ordered, values)]  # (N,)
    places = torch.searchsorted(rank, torch.arange(len(rank), device=rank.device)).clamp_(max=max(len(rank) - 1, 0))
    return ordered[places], inverse, first.sum(dtype=torch.int32).reshape(1)
