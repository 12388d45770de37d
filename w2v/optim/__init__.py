"""Optimizers and learning-rate schedules for the embeddings, named by the `model/optimizer` and
`model/scheduler` config groups (`_target_` / `_partial_`; any `torch.optim` optimizer works too).

- `DeferredAdam` (`model/optimizer=adam`): Adam's results, each step costing the batch's rows only.
- `LazyAdam` (`model/optimizer=lazy_adam`): Adam on the rows of the batch's words alone.
- `torch.optim.SGD` (`model/optimizer=sgd`): word2vec's; SGNS takes its fused hand-written step.
- `LinearDecay` (`model/scheduler=linear|constant`): the rate falls linearly over all training steps.
"""

from __future__ import annotations

import torch

from w2v.optim.deferred_adam import DeferredAdam
from w2v.optim.lazy_adam import LazyAdam
from w2v.optim.schedules import LinearDecay

# Optimizers that take an embedding's sparse (row) gradient and update only those rows.
SPARSE_ROW_OPTIMIZERS = (torch.optim.SGD, LazyAdam)

__all__ = ["DeferredAdam", "LazyAdam", "LinearDecay", "SPARSE_ROW_OPTIMIZERS"]
