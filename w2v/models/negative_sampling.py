"""Negative sampling: each example tells its center word's output row (label 1) from K noise words'
(label 0), drawn with probability ∝ count^`noise_power`; word2vec's `-negative K`.

Skip-gram with negative sampling is SGNS, the default experiment's model. On CUDA its SGD step
takes the GPU path: the corpus goes to the device a block at a time and one Triton kernel
(`kernels.sgns_triton`) draws the samples and trains a step's chunks, window by window, by the
model's update rule: sequential (word2vec's order within each window, under `update_rule=auto`) or
damped. Everywhere else, and for CBOW, training takes `BinaryOutputModule`'s
step: on the CPU its sequential rule draws its own windows and noise words from the same kind of
chunks, and otherwise trains on the data loader's windows, whose noise words the loader draws.
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import torch

from w2v.data.sampling import NoiseTable, SamplerSettings
from w2v.errors import ConfigError, check_number
from w2v.kernels import triton_available
from w2v.kernels.device_sampling import DeviceBlock, StreamKeys, check_block_size, prepare_block
from w2v.models.binary_output import BinaryOutputModule, WindowTables
from w2v.models.losses import negative_sampling_labels
from w2v.optim import plain_sgd

log = logging.getLogger(__name__)
TRITON_SCOPE = ("model.kernels=triton trains Skip-gram with negative sampling by plain SGD only "
                "(model=sgns, model/optimizer=sgd); use model.kernels=auto")


class NegativeSampling(BinaryOutputModule):
    """For every example, K=`negatives` noise words drawn from count^`noise_power`, shared by the
    pairs of a Skip-gram window (Ji et al.)."""

    def __init__(self, vocab, *, negatives: int, noise_power: float, chunk_tokens: int, step_tokens: int, **kwargs):
        super().__init__(vocab, **kwargs)
        self.check_negatives(negatives)
        self._block: DeviceBlock | None = None  # the GPU path's current corpus block, and its draws' keys
        self._stream_keys: StreamKeys | None = None
        self._block_keys: torch.Tensor | None = None  # the same keys as the kernel reads them
        self._tables: tuple[torch.Tensor, ...] | None = None  # keep probabilities and the noise alias table, on the device
        self._noise: WindowTables | None = None  # the noise alias table, made by `window_tables` on first use

    @classmethod
    def check_hparams(cls, **settings) -> None:
        super().check_hparams(**settings)
        cls.check_negatives(settings.get("negatives"))
        if settings.get("kernels") == "triton" and (cls.mean_context or not plain_sgd(settings["optimizer"])):
            raise ConfigError(TRITON_SCOPE)

    @staticmethod
    def check_negatives(negatives) -> None:
        check_number("model.negatives", negatives, integer=True, least=1, unit=" (noise words per pair)")

    def on_device(self) -> bool:
        """Whether training takes the GPU path: samples drawn on the device, the step in one Triton kernel."""
        if self.automatic_optimization or self.mean_context:  # the kernel trains Skip-gram's windows
            if self.hparams.kernels == "triton":
                raise ConfigError(TRITON_SCOPE)
            return False
        if self.hparams.kernels == "triton":
            self.require_triton()
            if torch.are_deterministic_algorithms_enabled():
                raise ConfigError("model.kernels=triton adds updates atomically in a varying order, which "
                                  "trainer.deterministic=true rules out; use model.kernels=auto, or "
                                  "trainer.deterministic=false")
            return True
        return self.hparams.kernels == "auto" and self.device.type == "cuda" and self._kernel_ruled_out() is None

    @staticmethod
    def _kernel_ruled_out() -> tuple[int, str] | None:
        """Why SGNS on CUDA under model.kernels=auto takes the PyTorch step instead of the Triton
        kernel, as (logging level, message); None when nothing rules the kernel out."""
        # The kernel's programs add their updates to shared rows atomically, in an order that varies
        # from run to run; trainer.deterministic=true asks for the same vectors every time.
        if torch.are_deterministic_algorithms_enabled():
            return logging.INFO, ("trainer.deterministic=true: SGNS takes the PyTorch step on CUDA, not the Triton "
                                  "kernel, whose atomic updates vary in order")
        if not triton_available():
            return logging.WARNING, ("Triton is not installed: SGNS on CUDA takes the slower PyTorch step "
                                     "(pip install triton)")
        return None

    def sampler_settings(self) -> SamplerSettings:
        # The data loader draws the noise words with the windows, from each batch's own generator;
        # on the GPU path and the sequential CPU kernels' chunks the model draws them itself.
        settings = dataclasses.replace(super().sampler_settings(), negatives=self.hparams.negatives,
                                       noise_power=self.hparams.noise_power)
        if self.on_device():
            return dataclasses.replace(settings, draws_samples=True, windows_too=False,
                                       chunk_tokens=self.hparams.chunk_tokens, step_tokens=self.hparams.step_tokens)
        kernel_wanted = not (self.automatic_optimization or self.mean_context)
        if kernel_wanted and self.hparams.kernels == "auto" and self.device.type == "cuda":  # why not, then
            log.log(*self._kernel_ruled_out())
        return settings

    def decisions(self, batch):
        return (*negative_sampling_labels(batch["centers"], batch["noise"]), None)  # (B, 1+K), (B, 1+K)

    def window_tables(self) -> WindowTables:
        if self._noise is None:
            noise = NoiseTable(self.vocab.counts, self.hparams.noise_power)
            self._noise = WindowTables(self.hparams.negatives, noise.threshold.astype(np.float32),
                                       noise.alias.astype(np.int32))
        return self._noise

    def _chunk_step(self, batch) -> None:
        if self.hparams.kernels == "triton" or self.device.type == "cuda":
            return self._device_step(batch)
        return super()._chunk_step(batch)

    def _device_step(self, batch) -> None:
        """The GPU path's step: the Triton kernel trains chunks first_chunk.. of the current block."""
        lr_begin, lr_end = self.step_learning_rates()
        totals = self.train_chunks(batch, lr_begin, lr_end)  # (loss sum, pairs)
        self.step_optimizer()
        self.log_loss(totals[0] / totals[1].clamp_min(1), totals[1])  # no wait on the device but on logging steps
        return None

    def train_chunks(self, batch, lr_begin: float, lr_end: float, *, rule: str | None = None,
                     num_warps: int = 4) -> torch.Tensor:
        """The kernel's part of a GPU path step, on the embeddings in place: a batch of `ChunkBatches`
        (on the rows' device) trained at a rate falling from `lr_begin` to `lr_end`. Returns (2,)
        float64: the summed loss and the pairs. `rule` (None: the model's, `rule_on`), `num_warps`:
        the kernel's (scripts/sgns_kernel_bench.py varies them)."""
        from w2v.kernels.sgns_triton import sgns_chunks  # imports Triton: only where it runs

        rule = self.rule_on(self.device) if rule is None else rule  # sequential or damped, the kernel's names too
        block, _, threshold, alias = self.device_block(batch)
        w_in, w_out = self.in_embed.weight.data, self.out_embed.weight.data
        totals = torch.zeros(2, dtype=torch.float64, device=w_in.device)  # (loss sum, pairs)
        sgns_chunks(w_in, w_out, block.seq, block.docs, block.bounds, block.order, threshold, alias, self._block_keys,
                    totals, batch["first_chunk"], batch["chunks"], lr_begin, lr_end, self.hparams.window,
                    self.hparams.shrink_window, self.hparams.negatives, rule=rule, num_warps=num_warps)
        return totals

    def device_block(self, batch) -> tuple[DeviceBlock, StreamKeys, torch.Tensor, torch.Tensor]:
        """The GPU path's corpus block that a batch of `ChunkBatches` trains, its draws' keys and the noise
        words' alias table (threshold, alias), on the rows' device. A batch with ids brings a new block
        (or a new epoch), subsampled and cut into chunks here."""
        device = self.in_embed.weight.device
        if self._tables is None:  # on the device, once
            keep, tables = self.keep_probabilities(), self.window_tables()
            self._tables = (None if keep is None else torch.as_tensor(keep, device=device),
                            torch.as_tensor(tables.threshold, device=device),
                            torch.as_tensor(tables.alias, device=device))
        keep_prob, threshold, alias = self._tables
        if "ids" in batch:
            check_block_size(len(batch["ids"]), self.hparams.negatives)
            self._stream_keys = StreamKeys.for_block(batch["seed"], batch["epoch"], batch["block"])
            self._block = prepare_block(batch["ids"], batch["offsets"], keep_prob, batch["chunk_tokens"],
                                        self._stream_keys, batch["shuffle"])
            self._block_keys = self._stream_keys.tensor(device)
        return self._block, self._stream_keys, threshold, alias
