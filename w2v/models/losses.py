"""The three Word2Vec objectives as pure functions of embedding tensors, one loss per training example."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def masked_mean(vectors: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over the valid context vectors: (B, C, D), (B, C) bool -> (B, D). Rows need one valid entry."""
    weights = mask.to(vectors.dtype)  # (B, C)
    return (vectors * weights.unsqueeze(-1)).sum(1) / weights.sum(1, keepdim=True)  # (B, D)


# From this many softmax rows on, a CPU computes the logits as (V, U), the vocabulary the product's
# long side: at CBOW's 256 rows that product takes about half the time of the (U, V) one, which
# more than pays for a softmax down the columns; at Skip-gram's ~50 rows it does not (measured).
COLUMN_LOGITS_ROWS = 128


def softmax_cross_entropy(hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, rows: torch.Tensor,
                          targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """-log softmax(h_r W^T + b)[t] for every (row r, target t) pair, and the softmax itself.

    Pairs are given flat, so a row (a center word in Skip-gram, a context mean in CBOW) has its
    softmax computed once however many targets it predicts.
    hidden (U, D), weight (V, D), bias (V,) or None, rows (P,), targets (P,) -> losses (P,), probs (U, V)
    """
    if hidden.device.type == "cpu" and len(hidden) >= COLUMN_LOGITS_ROWS:
        return _softmax_cross_entropy_by_columns(hidden, weight, bias, rows, targets)
    logits = hidden @ weight.t() if bias is None else torch.addmm(bias, hidden, weight.t())  # (U, V)
    probs = torch.softmax(logits, dim=-1)  # (U, V)
    picked = probs[rows, targets]  # (P,)
    losses = -picked.log()  # (P,)
    # Below this probability -log p loses precision (float32 subnormals) and then overflows; those
    # pairs take their loss from an exact log-sum-exp of their row instead.
    tiny = (picked < 1e-30).nonzero().squeeze(1)
    if len(tiny):
        exact = logits[rows[tiny]]  # (p, V)
        losses[tiny] = torch.logsumexp(exact, -1) - exact.gather(1, targets[tiny].unsqueeze(1)).squeeze(1)
    return losses, probs


def _softmax_cross_entropy_by_columns(hidden, weight, bias, rows, targets):
    """`softmax_cross_entropy` with the logits computed as (V, U); the probabilities come back as a
    (U, V) view of them, which the gradients' products read as they are."""
    logits = weight @ hidden.t() if bias is None else torch.addmm(bias.unsqueeze(1), weight, hidden.t())  # (V, U)
    logits = logits.to(torch.promote_types(logits.dtype, torch.float32))  # under autocast: exp in float32
    picked = logits[targets, rows]  # (P,)
    top = logits.amax(0)  # (U,)
    probs = logits.sub_(top).exp_()  # (V, U)
    total = probs.sum(0)  # (U,)
    probs.div_(total)
    return (top + total.log())[rows] - picked, probs.t()  # the log-sum-exp: exact however small p is


def softmax_cross_entropy_gradients(hidden: torch.Tensor, weight: torch.Tensor, probs: torch.Tensor, rows: torch.Tensor,
                                    targets: torch.Tensor, grad_losses: torch.Tensor, bias: bool = True):
    """Gradients of Σ_p g_p·loss_p (`softmax_cross_entropy`) for hidden, weight and bias (None without one).

    With s_r = Σ_{p of row r} g_p, dL/dlogits = diag(s)·softmax - Σ_p g_p·onehot(r_p, t_p): the
    diagonal scaling is applied to the small (U, D) operands and results of the two matrix
    products, and the one-hot part is added row by row, so the (U, V) probabilities are only
    read, by the products. On a CPU each pass over that matrix costs a fair share of a product
    (autograd's cross-entropy makes four).
    grad_losses (P,) -> (U, D), (V, D), (V,) or None
    """
    g = grad_losses.unsqueeze(1)  # (P, 1)
    row_sums = torch.zeros(len(hidden), 1, dtype=g.dtype, device=g.device).index_add_(0, rows, g)  # (U, 1) s_r

    def minus_onehot(product, index, part):  # under autocast the product may be half precision
        return product.index_add_(0, index, part.to(product.dtype), alpha=-1)

    grad_hidden = minus_onehot((probs @ weight).mul_(row_sums), rows, weight[targets] * g)  # (U, D)
    grad_weight = minus_onehot(probs.t() @ (hidden * row_sums), targets, hidden[rows] * g)  # (V, D)
    grad_bias = minus_onehot(row_sums.squeeze(1) @ probs, targets, grad_losses) if bias else None  # (V,)
    return grad_hidden, grad_weight, grad_bias


class SoftmaxCrossEntropy(torch.autograd.Function):
    """`softmax_cross_entropy`'s losses, differentiated by `softmax_cross_entropy_gradients`.

    hidden (U, D), weight (V, D), bias (V,) or None, rows (P,), targets (P,) -> (P,) losses.
    """

    @staticmethod
    def forward(ctx, hidden, weight, bias, rows, targets):
        losses, probs = softmax_cross_entropy(hidden, weight, bias, rows, targets)
        ctx.save_for_backward(hidden, weight, probs, rows, targets)
        return losses

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_losses):  # (P,)
        hidden, weight, probs, rows, targets = ctx.saved_tensors
        grads = softmax_cross_entropy_gradients(hidden, weight, probs, rows, targets, grad_losses, ctx.needs_input_grad[2])
        return *grads, None, None


