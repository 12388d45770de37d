"""SGNS's GPU kernel emulated on the CPU with many programs in flight: what concurrent updates do to
the vectors, measured without a GPU.

On a GPU the kernel (`sgns_triton`) runs a few hundred programs at once, each walking its chunk's
centers in order and adding its window's update to rows the others share; a row one program reads
may be moved by others before that program's own update lands. Here `in_flight` programs advance
in lockstep, one center each per tick: every window of a tick is scored against the rows as the
previous tick left them, then all the tick's updates are added, as the kernel's atomic adds add
them. A program's slot takes the launch's next chunk once its own is done. With one program in
flight this is the kernel as Triton's interpreter runs it, program after program (tested); with as
many as a GPU holds at once, each window reads rows one window stale for every other program, about
what that GPU's scheduling gives. The windows and noise words are the kernel's draws
(`chunk_windows.chunk_windows`), the update its update, window by window: the damped rule
`lr·G/(1+lr·H)` (G and H summed over a row's repeats within the window) or plain SGD's `lr·G`; or,
`sequential`, word2vec's order within a window (the sequential CPU kernel's): each context word's
decisions move the center's and noise words' rows before the next reads them.

`scripts/sgns_kernel_bench.py`'s `lockstep=N` variants train with it.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from w2v.kernels import SGNS_WINDOW_RULES
from w2v.kernels.chunk_windows import chunk_windows, step_rows
from w2v.kernels.cpu import _jit

_TINY = np.float32(1.1754943508222875e-38)  # the kernel's floor under a decision's probability before its log


@njit(inline="always", fastmath=True)
def _dot(a, b):  # pragma: no cover - compiled
    total = np.float32(0.0)
    for k in range(len(a)):
        total += a[k] * b[k]
    return total


@njit(inline="always", fastmath=True)
def _add(row, delta):  # pragma: no cover - compiled
    for k in range(len(row)):
        row[k] += delta[k]


@njit(inline="always", fastmath=True)
def _scale_steps(rows, curvature, deltas, lr, damped):  # pragma: no cover - compiled
    """Turns each slot's gradient in deltas into its step, -lr·G/(1+lr·H) (H the curvature summed over the
    slots of the same row) or plain SGD's -lr·G; slots whose row is -1 are left alone."""
    for j in range(len(rows)):
        if rows[j] < 0:
            continue
        total = np.float32(0.0)
        if damped:
            for other in range(len(rows)):
                if rows[other] == rows[j]:
                    total += curvature[other]
        deltas[j, :] *= -lr / (np.float32(1.0) + lr * total)


@njit(inline="always", fastmath=True)
def _window_update(w_in, w_out, ctx, tgt, lr, damped, d_in, d_out, coeff, curv_ctx, curv_tgt,
                   sq_out):  # pragma: no cover - compiled
    """One window of the kernel, read from the rows as they are now: writes its update of each
    context row (2W, D) to d_in and of each target row (T, D) to d_out (the center, then K noise
    words); returns the window's summed loss and its pairs. ctx (2W,) is -1 in slots outside it."""
    width, t_max = len(ctx), len(tgt)
    for t in range(t_max):
        sq_out[t] = _dot(w_out[tgt[t]], w_out[tgt[t]])
        curv_tgt[t] = 0.0
        d_out[t, :] = 0.0
    loss, pairs = 0.0, 0
    for c in range(width):
        curv_ctx[c] = 0.0
        d_in[c, :] = 0.0
        if ctx[c] < 0:
            continue
        pairs += 1
        v = w_in[ctx[c]]
        sq_in = _dot(v, v)
        for t in range(t_max):
            prob = np.float32(1.0) / (np.float32(1.0) + np.exp(-_dot(v, w_out[tgt[t]])))  # σ(s)
            coeff[c, t] = prob - np.float32(t == 0)  # d loss / d score: the center is label 1
            likely = prob if t == 0 else np.float32(1.0) - prob
            loss -= np.log(max(likely, _TINY))
            slope = prob * (np.float32(1.0) - prob)  # σ'(s)
            curv_ctx[c] += slope * sq_out[t]
            curv_tgt[t] += slope * sq_in
    for c in range(width):  # the gradients, all from the rows read above
        if ctx[c] < 0:
            continue
        v = w_in[ctx[c]]
        for t in range(t_max):
            u, g = w_out[tgt[t]], coeff[c, t]
            for k in range(len(v)):
                d_in[c, k] += g * u[k]
                d_out[t, k] += g * v[k]
    _scale_steps(ctx, curv_ctx, d_in, lr, damped)
    _scale_steps(tgt, curv_tgt, d_out, lr, damped)
    return loss, pairs


