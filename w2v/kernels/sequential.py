"""word2vec's own SGD on the CPU (Numba): example after example, each decision's step taken before
the next one is scored, in shards of a batch that threads train at once.

The damped batch update (`cpu.damped_row_update`) sums a batch's gradients and bounds the step of a
row hit many times. word2vec instead moves the rows at every decision, so a frequent word's later
decisions see its earlier steps. Here a batch's windows are trained in pieces, one after the other;
a piece's windows are cut into `shards` runs of consecutive windows, which threads train at once,
each in window order as word2vec trains (`sequential_sgd`). A row that one shard alone touches is
trained in place. A row that several shards touch is trained on a copy in each of them, and when
the piece is done the copies' changes are added to the weights, shard after shard
(`_merge_copies`; a data-parallel process returns them instead, for `add_row_deltas` once every
process's are gathered). Within a piece a shard does not see the other shards' steps on such a row
(as word2vec's threads may not see each other's), but no step is lost, and the result depends on
the number of shards and the piece's length, never on the number of threads or their timing
(unless `lock_free`, Hogwild!: the shards then train every row in place, as word2vec's threads
do, without the copies' cost and no longer reproducibly). One call trains several pieces: the
step's fixed costs (the training loop's, the batch's) are paid once for all of them. While a shard
trains a window, the rows of the window PREFETCH_AHEAD after it are already loading
(`prefetch.prefetch_row`).

Arguments as the batched kernels (`cpu.skipgram_decision_gradients`): contexts (B, C) with -1 in
empty slots; targets (B, T), the window's output rows (negative sampling: center, then noise words;
hierarchical softmax: the center's path, padded with -1); labels (B, T). `sequential_chunks` trains
the same way on a step of a corpus block's chunks, its shards drawing each piece's windows
themselves (`chunk_windows`).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from w2v.kernels.chunk_windows import draw_rows, mark_row, step_rows
from w2v.kernels.cpu import _jit, _owner, _zero, _pair_starts, _targets_used
from w2v.kernels.prefetch import prefetch_row

# Windows ahead whose rows a shard prefetches (`prefetch`): one or two hide most of the cache misses.
PREFETCH_AHEAD = 2

# The helpers off the hot path are inlined by LLVM (forceinline), those on it in Numba's IR
# (inline="always"): each IR inlining costs Numba's parallel-loop passes seconds of compile time,
# while the decisions' code, inlined in the IR of the prange loop, gets that loop's no-alias
# guarantee on its arrays, which LLVM needs to vectorize it (LLVM-inlined, it runs slower).


@njit(forceinline=True)
def _shared(seen, shard, row):  # pragma: no cover - compiled
    """Whether a shard other than `shard` touches `row` (seen (S, V): 1 where shard s touches row r)."""
    for other in range(seen.shape[0]):
        if other != shard and seen[other, row] != 0:
            return True
    return False


@njit(forceinline=True)
def _mark(seen, windows, begin, end, shard, marked):  # pragma: no cover - compiled
    """seen[shard, r] = 1 for every row r of windows[begin:end] (-1: none), each listed in marked[]
    in the order first met. Returns how many."""
    count = 0
    for b in range(begin, end):
        for k in range(windows.shape[1]):
            if windows[b, k] >= 0:
                count = mark_row(seen, shard, windows[b, k], marked, count)
    return count


@njit(forceinline=True)
def _copy_shared(seen, slots, marked, count, shard, all_shared, weight, rows, copies):  # pragma: no cover - compiled
    """Gives each of the `count` rows marked[] by shard `shard` that other shards touch too (every
    one with `all_shared`) a copy of its own: rows[i] and copies[i] (from `weight`), slots[shard,
    row] = i, and seen[shard, row] = 2. Returns how many. Walking the shard's distinct rows, not
    its windows' every slot, spares a lookup per repeat."""
    used = 0
    for i in range(count):
        row = marked[i]
        if all_shared or _shared(seen, shard, row):
            seen[shard, row] = 2  # other shards read only whether it is 0
            slots[shard, row] = used
            rows[used] = row
            copy, source = copies[used], weight[row]
            for d in range(copy.shape[0]):
                copy[d] = source[d]
            used += 1
    return used


