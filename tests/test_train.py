"""Training runs end to end: every model, every experiment, outputs, reproducibility, planted structure."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from omegaconf import open_dict

from tests.conftest import compose_config, planted_neighbour_share
from w2v.runs import tensorboard_dir
from w2v.training import CONFIG_DIR, train
from w2v.vectors import WordVectors

MODELS = ["cbow", "skipgram", "sgns"]
# Every architecture with every output layer (model=sgns is skipgram with negative sampling).
COMBINATIONS = [(arch, output) for arch in ("cbow", "skipgram") for output in ("softmax", "negative", "hierarchical")]
EXPERIMENTS = sorted(p.stem for p in (Path(CONFIG_DIR) / "experiment").glob("*.yaml") if p.stem != "notebook_common")


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("trainer", ["cpu", "gpu", "ddp"])
def test_every_model_and_trainer_composes(model, trainer):
    cfg = compose_config([f"model={model}", f"trainer={trainer}"])
    assert cfg.model._target_.lower().endswith({"cbow": "cbow", "skipgram": "skipgram", "sgns": "skipgram"}[model])
    assert cfg.trainer.accelerator == {"ddp": "cpu"}.get(trainer, trainer)


@pytest.mark.parametrize("arch, output", COMBINATIONS)
def test_every_output_layer_brings_its_settings(arch, output):
    cfg = compose_config([f"model={arch}", f"model/output={output}"])
    assert cfg.model.output == output
    word2vec = output != "softmax"  # negative sampling and hierarchical softmax train as word2vec: plain SGD, subsampling
    assert cfg.model.optimizer._target_ == ("torch.optim.SGD" if word2vec else "w2v.optim.DeferredAdam")
    assert bool(cfg.model.subsample) == word2vec and ("negatives" in cfg.model) == (output == "negative")
    # a command line's optimizer still wins over the output layer's
    chosen = compose_config([f"model={arch}", f"model/output={output}", "model/optimizer=lazy_adam"]).model.optimizer
    assert chosen._target_ == "w2v.optim.LazyAdam"


def test_sgns_is_skipgram_with_negative_sampling():
    assert compose_config(["model=sgns"]).model == compose_config(["model=skipgram", "model/output=negative"]).model


@pytest.mark.parametrize("override, match", [
    ("model.output=nope", r"model.output='nope' is unknown; pick the output layer with "
                          r"model/output=softmax\|negative\|hierarchical"),
    ("model.output=hierarchical", r"model.\w+ is not a setting of SkipGram\[hierarchical\]; remove it "
                                  r"\(pick an output layer with model/output=NAME"),
])
def test_an_output_layer_set_as_a_value_is_a_clear_error(make_cfg, override, match):
    from w2v.errors import ConfigError

    with pytest.raises(ConfigError, match=match):
        train(make_cfg([override]))


# SGNS's run compiles the chunk step, which most of the suite's runs call: the warm-up's first test.
@pytest.mark.parametrize("model, optimizer", [
    pytest.param(m, None, marks=[pytest.mark.warms_kernels(order=0)] if m == "sgns" else []) for m in MODELS
] + [("sgns", "lazy_adam"), ("skipgram", "lazy_adam")])
def test_fast_dev_run(make_cfg, model, optimizer):
    overrides = [f"model/optimizer={optimizer}"] if optimizer else []
    result = train(make_cfg([f"model={model}", "trainer.fast_dev_run=true", *overrides]))
    assert np.isfinite(result["metrics"]["train/loss_epoch"])


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_runs(make_cfg, experiment):
    cfg = make_cfg([f"experiment={experiment}", "trainer.fast_dev_run=true"])
    with open_dict(cfg):  # the planted corpus is small: keep every document
        cfg.data.max_docs = None
        if cfg.model.get("subsample"):  # at 1e-5 each of its 36 words is so frequent that almost none is kept
            cfg.model.subsample = 1e-2
    result = train(cfg)
    assert np.isfinite(result["metrics"]["train/loss_epoch"])


def test_a_run_leaves_everything_behind(make_cfg, tmp_path):
    from gensim.models import KeyedVectors
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    result = train(make_cfg(["trainer.max_epochs=2"]))
    out = result["output_dir"]
    for name in ("config.yaml", "vocab.tsv", "vectors.txt", "last.ckpt"):
        assert (out / name).is_file(), name
    vocab_lines = (out / "vocab.tsv").read_text().splitlines()
    assert vocab_lines[0].split("\t")[1].isdigit()
    kv = KeyedVectors.load_word2vec_format(out / "vectors.txt")
    assert kv.vector_size == 100 and "cat" in kv.key_to_index
    ours = WordVectors.load_word2vec_format(out / "vectors.txt")
    assert np.allclose(kv["cat"], ours["cat"], atol=1e-5)

    events = EventAccumulator(str(tensorboard_dir(out)), size_guidance={"tensors": 0}).Reload()
    scalars = set(events.Tags()["scalars"])
    assert {"train/loss_step", "train/loss_epoch", "train/words_per_sec", "lr-SGD"} <= scalars, scalars
    # Step values are written every log_every_n_steps steps of the run, in the second epoch too.
    steps_per_epoch = result["trainer"].num_training_batches
    for tag in ("train/loss_step", "train/words_per_sec"):
        steps = [e.step for e in events.Scalars(tag)]
        assert steps and max(steps) >= steps_per_epoch, (tag, steps, steps_per_epoch)
    epoch_losses = [e.value for e in events.Scalars("train/loss_epoch") if np.isfinite(e.value)]  # NaN: hparams placeholder
    assert len(epoch_losses) == 2 and epoch_losses[1] < epoch_losses[0]
    texts = events.Tags()["tensors"]
    assert any("neighbours" in t for t in texts), texts
    assert (tensorboard_dir(out) / "projector_config.pbtxt").is_file()
    assert any((out / "tensorboard").glob("**/metadata.tsv"))


def test_same_seed_same_vectors(make_cfg, tmp_path):
    runs = [train(make_cfg(["seed=3"], output_dir=tmp_path / name))["output_dir"] for name in ("a", "b")]
    other = train(make_cfg(["seed=4"], output_dir=tmp_path / "c"))["output_dir"]
    assert (runs[0] / "vectors.txt").read_bytes() == (runs[1] / "vectors.txt").read_bytes()
    assert (runs[0] / "vectors.txt").read_bytes() != (other / "vectors.txt").read_bytes()


def test_resume_from_checkpoint_finishes_remaining_epochs(make_cfg, tmp_path):
    stop = ["+callbacks.stop._target_=tests.conftest.StopAfterEpoch", "+callbacks.stop.epoch=0"]
    first = train(make_cfg(["trainer.max_epochs=2"] + stop, output_dir=tmp_path / "first"))
    assert first["trainer"].current_epoch == 1
    resumed = train(make_cfg(["trainer.max_epochs=2", f"ckpt_path={first['output_dir'] / 'last.ckpt'}"],
                             output_dir=tmp_path / "resumed"))
    straight = train(make_cfg(["trainer.max_epochs=2"], output_dir=tmp_path / "straight"))
    assert resumed["trainer"].current_epoch == 2
    assert (resumed["output_dir"] / "vectors.txt").read_bytes() == (straight["output_dir"] / "vectors.txt").read_bytes()


@pytest.mark.parametrize("arch, output, extra", [(arch, output, ()) for arch, output in COMBINATIONS] + [
    ("skipgram", "negative", ("model.update_rule=damped",)),
    ("cbow", "negative", ("model.update_rule=hogwild",)),
    ("cbow", "negative", ("data.shuffle_unit=document",)),  # the sequential rule on the loader's windows
    ("cbow", "softmax", ("model.sampling=device",)),  # windows drawn as on a GPU, on the CPU
    ("skipgram", "softmax", ("model.sampling=device",)),
])
def test_planted_classes_are_nearest_neighbours(make_cfg, arch, output, extra):
    cfg = make_cfg([f"model={arch}", f"model/output={output}", "callbacks.neighbours.probe_words=[cat,red]",
                    "trainer.max_epochs=5", *extra])
    result = train(cfg)
    share = planted_neighbour_share(result["model"].word_vectors())
    assert share >= 0.9, f"{arch}, {output}, {extra}: only {share:.0%} of the top-5 neighbours share the planted class"
    assert result["model"].hparams.output == output
    if output == "hierarchical":  # the tree goes with the run: every word's path, root first
        tree = (result["output_dir"] / "tree.tsv").read_text().splitlines()
        assert len(tree) == len(result["model"].word_vectors().words)
        assert all(line.split("\t")[2].split()[0] == str(len(tree) - 2) for line in tree)


@pytest.mark.parametrize("arch, output", [("skipgram", "negative"), ("cbow", "negative"), ("skipgram", "hierarchical"),
                                          ("cbow", "hierarchical")])
def test_the_sgd_step_gives_the_same_vectors_with_each_kernel(make_cfg, tmp_path, arch, output):
    """The damped update trains alike by the fused CPU kernels, PyTorch's operations and their compiled form."""
    vectors = {}
    for name, kernels, compile in (("fused", "auto", False), ("torch", "torch", False), ("compiled", "torch", True)):
        if compile and (arch, output) != ("skipgram", "negative"):  # compiling takes long: once is enough
            continue
        cfg = make_cfg(["trainer.max_epochs=1", f"model={arch}", f"model/output={output}"], output_dir=tmp_path / name)
        cfg.model.kernels, cfg.model.compile, cfg.model.update_rule = kernels, compile, "damped"  # the rule all three run
        vectors[name] = train(cfg)["model"].word_vectors()
    for name in set(vectors) - {"fused"}:
        assert vectors[name].words == vectors["fused"].words
        assert np.allclose(vectors[name].vectors, vectors["fused"].vectors, atol=1e-4), name


