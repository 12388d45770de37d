"""The full-softmax output layer, for CBOW and Skip-gram: a softmax over the whole vocabulary and a
training step with hand-written gradients."""

from __future__ import annotations

from abc import abstractmethod
from typing import NamedTuple

import torch
from torch import nn

from w2v.errors import ConfigError
from w2v.models.base import Word2VecModule, uniform_init_
from w2v.models.losses import SoftmaxCrossEntropy, logits_scratch, softmax_cross_entropy_backward
from w2v.distributed import average_gradients

OUT_INITS = ("linear", "uniform")  # the output weight's initialisation (`model.out_init`)


class SoftmaxInputs(NamedTuple):
    """A batch as softmax rows and (row, target) pairs, and how the rows are made of input vectors:
    hidden[u] = Σ_{s: owners[s] = u} weights[s] · in_embed[words[s]]."""

    hidden: torch.Tensor  # (U, D) the rows whose softmax over the vocabulary is computed
    rows: torch.Tensor  # (P,) each training pair's row of hidden
    targets: torch.Tensor  # (P,) each pair's target word
    words: torch.Tensor  # (S,) the input words that make up the rows
    owners: torch.Tensor  # (S,) the row each of them goes into
    weights: torch.Tensor  # (S,) its weight there
    distinct: bool = False  # words sorted and distinct: their sparse gradient needs no coalescing


def softmax_chunk(device: torch.device, vocab_size: int) -> int:
    """Softmax rows a training step takes at a time. On a CPU, 384: a chunk's logits take the same
    memory whatever the batch, and the weight's gradient, a sum over the chunks, gets a longer inner
    dimension than with 256; of 256, 384 and 512 rows, 384 did best over the models and vocabulary
    sizes measured (scripts/README.md). Elsewhere as many rows as a 512 MiB
    float32 matrix holds."""
    return 384 if device.type == "cpu" else max(256, 2**27 // vocab_size)


class FullSoftmaxModule(Word2VecModule):
    """A model that predicts words through a softmax over the whole vocabulary (`out`: weight and bias).

    Training does not build an autograd graph: the step computes the softmax once, takes the
    gradients of the batch's mean loss in closed form (`softmax_cross_entropy_gradients`, the same
    formulas as the autograd path's backward) and hands them to the configured optimizer. On the
    small products of a 64-center batch, autograd's bookkeeping and fresh gradient buffers are a
    noticeable share of the step (scripts/README.md). In a data-parallel run the processes average their gradients
    (`distributed.average_gradients`) before the optimizer's step.
    """

    def __init__(self, vocab, *, max_norm: float | None, out_init: str, **kwargs):
        """`out_init`: the output weight's initial values, nn.Linear's own (`linear`: uniform in
        ±1/sqrt(D), as its bias) or `uniform` in ±0.5/D like the input embedding (the notebooks')."""
        self._max_norm = max_norm  # the notebooks' nn.Embedding(max_norm=1): looked-up rows renormalised in place
        super().__init__(vocab, **kwargs)
        FullSoftmaxModule.check_out_init(out_init)
        self.out = nn.Linear(self.hparams.embedding_dim, len(vocab))
        if out_init == "uniform":
            uniform_init_(self.out.weight)  # (V, D)
        self.automatic_optimization = False
        self._scratch: torch.Tensor | None = None  # memory for a chunk's logits (`logits_scratch`)

    @classmethod
    def check_hparams(cls, **settings) -> None:
        super().check_hparams(**settings)
        max_norm = settings.get("max_norm")
        if max_norm is not None and not max_norm > 0:
            raise ConfigError(f"model.max_norm={max_norm} must be positive, or null to leave the embeddings unscaled")
        cls.check_out_init(settings.get("out_init"))

    @staticmethod
    def check_out_init(out_init) -> None:
        if out_init not in OUT_INITS:
            raise ConfigError(f"model.out_init={out_init!r} is unknown; use {' or '.join(OUT_INITS)}")

    def max_norm(self) -> float | None:
        return self._max_norm

    @property
    def sparse_adam(self) -> bool:
        return not self.mean_context  # Skip-gram's batch reads the rows of its centers only; CBOW's, whole windows

    @abstractmethod
    def softmax_inputs(self, batch: dict[str, torch.Tensor]) -> SoftmaxInputs:
        """The batch's softmax rows (from `in_embed`, tracked by autograd when it is on) and pairs."""

    def example_losses(self, batch):
        inputs = self.softmax_inputs(batch)
        return SoftmaxCrossEntropy.apply(inputs.hidden, self.out.weight, self.out.bias, inputs.rows, inputs.targets)  # (P,)

    @torch.no_grad()
    def backward_by_hand(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The batch's (P,) losses; sets every parameter's .grad to the gradient of their mean."""
        inputs = self.softmax_inputs(batch)
        weight, bias, embedding = self.out.weight, self.out.bias, self.in_embed.weight
        dtype = torch.promote_types(inputs.hidden.dtype, torch.float32)
        grad_losses = torch.full(inputs.rows.shape, 1.0 / max(len(inputs.rows), 1), dtype=dtype, device=weight.device)  # (P,)
        chunk = softmax_chunk(weight.device, len(weight))
        self._scratch = logits_scratch(chunk, weight, self._scratch)  # kept from step to step
        losses, grad_hidden, grad_weight, grad_bias = softmax_cross_entropy_backward(
            inputs.hidden, weight, bias, inputs.rows, inputs.targets, grad_losses, chunk,
            self._scratch)  # (P,), (U, D), (V, D), (V,)
        # under mixed precision the products come out in half precision; a gradient has its parameter's type
        weight.grad, bias.grad = grad_weight.to(weight.dtype), grad_bias.to(bias.dtype)
        # index_select, not grad_hidden[owners]: on a CPU that indexing takes several times as long (measured)
        word_grads = grad_hidden.index_select(0, inputs.owners).mul_(inputs.weights.unsqueeze(1)).to(embedding.dtype)  # (S, D)
        if self.sparse:  # the batch's rows, as a sparse nn.Embedding's: SGD and LazyAdam step those only, DeferredAdam defers the rest
            embedding.grad = torch.sparse_coo_tensor(inputs.words.unsqueeze(0), word_grads, embedding.shape,
                                                    check_invariants=False, is_coalesced=inputs.distinct)  # ids in range
        else:
            embedding.grad = torch.zeros_like(embedding).index_add_(0, inputs.words, word_grads)
        return losses

    def training_step(self, batch, batch_idx):
        losses = self.backward_by_hand(batch)
        if self.trainer.world_size > 1:
            # Every process steps with the gradients averaged over all of them, as DDP would; a
            # process whose batch is empty still takes part, with zero gradients.
            average_gradients(self.parameters())
        elif len(losses) == 0:  # every center of the batch lacked a context
            return None
        self.step_optimizer()
        self.log_loss(losses.detach().sum() / max(len(losses), 1), len(losses))
        return None

    def output_matrix(self) -> torch.Tensor:
        return self.out.weight
