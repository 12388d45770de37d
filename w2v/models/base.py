"""The base LightningModule of all architectures: embeddings, optimizer and schedule, export, neighbours."""

from __future__ import annotations

import inspect
import logging
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Mapping

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hydra.errors import InstantiationException
from hydra.utils import get_class, instantiate

from w2v.data.sampling import SamplerSettings, keep_probabilities
from w2v.data.vocab import Vocabulary
from w2v.errors import ConfigError, check_number
from w2v.kernels import triton_available
from w2v.optim import DeferredAdam, LinearDecay, takes_sparse_rows
from w2v.trainer_state import is_logging_step
from w2v.vectors import WordVectors

log = logging.getLogger(__name__)

EXPORTS = ("input", "output", "average")
# `model.kernels`: auto (the output layer's fastest kernels on the device: `Word2VecModule.auto_kernels`),
# triton (its Triton kernels on any device: on a CPU only under TRITON_INTERPRET=1, for tests), torch (PyTorch everywhere).
KERNELS = ("auto", "triton", "torch")


def target_class(config: Mapping | None, key: str) -> type | None:
    """The class an optimizer's or scheduler's config names with `_target_` (None: no config), or a one-line error."""
    if config is None:
        return None
    if not isinstance(config, Mapping) or "_target_" not in config:
        raise ConfigError(f"{key} must name its class with _target_, e.g. {key}._target_=torch.optim.SGD; "
                          f"or pick one with {key.replace('.', '/')}=NAME")
    try:
        return get_class(config["_target_"])
    except (ImportError, ValueError, InstantiationException):
        raise ConfigError(f"{key}._target_={config['_target_']} is not a class that can be imported; "
                          f"pick one with {key.replace('.', '/')}=NAME (conf/{key.replace('.', '/')}/)") from None


@torch.no_grad()
def renorm_rows_(weight: torch.Tensor, ids: torch.Tensor, max_norm: float) -> None:
    """Rows `ids` (S,) of `weight` (V, D) whose L2 norm n exceeds `max_norm` scaled in place by
    max_norm / (n + 1e-7), as `nn.Embedding(max_norm=...)` does before a lookup."""
    rows = torch.unique(ids)  # (R,)
    vectors = weight.index_select(0, rows)  # (R, D)
    norms = torch.linalg.vector_norm(vectors, dim=1)  # (R,)
    scale = torch.where(norms > max_norm, max_norm / (norms + 1e-7), torch.ones_like(norms))  # (R,)
    weight.index_copy_(0, rows, vectors.mul_(scale.unsqueeze(1)))


class MaxNormEmbedding(nn.Embedding):
    """`nn.Embedding(max_norm=...)` (the notebooks' max_norm=1), renormalising the looked-up rows by
    `renorm_rows_`: PyTorch's own renormalisation takes each row's norm alone, which on a CPU takes
    many times as long as these few operations on all the rows at once (measured). The forward
    pre-hooks (DeferredAdam's catch-up) still run before the rows are renormalised."""

    def renorm_(self, ids: torch.Tensor) -> None:
        """Renormalise rows `ids` (S,) before they are read other than through `forward` (CBOW's bag)."""
        renorm_rows_(self.weight, ids, self.max_norm)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        self.renorm_(ids)
        return F.embedding(ids, self.weight, self.padding_idx, None, self.norm_type, self.scale_grad_by_freq, self.sparse)


def uniform_init_(weight: torch.Tensor) -> torch.Tensor:
    """Fills a (rows, dim) weight uniformly in ±0.5/dim, as word2vec and the notebooks start their vectors."""
    dim = weight.shape[1]
    return nn.init.uniform_(weight, -0.5 / dim, 0.5 / dim)


def uniform_embedding(num: int, dim: int, sparse: bool, max_norm: float | None = None) -> nn.Embedding:
    """An embedding initialised uniformly in ±0.5/dim (`uniform_init_`); with `max_norm`, looked-up
    rows whose norm exceeds it are scaled to it (`MaxNormEmbedding`)."""
    embedding = (nn.Embedding if max_norm is None else MaxNormEmbedding)(num, dim, sparse=sparse, max_norm=max_norm)
    uniform_init_(embedding.weight)
    return embedding


