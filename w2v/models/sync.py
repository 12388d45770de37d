"""Data-parallel SGNS: combining the hand-written row updates of every process into one.

DDP averages the gradients of autograd models; the hand-written SGD step of SGNS has none to
average. Instead each process sums its batch's updates per distinct row, every process gathers all
of them, and each applies the same combined update: the update one process would make for the
union of the batches, so the copies of the model stay identical.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F


def gather_row_updates(rows: torch.Tensor, grads: torch.Tensor, curvature: torch.Tensor
                       ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Every process's (rows, grads, curvature), summed per row and concatenated in rank order.

    rows (R,), grads (R, D), curvature (R,) -> rows (U,), grads (U, D), curvature (U,), U the sum over
    processes of their distinct rows. Summing per row first sends a few distinct rows instead of a
    row per context slot.
    """
    world = dist.get_world_size()
    distinct, inverse = torch.unique(rows, return_inverse=True)  # (U_r,), (R,)
    packed = grads.new_zeros(len(distinct), grads.shape[1] + 1)  # (U_r, D+1): gradient sums, curvature sum
    packed[:, :-1].index_add_(0, inverse, grads)
    packed[:, -1].index_add_(0, inverse, curvature)
    count = torch.tensor([len(distinct)], device=rows.device)
    counts = [torch.zeros_like(count) for _ in range(world)]
    dist.all_gather(counts, count)
    counts = [int(c) for c in counts]
    pad = max(counts) - len(distinct)  # all_gather needs tensors of one shape
    all_rows = [torch.empty(max(counts), dtype=distinct.dtype, device=rows.device) for _ in range(world)]
    all_packed = [packed.new_empty(max(counts), packed.shape[1]) for _ in range(world)]
    dist.all_gather(all_rows, F.pad(distinct, (0, pad)))
    dist.all_gather(all_packed, F.pad(packed, (0, 0, 0, pad)))
    rows = torch.cat([r[:n] for r, n in zip(all_rows, counts)])  # (U,)
    packed = torch.cat([p[:n] for p, n in zip(all_packed, counts)])  # (U, D+1)
    return rows, packed[:, :-1], packed[:, -1]
