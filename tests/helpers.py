"""Callbacks that the tests hand to `w2v-train` subprocesses through Hydra overrides (PYTHONPATH: the repository)."""

from __future__ import annotations

import os

import lightning as L


class SignalAtBatch(L.Callback):
    """Sends this process `signum` at the end of batch `batch` (0-based) of the first epoch, as a user's
    Ctrl-C or a scheduler's SIGTERM would arrive, but at a known step."""

    def __init__(self, batch: int, signum: int):
        self.batch, self.signum = batch, signum

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.current_epoch == 0 and batch_idx == self.batch:
            os.kill(os.getpid(), self.signum)
