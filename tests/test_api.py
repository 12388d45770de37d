"""The Python API: w2v.train(*overrides) makes the run w2v-train makes; w2v.load reads its vectors."""

from __future__ import annotations

import numpy as np
import pytest

import w2v
from scripts.forked_runs import run as run_w2v
from tests.conftest import planted_neighbour_share
from w2v.api import compose_run_config
from w2v.errors import ConfigError


def _overrides(planted_corpus, run_dir):
    return ["data=text", f"data.path={planted_corpus}", "data.tokenizer.n_process=1", "data.vocab.min_count=1",
            "model.compile=false", "trainer.max_epochs=2", "callbacks.tsne=null", f"hydra.run.dir={run_dir}"]


@pytest.mark.slow
def test_train_returns_the_run_that_w2v_train_makes(tmp_path, planted_corpus, monkeypatch):
    monkeypatch.setenv("W2V_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    run = w2v.train(*_overrides(planted_corpus, tmp_path / "api"))
    assert run.output_dir == tmp_path / "api" and run.config.trainer.max_epochs == 2
    assert run.metrics["epochs"] == 2 and np.isfinite(run.metrics["train/loss_epoch"])
    assert planted_neighbour_share(run.vectors) >= 0.9
    for name in ("config.yaml", "vocab.tsv", "vectors.txt", "last.ckpt", "metrics.json", "train.log",
                 ".hydra/overrides.yaml"):
        assert (run.output_dir / name).is_file(), name
    loaded = w2v.load(run.output_dir)
    assert loaded.words == run.vectors.words and np.allclose(loaded.vectors, run.vectors.vectors, atol=1e-6)

    cli = run_w2v(["train", *_overrides(planted_corpus, tmp_path / "cli")], tmp_path)  # `w2v train`, forked
    assert cli.returncode == 0, cli.stderr[-3000:]
    assert (tmp_path / "cli" / "vectors.txt").read_bytes() == (run.output_dir / "vectors.txt").read_bytes()
    compose_run_config(_overrides(planted_corpus, tmp_path / "later"))  # as another w2v.train would
    assert run.config.paths.output_dir == str(tmp_path / "api")  # resolved: not the later run's folder

    # Into a run's directory again: refused before the run's record of its overrides is touched.
    saved = (run.output_dir / ".hydra" / "overrides.yaml").read_bytes()
    with pytest.raises(ConfigError, match="already holds a run"):
        w2v.train(*_overrides(planted_corpus, tmp_path / "api"), "seed=3")
    assert (run.output_dir / ".hydra" / "overrides.yaml").read_bytes() == saved


def test_train_refuses_what_needs_processes_of_its_own():
    with pytest.raises(ConfigError, match="run them with w2v-train"):
        w2v.train("trainer=ddp")