@njit(forceinline=True)
def _copies_to_changes(copies, rows, weight, used):  # pragma: no cover - compiled
    """copies[i] -= weight[rows[i]] for the first `used` entries: a trained copy becomes its row's change."""
    for i in range(used):
        change, source = copies[i], weight[rows[i]]
        for d in range(change.shape[0]):
            change[d] -= source[d]


@njit(forceinline=True)
def _prefetch_rows(weight, copies, windows, b, seen, slots, shard):  # pragma: no cover - compiled
    """Prefetches the rows of windows[b] (-1: none) where shard `shard` trains them: its copy of a
    row that it copied, else the row itself."""
    for k in range(windows.shape[1]):
        row = windows[b, k]
        if row >= 0:
            if seen[shard, row] == 2:
                prefetch_row(copies, slots[shard, row])
            else:
                prefetch_row(weight, row)


# -log σ(s) is clamped at -log(float32's smallest normal), as `losses.decision_gradients` clamps it.
_MAX_LOSS = float(-np.log(np.finfo(np.float32).tiny))
# A running product of the decisions' 1/p is turned into its log before it could overflow float64.
_FLUSH_PRODUCT = 1e250


@njit(inline="always")
def _row(weight, copies, rows, slots, j):  # pragma: no cover - compiled
    """Row rows[j] as a shard trains it: its copy copies[slots[j]] where slots[j] >= 0, else weight[rows[j]]."""
    return copies[slots[j]] if slots[j] >= 0 else weight[rows[j]]


@njit(inline="always")
def _distinct_run(rows, start):  # pragma: no cover - compiled
    """The end of the run of rows[start:] in which no row appears twice."""
    for end in range(start + 1, len(rows)):
        for i in range(start, end):
            if rows[i] == rows[end]:
                return end
    return len(rows)


@njit(inline="always", fastmath=True)
def _decision_step(score, label, lr):  # pragma: no cover - compiled
    """One decision's step coefficient lr·(label - σ(s)) and q = 1/p(label) = 1 + exp(±s), from one
    exp: for label 1, 1 - σ(s) = e/q with e = exp(-s); for label 0, σ(s) = e/q with e = exp(s). The
    exponent is clamped so that log q never exceeds _MAX_LOSS."""
    x = -score if label > 0.5 else score
    e = np.exp(min(x, np.float32(_MAX_LOSS)))
    q = np.float32(1.0) + e
    step = np.float32(lr) * e / q
    return (step if label > 0.5 else -step), q


@njit(inline="always", fastmath=True)
def _decide_and_step(v, neu, w_out, out_copies, targets, slots, labels, lr, steps):  # pragma: no cover - compiled
    """word2vec's decisions of input vector v against output rows targets[j], in order, each row
    read from and moved by `_row`: each moves by lr·(label - σ(s))·v at once, and neu (D,) gathers
    v's step lr·Σ_j (label_j - σ(s_j))·u_j, which the caller adds to the input row(s). Returns the
    summed loss, -log σ(s) for label 1 and -log(1 - σ(s)) for label 0, clamped as
    `losses.decision_gradients`, taken as one log of the product of the decisions' 1/p.

    Within a run of targets where no row appears twice, no decision moves a row that a later one
    reads (v moves only after them all), so the run's rows are scored first, three a pass, and
    then moved three a pass: the same steps as one decision after the other, with fewer passes
    over v and neu. A row that appears again starts the next run, which sees its first step.
    steps (T,) is scratch."""
    dim, n = v.shape[0], len(targets)
    product, loss = 1.0, 0.0  # float64: the product of up to T values of 1/p, each at most e^_MAX_LOSS
    start = 0
    while start < n:
        end = _distinct_run(targets, start)
        j = start
        while j + 2 < end:
            u0, u1, u2 = (_row(w_out, out_copies, targets, slots, j), _row(w_out, out_copies, targets, slots, j + 1),
                          _row(w_out, out_copies, targets, slots, j + 2))
            s0 = s1 = s2 = np.float32(0.0)
            for d in range(dim):
                s0 += v[d] * u0[d]
                s1 += v[d] * u1[d]
                s2 += v[d] * u2[d]
            steps[j], steps[j + 1], steps[j + 2] = s0, s1, s2
            j += 3
        for j in range(j, end):
            u0, s0 = _row(w_out, out_copies, targets, slots, j), np.float32(0.0)
            for d in range(dim):
                s0 += v[d] * u0[d]
            steps[j] = s0
        for j in range(start, end):  # scores become steps
            steps[j], q = _decision_step(steps[j], labels[j], lr)
            product *= q
            if product > _FLUSH_PRODUCT:
                loss, product = loss + np.log(product), 1.0
        j = start
        while j + 2 < end:
            u0, u1, u2 = (_row(w_out, out_copies, targets, slots, j), _row(w_out, out_copies, targets, slots, j + 1),
                          _row(w_out, out_copies, targets, slots, j + 2))
            k0, k1, k2 = steps[j], steps[j + 1], steps[j + 2]
            for d in range(dim):
                neu[d] += k0 * u0[d] + k1 * u1[d] + k2 * u2[d]
                u0[d] += k0 * v[d]
                u1[d] += k1 * v[d]
                u2[d] += k2 * v[d]
            j += 3
        for j in range(j, end):
            u0, k0 = _row(w_out, out_copies, targets, slots, j), steps[j]
            for d in range(dim):
                neu[d] += k0 * u0[d]
                u0[d] += k0 * v[d]
        start = end
    return np.float32(loss + np.log(product))


