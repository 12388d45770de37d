"""LazyAdam: Adam whose update of an embedding touches only the rows in the batch."""

from __future__ import annotations

import torch


class LazyAdam(torch.optim.Adam):
    """Adam (torch's fused kernel) for dense gradients; for a sparse one, Adam's update of its rows alone.

    A word's vector and its two moments change only at the steps whose batch contains the word, as
    with torch.optim.SparseAdam (and TensorFlow's LazyAdam): rows outside the batch neither decay
    their moments nor keep moving on old momentum, and the step costs O(rows in the batch) instead
    of three passes over the (V, D) matrix and its moments. The rows that are updated get Adam's
    formula, with the bias corrections of the matrix's step count t:
        m ← β1·m + (1-β1)·g,  v ← β2·v + (1-β2)·g²,  w ← w - lr/(1-β1^t) · m / (sqrt(v/(1-β2^t)) + eps)
    Where every row has a gradient at every step, this is Adam exactly.
    """

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        super().__init__(params, lr=lr, betas=betas, eps=eps, fused=True)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        sparse = [(p, group) for group in self.param_groups for p in group["params"]
                  if p.grad is not None and p.grad.is_sparse]
        held = [param.grad for param, _ in sparse]
        for param, _ in sparse:  # torch's Adam takes dense gradients only: it skips these parameters
            param.grad = None
        try:
            super().step()
        finally:
            for (param, _), grad in zip(sparse, held):
                param.grad = grad
        for param, group in sparse:
            self._update_rows(param, group)
        return loss

    def _update_rows(self, param: torch.Tensor, group: dict) -> None:
        """One Adam step of the rows of `param`'s sparse gradient; the step count advances."""
        rows, values = sparse_rows(param.grad)  # (R,), (R, D)
        state = self.state[param]
        if not state:
            self._start(param)
        state["step"] += 1
        # a tensor, not a Python number: on a GPU reading the step count would wait for the device
        adam_rows(param, state["exp_avg"], state["exp_avg_sq"], rows, values, state["step"], group["lr"],
                  *group["betas"], group["eps"])

    def _start(self, param: torch.Tensor) -> None:
        """The layout of Adam's own state (fused: the step count a tensor on the parameter's device)."""
        state = self.state[param]
        state["step"] = torch.zeros((), dtype=torch.float32, device=param.device)
        state["exp_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
        state["exp_avg_sq"] = torch.zeros_like(param, memory_format=torch.preserve_format)


def sparse_rows(grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The distinct rows (R,) of a sparse gradient and their gradients (R, D), repeated rows summed."""
    grad = grad.coalesce()
    if grad.sparse_dim() != 1:  # element-wise sparse (nn.Embedding's gradients are sparse by rows)
        grad = grad.to_dense().to_sparse(1)
    return grad.indices()[0], grad.values()


def adam_rows(param, exp_avg, exp_avg_sq, rows, values, step, lr: float, beta1: float, beta2: float, eps: float) -> None:
    """Adam's step number `step` (a number or a 0-d tensor) for the distinct `rows` of `param` with
    gradients `values` (R, D), in place; the moments' other rows are left as they are."""
    step = torch.as_tensor(step, dtype=torch.float64, device=param.device)  # β2^t in float32 is 5e-5 off already at t = 1
    m = exp_avg.index_select(0, rows).lerp_(values, 1 - beta1)  # (R, D)
    v = exp_avg_sq.index_select(0, rows).mul_(beta2).addcmul_(values, values, value=1 - beta2)  # (R, D)
    exp_avg.index_copy_(0, rows, m)
    exp_avg_sq.index_copy_(0, rows, v)
    denom = v.div_((1 - beta2 ** step).to(v.dtype)).sqrt_().add_(eps)  # (R, D)
    param.index_add_(0, rows, m.div_(denom).mul_((-lr / (1 - beta1 ** step)).to(m.dtype)))
