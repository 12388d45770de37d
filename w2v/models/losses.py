"""Word2Vec's output layers as pure functions of embedding tensors, one loss per training example:
the full softmax, and the binary decisions of negative sampling and hierarchical softmax."""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from w2v.kernels import LN2, LOG2E, onednn

# From this many softmax rows on, a CPU computes the logits as (V, U), the vocabulary the product's
# long side: in the notebooks' setting, at CBOW's 256 rows that product takes about half the time
# of the (U, V) one, which more than pays for a softmax down the columns; at Skip-gram's ~50 rows
# it does not (measured).
COLUMN_LOGITS_ROWS = 128

# From this many softmax rows in a batch on, a CPU multiplies the exps by the output matrix through
# oneDNN (`onednn_operand`), which needs that matrix transposed once a step: below this, the
# transposition costs more than the faster product saves, and the notebooks' batches of 256 and
# 512 train faster on `torch.mm` alone (measured; scripts/README.md).
ONEDNN_ROWS = 1024


class Softmax(NamedTuple):
    """Softmax rows kept unnormalised: probs = exps * inv_total[:, None].

    The gradients' products apply the normalisation to their small (U, D) operands and results, so
    no pass over the (U, V) matrix divides it.
    """

    exps: torch.Tensor  # (U, V), on a CPU possibly a view of a (V, U) matrix
    inv_total: torch.Tensor  # (U,) 1 / each row's sum of exps
    by_weight: torch.Tensor | None = None  # (U, D) exps @ W, where oneDNN computed it with the sums


def softmax_cross_entropy(hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, rows: torch.Tensor,
                          targets: torch.Tensor, scratch: torch.Tensor | None = None,
                          operand: torch.Tensor | None = None) -> tuple[torch.Tensor, Softmax]:
    """-log softmax(h_r W^T + b)[t] for every (row r, target t) pair, and the softmax itself.

    Pairs are given flat, so a row (a center word in Skip-gram, a context mean in CBOW) has its
    softmax computed once however many targets it predicts. Each loss is log Σ exp(logits) - logit,
    exact however small the target's probability. On a CPU the logits, and the softmax returned,
    go into `scratch` where it is given (`logits_scratch`), and where `operand` (`onednn_operand`)
    is given, oneDNN sums the exps in the product that multiplies them by W (`Softmax.by_weight`).
    hidden (U, D), weight (V, D), bias (V,) or None, rows (P,), targets (P,) -> losses (P,), softmax (U, V)
    """
    if hidden.device.type == "cpu":
        return _softmax_cross_entropy_base2(hidden, weight, bias, rows, targets, scratch, operand)
    return _softmax_cross_entropy_fixed(hidden, weight, bias, rows, targets)


def _softmax_cross_entropy_fixed(hidden, weight, bias, rows, targets):
    """`softmax_cross_entropy` elsewhere (a GPU), in fixed shapes so that nothing waits on the
    device: each loss from its row's log-sum-exp, exact however small the target's probability, and
    the softmax in one kernel."""
    logits = _logits(hidden, weight, bias, by_columns=False)  # (U, V)
    losses = torch.logsumexp(logits, -1)[rows] - logits[rows, targets]  # (P,)
    probs = torch.softmax(logits, dim=-1)  # (U, V)
    return losses, Softmax(probs, torch.ones(len(probs), dtype=probs.dtype, device=probs.device))


def logits_scratch(rows: int, weight: torch.Tensor, kept: torch.Tensor | None = None) -> torch.Tensor | None:
    """Memory for the logits of `rows` softmax rows, for `softmax_cross_entropy` to reuse (`kept`,
    an earlier one, where it fits), and after them for `onednn_operand`'s (D+1, V) matrix. On a
    CPU a fresh (V, 256) matrix is page-faulted in as it is first written, thousands of page faults
    a step that reusing this memory avoids (measured, scripts/README.md). None where it would not
    be used: on other devices (their allocators keep freed memory), and under autocast, whose
    products make their own."""
    if weight.device.type != "cpu" or torch.is_autocast_enabled("cpu"):
        return None
    size = (rows + weight.shape[1] + 1) * len(weight)
    if kept is not None and kept.numel() == size and kept.dtype == weight.dtype:
        return kept
    return weight.new_empty(size)


