"""DeferredAdam against torch's dense Adam on tiny embeddings in float64, and its two catch-up versions."""

import pytest
import torch
from torch import nn

from w2v.data.vocab import Vocabulary
from w2v.kernels import cpu as cpu_kernels
from w2v.api import build_model
from w2v.optim.deferred_adam import DeferredAdam, catch_up_rows, step_rows

V, D, LR = 12, 5, 0.1


def _batches(steps: int, seed: int = 0):
    """Each step's looked-up rows and the weights of a linear loss on them. Rows 6..11 are idle for the
    first half (longer than the horizons used here), rows 10 and 11 always: rows that never move."""
    gen = torch.Generator().manual_seed(seed)
    for t in range(steps):
        rows = torch.randint(0, 6 if t < steps // 2 else 10, (4,), generator=gen)  # repeats add up
        yield t, rows, torch.randn(4, D, generator=gen, dtype=torch.float64)


def _train(steps: int, horizon: int, look_every: int = 0):
    """A deferred embedding (sparse gradients, watched) and a dense one with torch's Adam, trained
    alike with a learning rate that decays linearly; returns both and the optimizer."""
    start = torch.randn(V, D, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    deferred, dense = nn.Embedding(V, D, sparse=True).double(), nn.Embedding(V, D).double()
    for embedding in (deferred, dense):
        embedding.weight.data.copy_(start)
    optimizer, reference = DeferredAdam(deferred.parameters(), lr=LR, horizon=horizon), torch.optim.Adam(dense.parameters(), lr=LR)
    optimizer.watch(deferred)
    for t, rows, weights in _batches(steps):
        for opt in (optimizer, reference):
            opt.param_groups[0]["lr"] = LR * (1 - t / steps)
            opt.zero_grad()
        for embedding, opt in ((deferred, optimizer), (dense, reference)):
            (embedding(rows) * weights).sum().backward()
            opt.step()
        if look_every and t % look_every == 0:
            optimizer.current(deferred.weight)
    return deferred, dense, optimizer


@pytest.mark.parametrize("horizon", [400, 150])
def test_it_is_dense_adam_with_the_idle_rows_steps_put_off(horizon):
    deferred, dense, optimizer = _train(500, horizon)
    live = deferred.weight.detach()
    assert not torch.allclose(live, dense.weight, atol=1e-3)  # the idle rows' steps are still pending
    current = optimizer.current(deferred.weight)
    # at the shorter horizon, moves β1^150 (1e-7) of a row's first are left out
    assert torch.allclose(current, dense.weight, rtol=0, atol=1e-12 if horizon == 400 else 1e-8)
    assert torch.equal(deferred.weight.detach(), live)  # `current` works on a copy
    assert torch.equal(current[10:], dense.weight.detach()[10:])  # never looked up: never moved
    state = optimizer.state[deferred.weight]
    assert int(state["step"]) == 500 and state["exp_avg"].shape == (V, D)


def test_settled_rows_take_dense_steps_and_sparse_ones_again_after():
    """`settle` (a GPU's padded step) brings every row up to date and hands the embedding to torch's
    fused Adam for dense gradients; sparse gradients later start the deferral again, and all along the
    embedding is dense Adam's."""
    start = torch.randn(V, D, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    deferred, dense = nn.Embedding(V, D, sparse=True).double(), nn.Embedding(V, D).double()
    for embedding in (deferred, dense):
        embedding.weight.data.copy_(start)
    optimizer, reference = DeferredAdam(deferred.parameters(), lr=LR, horizon=50), torch.optim.Adam(dense.parameters(), lr=LR)
    optimizer.watch(deferred)
    state = optimizer.state[deferred.weight]
    for t, rows, weights in _batches(150):
        phase = "sparse" if t < 50 or t >= 100 else "dense"
        if phase == "dense":
            optimizer.settle(deferred.weight)
            assert "last" not in state and "lr_history" not in state
        for opt in (optimizer, reference):
            opt.zero_grad()
        (dense(rows) * weights).sum().backward()
        if phase == "dense":  # the padded step's gradient: dense, read around the module's hook
            deferred.weight.grad = dense.weight.grad.clone()
        else:
            (deferred(rows) * weights).sum().backward()
        optimizer.step()
        reference.step()
        assert ("last" in state) == (phase == "sparse")
        if t in (49, 99, 149):
            assert torch.allclose(optimizer.current(deferred.weight), dense.weight, rtol=0, atol=1e-12), t
    assert int(state["step"]) == 150


def test_looking_at_the_vectors_does_not_change_the_run():
    never, _, _ = _train(120, 50)
    often, _, _ = _train(120, 50, look_every=3)
    assert torch.equal(never.weight, often.weight)


def test_state_dict_round_trip_continues_the_same_run():
    steps = list(_batches(90))
    runs = []
    for interrupt in (None, 40):
        embedding = nn.Embedding(V, D, sparse=True).double()
        embedding.weight.data.copy_(torch.linspace(-1, 1, V * D, dtype=torch.float64).view(V, D))
        optimizer = DeferredAdam(embedding.parameters(), lr=LR, horizon=30)
        handle = optimizer.watch(embedding)
        for t, rows, weights in steps:
            if t == interrupt:  # a fresh optimizer, as after loading a checkpoint
                handle.remove()
                saved = optimizer.state_dict()
                optimizer = DeferredAdam(embedding.parameters(), lr=LR, horizon=30)
                optimizer.load_state_dict(saved)
                handle = optimizer.watch(embedding)
            optimizer.zero_grad()
            (embedding(rows) * weights).sum().backward()
            optimizer.step()
        runs.append(optimizer.current(embedding.weight))
    assert torch.equal(*runs)


def _run_kernel(kernel, args) -> None:
    """Calls a Numba kernel directly, the tensors among `args` as NumPy arrays sharing their memory."""
    kernel(*(a.numpy() if torch.is_tensor(a) else a for a in args))


@pytest.mark.warms_kernels
def test_pytorch_catch_up_equals_the_cpu_kernel():
    gen = torch.Generator().manual_seed(2)
    horizon, upto = 40, 100
    weight, m, v = (torch.randn(V, D, generator=gen, dtype=torch.float64) for _ in range(3))
    v = v.square()
    m[3] = 0  # a row without momentum does not move
    last = torch.tensor([100, 99, 90, 70, 62, 61, 60, 30, 0, 95, 98, 50])  # row 0 already current
    touched = last - torch.tensor([0, 0, 5, 0, 0, 0, 0, 0, 0, 30, 45, 0])  # rows 9, 10: idle since before `last`
    history = torch.rand(horizon, generator=gen, dtype=torch.float64) * 0.01
    rows = torch.tensor([0, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11])  # not row 1
    results = []
    for version in ("kernel", "torch"):
        tensors = [t.clone() for t in (weight, m, v, last)]
        args = (*tensors, touched, rows, upto, history, 0.9, 0.999, 1e-8)
        if version == "kernel":
            _run_kernel(cpu_kernels.adam_catch_up, args)
        else:
            catch_up_rows(*args, max_elements=3 * D * horizon)  # in chunks of a few rows
        results.append(tensors)
    for got, want in zip(*results):
        assert torch.allclose(got, want, rtol=1e-12, atol=1e-15)
    weight_after, _, _, last_after = results[0]
    assert torch.equal(weight_after[[0, 1, 3]], weight[[0, 1, 3]])  # current, not asked for, no momentum
    assert not torch.equal(weight_after[[2, 4]], weight[[2, 4]])
    assert last_after[rows].tolist() == [100] * len(rows) and last_after[1] == 99


@pytest.mark.warms_kernels
def test_pytorch_step_equals_the_cpu_kernel():
    gen = torch.Generator().manual_seed(4)
    horizon, step = 40, 101
    weight, m, v = (torch.randn(V, D, generator=gen, dtype=torch.float64) for _ in range(3))
    v = v.square()
    last = torch.tensor([100, 99, 90, 61, 61, 61, 100, 30, 0, 100, 61, 80])
    touched = torch.tensor([100, 99, 90, 61, 61, 61, 95, 30, 0, 100, 61, 80])
    history = torch.rand(horizon, generator=gen, dtype=torch.float64) * 0.01
    rows = torch.tensor([0, 1, 2, 5, 8, 11])  # current, one step behind, stale, expiring, never used, stale
    grads = torch.randn(len(rows), D, generator=gen, dtype=torch.float64)
    expiring = (touched == step - horizon).nonzero().squeeze(1)  # rows 3, 4, 5 and 10; 5 has a gradient now
    results = []
    for version in ("kernel", "torch"):
        tensors = [t.clone() for t in (weight, m, v, last, touched)]
        args = (*tensors, rows, grads, step, 0.01, history, 0.9, 0.999, 1e-8, expiring)
        if version == "kernel":
            _run_kernel(cpu_kernels.adam_step_rows, args)
        else:
            step_rows(*args)
        results.append(tensors)
    for got, want in zip(*results):
        assert torch.allclose(got, want, rtol=1e-12, atol=1e-15)
    weight_after, _, _, last_after, touched_after = results[0]
    assert last_after.tolist() == [101, 101, 101, 101, 101, 101, 100, 30, 101, 100, 101, 101]
    assert touched_after.tolist() == [101, 101, 101, 61, 61, 101, 95, 30, 101, 100, 61, 101]
    assert not torch.equal(weight_after[[0, 3, 8]], weight[[0, 3, 8]])  # a step, the catch-up, a first step
    assert torch.equal(weight_after[[6, 7, 9]], weight[[6, 7, 9]])  # not in the batch, not expiring


def test_skipgram_with_adam_trains_as_with_dense_adam():
    vocab = Vocabulary([f"w{i}" for i in range(V)], [5] * V)
    models = [build_model(vocab, "model=skipgram", f"model.embedding_dim={D}", "model.window=2", "model.shrink_window=false",
                          "model/optimizer=adam", "model.optimizer.lr=0.05", "model.scheduler=null").double()
              for _ in range(2)]
    models[1].load_state_dict(models[0].state_dict())
    deferred = models[0].configure_optimizers()
    assert isinstance(deferred, DeferredAdam) and models[0].in_embed.sparse
    dense = torch.optim.Adam(models[1].parameters(), lr=0.05)
    gen = torch.Generator().manual_seed(3)
    for _ in range(60):
        batch = {"centers": torch.randint(0, 4, (3,), generator=gen), "contexts": torch.randint(0, V, (3, 4), generator=gen),
                 "mask": torch.ones(3, 4, dtype=torch.bool)}
        for model, optimizer in zip(models, (deferred, dense)):
            model.backward_by_hand(batch)
            if optimizer is dense:  # torch's Adam takes dense gradients only
                model.in_embed.weight.grad = model.in_embed.weight.grad.to_dense()
            optimizer.step()
    assert not torch.allclose(models[0].in_embed.weight, models[1].in_embed.weight, atol=1e-6)  # rows 4.. pending
    assert torch.allclose(models[0].vector_matrix(), models[1].in_embed.weight, rtol=0, atol=1e-12)
    assert torch.allclose(models[0].out.weight, models[1].out.weight, rtol=0, atol=1e-12)
