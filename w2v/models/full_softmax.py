"""The full-softmax output layer, for CBOW and Skip-gram: a softmax over the whole vocabulary and a
training step with hand-written gradients."""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import replace
from typing import Any, NamedTuple

import torch
from torch import nn

from w2v.data.sampling import SamplerSettings
from w2v.distributed import average_gradients
from w2v.errors import ConfigError, check_number
from w2v.kernels import SOFTMAX_TRITON_MAX_DIM, triton_available, triton_interpreted
from w2v.kernels.device_sampling import DeviceBlock, StreamKeys, prepare_block, step_windows
from w2v.models.base import Word2VecModule, uniform_init_
from w2v.models.cuda_graph import StepGraph
from w2v.models.losses import SoftmaxCrossEntropy, logits_scratch, softmax_cross_entropy_backward
from w2v.optim import plain_sgd, takes_sparse_rows

OUT_INITS = ("linear", "uniform")  # the output weight's initialisation (`model.out_init`)
# Where a step's windows are drawn (`model.sampling`): auto (on the device on CUDA, in a
# one-process run; else by the data loader), loader (the data loader's thread), device (the model's device).
SAMPLINGS = ("auto", "loader", "device")


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
    # Padded inputs (the batch's fixed shapes kept, so that nothing waits on a GPU): which pairs
    # count (P,) bool, the others padding; None: every pair counts.
    real: torch.Tensor | None = None
    # The pairs come row by row, this many a row (rows[p] = p // pairs_per_row); None: in any order.
    pairs_per_row: int | None = None
    # (1,) int32 on the device: the rows in use, the first ones, the others skipped (the fused
    # kernels' `row_count`, so that the host need not read the count); None: all.
    row_count: torch.Tensor | None = None


