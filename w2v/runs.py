"""What names a run and what describes it: the run's name from its overrides (TensorBoard's run
names), the hyperparameters of its experiment (TensorBoard's HParams tab), and where its events are."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any, Sequence

from omegaconf import DictConfig, OmegaConf

# Overrides that say where things are or how a run is watched, not what is trained.
PLUMBING = ("hydra", "paths", "ckpt_path", "rerun", "callbacks", "logger", "optimized_metric", "cuda_tf32",
            "trainer.enable_progress_bar", "trainer.log_every_n_steps", "data.data_dir", "data.cache_dir",
            "data.archive", "data.tokenizer.n_process")
# The config keys that describe an experiment (prefixes), for the HParams tab.
EXPERIMENT_KEYS = ("model", "data", "seed", "trainer.max_epochs", "trainer.precision", "trainer.devices",
                   "trainer.accelerator", "trainer.num_nodes", "trainer.strategy")
NAME_LENGTH = 100


def override_key(override: str) -> str:
    """The config key an override sets, dotted: `+model/optimizer=adam` -> `model.optimizer`."""
    return override.lstrip("+~").partition("=")[0].replace("/", ".")


def _plumbing(key: str) -> bool:
    return any(key == p or key.startswith(p + ".") for p in PLUMBING)


def run_name(overrides: Sequence[str]) -> str:
    """A stable, filesystem-safe name from a run's overrides, plumbing left out:
    `model=cbow,model.window=3`; `defaults` when nothing was changed."""
    kept = [override_key(o) + o.partition("=")[1] + o.partition("=")[2]  # in the command line's order
            for o in overrides if not _plumbing(override_key(o))]
    name = re.sub(r"[^A-Za-z0-9._=,~@-]", "_", ",".join(kept))
    if len(name) > NAME_LENGTH:  # cut, with a hash of the whole so that names stay distinct
        name = name[: NAME_LENGTH - 9] + "-" + hashlib.sha1(name.encode()).hexdigest()[:8]
    return name or "defaults"


def swept_keys(sweep_overrides: Sequence[str]) -> list[str]:
    """The keys a multirun's command line sweeps (`model=cbow,sgns`, `range(...)`, `choice(...)`...)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(list(sweep_overrides))
    return [override_key(o.get_key_element()) for o in parsed if o.is_sweep_override()]


def flat_settings(cfg: DictConfig) -> dict[str, Any]:
    """The config flattened to `a.b.c: value` scalars (other values, None and lists, as strings)."""
    flat: dict[str, Any] = {}

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, f"{prefix}.{key}" if prefix else str(key))
        else:
            flat[prefix] = node if isinstance(node, (int, float, str, bool)) else str(node)

    walk(OmegaConf.to_container(cfg, resolve=True), "")
    return flat


def experiment_hparams(cfg: DictConfig, swept: Sequence[str] = ()) -> dict[str, Any]:
    """The settings that describe the experiment, as `a/b: value` scalars, swept keys first.

    A class named by `_target_` becomes the value of its node's key (`model/optimizer: DeferredAdam`);
    paths, callbacks and other plumbing are left out. Values keep their types (bool, int, float, str);
    None and lists become strings, which TensorBoard's HParams tab can show.
    """
    flat: dict[str, Any] = {}
    for key, value in flat_settings(cfg).items():
        node, _, leaf = key.rpartition(".")
        if leaf == "_partial_":
            continue
        if leaf == "_target_":
            key, value = node, str(value).rsplit(".", 1)[-1]
        if not _plumbing(key) and any(key == k or key.startswith(k + ".") for k in EXPERIMENT_KEYS):
            flat[key] = value
    first = [k for k in swept if k in flat]
    ordered = first + [k for k in flat if k not in first]
    return {k.replace(".", "/"): flat[k] for k in ordered}


def tensorboard_dir(run_dir: str | Path) -> Path:
    """The folder of a run's TensorBoard events (`tensorboard/<run name>/`, or `tensorboard/` itself)."""
    root = Path(run_dir) / "tensorboard"
    found = sorted({p.parent for p in root.rglob("events.out.tfevents.*")})
    return found[0] if found else root
