"""Each model's loss and the SGNS hand-written gradients against naive references on tiny tensors."""

import math

import pytest
import torch

from w2v.models.losses import SoftmaxCrossEntropy, cbow_loss, sgns_gradients, sgns_loss, skipgram_loss
from w2v.models import cpu_kernels
from w2v.models.sgns import damped_row_update

torch.manual_seed(0)
B, C, D, V, K = 3, 4, 5, 7, 2


def _mask():
    return torch.tensor([[1, 1, 0, 1], [0, 1, 1, 0], [1, 0, 0, 0]], dtype=torch.bool)  # (B, C)


def test_cbow_loss_matches_loop():
    ctx_vecs, mask = torch.randn(B, C, D), _mask()
    weight, bias, targets = torch.randn(V, D), torch.randn(V), torch.tensor([1, 4, 6])
    got = cbow_loss(ctx_vecs, mask, weight, bias, targets)
    for b in range(B):
        valid = [ctx_vecs[b, c] for c in range(C) if mask[b, c]]
        hidden = sum(valid) / len(valid)
        logits = weight @ hidden + bias
        expected = -(logits[targets[b]] - torch.logsumexp(logits, 0))
        assert torch.allclose(got[b], expected, atol=1e-5)


def test_skipgram_loss_matches_loop():
    center, mask = torch.randn(B, D), _mask()
    weight, bias = torch.randn(V, D), torch.randn(V)
    contexts = torch.randint(0, V, (B, C))
    got = skipgram_loss(center, weight, bias, contexts, mask)
    expected = []
    for b in range(B):
        for c in range(C):
            if mask[b, c]:
                logits = weight @ center[b] + bias
                expected.append(-(logits[contexts[b, c]] - torch.logsumexp(logits, 0)))
    assert torch.allclose(got, torch.stack(expected), atol=1e-5)


@pytest.mark.parametrize("with_bias", [True, False])
def test_softmax_cross_entropy_gradients_match_autograd(with_bias):
    gen = torch.Generator().manual_seed(1)
    hidden, weight = torch.randn(B, D, generator=gen, dtype=torch.float64), torch.randn(V, D, generator=gen, dtype=torch.float64)
    bias = torch.randn(V, generator=gen, dtype=torch.float64) if with_bias else None
    targets = torch.randint(0, V, (B, C), generator=gen)
    targets[0, 1] = targets[0, 0]  # a word twice in one window
    upstream = torch.randn(B, C, generator=gen, dtype=torch.float64) * _mask()  # masked slots carry no gradient
    inputs = [t.clone().requires_grad_() for t in (hidden, weight) + ((bias,) if with_bias else ())]
    (SoftmaxCrossEntropy.apply(inputs[0], inputs[1], inputs[2] if with_bias else None, targets) * upstream).sum().backward()
    reference = [t.clone().requires_grad_() for t in (hidden, weight) + ((bias,) if with_bias else ())]
    logits = reference[0] @ reference[1].t() + (reference[2] if with_bias else 0)
    (-torch.log_softmax(logits, -1).gather(1, targets) * upstream).sum().backward()
    for got, expected in zip(inputs, reference):
        assert torch.allclose(got.grad, expected.grad, atol=1e-12)


def test_sgns_loss_matches_loop():
    ctx, mask, targets = torch.randn(B, C, D), _mask(), torch.randn(B, 1 + K, D)
    got = sgns_loss(ctx, mask, targets)
    expected = []
    sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    for b in range(B):
        for c in range(C):
            if mask[b, c]:
                v = ctx[b, c]
                loss = -math.log(sig(float(targets[b, 0] @ v)))
                loss -= sum(math.log(sig(-float(targets[b, k] @ v))) for k in range(1, 1 + K))
                expected.append(loss)
    assert torch.allclose(got, torch.tensor(expected), atol=1e-5)


