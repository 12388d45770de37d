"""Compiled kernels, below the models: `cpu` (Numba: the SGD step of negative sampling and hierarchical softmax, DeferredAdam's row work),
`sequential` (word2vec's sequential SGD in shards of a batch), `prefetch` (the CPU kernels' software prefetch), `sgns_triton` (the GPU's fused SGNS epoch over a corpus held on the device),
`softmax_triton` (the full softmax's step on the GPU without its logits matrix), and what the GPU path
draws its samples with (`counter_rng`, `device_sampling`). Nothing here imports Lightning or the models;
the Triton modules import Triton, so they are imported where they run."""

import os

LOG2E, LN2 = 1.4426950408889634, 0.6931471805599453  # log2(e), ln(2): exps in base 2, the faster on CPUs and GPUs
# The widest embedding `softmax_triton`'s tiles hold: a block of rows and one of output rows, each
# the width rounded up to a power of 2, in registers and shared memory. Here, so that choosing a
# step need not import Triton.
SOFTMAX_TRITON_MAX_DIM = 256


def triton_interpreted() -> bool:
    """Whether Triton runs its kernels in its interpreter, on CPU tensors (TRITON_INTERPRET=1, as the tests do)."""
    return os.environ.get("TRITON_INTERPRET") == "1"


def triton_available() -> bool:
    """Whether Triton can be imported (the GPU kernels' language; not needed on a CPU)."""
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True
