"""Counter-based random numbers: a draw is a hash of (stream key, counter), not a generator's state.

The GPU path draws every random choice of an epoch (subsampling, window sizes, noise words, chunk
order) where it is used, inside thousands of concurrent kernel programs; a counter-based draw needs
no state to share or advance, and any process can redraw any position's choice. The hash is
Wellons's `lowbias32` integer finaliser, applied twice. The PyTorch functions here are the
specification: the Triton kernels (`sampling_triton`) repeat the same integer arithmetic, in int64
with the same masks, so both give the same bits.
"""

from __future__ import annotations

import torch

MASK32 = 0xFFFFFFFF
MIX1, MIX2 = 0x7FEB352D, 0x846CA68B  # lowbias32's multipliers
TO_UNIT = 1.0 / (1 << 24)  # a draw's top 24 bits, scaled into [0, 1): exact in float32

# What each stream is for, mixed into its key: draws for different purposes never coincide.
PURPOSES = {"subsample": 1, "window": 2, "noise": 3, "order": 4}


def mix32(x):
    """lowbias32 of each value of x (ints in [0, 2^32), a Python int or an int64 tensor)."""
    x = x ^ (x >> 16)
    x = (x * MIX1) & MASK32
    x = x ^ (x >> 15)
    x = (x * MIX2) & MASK32
    return x ^ (x >> 16)


def stream_key(seed: int, epoch: int, block: int, purpose: str) -> int:
    """The 32-bit key of one stream of draws: (seed, epoch, corpus block, purpose)."""
    key = mix32(PURPOSES[purpose])
    for part in (block, epoch, seed):
        key = mix32((key ^ mix32(part & MASK32)) & MASK32)
    return key


def draw(key: int, counter: torch.Tensor) -> torch.Tensor:
    """32 random bits (int64 in [0, 2^32)) for each counter (int64, below 2^32) of stream `key`."""
    return mix32((mix32(counter ^ key) + key) & MASK32)


def below(bits, n: int):
    """Draws (32 random bits each, int64) scaled to integers in [0, n): the top 32 bits of bits·n
    (Lemire's multiply-shift), as fair as the modulo and without its division, which costs the
    CPU's draws tens of cycles each."""
    return (bits * n) >> 32


def uniform(key: int, counter: torch.Tensor) -> torch.Tensor:
    """float32 in [0, 1) for each counter of stream `key`: the draw's top 24 bits."""
    return (draw(key, counter) >> 8).to(torch.float32) * TO_UNIT
