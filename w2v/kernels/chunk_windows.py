"""The sequential CPU kernels' samples, drawn in Numba from a corpus block's chunks: subsampling,
window sizes and noise words from the counter-based streams (`counter_rng`) that the GPU path
draws from, with the same bits as its PyTorch specification (`device_sampling`).

The data loader's thread then hands over only a block's ids, once, and each step's range of chunks,
and nothing competes with the training kernel's threads for the processor: the kernel's shards draw
each piece's windows themselves, just before they train them (`draw_rows`, called by
`sequential.sequential_chunks`). `chunk_windows` draws a whole step's windows at once: the
reference that the fused kernel is tested against.

The integer arithmetic is `counter_rng`'s, in unsigned 64-bit integers: every product is taken
modulo 2^64 and then masked to 32 bits, as PyTorch's int64 arithmetic does.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from w2v.kernels.counter_rng import MASK32, MIX1, MIX2, TO_UNIT
from w2v.kernels.cpu import _jit

_MASK, _MIX1, _MIX2 = np.uint64(MASK32), np.uint64(MIX1), np.uint64(MIX2)
_TO_UNIT = np.float32(TO_UNIT)


@njit(inline="always")
def _mix32(x):  # pragma: no cover - compiled
    """`counter_rng.mix32` of x (uint64 in [0, 2^32))."""
    x ^= x >> np.uint64(16)
    x = (x * _MIX1) & _MASK
    x ^= x >> np.uint64(15)
    x = (x * _MIX2) & _MASK
    return x ^ (x >> np.uint64(16))


@njit(inline="always")
def _draw(key, counter):  # pragma: no cover - compiled
    """`counter_rng.draw`: 32 random bits (uint64) for `counter` of stream `key`."""
    return _mix32((_mix32((np.uint64(counter) & _MASK) ^ np.uint64(key)) + np.uint64(key)) & _MASK)


@njit(inline="always")
def _unit(bits):  # pragma: no cover - compiled
    """A draw's top 24 bits as a float32 in [0, 1), as `counter_rng.uniform`."""
    return np.float32(bits >> np.uint64(8)) * _TO_UNIT


@njit(inline="always")
def _below(bits, n):  # pragma: no cover - compiled
    """`counter_rng.below`: a draw scaled to an integer (int64) in [0, n)."""
    return np.int64((bits * np.uint64(n)) >> np.uint64(32))


