"""Sample generation: windows and pairs against naive loops; subsampling and noise checked statistically."""

import numpy as np
import pytest
import torch

from w2v.data.corpus import Corpus
from w2v.data.tokenize import TokenizedCorpus
from w2v.data.vocab import Vocabulary
from w2v.data.datamodule import SHUFFLE_UNITS, ChunkBatches, EpochBatches, block_order
from w2v.data.sampling import (SUBSAMPLE_RULES, NoiseTable, SamplerSettings, WindowSampler, keep_probabilities,
                              noise_distribution)
from w2v.errors import ConfigError


class _Block:
    """A corpus of one block, as the sampler sees it."""

    def __init__(self, ids, offsets):
        self.ids, self.offsets = np.asarray(ids), np.asarray(offsets)

    def __len__(self):
        return len(self.ids)


def _block():
    # three documents of lengths 5, 1 and 4
    return _Block([10, 11, 12, 13, 14, 20, 30, 31, 32, 33], [0, 5, 6, 10])


def _sampler(ids, offsets, counts, settings, seed=0):
    sampler = WindowSampler(counts, settings)
    sampler.start_block(np.asarray(ids), np.asarray(offsets), np.random.default_rng(seed))
    return sampler


def _tokens_corpus(words, ids, offsets, block_tokens):
    ids = np.asarray(ids, dtype=np.int32)
    tokens = TokenizedCorpus(words=words, ids=ids, offsets=np.asarray(offsets), counts=np.bincount(ids, minlength=len(words)))
    vocab = Vocabulary.build(tokens.counts, words, specials=[], oov="drop", min_count=1)
    corpus = Corpus(tokens, vocab, block_tokens)
    corpus.vocab = vocab  # for the tests' own use
    return corpus


@pytest.mark.warms_kernels
def test_windows_match_naive_loop():
    # three documents of lengths 5, 1 and 4, every word distinct; words 11 and 31 are often subsampled away
    block = _block()
    counts = np.ones(40)
    counts[[11, 31]] = 400
    settings = SamplerSettings(window=3, subsample=0.01)
    doc_of = np.searchsorted(block.offsets, np.arange(len(block)), side="right") - 1
    dropped = 0
    for seed in range(20):
        sampler = _sampler(block.ids, block.offsets, counts, settings, seed)
        positions = np.random.default_rng(seed).permutation(len(block))
        got = sampler.batch(positions, np.random.default_rng(100 + seed))
        kept = list(np.flatnonzero(sampler._slot >= 0))
        dropped += len(block) - len(kept)
        radius = np.random.default_rng(100 + seed).integers(1, 4, size=len(positions))  # the batch's first draw
        expected = []
        for pos, reach in zip(positions, radius):
            if pos not in kept:
                continue
            k = kept.index(pos)
            window = [kept[j] for j in range(max(k - reach, 0), min(k + reach + 1, len(kept)))
                      if j != k and doc_of[kept[j]] == doc_of[pos]]
            if window:
                expected.append((block.ids[pos], sorted(block.ids[window])))
        assert [(c, sorted(ctx[m])) for c, ctx, m in zip(got["centers"], got["contexts"], got["mask"])] == expected
        assert all((ctx[~m] == c).all() for c, ctx, m in zip(got["centers"], got["contexts"], got["mask"]))
    assert dropped > 0  # subsampling took part


@pytest.mark.warms_kernels
def test_a_subsampled_block_matches_a_naive_loop():
    """The block's compacted sequence, each position's place in it, and each kept token's document
    span, against a loop over the tokens; with empty documents and documents dropped whole."""
    from w2v.data.sampling import _subsampled

    rng = np.random.default_rng(5)
    for _ in range(100):
        lengths = rng.integers(0, 6, size=rng.integers(1, 6))  # (docs,) some empty
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        ids = rng.integers(0, 9, size=offsets[-1]).astype(np.int32)
        keep = rng.random(len(ids)) < rng.random()
        slot, seq, span = _subsampled(ids, offsets, keep)
        expected_slot, expected_seq, expected_span = [], [], []
        for doc in range(len(lengths)):
            kept = [i for i in range(offsets[doc], offsets[doc + 1]) if keep[i]]
            first = len(expected_seq)
            expected_seq += [ids[i] for i in kept]
            expected_span += [(first, len(expected_seq) - 1)] * len(kept)
        place = np.cumsum(keep) - 1
        expected_slot = np.where(keep, place, -1)
        assert slot.dtype == np.int32 and span.dtype == np.int32 and seq.dtype == ids.dtype
        assert slot.tolist() == expected_slot.tolist() and seq.tolist() == expected_seq
        assert span.reshape(-1, 2).tolist() == [list(pair) for pair in expected_span]


