"""Fused CPU kernels (Numba): the hand-written SGD step of negative sampling and hierarchical softmax,
for Skip-gram and CBOW, the same maths as `losses.decision_gradients` and
`binary_output.damped_row_update` without the intermediate tensors; and DeferredAdam's work on embedding
rows (`adam_catch_up` and `adam_step_rows`, the same maths as `deferred_adam.catch_up_rows` and
`deferred_adam.step_rows`).

The PyTorch version of the step gathers every window's vectors into (B, C, D) copies and runs a
dozen batched operations over them, each one a pass through memory; on a CPU that, not the
arithmetic, bounds its speed. Here each center's window is handled in one pass over the rows it
touches, with the dot products vectorised by LLVM, in parallel over centers, and only the valid
(center, context) pairs get a gradient row.

Every kernel is deterministic whatever the number of threads: the gradients of a center depend on
that center alone, the row update splits the rows (not the examples) between threads, each adding
its rows' updates in example order, and the Adam kernels work on each (distinct) row alone.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange

# fastmath lets LLVM reorder the dot products' sums into SIMD lanes; the results differ from
# PyTorch's in the last bits only. cache=True keeps the compiled code between runs.
def _jit() -> dict:
    """The kernels' Numba options. Only `prange` loops run in parallel: Numba's other parallel
    rewrites (allocations and array expressions as parallel loops) each add seconds of compile
    time and gain nothing here. A new dict for each kernel, as Numba empties the one it is given."""
    parallel = dict.fromkeys(("comprehension", "reduction", "inplace_binop", "setitem", "numpy", "stencil", "fusion"),
                             False)
    return {"parallel": {**parallel, "prange": True}, "fastmath": True, "cache": True, "nogil": True}


@njit(inline="always", fastmath=True)
def _scores(v, w_out, tg, scores):  # pragma: no cover - compiled
    """scores[j] = v · w_out[tg[j]], three rows a pass: v is read once for three products."""
    dim, j = v.shape[0], 0
    while j + 2 < len(tg):
        u0, u1, u2 = w_out[tg[j]], w_out[tg[j + 1]], w_out[tg[j + 2]]
        s0 = s1 = s2 = np.float32(0.0)
        for d in range(dim):
            s0 += v[d] * u0[d]
            s1 += v[d] * u1[d]
            s2 += v[d] * u2[d]
        scores[j], scores[j + 1], scores[j + 2] = s0, s1, s2
        j += 3
    for j in range(j, len(tg)):
        u0, s0 = w_out[tg[j]], np.float32(0.0)
        for d in range(dim):
            s0 += v[d] * u0[d]
        scores[j] = s0


@njit(inline="always", fastmath=True)
def _combine(g, w_out, tg, coeff):  # pragma: no cover - compiled
    """g += Σ_j coeff[j] · w_out[tg[j]], three rows a pass: g is loaded and stored once for three."""
    dim, j = g.shape[0], 0
    while j + 2 < len(tg):
        u0, u1, u2 = w_out[tg[j]], w_out[tg[j + 1]], w_out[tg[j + 2]]
        k0, k1, k2 = coeff[j], coeff[j + 1], coeff[j + 2]
        for d in range(dim):
            g[d] += k0 * u0[d] + k1 * u1[d] + k2 * u2[d]
        j += 3
    for j in range(j, len(tg)):
        u0, k0 = w_out[tg[j]], coeff[j]
        for d in range(dim):
            g[d] += k0 * u0[d]


@njit(inline="always", fastmath=True)
def _decide(coeff, labels, slopes):  # pragma: no cover - compiled
    """Turns scores into d loss / d score, σ(s) - label, in place; fills slopes[j] = σ'(s_j) and
    returns the decisions' summed loss, -log σ(s) for label 1 and -log(1 - σ(s)) for label 0,
    clamped as `losses.decision_gradients`."""
    one, tiny = np.float32(1.0), np.float32(np.finfo(np.float32).tiny)  # float32 throughout: float64 halves the SIMD width
    loss = np.float32(0.0)
    for j in range(len(coeff)):
        prob = one / (one + np.exp(-coeff[j]))
        picked = prob if labels[j] > 0.5 else one - prob
        loss -= np.log(max(picked, tiny))
        coeff[j] = prob - labels[j]
        slopes[j] = prob * (one - prob)
    return loss


@njit(inline="always")
def _targets_used(tg):  # pragma: no cover - compiled
    """How many of a window's targets are real: padding (-1, hierarchical softmax's shorter paths) is a suffix."""
    t = len(tg)
    while t > 0 and tg[t - 1] < 0:
        t -= 1
    return t


@njit(inline="always")
def _zero(a):  # pragma: no cover - compiled
    """a[:] = 0 for a 1-D array, as a loop: a slice assignment costs Numba seconds of compile time."""
    for d in range(a.shape[0]):
        a[d] = 0.0


@njit(inline="always", fastmath=True)
def _squared_norm(v):  # pragma: no cover - compiled
    acc = np.float32(0.0)
    for d in range(v.shape[0]):
        acc += v[d] * v[d]
    return acc


@njit(inline="always")
def _pair_starts(contexts):  # pragma: no cover - compiled
    """(B+1,) where each window's valid context words (contexts (B, C), -1 masked) start, packed in order."""
    n, c_max = contexts.shape
    first = np.empty(n + 1, dtype=np.int64)
    pairs = 0
    for b in range(n):
        first[b] = pairs
        for c in range(c_max):
            pairs += contexts[b, c] >= 0
    first[n] = pairs
    return first


