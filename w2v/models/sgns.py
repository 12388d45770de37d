"""Skip-gram with negative sampling (SGNS): input and output embeddings, noise words from count^0.75.

With plain SGD (`model/optimizer=sgd`, the default, as word2vec) training takes a hand-written path: closed-form
gradients and damped in-place row updates, no autograd graph and no optimizer state. On a CPU the
step runs as fused Numba kernels (`kernels.cpu`) on the data loader's windows. On CUDA it takes the
GPU path: the corpus goes to the device a block at a time and one Triton kernel (`kernels.sgns_triton`)
draws the samples and trains a step's chunks, window by window, with the same update. `kernels=torch`
runs the update as PyTorch operations (`losses`) on the loader's windows, anywhere. Adam goes
through autograd on the same loss.
"""

from __future__ import annotations

import dataclasses
import logging

import torch

from w2v.data.sampling import NoiseTable, SamplerSettings, keep_probabilities
from w2v.errors import ConfigError
from w2v.kernels import cpu as cpu_kernels
from w2v.kernels.counter_rng import stream_key
from w2v.kernels.device_sampling import DeviceBlock, StreamKeys, check_block_size, prepare_block
from w2v.models.base import Word2VecModule, uniform_embedding
from w2v.models.losses import sgns_gradients, sgns_loss
from w2v.optim import plain_sgd
from w2v.distributed import gather_row_updates

log = logging.getLogger(__name__)


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


# auto: the fused Numba kernels on a CPU, the GPU path (Triton) on CUDA; triton: the GPU path on any
# device (on a CPU only under TRITON_INTERPRET=1, for tests); torch: PyTorch operations everywhere.
KERNELS = ("auto", "triton", "torch")


def triton_available() -> bool:
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