@njit(forceinline=True)
def _piece_room(shards, w_in, w_out, most_in, most_out):  # pragma: no cover - compiled
    """What the shards of a piece work in, for pieces of at most `most_in` context words and
    `most_out` targets: seen_in, seen_out (S, V) uint8, 1 where a shard touches a row and 2 where
    it copies it; slots_in, slots_out (S, V) each copied row's entry (read only where seen is 2);
    the copies' rows and values, in_rows (most_in,), in_copies (most_in, D), out_rows (most_out,),
    out_copies (most_out, D) (unused rows -1); each shard's first entry and entries used, in_bases,
    out_bases, in_used, out_used (S,); and `marked`, the rows each shard marks, in the order first
    met, with their counts: input (S, most_in), (S,), output (S, most_out), (S,)."""
    dim = w_in.shape[1]
    marked = (np.empty((shards, most_in), dtype=np.int64), np.zeros(shards, dtype=np.int64),
              np.empty((shards, most_out), dtype=np.int64), np.zeros(shards, dtype=np.int64))
    return (np.zeros((shards, w_in.shape[0]), dtype=np.uint8), np.zeros((shards, w_out.shape[0]), dtype=np.uint8),
            np.empty((shards, w_in.shape[0]), dtype=np.int64), np.empty((shards, w_out.shape[0]), dtype=np.int64),
            np.full(most_in, -1, dtype=np.int64), np.empty((most_in, dim), dtype=np.float32),
            np.full(most_out, -1, dtype=np.int64), np.empty((most_out, dim), dtype=np.float32),
            np.empty(shards, dtype=np.int64), np.empty(shards, dtype=np.int64),
            np.zeros(shards, dtype=np.int64), np.zeros(shards, dtype=np.int64), marked)


@njit(forceinline=True)
def _shard_windows(lo, hi, s, shards):  # pragma: no cover - compiled
    """The windows begin..end-1 of shard s of `shards` in the piece of windows lo..hi-1."""
    return lo + s * (hi - lo) // shards, lo + (s + 1) * (hi - lo) // shards


@njit(forceinline=True)
def _copied_before(seen, shard, row):  # pragma: no cover - compiled
    """Whether a shard before `shard` trained `row` on a copy (seen (S, V): 2 where it did)."""
    for other in range(shard):
        if seen[other, row] == 2:
            return True
    return False


