"""The console entry point as a user runs it: a two-run multirun, and a bad override's one-line error."""

from __future__ import annotations

import os

import pytest
from gensim.models import KeyedVectors

from scripts import forked_runs


def run_cli(args, cwd, env_extra=None):
    env = {**os.environ, "W2V_CACHE_DIR": str(cwd / "cache"), **(env_extra or {})}
    return forked_runs.run(["train", *args], cwd, env)  # forked from a process that has imported w2v


@pytest.mark.slow
def test_two_run_multirun(tmp_path, planted_corpus):
    result = run_cli(["-m", "model=cbow,sgns", "data=text", f"data.path={planted_corpus}", "trainer.max_epochs=1",
                      "data.batch_size=256", "data.vocab.min_count=1", "trainer.enable_progress_bar=false"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    runs = sorted(p.parent for p in (tmp_path / "outputs").glob("train/multiruns/*/*/vectors.txt"))
    assert len(runs) == 2
    assert {(run / ".hydra" / "overrides.yaml").read_text().split("\n")[0] for run in runs} == {"- model=cbow", "- model=sgns"}
    for run in runs:
        assert KeyedVectors.load_word2vec_format(run / "vectors.txt").vector_size == 100
        assert (run / "last.ckpt").is_file() and (run / ".hydra" / "config.yaml").is_file()
    assert len(list((tmp_path / "cache").glob("text-*"))) == 1  # the second run reused the first one's tokens


def test_bad_override_is_one_line_without_traceback(tmp_path, planted_corpus):
    result = run_cli(["data=text", f"data.path={planted_corpus}", "model.window=0"], tmp_path)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == ["error: model.window=0 must be an integer of at least 1 (words on each side)"]


def test_missing_archive_offline(tmp_path):
    result = run_cli(["data.download=false"], tmp_path, {"W2V_DATA_DIR": str(tmp_path / "nothing")})
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "error: IMDb archive aclImdb_v1.tar.gz not found" in result.stderr
