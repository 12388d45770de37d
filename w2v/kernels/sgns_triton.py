"""SGNS on the GPU: one fused Triton kernel trains the chunks of a corpus block held on the device.

Each program takes one chunk (`device_sampling.DeviceBlock`) and walks its kept tokens in order, as
word2vec's threads walk theirs: for each center it draws its window and K noise words
(`counter_rng`, the same bits as `device_sampling.chunk_examples`), loads the window's context rows
(C, D) and the (1+K) output rows, and takes the window's gradients as two small products, its
context rows against the center and its noise words (Ji et al.'s HogBatch). The update is the CPU
step's damped rule, `lr·G/(1+lr·H)` per row (`binary_output.damped_row_update`), G and H summed over
a row's repeats in the window; with `rule="plain"` plain SGD's `lr·G`. `rule="sequential"` takes
word2vec's order within the window instead, the sequential CPU kernel's: each context word in turn
scores the center and noise rows, held in registers and moved at each decision, and its own row
moves after its decisions (more steps in sequence a window; its emulation scored closer to the
CPU's, scripts/README.md). Training takes `model.update_rule`'s (sequential under auto, or damped);
scripts/sgns_kernel_bench.py measures all three.
Updates are added atomically: programs running at once never lose one another's updates, though one may
read a row another is about to change (Hogwild). The learning rate falls linearly across the
launch's programs, from `lr_begin` to `lr_end`.

With TRITON_INTERPRET=1 the kernel runs on CPU tensors (slowly): that is how the tests check it
without a GPU.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from w2v.kernels import SGNS_WINDOW_RULES, check_tensors
from w2v.kernels.sampling_triton import below, draw, mix32


@triton.jit
def _sequential_window(w_in, dim, ctx, valid, slot, u, target, t, real_t, d, in_dim, lr, losses,
                       WINDOW: tl.constexpr, NEGATIVES: tl.constexpr):
    """One window in word2vec's order: each context word in turn (its row read from w_in) scores the
    center and the noise words in turn, moving their rows u (T, D), held here, at once (the next
    decision reads them moved; slots of one row move together), and its own row after its decisions,
    by plain SGD's lr·g. Returns the moved u and losses (C, T) with the window's decisions added."""
    for c in range(2 * WINDOW):  # the real slots; the padding past them has no context word
        pick = slot == c
        row = tl.sum(tl.where(pick, ctx, 0), axis=0)  # this slot's context word
        on = tl.sum(tl.where(pick & valid, 1, 0), axis=0) > 0  # inside the window
        v_ptr = w_in + row * dim + d
        v_mask = in_dim & ((d * 0 + on.to(tl.int32)) > 0)  # (D,) spelt out: the interpreter refuses a scalar in a mask
        v = tl.load(v_ptr, mask=v_mask, other=0.0)  # (D,)
        neu = tl.zeros_like(v)
        step_losses = tl.zeros_like(t).to(tl.float32)  # (T,)
        for j in range(1 + NEGATIVES):
            mine = t == j
            u_j = tl.sum(tl.where(mine[:, None], u, 0.0), axis=0)  # (D,)
            prob = 1.0 / (1.0 + tl.exp(-tl.sum(v * u_j, axis=0)))  # σ(s)
            likely = tl.where(j == 0, prob, 1.0 - prob)  # the center is label 1
            step_losses += tl.where(mine & on, -tl.log(tl.maximum(likely, 1.1754943508222875e-38)), 0.0)
            g = tl.where(on, (tl.where(j == 0, 1.0, 0.0) - prob) * lr, 0.0)
            neu += g * u_j
            same = (target == tl.sum(tl.where(mine, target, 0), axis=0)) & real_t  # (T,) the slots of this row
            u = tl.where(same[:, None], u + g * v[None, :], u)
        tl.atomic_add(v_ptr, neu, mask=v_mask)
        tl.debug_barrier()  # a context word repeated later in the window reads its row moved
        losses += tl.where(pick[:, None], step_losses[None, :], 0.0)
    return u, losses


# Triton compiles a variant for integer arguments equal to 1 or divisible by 16; these change from launch
# to launch (a block's chunks, a step's share of them), and a variant would gain nothing.
@triton.jit(do_not_specialize=["first", "n_programs", "n_chunks"])
def _sgns_chunks_kernel(
    w_in, w_out, seq, docs, bounds, order, threshold, alias, keys, totals,
    first, n_programs, n_chunks, vocab_size, dim, lr_begin, lr_end,
    WINDOW: tl.constexpr, SHRINK: tl.constexpr, NEGATIVES: tl.constexpr, RULE: tl.constexpr,
    C: tl.constexpr, T: tl.constexpr, BLOCK_D: tl.constexpr,
):
    pid = tl.program_id(0)
    chunk = tl.load(order + first + pid)
    start = tl.load(bounds + chunk)
    end = tl.load(bounds + chunk + 1)
    count = tl.load(bounds + n_chunks)  # kept tokens in the block
    key_window = tl.load(keys)
    key_noise = tl.load(keys + 1)
    lr = lr_begin + (lr_end - lr_begin) * pid / n_programs

    slot = tl.arange(0, C)  # context slots: offsets -W..-1, 1..W, then padding
    offset = tl.where(slot < WINDOW, slot - WINDOW, slot - WINDOW + 1)
    real_slot = slot < 2 * WINDOW
    t = tl.arange(0, T).to(tl.int64)  # target slots: the center, K noise words, then padding
    real_t = t < 1 + NEGATIVES
    d = tl.arange(0, BLOCK_D)
    in_dim = d < dim
    losses = tl.zeros([C, T], dtype=tl.float32)
    pairs = tl.zeros([C], dtype=tl.float32)
    for step in range(0, end - start):
        i = start + step  # int64, as the counters' arithmetic needs
        center = tl.load(seq + i).to(tl.int64)
        doc = tl.load(docs + i)
        if SHRINK:
            radius = 1 + below(draw(key_window, i), WINDOW)
        else:
            radius = WINDOW
        where = i + offset  # (C,)
        valid = real_slot & (tl.abs(offset) <= radius) & (where >= 0) & (where < count)
        where = tl.where(valid, where, i)
        valid = valid & (tl.load(docs + where) == doc)
        ctx = tl.load(seq + where).to(tl.int64)  # (C,)

        bits = draw(key_noise, (i * NEGATIVES + t - 1) & 0xFFFFFFFF)  # (T,) slot 0 unused: the center
        noise_slot = below(bits, vocab_size)
        fraction = (mix32(bits) >> 8).to(tl.float32) * (1.0 / 16777216.0)
        keep_slot = fraction < tl.load(threshold + noise_slot, mask=real_t, other=1.0)
        noise = tl.where(keep_slot, noise_slot, tl.load(alias + noise_slot, mask=real_t, other=0).to(tl.int64))
        target = tl.where(t == 0, center, noise)  # (T,)

        in_rows = w_in + ctx[:, None] * dim + d[None, :]  # (C, D)
        out_rows = w_out + target[:, None] * dim + d[None, :]  # (T, D)
        ctx_mask = valid[:, None] & in_dim[None, :]
        tgt_mask = real_t[:, None] & in_dim[None, :]
        u = tl.load(out_rows, mask=tgt_mask, other=0.0)  # (T, D)
        pairs += valid.to(tl.float32)  # (C,)
        if RULE == 2:  # word2vec's order within the window
            moved, losses = _sequential_window(w_in, dim, ctx, valid, slot, u, target, t, real_t, d, in_dim, lr,
                                               losses, WINDOW, NEGATIVES)
            earlier_same = (target[:, None] == target[None, :]) & (t[None, :] < t[:, None]) & real_t[None, :]
            home = real_t & (tl.sum(earlier_same.to(tl.int32), axis=1) == 0)  # a row's first slot takes its change
            tl.atomic_add(out_rows, moved - u, mask=tgt_mask & home[:, None])
        else:
            v = tl.load(in_rows, mask=ctx_mask, other=0.0)  # (C, D)
            score = tl.sum(v[:, None, :] * u[None, :, :], axis=2)  # (C, T)
            pair = valid[:, None] & real_t[None, :]
            prob = 1.0 / (1.0 + tl.exp(-score))  # σ(s)
            is_center = (t == 0)[None, :]
            coeff = tl.where(pair, prob - is_center.to(tl.float32), 0.0)  # d loss / d score
            likely = tl.where(is_center, prob, 1.0 - prob)
            # the loss and the pair count are summed once, after the loop: no reduction per center
            losses += tl.where(pair, -tl.log(tl.maximum(likely, 1.1754943508222875e-38)), 0.0)  # (C, T)

            grad_ctx = tl.sum(coeff[:, :, None] * u[None, :, :], axis=1)  # (C, D)
            grad_tgt = tl.sum(coeff[:, :, None] * v[:, None, :], axis=0)  # (T, D)
            if RULE == 1:
                slope = tl.where(pair, prob * (1.0 - prob), 0.0)  # σ'(s)
                curv_ctx = tl.sum(slope * tl.sum(u * u, axis=1)[None, :], axis=1)  # (C,)
                curv_tgt = tl.sum(slope * tl.sum(v * v, axis=1)[:, None], axis=0)  # (T,)
                # a row's curvature summed over its repeats in the window, as damped_row_update sums a batch's
                same_ctx = (ctx[:, None] == ctx[None, :]) & valid[:, None] & valid[None, :]
                total_ctx = tl.sum(tl.where(same_ctx, curv_ctx[None, :], 0.0), axis=1)
                same_tgt = (target[:, None] == target[None, :]) & real_t[:, None] & real_t[None, :]
                total_tgt = tl.sum(tl.where(same_tgt, curv_tgt[None, :], 0.0), axis=1)
                tl.atomic_add(in_rows, grad_ctx * (-lr / (1.0 + lr * total_ctx))[:, None], mask=ctx_mask)
                tl.atomic_add(out_rows, grad_tgt * (-lr / (1.0 + lr * total_tgt))[:, None], mask=tgt_mask)
            else:
                tl.atomic_add(in_rows, grad_ctx * -lr, mask=ctx_mask)
                tl.atomic_add(out_rows, grad_tgt * -lr, mask=tgt_mask)
        tl.debug_barrier()  # the next center reads this one's updates
    tl.atomic_add(totals, tl.sum(tl.sum(losses, axis=1), axis=0).to(tl.float64))
    tl.atomic_add(totals + 1, tl.sum(pairs, axis=0).to(tl.float64))


def check_inputs(w_in, w_out, seq, docs, bounds, order, threshold, alias, keys, totals) -> None:
    """One-line ValueErrors for inputs the kernel cannot take."""
    check_tensors("sgns_chunks", {
        "w_in": (w_in, torch.float32, 2), "w_out": (w_out, torch.float32, 2), "seq": (seq, torch.int32, 1),
        "docs": (docs, torch.int32, 1), "bounds": (bounds, torch.int64, 1), "order": (order, torch.int64, 1),
        "threshold": (threshold, torch.float32, 1), "alias": (alias, torch.int32, 1), "keys": (keys, torch.int64, 1),
        "totals": (totals, torch.float64, 1)})
    if w_out.shape != w_in.shape:
        raise ValueError(f"sgns_chunks: w_out {tuple(w_out.shape)} must have w_in's shape {tuple(w_in.shape)}")
    if len(threshold) != len(w_in) or len(alias) != len(w_in):
        raise ValueError(f"sgns_chunks: threshold and alias must have one entry per vocabulary word ({len(w_in)})")
    if len(docs) != len(seq) or len(bounds) != len(order) + 1 or len(keys) < 2 or len(totals) < 2:
        raise ValueError("sgns_chunks: docs must match seq, bounds have one entry more than order, keys and totals 2")


@torch.library.custom_op("w2v::sgns_chunks", mutates_args=("w_in", "w_out", "totals"))
def sgns_chunks(w_in: torch.Tensor, w_out: torch.Tensor, seq: torch.Tensor, docs: torch.Tensor, bounds: torch.Tensor,
                order: torch.Tensor, threshold: torch.Tensor, alias: torch.Tensor, keys: torch.Tensor,
                totals: torch.Tensor, first: int, n_programs: int, lr_begin: float, lr_end: float, window: int,
                shrink: bool, negatives: int, rule: str = "damped", num_warps: int = 4) -> None:
    """Trains chunks order[first : first + n_programs] of a block, in place (see the module's docstring).

    w_in, w_out (V, D) float32; seq, docs (n+1,) int32, bounds (chunks+1,) int64 and order (chunks,)
    int64 as `DeviceBlock`; threshold (V,) float32 and alias (V,) int32 the noise words' alias table;
    keys (2+,) int64 the window and noise streams' keys; totals (2,) float64 gets the summed loss and
    the number of (center, context) pairs added. `rule`: a window's update, one of `SGNS_WINDOW_RULES`.
    """
    check_inputs(w_in, w_out, seq, docs, bounds, order, threshold, alias, keys, totals)
    if rule not in SGNS_WINDOW_RULES:
        raise ValueError(f"sgns_chunks: rule={rule!r} is unknown; use one of {', '.join(SGNS_WINDOW_RULES)}")
    if n_programs < 1:
        return
    if first < 0 or first + n_programs > len(order):
        raise ValueError(f"sgns_chunks: chunks {first}..{first + n_programs - 1} are outside the block's {len(order)}")
    _sgns_chunks_kernel[(n_programs,)](
        w_in, w_out, seq, docs, bounds, order, threshold, alias, keys, totals,
        first, n_programs, len(order), w_in.shape[0], w_in.shape[1], lr_begin, lr_end,
        WINDOW=window, SHRINK=shrink, NEGATIVES=negatives, RULE=SGNS_WINDOW_RULES[rule],
        C=triton.next_power_of_2(2 * window),
        T=triton.next_power_of_2(1 + negatives), BLOCK_D=triton.next_power_of_2(w_in.shape[1]), num_warps=num_warps)
