"""Bad input gets a one-line error that names the fix, before any heavy work; no run overwrites another."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from hydra.errors import ConfigCompositionException

from tests.conftest import compose_config
from w2v.config import composition_error
from w2v.errors import ConfigError
from w2v.training import train


@pytest.mark.parametrize("override, match", [
    ("model.window=0", "model.window=0 must be an integer of at least 1"),
    ("model.negatives=0", "model.negatives=0 must be an integer of at least 1"),
    ("model.embedding_dim=0", "model.embedding_dim=0 must be an integer of at least 1"),
    ("model.optimizer._target_=torch.optim.Nope", "model.optimizer._target_=torch.optim.Nope is not a class"),
    ("model.optimizer.lr=0", "model.optimizer.lr=0 must be a number above 0"),
    ("model.optimizer.lr=0.0.25", "model.optimizer.lr=0.0.25 must be a number above 0"),  # Hydra: a string
    ("model.scheduler.min_lr_ratio=2", "model.scheduler.min_lr_ratio=2 must be a number between 0 and 1"),
    ("+model.optimizer.betas=[0.9,0.99]", "model.optimizer.betas is not a setting of SGD"),
    ("model.scheduler._target_=torch.optim.lr_scheduler.StepLR", "model.scheduler.min_lr_ratio is not a setting of StepLR"),
    ("~model/scheduler", r"model.scheduler is missing: SkipGram\[negative\] needs it"),
    ("model.update_rule=locked", "model.update_rule='locked' is unknown; use auto"),
    ("model.update_shards=0", "model.update_shards=0 must be an integer of at least 1"),
    ("model.subsample=None", "model.subsample=None must be a number of at least 0, or null to keep every token "
                             r"\(as 0 does\); write null, not 'None'"),
    ("model.kernels=torch model.update_rule=sequential",
     r"model.update_rule=sequential runs on the fused kernels \(Numba's on a CPU, SGNS's Triton kernel\), not "
     "model.kernels=torch"),
    ("model.kernels=torch model.update_rule=hogwild",
     "model.update_rule=hogwild runs on the fused CPU kernels, not model.kernels=torch"),
    ("model=cbow model/output=negative model.cbow_mean=false",
     r"model.cbow_mean=false \(the context's vectors summed\) is implemented for the full softmax only"),
    ("model=cbow model.cbow_mean=2", "model.cbow_mean=2 must be true"),
    ("model=skipgram model.out_init=zeros", "model.out_init='zeros' is unknown; use linear or uniform"),
    ("data.vocab.max_size=1", "no room for words after the 2 special tokens"),
    ("data.batch_size=0", "data.batch_size=0 must be an integer of at least 1"),
    ("data.block_tokens=1", r"data.block_tokens=1 must be an integer of at least 2 \(tokens read at once; a window "
                            "needs two\)"),
    ("data.max_docs=None", "data.max_docs=None must be an integer of at least 1, or null for the whole corpus; "
                           "write null, not 'None'"),
    ("data.max_docs=1e4", "data.max_docs=10000.0 must be an integer of at least 1, .*; write 10000"),
    ("data.vocab.min_count=None", "data.vocab.min_count=None must be an integer of at least 1$"),
    ("data.vocab.max_size=ten", "data.vocab.max_size=ten must be an integer of at least 1, or null for no limit"),
    ("trainer.max_epochs=-2", r"trainer.max_epochs=-2 must be an integer of at least 0, or -1 \(no limit\)"),
    ("trainer.max_epochs=2.5", r"trainer.max_epochs=2.5 must be an integer of at least 0, or -1 \(no limit\)"),
    ("seed=None", "seed=None must be an integer of at least 0$"),
    ("callbacks.evaluation.wordsim=missing.tsv",
     "callbacks.evaluation.wordsim: benchmark file missing.tsv does not exist; fix the path"),
    ("callbacks.evaluation.restrict_vocab=0", "callbacks.evaluation.restrict_vocab=0 must be an integer of at least 1"),
    ("data.shuffle_unit=sentence", "data.shuffle_unit='sentence' is unknown; use auto"),
])
def test_bad_settings_fail_before_any_work(make_cfg, tmp_path, override, match):
    overrides = override.split() + (["data/vocab=notebook"] if "max_size" in override else [])
    with pytest.raises(ConfigError, match=match) as err:
        train(make_cfg(overrides))
    assert "\n" not in str(err.value)
    assert not (tmp_path / "cache").exists()  # nothing was tokenized


@pytest.mark.skipif(torch.cuda.is_available() or torch.backends.mps.is_available(), reason="a GPU is there")
def test_a_gpu_trainer_without_a_gpu_fails_before_any_work(make_cfg, tmp_path):
    with pytest.raises(ConfigError, match="trainer.accelerator=gpu needs a GPU, and torch .* sees none; use "
                                          "trainer=cpu") as err:
        train(make_cfg(["trainer=gpu"]))
    assert "\n" not in str(err.value)
    assert not (tmp_path / "cache").exists()  # nothing was tokenized


def test_setting_of_another_architecture_is_named(make_cfg):
    with pytest.raises(ConfigError, match="model.negatives is not a setting of CBOW"):
        train(make_cfg(["experiment=notebook", "model=cbow"]))


def test_unknown_model_name_lists_the_choices():
    with pytest.raises(ConfigCompositionException, match="model/transformer"):
        compose_config(["model=transformer"])


@pytest.mark.parametrize("args, expected", [
    (["model=transformer"], "In 'config': Could not find 'model/transformer'; available options in 'model': cbow, sgns, "
                            "skipgram (`w2v train --help` lists every config group and key)"),
    (["model=skipgram", "model.compile=false"],  # a setting of the SGD output layers only
     "Could not override 'model.compile'; to append to your config use +model.compile=false; key 'compile' is not in "
     "struct (`w2v train --help` lists every config group and key)"),
    (["model/output=hs"], "In 'model/skipgram': Could not find 'model/output/hs'; available options in 'model/output': "
                          "hierarchical, negative, softmax (`w2v train --help` lists every config group and key)"),
])
def test_what_hydra_cannot_compose_is_one_line(args, expected):
    assert composition_error(args) == expected


@pytest.mark.parametrize("args", [["model=cbow", "model.window=2"], ["-m", "model=cbow,sgns"], ["--help"],
                                  ["hydra.run.dir=elsewhere", "+model.new_key=1"]])
def test_what_hydra_checks_itself_is_left_to_it(args):
    """Sweeps, flags and Hydra's own settings; an added key is the model's check (test_bad_settings...)."""
    assert composition_error(args) is None


def test_a_bad_override_stops_w2v_train_before_lightning_is_imported():
    """A mistyped key is reported in the time Hydra takes to compose (Lightning's import alone takes seconds)."""
    code = ("import sys\nfrom w2v.commands import train\ntry:\n    train(['model.windw=3'])\n"
            "except SystemExit as stop:\n    print(stop)\nprint(sorted({'lightning', 'torch'} & set(sys.modules)))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.splitlines() == [
        "error: Could not override 'model.windw'; to append to your config use +model.windw=3; key 'windw' is not in "
        "struct (`w2v train --help` lists every config group and key)", "[]"], result.stderr


def test_w2v_train_composes_the_overrides_once_before_training(monkeypatch, capsys):
    """w2v.commands.train checks them, then runs w2v.training, which does not check them again."""
    import w2v.commands
    import w2v.config

    checked = []
    monkeypatch.setattr(w2v.config, "exit_if_not_composed", checked.append)  # what w2v.training imports
    monkeypatch.setattr(w2v.commands, "exit_if_not_composed", checked.append)
    monkeypatch.setattr(sys, "argv", ["w2v-train"])
    with pytest.raises(SystemExit) as stop:
        w2v.commands.train(["--help"])  # Hydra prints the config's groups and stops
    assert stop.value.code == 0 and "model: cbow, sgns, skipgram" in capsys.readouterr().out
    assert checked == [["--help"]]


def test_an_unreadable_override_is_named():
    problem = composition_error(["model.window=[1"])
    assert problem.startswith("cannot read the override 'model.window=[1': ") and "\n" not in problem


@pytest.mark.parametrize("content, match", [
    (None, "does not exist"),
    (b"", "is empty"),
    (b"12 34 !!\n-- ..\n", "no token left after preprocessing"),
])
def test_bad_corpus(make_cfg, tmp_path, content, match):
    path = tmp_path / "corpus.txt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ConfigError, match=match) as err:
        train(make_cfg([f"data.path={path}"]))
    assert "\n" not in str(err.value)


def test_no_run_overwrites_another(make_cfg, tmp_path):
    train(make_cfg(["trainer.fast_dev_run=true"], output_dir=tmp_path / "run"))
    before = (tmp_path / "run" / "vocab.tsv").read_bytes()
    with pytest.raises(ConfigError, match="already holds a run"):
        train(make_cfg(["trainer.fast_dev_run=true", "seed=9"], output_dir=tmp_path / "run"))
    assert (tmp_path / "run" / "vocab.tsv").read_bytes() == before


def test_hogwild_is_refused_where_runs_must_be_reproducible(make_cfg):
    """Lock-free updates land in the threads' order: trainer.deterministic=true rules them out, before training."""
    try:
        with pytest.raises(ConfigError, match="model.update_rule=hogwild .*trainer.deterministic=true rules out") as err:
            train(make_cfg(["model.update_rule=hogwild", "trainer.deterministic=true"]))
        assert "\n" not in str(err.value)
    finally:
        torch.use_deterministic_algorithms(False)  # set by the Trainer, for the whole process


def test_a_run_stopped_by_its_data_leaves_its_directory_free(make_cfg, tmp_path):
    """A corpus found bad only once read: the run's directory holds none of its files, and the
    corrected command trains there. What else is there stays, the cache the run made there too."""
    corpus, run = tmp_path / "corpus.txt", tmp_path / "run"
    corpus.write_text("12 34 !!\n-- ..\n")
    run.mkdir()
    (run / "train.log").write_text("Hydra's log, written before the run\n")
    cfg = make_cfg([f"data.path={corpus}"], output_dir=run)
    cfg.paths.cache_dir = str(run / "cache")
    with pytest.raises(ConfigError, match="no token left after preprocessing"):
        train(cfg)
    assert sorted(p.name for p in run.iterdir()) == ["cache", "train.log"]
    corpus.write_text("the cat sat on the mat\nthe dog sat on the log\n")
    train(make_cfg([f"data.path={corpus}", "trainer.fast_dev_run=true"], output_dir=run))
    assert (run / "vocab.tsv").is_file() and (run / "config.yaml").is_file()


def test_one_word_a_line_is_refused(make_cfg, tmp_path):
    """Windows stop at a document's end: a corpus of one-word documents has nothing to train on."""
    corpus = tmp_path / "words.txt"
    corpus.write_text("".join(f"{word}\n" for word in "the cat sat on the mat and the dog".split() * 20))
    with pytest.raises(ConfigError, match="no document keeps two words .*put one document on each line") as err:
        train(make_cfg([f"data.path={corpus}"], output_dir=tmp_path / "run"))
    assert "\n" not in str(err.value) and not (tmp_path / "run").exists()


def test_a_folder_or_a_file_in_the_way_of_a_write_is_named(tmp_path):
    from w2v.fileio import atomic_write

    (tmp_path / "plots").mkdir()
    with pytest.raises(ConfigError, match="plots is a folder; name a file"):
        with atomic_write(tmp_path / "plots"):
            pass
    (tmp_path / "report").write_text("mine")
    with pytest.raises(ConfigError, match="a file stands where a folder of its path should be"):
        with atomic_write(tmp_path / "report" / "report.md"):
            pass
    assert (tmp_path / "report").read_text() == "mine"


def test_report_refuses_an_unknown_parameter_before_writing(tmp_path):
    from w2v.commands import main

    for run, window in (("0", 2), ("1", 4)):  # a sweep's runs, as Hydra and w2v train leave them
        (tmp_path / run / ".hydra").mkdir(parents=True)
        (tmp_path / run / ".hydra" / "overrides.yaml").write_text(f"- model.window={window}\n")
        (tmp_path / run / "metrics.json").write_text('{"train/loss_epoch": 1.5}')
    for option in ("--by", "--param"):
        with pytest.raises(ConfigError, match=f"{option} model.windw is not a parameter of these runs; choose one "
                                              "of model.window"):
            main(["report", str(tmp_path), option, "model.windw"])
        assert not (tmp_path / "report.md").exists()


def test_too_few_words_for_a_tsne_map_are_named():
    from w2v.plots import tsne_figure
    from w2v.vectors import WordVectors

    vectors = WordVectors(["cat", "dog", "red"], torch.randn(3, 4).numpy())
    with pytest.raises(ConfigError, match=r"a t-SNE map needs 3 words or more, .*\['cat'\] .* give 2"):
        tsne_figure(vectors, ["cat"], k=1)


@pytest.mark.parametrize("args", [["query", "RUN", "most-similar", "cat", "-k", "0"],
                                  ["eval", "RUN", "--restrict_vocab", "-5"], ["tsne", "RUN", "-k", "two"]])
def test_counts_of_the_tools_must_be_positive(args, capsys):
    from w2v.commands import main

    with pytest.raises(SystemExit) as stop:
        main(args)
    assert stop.value.code == 2 and "is not a whole number of at least 1" in capsys.readouterr().err