def _logits(hidden, weight, bias, by_columns: bool, scratch: torch.Tensor | None = None) -> torch.Tensor:
    """hidden @ weight.T + bias as a (U, V) matrix, computed as (V, U) and seen transposed when
    `by_columns`; in at least float32 (under autocast the product may be half precision). Written
    into `scratch` (1-D, at least U·V elements) when it is given and of the operands' type."""
    shape = (len(weight), len(hidden)) if by_columns else (len(hidden), len(weight))
    out = None
    if scratch is not None and scratch.dtype == weight.dtype == hidden.dtype and scratch.numel() >= shape[0] * shape[1]:
        out = scratch[:shape[0] * shape[1]].view(shape)
    if by_columns:
        logits = (torch.mm(weight, hidden.t(), out=out) if bias is None
                  else torch.addmm(bias.unsqueeze(1), weight, hidden.t(), out=out)).t()
    else:
        logits = (torch.mm(hidden, weight.t(), out=out) if bias is None
                  else torch.addmm(bias, hidden, weight.t(), out=out))
    return logits.to(torch.promote_types(logits.dtype, torch.float32))


def _softmax_cross_entropy_base2(hidden, weight, bias, rows, targets, scratch=None, operand=None):
    """`softmax_cross_entropy` on a CPU, where exp2 runs several times as fast as exp (measured):
    the logits are computed in base 2 (log2(e) scales the small operands, not the product), and
    exponentiated without subtracting each row's maximum, a pass over the matrix that float32's
    range makes unnecessary while a row's logits stay below 88 and its largest above -16. Rows
    whose sum of exps overflows, or falls below 2^-24 (the probabilities that float32 subnormals
    would then blur rise above 2^-102), are redone with the maximum subtracted."""
    by_columns = len(hidden) >= COLUMN_LOGITS_ROWS
    scaled_bias = None if bias is None else bias * LOG2E
    logits = _logits(hidden * LOG2E, weight, scaled_bias, by_columns, scratch)  # (U, V) log2(e)·logits
    picked = logits[rows, targets]  # (P,)
    exps = logits.exp2_()  # (U, V)
    by_weight = None
    if operand is None:
        total = exps.sum(1)  # (U,)
    else:  # the exps' sums as one more row of the gradient's product: a pass over them saved
        product = onednn.linear(operand, exps)  # (D+1, U)
        total, by_weight = product[-1], product[:-1].t()  # (U,), (U, D)
    log_total = total.log2()  # (U,)
    bad = ~((total >= 2.0 ** -24) & (total <= torch.finfo(total.dtype).max))  # (U,) overflow (inf, nan) or underflow
    if bad.any():
        redo = bad.nonzero().squeeze(1)  # (u,)
        again = _logits(hidden[redo] * LOG2E, weight, scaled_bias, by_columns=False)  # (u, V)
        top = again.amax(1, keepdim=True)  # (u, 1)
        again = again.sub_(top).exp2_()  # (u, V)
        exps[redo] = again
        total[redo] = again.sum(1)
        log_total[redo] = top.squeeze(1) + total[redo].log2()
        if by_weight is not None:
            by_weight[redo] = again @ weight  # (u, D)
    return (log_total[rows] - picked) * LN2, Softmax(exps, total.reciprocal(), by_weight)


def softmax_cross_entropy_gradients(hidden: torch.Tensor, weight: torch.Tensor, softmax: Softmax, rows: torch.Tensor,
                                    targets: torch.Tensor, grad_losses: torch.Tensor, bias: bool = True):
    """Gradients of Σ_p g_p·loss_p (`softmax_cross_entropy`) for hidden, weight and bias (None without one).

    With s_r = Σ_{p of row r} g_p, dL/dlogits = diag(s)·softmax - Σ_p g_p·onehot(r_p, t_p): the
    diagonal scaling (and the softmax's normalisation) is applied to the small (U, D) operands and
    results of the two matrix products, and the one-hot part is added row by row, so the (U, V)
    exps are only read, by the products. On a CPU each pass over that matrix costs a fair share of
    a product (autograd's cross-entropy makes four).
    grad_losses (P,) -> (U, D), (V, D), (V,) or None
    """
    grad_hidden, output = _gradients(hidden, weight, softmax, rows, targets, grad_losses, bias, None)
    return (grad_hidden, *_split_output_gradient(output, hidden.shape[1], bias))


