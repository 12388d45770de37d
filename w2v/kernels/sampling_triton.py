"""The GPU path's draws in Triton: the counter-based hash (`counter_rng`'s, bit for bit) and a
full-softmax step's padded windows in one kernel.

`device_sampling.step_windows` builds a step's windows from a corpus block in a few dozen small
PyTorch operations; on a GPU each is a kernel launch that the host pays for, step after step, a
large share of the host's time per step. `step_windows` here writes the same centers, contexts and
mask in one launch (`device_sampling.step_windows` is its specification and its tests' reference).

With TRITON_INTERPRET=1 the kernels run on CPU tensors (slowly): that is how the tests check them
without a GPU.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from w2v.kernels import check_tensors

BLOCK_N = 128  # centers a program of `_windows_kernel`


@triton.jit
def mix32(x):
    """counter_rng.mix32 on int64 values in [0, 2^32)."""
    x = x ^ (x >> 16)
    x = (x * 0x7FEB352D) & 0xFFFFFFFF
    x = x ^ (x >> 15)
    x = (x * 0x846CA68B) & 0xFFFFFFFF
    return x ^ (x >> 16)


@triton.jit
def draw(key, counter):
    """counter_rng.draw: 32 random bits (int64) for each counter of stream `key`."""
    return mix32((mix32(counter ^ key) + key) & 0xFFFFFFFF)


@triton.jit
def below(bits, n):
    """counter_rng.below: 32 random bits scaled to integers in [0, n)."""
    return (bits * n) >> 32


# A step's and a block's sizes change between blocks (and at a block's last step): variants compiled for
# their divisibility would gain nothing, and one compiled while a CUDA graph captures the step would stall it.
@triton.jit(do_not_specialize=["n_centers", "n_chunks", "spare"])
def _windows_kernel(seq, docs, bounds, order, keys, first, centers, contexts, mask, n_centers, chunk_tokens, n_chunks,
                    spare, WINDOW: tl.constexpr, SHRINK: tl.constexpr, C: tl.constexpr, BLOCK_N: tl.constexpr):
    n = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)  # (BN,) the step's center slots
    in_step = n < n_centers
    # the step's first chunk, read on the device; chunks past the block's are clamped to its last
    place = tl.minimum(tl.load(first) + n // chunk_tokens, n_chunks - 1)  # (BN,) int64
    chunk = tl.load(order + place, mask=in_step, other=0)  # (BN,) int64
    start = tl.load(bounds + chunk, mask=in_step, other=0)
    kept = tl.load(bounds + chunk + 1, mask=in_step, other=0) - start  # the chunk's kept tokens
    count = tl.load(bounds + n_chunks)  # the block's kept tokens
    slot = (n % chunk_tokens).to(tl.int64)
    valid = in_step & (slot < kept)
    position = tl.where(valid, start + slot, spare)  # (BN,) int64; padding takes the spare slot, in no document
    doc = tl.load(docs + position)
    if SHRINK:
        radius = 1 + below(draw(tl.load(keys), position), WINDOW)  # (BN,)
    else:
        radius = tl.full([BLOCK_N], WINDOW, tl.int64)
    j = tl.arange(0, C)  # context slots: offsets -W..-1, 1..W, then padding
    offset = tl.where(j < WINDOW, j - WINDOW, j - WINDOW + 1)  # (C,)
    where = position[:, None] + offset[None, :]  # (BN, C)
    inside = (where >= 0) & (where < count)
    where = tl.where(inside, where, position[:, None])
    counts = inside & (tl.abs(offset)[None, :] <= radius[:, None]) & (tl.load(docs + where) == doc[:, None])
    counts = counts & valid[:, None]  # (BN, C)
    tl.store(centers + n, tl.load(seq + position).to(tl.int64), mask=in_step)
    out = n.to(tl.int64)[:, None] * (2 * WINDOW) + j[None, :]  # (BN, C) into the (N, 2W) outputs
    store = in_step[:, None] & (j < 2 * WINDOW)[None, :]
    tl.store(contexts + out, tl.load(seq + where).to(tl.int64), mask=store)
    tl.store(mask + out, counts.to(tl.uint8), mask=store)


@torch.library.custom_op("w2v::step_windows", mutates_args=())
def step_windows(seq: torch.Tensor, docs: torch.Tensor, bounds: torch.Tensor, order: torch.Tensor, keys: torch.Tensor,
                 first_chunk: torch.Tensor, chunks: int, chunk_tokens: int, window: int,
                 shrink: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """`device_sampling.step_windows` in one kernel: the windows of chunks first_chunk..
    first_chunk+chunks-1 of a block's `order`, centers (N,) int64, contexts (N, 2W) int64 and mask
    (N, 2W) bool, N = chunks·chunk_tokens. seq, docs, bounds and order as `DeviceBlock`'s; keys
    (1+,) int64 the window stream's key first (`StreamKeys.tensor`); first_chunk (1,) int64, read
    on the device, so that a CUDA graph of the step replays it for any chunk: the caller keeps
    the chunks inside the block (the kernel clamps them to its last rather than read past it)."""
    check_tensors("step_windows", {"seq": (seq, torch.int32, 1), "docs": (docs, torch.int32, 1),
                                   "bounds": (bounds, torch.int64, 1), "order": (order, torch.int64, 1),
                                   "keys": (keys, torch.int64, 1), "first_chunk": (first_chunk, torch.int64, 1)})
    if len(docs) != len(seq) or len(bounds) != len(order) + 1 or len(keys) < 1 or len(first_chunk) != 1:
        raise ValueError("step_windows: docs must match seq, bounds have one entry more than order, keys one at "
                         "least and first_chunk one")
    if window < 1 or chunk_tokens < 1:
        raise ValueError(f"step_windows: window ({window}) and chunk_tokens ({chunk_tokens}) must be at least 1")
    if not 0 <= chunks <= len(order):
        raise ValueError(f"step_windows: {chunks} chunks a step, but the block has {len(order)}")
    n = chunks * chunk_tokens
    centers = seq.new_empty(n, dtype=torch.int64)
    contexts = seq.new_empty(n, 2 * window, dtype=torch.int64)
    mask = seq.new_empty(n, 2 * window, dtype=torch.uint8)  # stored as bytes, viewed as bool
    if n:
        _windows_kernel[(triton.cdiv(n, BLOCK_N),)](
            seq, docs, bounds, order, keys, first_chunk, centers, contexts, mask, n, chunk_tokens, len(order),
            len(seq) - 1, WINDOW=window, SHRINK=shrink, C=triton.next_power_of_2(2 * window), BLOCK_N=BLOCK_N)
    return centers, contexts, mask.view(torch.bool)


@step_windows.register_fake
def _(seq, docs, bounds, order, keys, first_chunk, chunks, chunk_tokens, window, shrink):
    n = chunks * chunk_tokens
    return (seq.new_empty(n, dtype=torch.int64), seq.new_empty(n, 2 * window, dtype=torch.int64),
            seq.new_empty(n, 2 * window, dtype=torch.bool))
