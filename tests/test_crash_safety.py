"""Crash safety: full disks, damaged or foreign checkpoints, and runs killed outright (scripts/crash_test.py)."""

from __future__ import annotations

import errno
import os

import numpy as np
import pytest
import torch

from scripts import forked_runs
from w2v.checkpoints import SafeCheckpointIO, check_checkpoint_fits, parameter_shapes, read_checkpoint
from w2v.data.cache import cached_tokens
from w2v.data.vocab import Vocabulary
from w2v.errors import ConfigError, StorageError
from w2v.fileio import atomic_write


def _fail_fsync_for(monkeypatch, fragment: str) -> None:
    """os.fsync fails with ENOSPC for files whose name contains `fragment`, as on a full disk."""
    real = os.fsync

    def fsync(fd):
        if fragment in os.readlink(f"/proc/self/fd/{fd}"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(fd)

    monkeypatch.setattr(os, "fsync", fsync)


def test_a_full_disk_while_writing_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "metrics.json"
    path.write_text("previous")
    _fail_fsync_for(monkeypatch, "metrics.json")
    with pytest.raises(StorageError) as caught:
        with atomic_write(path) as out:
            out.write("new")
    message = str(caught.value)
    assert "\n" not in message and str(path) in message and "free space" in message
    assert path.read_text() == "previous" and os.listdir(tmp_path) == ["metrics.json"]  # no temporary file left


def test_a_full_disk_while_caching_is_a_one_line_error_and_leaves_no_entry(tmp_path):
    def build(ids_file):
        ids_file.write(b"\0" * 64)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.raises(StorageError, match="W2V_CACHE_DIR") as caught:
        cached_tokens(tmp_path, "corpus", {"x": 1}, build)
    assert str(tmp_path) in str(caught.value) and "\n" not in str(caught.value)
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == []


def _checkpoint(seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    weights = torch.full((2000, 50), 1.2345)
    weights[0] = torch.rand(50, generator=g)
    return {"state_dict": {"in_embed.weight": weights, "out_embed.weight": torch.zeros(2000, 50)},
            "optimizer_states": [{"state": {0: {"step": torch.tensor(3.0)}}}], "epoch": 1,
            "pytorch-lightning_version": "2.6"}


def test_a_saved_checkpoint_reads_back_whole(tmp_path):
    path = tmp_path / "last.ckpt"
    SafeCheckpointIO().save_checkpoint(_checkpoint(), path)
    loaded = read_checkpoint(path)
    assert torch.equal(loaded["state_dict"]["in_embed.weight"], _checkpoint()["state_dict"]["in_embed.weight"])
    assert sorted(os.listdir(tmp_path)) == ["last.ckpt"]


def test_a_full_disk_while_saving_a_checkpoint_keeps_the_previous_one(tmp_path, monkeypatch):
    path = tmp_path / "last.ckpt"
    io = SafeCheckpointIO()
    io.save_checkpoint(_checkpoint(0), path)
    _fail_fsync_for(monkeypatch, "last.ckpt")
    later = _checkpoint(1)
    later["epoch"] = 2
    with pytest.raises(StorageError, match="ckpt_path=RUN_DIR") as caught:
        io.save_checkpoint(later, path)
    assert str(path) in str(caught.value)
    assert read_checkpoint(path)["epoch"] == 1 and sorted(os.listdir(tmp_path)) == ["last.ckpt"]


def test_truncated_corrupted_and_foreign_checkpoints_are_named_errors(tmp_path):
    good = tmp_path / "good.ckpt"
    SafeCheckpointIO().save_checkpoint(_checkpoint(), good)
    data = good.read_bytes()

    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(data[: len(data) // 2])
    empty = tmp_path / "empty.ckpt"
    empty.write_bytes(b"")
    corrupted = tmp_path / "corrupted.ckpt"  # one value of the weights changed, the file's structure intact
    pattern = np.float32(1.2345).tobytes() * 4
    at = data.index(pattern) + 4 * 1000
    corrupted.write_bytes(data[:at] + np.float32(9.0).tobytes() + data[at + 4:])
    for path in (truncated, empty, corrupted):
        with pytest.raises(ConfigError, match="is damaged") as caught:
            read_checkpoint(path)
        assert str(path) in str(caught.value) and "\n" not in str(caught.value)

    foreign = tmp_path / "foreign.ckpt"
    torch.save({"model": torch.zeros(3)}, foreign)
    with pytest.raises(ConfigError, match="is not a training checkpoint"):
        read_checkpoint(foreign)


def test_a_checkpoint_of_another_model_is_named_before_training():
    from w2v.api import build_model

    vocab = Vocabulary(words=[f"w{i}" for i in range(30)], counts=np.arange(30, 0, -1))
    sgns = build_model(vocab, "model=sgns")
    cbow = build_model(vocab, "model=cbow")
    check_checkpoint_fits(parameter_shapes(sgns.state_dict()), sgns, "run/last.ckpt")  # its own: fine
    with pytest.raises(ConfigError, match="run/last.ckpt was saved by another model or vocabulary"):
        check_checkpoint_fits(parameter_shapes(sgns.state_dict()), cbow, "run/last.ckpt")
    smaller = {k: (v[0] - 1, *v[1:]) for k, v in parameter_shapes(sgns.state_dict()).items()}
    with pytest.raises(ConfigError, match=r"in_embed.weight: \(29, 100\) there, \(30, 100\) here"):
        check_checkpoint_fits(smaller, sgns, "run/last.ckpt")


@pytest.mark.slow
def test_resuming_a_damaged_checkpoint_is_one_error_line(tmp_path, planted_corpus):
    run = tmp_path / "run"
    run.mkdir()
    (run / "last.ckpt").write_bytes(b"PK\x03\x04 not really a checkpoint")
    done = forked_runs.run(["train", "data=text", f"data.path={planted_corpus}", f"ckpt_path={run}",
                            f"hydra.run.dir={tmp_path / 'resumed'}"], tmp_path,
                           {**os.environ, "W2V_CACHE_DIR": str(tmp_path / "cache")})
    assert done.returncode == 1, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith(f"error: ckpt_path: {run / 'last.ckpt'} is damaged")
    assert not (tmp_path / "cache").exists()  # stopped before any data work


def test_crash_test_short_run_is_clean(tmp_path, capsys):
    """The kill loop of scripts/crash_test.py, a few kills at seeded moments of different phases; its
    runs fork from the same server as the other tests' (scripts/forked_runs.py)."""
    from scripts import crash_test

    status = crash_test.main(["--runs", "5", "--seed", "1", "--workdir", str(tmp_path)])
    output = capsys.readouterr().out
    assert status == 0, output[-4000:]
    assert output.strip().splitlines()[-1].startswith("5/5 clean")