@njit(inline="always")
def _home(rows, j):  # pragma: no cover - compiled
    """The first slot of `rows` that holds rows[j]'s row: where a window keeps that row's change."""
    for other in range(j):
        if rows[other] == rows[j]:
            return other
    return j


@njit(inline="always", fastmath=True)
def _sequential_update(w_in, w_out, ctx, tgt, lr, d_in, d_out, neu):  # pragma: no cover - compiled
    """One window in word2vec's order, as the sequential CPU kernel trains it: each context word in turn
    scores the center and the noise words, moving their rows at once (the next context word reads them
    moved), and its own row after its decisions; plain SGD, lr·g. Reads the rows as they are now plus
    the window's own changes, which it writes to d_in and d_out (a row repeated in the window keeps its
    change in its first slot, the others zero); returns the window's summed loss and its pairs."""
    d_in[:, :] = 0.0
    d_out[:, :] = 0.0
    loss, pairs = 0.0, 0
    for c in range(len(ctx)):
        if ctx[c] < 0:
            continue
        pairs += 1
        v, dv = w_in[ctx[c]], d_in[_home(ctx, c)]
        neu[:] = 0.0
        for t in range(len(tgt)):
            u, du = w_out[tgt[t]], d_out[_home(tgt, t)]
            score = np.float32(0.0)
            for k in range(len(v)):
                score += (v[k] + dv[k]) * (u[k] + du[k])
            prob = np.float32(1.0) / (np.float32(1.0) + np.exp(-score))
            likely = prob if t == 0 else np.float32(1.0) - prob
            loss -= np.log(max(likely, _TINY))
            g = (np.float32(t == 0) - prob) * lr
            for k in range(len(v)):
                neu[k] += g * (u[k] + du[k])
                du[k] += g * (v[k] + dv[k])
        for k in range(len(v)):
            dv[k] += neu[k]
    return loss, pairs


@njit(inline="always")
def _train_slot(w_in, w_out, contexts, targets, r, lr, rule, room, s):  # pragma: no cover - compiled
    """Slot s's window, row r of the step, into its part of `room` (see `_train_ticks`)."""
    d_in, d_out, coeff, curv_ctx, curv_tgt, sq_out, neu = room
    if rule == 2:
        return _sequential_update(w_in, w_out, contexts[r], targets[r], lr, d_in[s], d_out[s], neu[s])
    return _window_update(w_in, w_out, contexts[r], targets[r], lr, rule == 1, d_in[s], d_out[s], coeff[s],
                          curv_ctx[s], curv_tgt[s], sq_out[s])


@njit(cache=True, nogil=True)
def lockstep_schedule(starts, in_flight):  # pragma: no cover - compiled
    """(ticks, slots) int64: the step's row that each of `slots` = min(in_flight, programs) slots
    trains at each tick (-1: idle), program p owning rows starts[p]..starts[p+1]-1 (`step_rows`).
    Programs start in order, each in the first slot left free: as a GPU hands a launch's programs to
    its multiprocessors. A chunk without kept tokens takes no tick."""
    programs = len(starts) - 1
    slots = max(1, min(in_flight, programs))
    program = np.full(slots, -1, dtype=np.int64)
    row = np.zeros(slots, dtype=np.int64)
    upcoming = 0
    ticks = []
    while True:
        busy = False
        for s in range(slots):
            while program[s] == -1 or row[s] >= starts[program[s] + 1]:
                if upcoming == programs:
                    program[s] = -2  # nothing left for this slot
                    break
                program[s], row[s] = upcoming, starts[upcoming]
                upcoming += 1
            busy |= program[s] >= 0
        if not busy:
            break
        tick = np.full(slots, -1, dtype=np.int64)
        for s in range(slots):
            if program[s] >= 0:
                tick[s] = row[s]
                row[s] += 1
        ticks.append(tick)
    out = np.full((len(ticks), slots), -1, dtype=np.int64)
    for k in range(len(ticks)):
        out[k] = ticks[k]
    return out


