"""The sequential CPU kernels' own windows (`kernels.chunk_windows`): drawn in Numba with the same bits
as the GPU path's PyTorch specification (`device_sampling`), and trained through the chunk step."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from w2v.data.sampling import NoiseTable, keep_probabilities
from w2v.kernels import chunk_windows, counter_rng
from w2v.kernels.device_sampling import StreamKeys, chunk_examples, chunk_order, prepare_block
from w2v.models.huffman import huffman_tree

NO_PATHS = (np.empty((0, 0), dtype=np.int64), np.empty((0, 0), dtype=np.float32))


def _keys(seed=5, epoch=2, block=1) -> StreamKeys:
    return StreamKeys.for_block(seed, epoch, block)


def _block(n=3000, vocab=40, subsample=1e-2, seed=0):
    """A block of `n` ids with documents of every kind: long, one word, empty, cut by chunks."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(1, 2000, vocab)
    counts[:2] = 0  # the specials: never drawn as noise
    ids = rng.choice(np.arange(2, vocab), n, p=counts[2:] / counts[2:].sum()).astype(np.int32)
    offsets = np.array([0, 700, 701, 701, 1500, n - 5, n], dtype=np.int64)
    keep = keep_probabilities(counts, subsample).astype(np.float32) if subsample else np.empty(0, np.float32)
    return counts, ids, offsets, keep


@pytest.mark.parametrize("subsample, chunk_tokens", [(1e-2, 256), (None, 256), (1e-2, 1000), (1e-2, 5000)])
def test_a_block_is_subsampled_as_the_device_specification(subsample, chunk_tokens):
    _, ids, offsets, keep = _block(subsample=subsample)
    seq, docs, bounds = chunk_windows.subsample_block(ids, offsets, keep, _keys().subsample, chunk_tokens)
    spec = prepare_block(torch.from_numpy(ids), torch.from_numpy(offsets),
                         torch.from_numpy(keep) if subsample else None, chunk_tokens, _keys())
    kept = int(bounds[-1])
    assert np.array_equal(bounds, spec.bounds.numpy())
    assert np.array_equal(seq[:kept], spec.seq.numpy()[:kept]) and np.array_equal(docs, spec.docs.numpy())
    assert (kept < len(ids)) == bool(subsample)


@pytest.mark.warms_kernels
@pytest.mark.parametrize("window, shrink, negatives", [(5, True, 5), (2, False, 1), (1, True, 3)])
def test_windows_and_noise_words_are_the_device_specifications(window, shrink, negatives):
    counts, ids, offsets, keep = _block()
    keys = _keys()
    seq, docs, bounds = chunk_windows.subsample_block(ids, offsets, keep, keys.subsample, 256)
    spec = prepare_block(torch.from_numpy(ids), torch.from_numpy(offsets), torch.from_numpy(keep), 256, keys)
    table = NoiseTable(counts)
    threshold, alias = table.threshold.astype(np.float32), table.alias.astype(np.int32)
    order = chunk_order(len(bounds) - 1, keys.order, True).numpy()
    first, chunks = 3, len(order) - 4  # a step's range of chunks, neither the first nor the last
    size = int(sum(bounds[c + 1] - bounds[c] for c in order[first:first + chunks]))
    contexts = np.full((size + 7, 2 * window), -9, dtype=np.int64)  # larger than needed: the rest stays as it was
    targets = np.full((size + 7, 1 + negatives), -9, dtype=np.int64)
    labels = np.full((size + 7, 1 + negatives), -9, dtype=np.float32)
    rows, windows, pairs = chunk_windows.chunk_windows(seq, docs, bounds, order, first, chunks, keys.window, keys.noise,
                                                       window, shrink, negatives, threshold, alias, *NO_PATHS,
                                                       contexts, targets, labels)
    assert rows == size and (contexts[size:] == -9).all()
    expected = [chunk_examples(spec, int(c), window, shrink, negatives, keys, torch.from_numpy(threshold),
                               torch.from_numpy(alias)) for c in order[first:first + chunks]]
    mask = torch.cat([e["mask"] for e in expected]).numpy()
    assert np.array_equal(contexts[:rows], np.where(mask, torch.cat([e["contexts"] for e in expected]).numpy(), -1))
    assert np.array_equal(targets[:rows, 0], torch.cat([e["centers"] for e in expected]).numpy())
    assert np.array_equal(targets[:rows, 1:], torch.cat([e["noise"] for e in expected]).numpy())
    assert (labels[:rows, 0] == 1).all() and (labels[:rows, 1:] == 0).all()
    assert (windows, pairs) == (int(mask.any(1).sum()), int(mask.sum()))
    assert not np.isin(targets[:rows, 1:], [0, 1]).any()  # specials (count 0) are never noise


