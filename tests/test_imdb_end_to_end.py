"""An end-to-end run on the first 2,000 reviews of the real IMDb archive (required on CI)."""

from __future__ import annotations

import pytest
from gensim.models import KeyedVectors
from omegaconf import open_dict

from tests.conftest import compose_config
from w2v.training import train

pytestmark = pytest.mark.slow  # a real corpus


def test_sgns_on_first_2000_reviews(shared_archive, tmp_path):
    cfg = compose_config([f"data.archive={shared_archive}", "data.max_docs=2000", "trainer.max_epochs=2",
                          "trainer.enable_progress_bar=false"])
    with open_dict(cfg):
        cfg.paths.output_dir = str(tmp_path / "run")
        cfg.paths.cache_dir = str(tmp_path / "cache")
    result = train(cfg)
    vocab = result["datamodule"].vocab
    assert 5_000 < len(vocab) < 8_000  # min_count 5 over about 450,000 tokens
    kv = KeyedVectors.load_word2vec_format(result["output_dir"] / "vectors.txt")
    assert {"movie", "film", "actor", "good", "bad"} <= set(kv.key_to_index)
    # Even two epochs on 2,000 reviews put "film" near "movie".
    assert "film" in [w for w, _ in kv.most_similar("movie", topn=10)]
    assert result["metrics"]["train/loss_epoch"] < 3.0
