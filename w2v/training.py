"""The Hydra entry point (`w2v train`, `w2v-train`): build data, model, callbacks, logger, trainer; fit."""

from __future__ import annotations

import contextlib
import inspect
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import hydra
import lightning as L
import torch
from hydra.errors import InstantiationException
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

from lightning.fabric.utilities.rank_zero import rank_zero_only

from w2v import CONFIG_DIR
from w2v.callbacks import IntrinsicEvaluation
from w2v.checkpoints import SafeCheckpointIO, check_checkpoint_fits, parameter_shapes, read_checkpoint
from w2v.config import exit_if_not_composed
from w2v.errors import ConfigError, check_number
from w2v.fileio import atomic_write
from w2v.models import Architecture
from w2v.optim import plain_sgd
from w2v.resume import (TrainingInterrupted, merge_overrides, resolve_checkpoint, resume_overrides, saved_overrides,
                        started_with)
from w2v.runs import experiment_hparams, flat_settings, override_key, run_name, swept_keys

log = logging.getLogger("w2v.training")  # also when run as __main__ (`w2v train`)

RUN_MARKER = ".w2v-run"

# `${stderr_is_terminal:}` in conf/trainer: progress bars for a person at a terminal, none in a log
# file, where every redraw would be one more carriage-return line.
if not OmegaConf.has_resolver("stderr_is_terminal"):
    OmegaConf.register_new_resolver("stderr_is_terminal", lambda: sys.stderr.isatty())


def run_dir_taken(output_dir: Path) -> ConfigError:
    """The error for a run directory that another run has claimed."""
    return ConfigError(f"run directory {output_dir} already holds a run; choose another with hydra.run.dir=... "
                       f"(or paths.output_dir=...) instead of overwriting it")


