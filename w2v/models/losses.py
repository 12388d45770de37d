"""The three Word2Vec objectives as pure functions of embedding tensors, one loss per training example."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def masked_mean(vectors: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over the valid context vectors: (B, C, D), (B, C) bool -> (B, D). Rows need one valid entry."""
    weights = mask.to(vectors.dtype)  # (B, C)
    return (vectors * weights.unsqueeze(-1)).sum(1) / weights.sum(1, keepdim=True)  # (B, D)


class SoftmaxCrossEntropy(torch.autograd.Function):
    """-log softmax(h W^T + b)[t] for every target t of each row, with a hand-written backward.

    Autograd's cross-entropy on a (B, V) logit matrix makes four passes over it in its backward
    (zeros, scatter, then the log-softmax gradient reading two such matrices); on a CPU those
    passes cost about as much as the matrix products. Here the backward turns the saved
    log-probabilities into probabilities in place and subtracts the targets: dL/dlogits =
    (Σ_t g_t)·softmax - Σ_t g_t·onehot(t). Targets of weight 0 (masked slots) give nothing.
    hidden (B, D), weight (V, D), bias (V,) or None, targets (B, T) -> (B, T) losses.
    """

    @staticmethod
    def forward(ctx, hidden, weight, bias, targets):
        logits = hidden @ weight.t() if bias is None else torch.addmm(bias, hidden, weight.t())  # (B, V)
        log_probs = torch.log_softmax(logits, dim=-1)  # (B, V)
        del logits
        ctx.save_for_backward(hidden, weight, log_probs, targets)
        return -log_probs.gather(1, targets)  # (B, T)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_losses):  # (B, T)
        hidden, weight, log_probs, targets = ctx.saved_tensors
        grad_logits = log_probs.exp_()  # (B, V) the saved tensor is not needed again: reused in place
        grad_logits.mul_(grad_losses.sum(1, keepdim=True))
        grad_logits.scatter_add_(1, targets, -grad_losses)
        grad_hidden = grad_logits @ weight if ctx.needs_input_grad[0] else None  # (B, D)
        grad_weight = grad_logits.t() @ hidden if ctx.needs_input_grad[1] else None  # (V, D)
        grad_bias = grad_logits.sum(0) if ctx.needs_input_grad[2] else None  # (V,); False for no bias
        return grad_hidden, grad_weight, grad_bias, None


def cbow_loss(context_vecs: torch.Tensor, mask: torch.Tensor, out_weight: torch.Tensor, out_bias: torch.Tensor | None,
              targets: torch.Tensor) -> torch.Tensor:
    """CBOW with full softmax: cross-entropy of the center word given the mean context vector.

    context_vecs (B, C, D), mask (B, C), out_weight (V, D), out_bias (V,) or None, targets (B,) -> (B,)
    """
    hidden = masked_mean(context_vecs, mask)  # (B, D)
    return SoftmaxCrossEntropy.apply(hidden, out_weight, out_bias, targets.unsqueeze(1)).squeeze(1)  # (B,)


def skipgram_loss(center_vecs: torch.Tensor, out_weight: torch.Tensor, out_bias: torch.Tensor | None,
                  contexts: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Skip-gram with full softmax: cross-entropy of each context word given its center.

    The softmax depends only on the center, so it is computed once per center for all of its
    context words; the per-pair losses are exactly those of scoring each pair on its own.
    center_vecs (B, D), out_weight (V, D), contexts (B, C), mask (B, C) -> (P,) for the P valid pairs
    """
    return SoftmaxCrossEntropy.apply(center_vecs, out_weight, out_bias, contexts)[mask]  # (P,)


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
