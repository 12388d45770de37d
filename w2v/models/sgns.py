"""Skip-gram with negative sampling (SGNS): input and output embeddings, noise words from count^0.75.

With `optimizer.name=sgd` (the default, as word2vec) training takes a hand-written path: closed-form
gradients and damped in-place row updates, no autograd graph and no optimizer state. Adam goes
through autograd on the same loss.
"""

from __future__ import annotations

import numpy as np
import torch

from w2v.data.sampling import noise_distribution
from w2v.errors import ConfigError
from w2v.models.base import Word2VecModule, uniform_embedding
from w2v.models.losses import sgns_gradients, sgns_loss
from w2v.models.sync import gather_row_updates


class NoiseSampler(torch.nn.Module):
    """Draws noise words with probability ∝ count^power, from a generator seeded per batch.

    Like word2vec, it looks draws up in a table where each word fills a share of the slots equal to
    its probability: one random integer and one lookup per draw, with probabilities rounded to
    1/`table_size` (every word that occurs keeps at least one slot).
    """

    def __init__(self, counts, power: float = 0.75, table_size: int = 1 << 24):
        super().__init__()
        probs = noise_distribution(counts, power)
        slots = np.floor(probs * table_size).astype(np.int64)
        slots[(probs > 0) & (slots == 0)] = 1
        # Hand the rounding remainder to the most probable words, so the table is exactly full.
        shortfall = table_size - slots.sum()
        order = np.argsort(-(probs * table_size - slots), kind="stable")
        slots[order[: max(shortfall, 0)]] += 1
        table = np.repeat(np.arange(len(probs), dtype=np.int32), slots)
        self.register_buffer("table", torch.from_numpy(table), persistent=False)
        self._generator: torch.Generator | None = None

    def sample(self, rows: int, k: int, seed: int | None = None) -> torch.Tensor:
        """(rows, k) noise word ids."""
        generator = None
        if seed is not None:
            if self._generator is None or self._generator.device != self.table.device:
                self._generator = torch.Generator(device=self.table.device)
            generator = self._generator.manual_seed(seed)
        slots = torch.randint(len(self.table), (rows, k), generator=generator, device=self.table.device)
        return self.table[slots].long()


def damped_row_update(weight: torch.Tensor, rows: torch.Tensor, grads: torch.Tensor, curvature: torch.Tensor,
                      lr: float) -> None:
    """weight[r] -= lr * G_r / (1 + lr * H_r), G_r and H_r the sums of row r's gradients and curvatures.

    word2vec applies each example's gradient at the full rate, one after the other. A batch that
    sums hundreds of gradients for a frequent word takes them all at once, without the feedback
    between them, and diverges; averaging them instead starves frequent words and collapses the
    vectors. Dividing by 1 + lr·H (a diagonal Gauss-Newton damping) leaves a word seen once in the
    batch with word2vec's step (shrunk by at most a few percent) and bounds the steps of frequent ones.
    rows (R,), grads (R, D), curvature (R,).
    """
    total_curvature = torch.zeros(weight.shape[0], dtype=grads.dtype, device=grads.device)
    total_curvature.index_add_(0, rows, curvature)  # (V,)
    scale = -lr / (1.0 + lr * total_curvature[rows])  # (R,)
    weight.index_add_(0, rows, grads * scale.unsqueeze(-1))


class SGNS(Word2VecModule):
    """SGNS: for every (center, context) pair, K=`negatives` noise words drawn from count^`noise_power`."""

    def __init__(self, vocab, negatives: int = 5, noise_power: float = 0.75, compile: bool = False, **kwargs):
        super().__init__(vocab, **kwargs)
        self.check_negatives(negatives)
        # torch.compile fuses the small batched products and element-wise steps of the gradient
        # (2-3x faster on CPU) after a one-time compilation of about 20 s; the results are the same.
        self._gradients = torch.compile(sgns_gradients, dynamic=True) if compile else sgns_gradients
        self.out_embed = uniform_embedding(len(vocab), self.hparams.embedding_dim, self.sparse)
        self.noise = NoiseSampler(vocab.counts, noise_power)
        self.automatic_optimization = not self.sparse  # the hand-written SGD path updates the weights itself

    @classmethod
    def check_hparams(cls, negatives: int = 5, **kwargs) -> None:
        super().check_hparams(**kwargs)
        cls.check_negatives(negatives)

    @staticmethod
    def check_negatives(negatives) -> None:
        if not isinstance(negatives, int) or negatives < 1:
            raise ConfigError(f"model.negatives={negatives} must be an integer of at least 1 (noise words per pair)")

    def windows(self, batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """contexts (B, C) and mask (B, C) of the centers that have a context; targets (B, 1+K): center, noise."""
        mask = batch["mask"]  # (B, C)
        has_context = mask.any(1)  # (B,)
        centers = batch["centers"][has_context]  # (B',)
        noise = self.noise.sample(len(centers), self.hparams.negatives, batch.get("seed"))  # (B', K)
        return batch["contexts"][has_context], mask[has_context], torch.cat([centers.unsqueeze(1), noise], 1)

    def example_losses(self, batch):
        contexts, mask, targets = self.windows(batch)
        return sgns_loss(self.in_embed(contexts), mask, self.out_embed(targets))  # (P,)

    def training_step(self, batch, batch_idx):
        if self.automatic_optimization:
            return super().training_step(batch, batch_idx)
        contexts, mask, targets = self.windows(batch)  # (B, C), (B, C), (B, 1+K)
        distributed = self.trainer.world_size > 1
        if len(targets) == 0 and not distributed:  # a data-parallel process takes part in the collectives anyway
            return None
        w_in, w_out = self.in_embed.weight.data, self.out_embed.weight.data
        ctx_rows, tgt_rows = contexts.reshape(-1), targets.reshape(-1)  # (B*C,), (B*(1+K),)
        # index_select on flat ids is several times faster on CPU than advanced indexing with a 2-D index.
        ctx_vecs = w_in.index_select(0, ctx_rows).view(*contexts.shape, w_in.shape[1])  # (B, C, D)
        tgt_vecs = w_out.index_select(0, tgt_rows).view(*targets.shape, w_out.shape[1])  # (B, 1+K, D)
        grad_ctx, grad_tgt, curv_ctx, curv_tgt, losses = self._gradients(ctx_vecs, mask, tgt_vecs)
        lr = self.optimizers().param_groups[0]["lr"]
        dim = w_in.shape[1]
        ctx_update = (ctx_rows, grad_ctx.reshape(-1, dim), curv_ctx.reshape(-1))  # (B*C,), (B*C, D), (B*C,)
        tgt_update = (tgt_rows, grad_tgt.reshape(-1, dim), curv_tgt.reshape(-1))  # (B*(1+K),), ...
        if distributed:  # every process applies every process's update
            ctx_update, tgt_update = gather_row_updates(*ctx_update), gather_row_updates(*tgt_update)
        damped_row_update(w_in, *ctx_update, lr)
        damped_row_update(w_out, *tgt_update, lr)
        self.optimizers().step()  # no-op (the parameters carry no gradient); keeps Lightning's step count
        scheduler = self.lr_schedulers()
        if scheduler is not None:
            scheduler.step()
        self.log_loss(losses.mean() if len(losses) else losses.sum(), len(losses))
        return None

    def output_matrix(self) -> torch.Tensor:
        return self.out_embed.weight