def _gradients(hidden, weight, softmax, rows, targets, grad_losses, bias: bool, output):
    """`softmax_cross_entropy_gradients`, with the output layer's gradient as one (V, D) matrix, or
    (V, D+1 rounded up to a multiple of 8) with the bias's as column D, added to `output` if given."""
    g = grad_losses.unsqueeze(1)  # (P, 1)
    row_sums = torch.zeros(len(hidden), 1, dtype=g.dtype, device=g.device).index_add_(0, rows, g)  # (U, 1) s_r
    scale = row_sums * softmax.inv_total.unsqueeze(1).to(g.dtype)  # (U, 1) s_r / Σ exps of row r
    exps = softmax.exps  # (U, V)

    def minus_onehot(product, index, part):  # under autocast the product may be half precision
        return product.index_add_(0, index, part.to(product.dtype), alpha=-1)

    by_weight = exps @ weight if softmax.by_weight is None else softmax.by_weight  # (U, D)
    grad_hidden = minus_onehot(by_weight.mul_(scale), rows, weight[targets] * g)  # (U, D)
    # The bias's gradient is one more column of the weight's product, zero-padded to a multiple of 8
    # columns: on a CPU that product runs faster than one of 100 columns, and much faster than the
    # matrix-vector product the bias would otherwise take (measured).
    dim = hidden.shape[1]
    operand = hidden * scale  # (U, D)
    onehot = hidden[rows] * g  # (P, D)
    if bias:
        operand = torch.cat([operand, scale, operand.new_zeros(len(hidden), -(-(dim + 1) // 8) * 8 - dim - 1)], 1)
        onehot = torch.cat([onehot, g], 1)  # (P, D+1)
    if output is None:
        output = (exps.t() @ operand).float()  # (V, ·) summed in float32, whatever autocast made the product
    elif torch.is_autocast_enabled(exps.device.type):  # addmm_ would not take autocast's precision
        output += exps.t() @ operand
    else:
        output.addmm_(exps.t(), operand)
    minus_onehot(output[:, :onehot.shape[1]], targets, onehot)
    return grad_hidden, output


def onednn_operand(weight: torch.Tensor, memory: torch.Tensor | None = None) -> torch.Tensor | None:
    """The output matrix transposed, with a row of ones under it, (D+1, V): `onednn.linear` then
    multiplies the exps by W as (D, V)·(V, U) and sums them in one product, faster on a CPU than
    `torch.mm` with the exps on the left (scripts/README.md). Written into `memory` (1-D) where it
    fits: filling kept memory takes a fraction of the time of a fresh matrix (measured). None where
    oneDNN is not to be used (`onednn.usable`), and under autocast, whose lower-precision products
    go through `torch.mm`."""
    if not onednn.usable(weight) or torch.is_autocast_enabled(weight.device.type):
        return None
    size = (weight.shape[1] + 1) * len(weight)
    if memory is None or memory.numel() < size or memory.dtype != weight.dtype:
        return torch.cat([weight.t(), weight.new_ones(1, len(weight))])  # (D+1, V)
    operand = memory[:size].view(weight.shape[1] + 1, len(weight))  # (D+1, V)
    operand[:-1].copy_(weight.t())
    operand[-1].fill_(1.0)
    return operand


def _split_output_gradient(output, dim: int, bias: bool):
    """The weight's and the bias's gradients out of `_gradients`' output matrix, each contiguous
    (optimizers run faster on contiguous gradients)."""
    if not bias:
        return output, None
    return output[:, :dim].contiguous(), output[:, dim].contiguous()


def softmax_cross_entropy_backward(hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                                   rows: torch.Tensor, targets: torch.Tensor, grad_losses: torch.Tensor, chunk: int,
                                   scratch: torch.Tensor | None = None, pairs_per_row: int | None = None,
                                   fixed: bool = False):
    """`softmax_cross_entropy`'s losses and `softmax_cross_entropy_gradients`, `chunk` softmax rows at a time.

    Each row's softmax and gradients depend on that row alone, and the output layer's gradient is
    their sum, so the results are the same, while the largest matrix is (chunk, V) instead of
    (U, V): a large batch needs no more memory than a small one, and on a CPU its matrix stays
    near the cache. `scratch` (`logits_scratch`) holds each chunk's logits in turn. From
    `ONEDNN_ROWS` rows on, oneDNN multiplies the exps by the output matrix where it can
    (`onednn_operand`). `fixed`: nothing is to wait on the device (padded inputs on a GPU): with
    `pairs_per_row` the pairs come row by row, that many a row (rows[p] = p // pairs_per_row), and a
    chunk's pairs are a slice; without it every chunk takes every pair, weighted 0 outside its rows.
    Otherwise the pairs are sorted by row and each chunk's bounds read back.
    -> losses (P,), grad_hidden (U, D), grad_weight (V, D), grad_bias (V,) or None
    """
    # The chunks' logits take scratch's first min(U, chunk)·V elements, the operand what follows.
    after_logits = None if scratch is None else scratch[min(len(hidden), chunk) * len(weight):]
    operand = onednn_operand(weight, after_logits) if len(hidden) >= ONEDNN_ROWS else None  # (D+1, V) or None
    if len(hidden) <= chunk:
        losses, softmax = softmax_cross_entropy(hidden, weight, bias, rows, targets, scratch, operand)
        return losses, *softmax_cross_entropy_gradients(hidden, weight, softmax, rows, targets, grad_losses, bias is not None)
    starts = list(range(0, len(hidden), chunk))
    losses = torch.empty(len(rows), dtype=torch.promote_types(hidden.dtype, torch.float32), device=hidden.device)
    grad_hidden, output = [], None
    if fixed and pairs_per_row is None:  # every chunk sees every pair, those of its rows weighted: O(P·D) a chunk
        for start in starts:
            size = min(chunk, len(hidden) - start)
            inside = (rows >= start) & (rows < start + size)  # (P,)
            part_rows = (rows - start).clamp_(0, size - 1)  # (P,) the others point anywhere in the chunk
            part_losses, softmax = softmax_cross_entropy(hidden[start:start + size], weight, bias, part_rows, targets,
                                                         scratch, operand)
            losses = torch.where(inside, part_losses, losses)
            part_grad, output = _gradients(hidden[start:start + size], weight, softmax, part_rows, targets,
                                           grad_losses * inside, bias is not None, output)
            grad_hidden.append(part_grad)
        return losses, torch.cat(grad_hidden), *_split_output_gradient(output, hidden.shape[1], bias is not None)
    if pairs_per_row is None:
        order = torch.argsort(rows, stable=True)  # (P,) the pairs grouped by row
        rows, targets, grad_losses = rows[order], targets[order], grad_losses[order]
        bounds = torch.searchsorted(rows, torch.tensor(starts + [len(hidden)], device=rows.device)).tolist()
    else:
        order = torch.arange(len(rows), device=rows.device)  # (P,) grouped already
        bounds = [start * pairs_per_row for start in starts] + [len(rows)]
    for start, first, last in zip(starts, bounds, bounds[1:]):
        part, pairs = slice(start, start + chunk), slice(first, last)
        part_rows = rows[pairs] - start
        losses[order[pairs]], softmax = softmax_cross_entropy(hidden[part], weight, bias, part_rows, targets[pairs],
                                                              scratch, operand)
        part_grad, output = _gradients(hidden[part], weight, softmax, part_rows, targets[pairs], grad_losses[pairs],
                                       bias is not None, output)
        grad_hidden.append(part_grad)
    return losses, torch.cat(grad_hidden), *_split_output_gradient(output, hidden.shape[1], bias is not None)


class SoftmaxCrossEntropy(torch.autograd.Function):
    """`softmax_cross_entropy`'s losses, differentiated by `softmax_cross_entropy_gradients`.

    hidden (U, D), weight (V, D), bias (V,) or None, rows (P,), targets (P,) -> (P,) losses.
    """

    @staticmethod
    def forward(ctx, hidden, weight, bias, rows, targets):
        losses, softmax = softmax_cross_entropy(hidden, weight, bias, rows, targets)
        ctx.save_for_backward(hidden, weight, softmax.exps, softmax.inv_total, rows, targets)
        return losses

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_losses):  # (P,)
        hidden, weight, exps, inv_total, rows, targets = ctx.saved_tensors
        grads = softmax_cross_entropy_gradients(hidden, weight, Softmax(exps, inv_total), rows, targets, grad_losses,
                                                ctx.needs_input_grad[2])
        return *grads, None, None


def decision_scores(input_vecs: torch.Tensor, target_vecs: torch.Tensor) -> torch.Tensor:
    """Scores of every input vector of a window against the window's output rows.

    input_vecs (B, C, D): the input vectors whose decisions are scored (Skip-gram: each context word
    of the window; CBOW: their mean, C = 1); target_vecs (B, T, D): the output rows the window's
    center is predicted by (negative sampling: the center word's, then K noise words'; hierarchical
    softmax: the inner nodes on the center's path). -> (B, C, T)
    """
    return torch.bmm(input_vecs, target_vecs.transpose(1, 2))


def negative_sampling_labels(centers: torch.Tensor, noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Negative sampling's output rows (B, 1+K), the center word then its K noise words, and their
    labels (B, 1+K): 1 for the center, 0 for noise."""
    targets = torch.cat([centers.unsqueeze(1), noise], 1)  # (B, 1+K)
    labels = torch.zeros(targets.shape, dtype=torch.float32, device=targets.device)
    labels[:, 0] = 1.0
    return targets, labels


def decision_loss(input_vecs: torch.Tensor, mask: torch.Tensor, target_vecs: torch.Tensor, labels: torch.Tensor,
                  valid: torch.Tensor | None = None) -> torch.Tensor:
    """The summed binary cross-entropy of each example's decisions: -Σ_j log σ(±u_j·h), + for label 1.

    Negative sampling: -log σ(u_o·v) - Σ_k log σ(-u_k·v). As in word2vec, v is the input side (a
    context word in Skip-gram, the window's mean in CBOW) and u_o the center word's output vector;
    the K noise words are drawn once per center and shared by the pairs of its window (Ji et al.),
    so each pair still meets K noise words. Hierarchical softmax: the decisions along the center's
    path, label 1 - code. Shapes as in `decision_scores`; mask (B, C) the valid inputs; labels (B, T);
    valid (B, T) the targets that exist (hierarchical softmax's paths differ in length). -> (P,)
    """
    scores = decision_scores(input_vecs, target_vecs)  # (B, C, T)
    signs = (2.0 * labels - 1.0).to(scores.dtype).unsqueeze(1)  # (B, 1, T) +1 for label 1, -1 for label 0
    per_target = F.logsigmoid(scores * signs)  # (B, C, T)
    if valid is not None:
        per_target = per_target * valid.unsqueeze(1)
    return -per_target.sum(-1)[mask]  # (P,)


def decision_gradients(input_vecs: torch.Tensor, mask: torch.Tensor, target_vecs: torch.Tensor, labels: torch.Tensor,
                       valid: torch.Tensor | None = None):
    """Closed-form gradients of the summed `decision_loss`, and each example's curvature, without autograd.

    Returns grad_input (B, C, D), grad_target (B, T, D), the Gauss-Newton curvature of the loss
    along each row, σ'(s)·|x|² summed over the row's scores, for inputs (B, C) and targets (B, T),
    and the per-example losses (P,).
    """
    weight = mask.to(input_vecs.dtype).unsqueeze(-1)  # (B, C, 1)
    if valid is not None:
        weight = weight * valid.to(input_vecs.dtype).unsqueeze(1)  # (B, C, T)
    prob = torch.sigmoid(decision_scores(input_vecs, target_vecs))  # (B, C, T)
    labels = labels.to(prob.dtype).unsqueeze(1)  # (B, 1, T)
    coeff = (prob - labels) * weight  # d loss / d score: σ(s) - label
    grad_input = torch.bmm(coeff, target_vecs)  # (B, C, D)
    grad_target = torch.bmm(coeff.transpose(1, 2), input_vecs)  # (B, T, D)
    slope = prob * (1.0 - prob) * weight  # (B, C, T)  σ'(s)
    curv_input = torch.bmm(slope, target_vecs.square().sum(-1, keepdim=True)).squeeze(-1)  # (B, C)
    curv_target = torch.bmm(slope.transpose(1, 2), input_vecs.square().sum(-1, keepdim=True)).squeeze(-1)  # (B, T)
    tiny = torch.finfo(prob.dtype).tiny
    # -log p for label 1, -log(1 - p) for label 0, clamped: exact where σ saturates to 0 or 1
    picked = torch.where(labels > 0.5, prob, 1.0 - prob).clamp_min(tiny)  # (B, C, T)
    losses = -(picked.log() * weight).sum(-1)  # (B, C)
    return grad_input, grad_target, curv_input, curv_target, losses[mask]