@njit(**_jit())
def sequential_sgd(w_in, w_out, contexts, targets, labels, lr_begin, lr_end, shards, sync, mean_context,
                   all_shared, lock_free, threads):  # pragma: no cover - compiled
    """word2vec's SGD over a batch in `shards` runs of windows, trained at once.

    Skip-gram (mean_context False): each context word's input row against the window's targets, in
    turn. CBOW: the mean of the window's context rows against its targets; every context row then
    takes the mean's whole step, as in word2vec. A row that one shard alone touches is trained in
    place; a row that several shards touch is trained on each shard's copy, and the copies' changes
    are added to the weights, shard after shard, once the shards are done.

    The batch is trained in pieces of at most `sync` windows, one after the other, each cut into
    the shards and merged before the next starts: one call trains what would otherwise take several
    steps, each piece at its share of the rate falling linearly from lr_begin towards lr_end.

    With `all_shared` (a data-parallel process must send all its changes) every row is trained on
    a copy, the batch must be one piece (sync >= B), and the changes are returned instead of added,
    for `add_row_deltas`: in_rows (P,), in_deltas (P, D), out_rows (B*T,), out_deltas (B*T, D),
    entry i changing row rows[i] by deltas[i], unused entries with row -1. Otherwise these arrays
    are empty. Also returned: each window's summed loss (B,).

    With `lock_free` (Hogwild!, as word2vec's and gensim's threads train) no row is copied: the
    shards train every row in place at once, and a row two shards touch takes their steps in
    whatever order the threads make them, or loses one when two land together. No copy or merge is
    paid for, but the result depends on the threads' timing.
    """
    n, c_max = contexts.shape
    t_max = targets.shape[1]
    pieces = max(1, -(-n // sync))
    if all_shared and pieces > 1:
        raise ValueError("sequential_sgd: all_shared returns one piece's changes; pass sync >= len(contexts)")
    if all_shared and lock_free:
        raise ValueError("sequential_sgd: lock_free trains every row in place, all_shared returns every change")
    first = _pair_starts(contexts)  # (B+1,) each window's first valid context word
    most_pairs, most_windows = 0, 0  # the copies' room: one per context word and per target of a piece at most
    for p in range(pieces):
        lo, hi = p * n // pieces, (p + 1) * n // pieces
        most_pairs, most_windows = max(most_pairs, first[hi] - first[lo]), max(most_windows, hi - lo)
    (seen_in, seen_out, slots_in, slots_out, in_rows, in_copies, out_rows, out_copies, in_bases, out_bases, in_used,
     out_used, marked) = _piece_room(shards, w_in, w_out, most_pairs, most_windows * t_max)
    losses = np.zeros(n, dtype=np.float32)
    for p in range(pieces):
        lo, hi = p * n // pieces, (p + 1) * n // pieces  # the piece's windows
        lr = np.float32(lr_begin + (lr_end - lr_begin) * (p / pieces))
        if p > 0:
            _zero(seen_in.reshape(-1))
            _zero(seen_out.reshape(-1))
        if not lock_free:  # lock-free, seen stays 0: no row is copied, all are trained in place
            for s in prange(shards):
                begin, end = _shard_windows(lo, hi, s, shards)
                marked[1][s] = _mark(seen_in, contexts, begin, end, s, marked[0][s])
                marked[3][s] = _mark(seen_out, targets, begin, end, s, marked[2][s])
        for s in prange(shards):
            begin, end = _shard_windows(lo, hi, s, shards)
            _copy_and_train(w_in, w_out, contexts, targets, labels, lr, first, lo, begin, end, s, seen_in, seen_out,
                            slots_in, slots_out, in_rows, in_copies, out_rows, out_copies, in_bases, out_bases, in_used,
                            out_used, all_shared, lock_free, mean_context, losses, marked)
        if not all_shared and not lock_free:
            for part in prange(threads):
                _merge_copies(w_in, in_copies, in_rows, in_bases, in_used, seen_in, slots_in, part, threads)
                _merge_copies(w_out, out_copies, out_rows, out_bases, out_used, seen_out, slots_out, part, threads)
    if all_shared:
        return in_rows, in_copies, out_rows, out_copies, losses
    return in_rows[:0], in_copies[:0], out_rows[:0], out_copies[:0], losses


@njit(**_jit())
def sequential_chunks(w_in, w_out, seq, docs, bounds, order, first_chunk, chunks, window_key, noise_key, window, shrink,
                      negatives, threshold, alias, paths, path_labels, lr_begin, lr_end, shards, sync, mean_context,
                      lock_free, threads):  # pragma: no cover - compiled
    """`sequential_sgd` on the windows of a step's chunks of a corpus block, drawn piece by piece by
    the shards' own threads (`chunk_windows.draw_rows`, which marks the rows each shard touches as
    it draws them). The same result as drawing the step's windows (`chunk_windows.chunk_windows`)
    and training them with `sequential_sgd` (without `all_shared`), with no array of the whole
    step's windows and no pass of its own to mark their rows. Arguments as those two functions';
    returns the summed loss, the windows with a context word and their (center, context word) pairs."""
    starts = step_rows(bounds, order, first_chunk, chunks)
    n = starts[chunks]
    c_max, t_max = 2 * window, 1 + negatives if negatives > 0 else paths.shape[1]
    pieces = max(1, -(-n // sync))
    most = -(-n // pieces)  # windows of the largest piece
    contexts = np.empty((most, c_max), dtype=np.int64)  # (P, 2W) a piece's windows, reused by the next
    targets, labels = np.empty((most, t_max), dtype=np.int64), np.empty((most, t_max), dtype=np.float32)
    (seen_in, seen_out, slots_in, slots_out, in_rows, in_copies, out_rows, out_copies, in_bases, out_bases, in_used,
     out_used, marked) = _piece_room(shards, w_in, w_out, most * c_max, most * t_max)
    losses = np.zeros(most, dtype=np.float32)
    found = np.zeros((shards, 2), dtype=np.int64)  # each shard's windows with a context word, and pairs
    loss = 0.0
    for p in range(pieces):
        lo, hi = p * n // pieces, (p + 1) * n // pieces  # the piece's windows, drawn to rows 0..hi-lo-1
        lr = np.float32(lr_begin + (lr_end - lr_begin) * (p / pieces))
        if p > 0:
            _zero(seen_in.reshape(-1))
            _zero(seen_out.reshape(-1))
        for s in prange(shards):
            begin, end = _shard_windows(lo, hi, s, shards)
            windows, pairs, marked[1][s], marked[3][s] = draw_rows(
                seq, docs, bounds, order, first_chunk, starts, begin, end, window_key, noise_key, window, shrink,
                negatives, threshold, alias, paths, path_labels, contexts, targets, labels, lo,
                (seen_in, seen_out, marked[0][s], marked[2][s]), s, not lock_free)
            found[s, 0] += windows
            found[s, 1] += pairs
        size = hi - lo
        first = _pair_starts(contexts[:size])
        _zero(losses)
        for s in prange(shards):
            begin, end = _shard_windows(0, size, s, shards)
            _copy_and_train(w_in, w_out, contexts[:size], targets[:size], labels[:size], lr, first, 0, begin, end, s,
                            seen_in, seen_out, slots_in, slots_out, in_rows, in_copies, out_rows, out_copies, in_bases,
                            out_bases, in_used, out_used, False, lock_free, mean_context, losses, marked)
        if not lock_free:
            for part in prange(threads):
                _merge_copies(w_in, in_copies, in_rows, in_bases, in_used, seen_in, slots_in, part, threads)
                _merge_copies(w_out, out_copies, out_rows, out_bases, out_used, seen_out, slots_out, part, threads)
        loss += losses[:size].sum()
    return loss, found[:, 0].sum(), found[:, 1].sum()


@njit(inline="always")
def _copy_and_train(w_in, w_out, contexts, targets, labels, lr, first, lo, begin, end, s, seen_in, seen_out, slots_in,
                    slots_out, in_rows, in_copies, out_rows, out_copies, in_bases, out_bases, in_used, out_used,
                    all_shared, lock_free, mean_context, losses, marked):  # pragma: no cover - compiled
    """Shard s's part of the piece of windows lo..: gives the rows other shards touch too copies of
    its own (unless `lock_free`), from its share of the copies' room, trains windows begin..end-1
    (`_train_shard`), and with `all_shared` turns its copies into their rows' changes. `marked`:
    the rows each shard marked (`_piece_room`)."""
    marked_in, in_count, marked_out, out_count = marked
    t_max = targets.shape[1]
    in_bases[s], out_bases[s] = first[begin] - first[lo], (begin - lo) * t_max  # the shard's entries
    ins, outs = in_copies[in_bases[s]:first[end] - first[lo]], out_copies[out_bases[s]:(end - lo) * t_max]
    if not lock_free:  # else in_used and out_used stay 0
        in_used[s] = _copy_shared(seen_in, slots_in, marked_in[s], in_count[s], s, all_shared, w_in,
                                  in_rows[in_bases[s]:], ins)
        out_used[s] = _copy_shared(seen_out, slots_out, marked_out[s], out_count[s], s, all_shared, w_out,
                                   out_rows[out_bases[s]:], outs)
    _train_shard(w_in, w_out, ins, outs, contexts, targets, labels, lr, first, begin, end, s, seen_in, seen_out,
                 slots_in, slots_out, mean_context, losses)
    if all_shared:
        _copies_to_changes(ins, in_rows[in_bases[s]:], w_in, in_used[s])  # no shard moves a shared row in place
        _copies_to_changes(outs, out_rows[out_bases[s]:], w_out, out_used[s])


@njit(inline="always")
def _train_shard(w_in, w_out, ins, outs, contexts, targets, labels, lr, first, begin, end, s, seen_in, seen_out,
                 slots_in, slots_out, mean_context, losses):  # pragma: no cover - compiled
    """Shard s trains windows begin..end-1 in order, its copied rows on its copies `ins`, `outs`;
    each window's summed loss goes to losses[b]."""
    c_max, t_max, dim = contexts.shape[1], targets.shape[1], w_in.shape[1]
    ctx_rows, ctx_slots = np.empty(c_max, dtype=np.int64), np.empty(c_max, dtype=np.int64)
    tgt_slots, steps = np.empty(t_max, dtype=np.int64), np.empty(t_max, dtype=np.float32)
    neu, hidden = np.empty(dim, dtype=np.float32), np.empty(dim, dtype=np.float32)
    for b in range(begin, end):
        if b + PREFETCH_AHEAD < end:  # the rows of a later window start loading while this one trains
            _prefetch_rows(w_in, ins, contexts, b + PREFETCH_AHEAD, seen_in, slots_in, s)
            _prefetch_rows(w_out, outs, targets, b + PREFETCH_AHEAD, seen_out, slots_out, s)
        t_used = _targets_used(targets[b])
        count = first[b + 1] - first[b]
        if count == 0 or t_used == 0:
            continue
        for j in range(t_used):
            row = targets[b, j]
            tgt_slots[j] = slots_out[s, row] if seen_out[s, row] == 2 else -1
        c = 0
        for k in range(c_max):
            row = contexts[b, k]
            if row >= 0:
                ctx_rows[c] = row
                ctx_slots[c] = slots_in[s, row] if seen_in[s, row] == 2 else -1
                c += 1
        tg, lb = targets[b, :t_used], labels[b, :t_used]
        if mean_context:  # CBOW's one input vector: the mean of the context rows
            _zero(hidden)
            for c in range(count):
                v = _row(w_in, ins, ctx_rows, ctx_slots, c)
                for d in range(dim):
                    hidden[d] += v[d]
            inv = np.float32(1.0) / np.float32(count)
            for d in range(dim):
                hidden[d] *= inv
        loss = np.float32(0.0)
        for i in range(1 if mean_context else count):  # one call site: the step is compiled once
            v = hidden if mean_context else _row(w_in, ins, ctx_rows, ctx_slots, i)
            _zero(neu)
            loss += _decide_and_step(v, neu, w_out, outs, tg, tgt_slots, lb, lr, steps)
            for c in range(count if mean_context else 1):  # every context row takes the mean's whole step
                row = _row(w_in, ins, ctx_rows, ctx_slots, c) if mean_context else v
                for d in range(dim):
                    row[d] += neu[d]
        losses[b] = loss


@njit(forceinline=True)
def _merge_copies(weight, copies, rows, bases, used, seen, slots, part, parts):  # pragma: no cover - compiled
    """Adds the shards' changes to the rows they trained on copies, shard after shard: row r takes
    copy - weight[r] of each shard's copy, all against the row as the piece found it. Thread `part`
    of `parts` merges the rows that hash to it (`_owner`): any count gives the same result."""
    dim = weight.shape[1]
    before = np.empty(dim, dtype=np.float32)
    for s in range(len(used)):
        for i in range(used[s]):
            row = rows[bases[s] + i]
            if _owner(row, parts) != part or _copied_before(seen, s, row):  # merged by its first shard's entry
                continue
            w = weight[row]
            for d in range(dim):
                before[d] = w[d]
            for other in range(s, len(used)):
                if seen[other, row] == 2:
                    copy = copies[bases[other] + slots[other, row]]
                    for d in range(dim):
                        w[d] += copy[d] - before[d]


@njit(**_jit())
def add_row_deltas(weight, rows, deltas, parts):  # pragma: no cover - compiled
    """weight[rows[i]] += deltas[i] for every entry whose row is not -1, in place, each row's
    changes added in entry order; weight (V, D) float32, rows (R,) int64, deltas (R, D). `parts` the
    number of threads, each adding the rows that hash to it (any count gives the same result)."""
    dim = weight.shape[1]
    for part in prange(parts):
        for i in range(len(rows)):
            r = rows[i]
            if r >= 0 and _owner(r, parts) == part:
                w, change = weight[r], deltas[i]
                for d in range(dim):
                    w[d] += change[d]