@njit(**_jit())
def skipgram_decision_gradients(w_in, w_out, contexts, targets, labels):  # pragma: no cover - compiled
    """Skip-gram's gradients of the summed decision loss of each window, and Gauss-Newton curvatures,
    as `losses.decision_gradients`: every context word's input vector makes the window's decisions.

    w_in, w_out (V, D) float32; contexts (B, C) int64 with -1 in masked slots; targets (B, T) int64,
    the output rows of the window's decisions (negative sampling: the center word, then its noise
    words; hierarchical softmax: the center's path, padded with -1 at the end); labels (B, T) float32.
    The P valid (center, context) pairs are packed in example order, so no memory is spent on empty
    slots. Returns context_rows (P,), grad_context (P, D), curv_context (P,), grad_target (B, T, D),
    curv_target (B, T) and each window's summed loss (B,); padded targets get zero gradients.
    """
    n, c_max = contexts.shape
    t_max = targets.shape[1]
    dim = w_in.shape[1]
    first = _pair_starts(contexts)  # (B+1,) index of each window's first pair
    pairs = first[n]
    # np.empty, not zeros: every entry is written below, while its row is in cache
    ctx_rows = np.empty(pairs, dtype=np.int64)
    grad_ctx = np.empty((pairs, dim), dtype=np.float32)
    curv_ctx = np.empty(pairs, dtype=np.float32)
    grad_tgt = np.empty((n, t_max, dim), dtype=np.float32)
    curv_tgt = np.empty((n, t_max), dtype=np.float32)
    losses = np.empty(n, dtype=np.float32)
    coeffs = np.empty((pairs, t_max), dtype=np.float32)  # d loss / d score of each (pair, target)
    for b in prange(n):
        t_used = _targets_used(targets[b])
        tg, lb = targets[b, :t_used], labels[b, :t_used]
        tgt_sq = np.empty(t_used, dtype=np.float32)  # |u_j|^2
        slopes = np.empty(t_used, dtype=np.float32)
        for j in range(t_used):
            tgt_sq[j] = _squared_norm(w_out[tg[j]])
        _zero(curv_tgt[b])
        for j in range(t_used, t_max):
            _zero(grad_tgt[b, j])
        window_loss = np.float32(0.0)
        i = first[b]
        for c in range(c_max):
            row = contexts[b, c]
            if row < 0:
                continue
            ctx_rows[i] = row
            v, coeff = w_in[row], coeffs[i, :t_used]
            v_sq = _squared_norm(v)
            _scores(v, w_out, tg, coeff)
            window_loss += _decide(coeff, lb, slopes)
            curv = np.float32(0.0)
            for j in range(t_used):
                curv += slopes[j] * tgt_sq[j]
                curv_tgt[b, j] += slopes[j] * v_sq
            curv_ctx[i] = curv
            g = grad_ctx[i]
            _zero(g)
            _combine(g, w_out, tg, coeff)
            i += 1
        losses[b] = window_loss
        for j in range(t_used):  # grad_target[j] = Σ_c coeff[c, j] · v_c
            gt = grad_tgt[b, j]
            _zero(gt)
            for i in range(first[b], first[b + 1]):
                k, v = coeffs[i, j], w_in[ctx_rows[i]]
                for d in range(dim):
                    gt[d] += k * v[d]
    return ctx_rows, grad_ctx, curv_ctx, grad_tgt, curv_tgt, losses


