"""DeferredAdam: Adam, with its steps on an embedding's idle rows applied when the rows are next read."""

from __future__ import annotations

import torch
from torch import nn

from w2v.kernels import cpu as cpu_kernels
from w2v.optim.lazy_adam import LazyAdam, adam_rows, sparse_rows


class DeferredAdam(LazyAdam):
    """Adam's results (up to rounding) at the cost of the batch's rows, for embeddings with sparse gradients.

    Dense Adam moves every row of an embedding at every step, also the rows of the words that are
    not in the batch: their gradient is 0, their moments decay (m ← β1·m, v ← β2·v) and the row
    keeps moving on its momentum. Those steps depend only on the row's moments after its last
    gradient and on each step's learning rate, so they can be applied together when the row is
    next needed: `catch_up` before a forward pass looks rows up (`watch` makes it the embedding's
    forward pre-hook), `current` for the whole matrix, as a copy (looking at the vectors never
    changes a run). A step then costs O(rows in the batch), instead of passes over the (V, D)
    matrix, its two moments and a dense gradient.

    A row stops moving `horizon` steps after its last gradient: its momentum has decayed by
    β1^horizon (2e-12 for β1 = 0.9 and the default 256), far below float32's resolution; its
    moments keep decaying. The learning rates of the last `horizon` steps are kept for the rows
    still moving, and a row idle for `horizon` steps is brought up to date then.
    Parameters with dense gradients get torch's fused Adam.
    """

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 horizon: int = 256):
        super().__init__(params, lr=lr, betas=betas, eps=eps)
        self.horizon = horizon

    def _update_rows(self, param: torch.Tensor, group: dict) -> None:
        rows, values = sparse_rows(param.grad)  # (R,), (R, D)
        state = self.state[param]
        if not state:
            self._start(param)
        elif "last" not in state:  # dense steps so far (`settle`): every row is up to date
            self._start_deferring(param)
        state["step"] += 1
        step, history = int(state["step"]), state["lr_history"]
        history[step % len(history)] = group["lr"]
        # rows whose last gradient leaves the learning-rate history with this step, unless they have one now
        expiring = (state["touched"] == step - len(history)).nonzero().squeeze(1)
        _on_device(cpu_kernels.adam_step_rows, step_rows, param, state["exp_avg"], state["exp_avg_sq"], state["last"],
                   state["touched"], rows, values, step, group["lr"], history, *group["betas"], group["eps"], expiring)

    def _start(self, param: torch.Tensor) -> None:
        super()._start(param)
        self._start_deferring(param)

    def _start_deferring(self, param: torch.Tensor) -> None:
        """The bookkeeping of deferred steps, every row up to date at the step count so far."""
        state, rows = self.state[param], len(param)
        now = int(state["step"])
        # the last step each row has been brought to, and its last step with a gradient
        state["last"] = torch.full((rows,), now, dtype=torch.int64, device=param.device)
        state["touched"] = torch.full((rows,), now, dtype=torch.int64, device=param.device)
        # in the parameter's type: a checkpoint's floating-point state is loaded in that type
        state["lr_history"] = torch.zeros(self.horizon, dtype=param.dtype, device=param.device)

    @torch.no_grad()
    def settle(self, param: torch.Tensor) -> None:
        """Brings every row of `param` up to date and ends its deferral: from here on it takes dense
        gradients, stepped by torch's fused Adam (a GPU's padded full-softmax step). A later sparse
        gradient starts the bookkeeping again."""
        state = self.state.get(param)
        if state and "last" in state:
            self.catch_up(param, torch.arange(len(param), device=param.device))
            for key in ("last", "touched", "lr_history"):
                del state[key]

    def load_state_dict(self, state_dict: dict) -> None:
        # torch casts every state tensor but the step count to its parameter's type; the step numbers stay integers
        counters = {index: {key: saved[key] for key in ("last", "touched") if key in saved}
                    for index, saved in state_dict["state"].items()}
        super().load_state_dict(state_dict)
        params = [p for group in self.param_groups for p in group["params"]]
        for index, saved in counters.items():
            self.state[params[index]].update({key: value.to(params[index].device) for key, value in saved.items()})

    @torch.no_grad()
    def catch_up(self, param: torch.Tensor, rows: torch.Tensor, upto: int | None = None) -> None:
        """Applies the zero-gradient steps that the distinct `rows` of `param` have missed, up to step `upto`
        (default: the last step taken)."""
        state = self.state.get(param)
        if state and "last" in state and len(rows):
            self._catch_up(param, state["exp_avg"], state["exp_avg_sq"], state["last"], rows, upto, param)

    @torch.no_grad()
    def current(self, param: torch.Tensor) -> torch.Tensor:
        """`param` as dense Adam would have it after the last step: a brought-up-to-date copy (the
        training state is left as it is), or `param` itself, detached, when nothing is pending."""
        state = self.state.get(param)
        if not state or "last" not in state:
            return param.detach()
        copies = [t.clone() for t in (param.detach(), state["exp_avg"], state["exp_avg_sq"], state["last"])]
        self._catch_up(*copies, torch.arange(len(param), device=param.device), None, param)
        return copies[0]

    def _catch_up(self, weight, exp_avg, exp_avg_sq, last, rows, upto, param) -> None:
        """`catch_up` on the given copies of `param`'s weight, moments and `last`."""
        state, group = self.state[param], self._group(param)
        upto = int(state["step"]) if upto is None else upto
        _on_device(cpu_kernels.adam_catch_up, catch_up_rows, weight, exp_avg, exp_avg_sq, last, state["touched"], rows,
                   upto, state["lr_history"], *group["betas"], group["eps"])

    def watch(self, embedding: nn.Embedding) -> torch.utils.hooks.RemovableHandle:
        """Brings the rows an embedding looks up up to date before each of its forward passes."""
        def hook(module, args):
            self.catch_up(module.weight, torch.unique(args[0]))
        return embedding.register_forward_pre_hook(hook)

    def _group(self, param: torch.Tensor) -> dict:
        return next(group for group in self.param_groups if any(p is param for p in group["params"]))


