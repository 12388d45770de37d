"""Float32 matrix products on a CPU through oneDNN, where they run faster than PyTorch's default (MKL).

On some CPUs (AMD's among them) MKL runs its generic code path, while oneDNN picks its kernels by
instruction set, so a chunk's exps times the output matrix (`losses.onednn_operand`) runs faster
through oneDNN (scripts/README.md has the measurements). The operator used,
`torch.ops.mkldnn._linear_pointwise`, is the one PyTorch's compiler emits for a linear layer on a
CPU. Where a PyTorch build lacks it, or `W2V_ONEDNN=0` is set, the products stay with `torch.mm`.
"""

from __future__ import annotations

import os

import torch

try:
    _LINEAR = torch.ops.mkldnn._linear_pointwise.default
except (AttributeError, RuntimeError):  # a build without oneDNN, or without this operator
    _LINEAR = None

# Read once, at import; tests set it to run both paths.
ENABLED = os.environ.get("W2V_ONEDNN", "1") != "0"


def usable(*tensors: torch.Tensor) -> bool:
    """Whether `linear` may take these tensors: float32 on a CPU, with oneDNN there and not
    switched off. (Under autocast, callers keep to `torch.mm`, which autocast lowers in precision.)"""
    if not (ENABLED and _LINEAR is not None and torch.backends.mkldnn.is_available()):
        return False
    return all(t.device.type == "cpu" and t.dtype == torch.float32 for t in tensors)


def linear(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """x @ w.T as a new contiguous matrix. x (M, K) contiguous, w (N, K) of any strides -> (M, N)"""
    return _LINEAR(x, w, None, "none", [], "")