@njit(**_jit())
def cbow_decision_gradients(w_in, w_out, contexts, targets, labels):  # pragma: no cover - compiled
    """CBOW's update of each window's decisions, and Gauss-Newton curvatures: the mean h of the valid
    context words' input vectors makes the window's decisions (as `losses.decision_gradients` with h
    as the one input), and, as in word2vec, every context row takes h's whole gradient (not 1/C of it).

    Arguments as `skipgram_decision_gradients`. Gradients that several rows share are returned once,
    for `damped_row_update`'s `sources` and `scales`: context_rows (P,) and the window of each
    (P,), grad_hidden (B, D) the gradient of each window's mean, curv_context (P,); hidden (B, D)
    the means and coeffs (B, T) d loss / d score, target j of window b taking coeffs[b, j] · hidden[b];
    curv_target (B, T) and each window's loss (B,). A window without a context word has zeros.
    """
    n, c_max = contexts.shape
    t_max = targets.shape[1]
    dim = w_in.shape[1]
    first = _pair_starts(contexts)  # (B+1,) index of each window's first context word
    pairs = first[n]
    ctx_rows = np.empty(pairs, dtype=np.int64)
    ctx_windows = np.empty(pairs, dtype=np.int64)
    curv_ctx = np.empty(pairs, dtype=np.float32)
    hidden = np.empty((n, dim), dtype=np.float32)
    grad_hidden = np.empty((n, dim), dtype=np.float32)
    coeffs = np.zeros((n, t_max), dtype=np.float32)  # padded and missing targets keep 0: no gradient
    slopes = np.empty((n, t_max), dtype=np.float32)
    curv_tgt = np.zeros((n, t_max), dtype=np.float32)
    losses = np.zeros(n, dtype=np.float32)
    for b in prange(n):
        h, g = hidden[b], grad_hidden[b]  # (D,), (D,)
        _zero(h)
        _zero(g)
        if first[b + 1] == first[b]:
            continue
        i = first[b]
        for c in range(c_max):
            row = contexts[b, c]
            if row >= 0:
                ctx_rows[i] = row
                ctx_windows[i] = b
                v = w_in[row]
                for d in range(dim):
                    h[d] += v[d]
                i += 1
        inv = np.float32(1.0) / np.float32(first[b + 1] - first[b])
        for d in range(dim):
            h[d] *= inv
        t_used = _targets_used(targets[b])
        tg, lb = targets[b, :t_used], labels[b, :t_used]
        coeff, slope = coeffs[b, :t_used], slopes[b, :t_used]
        _scores(h, w_out, tg, coeff)
        losses[b] = _decide(coeff, lb, slope)
        h_sq = _squared_norm(h)
        curv = np.float32(0.0)
        for j in range(t_used):
            curv += slope[j] * _squared_norm(w_out[tg[j]])
            curv_tgt[b, j] = slope[j] * h_sq
        _combine(g, w_out, tg, coeff)
        for i in range(first[b], first[b + 1]):
            curv_ctx[i] = curv
    return ctx_rows, ctx_windows, grad_hidden, curv_ctx, hidden, coeffs, curv_tgt, losses


