"""Each output layer's loss and hand-written gradients against naive references on tiny tensors."""

import math

import numpy as np
import pytest
import torch

from w2v.data.vocab import Vocabulary
from w2v.kernels import cpu as cpu_kernels
from w2v.kernels import sequential as sequential_kernels
from w2v.api import build_model
from w2v.kernels import onednn
from w2v.models import CBOW, SkipGram, full_softmax, losses as loss_module
from w2v.models.binary_output import RowChanges, RowUpdate, context_mean, damped_row_update
from w2v.models.losses import SoftmaxCrossEntropy, decision_gradients, decision_loss

torch.manual_seed(0)
B, C, D, V, K = 3, 4, 5, 7, 2


def _mask():
    return torch.tensor([[1, 1, 0, 1], [0, 1, 1, 0], [1, 0, 0, 0]], dtype=torch.bool)  # (B, C)


def _full_softmax_model(cls, optimizer="adam", **kwargs):
    vocab = Vocabulary([f"w{i}" for i in range(V)], [5] * V)
    model = build_model(vocab, f"model={cls.__name__.lower()}", f"model.embedding_dim={D}", "model.window=2",
                        "model.shrink_window=false", f"model/optimizer={optimizer}",
                        *[f"model.{k}={v}" for k, v in kwargs.items()])
    with torch.no_grad():
        for p in model.parameters():
            p.normal_()  # far from the tiny initial values, so that the softmax is not uniform
    return model


@pytest.fixture(params=["rows", "columns", "rows-onednn", "columns-onednn", "fixed"])
def logits_layout(request, monkeypatch):
    """Runs a test with the logits as (U, V) and as (V, U), whatever the number of softmax rows, and
    with the exps times the output matrix by `torch.mm` and by oneDNN, however few the rows; and
    (`fixed`) with a GPU's softmax in fixed shapes, on the CPU."""
    if request.param == "fixed":
        monkeypatch.setattr(loss_module, "_softmax_cross_entropy_base2", lambda hidden, weight, bias, rows, targets,
                            scratch=None, operand=None: loss_module._softmax_cross_entropy_fixed(hidden, weight, bias,
                                                                                                rows, targets))
        return request.param
    layout, _, onednn_products = request.param.partition("-")
    monkeypatch.setattr(loss_module, "COLUMN_LOGITS_ROWS", 10**9 if layout == "rows" else 0)
    monkeypatch.setattr(loss_module, "ONEDNN_ROWS", 0)
    monkeypatch.setattr(onednn, "ENABLED", bool(onednn_products))
    if onednn_products and not onednn.usable(torch.ones(1)):
        pytest.skip("this PyTorch build has no oneDNN")
    return request.param


def test_onednn_products_match_torch_mm():
    if not onednn.usable(torch.ones(1)):
        pytest.skip("this PyTorch build has no oneDNN")
    gen = torch.Generator().manual_seed(6)
    x, w = torch.randn(9, D, generator=gen), torch.randn(D, 4, generator=gen)
    for w_rows in (w.t(), w.t().contiguous()):  # (4, D) as a transposed view and contiguous
        got = onednn.linear(x, w_rows)  # (9, 4)
        assert got.shape == (9, 4) and torch.allclose(got, x @ w, rtol=1e-5, atol=1e-6)


def _window_batch():
    # centers 5 and 2, then 5 again: Skip-gram computes the softmax of word 5 once for both windows
    return {"centers": torch.tensor([5, 2, 5]), "contexts": torch.randint(0, V, (B, C)), "mask": _mask()}


def _with_padding(batch):
    """`batch` with a window of no context word between its windows, as a padded batch has."""
    return {"centers": torch.cat([batch["centers"][:1], torch.tensor([3]), batch["centers"][1:]]),
            "contexts": torch.cat([batch["contexts"][:1], torch.randint(0, V, (1, C)), batch["contexts"][1:]]),
            "mask": torch.cat([batch["mask"][:1], torch.zeros(1, C, dtype=torch.bool), batch["mask"][1:]])}


@pytest.mark.parametrize("cbow_mean", [True, False])
def test_cbow_loss_matches_loop(logits_layout, cbow_mean):
    model, batch = _full_softmax_model(CBOW, cbow_mean=str(cbow_mean).lower()), _window_batch()
    got = model.example_losses(batch)
    weight, bias, embed = model.out.weight, model.out.bias, model.in_embed.weight
    for b in range(B):
        valid = [embed[batch["contexts"][b, c]] for c in range(C) if batch["mask"][b, c]]
        logits = weight @ (sum(valid) / (len(valid) if cbow_mean else 1)) + bias
        expected = -(logits[batch["centers"][b]] - torch.logsumexp(logits, 0))
        assert torch.allclose(got[b], expected, atol=1e-5)


