"""Optimizers and learning-rate schedules for the embeddings, named by the `model/optimizer` and
`model/scheduler` config groups (`_target_` / `_partial_`). Another `torch.optim` optimizer or
scheduler works too: the embeddings then get dense gradients, and a scheduler gets `total_steps`
only if it takes it.

- `DeferredAdam` (`model/optimizer=adam`): Adam's results, each step costing the batch's rows only.
- `LazyAdam` (`model/optimizer=lazy_adam`): Adam on the rows of the batch's words alone.
- `torch.optim.SGD` (`model/optimizer=sgd`): word2vec's; negative sampling and hierarchical softmax take their fused hand-written step.
- `LinearDecay` (`model/scheduler=linear|constant`): the rate falls linearly over all training steps.
"""

from __future__ import annotations

from typing import Mapping

import torch
from hydra.utils import get_class

from w2v.optim.deferred_adam import DeferredAdam
from w2v.optim.lazy_adam import LazyAdam
from w2v.optim.schedules import LinearDecay

__all__ = ["DeferredAdam", "LazyAdam", "LinearDecay", "plain_sgd", "takes_sparse_rows"]


def plain_sgd(config: Mapping) -> bool:
    """Whether an optimizer's config is SGD with its rate and nothing else (no momentum, no decay)."""
    return get_class(config["_target_"]) is torch.optim.SGD and set(config) <= {"_target_", "_partial_", "lr"}


def takes_sparse_rows(config: Mapping) -> bool:
    """Whether the optimizer can take an embedding's sparse (row) gradient and update those rows
    only: plain SGD and LazyAdam (DeferredAdam's use of them is the model's choice)."""
    cls = get_class(config["_target_"])
    return plain_sgd(config) or (issubclass(cls, LazyAdam) and not issubclass(cls, DeferredAdam))
