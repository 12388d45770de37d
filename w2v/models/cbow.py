"""CBOW: predict the center word from the mean (or, for the full softmax, the sum) of its context embeddings."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from w2v.errors import ConfigError
from w2v.models.architecture import Architecture
from w2v.models.full_softmax import FullSoftmaxModule, SoftmaxInputs


class CBOW(Architecture):
    """Continuous bag of words: a window's context words, averaged (or summed), predict its center."""

    mean_context = True  # negative sampling and hierarchical softmax: one decision set a window, from the mean

    def __init__(self, vocab, *, cbow_mean: bool, **kwargs):
        """`cbow_mean`: average the context's vectors (word2vec's, gensim's `cbow_mean=1`), or sum them
        (False; the notebooks', whose reported neighbours come out this way; full softmax only)."""
        type(self).check_cbow_mean(cbow_mean)
        super().__init__(vocab, **kwargs)

    @classmethod
    def check_hparams(cls, **settings) -> None:
        super().check_hparams(**settings)
        cls.check_cbow_mean(settings.get("cbow_mean"))

    @classmethod
    def check_cbow_mean(cls, cbow_mean) -> None:
        if not isinstance(cbow_mean, bool):
            raise ConfigError(f"model.cbow_mean={cbow_mean!r} must be true (average the context's vectors) "
                              "or false (sum them)")
        if not cbow_mean and not issubclass(cls, FullSoftmaxModule):
            raise ConfigError("model.cbow_mean=false (the context's vectors summed) is implemented for the full "
                              "softmax only; use model/output=softmax, or model.cbow_mean=true")

    def softmax_inputs(self, batch, padded=False):
        contexts, mask, centers = batch["contexts"], batch["mask"], batch["centers"]  # (B, 2W), (B, 2W), (B,)
        embed, mean = self.in_embed, self.hparams.cbow_mean
        if padded:
            return self._padded_inputs(contexts, mask, centers)
        words, counts = contexts[mask], mask.sum(1)  # (S,) the valid context words, window by window; (B,)
        # The mean (or sum) straight from the embedding's rows: gathering the (B, 2W, D) vectors first, then
        # weighting and summing them, takes several times as long (measured). CBOW's Adam is dense
        # (no `sparse_adam`), so no DeferredAdam hook needs the module's own forward pass.
        if embed.max_norm is not None:  # a MaxNormEmbedding: its rows renormalised as its lookups would
            embed.renorm_(words)
        hidden = F.embedding_bag(words, embed.weight, counts.cumsum(0) - counts, mode="mean" if mean else "sum",
                                 sparse=embed.sparse)  # (B, D): every center has a context word
        rows = torch.arange(len(centers), device=centers.device)  # (B,) one target, the center, a row
        owners = rows.repeat_interleave(counts)  # (S,) the window of each word
        share = 1.0 / counts if mean else torch.ones_like(counts)  # (B,) each word's weight in its window's vector
        weights = share.to(hidden.dtype).index_select(0, owners)  # (S,)
        return SoftmaxInputs(hidden, rows, centers, words, owners, weights)

    def _padded_inputs(self, contexts, mask, centers) -> SoftmaxInputs:
        """`softmax_inputs` in the batch's shapes: every context slot a word of its window's row with
        weight 0 where it is not in the window; a window without context words is padding."""
        embed = self.in_embed
        counts = mask.sum(1)  # (B,)
        share = mask / counts.clamp_min(1).unsqueeze(1) if self.hparams.cbow_mean else mask  # (B, 2W)
        share = share.to(embed.weight.dtype)
        if embed.max_norm is not None:  # the looked-up rows only: this waits on the device (the notebooks' setting)
            embed.renorm_(contexts[mask])
        hidden = F.embedding_bag(contexts, embed.weight, mode="sum", per_sample_weights=share)  # (B, D)
        rows = torch.arange(len(centers), device=centers.device)  # (B,)
        owners = rows.repeat_interleave(contexts.shape[1])  # (B·2W,) a fixed count a row: nothing to wait for
        return SoftmaxInputs(hidden, rows, centers, contexts.reshape(-1), owners, share.reshape(-1),
                             real=counts > 0, pairs_per_row=1)