@njit(**_jit())
def damped_row_update(weight, rows, sources, scales, grads, curvature, lr, parts):  # pragma: no cover - compiled
    """weight[r] -= lr * G_r / (1 + lr * H_r) in place, as `binary_output.damped_row_update`: entry i
    adds scales[i] · grads[sources[i]] to G of row rows[i] and curvature[i] to its H.

    weight (V, D) float32, rows (R,) int64, grads (S, D), curvature (R,), lr float; sources (R,) int64
    and scales (R,) float32, each empty for entry i's own row grads[i] and scale 1: entries then
    share a gradient row without copies of it (CBOW's context words take their window's). `parts`
    the number of threads (any count gives the same result).
    """
    n, dim = len(rows), grads.shape[1]
    shared, scaled = len(sources) > 0, len(scales) > 0
    total = np.zeros(weight.shape[0], dtype=np.float32)  # (V,) H_r
    for part in prange(parts):  # each thread owns the rows that hash to it: no two threads touch a row
        # This thread's entries, listed without a branch: the loops below then have none to
        # mispredict, and the processor overlaps the cache misses of consecutive rows.
        mine = np.empty(n, dtype=np.int64)
        count = 0
        for i in range(n):
            mine[count] = i
            count += _owner(rows[i], parts) == part
        for m in range(count):
            total[rows[mine[m]]] += curvature[mine[m]]
        for m in range(count):
            i = mine[m]
            r = rows[i]
            step = np.float32(-lr / (1.0 + lr * total[r]))
            w = weight[r]
            g = grads[sources[i]] if shared else grads[i]
            if scaled:
                k = scales[i]
                for d in range(dim):
                    w[d] += step * (k * g[d])  # k · g first, as the gradient the PyTorch step forms
            else:
                for d in range(dim):
                    w[d] += step * g[d]


@njit(inline="always", fastmath=True)
def _catch_up_row(w, m, v, start, upto, touched, lr_history, beta1, beta2, eps):  # pragma: no cover - compiled
    """Adam's zero-gradient steps start+1 .. upto of one row (w, m, v), in place; `touched` its last gradient.

    After k such steps m = β1^k·m0 and v = β2^k·v0, so step s = start + k moves the row by
    lr_s/(1-β1^s) · β1^k·m0 / (sqrt(v0)·β2^(k/2)/sqrt(1-β2^s) + eps): sqrt(v0) is taken once and
    the powers are carried from step to step. Only the steps within len(lr_history) of `touched`
    move the row; lr_history[s % len(lr_history)] is step s's learning rate. The moves are summed
    in the row's precision and subtracted once.
    """
    horizon, n = len(lr_history), upto - start
    moves = min(n, touched + horizon - start)
    moving = False  # a row whose momentum is zero does not move (a word not seen yet)
    for d in range(len(m)):
        if m[d] != 0:
            moving = True
            break
    if moving and moves > 0:
        root, total = np.empty_like(v), np.zeros_like(w)  # (D,), (D,) in the row's precision
        for d in range(len(v)):
            root[d] = np.sqrt(v[d])
        # the step's two factors and eps in that precision too: float32 arithmetic runs in twice the lanes
        factors = np.empty(3, dtype=w.dtype)
        factors[2] = eps
        b1_k, b2_half_k = 1.0, 1.0  # β1^k, β2^(k/2)
        b1_s, b2_s = beta1 ** start, beta2 ** start  # β1^s, β2^s
        root_beta2 = np.sqrt(beta2)
        for k in range(1, moves + 1):
            b1_k *= beta1
            b2_half_k *= root_beta2
            b1_s *= beta1
            b2_s *= beta2
            factors[0] = lr_history[(start + k) % horizon] / (1.0 - b1_s) * b1_k
            factors[1] = b2_half_k / np.sqrt(1.0 - b2_s)
            size, scale, epsilon = factors[0], factors[1], factors[2]
            for d in range(len(w)):
                total[d] += size * m[d] / (root[d] * scale + epsilon)
        for d in range(len(w)):
            w[d] -= total[d]
    decay1, decay2 = beta1 ** n, beta2 ** n
    for d in range(len(m)):
        m[d] *= decay1
        v[d] *= decay2