def test_hierarchical_windows_make_the_decisions_of_the_centers_path():
    counts, ids, offsets, keep = _block(subsample=None)  # every token kept
    tree = huffman_tree(counts)
    paths, path_labels = tree.points.astype(np.int64), (1 - tree.codes).astype(np.float32)
    keys = _keys()
    seq, docs, bounds = chunk_windows.subsample_block(ids, offsets, keep, keys.subsample, 256)
    order = np.arange(len(bounds) - 1)
    width = paths.shape[1]
    contexts = np.empty((len(ids), 6), dtype=np.int64)
    targets, labels = np.empty((len(ids), width), dtype=np.int64), np.empty((len(ids), width), dtype=np.float32)
    rows, windows, _ = chunk_windows.chunk_windows(seq, docs, bounds, order, 0, len(order), keys.window, keys.noise, 3,
                                             True, 0, np.empty(0, np.float32), np.empty(0, np.int32), paths,
                                             path_labels, contexts, targets, labels)
    centers = seq[:rows]  # every chunk in corpus order: the kept tokens themselves
    assert rows == bounds[-1] == len(ids) and windows == rows - 1  # the one-word document's token has no context
    assert np.array_equal(targets[:rows], paths[centers]) and np.array_equal(labels[:rows], path_labels[centers])
    assert len(set(targets[:rows, 0].tolist())) == 1  # every path starts at the root


def test_the_multiply_shift_draws_are_uniform():
    bits = counter_rng.draw(3, torch.arange(300_000))
    picks = counter_rng.below(bits, 7)
    assert picks.min() == 0 and picks.max() == 6
    counts = torch.bincount(picks, minlength=7).double()
    assert ((counts - 300_000 / 7).abs() < 5 * (300_000 / 7 * 6 / 7) ** 0.5).all()


@pytest.mark.parametrize("mean_context, hierarchical", [(True, False), (False, False), (True, True), (False, True)])
@pytest.mark.parametrize("shards, sync, lock_free", [(1, 10_000, False), (2, 10_000, False), (2, 700, False),
                                                     (3, 450, False), (1, 700, True)])
def test_training_as_the_shards_draw_equals_drawing_then_training(mean_context, hierarchical, shards, sync, lock_free):
    """`sequential_chunks` draws each piece's windows in the shards' threads as it trains: bit for bit
    what `chunk_windows` draws and `sequential_sgd` then trains, in one piece or several (lock-free:
    with one shard, whose result does not depend on timing)."""
    from w2v.kernels.sequential import sequential_chunks, sequential_sgd

    counts, ids, offsets, keep = _block(n=4000)
    keys = _keys()
    seq, docs, bounds = chunk_windows.subsample_block(ids, offsets, keep, keys.subsample, 256)
    order = chunk_order(len(bounds) - 1, keys.order, True).numpy()
    if hierarchical:
        tree = huffman_tree(counts)
        tables = (0, np.empty(0, np.float32), np.empty(0, np.int32), tree.points.astype(np.int64),
                  (1 - tree.codes).astype(np.float32))
    else:
        noise = NoiseTable(counts)
        tables = (4, noise.threshold.astype(np.float32), noise.alias.astype(np.int32), *NO_PATHS)
    width = tables[3].shape[1] if hierarchical else 5
    first, chunks = 2, len(order) - 3
    contexts = np.empty((4000, 6), dtype=np.int64)
    targets, labels = np.empty((4000, width), dtype=np.int64), np.empty((4000, width), dtype=np.float32)
    rows, windows, pairs = chunk_windows.chunk_windows(seq, docs, bounds, order, first, chunks, keys.window, keys.noise,
                                                       3, True, *tables, contexts, targets, labels)
    rng = np.random.default_rng(3)
    w_in, w_out = (rng.random((len(counts), 8), dtype=np.float32) - 0.5 for _ in range(2))
    drawn = (w_in.copy(), w_out.copy())
    losses = sequential_sgd(*drawn, contexts[:rows], targets[:rows], labels[:rows], 0.05, 0.01, shards, sync,
                            mean_context, False, lock_free, 2)[-1]
    fused = (w_in.copy(), w_out.copy())
    loss, fused_windows, fused_pairs = sequential_chunks(*fused, seq, docs, bounds, order, first, chunks, keys.window,
                                                         keys.noise, 3, True, *tables, 0.05, 0.01, shards, sync,
                                                         mean_context, lock_free, 2)
    assert np.array_equal(fused[0], drawn[0]) and np.array_equal(fused[1], drawn[1])
    assert (fused_windows, fused_pairs) == (windows, pairs)
    assert loss == pytest.approx(float(losses.sum()), rel=1e-5)
    assert not np.array_equal(fused[0], w_in)  # it trained