def test_skipgram_loss_matches_loop(logits_layout):
    model, batch = _full_softmax_model(SkipGram), _window_batch()
    got = model.example_losses(batch)
    weight, bias, embed = model.out.weight, model.out.bias, model.in_embed.weight
    expected = []
    for b in range(B):
        logits = weight @ embed[batch["centers"][b]] + bias
        for c in range(C):
            if batch["mask"][b, c]:
                expected.append(-(logits[batch["contexts"][b, c]] - torch.logsumexp(logits, 0)))
    assert torch.allclose(got, torch.stack(expected), atol=1e-5)


@pytest.mark.parametrize("cls, optimizer, kwargs", [(CBOW, "adam", {}), (CBOW, "sgd", {}), (CBOW, "lazy_adam", {}),
                                                     (CBOW, "adam", {"max_norm": 1.0}),
                                                     (CBOW, "adam", {"max_norm": 1.0, "cbow_mean": "false"}),
                                                     (CBOW, "sgd", {"cbow_mean": "false"}), (SkipGram, "adam", {}),
                                                     (SkipGram, "adam", {"max_norm": 1.0}), (SkipGram, "sgd", {}),
                                                     (SkipGram, "lazy_adam", {})])
@pytest.mark.parametrize("chunk", [None, 1])
@pytest.mark.parametrize("padded", [False, True])
def test_hand_written_step_gradients_equal_autograd(cls, optimizer, kwargs, chunk, padded, logits_layout, monkeypatch):
    """Flat inputs (a CPU's) and padded ones (a GPU's fixed shapes, padding weighted 0) give autograd's
    losses and gradients, a window without context words among them; padded inputs give dense
    embedding gradients."""
    if chunk:  # a softmax row at a time
        monkeypatch.setattr(full_softmax, "softmax_chunk", lambda device, vocab_size: chunk)
    model, batch = _full_softmax_model(cls, optimizer, **kwargs), _window_batch()
    model.example_losses(batch)  # max_norm renormalises the looked-up rows in place: do it before both
    params = list(model.parameters())
    losses = model.example_losses(batch)
    expected = torch.autograd.grad(losses.mean(), params)
    stepped = _with_padding(batch)  # a window without context words: the flat inputs leave it out
    got_losses, weights = model.backward_by_hand(stepped, padded)
    real = weights > 0
    assert torch.allclose(got_losses[real], losses, atol=1e-6)
    assert torch.allclose(weights[real], torch.full_like(losses, 1 / len(losses)))
    pairs = stepped["mask"].numel() if cls is SkipGram else len(stepped["centers"])  # padded: every slot, every window
    assert int(real.sum()) == len(losses) and len(got_losses) == (pairs if padded else len(losses))
    assert model.in_embed.weight.grad.is_sparse == (model.sparse and not padded)
    assert expected[0].is_sparse == model.sparse
    assert model.sparse == (optimizer != "adam" or cls is SkipGram)  # Skip-gram: Adam with deferred idle rows
    for param, want in zip(params, expected):
        got = param.grad.to_dense() if param.grad.is_sparse else param.grad
        assert torch.allclose(got, want.to_dense() if want.is_sparse else want, atol=1e-6)


def test_max_norm_embedding_renormalises_as_nn_embedding():
    """The looked-up rows above max_norm (and only those) are scaled as nn.Embedding(max_norm=1) scales them."""
    from w2v.models.base import MaxNormEmbedding

    weight = torch.randn(V, D) * torch.tensor([0.1, 0.3, 1.0, 2.0, 5.0, 0.5, 3.0]).unsqueeze(1)  # norms below and above 1
    ids = torch.tensor([[4, 1, 4], [3, 0, 2]])  # repeats; rows 5 and 6 are not looked up
    ours, reference = MaxNormEmbedding(V, D, max_norm=1.0), torch.nn.Embedding(V, D, max_norm=1.0)
    for module in (ours, reference):
        module.weight.data.copy_(weight)
    assert torch.allclose(ours(ids), reference(ids), atol=1e-6)
    assert torch.allclose(ours.weight, reference.weight, atol=1e-6)
    norms = ours.weight.norm(dim=1)
    assert (norms[[2, 3, 4]] <= 1.0 + 1e-6).all() and torch.equal(ours.weight[[0, 1, 5, 6]], weight[[0, 1, 5, 6]])