def test_an_optimized_metric_the_run_does_not_log_is_a_clear_error(make_cfg):
    from w2v.errors import ConfigError

    with pytest.raises(ConfigError, match=r"optimized_metric=eval/simlex is not a metric of this run; use one of "
                                          r"train/loss_epoch, eval/wordsim353_spearman"):
        train(make_cfg(["optimized_metric=eval/simlex"]))


@pytest.mark.slow
def test_a_sweep_returns_each_runs_optimized_metric(tmp_path, planted_corpus):
    import os

    from scripts import forked_runs

    done = forked_runs.run(
        ["train", "-m", "seed=1,2", "optimized_metric=eval/simlex999_spearman", "data=text",
         f"data.path={planted_corpus}", "data.tokenizer.n_process=1", "data.vocab.min_count=1", "model.compile=false",
         "trainer.max_epochs=1", "callbacks.tsne=null", "callbacks.projector=null", f"hydra.sweep.dir={tmp_path / 'sweep'}"],
        tmp_path, {**os.environ, "W2V_CACHE_DIR": str(tmp_path / "cache")})
    assert done.returncode == 0, done.stderr[-3000:]
    for run in ("0", "1"):
        metrics = json.loads((tmp_path / "sweep" / run / "metrics.json").read_text())
        log = (tmp_path / "sweep" / run / "train.log").read_text()
        assert f"optimized_metric eval/simlex999_spearman = {metrics['eval/simlex999_spearman']:.6g}" in log


