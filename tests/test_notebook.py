"""The notebook experiments train as the notebooks' own loop does (scripts/notebook_loop.py): the same
examples, as many optimizer steps an epoch, as many examples a step; SGNS's noise drawn per pair."""

from __future__ import annotations

import dataclasses

import lightning as L
import numpy as np
import pytest
import torch
from omegaconf import open_dict

from scripts import notebook_loop
from tests.conftest import compose_config
from w2v.api import build_model
from w2v.data.examples import draw_examples
from w2v.data.sampling import SamplerSettings
from w2v.data.vocab import Vocabulary
from w2v.training import build, instantiate_model

EXPERIMENTS = {"notebook": "sgns", "notebook_cbow": "cbow", "notebook_skipgram": "skipgram"}


class StepRecorder(L.Callback):
    """Each training step's examples: CBOW's windows, the others' (center, context) pairs."""

    def __init__(self):
        self.sizes: list[int] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.sizes.append(int(batch["mask"].sum()) if batch["mask"].shape[1] == 1 else len(batch["centers"]))


def _notebook_cfg(make_cfg, experiment):
    cfg = make_cfg([f"experiment={experiment}", "trainer.max_epochs=1"])
    with open_dict(cfg):
        cfg.data.batch_size = compose_config([f"experiment={experiment}"]).data.batch_size  # not make_cfg's
        cfg.data.max_docs = None  # the planted corpus is small: every document
        if cfg.model.get("subsample"):  # its 36 words are all frequent: a higher threshold thins them
            cfg.model.subsample = 1e-2
    return cfg