@pytest.mark.parametrize("with_bias", [True, False])
def test_softmax_cross_entropy_gradients_match_autograd(with_bias, logits_layout):
    gen = torch.Generator().manual_seed(1)
    U = 4
    hidden, weight = torch.randn(U, D, generator=gen, dtype=torch.float64), torch.randn(V, D, generator=gen, dtype=torch.float64)
    bias = torch.randn(V, generator=gen, dtype=torch.float64) if with_bias else None
    # row 0 predicts three words, one of them twice; row 2 predicts nothing; row 3 one word
    rows = torch.tensor([0, 0, 0, 0, 1, 1, 3])
    targets = torch.tensor([2, 5, 2, 6, 0, 2, 4])
    upstream = torch.randn(len(rows), generator=gen, dtype=torch.float64)
    inputs = [t.clone().requires_grad_() for t in (hidden, weight) + ((bias,) if with_bias else ())]
    losses = SoftmaxCrossEntropy.apply(inputs[0], inputs[1], inputs[2] if with_bias else None, rows, targets)
    (losses * upstream).sum().backward()
    reference = [t.clone().requires_grad_() for t in (hidden, weight) + ((bias,) if with_bias else ())]
    logits = reference[0] @ reference[1].t() + (reference[2] if with_bias else 0)
    expected = -torch.log_softmax(logits, -1)[rows, targets]
    (expected * upstream).sum().backward()
    assert torch.allclose(losses, expected, atol=1e-12)
    for got, want in zip(inputs, reference):
        assert torch.allclose(got.grad, want.grad, atol=1e-12)


def test_a_cbow_sized_batch_takes_the_column_layout_with_the_same_results(monkeypatch):
    gen = torch.Generator().manual_seed(5)
    U, words = loss_module.COLUMN_LOGITS_ROWS, 300
    hidden, weight, bias = torch.randn(U, D, generator=gen), torch.randn(words, D, generator=gen), torch.randn(words, generator=gen)
    rows, targets = torch.arange(U).repeat(2), torch.randint(0, words, (2 * U,), generator=gen)
    results = []
    for threshold in (U, U + 1):  # the default at this size, then the (U, V) logits
        monkeypatch.setattr(loss_module, "COLUMN_LOGITS_ROWS", threshold)
        losses, softmax = loss_module.softmax_cross_entropy(hidden, weight, bias, rows, targets)
        assert softmax.exps.t().is_contiguous() == (threshold == U)
        grads = loss_module.softmax_cross_entropy_gradients(hidden, weight, softmax, rows, targets, torch.ones(2 * U))
        results.append((losses, softmax.exps * softmax.inv_total.unsqueeze(1), *grads))
    for got, want in zip(*results):
        assert torch.allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("with_bias", [True, False])
def test_a_batch_taken_in_chunks_of_rows_gives_the_same_losses_and_gradients(with_bias, logits_layout):
    gen = torch.Generator().manual_seed(4)
    U = 7
    hidden, weight = torch.randn(U, D, generator=gen), torch.randn(V, D, generator=gen)
    bias = torch.randn(V, generator=gen) if with_bias else None
    # pairs in no row order, row 4 without any, row 1 with three
    rows, targets = torch.tensor([3, 1, 6, 0, 1, 2, 5, 1, 3]), torch.tensor([0, 2, 6, 1, 2, 4, 3, 5, 0])
    upstream = torch.rand(len(rows), generator=gen)
    whole = loss_module.softmax_cross_entropy_backward(hidden, weight, bias, rows, targets, upstream, chunk=U)
    # one memory for the logits of every chunk and call and after them oneDNN's operand, its contents stale
    scratch = torch.full(((3 + D + 1) * V,), math.nan)
    for chunk, memory in [(1, None), (2, None), (3, None), (1, scratch), (2, scratch), (3, scratch)]:
        got = loss_module.softmax_cross_entropy_backward(hidden, weight, bias, rows, targets, upstream, chunk, memory)
        assert (got[3] is None) == (not with_bias)
        for part, want in zip(got, whole):
            if want is not None:
                assert part.shape == want.shape and torch.allclose(part, want, rtol=1e-5, atol=1e-6)
    if logits_layout == "fixed":  # a GPU's allocator keeps freed memory: no scratch
        return
    assert not scratch[:V].isnan().any()  # the logits went there
    if logits_layout.endswith("onednn"):  # and the operand after the last call's 3 rows of logits
        assert not scratch[3 * V:].isnan().any()