@njit(**_jit())
def adam_catch_up(param, exp_avg, exp_avg_sq, last, touched, rows, upto, lr_history, beta1, beta2, eps):  # pragma: no cover - compiled
    """Adam's zero-gradient steps last[r]+1 .. upto for each row r of `rows` (distinct), in place
    (`_catch_up_row`); last[r] becomes upto.
    param, exp_avg, exp_avg_sq (V, D); last, touched (V,) int64; rows (R,) int64.
    """
    for i in prange(len(rows)):
        r = rows[i]
        if last[r] < upto:
            _catch_up_row(param[r], exp_avg[r], exp_avg_sq[r], last[r], upto, touched[r], lr_history, beta1, beta2, eps)
            last[r] = upto


@njit(**_jit())
def adam_step_rows(param, exp_avg, exp_avg_sq, last, touched, rows, grads, step, lr, lr_history, beta1, beta2, eps,
                   expiring):  # pragma: no cover - compiled
    """DeferredAdam's step `step` of a sparse gradient, in place, as `deferred_adam.step_rows`: each of
    the distinct `rows` is brought up to step-1 and takes Adam's step with its gradient (grads (R, D));
    then the `expiring` rows still idle since step - len(lr_history) are brought up to `step`.
    """
    bias1, bias2 = 1.0 - beta1 ** step, 1.0 - beta2 ** step
    for i in prange(len(rows)):
        r = rows[i]
        w, m, v, g = param[r], exp_avg[r], exp_avg_sq[r], grads[i]
        if last[r] < step - 1:  # rows no forward pass through `watch` looked up
            _catch_up_row(w, m, v, last[r], step - 1, touched[r], lr_history, beta1, beta2, eps)
        for d in range(len(w)):
            m[d] += (1.0 - beta1) * (g[d] - m[d])
            v[d] = v[d] * beta2 + (1.0 - beta2) * g[d] * g[d]
            w[d] -= lr / bias1 * m[d] / (np.sqrt(v[d] / bias2) + eps)
        last[r] = touched[r] = step
    horizon = len(lr_history)
    for i in prange(len(expiring)):
        r = expiring[i]
        if touched[r] == step - horizon:  # not in this batch
            _catch_up_row(param[r], exp_avg[r], exp_avg_sq[r], last[r], step, touched[r], lr_history, beta1, beta2, eps)
            last[r] = step


@njit(inline="always")
def _owner(row, parts):  # pragma: no cover - compiled
    """The thread (0..parts-1) that updates `row`: a multiplicative hash spreads the frequent words
    (the lowest ids) evenly, and costs two multiplications where `row % parts` costs a division."""
    mixed = (np.uint64(row) * np.uint64(2654435761)) & np.uint64(0xFFFFFFFF)
    return (mixed * np.uint64(parts)) >> np.uint64(32)


def use_threads(count: int) -> int:
    """Run the kernels on `count` threads (PyTorch's setting), within the pool Numba started with;
    returns the number they will use."""
    count = max(1, min(count, numba.config.NUMBA_NUM_THREADS))
    if numba.get_num_threads() != count:
        numba.set_num_threads(count)
    return count