def _loader(corpus, settings, batch_size, seed=1, epoch=0, rank=0, world=1, unit="document"):
    sampler = WindowSampler(corpus.vocab.counts, settings)
    return EpochBatches(corpus, sampler, batch_size=batch_size, shuffle=True, seed=seed, progress=lambda: (epoch, 0),
                        rank=rank, world_size=world, shuffle_unit=unit)


def test_document_order_keeps_each_document_whole_and_in_order():
    offsets = np.array([0, 3, 4, 9, 15, 17, 30])
    docs = [list(range(a, b)) for a, b in zip(offsets[:-1], offsets[1:])]
    seen = set()
    for seed in range(20):
        order = block_order(offsets, np.random.default_rng(seed), True, "document").tolist()
        runs, at = [], 0
        while at < len(order):  # cut the order into runs that each start a document
            doc = next(d for d in docs if d[0] == order[at])
            runs.append(order[at:at + len(doc)])
            at += len(doc)
        assert sorted(map(tuple, runs)) == sorted(map(tuple, docs))  # every document whole, in its own order
        seen.add(tuple(r[0] for r in runs))
    assert len(seen) > 10  # the documents' order is drawn


def test_position_order_and_no_shuffle():
    offsets = np.array([0, 5, 12])
    expected = np.arange(12, dtype=np.int32)
    np.random.default_rng(4).shuffle(expected)  # the draw runs saved before data.shuffle_unit made
    assert np.array_equal(block_order(offsets, np.random.default_rng(4), True, "position"), expected)
    for unit in SHUFFLE_UNITS:
        assert block_order(offsets, np.random.default_rng(4), False, unit).tolist() == list(range(12))


def test_skipgram_pairs_of_an_epoch_are_all_in_window_pairs():
    words = [str(i) for i in range(40)]
    corpus = _tokens_corpus(words, [10, 11, 12, 13, 14, 20, 30, 31, 32, 33], [0, 5, 6, 10], block_tokens=100)
    batches = _loader(corpus, SamplerSettings(window=2, shrink_window=False), batch_size=3)
    vocab_words = corpus.vocab.words
    pairs = set()
    for batch in batches:
        for c, row, m in zip(batch["centers"], batch["contexts"], batch["mask"]):
            pairs |= {(int(vocab_words[c]), int(vocab_words[o])) for o in row[m]}
    expected = {(10, 11), (10, 12), (11, 10), (11, 12), (11, 13), (12, 10), (12, 11), (12, 13), (12, 14), (13, 11),
                (13, 12), (13, 14), (14, 12), (14, 13), (30, 31), (30, 32), (31, 30), (31, 32), (31, 33), (32, 30),
                (32, 31), (32, 33), (33, 31), (33, 32)}
    assert pairs == expected  # document 2 (a single word) has no pair; nothing crosses documents
    assert len(batches) == 4 and sum(b["n_tokens"] for b in batches) == len(corpus)


@pytest.mark.parametrize("unit", SHUFFLE_UNITS)
def test_an_epoch_over_blocks_visits_every_token_once(unit):
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 30, 1000)
    corpus = _tokens_corpus([f"w{i}" for i in range(30)], ids, [0, 130, 600, 1000], block_tokens=64)
    assert corpus.n_blocks == 16
    batches = _loader(corpus, SamplerSettings(window=3), batch_size=10, unit=unit)
    centers = np.concatenate([b["centers"].numpy() for b in batches])
    assert np.array_equal(np.sort(centers), np.sort(corpus.lookup[ids]))


def _centers(batches) -> list[list[int]]:
    return [b["centers"].tolist() for b in batches]


