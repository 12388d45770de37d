"""The GPU paths' samples, drawn on the device from counter-based streams (`counter_rng`).

A corpus block goes to the device once per epoch as vocabulary ids. There its tokens are
subsampled and compacted (`prepare_block`), cut into chunks of `chunk_tokens` corpus positions, and
the chunks put in a random order; SGNS's training kernel then walks each chunk's kept tokens as
centers. Window sizes and noise words are drawn inside the kernel; `chunk_examples` draws the same
ones in PyTorch, as the kernel's specification and its tests' reference. The full softmax takes a
step's windows all at once, padded to a fixed shape (`step_windows`). No step waits on the host:
counts stay on the device, and every size the host needs (chunks per block) is known beforehand.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from w2v.errors import ConfigError
from w2v.kernels.counter_rng import MASK32, TO_UNIT, below, draw, mix32, stream_key, uniform


@dataclass(frozen=True)
class StreamKeys:
    """The 32-bit keys of one (seed, epoch, block)'s streams of draws."""

    subsample: int
    window: int
    noise: int
    order: int

    @classmethod
    def for_block(cls, seed: int, epoch: int, block: int) -> StreamKeys:
        """The keys of corpus block `block` in `epoch` of a run seeded with `seed`."""
        return cls(*(stream_key(seed, epoch, block, purpose) for purpose in ("subsample", "window", "noise", "order")))

    def tensor(self, device) -> torch.Tensor:
        """(3,) int64: the keys the kernel reads (window, noise, unused), kept on `device`. To a GPU
        they go from pinned memory, without waiting for the work queued there."""
        keys = torch.tensor([self.window, self.noise, 0], dtype=torch.int64)
        if torch.device(device).type != "cuda":
            return keys.to(device)
        return keys.pin_memory().to(device, non_blocking=True)


@dataclass(frozen=True)
class DeviceBlock:
    """A corpus block on the device, subsampled: what the SGNS kernel trains on.

    seq (n+1,) int32: the kept tokens' ids in corpus order (the first `bounds[-1]` entries count);
    docs (n+1,) int32: each kept token's document (-1 past the end), so windows stop at documents' ends;
    bounds (chunks+1,) int64: where each chunk's kept tokens start, the last entry the kept count;
    order (chunks,) int64: the chunks in the order they are trained.
    """

    seq: torch.Tensor
    docs: torch.Tensor
    bounds: torch.Tensor
    order: torch.Tensor

    @property
    def n_chunks(self) -> int:
        return len(self.order)


