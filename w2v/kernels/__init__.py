"""Compiled kernels, below the models: `cpu` (Numba: the SGD step of negative sampling and hierarchical softmax, DeferredAdam's row work),
`sequential` (word2vec's sequential SGD in shards of a batch), `prefetch` (the CPU kernels' software prefetch), `sgns_triton` (the GPU's fused SGNS epoch over a corpus held on the device) and `sgns_lockstep` (its emulation on the CPU),
`softmax_triton` (the full softmax's step on the GPU without its logits matrix), and what the GPU path
draws its samples with (`counter_rng`, `device_sampling`, and in Triton `sampling_triton`). Nothing here imports Lightning or the models;
the Triton modules import Triton, so they are imported where they run."""

import functools
import os

import torch

LOG2E, LN2 = 1.4426950408889634, 0.6931471805599453  # log2(e), ln(2): exps in base 2, the faster on CPUs and GPUs
# The widest embedding `softmax_triton`'s tiles hold: a block of rows and one of output rows, each
# the width rounded up to a power of 2, in registers and shared memory. Here, so that choosing a
# step need not import Triton.
SOFTMAX_TRITON_MAX_DIM = 256
# How SGNS's GPU kernel (`sgns_triton`) and its CPU emulation (`sgns_lockstep`) update a window's rows:
# plain SGD's lr·G or the damped lr·G/(1+lr·H), each over the whole window at once, or `sequential`,
# word2vec's order within the window, each context word's decisions in turn (`model.update_rule`'s
# sequential rule, as the CPU kernels train it).
SGNS_WINDOW_RULES = {"plain": 0, "damped": 1, "sequential": 2}


def triton_interpreted() -> bool:
    """Whether Triton runs its kernels in its interpreter, on CPU tensors (TRITON_INTERPRET=1, as the tests do)."""
    return os.environ.get("TRITON_INTERPRET") == "1"


def check_tensors(kernel: str, expected: dict[str, tuple[torch.Tensor | None, torch.dtype, int]]) -> None:
    """One-line ValueErrors for a Triton kernel's tensor arguments: `expected` maps each name to the
    tensor (None: absent), its type and its number of dimensions. All must be contiguous and on the
    first one's device, a CUDA device, or any under Triton's interpreter."""
    first_label, (first, _, _) = next(iter(expected.items()))
    for label, (tensor, dtype, ndim) in expected.items():
        if tensor is None:
            continue
        if not isinstance(tensor, torch.Tensor) or tensor.dtype != dtype or tensor.dim() != ndim:
            got = f"{tensor.dtype} with {tensor.dim()} dimensions" if isinstance(tensor, torch.Tensor) else type(tensor).__name__
            raise ValueError(f"{kernel}: {label} must be a {ndim}-D {dtype} tensor, got {got}")
        if not tensor.is_contiguous():
            raise ValueError(f"{kernel}: {label} must be contiguous; pass {label}.contiguous()")
        if tensor.device != first.device:
            raise ValueError(f"{kernel}: {label} is on {tensor.device} but {first_label} on {first.device}; "
                             "put all on one device")
    if first.device.type != "cuda" and not triton_interpreted():
        raise ValueError(f"{kernel} runs on CUDA tensors, got {first.device}; on a CPU use model.kernels=auto "
                         "(or TRITON_INTERPRET=1 to run the kernels slowly, as the tests do)")


@functools.cache
def triton_available() -> bool:
    """Whether Triton can be imported (the GPU kernels' language; not needed on a CPU)."""
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True