def test_pairs_given_row_by_row_are_chunked_without_reading_the_rows():
    gen = torch.Generator().manual_seed(8)
    U, per_row = 7, 3
    hidden, weight, bias = torch.randn(U, D, generator=gen), torch.randn(V, D, generator=gen), torch.randn(V, generator=gen)
    rows, targets = torch.arange(U).repeat_interleave(per_row), torch.randint(0, V, (U * per_row,), generator=gen)
    upstream = torch.rand(len(rows), generator=gen) * (torch.rand(len(rows), generator=gen) > 0.3)  # some padding
    whole = loss_module.softmax_cross_entropy_backward(hidden, weight, bias, rows, targets, upstream, chunk=U)
    for chunk in (1, 2, 3):
        got = loss_module.softmax_cross_entropy_backward(hidden, weight, bias, rows, targets, upstream, chunk,
                                                         pairs_per_row=per_row)
        for part, want in zip(got, whole):
            assert part.shape == want.shape and torch.allclose(part, want, rtol=1e-5, atol=1e-6)


def test_softmax_cross_entropy_loss_stays_exact_where_the_probability_underflows(logits_layout):
    hidden = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    weight = torch.tensor([[300.0, 0.0], [0.0, 2.0], [0.0, -1.0]])  # row 0: word 0 leads by ~300 nats
    rows, targets = torch.tensor([0, 0, 1]), torch.tensor([1, 0, 2])
    got = SoftmaxCrossEntropy.apply(hidden, weight, None, rows, targets)
    expected = -torch.log_softmax(hidden.double() @ weight.double().t(), -1)[rows, targets]
    assert torch.isfinite(got).all()
    assert torch.allclose(got.double(), expected, rtol=1e-6)


@pytest.mark.parametrize("shift", [-95.0, 95.0])
def test_rows_whose_exps_underflow_or_overflow_are_redone_exactly(shift, logits_layout):
    # CPU exps are taken without subtracting each row's maximum; a row whose logits all sit far
    # below 0 (sum of exps under 2^-24) or above 88 (overflow) must come out as if they had been.
    gen = torch.Generator().manual_seed(3)
    U = 6
    hidden, weight = torch.randn(U, D, generator=gen), torch.randn(V, D, generator=gen)
    hidden[:, 0], weight[:, 0] = torch.tensor([1.0, 0.0, 1.0, 0.0, 0.0, 1.0]), shift  # rows 0, 2, 5 shifted
    rows, targets = torch.tensor([0, 1, 2, 2, 3, 5]), torch.tensor([1, 4, 0, 6, 2, 3])
    inputs = [hidden.clone().requires_grad_(), weight.clone().requires_grad_()]
    losses = SoftmaxCrossEntropy.apply(*inputs, None, rows, targets)
    losses.sum().backward()
    reference = [t.double().requires_grad_() for t in (hidden, weight)]
    expected = -torch.log_softmax(reference[0] @ reference[1].t(), -1)[rows, targets]
    expected.sum().backward()
    assert torch.allclose(losses.double(), expected, rtol=1e-5, atol=1e-5)
    for got, want in zip(inputs, reference):
        assert torch.allclose(got.grad.double(), want.grad, atol=1e-4)
    # the training step's path, where oneDNN's product also gives the sums of the exps
    for chunk in (U, 4):
        stepped = loss_module.softmax_cross_entropy_backward(hidden, weight, None, rows, targets, torch.ones(len(rows)), chunk)
        assert torch.allclose(stepped[0].double(), expected, rtol=1e-5, atol=1e-5)
        for got, want in zip(stepped[1:3], reference):
            assert torch.allclose(got.double(), want.grad, atol=1e-4)


def _labels(kind: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Labels (B, 1+K) and valid targets (B, 1+K) or None: negative sampling's (the center, then
    noise), or a hierarchical softmax's paths of mixed codes and lengths (padding at the end)."""
    if kind == "negative":
        labels = torch.zeros(B, 1 + K)
        labels[:, 0] = 1
        return labels, None
    labels = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 0.0], [1.0, 1.0, 0.0]])
    valid = torch.tensor([[True, True, True], [True, True, False], [True, False, False]])
    return labels, valid


@pytest.mark.parametrize("kind", ["negative", "hierarchical"])
def test_decision_loss_matches_loop(kind):
    ctx, mask, targets = torch.randn(B, C, D), _mask(), torch.randn(B, 1 + K, D)
    labels, valid = _labels(kind)
    got = decision_loss(ctx, mask, targets, labels, valid)
    expected = []
    sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    for b in range(B):
        for c in range(C):
            if mask[b, c]:
                loss = 0.0
                for j in range(1 + K):
                    if valid is None or valid[b, j]:
                        score = float(targets[b, j] @ ctx[b, c])
                        loss -= math.log(sig(score) if labels[b, j] == 1 else sig(-score))
                expected.append(loss)
    assert torch.allclose(got, torch.tensor(expected), atol=1e-5)