def test_ranks_share_an_epoch_and_a_resume_skips_done_batches():
    corpus = _tokens_corpus([f"w{i}" for i in range(13)], np.arange(40) % 13, [0, 17, 40], block_tokens=9)
    settings = SamplerSettings(window=2, subsample=0.2, negatives=2)

    def loader(rank=0, world=1):
        return _loader(corpus, settings, batch_size=4, seed=3, epoch=2, rank=rank, world=world)

    whole = list(loader())  # blocks of 9, 9, 9, 9, 4 tokens: 3 + 3 + 3 + 3 + 1 batches
    total = len(whole)
    parts = [list(loader(r, 3)) for r in range(3)]
    assert total == 13 and [len(p) for p in parts] == [5, 5, 5]
    for r, part in enumerate(parts):  # batch i goes to rank i mod 3; the last ranks wrap around
        assert _centers(part) == _centers([whole[i % total] for i in range(r, 15, 3)])
        assert all(torch.equal(b["noise"], whole[i % total]["noise"]) for b, i in zip(part, range(r, 15, 3)))
    resumed = loader()
    resumed.load_state_dict({"epoch": 2, "batches_done": 7})
    assert _centers(resumed) == _centers(whole[7:])
    assert _centers(resumed) == _centers(whole)  # a resume state applies once, to its own epoch


def test_shrunk_windows_are_uniform():
    n = 20_000
    sampler = _sampler(np.zeros(n, dtype=np.int64), [0, n], np.array([n]), SamplerSettings(window=4))
    mask = sampler.batch(np.arange(10, n - 10), np.random.default_rng(1))["mask"]
    radius = mask.sum(1) // 2
    freq = np.bincount(radius, minlength=5)[1:] / len(radius)
    assert np.allclose(freq, 0.25, atol=0.02)


@pytest.mark.parametrize("rule", SUBSAMPLE_RULES)
def test_subsampling_keeps_words_at_the_formula_rate(rule):
    counts = np.array([50_000, 5_000, 500, 50])
    ids = np.repeat(np.arange(4), counts)
    threshold = 1e-3
    sampler = _sampler(np.random.default_rng(0).permutation(ids), [0, len(ids)], counts,
                       SamplerSettings(window=1, subsample=threshold, subsample_rule=rule))
    kept = np.bincount(sampler._seq, minlength=4) / counts
    ratio = threshold / (counts / counts.sum())
    expected = np.minimum(1, np.sqrt(ratio) + ratio) if rule == "word2vec" else np.maximum(0, 1 - np.sqrt(ratio))
    assert np.allclose(keep_probabilities(counts, threshold, rule), expected)
    std = np.sqrt(expected * (1 - expected) / counts)
    assert (np.abs(kept - expected) <= 4 * std + 1e-9).all()
    if rule == "word2vec":  # frequent words thinned, the rarest kept whole
        assert expected[0] < 0.2 and expected[3] == 1.0
    else:  # the notebooks' rule: the other way round; a word rarer than the threshold never kept
        assert expected[0] > 0.95 and expected[3] == 0.0 and kept[3] == 0.0


def test_an_unknown_subsample_rule_names_the_choices():
    with pytest.raises(ConfigError, match="model.subsample_rule='paper' is unknown; use one of word2vec, notebook"):
        SamplerSettings(window=2, subsample=1e-3, subsample_rule="paper")


def test_subsampling_redraws_each_epoch_but_is_reproducible():
    counts = np.array([5000, 100])
    sampler = WindowSampler(counts, SamplerSettings(window=2, subsample=1e-2))
    draws = []
    for seed in ([0, 0], [0, 1], [0, 0]):
        sampler.start_block(np.repeat([0, 1], counts), np.array([0, 5100]), np.random.default_rng(seed))
        draws.append(sampler._seq.copy())
    assert not np.array_equal(draws[0], draws[1]) and np.array_equal(draws[0], draws[2])


def test_noise_words_follow_count_power():
    counts = np.array([0, 1000, 100, 10, 1])
    probs = noise_distribution(counts, 0.75)
    assert probs[0] == 0 and np.isclose(probs.sum(), 1)
    assert np.allclose(probs[1:-1] / probs[2:], 10 ** 0.75)
    draws = NoiseTable(counts, 0.75).sample(200_000, 1, np.random.default_rng(0)).flatten()
    freq = np.bincount(draws, minlength=5) / 200_000
    assert np.all(np.abs(freq - probs) <= 4 * np.sqrt(probs * (1 - probs) / 200_000) + 1e-9)


@pytest.mark.parametrize("window", [0, -1])
def test_bad_window_is_rejected(window):
    with pytest.raises(ConfigError, match="model.window"):
        SamplerSettings(window=window)