def sgns_scores(context_vecs: torch.Tensor, target_vecs: torch.Tensor) -> torch.Tensor:
    """Scores of every context word of a window against its center's output vector and K noise words.

    context_vecs (B, C, D): input vectors of the (up to C) context words around each center;
    target_vecs (B, 1+K, D): output vector of the center word, then of its K noise words. -> (B, C, 1+K)
    """
    return torch.bmm(context_vecs, target_vecs.transpose(1, 2))


def sgns_loss(context_vecs: torch.Tensor, mask: torch.Tensor, target_vecs: torch.Tensor) -> torch.Tensor:
    """Negative sampling: -log σ(u_o·v_c) - Σ_k log σ(-u_k·v_c) for each valid (center, context) pair.

    As in word2vec's own skip-gram, v is the context word's input vector and u_o the center word's
    output vector; the K noise words are drawn once per center and shared by the pairs of its window
    (Ji et al.), so each pair still meets K noise words. Shapes as in `sgns_scores`; mask (B, C). -> (P,)
    """
    scores = sgns_scores(context_vecs, target_vecs)  # (B, C, 1+K)
    losses = -(F.logsigmoid(scores[..., 0]) + F.logsigmoid(-scores[..., 1:]).sum(-1))  # (B, C)
    return losses[mask]  # (P,)


def sgns_gradients(context_vecs: torch.Tensor, mask: torch.Tensor, target_vecs: torch.Tensor):
    """Closed-form gradients of the summed `sgns_loss`, and each example's curvature, without autograd.

    Returns grad_context (B, C, D), grad_target (B, 1+K, D), the Gauss-Newton curvature of the loss
    along each row, σ'(s)·|x|² summed over the row's scores, for contexts (B, C) and targets (B, 1+K),
    and the per-pair losses (P,).
    """
    weight = mask.to(context_vecs.dtype).unsqueeze(-1)  # (B, C, 1)
    prob = torch.sigmoid(sgns_scores(context_vecs, target_vecs))  # (B, C, 1+K)
    coeff = prob.clone()  # d loss / d score: σ(s) - label, label 1 for the center, 0 for noise
    coeff[..., 0] -= 1.0
    coeff *= weight
    grad_context = torch.bmm(coeff, target_vecs)  # (B, C, D)
    grad_target = torch.bmm(coeff.transpose(1, 2), context_vecs)  # (B, 1+K, D)
    slope = prob * (1.0 - prob) * weight  # (B, C, 1+K)  σ'(s)
    curv_context = torch.bmm(slope, target_vecs.square().sum(-1, keepdim=True)).squeeze(-1)  # (B, C)
    curv_target = torch.bmm(slope.transpose(1, 2), context_vecs.square().sum(-1, keepdim=True)).squeeze(-1)  # (B, 1+K)
    tiny = torch.finfo(prob.dtype).tiny
    losses = -(prob[..., 0].clamp_min(tiny).log() + (1.0 - prob[..., 1:]).clamp_min(tiny).log().sum(-1))  # (B, C)
    return grad_context, grad_target, curv_context, curv_target, losses[mask]
