"""What the layers below the callbacks ask of the Lightning trainer they run in."""

from __future__ import annotations

import lightning as L


def is_logging_step(trainer: L.Trainer) -> bool:
    """Whether Lightning writes the values logged in this training step: every `log_every_n_steps`
    steps counted over the whole run (not from each epoch's start). Values logged on other steps
    are dropped, so computing them is wasted work. Lightning keeps this test on its logger connector."""
    return bool(trainer.fast_dev_run) or trainer._logger_connector.should_update_logs