def claim_run_dir(output_dir: Path) -> None:
    """Mark `output_dir` as this run's, failing if another run already used it (no run overwrites another)."""
    output_dir.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(output_dir / RUN_MARKER, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        raise run_dir_taken(output_dir) from None
    os.write(fd, f"pid {os.getpid()}\n".encode())
    os.close(fd)


@contextlib.contextmanager
def claimed_run_dir(output_dir: Path) -> Iterator[list[Path]]:
    """Claims `output_dir` (`claim_run_dir`) for the block that prepares the run, which adds the
    files it writes there to the list given. If the block fails (a setting that only the data show
    to be bad, an interrupt while tokenizing), the directory is released: those files and the claim
    are removed, so that the corrected command can use it. Nothing else is touched (Hydra's .hydra/
    and train.log, a data or cache folder that the run's paths put there)."""
    created = not output_dir.exists()
    claim_run_dir(output_dir)
    written = [output_dir / RUN_MARKER]
    try:
        yield written
    except BaseException:
        for path in reversed(written):
            with contextlib.suppress(OSError):  # the error that stopped the run is the one to report
                path.unlink(missing_ok=True)
        if created:
            with contextlib.suppress(OSError):  # left where something else was written there
                output_dir.rmdir()
        raise


def build(node: DictConfig, **kwargs: Any) -> Any:
    """`hydra.utils.instantiate`, letting our one-line ConfigErrors through unwrapped."""
    try:
        return instantiate(node, **kwargs)
    except InstantiationException as err:
        if isinstance(err.__cause__, ConfigError):
            raise err.__cause__ from None
        raise


def instantiate_model(model_cfg: DictConfig, vocab) -> Any:
    """The model `model_cfg` describes, on `vocab`."""
    # Partial first: the vocabulary must reach the model as it is, not converted into a config node;
    # not recursive: the optimizer and scheduler stay configs, which the model instantiates itself.
    return build(model_cfg, _partial_=True, _convert_="all", _recursive_=False)(vocab=vocab)


def check_model_config(model_cfg: DictConfig) -> None:
    """One-line errors for unknown model settings and invalid values, before any heavy work."""
    model_cls = get_class(model_cfg._target_)
    kwargs = {k: v for k, v in OmegaConf.to_container(model_cfg, resolve=True).items() if k != "_target_"}
    if issubclass(model_cls, Architecture):
        model_cls = model_cls.with_output(kwargs.get("output"))
    accepted, required = set(), set()
    for klass in model_cls.__mro__:
        if "__init__" in vars(klass):
            parameters = inspect.signature(klass.__init__).parameters.values()
            accepted |= {p.name for p in parameters}
            required |= {p.name for p in parameters if p.kind is p.KEYWORD_ONLY and p.default is p.empty}
    unknown = sorted(set(kwargs) - accepted)
    if unknown:
        raise ConfigError(
            f"model.{unknown[0]} is not a setting of {model_cls.__name__}; remove it (pick an output layer with "
            f"model/output=NAME, which brings its settings; for the notebooks' setting of another architecture "
            f"use experiment=notebook_cbow or experiment=notebook_skipgram)"
        )
    for name in sorted(required - set(kwargs)):
        hint = " (model/scheduler=constant keeps the rate constant; model.scheduler=null drops the schedule)" \
            if name == "scheduler" else " (pick an output layer with model/output=NAME, which brings its settings)"
        raise ConfigError(f"model.{name} is missing: {model_cls.__name__} needs it; put it back in the model's "
                          f"config{hint}")
    model_cls.check_hparams(**kwargs)


# Settings that may differ between a run and its resumption or rerun: where things are (the run's own
# directory too), and whether the GPU step's kernels are replayed from a CUDA graph (the same kernels
# either way).
_MAY_DIFFER = ("data.cache_dir", "data.data_dir", "data.archive", "model.cuda_graph", "trainer.default_root_dir")


def _as_composed_now(settings: dict[str, Any], current: dict[str, Any] | None = None) -> dict[str, Any]:
    """A saved run's model settings as today's config names them: runs saved before the output layer
    was its own choice name SGNS's class, and no `model.output`; runs of negative sampling or
    hierarchical softmax saved before `model.update_rule` trained by the damped rule (whose shard
    count, `current`'s, does not matter); runs saved before `data.shuffle_unit` and `data.batch_size=auto`
    shuffled positions (which only w2v's batching, data.batching=centers, shuffles) in batches of
    4,096, which auto still gives every model but those of plain SGD's step; runs saved before
    `model.cbow_mean` and `model.out_init` averaged CBOW's context and initialised the full
    softmax's output weight as nn.Linear does; those saved before `model.sampling` took the data
    loader's windows, and those saved before the full softmax's `model.kernels`, PyTorch's step."""
    if "model.output" not in settings and "model._target_" in settings:
        sgns = settings["model._target_"] == "w2v.models.SGNS"
        settings = {**settings, "model._target_": "w2v.models.SkipGram" if sgns else settings["model._target_"],
                    "model.output": "negative" if sgns else "softmax"}
    if settings.get("model._target_") == "w2v.models.CBOW":
        settings = {"model.cbow_mean": True, **settings}
    if settings.get("model.output") == "softmax":
        settings = {"model.out_init": "linear", "model.sampling": "loader", "model.kernels": "torch", **settings}
    current = current or {}
    binary_output = settings.get("model.output") in ("negative", "hierarchical")
    if binary_output and "model.update_rule" not in settings:
        settings = {**settings, "model.update_rule": "damped", "model.update_shards": current.get("model.update_shards")}
    if "data.shuffle_unit" not in settings and any(key.startswith("data.") for key in settings):
        optimizer = {key.removeprefix("model.optimizer."): value for key, value in settings.items()
                     if key.startswith("model.optimizer.")}
        plain_sgd_step = binary_output and "_target_" in optimizer and plain_sgd(optimizer)
        centers = settings.get("data.batching", "centers") == "centers"
        # auto now shuffles documents for plain SGD's step: resuming such a run must say so
        unit = "position" if centers and plain_sgd_step else current.get("data.shuffle_unit", "auto")
        settings = {**settings, "data.shuffle_unit": unit}
        if settings.get("data.batch_size") == 4096 and not plain_sgd_step:
            settings["data.batch_size"] = "auto"
    return settings


def _run_settings(node: DictConfig, sections: tuple[str, ...]) -> dict[str, Any]:
    """The config's settings in `sections`, flattened; those that may differ between a run and its
    resumption or rerun (_MAY_DIFFER) left out."""
    return {key: value for key, value in flat_settings(node).items()
            if key.split(".")[0] in sections and key not in _MAY_DIFFER}


def _compared_with_saved(saved_cfg: DictConfig, cfg: DictConfig, sections: tuple[str, ...]):
    """A saved run's settings in `sections` (as today's config names them), `cfg`'s, and the keys
    where they differ."""
    now = _run_settings(cfg, sections)
    saved = _as_composed_now(_run_settings(saved_cfg, sections), now)
    return saved, now, [key for key in sorted(set(saved) | set(now)) if saved.get(key) != now.get(key)]


def _load_saved_config(path: Path, what: str, fix: str) -> DictConfig:
    """A run's config.yaml, or the one-line error `what` is unreadable, then `fix`."""
    try:
        return OmegaConf.load(path)
    except Exception as err:  # noqa: BLE001  a YAML or OmegaConf error: the file is not what w2v wrote
        raise ConfigError(f"{what} is unreadable ({type(err).__name__}); {fix}") from None


def check_resumable(cfg: DictConfig, checkpoint: Path) -> None:
    """A one-line error if the model, data or seed differ from those of the run that saved `checkpoint`."""
    saved_path = checkpoint.parent / "config.yaml"
    if not saved_path.is_file():
        return  # a checkpoint from elsewhere: check_checkpoint_fits compares its parameters with the model's
    saved_cfg = _load_saved_config(saved_path, f"ckpt_path={checkpoint}: its run's {saved_path.name}",
                                   "move the checkpoint out of that folder to resume it without the check")
    saved, current, differing = _compared_with_saved(saved_cfg, cfg, ("model", "data", "seed"))
    if differing:
        had, has = (", ".join(f"{key}={values.get(key)!r}" for key in differing) for values in (saved, current))
        fix = ("resume with the same model and data settings" if any(saved.get(key) is None for key in differing)
               else "resume with " + " ".join(f"{key}={saved[key]}" for key in differing))
        raise ConfigError(f"ckpt_path={checkpoint}: its run had {had}, this one {has}; {fix}, "
                          "or start a new run without ckpt_path")


def check_epochs_left(epoch: int | None, max_epochs: int | None, checkpoint: Path) -> None:
    """A one-line error where the checkpoint's run had gone past the epochs this run trains (Lightning
    stops with a traceback). Epochs count from 0, as the message of a stopped run gives them."""
    if isinstance(epoch, int) and max_epochs not in (None, -1) and epoch > max_epochs:
        raise ConfigError(f"ckpt_path={checkpoint}: its run stopped in epoch {epoch}, past trainer.max_epochs="
                          f"{max_epochs}; resume with trainer.max_epochs above {epoch}, or without it to train the "
                          "run's own number of epochs")


def run_identity() -> tuple[list[str], list[str]]:
    """The overrides that name this run (a sweep member's swept ones only), and in a multirun the
    keys its command line sweeps. Empty outside Hydra (a config composed by hand)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized():
        return [], []
    hydra_cfg = HydraConfig.get()
    overrides = list(hydra_cfg.overrides.task)
    if hydra_cfg.mode != RunMode.MULTIRUN:
        return overrides, []
    record = Path(hydra_cfg.sweep.dir) / "multirun.yaml"  # the sweep's command line, written before its jobs
    swept = swept_keys(OmegaConf.load(record).hydra.overrides.task) if record.is_file() else []
    named = [o for o in overrides if override_key(o) in swept]
    return named or overrides, swept


def check_trainer(trainer_cfg: DictConfig) -> None:
    """One-line errors, before any data work, for trainer settings Lightning would refuse only after
    the corpus is read: a GPU that torch cannot use, a number of epochs it cannot take (0 is one: the
    run is prepared, its initial vectors exported, and nothing trained)."""
    epochs = trainer_cfg.get("max_epochs")
    if epochs not in (None, -1):
        check_number("trainer.max_epochs", epochs, integer=True, least=0, unit=", or -1 (no limit)")
    accelerator = str(trainer_cfg.get("accelerator", "auto"))
    if accelerator in ("gpu", "cuda") and not (torch.cuda.is_available() or torch.backends.mps.is_available()):
        raise ConfigError(f"trainer.accelerator={accelerator} needs a GPU, and torch {torch.__version__} sees none; "
                          "use trainer=cpu, or a machine with a GPU and a CUDA build of torch")


def check_optimized_metric(name: str | None, declared: list[str]) -> None:
    """A one-line error, before training, if `optimized_metric` names a metric this run will not log."""
    if name is not None and name not in declared:
        raise ConfigError(f"optimized_metric={name} is not a metric of this run; use one of {', '.join(declared)} "
                          f"(the eval/ ones need callbacks.evaluation)")


def train(cfg: DictConfig) -> dict[str, Any]:
    """Train one run as `cfg` describes; returns what it produced.

    In a data-parallel run every process calls this; only the first (global rank 0, known from the
    launcher's environment before the trainer exists) writes the run's files.
    """
    check_model_config(cfg.model)  # bad settings fail before any data work
    check_trainer(cfg.trainer)
    check_number("seed", cfg.get("seed"), integer=True, least=0)
    checkpoint = resolve_checkpoint(cfg.get("ckpt_path"), cfg.paths.outputs_root)
    saved_shapes = None
    if checkpoint is not None:
        check_resumable(cfg, checkpoint)
        saved = read_checkpoint(checkpoint)  # damaged or foreign: an error now
        saved_shapes = parameter_shapes(saved["state_dict"])
        check_epochs_left(saved.get("epoch"), cfg.trainer.get("max_epochs"), checkpoint)
    L.seed_everything(cfg.seed, workers=True)
    log.info("Instantiating datamodule <%s>", cfg.data._target_)
    datamodule = build(cfg.data)  # its settings checked; nothing read yet
    datamodule.check_source()
    callbacks = [build(c) for c in cfg.get("callbacks", {}).values() if c is not None]  # their files checked
    log.info("Callbacks: %s", ", ".join(type(c).__name__ for c in callbacks))
    declared = ["train/loss_epoch"] + [m for c in callbacks for m in getattr(c, "metric_names", ())]
    check_optimized_metric(cfg.get("optimized_metric"), declared)

    output_dir = Path(cfg.paths.output_dir)
    writer = rank_zero_only.rank == 0
    with claimed_run_dir(output_dir) if writer else contextlib.nullcontext([]) as written:
        if writer:
            with atomic_write(output_dir / "config.yaml") as out:
                out.write(OmegaConf.to_yaml(cfg, resolve=True))
            written.append(output_dir / "config.yaml")
        datamodule.prepare_data()
        datamodule.setup("fit")
        if writer:
            datamodule.vocab.save_tsv(output_dir / "vocab.tsv")
            written.append(output_dir / "vocab.tsv")

        log.info("Instantiating model <%s>", cfg.model._target_)
        model = instantiate_model(cfg.model, datamodule.vocab)
        if writer:
            written += model.write_run_files(output_dir)
        if saved_shapes is not None:
            check_checkpoint_fits(saved_shapes, model, checkpoint)
        overrides, swept = run_identity()
        if checkpoint is not None:  # a resumed run keeps the name of the run it continues
            overrides = resume_overrides(checkpoint.parent, overrides) or overrides
        if any(override_key(o) == "rerun" for o in overrides):  # a rerun, that of the run it repeats, with its changes
            overrides = _rerun_overrides(overrides)[2]
        logger = False
        if cfg.get("logger"):  # version null: the run's events go to tensorboard/<its name from the overrides>/
            named = "version" in cfg.logger and cfg.logger.version is None
            logger = build(cfg.logger, **({"version": run_name(overrides)} if named else {}))
        log.info("Instantiating trainer <%s>", cfg.trainer._target_)
        # Checkpoints written atomically, with a digest checked when one is resumed (w2v/checkpoints.py).
        trainer = build(cfg.trainer, callbacks=callbacks, logger=logger, plugins=[SafeCheckpointIO()])
        if logger:
            # Declaring the final metrics here lets TensorBoard's HParams tab compare the runs of a sweep.
            logger.log_hyperparams(experiment_hparams(cfg, swept), metrics={m: float("nan") for m in declared})

    # TF32 products on CUDA (full softmax's big matrix products): measured to leave the scores unchanged
    # to three digits; cuda_tf32=false keeps them in float32. The CPU's products are not affected.
    torch.backends.cuda.matmul.allow_tf32 = bool(cfg.get("cuda_tf32", True))
    start = time.perf_counter()
    if checkpoint is not None:
        log.info("Resuming from %s", checkpoint)
    trainer.fit(model, datamodule=datamodule, ckpt_path=checkpoint)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    if checkpoint is not None and "train/loss_epoch" not in metrics and trainer.is_global_zero:
        # Resumed from the checkpoint of its last epoch (stopped while exporting, say): nothing was
        # left to train, and the epoch-end scores are not in the checkpoint; score the vectors again.
        log.info("%s ends the training; scoring its vectors", checkpoint)
        for callback in callbacks:
            if isinstance(callback, IntrinsicEvaluation):
                with contextlib.suppress(ConfigError):  # no evaluation files: the run logged why
                    metrics.update(callback.scores(model))
    metrics["wall_seconds"] = time.perf_counter() - start
    metrics["epochs"] = trainer.current_epoch
    if trainer.is_global_zero:
        with atomic_write(output_dir / "metrics.json") as out:
            json.dump(metrics, out, indent=1)
        log.info("Finished: %s; outputs in %s", metrics, output_dir)
    return {"output_dir": output_dir, "metrics": metrics, "model": model, "datamodule": datamodule, "trainer": trainer}


def config_for_run(cfg: DictConfig) -> DictConfig:
    """The config this command trains with: `cfg`, or with `ckpt_path` the config composed from the
    interrupted run's overrides, updated by this command's; with `rerun`, a run's settings again
    (`rerun_config`)."""
    from hydra import compose
    from hydra.core.hydra_config import HydraConfig

    overrides = list(HydraConfig.get().overrides.task)
    checkpoint = resolve_checkpoint(cfg.get("ckpt_path"), cfg.paths.outputs_root)
    if checkpoint is not None:
        resumed = resume_overrides(checkpoint.parent, overrides)
        if resumed is not None:
            overrides = resumed
            cfg = compose(config_name="config", overrides=overrides)
            log.info("Resuming %s with its overrides updated by this command's: %s", checkpoint.parent,
                     " ".join(overrides))
    if cfg.get("rerun"):
        cfg = rerun_config(overrides)
    if checkpoint is not None:
        with open_dict(cfg):
            cfg.ckpt_path = str(checkpoint.resolve())  # once: train() need not search for `last` again; absolute,
            # so that a later resumption finds this run's origin (resume.started_with) from any folder
    return cfg


def _rerun_overrides(overrides: list[str], seen: tuple[Path, ...] = ()) -> tuple[Path, list[str], list[str]]:
    """For `overrides` holding `rerun=RUN_DIR`: that run's directory, the other overrides, and the
    overrides that compose the rerun's config: the run's own (where it was itself a rerun, those of
    the run it reran first), updated by the others."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(overrides)
    named = [o for o in parsed if override_key(o.input_line) == "rerun"]
    source, own = Path(str(named[-1].value())).expanduser(), [o.input_line for o in parsed if o not in named]
    if source.resolve() in seen:
        raise ConfigError(f"rerun={source}: its runs rerun each other in a loop; rerun a run started without rerun")
    saved = saved_overrides(source, option="rerun")
    if saved is None or not (source / "config.yaml").is_file():
        raise ConfigError(f"rerun={source}: no run there (its config.yaml and .hydra/overrides.yaml); pass the "
                          "directory of a run that w2v train made")
    # A resumed run: the settings of the run it continued, with its own command line's; trained anew.
    saved = [o for o in started_with(source, saved) if override_key(o) != "ckpt_path"]
    if any(override_key(o) == "rerun" for o in saved):
        saved = _rerun_overrides(saved, (*seen, source.resolve()))[2]
    return source, own, merge_overrides(saved, own)


def rerun_config(overrides: list[str]) -> DictConfig:
    """`rerun=RUN_DIR`: the config of that run again, for a new run directory, with `overrides`'
    others on top. Composed from the overrides the run was started with (and, when it was a rerun
    itself, those of the run it reran), then given its saved values (config.yaml) of any setting
    whose default has changed since, so that a run can be reproduced after an update."""
    from hydra import compose

    source, own, composing = _rerun_overrides(overrides)
    cfg = compose(config_name="config", overrides=[*composing, *(o for o in overrides if o not in own)])
    saved_cfg = _load_saved_config(source / "config.yaml", f"rerun={source}: its config.yaml",
                                   "restore it, or start a new run with the overrides listed in its "
                                   ".hydra/overrides.yaml")
    mine = {override_key(o) for o in own}

    def set_here(key: str) -> bool:  # by this command: its value, or its group's, is the command's
        return any(key == k or key.startswith(k + ".") for k in mine)

    saved, now, differing = _compared_with_saved(saved_cfg, cfg, ("model", "data", "seed", "trainer"))
    differing = [key for key in differing if not set_here(key)]
    only_saved, only_now = ([key for key in differing if key not in other] for other in (now, saved))
    if only_saved or only_now:
        parts = [f"its config has {', '.join(only_saved[:3])}, which this version does not"] if only_saved else []
        parts += [f"this version has {', '.join(only_now[:3])}, which its config does not"] if only_now else []
        raise ConfigError(f"rerun={source}: {'; '.join(parts)}; rerun it with the w2v version that made it (its "
                          "config.yaml says every setting)")
    with open_dict(cfg):
        for key in differing:
            OmegaConf.update(cfg, key, OmegaConf.select(saved_cfg, key, default=saved[key]), merge=False)
    log.info("Rerunning %s with this command's overrides: %s", source, " ".join(own) or "none")
    if differing:
        log.info("Settings whose defaults changed since that run take its values: %s",
                 ", ".join(f"{key}={saved[key]} (now {now[key]})" for key in differing))
    return cfg


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="config")
def _hydra_main(cfg: DictConfig) -> float | None:
    """Trains one run; returns its `optimized_metric`'s final value, which a Hydra sweeper such as Optuna's optimises."""
    try:
        result = train(config_for_run(cfg))
    except ConfigError as err:
        log.error("%s", err)
        raise SystemExit(f"error: {err}") from None
    except TrainingInterrupted as stop:
        log.warning("%s", stop)
        raise SystemExit(stop.exit_status) from None
    name = cfg.get("optimized_metric")
    if name is None:
        return None
    value = result["metrics"].get(name, float("nan"))  # nan: a sweeper counts the run as failed
    log.info("optimized_metric %s = %.6g (returned to the sweeper)", name, value)
    return value


def main() -> None:
    # `w2v train` and `w2v-train` (w2v.commands.train) checked the overrides before running this module
    # and say so here; `python -m w2v.training` checks them itself
    if not globals().get("OVERRIDES_CHECKED"):
        exit_if_not_composed(sys.argv[1:])
    _hydra_main()


if __name__ == "__main__":
    main()