class SGNS(Word2VecModule):
    """SGNS: for every (center, context) pair, K=`negatives` noise words drawn from count^`noise_power`."""

    pair_examples = True

    def __init__(self, vocab, *, negatives: int, noise_power: float, kernels: str, compile: bool,
                 chunk_tokens: int, step_tokens: int, **kwargs):
        super().__init__(vocab, **kwargs)
        self.check_negatives(negatives)
        self.check_kernels(kernels)
        # For the PyTorch step (GPU, or kernels=torch): torch.compile fuses the small batched products
        # and element-wise steps of the gradient after a one-time compilation; the results are the same.
        self._gradients = torch.compile(sgns_gradients, dynamic=True) if compile else sgns_gradients
        self.out_embed = uniform_embedding(len(vocab), self.hparams.embedding_dim, self.sparse)
        # Plain SGD takes the hand-written path, which updates the weights itself; any other
        # optimizer (or SGD with momentum, weight decay...) trains through autograd.
        self.automatic_optimization = not plain_sgd(self.hparams.optimizer)
        self._block: DeviceBlock | None = None  # the GPU path's current corpus block, and its draws' keys
        self._block_keys: torch.Tensor | None = None
        self._tables: tuple[torch.Tensor, ...] | None = None  # keep probabilities and the noise alias table, on the device

    @classmethod
    def check_hparams(cls, **settings) -> None:
        super().check_hparams(**settings)
        cls.check_negatives(settings.get("negatives"))
        cls.check_kernels(settings.get("kernels"))

    @staticmethod
    def check_kernels(kernels) -> None:
        if kernels not in KERNELS:
            raise ConfigError(f"model.kernels={kernels!r} is unknown; use auto (Numba on a CPU, Triton on CUDA), "
                              "triton or torch")

    @staticmethod
    def check_negatives(negatives) -> None:
        if not isinstance(negatives, int) or negatives < 1:
            raise ConfigError(f"model.negatives={negatives} must be an integer of at least 1 (noise words per pair)")

    def on_device(self) -> bool:
        """Whether training takes the GPU path: samples drawn on the device, the step in one Triton kernel."""
        if self.automatic_optimization:
            return False
        # The kernel's programs add their updates to shared rows atomically, in an order that varies
        # from run to run; trainer.deterministic=true asks for the same vectors every time.
        deterministic = torch.are_deterministic_algorithms_enabled()
        if self.hparams.kernels == "triton":
            if not triton_available():
                raise ConfigError("model.kernels=triton needs Triton; pip install triton, or use model.kernels=auto")
            if deterministic:
                raise ConfigError("model.kernels=triton adds updates atomically in a varying order, which "
                                  "trainer.deterministic=true rules out; use model.kernels=auto, or "
                                  "trainer.deterministic=false")
            return True
        if self.hparams.kernels == "auto" and self.device.type == "cuda":
            if deterministic:
                log.info("trainer.deterministic=true: SGNS takes the PyTorch step on CUDA, not the Triton kernel, "
                         "whose atomic updates vary in order")
                return False
            if triton_available():
                return True
            log.warning("Triton is not installed: SGNS on CUDA takes the slower PyTorch step (pip install triton)")
        return False

    def sampler_settings(self) -> SamplerSettings:
        # The data loader draws the noise words with the windows, from each batch's own generator;
        # on the GPU path the model draws them itself.
        return dataclasses.replace(super().sampler_settings(), negatives=self.hparams.negatives,
                                   noise_power=self.hparams.noise_power, on_device=self.on_device(),
                                   chunk_tokens=self.hparams.chunk_tokens, step_tokens=self.hparams.step_tokens)

    @staticmethod
    def windows(batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """contexts (B, C), mask (B, C) and targets (B, 1+K): the center word, then its K noise words."""
        return batch["contexts"], batch["mask"], torch.cat([batch["centers"].unsqueeze(1), batch["noise"]], 1)

    def example_losses(self, batch):
        contexts, mask, targets = self.windows(batch)
        return sgns_loss(self.in_embed(contexts), mask, self.out_embed(targets))  # (P,)

    def training_step(self, batch, batch_idx):
        if self.automatic_optimization:
            return super().training_step(batch, batch_idx)
        if "chunks" in batch:
            return self._device_step(batch)
        contexts, mask, targets = self.windows(batch)  # (B, C), (B, C), (B, 1+K)
        distributed = self.trainer.world_size > 1
        if len(targets) == 0 and not distributed:  # a data-parallel process takes part in the collectives anyway
            return None
        w_in, w_out = self.in_embed.weight.data, self.out_embed.weight.data
        fused = self.hparams.kernels == "auto" and w_in.device.type == "cpu"
        if fused:
            threads = cpu_kernels.use_threads(torch.get_num_threads())  # as many threads as PyTorch's operations
        ctx_update, tgt_update, loss_sum, pairs = (self._fused_updates if fused else self._torch_updates)(contexts, mask, targets)
        if distributed:  # every process applies every process's update
            ctx_update, tgt_update = gather_row_updates(*ctx_update), gather_row_updates(*tgt_update)
        lr = self.optimizers().param_groups[0]["lr"]
        if fused:
            cpu_kernels.damped_row_update(w_in.numpy(), *(t.numpy() for t in ctx_update), lr, threads)
            cpu_kernels.damped_row_update(w_out.numpy(), *(t.numpy() for t in tgt_update), lr, threads)
        else:
            damped_row_update(w_in, *ctx_update, lr)
            damped_row_update(w_out, *tgt_update, lr)
        self.step_optimizer()  # the optimizer's step is a no-op (no parameter has a gradient); the schedule's is not
        self.log_loss(loss_sum / max(pairs, 1), pairs)
        return None

    def _device_step(self, batch) -> None:
        """The GPU path's step: the Triton kernel trains chunks first_chunk.. of the current block."""
        from w2v.kernels.sgns_triton import sgns_chunks  # imports Triton: only where it runs

        w_in, w_out = self.in_embed.weight.data, self.out_embed.weight.data
        if self._tables is None:
            noise = NoiseTable(self.vocab.counts, self.hparams.noise_power)
            keep = None
            if self.hparams.subsample:
                keep = keep_probabilities(self.vocab.counts, self.hparams.subsample, self.hparams.subsample_rule)
            self._tables = (None if keep is None else torch.as_tensor(keep, dtype=torch.float32, device=w_in.device),
                            torch.as_tensor(noise.threshold, dtype=torch.float32, device=w_in.device),
                            torch.as_tensor(noise.alias, dtype=torch.int32, device=w_in.device))
        keep_prob, threshold, alias = self._tables
        if "ids" in batch:  # a new block, or a new epoch: subsample it and order its chunks, on the device
            check_block_size(len(batch["ids"]), self.hparams.negatives)
            keys = StreamKeys(*(stream_key(batch["seed"], batch["epoch"], batch["block"], purpose)
                                for purpose in ("subsample", "window", "noise", "order")))
            self._block = prepare_block(batch["ids"], batch["offsets"], keep_prob, self.hparams.chunk_tokens, keys,
                                        batch["shuffle"])
            self._block_keys = keys.tensor(w_in.device)
        block = self._block
        totals = torch.zeros(2, dtype=torch.float64, device=w_in.device)  # (loss sum, pairs)
        lr_begin, lr_end = self.step_learning_rates()
        sgns_chunks(w_in, w_out, block.seq, block.docs, block.bounds, block.order, threshold, alias, self._block_keys,
                    totals, batch["first_chunk"], batch["chunks"], lr_begin, lr_end, self.hparams.window,
                    self.hparams.shrink_window, self.hparams.negatives)
        self.step_optimizer()
        self.log_loss(totals[0] / totals[1].clamp_min(1), totals[1])  # no wait on the device but on logging steps
        return None

    def _torch_updates(self, contexts, mask, targets):
        """Each row's (rows, gradients, curvatures) for the input and output embeddings, the summed
        loss of the batch's pairs and their number."""
        w_in, w_out = self.in_embed.weight.data, self.out_embed.weight.data
        ctx_rows, tgt_rows = contexts.reshape(-1), targets.reshape(-1)  # (B*C,), (B*(1+K),)
        # index_select on flat ids is several times faster on CPU than advanced indexing with a 2-D index.
        ctx_vecs = w_in.index_select(0, ctx_rows).view(*contexts.shape, w_in.shape[1])  # (B, C, D)
        tgt_vecs = w_out.index_select(0, tgt_rows).view(*targets.shape, w_out.shape[1])  # (B, 1+K, D)
        grad_ctx, grad_tgt, curv_ctx, curv_tgt, losses = self._gradients(ctx_vecs, mask, tgt_vecs)
        dim = w_in.shape[1]
        return ((ctx_rows, grad_ctx.reshape(-1, dim), curv_ctx.reshape(-1)),  # (B*C,), (B*C, D), (B*C,)
                (tgt_rows, grad_tgt.reshape(-1, dim), curv_tgt.reshape(-1)),  # (B*(1+K),), ...
                losses.sum(), len(losses))

    def _fused_updates(self, contexts, mask, targets):
        """As `_torch_updates`, by the fused CPU kernel, for the valid pairs only (masked slots get row -1)."""
        w_in, w_out = self.in_embed.weight.data, self.out_embed.weight.data
        ctx_rows = torch.where(mask, contexts, -1)  # (B, C)
        ctx_rows, grad_ctx, curv_ctx, grad_tgt, curv_tgt, losses = (torch.from_numpy(a) for a in cpu_kernels.sgns_window_gradients(
            w_in.numpy(), w_out.numpy(), ctx_rows.numpy(), targets.numpy()))  # (P,), (P, D), (P,), (B, 1+K, D), (B, 1+K), (B,)
        dim = w_in.shape[1]
        return ((ctx_rows, grad_ctx, curv_ctx), (targets.reshape(-1), grad_tgt.view(-1, dim), curv_tgt.view(-1)),
                losses.sum(), len(ctx_rows))

    def output_matrix(self) -> torch.Tensor:
        return self.out_embed.weight
