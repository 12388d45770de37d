"""Data-parallel steps: every process applies the same update, made of every process's batch.

The full softmax and the SGD step of negative sampling and hierarchical softmax compute their
gradients or row updates by hand, so DDP's
autograd hooks never run for them; the processes combine them here with dense, blocking
collectives issued in the same order by every process. (Before, Skip-gram's sparse embedding
gradient went through DDP's hooks and gloo's asynchronous sparse all-reduce, and 2-process CPU
runs crashed at random in native code; none has crashed since. Negative sampling and
hierarchical softmax with any optimizer but plain SGD train through autograd and DDP's hooks.)
- The SGD step of negative sampling and hierarchical softmax: each process sums its batch's row updates per distinct row, every process
  gathers all of them, and each applies the combined update, the update one process would make
  for the union of the batches.
- The full-softmax models: every gradient is averaged over the processes, as DDP averages them.
"""

from __future__ import annotations

from typing import Iterable

import torch
import torch.distributed as dist
import torch.nn.functional as F


def all_gather_rows(rows: torch.Tensor, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Every process's rows (R,) and values (R, ...) concatenated in rank order; R may differ between processes."""
    world = dist.get_world_size()
    count = torch.tensor([len(rows)], device=rows.device)
    counts = [torch.zeros_like(count) for _ in range(world)]
    dist.all_gather(counts, count)
    counts = [int(c) for c in counts]
    longest = max(counts)
    pad = longest - len(rows)  # all_gather needs tensors of one shape
    all_rows = [rows.new_empty(longest) for _ in range(world)]
    all_values = [values.new_empty(longest, *values.shape[1:]) for _ in range(world)]
    dist.all_gather(all_rows, F.pad(rows, (0, pad)))
    dist.all_gather(all_values, torch.cat([values, values.new_zeros(pad, *values.shape[1:])]))
    return (torch.cat([r[:n] for r, n in zip(all_rows, counts)]),
            torch.cat([v[:n] for v, n in zip(all_values, counts)]))


def gather_row_updates(rows: torch.Tensor, grads: torch.Tensor, curvature: torch.Tensor
                       ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Every process's (rows, grads, curvature), summed per row and concatenated in rank order.

    rows (R,), grads (R, D), curvature (R,) -> rows (U,), grads (U, D), curvature (U,), U the sum over
    processes of their distinct rows. Summing per row first sends a few distinct rows instead of a
    row per context slot.
    """
    distinct, inverse = torch.unique(rows, return_inverse=True)  # (U_r,), (R,)
    packed = grads.new_zeros(len(distinct), grads.shape[1] + 1)  # (U_r, D+1): gradient sums, curvature sum
    packed[:, :-1].index_add_(0, inverse, grads)
    packed[:, -1].index_add_(0, inverse, curvature)
    rows, packed = all_gather_rows(distinct, packed)  # (U,), (U, D+1)
    return rows, packed[:, :-1], packed[:, -1]


def average_gradients(params: Iterable[torch.Tensor]) -> None:
    """Replaces each parameter's gradient by its mean over the processes, in place of DDP's hooks.

    Every process must hold a gradient for the same parameters. A sparse (row) gradient is gathered
    whole: the mean of the processes' sparse gradients is their concatenation over the world size.
    """
    world = dist.get_world_size()
    for param in params:
        grad = param.grad
        if grad is None:
            continue
        if grad.is_sparse:
            grad = grad.coalesce()  # one row each: fewer rows to send
            rows, values = all_gather_rows(grad.indices()[0], grad.values())  # (R,), (R, D)
            param.grad = torch.sparse_coo_tensor(rows.unsqueeze(0), values.div_(world), grad.shape,
                                                 check_invariants=False)
        else:
            dist.all_reduce(grad)
            grad.div_(world)