def test_sgns_gradients_match_autograd():
    ctx = torch.randn(B, C, D, requires_grad=True)
    targets = torch.randn(B, 1 + K, D, requires_grad=True)
    mask = _mask()
    sgns_loss(ctx, mask, targets).sum().backward()
    g_ctx, g_tgt, curv_ctx, curv_tgt, losses = sgns_gradients(ctx.detach(), mask, targets.detach())
    assert torch.allclose(g_ctx, ctx.grad, atol=1e-5)
    assert torch.allclose(g_tgt, targets.grad, atol=1e-5)
    assert torch.allclose(losses, sgns_loss(ctx, mask, targets).detach(), atol=1e-5)
    # Curvature: σ'(s)|u|² for each context row, zero where masked.
    s = torch.einsum("bcd,bkd->bck", ctx.detach(), targets.detach())
    slope = torch.sigmoid(s) * torch.sigmoid(-s) * mask.unsqueeze(-1)
    assert torch.allclose(curv_ctx, (slope * targets.detach().square().sum(-1).unsqueeze(1)).sum(-1), atol=1e-5)
    assert (curv_ctx[~mask] == 0).all() and (curv_tgt >= 0).all()


def test_damped_update_is_word2vec_step_for_a_single_row_and_bounded_for_many():
    weight = torch.zeros(4, 2)
    grads = torch.tensor([[1.0, 2.0]])
    damped_row_update(weight, torch.tensor([1]), grads, torch.tensor([0.0]), lr=0.1)
    assert torch.allclose(weight[1], -0.1 * grads[0])  # no curvature: exactly lr * gradient
    assert (weight[[0, 2, 3]] == 0).all()
    # 1000 identical gradients with curvature 1 each: a sum would move 100, the damped step stays below 1.
    weight = torch.zeros(4, 2)
    rows = torch.full((1000,), 2)
    damped_row_update(weight, rows, torch.ones(1000, 2), torch.ones(1000), lr=0.1)
    assert 0.9 < -weight[2, 0] < 1.0



def test_fused_cpu_kernels_match_the_pytorch_step():
    vocab = 30
    gen = torch.Generator().manual_seed(3)
    w_in, w_out = torch.randn(vocab, D, generator=gen), torch.randn(vocab, D, generator=gen)
    contexts = torch.randint(vocab, (B, C), generator=gen)
    targets = torch.randint(vocab, (B, 1 + K), generator=gen)
    mask = _mask()
    expected = sgns_gradients(w_in[contexts], mask, w_out[targets])
    masked = torch.where(mask, contexts, -1)  # the kernels' convention for an empty slot
    rows, grad_ctx, curv_ctx, grad_tgt, curv_tgt, losses = (torch.from_numpy(a) for a in cpu_kernels.sgns_window_gradients(
        w_in.numpy(), w_out.numpy(), masked.numpy(), targets.numpy()))
    # The kernel packs the valid pairs in example order; the PyTorch step keeps zeros in empty slots.
    assert torch.equal(rows, contexts[mask])
    got = [grad_ctx, grad_tgt, curv_ctx, curv_tgt, losses]
    expected = [expected[0][mask], expected[1], expected[2][mask], expected[3],
                torch.zeros(B).index_add_(0, mask.nonzero()[:, 0], expected[4])]  # each window's summed loss
    for name, e, g in zip(["grad_context", "grad_target", "curv_context", "curv_target", "window losses"], expected, got):
        assert torch.allclose(e, g, atol=1e-5, rtol=1e-5), name
    # The row update: the same as the PyTorch one, and bit-identical whatever the number of threads.
    reference = w_in.clone()
    damped_row_update(reference, rows, grad_ctx, curv_ctx, lr=0.3)
    results = []
    for parts in (1, 2, 3):
        weight = w_in.clone()
        cpu_kernels.damped_row_update(weight.numpy(), rows.numpy(), grad_ctx.numpy(), curv_ctx.numpy(), 0.3, parts)
        results.append(weight)
    assert torch.allclose(results[0], reference, atol=1e-6)
    assert all(torch.equal(results[0], r) for r in results[1:])