def _on_device(kernel, twin, *args) -> None:
    """Runs a Numba kernel on CPU tensors (as NumPy arrays, on PyTorch's thread count), its PyTorch twin elsewhere."""
    if args[0].device.type == "cpu":
        cpu_kernels.use_threads(torch.get_num_threads())
        kernel(*(a.numpy() if torch.is_tensor(a) else a for a in args))
    else:
        twin(*args)


def step_rows(param, exp_avg, exp_avg_sq, last, touched, rows, grads, step, lr, lr_history, beta1, beta2, eps,
              expiring) -> None:
    """`cpu_kernels.adam_step_rows` in PyTorch operations: the distinct `rows` brought up to step-1 and
    given Adam's step `step` with gradients `grads` (R, D), then the `expiring` rows still idle since
    step - len(lr_history) brought up to `step`."""
    stale = rows[last[rows] < step - 1]  # rows that no forward pass through `watch` looked up
    catch_up_rows(param, exp_avg, exp_avg_sq, last, touched, stale, step - 1, lr_history, beta1, beta2, eps)
    adam_rows(param, exp_avg, exp_avg_sq, rows, grads, step, lr, beta1, beta2, eps)
    last[rows] = step
    touched[rows] = step
    expiring = expiring[touched[expiring] == step - len(lr_history)]
    catch_up_rows(param, exp_avg, exp_avg_sq, last, touched, expiring, step, lr_history, beta1, beta2, eps)


def catch_up_rows(param, exp_avg, exp_avg_sq, last, touched, rows, upto, lr_history, beta1, beta2, eps,
                  max_elements: int = 1 << 22) -> None:
    """`cpu_kernels.adam_catch_up` in PyTorch operations, for any device: the missed steps of all rows
    at once, as (rows, steps, D) tensors of at most `max_elements`."""
    horizon = len(lr_history)
    start = last[rows]  # (R,)
    missed = (upto - start).clamp_(min=0)  # (R,) steps missed; none for rows already current
    moves = torch.minimum(missed, touched[rows] + horizon - start).clamp_(min=0)  # (R,)
    moves[(exp_avg[rows] == 0).all(1)] = 0  # a row whose momentum is zero does not move
    longest = int(moves.max()) if len(rows) else 0
    if longest > 0:
        k = torch.arange(1, longest + 1, device=param.device)  # (K,)
        k64 = k.double()
        chunk = max(1, max_elements // (longest * param.shape[1]))
        for first in range(0, len(rows), chunk):
            part = slice(first, first + chunk)
            s = start[part].unsqueeze(1) + k  # (r, K) the missed steps
            s64 = s.double()
            size = lr_history[s % horizon].double() / (1 - beta1 ** s64) * beta1 ** k64  # (r, K)
            size *= k <= moves[part].unsqueeze(1)  # a row moves on its first `moves` missed steps only
            scale = beta2 ** (k64 / 2) / (1 - beta2 ** s64).sqrt()  # (r, K)
            m, root = exp_avg[rows[part]], exp_avg_sq[rows[part]].sqrt()  # (r, D)
            steps = size.to(m.dtype).unsqueeze(2) * m.unsqueeze(1) / (root.unsqueeze(1) * scale.to(m.dtype).unsqueeze(2) + eps)
            param.index_add_(0, rows[part], steps.sum(1), alpha=-1)  # (r, K, D) summed over the steps
    missed64 = missed.double().unsqueeze(1)  # (R, 1)
    exp_avg.index_copy_(0, rows, exp_avg[rows] * (beta1 ** missed64).to(exp_avg.dtype))
    exp_avg_sq.index_copy_(0, rows, exp_avg_sq[rows] * (beta2 ** missed64).to(exp_avg.dtype))
    last[rows] = torch.maximum(start, torch.full_like(start, upto))