@pytest.mark.parametrize("kind", ["negative", "hierarchical"])
def test_decision_gradients_match_autograd(kind):
    ctx = torch.randn(B, C, D, requires_grad=True)
    targets = torch.randn(B, 1 + K, D, requires_grad=True)
    mask = _mask()
    labels, valid = _labels(kind)
    decision_loss(ctx, mask, targets, labels, valid).sum().backward()
    g_ctx, g_tgt, curv_ctx, curv_tgt, losses = decision_gradients(ctx.detach(), mask, targets.detach(), labels, valid)
    assert torch.allclose(g_ctx, ctx.grad, atol=1e-5)
    assert torch.allclose(g_tgt, targets.grad, atol=1e-5)
    assert torch.allclose(losses, decision_loss(ctx, mask, targets, labels, valid).detach(), atol=1e-5)
    # Curvature: σ'(s)|u|² for each context row over its valid targets, zero where masked.
    s = torch.einsum("bcd,bkd->bck", ctx.detach(), targets.detach())
    slope = torch.sigmoid(s) * torch.sigmoid(-s) * mask.unsqueeze(-1)
    if valid is not None:
        slope = slope * valid.unsqueeze(1)
        assert (g_tgt[~valid] == 0).all() and (curv_tgt[~valid] == 0).all()
    assert torch.allclose(curv_ctx, (slope * targets.detach().square().sum(-1).unsqueeze(1)).sum(-1), atol=1e-5)
    assert (curv_ctx[~mask] == 0).all() and (curv_tgt >= 0).all()


@pytest.mark.parametrize("kind", ["negative", "hierarchical"])
def test_cbow_decisions_are_those_of_the_context_mean(kind):
    """CBOW's loss is the loss of the window's mean input vector; the mean's gradient is autograd's."""
    ctx, mask, targets = torch.randn(B, C, D, requires_grad=True), _mask(), torch.randn(B, 1 + K, D)
    labels, valid = _labels(kind)
    hidden = torch.stack([ctx[b][mask[b]].mean(0) for b in range(B)]).unsqueeze(1)  # (B, 1, D) a loop's mean
    assert torch.allclose(context_mean(ctx, mask), hidden, atol=1e-6)
    windows = torch.ones(B, 1, dtype=torch.bool)
    leaf = hidden.detach().requires_grad_()
    decision_loss(leaf, windows, targets, labels, valid).sum().backward()
    grad_hidden = decision_gradients(hidden.detach(), windows, targets, labels, valid)[0]
    assert torch.allclose(grad_hidden, leaf.grad, atol=1e-5)


@pytest.mark.warms_kernels
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