@pytest.mark.parametrize("model, overrides", [
    ("sgns", ["model.optimizer._target_=torch.optim.AdamW", "model.scheduler=null"]),  # any torch optimizer, autograd
    ("cbow", ["model/optimizer=sgd", "model/scheduler=constant"]),
    # SGD with weight decay cannot take sparse gradients; a scheduler without total_steps still works
    ("skipgram", ["model/optimizer=sgd", "+model.optimizer.weight_decay=1e-4",
                  "model.scheduler._target_=torch.optim.lr_scheduler.StepLR", "~model.scheduler.min_lr_ratio",
                  "+model.scheduler.step_size=10"]),
])
def test_optimizer_and_scheduler_come_from_their_configs(make_cfg, model, overrides):
    result = train(make_cfg([f"model={model}", "trainer.fast_dev_run=true", *overrides]))
    trained = result["model"]
    optimizer = trained.optimizers().optimizer
    assert type(optimizer).__name__ == trained.hparams.optimizer["_target_"].rsplit(".", 1)[1]
    assert (trained.lr_schedulers() is None) == (trained.hparams.scheduler is None)
    assert trained.in_embed.sparse == (model == "cbow")  # plain SGD takes sparse rows, SGD with decay cannot
    assert np.isfinite(result["metrics"]["train/loss_epoch"])


