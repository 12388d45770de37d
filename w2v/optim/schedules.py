"""Learning-rate schedules over a whole run, whose length is known only once training starts."""

from __future__ import annotations

from typing import Callable

import torch


class LinearDecay(torch.optim.lr_scheduler.LambdaLR):
    """The rate falls linearly from the optimizer's `lr` to `min_lr_ratio` of it over `total_steps()`
    steps, as word2vec's does over its words (min_lr_ratio 1: a constant rate).

    `total_steps` is asked for at the first step, not here: Lightning's estimate of a run's steps
    starts the data loader, which must wait until a checkpoint's position in the epoch is restored.
    An unbounded run (inf steps) keeps the starting rate.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, total_steps: Callable[[], int | float],
                 min_lr_ratio: float = 1e-4):
        if not 0 <= min_lr_ratio <= 1:
            raise ValueError(f"min_lr_ratio={min_lr_ratio} must lie in [0, 1]")
        self.min_lr_ratio = min_lr_ratio
        self._total_steps = total_steps
        self._total: int | float | None = None
        super().__init__(optimizer, self.factor)

    def factor(self, step: int) -> float:
        """The rate at `step` as a share of the starting rate."""
        if step == 0 or self.min_lr_ratio == 1:
            return 1.0
        if self._total is None:
            self._total = max(1, self._total_steps())
        return max(self.min_lr_ratio, 1.0 - step / self._total)

    def next_rate(self) -> float:
        """The first parameter group's rate at the next step."""
        return self.base_lrs[0] * self.factor(self.last_epoch + 1)

    def state_dict(self) -> dict:
        # The step count is this run's to estimate (a resumed run may train longer): not saved.
        state = {k: v for k, v in super().state_dict().items() if k not in ("_total_steps", "_total")}
        state["lr_lambdas"] = [None]
        return state
