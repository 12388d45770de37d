"""rerun=RUN_DIR: a run trained again from its settings, in a new directory, with changes on top."""

from __future__ import annotations

import numpy as np
import pytest
from omegaconf import OmegaConf

import w2v
from scripts.forked_runs import run as run_w2v
from w2v.errors import ConfigError


@pytest.fixture(scope="module")
def first_run(tmp_path_factory, planted_corpus):
    """A short run on the planted corpus, started with a few overrides (model.window=2 among them)."""
    root = tmp_path_factory.mktemp("rerun")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("W2V_CACHE_DIR", str(root / "cache"))
        return w2v.train("data=text", f"data.path={planted_corpus}", "data.tokenizer.n_process=1",
                         "data.vocab.min_count=1", "model.window=2", "trainer.max_epochs=1", "callbacks.tsne=null",
                         "callbacks.projector=null", f"hydra.run.dir={root / 'first'}")


def _rerun(tmp_path, monkeypatch, *overrides: str) -> w2v.Run:
    monkeypatch.setenv("W2V_CACHE_DIR", str(tmp_path / "cache"))
    return w2v.train(*overrides, f"hydra.run.dir={tmp_path / 'again'}")


def _copy_of(run: w2v.Run, where) -> str:
    """The run's config and overrides in another folder, to be edited there."""
    (where / ".hydra").mkdir(parents=True)
    for name in ("config.yaml", ".hydra/overrides.yaml"):
        (where / name).write_text((run.output_dir / name).read_text())
    return str(where)


def test_a_rerun_gives_the_runs_vectors_in_a_new_directory(first_run, tmp_path, monkeypatch):
    again = _rerun(tmp_path, monkeypatch, f"rerun={first_run.output_dir}")
    assert again.output_dir != first_run.output_dir
    assert again.config.model.window == 2 and again.config.data.path == first_run.config.data.path
    assert (again.output_dir / "vectors.txt").read_bytes() == (first_run.output_dir / "vectors.txt").read_bytes()


@pytest.mark.slow
def test_w2v_train_reruns_a_run_as_the_api_does(first_run, tmp_path, monkeypatch):
    monkeypatch.setenv("W2V_CACHE_DIR", str(tmp_path / "cache"))
    cli = run_w2v(["train", f"rerun={first_run.output_dir}", f"hydra.run.dir={tmp_path / 'cli'}"], tmp_path)
    assert cli.returncode == 0, cli.stderr[-3000:]
    assert (tmp_path / "cli" / "vectors.txt").read_bytes() == (first_run.output_dir / "vectors.txt").read_bytes()


def test_a_rerun_of_a_rerun_keeps_both_runs_changes(first_run, tmp_path, monkeypatch):
    second = _rerun(tmp_path / "second", monkeypatch, f"rerun={first_run.output_dir}", "seed=1")
    third = _rerun(tmp_path / "third", monkeypatch, f"rerun={second.output_dir}", "model.negatives=3")
    assert (second.config.seed, second.config.model.window) == (1, 2)
    assert (third.config.seed, third.config.model.window, third.config.model.negatives) == (1, 2, 3)
    assert not np.array_equal(second.vectors.vectors, first_run.vectors.vectors)  # another seed


def test_a_default_that_changed_since_the_run_takes_its_saved_value(first_run, tmp_path, monkeypatch, caplog):
    """As if model.noise_power's default had been 0.5 when the run was made: the rerun trains with 0.5."""
    old = _copy_of(first_run, tmp_path / "old")
    saved = OmegaConf.load(f"{old}/config.yaml")
    saved.model.noise_power = 0.5
    OmegaConf.save(saved, f"{old}/config.yaml")
    with caplog.at_level("INFO", logger="w2v.training"):
        again = _rerun(tmp_path, monkeypatch, f"rerun={old}", "trainer.max_epochs=0")
    assert again.config.model.noise_power == 0.5 and again.config.model.window == 2
    assert "defaults changed since that run take its values: model.noise_power=0.5 (now 0.75)" in caplog.text
    assert _rerun(tmp_path / "mine", monkeypatch, f"rerun={old}", "model.noise_power=1.0",
                  "trainer.max_epochs=0").config.model.noise_power == 1.0  # the command's value comes first


@pytest.mark.parametrize("damage, message", [
    ("missing", "no run there .*pass the directory of a run that w2v train made"),
    ("loop", "its runs rerun each other in a loop"),
    ("unreadable", "its config.yaml is unreadable .*; restore it, or start a new run with the overrides"),
    ("unknown key", "its config has model.shrink_windows, which this version does not; this version has "
                    "model.shrink_window, which its config does not; rerun it with the w2v version that made it"),
])
def test_a_rerun_that_cannot_repeat_the_run_is_a_one_line_error(first_run, tmp_path, monkeypatch, damage, message):
    source = _copy_of(first_run, tmp_path / "source")
    if damage == "missing":
        (tmp_path / "source" / "config.yaml").unlink()
    elif damage == "unreadable":
        (tmp_path / "source" / "config.yaml").write_text("model: [window")
    elif damage == "loop":
        OmegaConf.save(OmegaConf.create([f"rerun={source}", "seed=3"]), f"{source}/.hydra/overrides.yaml")
    else:
        saved = OmegaConf.load(f"{source}/config.yaml")
        saved.model.shrink_windows = saved.model.pop("shrink_window")
        OmegaConf.save(saved, f"{source}/config.yaml")
    with pytest.raises(ConfigError, match=message):
        _rerun(tmp_path, monkeypatch, f"rerun={source}")
