"""Checkpoint files that survive a crash, and one-line errors for those that cannot be resumed.

`SafeCheckpointIO` writes every checkpoint of a run (Lightning's CheckpointIO plugin): to a
temporary file beside its final name, synced to the disk, then renamed into place. The previous
checkpoint stays whole until the new one is, so a kill or a power loss during a save leaves one
or the other, never a part. (Lightning's own writer stages the file in the system's temporary
folder and moves it across: a copy, interruptible, where that folder is on another disk.) Each
checkpoint carries a digest of its tensors, so a file damaged afterwards is recognised when read.

`read_checkpoint` loads a checkpoint to resume from and turns each way it can be unusable
(truncated, corrupted, not a training checkpoint) into a ConfigError that names the file;
`check_checkpoint_fits` compares its parameters with the model's before training starts.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from lightning.fabric.utilities.cloud_io import _load as lightning_load
from lightning.pytorch.plugins.io import TorchCheckpointIO

from w2v.errors import ConfigError
from w2v.fileio import atomic_write

DIGEST_KEY = "w2v_digest"
SAVE_FIX = "free space there, then resume the run from its last checkpoint with ckpt_path=RUN_DIR"
_START_AFRESH = "resume from another run's checkpoint, or start a new run without ckpt_path"


def tensor_digest(state: Any) -> str:
    """A digest of every tensor and array in `state` (nested dicts, lists, tuples), in their order,
    with each one's place, type and shape; other values are left out."""
    digest = hashlib.blake2b(digest_size=16)

    def visit(value: Any, where: str) -> None:
        if isinstance(value, torch.Tensor):
            tensor = value.detach().cpu()
            tensor = tensor.to_dense() if tensor.is_sparse else tensor
            digest.update(f"{where}:{tensor.dtype}:{tuple(tensor.shape)};".encode())
            digest.update(tensor.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
        elif isinstance(value, np.ndarray) and value.dtype != object:
            digest.update(f"{where}:{value.dtype}:{value.shape};".encode())
            digest.update(np.ascontiguousarray(value).tobytes())
        elif isinstance(value, Mapping):
            for key, item in value.items():
                if key != DIGEST_KEY:
                    visit(item, f"{where}/{key}")
        elif isinstance(value, (list, tuple)):
            for i, item in enumerate(value):
                visit(item, f"{where}/{i}")

    visit(state, "")
    return digest.hexdigest()


class SafeCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint writer and reader for w2v runs: atomic, durable, verified on reading."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options (got {storage_options!r})")
        checkpoint = {**checkpoint, DIGEST_KEY: tensor_digest(checkpoint)}
        with atomic_write(path, "wb", fix=SAVE_FIX) as out:
            torch.save(checkpoint, out)

    def load_checkpoint(self, path, map_location: Any | None = None, weights_only: bool | None = None) -> dict[str, Any]:
        return read_checkpoint(path, map_location, weights_only)


def read_checkpoint(path: str | os.PathLike, map_location: Any | None = "cpu",
                    weights_only: bool | None = None) -> dict[str, Any]:
    """The training checkpoint at `path`; a ConfigError naming the file if it is damaged or is not one."""
    path = Path(path)
    try:
        checkpoint = lightning_load(path, map_location=map_location, weights_only=weights_only)
    except OSError as err:
        raise ConfigError(f"ckpt_path: cannot read {path} ({err.strerror or err}); check the path and its permissions")
    except Exception as err:  # noqa: BLE001  torch.load's many ways to fail on a damaged file
        reason = str(err).strip().splitlines()[0][:120] if str(err).strip() else type(err).__name__
        raise ConfigError(f"ckpt_path: {path} is damaged (truncated or corrupted: {reason}); {_START_AFRESH}") from None
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("state_dict"), Mapping) \
            or "pytorch-lightning_version" not in checkpoint:
        raise ConfigError(f"ckpt_path: {path} is not a training checkpoint (no Lightning training state); pass a "
                          f"w2v run directory or its last.ckpt, or start a new run without ckpt_path")
    saved = checkpoint.get(DIGEST_KEY)
    if saved is not None and saved != tensor_digest(checkpoint):
        raise ConfigError(f"ckpt_path: {path} is damaged (its tensors fail their digest); {_START_AFRESH}")
    return checkpoint


def parameter_shapes(state_dict: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in state_dict.items() if isinstance(v, torch.Tensor)}


def check_checkpoint_fits(saved: Mapping[str, tuple[int, ...]], model: torch.nn.Module, path: str | os.PathLike) -> None:
    """A ConfigError if the checkpoint's parameter shapes `saved` are not `model`'s (another model or vocabulary)."""
    ours = parameter_shapes(model.state_dict())
    if saved == ours:
        return
    differing = sorted(set(saved) ^ set(ours)) or sorted(k for k in ours if saved[k] != ours[k])
    key = differing[0]
    raise ConfigError(f"ckpt_path: {path} was saved by another model or vocabulary ({key}: "
                      f"{saved.get(key, 'absent')} there, {ours.get(key, 'absent')} here); resume with the model, data "
                      f"and vocabulary settings of the run that saved it, or start a new run without ckpt_path")