@pytest.mark.parametrize("overrides", [["model=cbow", "model/output=negative"], ["model/optimizer=adam"],
                                       ["model=skipgram", "model/output=hierarchical"]])
def test_the_triton_kernel_outside_its_scope_is_refused_before_any_work(make_cfg, overrides):
    from w2v.errors import ConfigError

    with pytest.raises(ConfigError, match=r"model.kernels=triton trains Skip-gram with negative sampling by plain SGD"):
        train(make_cfg([*overrides, "model.kernels=triton", "data.path=/nonexistent/corpus.txt"]))


def test_runs_saved_before_the_output_layer_was_a_choice_still_resume():
    from w2v.training import _as_composed_now

    old_sgns = {"model._target_": "w2v.models.SGNS", "model.window": 5}
    assert _as_composed_now(old_sgns) == {"model._target_": "w2v.models.SkipGram", "model.window": 5,
                                          "model.output": "negative", "model.update_rule": "damped",
                                          "model.update_shards": None}
    assert _as_composed_now({"model._target_": "w2v.models.CBOW"})["model.output"] == "softmax"
    now = {"model._target_": "w2v.models.CBOW", "model.output": "hierarchical", "model.update_rule": "auto",
           "model.update_shards": 2, "model.cbow_mean": True}
    assert _as_composed_now(now) == now
    # Runs saved before model.cbow_mean and model.out_init averaged and took nn.Linear's initialisation.
    assert {key: value for key, value in _as_composed_now({"model._target_": "w2v.models.CBOW"}).items()
            if key in ("model.cbow_mean", "model.out_init")} == {"model.cbow_mean": True, "model.out_init": "linear"}
    skipgram = {"model._target_": "w2v.models.SkipGram", "model.output": "softmax", "model.out_init": "uniform",
                "model.sampling": "auto", "model.kernels": "auto"}
    assert _as_composed_now(skipgram) == skipgram
    # Runs saved before model.sampling took the data loader's windows; before the full softmax's
    # model.kernels, PyTorch's step.
    for key, then in (("model.sampling", "loader"), ("model.kernels", "torch")):
        assert _as_composed_now({k: v for k, v in skipgram.items() if k != key}) == {**skipgram, key: then}
    # Runs saved before the sequential rule trained by the damped one: resuming them must say so.
    before_rules = {"model._target_": "w2v.models.CBOW", "model.output": "hierarchical", "model.cbow_mean": True}
    assert _as_composed_now(before_rules, now) == {**before_rules, "model.update_rule": "damped",
                                                   "model.update_shards": 2}
    assert _as_composed_now(old_sgns, now)["model.update_rule"] == "damped"
    # Runs saved before data.shuffle_unit shuffled positions, which auto still does but for plain
    # SGD's step (and which only w2v's batching shuffles).
    sgd = {"model.output": "negative", "model.optimizer._target_": "torch.optim.SGD", "model.optimizer.lr": 0.025}
    adam = {**sgd, "model.optimizer._target_": "w2v.optim.DeferredAdam"}
    data_now = {"data.batching": "centers", "data.shuffle_unit": "auto"}
    assert _as_composed_now({**sgd, "data.batching": "centers"}, data_now)["data.shuffle_unit"] == "position"
    assert _as_composed_now({**adam, "data.batching": "centers"}, data_now)["data.shuffle_unit"] == "auto"
    # and took batches of 4,096, which auto still gives Adam's models
    assert _as_composed_now({**adam, "data.batch_size": 4096}, data_now)["data.batch_size"] == "auto"
    assert _as_composed_now({**sgd, "data.batch_size": 4096}, data_now)["data.batch_size"] == 4096
    assert _as_composed_now({**sgd, "data.batching": "examples"}, data_now)["data.shuffle_unit"] == "auto"
    assert _as_composed_now(data_now, data_now) == data_now