@pytest.mark.parametrize("experiment", sorted(EXPERIMENTS))
def test_notebook_experiment_steps_as_the_notebook_loop(make_cfg, experiment):
    arch, cfg = EXPERIMENTS[experiment], _notebook_cfg(make_cfg, experiment)
    datamodule = build(cfg.data)
    datamodule.prepare_data()
    datamodule.setup("fit")
    model = instantiate_model(cfg.model, datamodule.vocab)
    recorder = StepRecorder()
    trainer = L.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, callbacks=[recorder])
    trainer.fit(model, datamodule=datamodule)

    ids, _ = datamodule.corpus.all_ids()
    counts = datamodule.vocab.counts
    settings = notebook_loop.SETTINGS[arch]
    if arch == "sgns":  # the threshold raised above, for the loop too
        settings = dataclasses.replace(settings, subsample=cfg.model.subsample)
    inputs, _ = notebook_loop.examples(ids, counts, arch, cfg.seed, settings)
    steps = []
    notebook_loop.train(ids, counts, arch, epochs=1, seed=cfg.seed, settings=settings,
                        on_epoch=lambda epoch, result, model: steps.append(result))
    assert (cfg.data.batch_size, cfg.model.window, cfg.model.shrink_window, cfg.model.get("max_norm"),
            cfg.model.get("negatives", 0), cfg.model.subsample_rule) == (
        settings.batch_size, settings.window, settings.shrink, settings.max_norm, settings.negatives,
        settings.subsample_rule)
    if arch != "sgns":  # the full softmax's: the output weight's start, and CBOW's sum
        assert cfg.model.out_init == settings.out_init
        assert cfg.model.get("cbow_mean", settings.cbow_mean) == settings.cbow_mean
    n = len(inputs)
    assert n > 3 * cfg.data.batch_size  # several steps, the last one short
    expected = [cfg.data.batch_size] * (n // cfg.data.batch_size) + ([n % cfg.data.batch_size] if n % cfg.data.batch_size else [])
    assert recorder.sizes == expected
    assert steps[0].steps == len(expected) and steps[0].batch_sizes == set(expected)


@pytest.mark.parametrize("pairs, rule", [(True, "notebook"), (True, "word2vec"), (False, "word2vec")])
def test_examples_are_those_of_the_notebook_loop(pairs, rule):
    rng = np.random.default_rng(3)
    ids = rng.integers(1, 20, 500)
    counts = np.bincount(ids, minlength=20)  # word 0 never occurs, as <PAD>
    arch = "sgns" if pairs else "cbow"
    window, shrink, subsample = (3, True, 0.005) if pairs else (4, False, None)
    settings = dataclasses.replace(notebook_loop.SETTINGS[arch], window=window, shrink=shrink, subsample=subsample,
                                   subsample_rule=rule)
    inputs, targets = notebook_loop.examples(ids, counts, arch, seed=5, settings=settings)
    examples = draw_examples(ids, counts, SamplerSettings(window=window, shrink_window=shrink, subsample=subsample,
                                                          subsample_rule=rule), pairs, np.random.default_rng([5, 2]))
    batch = examples.take(np.arange(len(examples)))
    if pairs:  # the loop's pairs are (center, context); w2v's centers and their one context word
        ours = sorted(zip(batch["centers"].tolist(), batch["contexts"][:, 0].tolist()))
        assert ours == sorted(zip(inputs, targets)) and len(examples.stream) < len(ids)  # subsampling took part
    else:
        assert batch["mask"].all()
        assert sorted(zip(batch["centers"].tolist(), batch["contexts"].tolist())) == sorted(zip(targets, inputs))


@pytest.mark.parametrize("experiment", ["notebook_cbow", "notebook_skipgram"])
def test_full_softmax_experiments_start_and_score_as_the_notebook_loop(experiment):
    """Both weight matrices start uniform in ±0.5/D, as the loop's; from the same weights, a batch's
    loss is the loop's (CBOW: its window's context vectors summed, renormalised to norm 1 first)."""
    arch, V = EXPERIMENTS[experiment], 300
    vocab = Vocabulary([f"w{i}" for i in range(V)], [5] * V)
    ours = build_model(vocab, f"experiment={experiment}")
    loop = notebook_loop.NotebookModel(arch, V, notebook_loop.SETTINGS[arch])
    D = loop.embed.embedding_dim
    assert ours.hparams.embedding_dim == D
    for model in (ours, loop):
        for weight in (model.in_embed.weight if model is ours else model.embed.weight, model.out.weight):
            values = weight.detach()
            assert values.abs().max() <= 0.5 / D and abs(values.std() / (0.5 / D / 3 ** 0.5) - 1) < 0.05
    with torch.no_grad():  # the same weights, of norms around 1 and 3 (max_norm renormalises the larger)
        loop.embed.weight.normal_(0, 1.0 / D ** 0.5).mul_(torch.rand(V, 1) * 2 + 0.5)
        loop.out.weight.normal_(0, 0.3)
        loop.out.bias.normal_(0, 0.3)
        ours.in_embed.weight.copy_(loop.embed.weight)
        ours.out.weight.copy_(loop.out.weight)
        ours.out.bias.copy_(loop.out.bias)
    generator = torch.Generator().manual_seed(0)
    if arch == "cbow":
        contexts, centers = torch.randint(0, V, (16, 8), generator=generator), torch.randint(0, V, (16,), generator=generator)
        batch, inputs, targets = ({"contexts": contexts, "mask": torch.ones_like(contexts, dtype=torch.bool),
                                   "centers": centers}, contexts, centers)
    else:
        centers, contexts = torch.randint(0, V, (16,), generator=generator), torch.randint(0, V, (16, 1), generator=generator)
        batch, inputs, targets = ({"centers": centers, "contexts": contexts,
                                   "mask": torch.ones_like(contexts, dtype=torch.bool)}, centers, contexts[:, 0])
    expected = loop.loss(inputs, targets, None)
    assert torch.allclose(ours.example_losses(batch).mean(), expected, rtol=1e-5)
    assert torch.allclose(ours.in_embed.weight, loop.embed.weight)  # the same rows renormalised


def test_sgns_draws_its_noise_words_independently_for_every_pair(make_cfg):
    cfg = _notebook_cfg(make_cfg, "notebook")
    datamodule = build(cfg.data)
    datamodule.setup("fit")
    model = instantiate_model(cfg.model, datamodule.vocab)
    trainer = L.Trainer(max_epochs=1, logger=False)
    trainer.strategy.connect(model)
    model.trainer, datamodule.trainer = trainer, trainer
    batches = list(datamodule.train_dataloader())
    noise = np.concatenate([b["noise"].numpy() for b in batches])  # (pairs, K)
    centers = np.concatenate([b["centers"].numpy() for b in batches])
    assert noise.shape == (len(centers), 10) and all(b["contexts"].shape[1] == 1 for b in batches)
    counts = datamodule.vocab.counts
    expected = counts ** 0.75 / (counts ** 0.75).sum()
    observed = np.bincount(noise.ravel(), minlength=len(counts)) / noise.size
    assert np.abs(observed - expected).max() < 0.01  # each draw from count^0.75 (<PAD>, never seen, never drawn)
    # Independent draws: two slots of a pair, and two pairs of the same center, agree as often as chance says.
    chance = (expected ** 2).sum()
    assert abs((noise[:, 0] == noise[:, 1]).mean() - chance) < 0.01
    same_center = np.flatnonzero(centers[1:] == centers[:-1])
    assert len(same_center) > 100
    assert (noise[same_center] == noise[same_center + 1]).all(1).mean() < 0.01  # not shared within a window
    again = list(datamodule.train_dataloader())  # seeded: the same draws again
    assert all(np.array_equal(a["noise"], b["noise"]) for a, b in zip(batches, again))


def test_example_batches_split_over_ranks_and_resume_as_one_process_draws_them():
    from w2v.data.datamodule import ExampleBatches
    from w2v.data.sampling import NoiseTable

    ids = np.random.default_rng(0).integers(0, 15, 400)
    counts = np.bincount(ids, minlength=15)
    examples = draw_examples(ids, counts, SamplerSettings(window=2), True, np.random.default_rng(1))

    def batches(rank=0, world=1, resume=None):
        stream = ExampleBatches(examples, len(ids), 32, True, 7, lambda: (3, 0), NoiseTable(counts), 4, rank, world)
        if resume is not None:
            stream.load_state_dict({"epoch": 3, "batches_done": resume})
        return [(b["centers"].tolist(), b["contexts"].tolist(), b["noise"].tolist(), b["n_tokens"]) for b in stream]

    whole = batches()
    assert len(whole) == -(-len(examples) // 32) and sum(b[3] for b in whole) == len(ids)
    assert sorted(c for b in whole for c in b[0]) == sorted(examples.take(np.arange(len(examples)))["centers"].tolist())
    rank0, rank1 = batches(0, 2), batches(1, 2)
    assert rank0 == whole[0::2] and rank1 == (whole[1::2] + whole[:1])[:len(rank0)]  # the last rank wraps around
    assert batches(resume=5) == whole[5:]