@pytest.mark.parametrize("counts", [np.array([0, 1000, 100, 10, 1, 0, 7]),
                                    np.random.default_rng(0).zipf(1.3, 20_000) * (np.arange(20_000) % 7 > 0)])
@pytest.mark.warms_kernels
def test_noise_table_gives_each_word_its_exact_probability(counts):
    table = NoiseTable(counts, 0.75)
    n = len(counts)  # slot i gives word i with probability threshold[i], its alias otherwise
    implied = (np.bincount(np.arange(n), weights=table.threshold / n, minlength=n)
               + np.bincount(table.alias, weights=(1 - table.threshold) / n, minlength=n))
    assert np.allclose(implied, noise_distribution(counts, 0.75), rtol=1e-9, atol=1e-15)
    assert implied[counts == 0].sum() == 0  # a word that never occurs is never drawn


def test_noise_for_an_empty_batch_is_empty():
    assert NoiseTable(np.array([3, 2]), 0.75).sample(0, 5, np.random.default_rng(1)).shape == (0, 5)


def test_batches_carry_k_noise_words_per_center_and_only_centers_with_context():
    corpus = _tokens_corpus([str(i) for i in range(40)], [10, 11, 12, 13, 14, 20, 30, 31, 32, 33], [0, 5, 6, 10],
                            block_tokens=100)
    batches = list(_loader(corpus, SamplerSettings(window=2, negatives=3), batch_size=4))
    centers = np.concatenate([b["centers"].numpy() for b in batches])
    assert len(centers) == 9 and corpus.vocab.words.index("20") not in centers  # the one-word document has no pair
    for b in batches:
        assert b["noise"].shape == (len(b["centers"]), 3) and b["mask"].any(1).all()
    again = list(_loader(corpus, SamplerSettings(window=2, negatives=3), batch_size=4))
    assert all(torch.equal(a["noise"], b["noise"]) for a, b in zip(batches, again))  # drawn from the batch's seed


@pytest.mark.parametrize("overrides, unit, batch_size, world_size", [
    (["model=sgns"], "chunks", 65536, 1),  # plain SGD's sequential rule draws its windows from chunks
    (["model=sgns", "data.batch_size=8192"], "chunks", 8192, 1),
    (["model=sgns", "data.batch_size=1500"], "chunks", 1024, 1),  # whole chunks
    (["model=sgns", "data.batch_size=300"], "chunks", 300, 1),  # a chunk of a step's size
    (["model=sgns", "data.shuffle_unit=document"], "document", 65536, 1),  # the loader's windows, in pieces
    (["model=sgns"], "document", 16384, 2),  # a data-parallel step is one piece
    (["model=cbow", "model/output=hierarchical"], "chunks", 262144, 1),
    (["model=sgns", "model.update_rule=damped"], "document", 4096, 1),
    (["model=sgns", "model.kernels=triton"], "chunks", 2097152, 1),  # the GPU path's steps, under either rule
    (["model=sgns", "model.kernels=triton", "model.update_rule=damped"], "chunks", 2097152, 1),
    (["model=sgns", "model/optimizer=adam"], "position", 4096, 1),  # Adam's batch gradient
    (["model=cbow"], "position", 4096, 1),  # the full softmax's Adam
    (["model=cbow", "data.shuffle_unit=document", "data.batch_size=100"], "document", 100, 1),  # the user's choices
    (["model=sgns", "data.shuffle_unit=position", "data.batch_size=100"], "position", 100, 2),
])
def test_auto_data_settings_are_the_models(tmp_path, planted_corpus, overrides, unit, batch_size, world_size):
    from types import SimpleNamespace

    from w2v.api import build_datamodule, build_model

    dm = build_datamodule("data=text", f"data.path={planted_corpus}", f"data.cache_dir={tmp_path / 'cache'}",
                          "data.tokenizer.n_process=1", *overrides)
    dm.setup()
    model = build_model(dm.vocab, *overrides)
    dm.trainer = model._trainer = SimpleNamespace(lightning_module=model, global_rank=0, world_size=world_size)
    stream = dm.train_dataloader()
    if isinstance(stream, ChunkBatches):
        assert ("chunks", stream.per_step * stream.chunk_tokens) == (unit, batch_size)
    else:
        assert (stream.shuffle_unit, stream.batch_size) == (unit, batch_size)
