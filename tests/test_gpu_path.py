"""SGNS's GPU path without a GPU: the counter-based draws, the device-side block, the chunk stream, and
the Triton kernel in Triton's interpreter (TRITON_INTERPRET=1, set by conftest) against the CPU kernels.
Where CUDA is present the same tests run the compiled kernel on it; the interpreter's cases, which need
CPU tensors, are skipped there."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from tests.conftest import compose_config, planted_neighbour_share, write_planted_corpus
from w2v.api import build_model
from w2v.data.datamodule import ChunkBatches
from w2v.data.sampling import NoiseTable, keep_probabilities, noise_distribution
from w2v.data.vocab import Vocabulary
from w2v.errors import ConfigError
from w2v.models.binary_output import RowUpdate
from w2v.kernels import counter_rng, cpu as cpu_kernels
from w2v.kernels.device_sampling import StreamKeys, chunk_examples, noise_words, prepare_block, window_radius
from w2v.training import train

CUDA = torch.cuda.is_available()
INTERPRETED = os.environ.get("TRITON_INTERPRET") == "1"  # the kernel takes CPU tensors
DEVICES = [pytest.param("cpu", marks=pytest.mark.skipif(not INTERPRETED, reason="needs TRITON_INTERPRET=1")),
           pytest.param("cuda", marks=pytest.mark.skipif(not CUDA, reason="needs CUDA"))]
MAIN_DEVICE = "cuda" if CUDA else "cpu"  # where the kernel runs in this session
TRAINER = ["trainer=gpu"] if CUDA else []


def _keys(seed=7, epoch=1, block=0) -> StreamKeys:
    return StreamKeys.for_block(seed, epoch, block)


def _kernel():
    from w2v.kernels.sgns_triton import sgns_chunks

    return sgns_chunks


def test_counter_draws_are_uniform_and_keyed_by_every_part():
    counter = torch.arange(200_000)
    u = counter_rng.uniform(counter_rng.stream_key(1, 0, 0, "window"), counter)
    assert u.dtype == torch.float32 and 0 <= u.min() and u.max() < 1
    assert abs(u.mean().item() - 0.5) < 0.005 and abs(u.var().item() - 1 / 12) < 0.002
    counts = torch.bincount((u * 10).long(), minlength=10).float()
    assert ((counts - 20_000).abs() < 700).all()  # each tenth within 5 standard deviations
    keys = {counter_rng.stream_key(s, e, b, p) for s in (0, 1) for e in (0, 1) for b in (0, 1) for p in counter_rng.PURPOSES}
    assert len(keys) == 32
    assert torch.equal(counter_rng.draw(123, counter[:50]), counter_rng.draw(123, counter[:50]))


def test_a_block_is_subsampled_compacted_and_cut_into_chunks():
    rng = np.random.default_rng(0)
    counts = rng.integers(1, 1000, 50)
    ids = torch.from_numpy(rng.choice(50, 20_000, p=counts / counts.sum())).int()
    offsets = torch.tensor([0, 7000, 7001, 20_000])
    keep_prob = torch.from_numpy(keep_probabilities(counts, 1e-2)).float()
    block = prepare_block(ids, offsets, keep_prob, 1000, _keys())
    kept = int(block.bounds[-1])
    keep = counter_rng.uniform(_keys().subsample, torch.arange(20_000)) < keep_prob[ids.long()]
    assert torch.equal(block.seq[:kept], ids[keep])  # the kept tokens, in corpus order
    doc_of = torch.repeat_interleave(torch.arange(3), offsets.diff())
    assert torch.equal(block.docs[:kept], doc_of[keep].int()) and (block.docs[kept:] == -1).all()
    starts = torch.arange(0, 20_001, 1000)
    assert torch.equal(block.bounds, torch.tensor([int(keep[:s].sum()) for s in starts]))
    assert sorted(block.order.tolist()) == list(range(20)) and block.order.tolist() != list(range(20))
    assert prepare_block(ids, offsets, keep_prob, 1000, _keys(), shuffle=False).order.tolist() == list(range(20))
    # each word kept at its rate (about 400 draws a word: within 5 standard deviations)
    for word in range(50):
        drawn = keep[ids == word]
        p = float(keep_prob[word])
        assert abs(drawn.float().mean().item() - p) <= 5 * (p * (1 - p) / len(drawn)) ** 0.5 + 1e-6
    assert not torch.equal(prepare_block(ids, offsets, keep_prob, 1000, _keys(epoch=2)).seq, block.seq)


def test_device_draws_follow_the_window_and_noise_distributions():
    position = torch.arange(100_000)
    radius = window_radius(5, position, 4, shrink=True)
    assert torch.equal(torch.bincount(radius)[1:] > 24_000, torch.ones(4, dtype=torch.bool))
    assert (window_radius(5, position, 4, shrink=False) == 4).all()
    counts = np.array([0, 0, 1, 5, 50, 500, 5000])
    table = NoiseTable(counts)
    noise = noise_words(9, position[:40_000], 5, torch.from_numpy(table.threshold).float(),
                        torch.from_numpy(table.alias).int())  # (40000, 5)
    share = torch.bincount(noise.reshape(-1), minlength=7).double() / noise.numel()
    expected = torch.from_numpy(noise_distribution(counts))
    assert share[:2].sum() == 0  # the specials are never drawn
    assert ((share - expected).abs() <= 5 * (expected * (1 - expected) / noise.numel()).sqrt() + 1e-9).all()


def _chunk_setup(device, subsample=0.05):
    V, D = 30, 12
    rng = np.random.default_rng(1)
    counts = rng.integers(1, 100, V)
    counts[:2] = 0
    ids = torch.from_numpy(rng.choice(np.arange(2, V), 300)).int()
    ids[100:110] = 5  # a run of one word: repeated rows within a window
    offsets = torch.tensor([0, 50, 51, 120, 300])
    keep_prob = torch.from_numpy(keep_probabilities(counts, subsample)).float()
    block = prepare_block(ids.to(device), offsets.to(device), keep_prob.to(device), 64, _keys())
    table = NoiseTable(counts)
    threshold = torch.from_numpy(table.threshold).float().to(device)
    alias = torch.from_numpy(table.alias).int().to(device)
    generator = torch.Generator().manual_seed(0)
    w_in = (torch.rand(V, D, generator=generator) - 0.5).to(device)
    w_out = (torch.rand(V, D, generator=generator) - 0.5).to(device)
    return block, threshold, alias, w_in, w_out


def _cpu_reference(block, chunk, window, shrink, negatives, threshold, alias, w_in, w_out, lr, damped=True):
    """The CPU kernels' update, one window at a time in the chunk's order (undamped: curvature 0);
    returns the summed loss and pairs."""
    ex = {k: v.cpu() for k, v in chunk_examples(block, chunk, window, shrink, negatives, _keys(), threshold, alias).items()}
    loss, pairs = 0.0, 0
    for b in range(len(ex["centers"])):
        contexts = torch.where(ex["mask"][b : b + 1], ex["contexts"][b : b + 1], -1)  # (1, 2W)
        targets = torch.cat([ex["centers"][b : b + 1, None], ex["noise"][b : b + 1]], 1)  # (1, 1+K)
        labels = torch.zeros(targets.shape, dtype=torch.float32)
        labels[:, 0] = 1.0  # the center, then noise
        rows, grad_ctx, curv_ctx, grad_tgt, curv_tgt, losses = cpu_kernels.skipgram_decision_gradients(
            w_in.numpy(), w_out.numpy(), contexts.numpy(), targets.numpy(), labels.numpy())
        if not damped:
            curv_ctx, curv_tgt = np.zeros_like(curv_ctx), np.zeros_like(curv_tgt)
        RowUpdate(*map(torch.from_numpy, (rows, grad_ctx, curv_ctx))).apply(w_in, lr, threads=1)
        RowUpdate(targets.reshape(-1), *map(torch.from_numpy, (grad_tgt.reshape(len(targets[0]), -1),
                                                               curv_tgt.reshape(-1)))).apply(w_out, lr, threads=1)
        loss, pairs = loss + float(losses.sum()), pairs + len(rows)
    return loss, pairs


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("window, shrink, negatives, damped", [(3, True, 4, True), (2, False, 1, True),
                                                               (3, True, 4, False)])
def test_one_chunk_alone_equals_the_cpu_kernels_update(device, window, shrink, negatives, damped):
    block, threshold, alias, w_in, w_out = _chunk_setup(device)
    ref_in, ref_out = w_in.cpu().clone(), w_out.cpu().clone()
    totals = torch.zeros(2, dtype=torch.float64, device=device)
    lr = 0.5 if damped else 0.05  # plain SGD diverges at 0.5 on rows repeated in a window
    for first in range(block.n_chunks):  # each chunk launched alone, in the block's order
        _kernel()(w_in, w_out, block.seq, block.docs, block.bounds, block.order, threshold, alias,
                  _keys().tensor(device), totals, first, 1, lr, lr, window, shrink, negatives,
                  rule="damped" if damped else "plain")
        loss, pairs = _cpu_reference(block, int(block.order[first]), window, shrink, negatives, threshold, alias,
                                     ref_in, ref_out, lr, damped)
    assert pairs > 20  # the last chunk's windows, some with repeated rows
    assert torch.allclose(w_in.cpu(), ref_in, atol=1e-5) and torch.allclose(w_out.cpu(), ref_out, atol=1e-5)
    assert not torch.allclose(ref_in, _chunk_setup("cpu")[3])  # the update did something


@pytest.mark.parametrize("device", DEVICES)
def test_a_launch_spreads_the_learning_rate_over_its_chunks(device):
    """Programs train each at its share of the way from lr_begin to lr_end. The interpreter runs them one
    after another, in order of their index: the result equals the CPU kernels' chunk after chunk. On a
    GPU they run at once, each reading rows the others change: the same pairs, and a loss close to it."""
    block, threshold, alias, w_in, w_out = _chunk_setup(device, subsample=None)
    ref_in, ref_out = w_in.cpu().clone(), w_out.cpu().clone()
    totals = torch.zeros(2, dtype=torch.float64, device=device)
    n = block.n_chunks
    _kernel()(w_in, w_out, block.seq, block.docs, block.bounds, block.order, threshold, alias, _keys().tensor(device),
              totals, 0, n, 0.4, 0.0, 2, True, 2)
    loss = pairs = 0
    for p in range(n):
        step_loss, step_pairs = _cpu_reference(block, int(block.order[p]), 2, True, 2, threshold, alias, ref_in, ref_out,
                                               0.4 - 0.4 * p / n)
        loss, pairs = loss + step_loss, pairs + step_pairs
    assert totals[1].item() == pairs
    if device == "cpu":
        assert torch.allclose(w_in, ref_in, atol=1e-5) and torch.allclose(w_out, ref_out, atol=1e-5)
        assert totals[0].item() == pytest.approx(loss, rel=1e-5)
    else:
        assert totals[0].item() == pytest.approx(loss, rel=0.1)


def test_bad_inputs_are_one_line_errors(monkeypatch):
    block, threshold, alias, w_in, w_out = _chunk_setup(MAIN_DEVICE)
    keys, totals = _keys().tensor(MAIN_DEVICE), torch.zeros(2, dtype=torch.float64, device=MAIN_DEVICE)
    args = [w_in, w_out, block.seq, block.docs, block.bounds, block.order, threshold, alias, keys, totals]
    sgns_chunks = _kernel()

    def call(**changes):
        names = ["w_in", "w_out", "seq", "docs", "bounds", "order", "threshold", "alias", "keys", "totals"]
        values = [changes.get(n, a) for n, a in zip(names, args)]
        sgns_chunks(*values, changes.get("first", 0), changes.get("n_programs", 1), 0.1, 0.1, 2, True, 2)

    cases = [({"w_in": w_in.double()}, "w_in must be a 2-D torch.float32 tensor, got torch.float64"),
             ({"seq": block.seq.long()}, "seq must be a 1-D torch.int32 tensor"),
             ({"w_out": w_out[:, :5].contiguous()}, "must have w_in's shape"),
             ({"w_in": w_in.t().contiguous().t()}, "w_in must be contiguous"),
             ({"alias": alias[:-1]}, "one entry per vocabulary word"),
             ({"first": block.n_chunks}, "outside the block's")]
    for changes, message in cases:
        with pytest.raises(ValueError, match=message) as error:
            call(**changes)
        assert "\n" not in str(error.value)
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    if not CUDA:
        with pytest.raises(ValueError, match="runs on CUDA tensors, got cpu; on a CPU use model.kernels=auto"):
            call()


@pytest.mark.parametrize("update_rule, kernel_rule", [("auto", "sequential"), ("damped", "damped")])
def test_the_gpu_path_trains_by_the_models_update_rule(update_rule, kernel_rule):
    """`model.update_rule` picks the kernel's window update: auto (as sequential) takes word2vec's order
    within a window, damped the bounded update of the whole window. A step equals the kernel's
    emulation with that rule (with one program in flight, the kernel itself: tests/test_sgns_lockstep.py),
    not with the other."""
    from w2v.kernels.sgns_lockstep import lockstep_chunks

    corpus = _corpus(120, block_tokens=120)
    batch, _ = ChunkBatches(corpus, chunk_tokens=16, step_tokens=32, shuffle=True, seed=3,
                            progress=lambda: (0, 0)).epoch_batches(0)(0)
    batch = {k: v.to(MAIN_DEVICE) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
    model = build_model(corpus.vocab, "model.kernels=triton", f"model.update_rule={update_rule}", "model.window=2",
                        "model.negatives=2", "model.embedding_dim=8", "model.subsample=null").to(MAIN_DEVICE)
    assert model.on_device() and model.rule_on(model.device) == kernel_rule
    start = [w.detach().cpu().numpy().copy() for w in (model.in_embed.weight, model.out_embed.weight)]
    model.train_chunks(batch, 0.2, 0.1)
    block, keys, threshold, alias = model.device_block(batch)
    arrays = [t.cpu().numpy() for t in (block.seq, block.docs, block.bounds, block.order, threshold, alias)]

    def emulated(rule):
        w_in, w_out = (w.copy() for w in start)
        lockstep_chunks(w_in, w_out, *arrays, keys.window, keys.noise, batch["first_chunk"], batch["chunks"], 0.2, 0.1,
                        2, True, 2, rule, 1)
        return torch.from_numpy(w_in)

    trained = model.in_embed.weight.detach().cpu()
    assert batch["chunks"] == 2 and not torch.equal(trained, torch.from_numpy(start[0]))
    assert torch.allclose(trained, emulated(kernel_rule), atol=1e-5)
    assert not torch.allclose(trained, emulated("damped" if kernel_rule == "sequential" else "sequential"), atol=1e-3)


def test_update_rules_the_kernels_cannot_take_are_named():
    vocab = Vocabulary(words=[f"w{i}" for i in range(20)], counts=np.arange(20, 0, -1))
    with pytest.raises(ConfigError, match="model.update_rule=hogwild runs on the fused CPU kernels, not "
                                          "model.kernels=triton; use model.kernels=auto"):
        build_model(vocab, "model.kernels=triton", "model.update_rule=hogwild")
    model = build_model(vocab, "model.update_rule=sequential")  # a CPU: the Numba kernels' rule
    torch.use_deterministic_algorithms(True)
    try:  # on CUDA, deterministic mode takes PyTorch's step, which sums a window's gradients
        with pytest.raises(ConfigError, match="model.update_rule=sequential runs on the CPU kernels and SGNS's "
                                              "Triton kernel, not on PyTorch's step on cuda; use"):
            model.rule_on(torch.device("cuda"))
    finally:
        torch.use_deterministic_algorithms(False)


def _corpus(n_tokens, block_tokens):
    from tests.test_sampling import _tokens_corpus

    ids = np.arange(n_tokens) % 13
    return _tokens_corpus([f"w{i}" for i in range(13)], ids, [0, n_tokens // 3, n_tokens], block_tokens)


def test_the_chunk_stream_covers_every_block_once_and_resumes():
    corpus = _corpus(2500, block_tokens=1000)  # blocks of 1000, 1000, 500 tokens

    def stream(epoch=0):
        return ChunkBatches(corpus, chunk_tokens=64, step_tokens=256, shuffle=True, seed=3, progress=lambda: (epoch, 0))

    batches = list(stream())
    assert len(batches) == len(stream()) == 4 + 4 + 2  # 16, 16 and 8 chunks, 4 a step
    assert sum(b["n_tokens"] for b in batches) == 2500
    with_ids = [b for b in batches if "ids" in b]
    assert [b["first_chunk"] for b in with_ids] == [0, 0, 0]  # each block's ids come once, with its first step
    assert sorted(b["block"] for b in with_ids) == [0, 1, 2]
    for b in with_ids:
        ids, offsets = corpus.block(b["block"])
        assert b["ids"].dtype == torch.int32 and np.array_equal(b["ids"].numpy(), ids)
    for block in range(3):
        steps = [b for b in batches if b["block"] == block]
        chunks = [c for b in steps for c in range(b["first_chunk"], b["first_chunk"] + b["chunks"])]
        assert chunks == list(range(-(-int(corpus.block_sizes[block]) // 64)))
    resumed = stream()
    resumed.load_state_dict({"epoch": 0, "batches_done": 5})
    rest = list(resumed)
    assert [(b["block"], b["first_chunk"]) for b in rest] == [(b["block"], b["first_chunk"]) for b in batches[5:]]
    assert "ids" in rest[0]  # a resumed stream sends its block first
    with pytest.raises(ConfigError, match="trains on one device"):
        ChunkBatches(corpus, 64, 256, True, 3, lambda: (0, 0), rank=0, world_size=2)


def test_the_gpu_path_trains_the_planted_classes(tmp_path):
    """SGNS with model.kernels=triton, through Lightning: the corpus on the device, the kernel's step.
    By the damped rule, which Triton's interpreter runs several times as fast as the sequential one
    (each rule's kernel is tested against the CPU's above and in tests/test_sgns_lockstep.py)."""
    corpus = write_planted_corpus(tmp_path / "planted.txt", n_docs=40, doc_len=12)
    cfg = compose_config([*TRAINER, "data=text", f"data.path={corpus}", "trainer.enable_progress_bar=false",
                          "data.tokenizer.n_process=1", "data.vocab.min_count=1", "model.kernels=triton",
                          "model.update_rule=damped",
                          "model.subsample=null", "model.window=2", "model.negatives=3", "model.embedding_dim=16",
                          "model.chunk_tokens=128", "model.step_tokens=256", "trainer.max_epochs=2",
                          "model.optimizer.lr=0.6", "callbacks.evaluation.wordsim=null", "callbacks.evaluation.simlex=null",
                          "callbacks.neighbours.probe_words=[cat,red]", f"paths.output_dir={tmp_path / 'run'}",
                          f"paths.cache_dir={tmp_path / 'cache'}", "trainer.log_every_n_steps=1"])
    result = train(cfg)
    assert result["trainer"].global_step == 2 * 2  # 480 positions: 4 chunks, 2 a step
    assert result["metrics"]["train/loss_epoch"] < 2.2  # 4 · ln 2 = 2.77 untrained
    share = planted_neighbour_share(result["model"].word_vectors())
    assert share >= 0.8, f"only {share:.0%} of the top-5 neighbours share the planted class"  # chance: 17%


def test_the_kernel_bench_trains_every_variant_from_the_same_start(tmp_path):
    """scripts/sgns_kernel_bench.py: the kernel alone, as the GPU path's steps; each variant recovers
    the planted classes, and the kernel's emulation with one program in flight gives the kernel's
    losses; four in flight, a launch of every chunk. (The other rules' kernels run in the interpreter
    in the tests above and in tests/test_sgns_lockstep.py: the emulation trains them here.)"""
    from scripts import sgns_kernel_bench

    corpus = write_planted_corpus(tmp_path / "planted.txt", n_docs=40, doc_len=12)
    settings = ["data=text", f"data.path={corpus}", "data.tokenizer.n_process=1", "data.vocab.min_count=1",
                "model.subsample=null", "model.window=2", "model.negatives=3", "model.embedding_dim=16",
                "model.chunk_tokens=128", "model.step_tokens=128", "model.optimizer.lr=0.3",
                f"paths.cache_dir={tmp_path / 'cache'}"]
    variants = ["damped", "damped,lockstep=1", "plain,lockstep=1", "sequential,lockstep=4,step=512"]
    results = sgns_kernel_bench.main(["--epochs", "2", "--no-scores", *(a for v in variants for a in ("--variant", v)),
                                      *settings])
    assert [r["variant"] for r in results] == variants
    for result in results:
        losses = [e["loss"] for e in result["epochs"]]
        assert losses[1] < losses[0] < 4 * np.log(2)  # 4 decisions a pair, each ln 2 untrained
        share = planted_neighbour_share(result["vectors"])
        assert share >= 0.8, f"{result['variant']}: only {share:.0%} of the top-5 neighbours share the planted class"
    damped, emulated, plain, _ = ([e["loss"] for e in r["epochs"]] for r in results)
    if not CUDA:  # the interpreter runs programs one at a time, as the emulation with one in flight
        assert emulated == pytest.approx(damped, rel=1e-5)
    assert plain != emulated
    Variant = sgns_kernel_bench.Variant
    assert Variant.parse("warps=2,chunk=256, step=512") == Variant("sequential", 2, 256, 512, None)
    assert Variant.parse("plain,lockstep=8") == Variant("plain", lockstep=8)
    with pytest.raises(SystemExit, match="variant setting 'warps=0' is unknown"):
        sgns_kernel_bench.main(["--variant", "damped,warps=0", *settings])
    with pytest.raises(SystemExit, match="warps=N sets the kernel's programs, which lockstep=N emulates"):
        sgns_kernel_bench.main(["--variant", "damped,lockstep=4,warps=8", *settings])


@pytest.mark.parametrize("data, message", [("data.batching=examples", "cannot feed a model that draws its own samples"),
                                           ("data.shuffle_unit=document", "data.shuffle_unit=document orders the data loader's")])
def test_the_gpu_path_refuses_the_loaders_data_settings(tmp_path, planted_corpus, data, message):
    cfg = compose_config([*TRAINER, "data=text", f"data.path={planted_corpus}", "trainer.enable_progress_bar=false",
                          "data.tokenizer.n_process=1", "model.kernels=triton", data,
                          f"paths.output_dir={tmp_path / 'run'}", f"paths.cache_dir={tmp_path / 'cache'}"])
    with pytest.raises(ConfigError, match=f"{message}.*model.kernels=torch"):
        train(cfg)


def test_deterministic_mode_rules_out_the_triton_kernel():
    """Its programs add to shared rows atomically, in a varying order: trainer.deterministic=true
    (torch's deterministic algorithms) is refused with model.kernels=triton."""
    vocab = Vocabulary(words=[f"w{i}" for i in range(20)], counts=np.arange(20, 0, -1))
    model = build_model(vocab, "model.kernels=triton")
    assert model.on_device()
    torch.use_deterministic_algorithms(True)
    try:
        with pytest.raises(ConfigError, match="model.kernels=triton adds updates atomically.*trainer.deterministic"):
            model.on_device()
        assert not build_model(vocab, "model.kernels=auto").on_device()  # a CPU: the fused kernels, deterministic
    finally:
        torch.use_deterministic_algorithms(False)


def test_what_rules_out_the_kernel_under_kernels_auto_is_said(monkeypatch):
    """SGNS on CUDA with model.kernels=auto takes the PyTorch step in deterministic mode or without
    Triton, and the run's log says which (once, when the sampler is set up)."""
    import logging

    from w2v.models import negative_sampling

    assert negative_sampling.NegativeSampling._kernel_ruled_out() is None  # tests run with Triton
    torch.use_deterministic_algorithms(True)
    try:
        level, message = negative_sampling.NegativeSampling._kernel_ruled_out()
    finally:
        torch.use_deterministic_algorithms(False)
    assert level == logging.INFO and message.startswith("trainer.deterministic=true: SGNS takes the PyTorch step")
    monkeypatch.setattr(negative_sampling, "triton_available", lambda: False)
    level, message = negative_sampling.NegativeSampling._kernel_ruled_out()
    assert level == logging.WARNING and message.endswith("(pip install triton)")


@pytest.mark.skipif(not CUDA, reason="needs CUDA")
@pytest.mark.parametrize("model", ["sgns", "cbow", "skipgram"])
def test_deterministic_runs_on_cuda_give_the_same_vectors(tmp_path, planted_corpus, model):
    def run(name):
        cfg = compose_config(["trainer=gpu", f"model={model}", "trainer.deterministic=true", "data=text",
                              f"data.path={planted_corpus}", "data.tokenizer.n_process=1", "data.vocab.min_count=1",
                              "trainer.max_epochs=1", "trainer.enable_progress_bar=false", "callbacks.tsne=null",
                              "callbacks.projector=null", f"paths.output_dir={tmp_path / name}",
                              f"paths.cache_dir={tmp_path / 'cache'}"])
        return train(cfg)["model"].word_vectors().vectors

    assert np.array_equal(run("first"), run("second"))
