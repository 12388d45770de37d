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
        embed = self.in_embed
        if padded and embed.max_norm is not None:  # the rows of centers with a context word (this waits on the device)
            embed.renorm_(batch["centers"][mask.any(1)])
        if padded and self.fused_step():
            return self._counted_inputs(batch["centers"], contexts, mask)
        # The distinct centers (a GPU waits for their count: computing a softmax row for each window
        # instead would take several times the products, measured on IMDb's batches).
        centers, center_rows = torch.unique(batch["centers"], return_inverse=True)  # (U,) sorted, (B,)
        if padded:  # every (window, context slot) a pair, those outside the window padding
            hidden = embed.weight.index_select(0, centers)  # (U, D) no DeferredAdam hook: padded steps settle it first
            rows = center_rows.unsqueeze(1).expand_as(mask).reshape(-1)  # (B·2W,)
            return SoftmaxInputs(hidden, rows, contexts.reshape(-1), centers, torch.arange(len(centers), device=centers.device),
                                 hidden.new_ones(len(centers)), distinct=True, real=mask.reshape(-1))
        hidden = embed(centers)  # (U, D): every center has a context word
        rows = center_rows.unsqueeze(1).expand_as(mask)[mask]  # (P,) in window order
        owners = torch.arange(len(centers), device=centers.device)  # (U,) each row is one input vector
        return SoftmaxInputs(hidden, rows, contexts[mask], centers, owners, hidden.new_ones(len(centers)), distinct=True)

    def _counted_inputs(self, centers, contexts, mask) -> SoftmaxInputs:
        """Padded inputs for the fused kernels, their distinct centers counted on the device rather
        than read back: the B softmax rows hold the distinct centers first, sorted, and the kernels
        skip the rows past their count (`SoftmaxInputs.row_count`), so nothing waits on the device.
        centers (B,), contexts and mask (B, 2W)."""
        ordered = torch.sort(centers).values  # (B,)
        first = torch.ones_like(ordered, dtype=torch.bool)
        first[1:] = ordered[1:] != ordered[:-1]  # (B,) each distinct center's first place
        rank = first.cumsum(0) - 1  # (B,) each sorted center's row: its rank among the distinct ones
        center_rows = rank[torch.searchsorted(ordered, centers)]  # (B,) each window's row
        places = torch.searchsorted(rank, torch.arange(len(rank), device=rank.device)).clamp_(max=max(len(rank) - 1, 0))
        words = ordered[places]  # (B,) the distinct centers, then the largest again (rows past the count)
        hidden = self.in_embed.weight.index_select(0, words)  # (B, D) no DeferredAdam hook: padded steps settle it first
        rows = center_rows.unsqueeze(1).expand_as(mask).reshape(-1)  # (B·2W,)
        return SoftmaxInputs(hidden, rows, contexts.reshape(-1), words, torch.arange(len(words), device=words.device),
                             hidden.new_ones(len(words)), real=mask.reshape(-1),
                             row_count=first.sum(dtype=torch.int32).reshape(1))
