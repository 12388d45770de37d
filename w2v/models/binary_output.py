"""What negative sampling and hierarchical softmax share: each example makes binary decisions
against a few rows of an output matrix, and plain SGD trains them by a hand-written step.

An example's input is a context word's input vector (Skip-gram) or the mean of its window's (CBOW);
its decisions predict the window's center: against the center's and K noise words' output rows
(`negative_sampling.NegativeSampling`), or along the center's path in a Huffman tree
(`hierarchical.HierarchicalSoftmax`). The output layer says which rows and labels
(`decisions`), the architecture whether the window's context words are averaged (`mean_context`).

With plain SGD (`model/optimizer=sgd`, word2vec's) training takes a hand-written path, with no
autograd graph and no optimizer state, by one of two update rules (`model.update_rule`):
- sequential: word2vec's own, each decision's step taken before the next is scored, in
  `model.update_shards` runs of the batch's windows trained at once (`kernels.sequential`); fused
  Numba kernels, on a CPU. Reproducible: a row several runs touch is trained on copies. SGNS's
  GPU path has it too: each of the Triton kernel's programs trains its chunk in this order
  (`negative_sampling.NegativeSampling`).
- hogwild: the same, lock-free as word2vec's and gensim's threads (Hogwild!): the runs train every
  row in place, without the copies' cost, in an order that depends on the threads' timing.
- damped: closed-form gradients summed over the batch and applied at once, bounded for rows hit
  many times (`damped_row_update`); as fused Numba kernels on a CPU (`kernels.cpu`), or as PyTorch
  operations (`losses.decision_gradients`) anywhere, the GPU included.
`update_rule=auto` takes the sequential rule where the CPU kernels or SGNS's GPU path run, the damped
one elsewhere. Any
other optimizer trains through autograd on the same loss (`losses.decision_loss`).
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from w2v.data.sampling import SamplerSettings
from w2v.distributed import gather_row_updates
from w2v.errors import ConfigError, check_number
from w2v.kernels import chunk_windows
from w2v.kernels import cpu as cpu_kernels
from w2v.kernels import sequential as sequential_kernels
from w2v.kernels.device_sampling import StreamKeys, check_block_size, chunk_order
from w2v.models.base import Word2VecModule, uniform_embedding
from w2v.models.losses import decision_gradients, decision_loss
from w2v.optim import plain_sgd

UPDATE_RULES = ("auto", "sequential", "hogwild", "damped")
# The rules of the sequential CPU kernel (`kernels.sequential`): with the shards' rows copied, or lock-free.
SEQUENTIAL_RULES = ("sequential", "hogwild")
# The sequential rule under data.batch_size=auto: positions a step (a data-parallel process's
# step, whose changes the others need before its next, one piece), and windows its shards train
# between merges (scripts/README.md). CBOW's positions cost a few times less than Skip-gram's, so
# it takes more of them a step, and the training loop's fixed cost between two steps stays small.
SEQUENTIAL_BATCH, SEQUENTIAL_CBOW_BATCH, SEQUENTIAL_DISTRIBUTED_BATCH = 65536, 262144, 16384
SEQUENTIAL_SYNC = 12288
# The sequential rule on one process draws its own windows from the corpus in chunks of this many
# positions (`kernels.chunk_windows`), which each epoch trains in a random order.
SEQUENTIAL_CHUNK = 1024


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


@dataclass
class RowUpdate:
    """A batch's update of embedding rows: entry i adds scales[i] · grads[sources[i]] to the gradient
    of row rows[i] and curvature[i] to its curvature. Entries that share a gradient (CBOW's context
    words take their window's; its targets a multiple of the window's mean) keep one copy of it."""

    rows: torch.Tensor  # (R,)
    grads: torch.Tensor  # (S, D)
    curvature: torch.Tensor  # (R,)
    sources: torch.Tensor | None = None  # (R,) each entry's row of grads; None: entry i's own, S = R
    scales: torch.Tensor | None = None  # (R,); None: 1

    def per_row(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(rows (R,), grads (R, D), curvature (R,)): each entry's own gradient."""
        grads = self.grads if self.sources is None else self.grads[self.sources]
        if self.scales is not None:
            grads = self.scales.unsqueeze(-1) * grads
        return self.rows, grads, self.curvature

    def gathered(self) -> RowUpdate:
        """Every data-parallel process's update, which each process then applies."""
        return RowUpdate(*gather_row_updates(*self.per_row()))

    def apply(self, weight: torch.Tensor, lr: float, threads: int | None) -> None:
        """The damped step on `weight`: by the fused CPU kernel on `threads` threads, or with None by
        PyTorch's operations (`damped_row_update`)."""
        if threads is None:
            damped_row_update(weight, *self.per_row(), lr)
            return
        # The kernel takes empty sources and scales for "entry i's own row, scale 1".
        sources = np.empty(0, dtype=np.int64) if self.sources is None else self.sources.numpy()
        scales = np.empty(0, dtype=np.float32) if self.scales is None else self.scales.numpy()
        cpu_kernels.damped_row_update(weight.numpy(), self.rows.numpy(), sources, scales, self.grads.numpy(),
                                      self.curvature.numpy(), lr, threads)