def windows_with_context(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """`batch`'s windows that have a context word, which the flat inputs take for granted: windows
    drawn on the device include padding and centers alone in their document; the loader's have none
    without, and come back as they are."""
    has_context = batch["mask"].any(1)  # (B,)
    if bool(has_context.all()):
        return batch
    return {key: batch[key][has_context] for key in ("centers", "contexts", "mask")}


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
    formulas as the autograd path's backward) and hands them to the configured optimizer. On small
    products, such as those of the notebooks' Skip-gram batches of 64 centers, autograd's
    bookkeeping and fresh gradient buffers are a noticeable share of the step (scripts/README.md).
    In a data-parallel run the processes average their gradients (`distributed.average_gradients`)
    before the optimizer's step.

    On a GPU the step keeps the batch's fixed shapes (`padded_inputs`), so that nothing waits on
    the device (but for Skip-gram's distinct centers under PyTorch's step), by default (`model.sampling=auto`) draws its
    windows there itself from the corpus's blocks (`device_sampling.step_windows`, or its Triton
    kernel) instead of taking the data loader's, which a CPU thread makes, and (`model.kernels=auto`) computes the
    softmax and its gradients in two Triton kernels that never store the (rows, V) logits
    (`kernels.softmax_triton`): the PyTorch step's passes over that matrix bound its speed there.
    With `model.cuda_graph=true` that step's kernels are replayed from a CUDA graph (`graphed_step`).
    """

    auto_kernels = "the fused Triton step on CUDA, PyTorch elsewhere"

    def __init__(self, vocab, *, max_norm: float | None, out_init: str, sampling: str, kernels: str,
                 cuda_graph: bool, **kwargs):
        """`out_init`: the output weight's initial values, nn.Linear's own (`linear`: uniform in
        ±1/sqrt(D), as its bias) or `uniform` in ±0.5/D like the input embedding (the notebooks').
        `sampling`: where the windows are drawn (SAMPLINGS). `kernels` (base.KERNELS): whether the
        step takes the fused Triton kernels (`fused_step`). `cuda_graph`: replay the GPU step's
        device work from a CUDA graph (`graphed_step`)."""
        self._max_norm = max_norm  # the notebooks' nn.Embedding(max_norm=1): looked-up rows renormalised in place
        super().__init__(vocab, **kwargs)
        FullSoftmaxModule.check_out_init(out_init)
        FullSoftmaxModule.check_sampling(sampling)
        self.check_kernels(kernels)
        FullSoftmaxModule.check_cuda_graph_setting(cuda_graph)
        self.out = nn.Linear(self.hparams.embedding_dim, len(vocab))
        if out_init == "uniform":
            uniform_init_(self.out.weight)  # (V, D)
        self.automatic_optimization = False
        self._scratch: torch.Tensor | None = None  # memory for a chunk's logits (`logits_scratch`)
        # model.sampling=device: the block, its keys (and as a tensor on the device), its chunk size
        self._block: tuple[DeviceBlock, StreamKeys, torch.Tensor, int] | None = None
        self._first: torch.Tensor | None = None  # (1,) int64 on the device: the step's first chunk, for the Triton windows
        self._step_graph: StepGraph | None = None  # model.cuda_graph: the step's graph, for the current block
        self._graph_chunks: int | None = None  # the chunks of the steps it replays: those of the block's first
        # LazyAdam steps the rows of the batch's words only: padding would add rows to them
        self._rows_only = takes_sparse_rows(self.hparams.optimizer) and not plain_sgd(self.hparams.optimizer)

    @classmethod
    def check_hparams(cls, **settings) -> None:
        super().check_hparams(**settings)
        max_norm = settings.get("max_norm")
        check_number("model.max_norm", max_norm, above=0, null="to leave the embeddings unscaled")
        cls.check_out_init(settings.get("out_init"))
        cls.check_sampling(settings.get("sampling"))
        cls.check_kernels(settings.get("kernels"))
        cls.check_cuda_graph_setting(settings.get("cuda_graph"))
        if settings.get("kernels") == "triton" and settings.get("embedding_dim", 0) > SOFTMAX_TRITON_MAX_DIM:
            raise ConfigError(f"model.kernels=triton takes embeddings up to {SOFTMAX_TRITON_MAX_DIM} wide, not "
                              f"model.embedding_dim={settings['embedding_dim']}; use model.kernels=auto")

    @staticmethod
    def check_out_init(out_init) -> None:
        if out_init not in OUT_INITS:
            raise ConfigError(f"model.out_init={out_init!r} is unknown; use {' or '.join(OUT_INITS)}")

    @staticmethod
    def check_sampling(sampling) -> None:
        if sampling not in SAMPLINGS:
            raise ConfigError(f"model.sampling={sampling!r} is unknown; use auto (on the device on a GPU), "
                              "loader (the data loader's windows) or device (drawn on the model's device)")

    @staticmethod
    def check_cuda_graph_setting(cuda_graph) -> None:
        if not isinstance(cuda_graph, bool):
            raise ConfigError(f"model.cuda_graph={cuda_graph!r} must be true (replay the GPU step from a CUDA graph) "
                              "or false")

    def max_norm(self) -> float | None:
        return self._max_norm

    @property
    def sparse_adam(self) -> bool:
        return not self.mean_context  # Skip-gram's batch reads the rows of its centers only; CBOW's, whole windows

    # -- samples ------------------------------------------------------------------------------
    def draws_on_device(self) -> bool:
        """Whether the step draws its windows on the model's device (`model.sampling`): auto does on
        CUDA in a one-process run, device does anywhere (on a CPU, to check the GPU's samples)."""
        sampling = self.hparams.sampling
        if sampling != "auto":
            return sampling == "device"
        one_process = self._trainer is None or self.trainer.world_size == 1
        # trainer.deterministic=true keeps the loader's windows: the block's compaction scatters
        # into one spare slot, which torch's deterministic mode may refuse on CUDA
        return self.device.type == "cuda" and one_process and not torch.are_deterministic_algorithms_enabled()

    def sampler_settings(self) -> SamplerSettings:
        settings = super().sampler_settings()
        if not self.draws_on_device():
            return settings
        # Chunks of one position: a step's centers come from the whole block in a random order, as
        # the loader's (data.shuffle_unit=position); a step takes data.batch_size of them. Under
        # auto the loader's windows serve the data settings that the block cannot give.
        return replace(settings, draws_samples=True, windows_too=self.hparams.sampling == "auto", batch_steps=True,
                       chunk_tokens=1, step_tokens=settings.batch_size)

    def device_windows(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """A `ChunkBatches` batch's windows, drawn on the model's device (one with ids brings a new
        block, subsampled and cut into chunks there): centers (N,), contexts (N, 2W), mask (N, 2W);
        by `device_sampling.step_windows`, or its Triton kernel where `triton_windows` says."""
        device = self.in_embed.weight.device
        if "ids" in batch:
            keep = self.keep_probabilities()
            keys = StreamKeys.for_block(batch["seed"], batch["epoch"], batch["block"])
            block = prepare_block(batch["ids"].to(device), batch["offsets"].to(device),
                                  None if keep is None else torch.as_tensor(keep, device=device),
                                  batch["chunk_tokens"], keys, batch["shuffle"])
            self._block = (block, keys, keys.tensor(device), batch["chunk_tokens"])
            self._step_graph = None  # its windows' inputs have moved: captured again
        block, keys, _, chunk_tokens = self._block
        first, chunks = self._step_chunks(batch)
        if not self.triton_windows():
            return step_windows(block, first, chunks, chunk_tokens, self.hparams.window, self.hparams.shrink_window,
                                keys.window)
        self._set_first(first)
        return self._triton_windows(self._block, chunks)

    def _step_chunks(self, batch: dict[str, Any]) -> tuple[int, int]:
        """The batch's first chunk and chunk count, checked against the block."""
        first, chunks = batch["first_chunk"], batch["chunks"]
        if first < 0 or first + chunks > self._block[0].n_chunks:
            raise ValueError(f"chunks {first}..{first + chunks - 1} are outside the block's {self._block[0].n_chunks}")
        return first, chunks

    def _set_first(self, first: int) -> None:
        """Puts the step's first chunk in `_first`, where the Triton windows read it on the device."""
        if self._first is None:
            self._first = torch.zeros(1, dtype=torch.int64, device=self.in_embed.weight.device)
        self._first.fill_(first)  # a launch with the value, no copy from the host's memory

    def _triton_windows(self, block_and_keys: tuple[DeviceBlock, StreamKeys, torch.Tensor, int],
                        chunks: int) -> dict[str, torch.Tensor]:
        """`device_windows` by the Triton kernel, from the chunk in `_first`: centers (N,), contexts (N, 2W), mask (N, 2W)."""
        from w2v.kernels.sampling_triton import step_windows as drawn_in_triton  # imports Triton where it runs

        block, _, key_tensor, chunk_tokens = block_and_keys
        centers, contexts, mask = drawn_in_triton(block.seq, block.docs, block.bounds, block.order, key_tensor,
                                                  self._first, chunks, chunk_tokens, self.hparams.window,
                                                  self.hparams.shrink_window)
        return {"centers": centers, "contexts": contexts, "mask": mask}

    def triton_windows(self) -> bool:
        """Whether `device_windows` draws in one Triton kernel (`kernels.sampling_triton`) instead of
        PyTorch's few dozen operations: where the step's kernels are Triton's (`model.kernels`), whatever
        the embedding's width or type."""
        kernels = self.hparams.kernels
        if kernels != "auto":
            return kernels == "triton" and self.fused_step()  # fused_step: model.kernels=triton's errors
        return self.in_embed.weight.device.type == "cuda" and triton_available()

    # -- the step -----------------------------------------------------------------------------
    def padded_inputs(self) -> bool:
        """Whether the step keeps the batch's fixed shapes (`softmax_inputs(padded=True)`), with
        dense embedding gradients: on a GPU, where boolean indexing would wait on the device each
        time, unless the optimizer steps the batch's rows only (LazyAdam). On a CPU, where nothing
        waits, the flat inputs compute no padding and keep sparse gradients, which DeferredAdam
        steps by rows."""
        return self.in_embed.weight.device.type != "cpu" and not self._rows_only

    def fused_step(self) -> bool:
        """Whether the step's softmax and gradients come from the fused Triton kernels
        (`kernels.softmax_triton`, `model.kernels`): auto takes them on CUDA for float32 embeddings up
        to SOFTMAX_TRITON_MAX_DIM wide, where Triton is installed; triton anywhere (a CPU under TRITON_INTERPRET=1)."""
        kernels, weight = self.hparams.kernels, self.out.weight
        if kernels == "triton":
            self.require_triton()
            if weight.device.type != "cuda" and not triton_interpreted():
                raise ConfigError(f"model.kernels=triton runs on CUDA, not {weight.device.type}; use "
                                  "model.kernels=auto (or TRITON_INTERPRET=1 to run the kernels slowly, as the tests do)")
            return True
        fits = weight.dtype == torch.float32 and weight.shape[1] <= SOFTMAX_TRITON_MAX_DIM
        return kernels == "auto" and weight.device.type == "cuda" and fits and triton_available()

    def on_fit_start(self) -> None:
        self.fused_step()  # model.kernels=triton's errors (no Triton, no CUDA) before the first batch
        if self.hparams.cuda_graph:
            self.check_cuda_graph()

    def check_cuda_graph(self) -> None:
        """model.cuda_graph=true's conditions, as one-line errors that name the fix: a graph replays
        the GPU step's fixed shapes, windows drawn on the device and Triton kernels, and nothing in it
        may wait for the device."""
        device = self.device.type
        off = "or model.cuda_graph=false"
        if device != "cuda":
            raise ConfigError(f"model.cuda_graph=true replays a step on CUDA, not {device}; use model.cuda_graph=false")
        if not self.draws_on_device():
            raise ConfigError("model.cuda_graph=true replays windows drawn on the device; use model.sampling=auto in a "
                              f"one-process run without trainer.deterministic=true, {off}")
        if not self.padded_inputs():
            raise ConfigError(f"model.cuda_graph=true replays the fixed-shape step, which LazyAdam does not take; use "
                              f"model/optimizer=adam (or sgd), {off}")
        if not (self.fused_step() and self.triton_windows()):
            raise ConfigError("model.cuda_graph=true replays the Triton kernels; use model.kernels=auto with float32 "
                              f"embeddings up to {SOFTMAX_TRITON_MAX_DIM} wide, {off}")
        if self._max_norm is not None:
            raise ConfigError(f"model.cuda_graph=true cannot replay model.max_norm's renormalisation, which waits for "
                              f"the device; use model.max_norm=null, {off}")

    @abstractmethod
    def softmax_inputs(self, batch: dict[str, torch.Tensor], padded: bool = False) -> SoftmaxInputs:
        """The batch's softmax rows (from `in_embed`, tracked by autograd when it is on) and pairs;
        `padded`: in the batch's fixed shapes, padding marked (`SoftmaxInputs.real`)."""

    def example_losses(self, batch):
        inputs = self.softmax_inputs(windows_with_context(batch))
        return SoftmaxCrossEntropy.apply(inputs.hidden, self.out.weight, self.out.bias, inputs.rows, inputs.targets)  # (P,)

    @torch.no_grad()
    def backward_by_hand(self, batch: dict[str, torch.Tensor],
                         padded: bool | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Sets every parameter's .grad to the gradient of the batch's mean loss. Returns each pair's
        loss (P,) and its weight in the mean (P,): 1/(pairs that count), 0 for padding.
        `padded`: as `padded_inputs` says by default."""
        padded = self.padded_inputs() if padded is None else padded
        inputs = self.softmax_inputs(batch if padded else windows_with_context(batch), padded)
        weight, bias, embedding = self.out.weight, self.out.bias, self.in_embed.weight
        dtype = torch.promote_types(inputs.hidden.dtype, torch.float32)
        if inputs.real is None:
            grad_losses = torch.full(inputs.rows.shape, 1.0 / max(len(inputs.rows), 1), dtype=dtype, device=weight.device)  # (P,)
        else:
            real = inputs.real.to(dtype)  # (P,)
            grad_losses = real / real.sum().clamp_min(1)
        if self.fused_step():
            from w2v.kernels.softmax_triton import softmax_cross_entropy_fused  # imports Triton: only where it runs

            losses, grad_hidden, grad_weight, grad_bias = softmax_cross_entropy_fused(
                inputs.hidden, weight, bias, inputs.rows, inputs.targets, grad_losses,
                row_count=inputs.row_count)  # (P,), (U, D), (V, D), (V,)
        else:
            chunk = softmax_chunk(weight.device, len(weight))
            self._scratch = logits_scratch(chunk, weight, self._scratch)  # kept from step to step
            losses, grad_hidden, grad_weight, grad_bias = softmax_cross_entropy_backward(
                inputs.hidden, weight, bias, inputs.rows, inputs.targets, grad_losses, chunk,
                self._scratch, inputs.pairs_per_row, fixed=padded)  # (P,), (U, D), (V, D), (V,)
        # under mixed precision the products come out in half precision; a gradient has its parameter's type
        weight.grad, bias.grad = grad_weight.to(weight.dtype), grad_bias.to(bias.dtype)
        # index_select, not grad_hidden[owners]: on a CPU that indexing takes several times as long (measured)
        word_grads = grad_hidden.index_select(0, inputs.owners).mul_(inputs.weights.unsqueeze(1)).to(embedding.dtype)  # (S, D)
        if self.sparse and not padded:  # the batch's rows, as a sparse nn.Embedding's: SGD and LazyAdam step those only, DeferredAdam defers the rest
            embedding.grad = torch.sparse_coo_tensor(inputs.words.unsqueeze(0), word_grads, embedding.shape,
                                                    check_invariants=False, is_coalesced=inputs.distinct)  # ids in range
        else:
            embedding.grad = torch.zeros_like(embedding).index_add_(0, inputs.words, word_grads)
        return losses, grad_losses

    def graphed_step(self, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """`backward_by_hand` of a range of a block's chunks, its device work replayed from a CUDA
        graph (`cuda_graph.StepGraph`, `model.cuda_graph`): the windows, the softmax and the
        gradients in one launch. A block's first step runs eagerly (the block's tensors are new,
        and Triton compiles its kernels for the step's sizes); the next step of as many chunks
        captures the graph, and the later ones replay it; a step of another size (a block's last,
        shorter one) runs eagerly."""
        if "ids" in batch or self._graph_chunks is None:
            self._graph_chunks = batch["chunks"]  # a new block: its later steps of this size are replayed
        elif batch["chunks"] == self._graph_chunks:
            return self._replayed_step(batch)
        return self.backward_by_hand(self.device_windows(batch), padded=True)

    def _replayed_step(self, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """`graphed_step`'s replay, the graph captured first if the block has none yet."""
        first, chunks = self._step_chunks(batch)
        self._set_first(first)
        parameters = (self.in_embed.weight, self.out.weight, self.out.bias)
        if self._step_graph is None:
            for parameter in parameters:
                parameter.grad = None  # the eager step's gradients: not kept beside the graph's

            def step(block=self._block):  # the block bound now: a replay reads these tensors
                losses, weights = self.backward_by_hand(self._triton_windows(block, chunks), padded=True)
                return losses, weights, tuple(p.grad for p in parameters)

            self._step_graph = StepGraph(step)
        losses, weights, grads = self._step_graph()
        for parameter, grad in zip(parameters, grads):
            parameter.grad = grad  # the graph's own: an eager step in between may have set others
        return losses, weights

    def on_train_end(self) -> None:
        self._step_graph = None  # its memory pool goes with it

    def training_step(self, batch, batch_idx):
        padded = self.padded_inputs()
        if padded and self._deferred is not None:  # Adam on dense gradients: no row is left behind
            self._deferred.settle(self.in_embed.weight)
        if self.hparams.cuda_graph:
            if "first_chunk" not in batch:
                raise ConfigError("model.cuda_graph=true replays windows drawn on the device, but the data loader "
                                  "draws these (data.batching=examples or a data.shuffle_unit keep them there); leave "
                                  "those at their defaults, or use model.cuda_graph=false")
            losses, weights = self.graphed_step(batch)
        else:
            if "first_chunk" in batch:  # a range of a block's chunks: the windows are ours to draw
                batch = self.device_windows(batch)
            losses, weights = self.backward_by_hand(batch, padded)
        if self.trainer.world_size > 1:
            # Every process steps with the gradients averaged over all of them, as DDP would; a
            # process whose batch is empty still takes part, with zero gradients.
            average_gradients(self.parameters())
        elif len(losses) == 0:  # every center of the batch lacked a context (padded inputs step all the same)
            return None
        self.step_optimizer()
        self.log_loss((losses.detach() * weights).sum(), (weights > 0).sum())  # no wait on the device but on logging steps
        return None

    def output_matrix(self) -> torch.Tensor:
        return self.out.weight