@pytest.mark.warms_kernels
@pytest.mark.parametrize("kind", ["negative", "hierarchical"])
@pytest.mark.parametrize("mean_context", [False, True], ids=["skipgram", "cbow"])
def test_fused_cpu_kernels_match_the_pytorch_step(kind, mean_context):
    vocab = 30
    gen = torch.Generator().manual_seed(3)
    w_in, w_out = torch.randn(vocab, D, generator=gen), torch.randn(vocab, D, generator=gen)
    contexts = torch.randint(vocab, (B, C), generator=gen)
    targets = torch.randint(vocab, (B, 1 + K), generator=gen)
    labels, valid = _labels(kind)
    if valid is not None:
        targets = torch.where(valid, targets, -1)  # the kernels' convention for a missing target
    mask = _mask()
    tgt_vecs = w_out[targets.clamp_min(0)]
    if mean_context:
        windows = torch.ones(B, 1, dtype=torch.bool)
        g_in, g_tgt, c_in, c_tgt, window_losses = decision_gradients(context_mean(w_in[contexts], mask), windows,
                                                                     tgt_vecs, labels, valid)
        # word2vec's CBOW: every context row of a window takes the whole gradient of the window's mean
        expected = [g_in.expand(-1, C, -1)[mask], g_tgt, c_in.expand(-1, C)[mask], c_tgt, window_losses]
    else:
        g_in, g_tgt, c_in, c_tgt, pair_losses = decision_gradients(w_in[contexts], mask, tgt_vecs, labels, valid)
        expected = [g_in[mask], g_tgt, c_in[mask], c_tgt,
                    torch.zeros(B).index_add_(0, mask.nonzero()[:, 0], pair_losses)]  # each window's summed loss
    masked = torch.where(mask, contexts, -1)  # the kernels' convention for an empty slot
    arrays = (w_in.numpy(), w_out.numpy(), masked.numpy(), targets.numpy(), labels.numpy())
    tgt_rows = torch.where(targets >= 0, targets, vocab - 1).reshape(-1)  # missing: a row their zero gradients leave
    if mean_context:  # gradients shared by several rows come once, with the rows that take them
        rows, windows, grad_hidden, curv_ctx, hidden, coeffs, curv_tgt, losses = map(
            torch.from_numpy, cpu_kernels.cbow_decision_gradients(*arrays))
        ctx = RowUpdate(rows, grad_hidden, curv_ctx, sources=windows)
        tgt = RowUpdate(tgt_rows, hidden, curv_tgt.reshape(-1), sources=torch.arange(B).repeat_interleave(1 + K),
                        scales=coeffs.reshape(-1))
        grad_tgt = tgt.per_row()[1].view(B, 1 + K, D)
    else:
        rows, grad_ctx, curv_ctx, grad_tgt, curv_tgt, losses = map(
            torch.from_numpy, cpu_kernels.skipgram_decision_gradients(*arrays))
        ctx, tgt = RowUpdate(rows, grad_ctx, curv_ctx), RowUpdate(tgt_rows, grad_tgt.view(-1, D), curv_tgt.reshape(-1))
    # The kernel packs the valid context words in example order; the PyTorch step keeps zeros in empty slots.
    assert torch.equal(rows, contexts[mask])
    got = [ctx.per_row()[1], grad_tgt, curv_ctx, curv_tgt, losses]
    for name, e, g in zip(["grad_context", "grad_target", "curv_context", "curv_target", "window losses"], expected, got):
        assert torch.allclose(e, g, atol=1e-5, rtol=1e-5), name
    # The row updates: the same as the PyTorch ones, and bit-identical whatever the number of threads.
    for update, matrix in ((ctx, w_in), (tgt, w_out)):
        reference = matrix.clone()
        update.apply(reference, lr=0.3, threads=None)
        results = []
        for parts in (1, 2, 3):
            weight = matrix.clone()
            update.apply(weight, lr=0.3, threads=parts)
            results.append(weight)
        assert torch.allclose(results[0], reference, atol=1e-6)
        assert all(torch.equal(results[0], r) for r in results[1:])