def block_chunks(n_tokens: int, chunk_tokens: int) -> int:
    """Chunks of a block of `n_tokens` positions: known on the host before any draw."""
    return max(1, -(-n_tokens // chunk_tokens))


def prepare_block(ids: torch.Tensor, offsets: torch.Tensor, keep_prob: torch.Tensor | None, chunk_tokens: int,
                  keys: StreamKeys, shuffle: bool = True) -> DeviceBlock:
    """Subsamples block `ids` (n,) with document `offsets` (m+1,) on their device, keeping token t with
    probability keep_prob[t] (None keeps all), and cuts it into chunks of `chunk_tokens` positions."""
    n, device = len(ids), ids.device
    ids = ids.to(torch.int32)
    position = torch.arange(n, dtype=torch.int64, device=device)  # (n,)
    if keep_prob is None:
        keep = torch.ones(n, dtype=torch.bool, device=device)
    else:
        keep = uniform(keys.subsample, position) < keep_prob[ids.long()]  # (n,)
    lengths = offsets[1:] - offsets[:-1]  # (m,)
    doc_of = torch.repeat_interleave(torch.arange(len(lengths), dtype=torch.int32, device=device), lengths,
                                     output_size=n)  # (n,) output_size given: no wait on the device
    kept_before = torch.cumsum(keep, 0)  # (n,) kept tokens up to and including each position
    slot = torch.where(keep, kept_before - 1, n)  # (n,) the dropped ones all go to the spare last slot
    seq = torch.zeros(n + 1, dtype=torch.int32, device=device).scatter_(0, slot, ids)
    docs = torch.full((n + 1,), -1, dtype=torch.int32, device=device).scatter_(0, slot, doc_of)
    seq[n], docs[n] = 0, -1  # the spare slot (every dropped token was written there) is word 0 of no document
    chunks = block_chunks(n, chunk_tokens)
    starts = torch.clamp(torch.arange(chunks + 1, device=device) * chunk_tokens, max=n)  # (chunks+1,)
    bounds = torch.cat([kept_before.new_zeros(1), kept_before])[starts]  # (chunks+1,)
    return DeviceBlock(seq, docs, bounds, chunk_order(chunks, keys.order, shuffle, device))


def chunk_order(chunks: int, key: int, shuffle: bool, device=None) -> torch.Tensor:
    """(chunks,) int64 the order in which an epoch trains a block's chunks, drawn from stream `key`
    (the sequential CPU kernels' blocks take it too, `chunk_windows`)."""
    index = torch.arange(chunks, dtype=torch.int64, device=device)
    return torch.argsort(draw(key, index)) if shuffle else index


def window_radius(key: int, position: torch.Tensor, window: int, shrink: bool) -> torch.Tensor:
    """Each center's window (int64): 1..window words a side drawn per kept position, or `window`."""
    if not shrink:
        return torch.full_like(position, window)
    return 1 + below(draw(key, position), window)


def noise_words(key: int, position: torch.Tensor, negatives: int, threshold: torch.Tensor,
                alias: torch.Tensor) -> torch.Tensor:
    """(B, K) noise words for the centers at kept `position` (B,), by the alias table (threshold,
    alias) (V,): the draw picks a slot, a second hash of it the slot's word or its alias."""
    counter = position.unsqueeze(1) * negatives + torch.arange(negatives, device=position.device)  # (B, K)
    bits = draw(key, counter & MASK32)
    slot = below(bits, len(threshold))
    fraction = (mix32(bits) >> 8).to(torch.float32) * TO_UNIT
    return torch.where(fraction < threshold[slot], slot, alias[slot].long())


def chunk_examples(block: DeviceBlock, chunk: int, window: int, shrink: bool, negatives: int, keys: StreamKeys,
                   threshold: torch.Tensor, alias: torch.Tensor) -> dict[str, torch.Tensor]:
    """The examples the kernel trains on for `chunk`, in its order: centers (B,), contexts (B, 2W),
    mask (B, 2W) (offsets -W..-1, 1..W) and noise (B, K), B the chunk's kept tokens (some may have
    no context word: their mask is all False)."""
    start, end = (int(v) for v in block.bounds[chunk : chunk + 2])
    position = torch.arange(start, end, dtype=torch.int64, device=block.seq.device)  # (B,)
    contexts, mask = window_contexts(block, position, window, shrink, keys.window)
    return {"centers": block.seq[position].long(), "contexts": contexts, "mask": mask,
            "noise": noise_words(keys.noise, position, negatives, threshold, alias)}


def window_contexts(block: DeviceBlock, position: torch.Tensor, window: int, shrink: bool,
                    key: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The context words (B, 2W) int64 of the centers at kept `position` (B,) (offsets -W..-1, 1..W)
    and which of them count (B, 2W): inside the center's drawn window (`window_radius`, stream
    `key`), its document and the block's kept tokens. Fixed shapes, no wait on the device."""
    offset = torch.cat([torch.arange(-window, 0), torch.arange(1, window + 1)]).to(position.device)  # (2W,)
    radius = window_radius(key, position, window, shrink)  # (B,)
    where = position.unsqueeze(1) + offset  # (B, 2W)
    inside = (where >= 0) & (where < block.bounds[-1])
    where = torch.where(inside, where, position.unsqueeze(1))
    mask = inside & (offset.abs() <= radius.unsqueeze(1)) & (block.docs[where] == block.docs[position].unsqueeze(1))
    return block.seq[where].long(), mask


def step_windows(block: DeviceBlock, first_chunk: int, chunks: int, chunk_tokens: int, window: int, shrink: bool,
                 key: int) -> dict[str, torch.Tensor]:
    """The windows of a step that trains chunks first_chunk.. first_chunk+chunks-1 of `block`'s
    order, every center of them at once, padded to a fixed shape: centers (N,), contexts (N, 2W) and
    mask (N, 2W), N = chunks·chunk_tokens; a chunk's slots past its kept tokens have no context
    word (mask all False). Nothing waits on the device: the shapes follow from the arguments."""
    chunk = block.order[first_chunk:first_chunk + chunks]  # (k,)
    start = block.bounds[chunk]  # (k,)
    slot = torch.arange(chunk_tokens, device=start.device)  # (T,)
    valid = (slot < (block.bounds[chunk + 1] - start).unsqueeze(1)).reshape(-1)  # (k·T,)
    spare = len(block.seq) - 1  # the kept sequence's spare last slot, in no document
    position = torch.where(valid, (start.unsqueeze(1) + slot).reshape(-1), spare)  # (N,)
    contexts, mask = window_contexts(block, position, window, shrink, key)
    return {"centers": block.seq[position].long(), "contexts": contexts, "mask": mask & valid.unsqueeze(1)}


def check_block_size(n_tokens: int, negatives: int) -> None:
    """The noise words' counters (position·K + k) must stay below 2^32 within a block."""
    if n_tokens * max(negatives, 1) >= 1 << 32:
        raise ConfigError(f"a corpus block of {n_tokens:,} tokens is too large for the counter-based draws; "
                          f"set data.block_tokens below {(1 << 32) // max(negatives, 1):,}")
