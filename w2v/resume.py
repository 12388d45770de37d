"""Interrupting and resuming runs: a clean stop on Ctrl-C/SIGTERM with a checkpoint, `ckpt_path` lookup,
and the overrides a run was started with (which a resumed run, and a rerun, start from).

A stopped run leaves `last.ckpt` in its run directory, saved between two batches, and the data
loader's position in it; `w2v-train ckpt_path=last` (the newest interrupted run's checkpoint) or
`ckpt_path=RUN_DIR` resumes it in a new run directory, with the interrupted run's settings, and
draws exactly the batches the uninterrupted run would have.
"""

from __future__ import annotations

import logging
import re
import signal
from pathlib import Path

import lightning as L
import yaml
from omegaconf import OmegaConf

from w2v.errors import ConfigError
from w2v.runs import override_key

log = logging.getLogger(__name__)

CHECKPOINT_NAME = "last.ckpt"
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class TrainingInterrupted(Exception):
    """Training stopped on a signal after saving `checkpoint`; the exit status is 128 + the signal number."""

    def __init__(self, signum: int | None, checkpoint: Path, epoch: int, batch: int, batches: int):
        # signum None: another process of a data-parallel run was signalled.
        self.signum, self.checkpoint = signum, checkpoint
        self.exit_status = 128 + (signum or signal.SIGTERM)
        cause = f"{signal.Signals(signum).name} received" if signum else "another process was signalled"
        super().__init__(
            f"{cause}: stopped in epoch {epoch} after batch {batch} of {batches}; "
            f"checkpoint {checkpoint}; resume with: w2v-train ckpt_path={checkpoint.parent}"
        )


class GracefulStop(L.Callback):
    """On Ctrl-C or SIGTERM, finishes the current batch, saves `dirpath/last.ckpt` and stops the run.

    A second signal stops at once, without a checkpoint. In a data-parallel run every process
    learns of a signal any of them received, so all of them stop after the same batch.
    """

    def __init__(self, dirpath: str):
        self.dirpath = Path(dirpath)
        self._signal: int | None = None
        self._previous: dict[int, object] = {}

    def _handle(self, signum, frame) -> None:
        if self._signal is not None:  # the second one: stop now, through Lightning's own shutdown
            self._restore()
            raise KeyboardInterrupt
        self._signal = signum
        log.warning("%s received: stopping after this batch (a second signal stops at once, without a checkpoint)",
                    signal.Signals(signum).name)

    def _restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def on_train_start(self, trainer, pl_module) -> None:
        self._signal = None
        try:
            self._previous = {s: signal.signal(s, self._handle) for s in _STOP_SIGNALS}
        except ValueError:  # not the main thread (a notebook's worker, for instance): no handlers there
            log.debug("signal handlers not installed: training does not run in the main thread")
            return
        log.info("Ctrl-C or SIGTERM stops training after the current batch and saves %s", self.dirpath / CHECKPOINT_NAME)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        received = self._signal
        stop = received is not None
        if trainer.world_size > 1:  # one collective per step; any rank's signal stops them all
            stop = trainer.strategy.reduce_boolean_decision(stop, all=False)
        if not stop:
            return
        path = self.dirpath / CHECKPOINT_NAME
        trainer.save_checkpoint(path)  # written to a temporary name and moved into place by Lightning
        raise TrainingInterrupted(received, path, trainer.current_epoch, batch_idx + 1,
                                  trainer.num_training_batches)

    def on_train_end(self, trainer, pl_module) -> None:
        self._restore()

    def on_exception(self, trainer, pl_module, exception) -> None:
        self._restore()


def resolve_checkpoint(ckpt_path: str | None, outputs_root: str | Path) -> Path | None:
    """The checkpoint file that `ckpt_path` names: a .ckpt file, a run directory, or `last` (the newest
    checkpoint of an interrupted run under `outputs_root`)."""
    if ckpt_path is None or str(ckpt_path) == "":
        return None
    if str(ckpt_path) == "last":
        # The newest unfinished run: a finished one has written its metrics.json, and one that a later
        # run resumed and took further is continued by that run.
        taken = resumed_further(outputs_root)
        found = sorted((p for p in Path(outputs_root).rglob(CHECKPOINT_NAME)
                        if not (p.parent / "metrics.json").exists() and p.resolve() not in taken),
                       key=lambda p: p.stat().st_mtime)
        if not found:
            raise ConfigError(f"ckpt_path=last: no interrupted run (a {CHECKPOINT_NAME} without metrics.json) under "
                              f"{outputs_root}; pass ckpt_path=RUN_DIR or the path of a .ckpt file")
        return found[-1]
    path = Path(ckpt_path).expanduser()
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    if not path.is_file():
        raise ConfigError(f"ckpt_path={ckpt_path}: no checkpoint at {path}; pass a run directory holding "
                          f"{CHECKPOINT_NAME}, a .ckpt file, or ckpt_path=last")
    return path