def _word2vec_sgd(w_in, w_out, contexts, targets, labels, lr, shards, mean_context, pieces=1, lr_end=None):
    """The sequential rule, naively in float64: the windows in `pieces` consecutive runs, one after
    the other, piece p at rate lr + (lr_end - lr)·p/pieces; in each, every shard of consecutive
    windows trains its own copy of the weights by word2vec's SGD, decision after decision, and the
    weights then take the sum of the copies' changes. Returns the new (w_in, w_out) and each
    window's summed loss."""
    w_in, w_out = w_in.double(), w_out.double()
    losses = torch.zeros(len(contexts), dtype=torch.float64)
    lr_end = lr if lr_end is None else lr_end
    n = len(contexts)
    for p in range(pieces):
        lo, hi = p * n // pieces, (p + 1) * n // pieces
        rate = lr + (lr_end - lr) * p / pieces
        new_in, new_out = w_in.clone(), w_out.clone()
        for s in range(shards):
            copy_in, copy_out = w_in.clone(), w_out.clone()
            for b in range(lo + s * (hi - lo) // shards, lo + (s + 1) * (hi - lo) // shards):
                rows = [int(c) for c in contexts[b] if c >= 0]
                decisions = [(int(t), float(label)) for t, label in zip(targets[b], labels[b]) if t >= 0]
                if not rows:  # a window without context words makes no decision
                    continue
                inputs = [copy_in[rows].mean(0)] if mean_context else [copy_in[row] for row in rows]  # views for Skip-gram
                for v in inputs:
                    step_in = torch.zeros_like(v)
                    for t, label in decisions:
                        prob = torch.sigmoid(v @ copy_out[t])
                        losses[b] -= torch.log(prob if label == 1 else 1 - prob)
                        step = rate * (label - prob)
                        step_in += step * copy_out[t]
                        copy_out[t] += step * v
                    if mean_context:
                        for row in rows:  # every context row takes the mean's whole step, as in word2vec
                            copy_in[row] += step_in
                    else:
                        v += step_in
            new_in += copy_in - w_in
            new_out += copy_out - w_out
        w_in, w_out = new_in, new_out
    return w_in, w_out, losses


@pytest.mark.warms_kernels(order=1)  # the chunk kernels' tests call it, soon after the first runs
@pytest.mark.parametrize("shards", [1, 2, 3])
@pytest.mark.parametrize("kind", ["negative", "hierarchical"])
@pytest.mark.parametrize("mean_context", [False, True], ids=["skipgram", "cbow"])
def test_sequential_kernel_is_word2vec_sgd_in_shards(kind, mean_context, shards):
    vocab = 6  # few rows: windows and shards share many of them, and some rows are one shard's alone
    gen = torch.Generator().manual_seed(4)
    w_in, w_out = torch.randn(vocab, D, generator=gen), torch.randn(vocab, D, generator=gen)
    contexts = torch.where(_mask(), torch.randint(vocab, (B, C), generator=gen), -1)
    targets = torch.randint(vocab, (B, 1 + K), generator=gen)
    labels, valid = _labels(kind)
    if valid is not None:
        targets = torch.where(valid, targets, -1)
    # and a window whose context words are all masked: no decision, no step
    contexts, targets, labels = (torch.cat([x, x[:1]]) for x in (contexts, targets, labels))
    contexts[-1] = -1
    n = len(contexts)
    # (threads, all_shared, sync): the whole batch in one piece, merged in the kernel or returned;
    # and in pieces of at most 2 windows (ceil(n / 2) pieces), at a falling rate
    runs = ((1, False, n), (2, False, n), (3, False, n), (2, True, n), (1, False, 2), (3, False, 2))
    expected = {sync: _word2vec_sgd(w_in, w_out, contexts, targets, labels, 0.3, shards, mean_context,
                                    pieces=-(-n // sync), lr_end=0.3 if sync == n else 0.1) for sync in (n, 2)}
    results = {}
    for threads, all_shared, sync in runs:
        cpu_kernels.use_threads(threads)
        trained_in, trained_out = w_in.clone(), w_out.clone()  # the kernel trains one shard's rows in place
        in_rows, in_deltas, out_rows, out_deltas, losses = map(torch.from_numpy, sequential_kernels.sequential_sgd(
            trained_in.numpy(), trained_out.numpy(), contexts.numpy(), targets.numpy(), labels.numpy(), 0.3,
            0.3 if sync == n else 0.1, shards, sync, mean_context, all_shared, False, threads))
        if all_shared:  # every row trained on a copy: its change is returned, to be added
            assert set(in_rows[in_rows >= 0].tolist()) == set(contexts[contexts >= 0].tolist())
            assert torch.equal(trained_in, w_in) and torch.equal(trained_out, w_out)
        else:  # merged in the kernel
            assert len(in_rows) == len(out_rows) == 0
        RowChanges(in_rows, in_deltas).apply(trained_in, lr=0.3, threads=threads)
        RowChanges(out_rows, out_deltas).apply(trained_out, lr=0.3, threads=threads)
        results[threads, all_shared, sync] = trained_in, trained_out, losses
    cpu_kernels.use_threads(torch.get_num_threads())
    for (threads, all_shared, sync), (trained_in, trained_out, losses) in results.items():
        expected_in, expected_out, expected_losses = expected[sync]
        assert torch.allclose(losses.double(), expected_losses, atol=1e-5) and losses[-1] == 0
        assert torch.allclose(trained_in.double(), expected_in, atol=1e-5)
        assert torch.allclose(trained_out.double(), expected_out, atol=1e-5)
    for sync in (n, 2):  # the same bits whatever the number of threads
        reference = results[1, False, sync]
        for threads in (2, 3):
            if (threads, False, sync) in results:
                assert all(torch.equal(a, b) for a, b in zip(results[threads, False, sync], reference))
        assert not torch.equal(reference[0], w_in) and not torch.equal(reference[1], w_out)
    # pieces train differently from one piece: the later ones see the earlier ones' merged steps
    assert not torch.allclose(results[1, False, 2][0], results[1, False, n][0], atol=1e-4)


@pytest.mark.parametrize("mean_context", [False, True], ids=["skipgram", "cbow"])
def test_lock_free_kernel_trains_in_place_what_the_copies_would(mean_context):
    """Hogwild!: where no row is met by two shards, training every row in place gives the copies'
    result bit for bit; where rows are shared, the shards train them in place too, and they move."""
    gen = torch.Generator().manual_seed(5)
    n, vocab = 8, 12  # shard 0's windows use rows 0..5, shard 1's rows 6..11
    w_in, w_out = torch.randn(vocab, D, generator=gen), torch.randn(vocab, D, generator=gen)
    half = (torch.arange(n) >= n // 2)[:, None]  # (n, 1) the windows of shard 1
    mask = torch.rand(n, C, generator=gen) < 0.7
    mask[:, 0] = True  # every window has a context word
    contexts = torch.where(mask, torch.randint(6, (n, C), generator=gen) + 6 * half, -1)  # (n, C)
    targets = torch.randint(6, (n, 1 + K), generator=gen) + 6 * half  # (n, 1+K) the center, then noise words
    labels = torch.zeros(n, 1 + K)
    labels[:, 0] = 1.0

    def train(contexts, targets, shards, lock_free):
        trained_in, trained_out = w_in.clone(), w_out.clone()
        *changes, losses = sequential_kernels.sequential_sgd(
            trained_in.numpy(), trained_out.numpy(), contexts.numpy(), targets.numpy(), labels.numpy(), 0.3, 0.3,
            shards, n, mean_context, False, lock_free, 2)
        assert all(len(a) == 0 for a in changes)  # trained in place or merged: nothing left to add
        return trained_in, trained_out, torch.from_numpy(losses)

    apart, together = train(contexts, targets, 2, True), train(contexts, targets, 2, False)
    assert all(torch.equal(a, b) for a, b in zip(apart, together))
    expected_in, expected_out, expected_losses = _word2vec_sgd(w_in, w_out, contexts, targets, labels, 0.3, 2,
                                                               mean_context)
    assert torch.allclose(apart[0].double(), expected_in, atol=1e-5)
    assert torch.allclose(apart[1].double(), expected_out, atol=1e-5)
    assert torch.allclose(apart[2].double(), expected_losses, atol=1e-5)
    # rows shared by both shards (every window on rows 0..5): one shard is word2vec's SGD exactly,
    # two train in place at once, so the result depends on the threads' timing; every row still moves
    shared_contexts, shared_targets = torch.where(contexts >= 0, contexts % 6, -1), targets % 6
    one = train(shared_contexts, shared_targets, 1, True)
    expected_in, _, expected_losses = _word2vec_sgd(w_in, w_out, shared_contexts, shared_targets, labels, 0.3, 1,
                                                    mean_context)
    assert torch.allclose(one[0].double(), expected_in, atol=1e-5)
    assert torch.allclose(one[2].double(), expected_losses, atol=1e-5)
    two_in, _, two_losses = train(shared_contexts, shared_targets, 2, True)
    assert torch.isfinite(two_losses).all() and torch.allclose(two_losses.sum(), one[2].sum(), rtol=0.5)
    assert not torch.equal(two_in[:6], w_in[:6]) and torch.equal(two_in[6:], w_in[6:])


def test_sequential_kernel_refuses_pieces_with_all_shared():
    contexts, targets = np.zeros((4, 2), dtype=np.int64), np.zeros((4, 2), dtype=np.int64)
    weights = np.zeros((3, 4), dtype=np.float32)
    with pytest.raises(ValueError, match="one piece"):
        sequential_kernels.sequential_sgd(weights, weights.copy(), contexts, targets, np.ones((4, 2), np.float32), 0.1,
                                          0.1, 2, 2, True, True, False, 1)
    with pytest.raises(ValueError, match="lock_free trains every row in place"):
        sequential_kernels.sequential_sgd(weights, weights.copy(), contexts, targets, np.ones((4, 2), np.float32), 0.1,
                                          0.1, 2, 4, True, True, True, 1)


def test_prefetch_is_only_a_hint():
    """prefetch_row compiles for contiguous and strided matrices, changes nothing, and is refused
    at compile time for anything but a 2-D array and an integer row."""
    import numba

    from w2v.kernels.prefetch import prefetch_row

    @numba.njit
    def prefetch_all(matrix):
        for row in range(matrix.shape[0]):
            prefetch_row(matrix, row)
        prefetch_row(matrix, matrix.shape[0] + 1000)  # past the end: dropped, never a fault
        return matrix.sum()

    matrix = np.random.default_rng(0).random((50, 37), dtype=np.float32)
    for view in (matrix, matrix[::3, 1::2]):  # C-contiguous, and strided both ways
        before = view.copy()
        assert prefetch_all(view) == pytest.approx(float(before.sum()), rel=1e-6)
        assert np.array_equal(view, before)
    with pytest.raises(numba.core.errors.TypingError):
        prefetch_all(matrix[0])


@pytest.mark.parametrize("cls", [CBOW, SkipGram])
def test_hand_written_step_under_mixed_precision(cls, logits_layout):
    model, batch = _full_softmax_model(cls), _window_batch()
    model.backward_by_hand(batch)
    dense = [lambda p=p: p.grad.to_dense() if p.grad.is_sparse else p.grad for p in model.parameters()]
    exact = [grad().clone() for grad in dense]
    with torch.autocast("cpu", dtype=torch.bfloat16):  # trainer.precision=bf16-mixed
        model.backward_by_hand(batch)
    for param, grad, want in zip(model.parameters(), dense, exact):
        assert param.grad.dtype == param.dtype
        assert torch.allclose(grad(), want, atol=0.02 * want.abs().max())
