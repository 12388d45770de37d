"""The Python API, for notebooks and scripts: `train` a run from Hydra overrides, `load` vectors.

    import w2v
    run = w2v.train("model=cbow", "data.max_docs=2000", "trainer.max_epochs=1")
    run.vectors.most_similar("movie")
    w2v.load(run.output_dir).similarity("good", "great")

A run made here is the run `w2v-train` makes with the same overrides: the same config, the same
run directory and files (`train.log` and `.hydra/overrides.yaml` included, so `w2v-train
ckpt_path=RUN_DIR` resumes it), the same vectors for the same seed.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict

from w2v.config import compose_config
from w2v.errors import ConfigError
from w2v.fileio import atomic_write
from w2v.vectors import WordVectors, load_vectors


@dataclass
class Run:
    """What a training run produced: its directory, final metrics, vectors and resolved config."""

    output_dir: Path
    metrics: dict[str, float]
    vectors: WordVectors
    config: DictConfig


def build_model(vocab, *overrides: str):
    """The model a run with these overrides would train, on `vocab`, untrained: e.g.
    `build_model(vocab, "model=cbow", "model.window=2", "model/optimizer=sgd")`."""
    from w2v.training import check_model_config, instantiate_model

    model_cfg = compose_config(*overrides).model
    check_model_config(model_cfg)
    return instantiate_model(model_cfg, vocab)


def build_datamodule(*overrides: str):
    """The datamodule a run with these overrides would read, not yet set up: e.g.
    `build_datamodule("data=text", "data.path=corpus.txt", "data.vocab.min_count=1")`."""
    from w2v.training import build

    return build(compose_config(*overrides).data)


def compose_run_config(overrides: list[str]) -> tuple[DictConfig, Path]:
    """The run's config as `w2v-train` composes it (with `ckpt_path`, the interrupted run's settings
    updated by `overrides`), and its run directory (hydra.run.dir)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.hydra_config import HydraConfig

    from w2v import CONFIG_DIR
    from w2v.training import config_for_run

    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(config_name="config", overrides=overrides, return_hydra_config=True)
        output_dir = Path(cfg.hydra.run.dir).absolute()
        with open_dict(cfg):
            cfg.hydra.runtime.output_dir = str(output_dir)
        HydraConfig.instance().set_config(cfg)  # `${hydra:...}` in the config resolves to this run's
        cfg = config_for_run(cfg)
    run_cfg = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])  # as w2v-train's train() gets it
    OmegaConf.resolve(run_cfg)  # its paths stay this run's when another run sets Hydra's config
    return run_cfg, output_dir


def train(*overrides: str) -> Run:
    """Trains one run as `w2v-train OVERRIDES...` would (no sweeps: call it once per setting)."""
    from w2v.training import RUN_MARKER, run_dir_taken
    from w2v.training import train as train_run

    if any(o.lstrip("+~").startswith(("trainer=ddp", "hydra/launcher")) for o in overrides):
        raise ConfigError("data-parallel runs and launchers start processes of their own: run them with w2v-train")
    run_cfg, output_dir = compose_run_config(list(overrides))
    if (output_dir / RUN_MARKER).exists():  # before its overrides.yaml is overwritten
        raise run_dir_taken(output_dir)
    # The overrides first, as Hydra writes them: a run stopped by Ctrl-C can then be resumed by ckpt_path.
    with atomic_write(output_dir / ".hydra" / "overrides.yaml") as out:
        out.write(OmegaConf.to_yaml(OmegaConf.create(list(overrides))))
    handler = logging.FileHandler(output_dir / "train.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    previous_level = root.level
    root.setLevel(min(previous_level, logging.INFO) if previous_level else logging.INFO)
    try:
        result = train_run(run_cfg)
    finally:
        root.removeHandler(handler)
        root.setLevel(previous_level)
        handler.close()
    return Run(output_dir=output_dir, metrics=result["metrics"], vectors=result["model"].word_vectors(),
               config=run_cfg)


def load(path: str | os.PathLike) -> WordVectors:
    """The vectors of a run directory (its vectors.txt or vectors.bin) or of a word2vec file, text or binary."""
    return load_vectors(path)