@njit(**_jit())
def subsample_block(ids, offsets, keep_prob, key, chunk_tokens):  # pragma: no cover - compiled
    """`device_sampling.prepare_block`'s subsampling: block `ids` (n,) int32 with document `offsets`
    (m+1,), token t kept with probability keep_prob[t] (an empty keep_prob keeps all), chunk by
    chunk of `chunk_tokens` positions on all threads. Returns seq (n+1,) int32 the kept ids in
    order, docs (n+1,) int32 each kept token's document (-1 past the kept ones), and bounds
    (chunks+1,) int64 where each chunk starts among the kept tokens, the last entry the kept count."""
    n = len(ids)
    chunks = max(1, -(-n // chunk_tokens))
    keep = np.ones(n, dtype=np.bool_)
    bounds = np.zeros(chunks + 1, dtype=np.int64)
    if len(keep_prob) > 0:
        for c in prange(chunks):
            kept = 0
            for i in range(c * chunk_tokens, min(n, (c + 1) * chunk_tokens)):
                keep[i] = _unit(_draw(key, i)) < keep_prob[ids[i]]
                kept += keep[i]
            bounds[c + 1] = kept
    else:
        for c in range(chunks):
            bounds[c + 1] = min(n, (c + 1) * chunk_tokens) - c * chunk_tokens
    for c in range(chunks):
        bounds[c + 1] += bounds[c]
    seq = np.zeros(n + 1, dtype=np.int32)
    docs = np.full(n + 1, -1, dtype=np.int32)
    for c in prange(chunks):
        begin = c * chunk_tokens
        doc = np.searchsorted(offsets, begin, side="right") - 1  # the document of the chunk's first position
        out = bounds[c]
        for i in range(begin, min(n, begin + chunk_tokens)):
            while i >= offsets[doc + 1]:
                doc += 1
            if keep[i]:
                seq[out], docs[out] = ids[i], doc
                out += 1
    return seq, docs, bounds


@njit(inline="always")
def mark_row(seen, shard, row, marked, count):  # pragma: no cover - compiled
    """seen[shard, row] = 1 and row listed at marked[count] if shard `shard` had not met it yet;
    returns the rows listed (`sequential._mark`)."""
    if seen[shard, row] != 0:
        return count
    seen[shard, row] = 1
    marked[count] = row
    return count + 1


@njit(cache=True, nogil=True)
def step_rows(bounds, order, first_chunk, chunks):  # pragma: no cover - compiled
    """(chunks+1,) the first row of each of a step's chunks order[first_chunk : first_chunk + chunks]
    (one row a kept token, chunk after chunk), the last entry the step's rows. A range or a chunk
    outside the block is refused (the kernels index without bounds checks)."""
    if first_chunk < 0 or chunks < 0 or first_chunk + chunks > len(order):
        raise ValueError("step_rows: the step's chunks order[first_chunk : first_chunk + chunks] must lie within "
                         "the block's order of chunks")
    starts = np.empty(chunks + 1, dtype=np.int64)
    starts[0] = 0
    for c in range(chunks):
        chunk = order[first_chunk + c]
        if chunk < 0 or chunk >= len(bounds) - 1:
            raise ValueError("step_rows: the order names a chunk the block does not have")
        starts[c + 1] = starts[c] + bounds[chunk + 1] - bounds[chunk]
    return starts


@njit(inline="always")
def draw_rows(seq, docs, bounds, order, first_chunk, starts, begin, end, window_key, noise_key, window, shrink,
              negatives, threshold, alias, paths, path_labels, contexts, targets, labels, first_row, marks, shard,
              mark):  # pragma: no cover - compiled
    """Draws rows begin..end-1 of a step (`step_rows`), as `device_sampling.chunk_examples` draws them,
    into contexts[r - first_row], targets[r - first_row] and labels[r - first_row] (see `chunk_windows`).
    With `mark`, marks = (seen_in, seen_out, marked_in, marked_out) as `sequential._mark` fills
    them: seen_in[shard, w] = 1 for each context word w and seen_out[shard, t] = 1 for each target
    t, each row listed in marked_in or marked_out the first time (`sequential.sequential_chunks`).
    Returns the windows with a context word, their (center, context word) pairs, and the rows
    listed in marked_in and in marked_out."""
    seen_in, seen_out, marked_in, marked_out = marks
    windows = pairs = listed_in = listed_out = 0
    if begin >= end:  # nothing to draw (`begin` may be past the step's last chunk)
        return windows, pairs, listed_in, listed_out
    count = bounds[len(bounds) - 1]  # the block's kept tokens
    vocab, width, t_max = len(threshold), 2 * window, targets.shape[1]
    at = np.searchsorted(starts, begin, side="right") - 1  # the chunk of row `begin`, and its kept position
    i = bounds[order[first_chunk + at]] + begin - starts[at]
    for r in range(begin, end):
        while r >= starts[at + 1]:
            at += 1
            i = bounds[order[first_chunk + at]]
        row = r - first_row
        center, doc = seq[i], docs[i]
        found = 0
        radius = 1 + _below(_draw(window_key, i), window) if shrink else window
        for s in range(width):  # no branch: a window's slots are decided at once
            offset = s - window + (s >= window)  # -W..-1, 1..W
            p = min(max(i + offset, 0), count - 1)
            inside = (abs(offset) <= radius) & (p == i + offset) & (docs[p] == doc)
            contexts[row, s] = seq[p] if inside else -1
            found += inside
            if mark and inside:
                listed_in = mark_row(seen_in, shard, seq[p], marked_in, listed_in)
        pairs += found
        windows += found > 0
        if negatives > 0:
            targets[row, 0], labels[row, 0] = center, 1.0
            for k in range(negatives):
                bits = _draw(noise_key, i * negatives + k)
                slot = _below(bits, vocab)
                targets[row, 1 + k] = slot if _unit(_mix32(bits)) < threshold[slot] else alias[slot]
                labels[row, 1 + k] = 0.0
        else:
            for j in range(t_max):
                targets[row, j], labels[row, j] = paths[center, j], path_labels[center, j]
        if mark:
            for j in range(t_max):
                if targets[row, j] >= 0:
                    listed_out = mark_row(seen_out, shard, targets[row, j], marked_out, listed_out)
        i += 1
    return windows, pairs, listed_in, listed_out


@njit(**_jit())
def chunk_windows(seq, docs, bounds, order, first_chunk, chunks, window_key, noise_key, window, shrink, negatives,
                  threshold, alias, paths, path_labels, contexts, targets, labels):  # pragma: no cover - compiled
    """The windows of chunks order[first_chunk : first_chunk + chunks] of a block (`subsample_block`),
    one per kept token, chunk after chunk, as `device_sampling.chunk_examples` draws them: written
    to contexts (B, 2W) int64 (offsets -W..-1, 1..W; -1 where no context word is), targets (B, T)
    int64 and labels (B, T) float32, B the chunks' kept tokens. Negative sampling (negatives K > 0):
    the center, label 1, then K noise words from the alias table (threshold, alias), label 0.
    Hierarchical softmax (K = 0): the center's path in paths (V, T) (-1 past its end), labels
    path_labels (V, T). Returns B, the windows with a context word, and their (center, context
    word) pairs. `sequential.sequential_chunks` draws the same rows piece by piece as it trains."""
    starts = step_rows(bounds, order, first_chunk, chunks)
    if len(contexts) < starts[chunks] or len(targets) < starts[chunks] or len(labels) < starts[chunks]:
        raise ValueError("chunk_windows: contexts, targets and labels need a row for each of the chunks' kept tokens")
    no_seen, no_rows = np.zeros((0, 0), dtype=np.uint8), np.zeros(0, dtype=np.int64)
    found = np.zeros((chunks, 2), dtype=np.int64)
    for c in prange(chunks):
        found[c, 0], found[c, 1], _, _ = draw_rows(
            seq, docs, bounds, order, first_chunk, starts, starts[c], starts[c + 1], window_key, noise_key, window,
            shrink, negatives, threshold, alias, paths, path_labels, contexts, targets, labels, 0,
            (no_seen, no_seen, no_rows, no_rows), 0, False)
    return starts[chunks], found[:, 0].sum(), found[:, 1].sum()