def check_arguments(config: Mapping, key: str, given: tuple[str, ...]) -> None:
    """One-line errors for a setting the configured class does not take, or one it needs and lacks
    (`given`: what the model passes itself)."""
    cls = target_class(config, key)
    parameters = inspect.signature(cls).parameters
    settings = set(config) - {"_target_", "_partial_"}
    if not any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
        for name in sorted(settings - set(parameters)):
            raise ConfigError(f"{key}.{name} is not a setting of {cls.__name__}; remove it "
                              f"({cls.__name__} takes {', '.join(n for n in parameters if n not in given)})")
    for name, p in parameters.items():
        if p.default is p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) \
                and name not in settings and name not in given:
            raise ConfigError(f"{key}.{name} is missing: {cls.__name__} needs it; add +{key}.{name}=VALUE")


class Word2VecModule(L.LightningModule, ABC):
    """What every model shares; an architecture (`architecture.Architecture`) and an output layer
    (`full_softmax`, `negative_sampling`, `hierarchical`) make a model by subclassing it together.

    The optimizer and the schedule are the configs `model.optimizer` and `model.scheduler` name
    (w2v/optim/): all minimise the batch's mean loss, through autograd or a subclass's hand-written
    step (the SGD of negative sampling and hierarchical softmax, the full-softmax models).
    """

    def __init__(self, vocab: Vocabulary, *, embedding_dim: int, window: int, shrink_window: bool,
                 subsample: float | None, subsample_rule: str, optimizer: Mapping, scheduler: Mapping | None,
                 export: str):
        """Every setting comes from the model's config (conf/model/), the one place defaults are written;
        `optimizer` and `scheduler` are configs that name their class (`_target_`), as in conf/model/optimizer/."""
        super().__init__()
        optimizer, scheduler = (dict(c) if isinstance(c, Mapping) else c for c in (optimizer, scheduler))
        Word2VecModule.check_hparams(embedding_dim=embedding_dim, window=window, subsample=subsample,
                                     subsample_rule=subsample_rule, optimizer=optimizer, scheduler=scheduler,
                                     export=export)
        self.save_hyperparameters(ignore=["vocab"], logger=False)
        self.hparams.optimizer, self.hparams.scheduler = optimizer, scheduler
        self.vocab = vocab
        self.optimizer_class = target_class(optimizer, "model.optimizer")
        # Sparse embedding gradients (the rows of the batch's words): SGD and LazyAdam update only
        # those rows; Adam, where `sparse_adam` says it pays, puts off the other rows' steps (DeferredAdam).
        deferred = issubclass(self.optimizer_class, DeferredAdam)  # pays where a batch reads few rows
        self.sparse = self.sparse_adam if deferred else takes_sparse_rows(optimizer)
        self.in_embed = uniform_embedding(len(vocab), embedding_dim, self.sparse, self.max_norm())
        self._deferred: DeferredAdam | None = None  # adam's optimizer, which holds the idle rows' pending steps
        self._keep: np.ndarray | None = None  # made by `keep_probabilities` on first use
        self._catch_up_hooks: list = []

    # -- validation, before any heavy work --------------------------------------------------
    @classmethod
    def check_hparams(cls, **settings: Any) -> None:
        """One-line ConfigErrors for settings that cannot work; train.py calls this before reading data."""
        check_number("model.embedding_dim", settings.get("embedding_dim"), integer=True, least=1)
        SamplerSettings(window=settings.get("window"), subsample=settings.get("subsample"),
                        subsample_rule=settings.get("subsample_rule"))
        optimizer = settings.get("optimizer")
        if optimizer is None:
            raise ConfigError("model.optimizer is missing; pick one with model/optimizer=sgd|adam|lazy_adam")
        check_arguments(optimizer, "model.optimizer", given=("params",))
        if "lr" in optimizer:
            check_number("model.optimizer.lr", optimizer["lr"], above=0)
        scheduler = settings.get("scheduler")
        if scheduler is not None:
            check_arguments(scheduler, "model.scheduler", given=("optimizer", "total_steps"))
        if scheduler is not None and "min_lr_ratio" in scheduler:
            check_number("model.scheduler.min_lr_ratio", scheduler["min_lr_ratio"], least=0, most=1)
        if settings.get("export") not in EXPORTS:
            raise ConfigError(f"model.export={settings.get('export')!r} is unknown; use one of {', '.join(EXPORTS)}")

    # what model.kernels=auto runs, for its error message
    auto_kernels = "PyTorch"

    @classmethod
    def check_kernels(cls, kernels) -> None:
        if kernels not in KERNELS:
            raise ConfigError(f"model.kernels={kernels!r} is unknown; use auto ({cls.auto_kernels}), triton or torch")

    @staticmethod
    def require_triton() -> None:
        """model.kernels=triton's one-line error where Triton cannot be imported."""
        if not triton_available():
            raise ConfigError("model.kernels=triton needs Triton; pip install triton, or use model.kernels=auto")

    def max_norm(self) -> float | None:
        return None

    # Whether Adam should get sparse embedding gradients and defer the idle rows' steps: it pays
    # where a batch reads few of the rows (Skip-gram: 64 centers), not where it reads a large share
    # of them (CBOW's 256 windows of 8 words: bringing those rows up to date costs more than a dense step).
    sparse_adam = False

    # -- what subclasses provide ---------------------------------------------------------------
    @abstractmethod
    def example_losses(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """(P,) loss of each training example in the batch."""

    @abstractmethod
    def output_matrix(self) -> torch.Tensor:
        """(V, D) output-side word vectors."""

    # The architecture's: whether a window's context words meet the output layer as their mean
    # (CBOW) or each on its own (Skip-gram).
    mean_context = False

    # -- data ---------------------------------------------------------------------------
    # With data.batching=examples (the notebooks'), whether an example is one (center, context) pair
    # (Skip-gram) or a whole window (CBOW).
    pair_examples = False

    def keep_probabilities(self) -> np.ndarray | None:
        """(V,) float32 each word's probability of being kept by subsampling, or None where all are:
        for a model that subsamples its own samples (`SamplerSettings.draws_samples`)."""
        if not self.hparams.subsample:
            return None
        if self._keep is None:
            self._keep = keep_probabilities(self.vocab.counts, self.hparams.subsample,
                                            self.hparams.subsample_rule).astype(np.float32)
        return self._keep

    def sampler_settings(self) -> SamplerSettings:
        return SamplerSettings(window=self.hparams.window, shrink_window=self.hparams.shrink_window,
                               subsample=self.hparams.subsample, subsample_rule=self.hparams.subsample_rule,
                               pairs=self.pair_examples)

    # -- training ---------------------------------------------------------------------------
    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor | None:
        losses = self.example_losses(batch)
        if losses.numel() == 0:  # every center of the batch was subsampled away or had no context
            if self.trainer.world_size == 1:
                return None
            # A data-parallel process still takes part in the step's collectives (DDP's gradient
            # reduction, the loss's sync): a zero loss with zero gradients, logged with weight 0.
            self.log_loss(losses.sum(), 0)
            return losses.sum()
        loss = losses.mean()
        self.log_loss(loss, losses.numel())
        return loss

    def step_optimizer(self) -> None:
        """The optimizer's and the schedule's step, for a subclass's hand-written (manual) training step."""
        self.optimizers().step()  # Lightning counts the steps of this optimizer
        scheduler = self.lr_schedulers()
        if scheduler is not None:
            scheduler.step()

    def on_train_epoch_start(self) -> None:
        self._epoch_loss = torch.zeros(2, dtype=torch.float64, device=self.device)  # (loss sum, examples)

    def step_learning_rates(self) -> tuple[float, float]:
        """The learning rate of this step and of the next, for a step that spreads the schedule over
        its examples (SGNS's GPU kernel); other schedulers than LinearDecay hold the rate for the step."""
        lr = self.optimizers().param_groups[0]["lr"]
        scheduler = self.lr_schedulers()
        return (lr, scheduler.next_rate()) if isinstance(scheduler, LinearDecay) else (lr, lr)

    def log_loss(self, loss: torch.Tensor, examples: int | torch.Tensor) -> None:
        """Adds the batch's mean loss to the epoch's, and logs it on the steps Lightning writes.

        Handing Lightning every step's value costs more than some models' whole step; the epoch's
        mean is kept here instead, and logged at its end (summed over data-parallel processes).
        """
        if not hasattr(self, "_epoch_loss"):  # a run resumed mid-epoch starts without on_train_epoch_start
            self.on_train_epoch_start()
        count = torch.as_tensor(examples, dtype=torch.float64, device=self._epoch_loss.device)  # a tensor stays on its device
        self._epoch_loss += torch.stack([loss.detach().double() * count, count])
        if is_logging_step(self.trainer):  # every process logs it: the value is averaged over them
            self.log("train/loss_step", loss, prog_bar=True, on_step=True, on_epoch=False, batch_size=int(examples),
                     sync_dist=self.trainer.world_size > 1)

    def epoch_loss(self) -> float:
        """This process's mean loss over the examples of the epoch so far."""
        total, examples = self._epoch_loss.tolist()
        return total / max(examples, 1)

    def on_train_epoch_end(self) -> None:
        total, examples = self.trainer.strategy.reduce(self._epoch_loss, reduce_op="sum").tolist()
        self.log("train/loss_epoch", total / max(examples, 1), on_step=False, on_epoch=True, rank_zero_only=True)
        del self._epoch_loss

    def configure_optimizers(self):
        optimizer = instantiate(self.hparams.optimizer, _partial_=True)(self.parameters())
        self._defer_to(optimizer if isinstance(optimizer, DeferredAdam) else None)
        if self.hparams.scheduler is None:
            return optimizer
        schedule = instantiate(self.hparams.scheduler, _partial_=True)
        takes_steps = "total_steps" in inspect.signature(target_class(self.hparams.scheduler, "model.scheduler")).parameters
        schedule = schedule(optimizer, **({"total_steps": self.total_training_steps} if takes_steps else {}))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}

    def total_training_steps(self) -> int | float:
        """The steps the `linear` schedule decays over: Lightning's estimate for the whole fit (inf when unbounded)."""
        return self.trainer.estimated_stepping_batches

    def _defer_to(self, optimizer: DeferredAdam | None) -> None:
        """Makes every embedding bring the rows it looks up up to date in `optimizer` first (None: no longer)."""
        for handle in self._catch_up_hooks:  # from an earlier fit
            handle.remove()
        self._deferred = optimizer
        self._catch_up_hooks = [] if optimizer is None else [
            optimizer.watch(module) for module in self.modules() if isinstance(module, nn.Embedding) and module.sparse]

    def write_run_files(self, folder) -> list[Path]:
        """Writes what the model needs beside the run's vocabulary to be used later (nothing, but for
        hierarchical softmax's tree); returns the files written."""
        return []

    # -- vectors ----------------------------------------------------------------------------
    def vector_matrix(self, which: str | None = None) -> torch.Tensor:
        """(V, D) the exported vectors: input, output, or their average (`model.export`), as the
        optimizer has them now (Adam's pending steps applied, to a copy)."""
        which = which or self.hparams.export
        current = (lambda param: param) if self._deferred is None else self._deferred.current
        if which == "input":
            return current(self.in_embed.weight)
        if which == "output":
            return current(self.output_matrix())
        return (current(self.in_embed.weight) + current(self.output_matrix())) / 2

    def word_vectors(self, which: str | None = None) -> WordVectors:
        """The trained vectors of every word that occurs in the corpus (unused special tokens left out)."""
        matrix = self.vector_matrix(which).detach().float().cpu().numpy()
        used = np.flatnonzero(self.vocab.counts > 0)
        return WordVectors([self.vocab.words[i] for i in used], matrix[used])