@dataclass
class RowChanges:
    """Changes of embedding rows that the sequential rule returns (those several shards made, or all
    of a data-parallel process's): entry i adds deltas[i] to row rows[i]; entries with row -1 are unused."""

    rows: torch.Tensor  # (R,)
    deltas: torch.Tensor  # (R, D)

    def gathered(self) -> RowChanges:
        """Every data-parallel process's changes, summed per row and in rank order."""
        used = self.rows >= 0
        rows, deltas, _ = gather_row_updates(self.rows[used], self.deltas[used], self.deltas.new_zeros(int(used.sum())))
        return RowChanges(rows, deltas.contiguous())

    def apply(self, weight: torch.Tensor, lr: float, threads: int) -> None:
        """Adds the changes to `weight` on `threads` threads (the learning rate is in them already)."""
        if len(self.rows) == 0:  # a single process's sequential step has added them itself
            return
        sequential_kernels.add_row_deltas(weight.numpy(), self.rows.numpy(), self.deltas.numpy(), threads)


@dataclass(frozen=True)
class WindowTables:
    """What a model that draws its own windows (`chunk_windows.draw_rows`) needs to give each its
    decisions: negative sampling's K noise words from the alias table (threshold (V,) float32, alias
    (V,) int32), or (K = 0) the center's path in a Huffman tree, paths (V, L) int64 with its labels
    path_labels (V, L) float32."""

    negatives: int = 0
    threshold: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.float32))
    alias: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int32))
    paths: np.ndarray = field(default_factory=lambda: np.empty((0, 0), dtype=np.int64))
    path_labels: np.ndarray = field(default_factory=lambda: np.empty((0, 0), dtype=np.float32))


@dataclass
class ChunkBlock:
    """A corpus block as the sequential rule's chunk step draws from it (`chunk_windows.subsample_block`):
    the kept ids seq, their documents docs, each chunk's first kept token bounds, the chunks' order,
    and the window and noise streams' keys."""

    seq: np.ndarray
    docs: np.ndarray
    bounds: np.ndarray
    order: np.ndarray
    window_key: int
    noise_key: int


