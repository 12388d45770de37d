"""LazyAdam against torch's Adam and against a naive per-row Adam on tiny matrices, in float64."""

import torch

from w2v.optim.lazy_adam import LazyAdam

V, D, LR, BETAS, EPS = 6, 3, 0.1, (0.9, 0.999), 1e-8


def _sparse(rows, values):
    return torch.sparse_coo_tensor(torch.tensor(rows).unsqueeze(0), values, (V, D), check_invariants=True)


def _steps():
    """Three steps' sparse gradients; rows repeat within a step (their gradients add up)."""
    gen = torch.Generator().manual_seed(0)
    rows = [[0, 2, 2, 5], [1, 2], [5, 0, 5]]
    return [(r, torch.randn(len(r), D, generator=gen, dtype=torch.float64)) for r in rows]


def test_with_every_row_in_every_step_it_is_adam():
    gen = torch.Generator().manual_seed(1)
    # an embedding (sparse gradients) and a bias (dense ones)
    start = [torch.randn(V, D, generator=gen, dtype=torch.float64), torch.randn(V, generator=gen, dtype=torch.float64)]
    lazy, dense = ([p.clone().requires_grad_() for p in start] for _ in range(2))
    lazy_opt, dense_opt = LazyAdam(lazy, lr=LR), torch.optim.Adam(dense, lr=LR)
    for _ in range(4):
        rows = list(range(V)) + [1, 4]  # every row, two of them twice
        values, bias_grad = (torch.randn(*shape, generator=gen, dtype=torch.float64) for shape in ((len(rows), D), (V,)))
        lazy[0].grad, lazy[1].grad = _sparse(rows, values), bias_grad
        dense[0].grad, dense[1].grad = _sparse(rows, values).to_dense(), bias_grad
        lazy_opt.step()
        dense_opt.step()
        assert lazy[0].grad.is_sparse  # the optimizer gives the gradient back as it found it
    for got, want in zip(lazy, dense):
        assert torch.allclose(got, want, atol=1e-12)


def test_rows_outside_the_batch_keep_their_values_and_moments():
    weight = torch.randn(V, D, dtype=torch.float64).requires_grad_()
    optimizer = LazyAdam([weight], lr=LR, betas=BETAS, eps=EPS)
    # naive reference: Adam's formulas row by row, with the matrix's step count
    expected, m, v = weight.detach().clone(), torch.zeros_like(weight), torch.zeros_like(weight)
    for t, (rows, values) in enumerate(_steps(), start=1):
        before = weight.detach().clone()
        weight.grad = _sparse(rows, values)
        optimizer.step()
        grad = _sparse(rows, values).to_dense()
        for r in sorted(set(rows)):
            m[r] = BETAS[0] * m[r] + (1 - BETAS[0]) * grad[r]
            v[r] = BETAS[1] * v[r] + (1 - BETAS[1]) * grad[r] ** 2
            m_hat, v_hat = m[r] / (1 - BETAS[0] ** t), v[r] / (1 - BETAS[1] ** t)
            expected[r] -= LR * m_hat / (v_hat.sqrt() + EPS)
        untouched = [r for r in range(V) if r not in rows]
        assert torch.equal(weight.detach()[untouched], before[untouched])  # bit for bit: never written
        assert torch.allclose(weight.detach(), expected, atol=1e-12)
    state = optimizer.state[weight]
    assert torch.allclose(state["exp_avg"], m, atol=1e-12) and torch.allclose(state["exp_avg_sq"], v, atol=1e-12)
    assert state["exp_avg"][3].abs().sum() == 0 and int(state["step"]) == 3  # row 3 never had a gradient


def test_state_dict_round_trip_continues_the_same_run():
    steps = _steps()
    weight = torch.randn(V, D, dtype=torch.float64).requires_grad_()
    straight, resumed = weight.detach().clone().requires_grad_(), weight.detach().clone().requires_grad_()
    optimizer = LazyAdam([straight], lr=LR)
    for rows, values in steps:
        straight.grad = _sparse(rows, values)
        optimizer.step()
    first = LazyAdam([resumed], lr=LR)
    resumed.grad = _sparse(*steps[0])
    first.step()
    second = LazyAdam([resumed], lr=LR)  # a fresh optimizer, as after loading a checkpoint
    second.load_state_dict(first.state_dict())
    for rows, values in steps[1:]:
        resumed.grad = _sparse(rows, values)
        second.step()
    assert torch.equal(resumed, straight)
