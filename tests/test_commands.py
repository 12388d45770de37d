"""`w2v eval`, `query`, `tsne` on a small trained run, `w2v report` on a small two-run sweep, and the command's own options."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import w2v
from scripts import forked_runs
from tests.conftest import shrunk_config
from w2v.commands import main
from w2v.training import train


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, planted_corpus):
    """One small trained run, which the tests here only read."""
    cfg = shrunk_config(["trainer.max_epochs=3", "callbacks.export.formats=[text,binary,projector]",
                         "callbacks.neighbours.probe_words=[cat,red,bread]"], planted_corpus, tmp_path_factory.mktemp("trained"))
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
    assert main(["eval", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "wordsim353 spearman" in out and "analogy 3cosmul" in out
    assert main(["eval", str(run_dir / "vectors.bin"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["wordsim353"]["oov_ratio"] == 1.0 and result["analogy_3cosadd"]["answered"] == 0


def test_query_commands(run_dir, capsys):
    assert main(["query", str(run_dir), "most-similar", "cat", "-k", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and all(line.split()[1] in {"dog", "horse", "cow", "sheep", "goat"} for line in lines)
    assert main(["query", str(run_dir), "similarity", "cat", "dog"]) == 0
    assert float(capsys.readouterr().out) > 0.5
    assert main(["query", str(run_dir), "doesnt-match", "cat", "dog", "cow", "hammer"]) == 0
    assert capsys.readouterr().out.strip() == "hammer"
    assert main(["query", str(run_dir), "analogy", "cat", "dog", "red", "-k", "2"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2


def test_unknown_word_suggests_spellings_without_traceback(run_dir):
    result = subprocess.run([sys.executable, "-m", "w2v", "query", str(run_dir), "most-similar", "caat"],
                            capture_output=True, text=True)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "error: 'caat' is not in the vocabulary" in result.stderr and "did you mean cat" in result.stderr


def test_tsne_command(run_dir, tmp_path, capsys):
    assert main(["tsne", str(run_dir / "vectors.txt"), "-o", str(tmp_path / "map.png"), "--probe_words", "cat", "red", "-k", "4"]) == 0
    assert (tmp_path / "map.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_report_on_a_two_run_sweep(tmp_path, planted_corpus):
    env = {**os.environ, "W2V_CACHE_DIR": str(tmp_path / "cache")}
    result = forked_runs.run(["train", "-m", "model.window=2,4", "data=text", f"data.path={planted_corpus}",
                              "trainer.max_epochs=2", "data.batch_size=256", "data.vocab.min_count=1",
                              "model.compile=false", "trainer.enable_progress_bar=false"], tmp_path, env)
    assert result.returncode == 0, result.stderr[-3000:]
    sweep = next((tmp_path / "outputs" / "train" / "multiruns").iterdir())
    # TensorBoard names each member by its swept setting
    assert sorted(p.name for p in sweep.glob("*/tensorboard/*") if p.is_dir()) == ["model.window=2", "model.window=4"]
    assert main(["report", str(sweep), "--metric", "train/loss_epoch"]) == 0
    table = (sweep / "report.md").read_text().splitlines()
    assert table[0].startswith("| run | model.window | train/loss_epoch") and len(table) == 4
    assert {line.split("|")[2].strip() for line in table[2:]} == {"2", "4"}
    csv_lines = (sweep / "report.csv").read_text().splitlines()
    assert csv_lines[0].startswith("run,model.window,train/loss_epoch") and len(csv_lines) == 3
    for png in ("metric.png", "curves.png"):
        assert (sweep / png).read_bytes()[:4] == b"\x89PNG"


def test_query_json_is_data(run_dir, capsys):
    assert main(["query", str(run_dir), "most-similar", "cat", "-k", "2", "--json"]) == 0
    neighbours = json.loads(capsys.readouterr().out)
    assert [set(n) for n in neighbours] == [{"word", "similarity"}] * 2
    assert main(["query", str(run_dir), "similarity", "cat", "dog", "--json"]) == 0
    assert isinstance(json.loads(capsys.readouterr().out), float)


def test_version_and_help_of_every_argument(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.strip() == f"w2v {w2v.__version__}"
    from w2v.commands import parser

    def walk(p):
        for action in p._actions:
            if action.choices and isinstance(action.choices, dict):  # subcommands
                for sub in action.choices.values():
                    yield from walk(sub)
            elif action.dest not in ("help", "version"):
                yield p.prog, action

    undocumented = [f"{prog} {action.dest}" for prog, action in walk(parser()) if not action.help]
    assert undocumented == []