def context_mean(vectors: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """CBOW's input: the mean of each window's valid context vectors. vectors (B, C, D), mask (B, C) -> (B, 1, D)."""
    weights = mask.to(vectors.dtype)  # (B, C)
    weights = weights / weights.sum(1, keepdim=True).clamp_min(1.0)
    return torch.bmm(weights.unsqueeze(1), vectors)  # (B, 1, D)


class BinaryOutputModule(Word2VecModule):
    """An output layer of binary decisions against rows of `out_embed`; subclasses say which (`decisions`).

    `model.kernels` (base.KERNELS): auto runs the fused Numba kernels on a CPU (and SGNS's Triton
    kernel on CUDA); triton, SGNS's GPU path on any device."""

    auto_kernels = "Numba on a CPU, Triton on CUDA"

    def __init__(self, vocab, *, kernels: str, compile: bool, update_rule: str, update_shards: int, **kwargs):
        super().__init__(vocab, **kwargs)
        self.check_kernels(kernels)
        self.check_update(update_rule, update_shards, kernels)
        self._compiled_gradients = None  # made by `_gradients` on the PyTorch step's first use
        self._chunk_block: ChunkBlock | None = None  # the sequential rule's current corpus block
        self.out_embed = uniform_embedding(len(vocab), self.hparams.embedding_dim, self.sparse)
        # Plain SGD takes the hand-written path, which updates the weights itself; any other
        # optimizer (or SGD with momentum, weight decay...) trains through autograd.
        self.automatic_optimization = not plain_sgd(self.hparams.optimizer)

    def sampler_settings(self) -> SamplerSettings:
        # Plain SGD's step takes a batch's windows one after the other (or sums their steps, damped):
        # documents read in order train as well, and faster (docs/design.md). Adam's batch gradient
        # trains better on positions drawn over the whole block. The sequential rule trains as well
        # on larger batches, and takes fewer steps; the damped rule loses quality on them.
        settings = super().sampler_settings()
        if self.automatic_optimization:
            return settings
        if self.rule_on(self.device) not in SEQUENTIAL_RULES or self.on_device():  # the GPU path's: the subclass's
            return replace(settings, shuffle_unit="document")
        if self._trainer is not None and self.trainer.world_size > 1:
            return replace(settings, shuffle_unit="document", batch_size=SEQUENTIAL_DISTRIBUTED_BATCH)
        # One process draws its windows itself, in the kernel's threads, from chunks of the corpus
        # (`_chunk_step`); the loader's windows still serve the data settings that chunks cannot.
        batch = self.sequential_batch()
        return replace(settings, shuffle_unit="document", batch_size=batch, draws_samples=True, windows_too=True,
                       batch_steps=True, chunk_tokens=SEQUENTIAL_CHUNK, step_tokens=batch)

    def sequential_batch(self) -> int:
        """Positions a step of the sequential rule on one process under data.batch_size=auto."""
        return SEQUENTIAL_CBOW_BATCH if self.mean_context else SEQUENTIAL_BATCH

    @classmethod
    def check_hparams(cls, **settings) -> None:
        super().check_hparams(**settings)
        cls.check_kernels(settings.get("kernels"))
        cls.check_update(settings.get("update_rule"), settings.get("update_shards"), settings.get("kernels"))

    @staticmethod
    def check_update(update_rule, update_shards, kernels) -> None:
        if update_rule not in UPDATE_RULES:
            raise ConfigError(f"model.update_rule={update_rule!r} is unknown; use auto (sequential on the fused "
                              "kernels, damped elsewhere), sequential, hogwild or damped")
        if update_rule == "sequential" and kernels == "torch":
            raise ConfigError("model.update_rule=sequential runs on the fused kernels (Numba's on a CPU, SGNS's "
                              "Triton kernel), not model.kernels=torch; use model.kernels=auto, or "
                              "model.update_rule=damped")
        if update_rule == "hogwild" and kernels != "auto":
            raise ConfigError(f"model.update_rule=hogwild runs on the fused CPU kernels, not model.kernels={kernels}; "
                              "use model.kernels=auto, or model.update_rule=sequential or damped")
        check_number("model.update_shards", update_shards, integer=True, least=1,
                     unit=" (runs of a batch trained at once by the sequential rule)")

    def on_device(self) -> bool:
        """Whether training takes a GPU path that draws its samples on the device and trains in one
        kernel (SGNS's, `NegativeSampling.on_device`)."""
        return False

    def rule_on(self, device: torch.device) -> str:
        """The hand-written step's rule on `device`: sequential, hogwild or damped (`model.update_rule`);
        on SGNS's GPU path, sequential or damped, the Triton kernel's rules of those names."""
        cpu_kernels_run = self.hparams.kernels == "auto" and device.type == "cpu"
        rule = self.hparams.update_rule
        if rule == "hogwild" and not cpu_kernels_run:
            raise ConfigError(f"model.update_rule=hogwild runs on the CPU kernels, not on {device.type}; use "
                              "model.update_rule=auto, sequential or damped, or trainer=cpu")
        if rule == "sequential" and not (cpu_kernels_run or self.on_device()):
            raise ConfigError(f"model.update_rule=sequential runs on the CPU kernels and SGNS's Triton kernel, not "
                              f"on PyTorch's step on {device.type}; use model.update_rule=auto or damped, or "
                              "trainer=cpu")
        if rule == "hogwild" and self._trainer is not None:
            if self.trainer.world_size > 1:
                raise ConfigError("model.update_rule=hogwild trains one process's rows in place, while data-parallel "
                                  "processes exchange their changes; use model.update_rule=sequential with DDP")
            if torch.are_deterministic_algorithms_enabled():
                raise ConfigError("model.update_rule=hogwild updates rows in the order the threads reach them, which "
                                  "trainer.deterministic=true rules out; use model.update_rule=sequential")
        if rule == "auto":
            return "sequential" if cpu_kernels_run or self.on_device() else "damped"
        return rule

    def output_rows(self, targets: torch.Tensor) -> torch.Tensor:
        """`targets` with the missing ones (-1) on the last row, which no Huffman tree uses (its inner
        nodes are rows 0..V'-2 of V rows): they look up a real row, and their zero gradients, even
        for an optimizer with momentum, move no row that a decision uses."""
        return torch.where(targets >= 0, targets, len(self.vocab) - 1)

    @abstractmethod
    def decisions(self, batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Each window's output rows (B, T), their labels (B, T) float32, and which exist (B, T), or
        None where all do; missing rows are -1, at the end of their window's."""

    def _gradients(self, *args):
        """`losses.decision_gradients`, for the PyTorch step (GPU, or kernels=torch). With model.compile,
        torch.compile fuses its small batched products and element-wise steps after a one-time
        compilation (same results); it is set up on first use, since merely loading the compiler
        takes seconds that a run on the fused CPU kernels would spend for nothing."""
        if self._compiled_gradients is None:
            self._compiled_gradients = (torch.compile(decision_gradients, dynamic=True) if self.hparams.compile
                                        else decision_gradients)
        return self._compiled_gradients(*args)

    # -- the loss, for autograd ---------------------------------------------------------------
    def example_losses(self, batch):
        contexts, mask = batch["contexts"], batch["mask"]  # (B, C), (B, C)
        targets, labels, valid = self.decisions(batch)  # (B, T), (B, T), (B, T) or None
        inputs = self.in_embed(contexts)  # (B, C, D)
        if self.mean_context:
            inputs, mask = context_mean(inputs, mask), mask.any(1, keepdim=True)  # (B, 1, D), (B, 1)
        return decision_loss(inputs, mask, self.out_embed(self.output_rows(targets)), labels, valid)  # (P,)

    @abstractmethod
    def window_tables(self) -> WindowTables:
        """The tables from which a model that draws its own windows gives each its decisions."""

    # -- the hand-written SGD step ---------------------------------------------------------------
    def training_step(self, batch, batch_idx):
        if self.automatic_optimization:
            return super().training_step(batch, batch_idx)
        if "chunks" in batch:
            return self._chunk_step(batch)
        contexts, mask = batch["contexts"], batch["mask"]  # (B, C), (B, C)
        targets, labels, valid = self.decisions(batch)  # (B, T), (B, T), (B, T) or None
        distributed = self.trainer.world_size > 1
        if len(targets) == 0 and not distributed:  # a data-parallel process takes part in the collectives anyway
            return None
        w_in, w_out = self.in_embed.weight.data, self.out_embed.weight.data
        lr = self.optimizers().param_groups[0]["lr"]
        threads = None  # the PyTorch step's row updates
        if self.hparams.kernels == "auto" and w_in.device.type == "cpu":
            threads = cpu_kernels.use_threads(torch.get_num_threads())  # as many threads as PyTorch's operations
        rule = self.rule_on(w_in.device)
        if rule in SEQUENTIAL_RULES:
            ctx_update, tgt_update, loss_sum, examples = self._sequential_changes(
                contexts, mask, targets, labels, distributed, threads, lock_free=rule == "hogwild")
        elif threads is not None:
            ctx_update, tgt_update, loss_sum, examples = self._fused_updates(contexts, mask, targets, labels)
        else:
            ctx_update, tgt_update, loss_sum, examples = self._torch_updates(contexts, mask, targets, labels, valid)
        if distributed:  # every process applies every process's update
            ctx_update, tgt_update = ctx_update.gathered(), tgt_update.gathered()
        ctx_update.apply(w_in, lr, threads)
        tgt_update.apply(w_out, lr, threads)
        self.step_optimizer()  # the optimizer's step is a no-op (no parameter has a gradient); the schedule's is not
        self.log_loss(loss_sum / max(examples, 1), examples)
        return None

    def _chunk_step(self, batch) -> None:
        """The sequential rule's step on a range of a corpus block's chunks (`data.datamodule.ChunkBatches`):
        the kernel's threads draw the chunks' windows piece by piece (`chunk_windows`) and train them
        in order (`sequential.sequential_chunks`)."""
        if "ids" in batch:  # a new block: its subsampling and the chunks' order, drawn once
            self._chunk_block = self._subsample_block(batch)
        block, tables = self._chunk_block, self.window_tables()
        lr, next_lr = self.step_learning_rates()
        loss_sum, windows, pairs = sequential_kernels.sequential_chunks(
            self.in_embed.weight.data.numpy(), self.out_embed.weight.data.numpy(), block.seq, block.docs, block.bounds,
            block.order, batch["first_chunk"], batch["chunks"], block.window_key, block.noise_key, self.hparams.window,
            self.hparams.shrink_window, tables.negatives, tables.threshold, tables.alias, tables.paths,
            tables.path_labels, lr, next_lr, self.hparams.update_shards, SEQUENTIAL_SYNC, self.mean_context,
            self.rule_on(self.device) == "hogwild", cpu_kernels.use_threads(torch.get_num_threads()))
        examples = windows if self.mean_context else pairs  # windows with a context word, or (center, context) pairs
        self.step_optimizer()
        self.log_loss(torch.tensor(loss_sum / max(examples, 1)), examples)

    def _subsample_block(self, batch) -> ChunkBlock:
        """A new block of the chunk step, subsampled and its chunks ordered, from its streams' keys."""
        check_block_size(len(batch["ids"]), self.window_tables().negatives)
        keys = StreamKeys.for_block(batch["seed"], batch["epoch"], batch["block"])
        keep = self.keep_probabilities()
        if keep is None:
            keep = np.empty(0, dtype=np.float32)  # keeps every token
        seq, docs, bounds = chunk_windows.subsample_block(batch["ids"].numpy(), batch["offsets"].numpy(), keep,
                                                          keys.subsample, batch["chunk_tokens"])
        order = chunk_order(len(bounds) - 1, keys.order, batch["shuffle"]).numpy()
        return ChunkBlock(seq, docs, bounds, order, keys.window, keys.noise)

    def _torch_updates(self, contexts, mask, targets, labels, valid):
        """The `RowUpdate`s of the input and output embeddings, the summed loss of the batch's
        examples and their number. In CBOW every context row of a window takes
        the gradient of the window's mean, as in word2vec."""
        w_in, w_out = self.in_embed.weight.data, self.out_embed.weight.data
        dim = w_in.shape[1]
        tgt_rows = self.output_rows(targets).reshape(-1)  # (B*T,) missing targets get zero gradients
        # index_select on flat ids is several times faster on CPU than advanced indexing with a 2-D index.
        ctx_vecs = w_in.index_select(0, contexts.reshape(-1)).view(*contexts.shape, dim)  # (B, C, D)
        tgt_vecs = w_out.index_select(0, tgt_rows).view(*targets.shape, dim)  # (B, T, D)
        if self.mean_context:
            windows = mask.any(1, keepdim=True)  # (B, 1)
            grad_in, grad_tgt, curv_in, curv_tgt, losses = self._gradients(context_mean(ctx_vecs, mask), windows,
                                                                           tgt_vecs, labels, valid)  # (B, 1, D), ...
            grad_ctx = grad_in.expand(-1, contexts.shape[1], -1)[mask]  # (P, D) the window's gradient, to each row
            curv_ctx = curv_in.expand(-1, contexts.shape[1])[mask]  # (P,)
        else:
            grad_in, grad_tgt, curv_in, curv_tgt, losses = self._gradients(ctx_vecs, mask, tgt_vecs, labels, valid)
            grad_ctx, curv_ctx = grad_in[mask], curv_in[mask]  # (P, D), (P,)
        return (RowUpdate(contexts[mask], grad_ctx, curv_ctx),  # (P,), (P, D), (P,)
                RowUpdate(tgt_rows, grad_tgt.reshape(-1, dim), curv_tgt.reshape(-1)),  # (B*T,), (B*T, D), (B*T,)
                losses.sum(), len(losses))

    def _sequential_changes(self, contexts, mask, targets, labels, distributed, threads, lock_free):
        """Word2vec's sequential SGD over the batch, at the rate falling across it as the schedule
        falls to the next step's: trains the rows in place and returns the `RowChanges` that other
        data-parallel processes must add too (every row's, where `distributed`; none otherwise),
        input and output embeddings, the summed loss of the batch's examples and their number; the
        kernel runs on `threads` threads, `lock_free` (Hogwild!) or with the shards' shared rows copied."""
        w_in, w_out = self.in_embed.weight.data, self.out_embed.weight.data
        lr, next_lr = self.step_learning_rates()
        # A data-parallel step is one piece: its changes go to the other processes before the next.
        sync = max(len(contexts), 1) if distributed else SEQUENTIAL_SYNC
        arrays = sequential_kernels.sequential_sgd(
            w_in.numpy(), w_out.numpy(), torch.where(mask, contexts, -1).numpy(), targets.numpy(), labels.numpy(), lr,
            next_lr, self.hparams.update_shards, sync, self.mean_context, distributed, lock_free, threads)
        in_rows, in_deltas, out_rows, out_deltas, losses = (torch.from_numpy(a) for a in arrays)
        examples = mask.any(1).sum() if self.mean_context else mask.sum()  # windows, or (center, context) pairs
        return RowChanges(in_rows, in_deltas), RowChanges(out_rows, out_deltas), losses.sum(), int(examples)

    def _fused_updates(self, contexts, mask, targets, labels):
        """As `_torch_updates`, by the fused CPU kernel of the architecture, for the valid context
        words only (masked slots get row -1)."""
        w_in, w_out = self.in_embed.weight.data, self.out_embed.weight.data
        arrays = (w_in.numpy(), w_out.numpy(), torch.where(mask, contexts, -1).numpy(), targets.numpy(), labels.numpy())
        tgt_rows = self.output_rows(targets).reshape(-1)  # (B*T,)
        if self.mean_context:
            ctx_rows, windows, grad_hidden, curv_ctx, hidden, coeffs, curv_tgt, losses = (
                torch.from_numpy(a) for a in cpu_kernels.cbow_decision_gradients(*arrays))
            batch, targets_each = coeffs.shape
            ctx_update = RowUpdate(ctx_rows, grad_hidden, curv_ctx, sources=windows)  # (P,), (B, D), (P,), (P,)
            tgt_update = RowUpdate(tgt_rows, hidden, curv_tgt.view(-1),  # (B*T,), (B, D), (B*T,)
                                   sources=torch.arange(batch).repeat_interleave(targets_each), scales=coeffs.view(-1))
            return ctx_update, tgt_update, losses.sum(), int(mask.any(1).sum())  # examples: windows
        ctx_rows, grad_ctx, curv_ctx, grad_tgt, curv_tgt, losses = (
            torch.from_numpy(a) for a in cpu_kernels.skipgram_decision_gradients(*arrays))
        return (RowUpdate(ctx_rows, grad_ctx, curv_ctx),  # (P,), (P, D), (P,)
                RowUpdate(tgt_rows, grad_tgt.view(-1, w_in.shape[1]), curv_tgt.view(-1)),  # (B*T,), (B*T, D), (B*T,)
                losses.sum(), len(ctx_rows))  # examples: pairs

    def output_matrix(self) -> torch.Tensor:
        return self.out_embed.weight