@njit(**_jit())
def _train_ticks(w_in, w_out, contexts, targets, schedule, program_of, n_programs, lr_begin, lr_end,
                 rule):  # pragma: no cover - compiled
    ticks, slots = schedule.shape
    width, t_max, dim = contexts.shape[1], targets.shape[1], w_in.shape[1]
    # each slot's window changes (d_in, d_out) and the scratch its update needs
    room = (np.zeros((slots, width, dim), dtype=np.float32), np.zeros((slots, t_max, dim), dtype=np.float32),
            np.zeros((slots, width, t_max), dtype=np.float32), np.zeros((slots, width), dtype=np.float32),
            np.zeros((slots, t_max), dtype=np.float32), np.zeros((slots, t_max), dtype=np.float32),
            np.zeros((slots, dim), dtype=np.float32))
    d_in, d_out = room[0], room[1]
    loss = np.zeros(slots, dtype=np.float64)
    pairs = np.zeros(slots, dtype=np.int64)
    rates = lr_begin + (lr_end - lr_begin) * program_of.astype(np.float64) / n_programs  # (rows,) as the kernel's
    for k in range(ticks):
        for s in prange(slots):
            r = schedule[k, s]
            if r >= 0:
                window_loss, window_pairs = _train_slot(w_in, w_out, contexts, targets, r, np.float32(rates[r]),
                                                        rule, room, s)
                loss[s] += window_loss
                pairs[s] += window_pairs
        for s in range(slots):  # the tick's updates land
            r = schedule[k, s]
            if r < 0:
                continue
            for c in range(width):
                if contexts[r, c] >= 0:
                    _add(w_in[contexts[r, c]], d_in[s, c])
            for t in range(t_max):
                _add(w_out[targets[r, t]], d_out[s, t])
    return loss.sum(), pairs.sum()


def lockstep_chunks(w_in: np.ndarray, w_out: np.ndarray, seq: np.ndarray, docs: np.ndarray, bounds: np.ndarray,
                    order: np.ndarray, threshold: np.ndarray, alias: np.ndarray, window_key: int, noise_key: int,
                    first: int, n_programs: int, lr_begin: float, lr_end: float, window: int, shrink: bool,
                    negatives: int, rule: str, in_flight: int) -> tuple[float, int]:
    """Trains chunks order[first : first + n_programs] of a block as `sgns_triton.sgns_chunks` would
    with `in_flight` programs running at once (see the module's docstring), on w_in and w_out (V, D)
    float32 in place. The block's arrays are `DeviceBlock`'s, as NumPy arrays; threshold and alias
    the noise words' alias table; `rule` a window's update, one of `SGNS_WINDOW_RULES`. Returns the
    summed loss and the (center, context) pairs."""
    if rule not in SGNS_WINDOW_RULES:
        raise ValueError(f"lockstep_chunks: rule={rule!r} is unknown; use one of {', '.join(SGNS_WINDOW_RULES)}")
    if in_flight < 1:
        raise ValueError(f"lockstep_chunks: in_flight={in_flight} must be at least 1 (programs running at once)")
    if negatives < 1:
        raise ValueError(f"lockstep_chunks: negatives={negatives} must be at least 1 (the kernel trains SGNS)")
    for name, a in (("w_in", w_in), ("w_out", w_out)):
        if a.dtype != np.float32 or a.ndim != 2 or not a.flags.c_contiguous:
            raise ValueError(f"lockstep_chunks: {name} must be a C-contiguous 2-D float32 array")
    starts = step_rows(bounds, order, first, n_programs)  # (programs+1,) each program's rows
    rows = int(starts[-1])
    contexts = np.empty((rows, 2 * window), dtype=np.int64)
    targets = np.empty((rows, 1 + negatives), dtype=np.int64)
    labels = np.empty((rows, 1 + negatives), dtype=np.float32)
    no_paths = np.zeros((0, 1 + negatives), dtype=np.int64)
    chunk_windows(seq, docs, bounds, order, first, n_programs, window_key, noise_key, window, shrink, negatives,
                  threshold, alias, no_paths, no_paths.astype(np.float32), contexts, targets, labels)
    program_of = np.repeat(np.arange(n_programs, dtype=np.int64), np.diff(starts))  # (rows,)
    schedule = lockstep_schedule(starts, in_flight)
    loss, pairs = _train_ticks(w_in, w_out, contexts, targets, schedule, program_of, n_programs, lr_begin, lr_end,
                               SGNS_WINDOW_RULES[rule])
    return float(loss), int(pairs)