def test_steps_and_chunks_that_keep_no_token_draw_and_train_nothing():
    """Subsampling may drop every token of a chunk, of a step, or of a block: nothing is drawn past
    the kept tokens, and a step with none trains nothing."""
    from w2v.kernels.sequential import sequential_chunks

    counts, ids, offsets, _ = _block(n=1000)
    ids[700:] = 5
    keep = np.ones(len(counts), dtype=np.float32)
    keep[5] = 0.0  # the block's last chunks keep nothing
    keys, noise = _keys(), NoiseTable(counts)
    tables = (3, noise.threshold.astype(np.float32), noise.alias.astype(np.int32), *NO_PATHS)
    seq, docs, bounds = chunk_windows.subsample_block(ids, offsets, keep, keys.subsample, 100)
    assert bounds[-1] == bounds[7] <= 700  # chunks 7, 8 and 9 keep nothing
    order = np.arange(len(bounds) - 1)  # in corpus order: the empty chunks come last
    contexts = np.full((1000, 4), -9, dtype=np.int64)
    targets, labels = np.full((1000, 4), -9, dtype=np.int64), np.zeros((1000, 4), dtype=np.float32)
    rows, _, _ = chunk_windows.chunk_windows(seq, docs, bounds, order, 0, len(order), keys.window, keys.noise, 2,
                                             True, *tables, contexts, targets, labels)
    assert rows == bounds[-1] and (contexts[rows:] == -9).all() and (targets[rows:] == -9).all()
    # The drawing loop as Python runs it (NumPy checks every index): an empty range past the last chunk
    starts = chunk_windows.step_rows(bounds, order, 7, 3)
    no_seen, no_rows = np.zeros((0, 0), dtype=np.uint8), np.zeros(0, dtype=np.int64)
    assert chunk_windows.draw_rows.py_func(seq, docs, bounds, order, 7, starts, starts[-1], starts[-1], keys.window,
                                           keys.noise, 2, True, *tables, contexts, targets, labels, 0,
                                           (no_seen, no_seen, no_rows, no_rows), 0, False) == (0, 0, 0, 0)
    w_in, w_out = np.ones((len(counts), 4), dtype=np.float32), np.ones((len(counts), 4), dtype=np.float32)
    for first, chunks in ((7, 3), (9, 1)):  # the last chunks: no kept token
        assert sequential_chunks(w_in, w_out, seq, docs, bounds, order, first, chunks, keys.window, keys.noise, 2,
                                 True, *tables, 0.05, 0.01, 2, 100, True, False, 2) == (0.0, 0, 0)
    assert (w_in == 1).all() and (w_out == 1).all()
    nothing = np.zeros(len(counts), dtype=np.float32)  # a block where every token is dropped
    seq, docs, bounds = chunk_windows.subsample_block(ids, offsets, nothing, keys.subsample, 100)
    assert (bounds == 0).all() and (docs == -1).all()
    assert sequential_chunks(w_in, w_out, seq, docs, bounds, order, 0, len(order), keys.window, keys.noise, 2,
                             True, *tables, 0.05, 0.01, 2, 100, True, False, 2) == (0.0, 0, 0)


def test_a_step_outside_its_block_is_refused():
    """The kernels index without bounds checks: a step's chunks past the block's order, an order that
    names a chunk the block lacks, or too few output rows stop with an error instead of reading or
    writing past the arrays."""
    from w2v.kernels.sequential import sequential_chunks

    counts, ids, offsets, keep = _block(n=1000)
    keys, noise = _keys(), NoiseTable(counts)
    tables = (3, noise.threshold.astype(np.float32), noise.alias.astype(np.int32), *NO_PATHS)
    seq, docs, bounds = chunk_windows.subsample_block(ids, offsets, keep, keys.subsample, 100)
    order = np.arange(len(bounds) - 1)
    contexts = np.empty((1000, 4), dtype=np.int64)
    targets, labels = np.empty((1000, 4), dtype=np.int64), np.empty((1000, 4), dtype=np.float32)
    w_in, w_out = np.ones((len(counts), 4), dtype=np.float32), np.ones((len(counts), 4), dtype=np.float32)
    for bad_order, first, chunks in ((order, 8, 5), (order, -1, 2), (order[::-1] + 1, 0, 3)):
        with pytest.raises(ValueError, match="step_rows"):
            chunk_windows.chunk_windows(seq, docs, bounds, bad_order, first, chunks, keys.window, keys.noise, 2, True,
                                        *tables, contexts, targets, labels)
        with pytest.raises(ValueError, match="step_rows"):
            sequential_chunks(w_in, w_out, seq, docs, bounds, bad_order, first, chunks, keys.window, keys.noise, 2,
                              True, *tables, 0.05, 0.01, 2, 100, True, False, 2)
    assert (w_in == 1).all() and (w_out == 1).all()
    with pytest.raises(ValueError, match="a row for each"):
        chunk_windows.chunk_windows(seq, docs, bounds, order, 0, len(order), keys.window, keys.noise, 2, True, *tables,
                                    contexts[:10], targets[:10], labels[:10])