def resumed_checkpoint(run_dir: Path) -> Path | None:
    """The checkpoint the run in `run_dir` resumed, as its config.yaml names it (an absolute path, or
    one relative to the folder the run started in), or None."""
    config = run_dir / "config.yaml"
    if not config.is_file():
        return None
    # The top-level line only, without loading the whole config (this runs for every run under outputs/).
    line = re.search(r"^ckpt_path: *(.+)$", config.read_text(encoding="utf-8", errors="replace"), re.MULTILINE)
    value = yaml.safe_load(line.group(1)) if line else None
    return Path(value) if isinstance(value, str) and value else None


def resumed_further(outputs_root: str | Path) -> set[Path]:
    """The checkpoints under `outputs_root` that a later run resumed and took further (that run saved
    a checkpoint of its own, or finished): `ckpt_path=last` continues that run instead."""
    taken = set()
    for config in Path(outputs_root).rglob("config.yaml"):
        run_dir = config.parent
        if (run_dir / CHECKPOINT_NAME).exists() or (run_dir / "metrics.json").exists():
            checkpoint = resumed_checkpoint(run_dir)
            if checkpoint is not None:
                taken.add(checkpoint.resolve())
    return taken


def saved_overrides(run_dir: Path, option: str = "ckpt_path") -> list[str] | None:
    """The overrides that started the run in `run_dir` (its .hydra/overrides.yaml), or None without them;
    `option` (ckpt_path, rerun) names the setting that read them in the error for a damaged file."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    saved_path = run_dir / ".hydra" / "overrides.yaml"
    if not saved_path.is_file():
        return None
    try:
        saved = OverridesParser.create().parse_overrides([str(o) for o in OmegaConf.load(saved_path)])
    except Exception as err:  # noqa: BLE001  written by Hydra as the run started: a kill can cut it short
        raise ConfigError(f"{option}: {saved_path} is unreadable ({type(err).__name__}); write the run's overrides "
                          f"into it as a YAML list, or start a new run without {option}") from None
    return [o.input_line for o in saved]


def merge_overrides(base: list[str], updates: list[str]) -> list[str]:
    """`base` with each key that `updates` sets given its value there, in `base`'s order, then the new keys."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    merged = {o.get_key_element(): o.input_line for o in parser.parse_overrides(base)}
    merged.update({o.get_key_element(): o.input_line for o in parser.parse_overrides(updates)})
    return list(merged.values())


def resume_overrides(run_dir: Path, current: list[str]) -> list[str] | None:
    """The overrides of the run in `run_dir` (its .hydra/overrides.yaml) updated by `current`, or None without them.

    So `w2v-train ckpt_path=RUN_DIR` alone resumes a run with every setting it was started with,
    and `w2v-train ckpt_path=RUN_DIR trainer.max_epochs=10` extends it.
    """
    saved = saved_overrides(run_dir)
    return None if saved is None else merge_overrides(started_with(run_dir, saved), current)


def started_with(run_dir: Path, saved: list[str], seen: tuple[Path, ...] = ()) -> list[str]:
    """The overrides that gave the run in `run_dir` its settings: `saved`, its command line's, laid on
    those of the run it resumed, where it resumed one: a run resumed twice keeps the settings its
    first command line gave it (its resumption's command line only said ckpt_path=...)."""
    if not any(override_key(o) == "ckpt_path" for o in saved):
        return saved
    checkpoint = resumed_checkpoint(run_dir)
    if checkpoint is None or checkpoint.parent.resolve() in (*seen, run_dir.resolve()):
        return saved
    earlier = saved_overrides(checkpoint.parent)
    if earlier is None:  # a checkpoint from elsewhere: its command line is not known
        return saved
    return merge_overrides(started_with(checkpoint.parent, earlier, (*seen, run_dir.resolve())), saved)
