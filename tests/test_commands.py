"""w2v-eval, w2v-query, w2v-tsne on a small trained run; w2v-report on a small two-run sweep."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from w2v.commands import evaluate, query, report, tsne
from w2v.training import train


@pytest.fixture
def run_dir(make_cfg, tmp_path):
    cfg = make_cfg(["trainer.max_epochs=3", "callbacks.export.formats=[text,binary,projector]",
                    "callbacks.neighbours.probe_words=[cat,red,bread]"])
    return train(cfg)["output_dir"]


def test_run_writes_metrics_tsne_and_all_export_formats(run_dir):
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert {"train/loss_epoch", "wall_seconds", "eval/wordsim353_oov"} <= set(metrics)
    assert metrics["eval/wordsim353_oov"] == 1.0  # the planted corpus has none of WordSim's words
    for name in ("tsne.png", "vectors.txt", "vectors.bin", "vectors.tsv", "metadata.tsv"):
        assert (run_dir / name).is_file(), name
    assert (run_dir / "tsne.png").read_bytes()[:4] == b"\x89PNG"
    rows = (run_dir / "vectors.tsv").read_text().splitlines()
    assert len(rows) == len((run_dir / "metadata.tsv").read_text().splitlines()) and len(rows[0].split("\t")) == 100


def test_eval_table_and_json(run_dir, capsys):
    assert evaluate.main([str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "wordsim353 spearman" in out and "analogy 3cosmul" in out
    assert evaluate.main([str(run_dir / "vectors.bin"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["wordsim353"]["oov_ratio"] == 1.0 and result["analogy_3cosadd"]["answered"] == 0


def test_query_commands(run_dir, capsys):
    assert query.main([str(run_dir), "most-similar", "cat", "-k", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and all(line.split()[1] in {"dog", "horse", "cow", "sheep", "goat"} for line in lines)
    assert query.main([str(run_dir), "similarity", "cat", "dog"]) == 0
    assert float(capsys.readouterr().out) > 0.5
    assert query.main([str(run_dir), "doesnt-match", "cat", "dog", "cow", "hammer"]) == 0
    assert capsys.readouterr().out.strip() == "hammer"
    assert query.main([str(run_dir), "analogy", "cat", "dog", "red", "-k", "2"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2


def test_unknown_word_suggests_spellings_without_traceback(run_dir):
    result = subprocess.run([sys.executable, "-m", "w2v.commands.query_main", str(run_dir), "most-similar", "caat"],
                            capture_output=True, text=True)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "error: 'caat' is not in the vocabulary" in result.stderr and "did you mean cat" in result.stderr


def test_tsne_command(run_dir, tmp_path, capsys):
    assert tsne.main([str(run_dir / "vectors.txt"), "-o", str(tmp_path / "map.png"), "-w", "cat", "red", "-k", "4"]) == 0
    assert (tmp_path / "map.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_report_on_a_two_run_sweep(tmp_path, planted_corpus):
    env = {**os.environ, "W2V_CACHE_DIR": str(tmp_path / "cache")}
    result = subprocess.run([sys.executable, "-m", "w2v", "-m", "model.window=2,4", "data=text",
                             f"data.path={planted_corpus}", "trainer.max_epochs=2", "data.batch_size=256",
                             "data.vocab.min_count=1", "model.compile=false", "trainer.enable_progress_bar=false"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    sweep = next((tmp_path / "outputs" / "train" / "multiruns").iterdir())
    assert report.main([str(sweep), "--metric", "train/loss_epoch"]) == 0
    table = (sweep / "report.md").read_text().splitlines()
    assert table[0].startswith("| run | model.window | train/loss_epoch") and len(table) == 4
    assert {line.split("|")[2].strip() for line in table[2:]} == {"2", "4"}
    csv_lines = (sweep / "report.csv").read_text().splitlines()
    assert csv_lines[0].startswith("run,model.window,train/loss_epoch") and len(csv_lines) == 3
    for png in ("metric.png", "curves.png"):
        assert (sweep / png).read_bytes()[:4] == b"\x89PNG"
