"""The SGNS kernel's emulation with many programs in flight (`w2v/kernels/sgns_lockstep.py`): with one
program it is the Triton kernel (in Triton's interpreter); with more, each tick's windows read the rows
the previous tick left, as a naive reference built from the CPU kernels' window update computes it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.test_gpu_path import INTERPRETED, _chunk_setup, _kernel, _keys
from w2v.kernels import cpu as cpu_kernels
from w2v.kernels.device_sampling import chunk_examples
from w2v.kernels.sgns_lockstep import lockstep_chunks, lockstep_schedule
from w2v.models.binary_output import RowUpdate


def _numpy_block(block, threshold, alias):
    return [t.numpy() for t in (block.seq, block.docs, block.bounds, block.order, threshold, alias)]


def _emulate(block, threshold, alias, w_in, w_out, in_flight, lr=(0.4, 0.0), rule="damped", programs=None):
    """The emulation of a launch of the block's first `programs` chunks in its order (all with None)."""
    w_in, w_out = w_in.numpy().copy(), w_out.numpy().copy()
    keys = _keys()
    loss, pairs = lockstep_chunks(w_in, w_out, *_numpy_block(block, threshold, alias), keys.window, keys.noise, 0,
                                  programs or block.n_chunks, *lr, 2, True, 2, rule, in_flight)
    return torch.from_numpy(w_in), torch.from_numpy(w_out), loss, pairs


def test_the_schedule_hands_each_free_slot_the_next_program():
    starts = np.array([0, 3, 3, 5, 9])  # programs of 3, 0, 2 and 4 rows
    assert lockstep_schedule(starts, 2).tolist() == [[0, 3], [1, 4], [2, 5], [-1, 6], [-1, 7], [-1, 8]]
    assert lockstep_schedule(starts, 1).reshape(-1).tolist() == list(range(9))
    assert lockstep_schedule(starts, 9).tolist() == [[0, 3, 5, -1], [1, 4, 6, -1], [2, -1, 7, -1], [-1, -1, 8, -1]]


@pytest.mark.skipif(not INTERPRETED, reason="the Triton kernel on CPU tensors needs TRITON_INTERPRET=1")
@pytest.mark.parametrize("rule", ["damped", "sequential"])
def test_one_program_in_flight_is_the_kernel(rule):
    """Triton's interpreter runs a launch's programs one after another, in order: so does one slot.
    (The plain update's emulation is checked against the naive reference below.)"""
    block, threshold, alias, w_in, w_out = _chunk_setup("cpu")
    lr = (0.4, 0.0) if rule == "damped" else (0.05, 0.0)  # word2vec's steps are not damped
    programs = 3 if rule == "damped" else 2  # sequential takes many small steps a window: slow in the interpreter
    emulated_in, emulated_out, loss, pairs = _emulate(block, threshold, alias, w_in, w_out, 1, lr, rule, programs)
    totals = torch.zeros(2, dtype=torch.float64)
    _kernel()(w_in, w_out, block.seq, block.docs, block.bounds, block.order, threshold, alias, _keys().tensor("cpu"),
              totals, 0, programs, *lr, 2, True, 2, rule=rule)
    assert pairs == totals[1].item() > 50
    assert loss == pytest.approx(totals[0].item(), rel=1e-5)
    assert torch.allclose(emulated_in, w_in, atol=1e-5) and torch.allclose(emulated_out, w_out, atol=1e-5)


def _naive_lockstep(block, threshold, alias, w_in, w_out, in_flight, lr_begin, lr_end, damped):
    """Tick by tick in PyTorch: each busy slot's window update (the CPU kernels' gradients and damped
    step, on that window alone) from the rows as the last tick left them, then all of them added."""
    w_in, w_out = w_in.clone(), w_out.clone()
    n = block.n_chunks
    windows = [chunk_examples(block, int(block.order[p]), 2, True, 2, _keys(), threshold, alias) for p in range(n)]
    slots, upcoming, loss, pairs = [(-1, 0)] * min(in_flight, n), 0, 0.0, 0  # (program, its next window)

    def finished(slot):
        return slot is not None and (slot[0] < 0 or slot[1] == len(windows[slot[0]]["centers"]))

    while True:
        for s in range(len(slots)):
            while finished(slots[s]):  # a free slot takes the next program; None: none is left
                slots[s] = (upcoming, 0) if upcoming < n else None
                upcoming += 1
        if all(slot is None for slot in slots):
            return w_in, w_out, loss, pairs
        delta_in, delta_out = torch.zeros_like(w_in), torch.zeros_like(w_out)
        for s, slot in enumerate(slots):
            if slot is None:
                continue
            (p, b), ex = slot, windows[slot[0]]
            contexts = torch.where(ex["mask"][b : b + 1], ex["contexts"][b : b + 1], -1)  # (1, 2W)
            targets = torch.cat([ex["centers"][b : b + 1, None], ex["noise"][b : b + 1]], 1)  # (1, 1+K)
            labels = (torch.arange(targets.shape[1]) == 0).float()[None]  # the center, then noise
            rows, grad_ctx, curv_ctx, grad_tgt, curv_tgt, losses = cpu_kernels.skipgram_decision_gradients(
                w_in.numpy(), w_out.numpy(), contexts.numpy(), targets.numpy(), labels.numpy())
            if not damped:
                curv_ctx, curv_tgt = np.zeros_like(curv_ctx), np.zeros_like(curv_tgt)
            rate = lr_begin + (lr_end - lr_begin) * p / n
            RowUpdate(*map(torch.from_numpy, (rows, grad_ctx, curv_ctx))).apply(delta_in, rate, threads=1)
            RowUpdate(targets.reshape(-1), torch.from_numpy(grad_tgt.reshape(targets.shape[1], -1)),
                      torch.from_numpy(curv_tgt.reshape(-1))).apply(delta_out, rate, threads=1)
            loss, pairs = loss + float(losses.sum()), pairs + len(rows)
            slots[s] = (p, b + 1)
        w_in += delta_in
        w_out += delta_out


@pytest.mark.warms_kernels
@pytest.mark.parametrize("in_flight, damped", [(3, True), (3, False), (100, True)])
def test_programs_in_flight_read_the_rows_the_last_tick_left(in_flight, damped):
    block, threshold, alias, w_in, w_out = _chunk_setup("cpu", subsample=None)
    lr = (0.4, 0.1) if damped else (0.05, 0.0)
    want_in, want_out, want_loss, want_pairs = _naive_lockstep(block, threshold, alias, w_in, w_out, in_flight, *lr,
                                                               damped)
    rule = "damped" if damped else "plain"
    got_in, got_out, loss, pairs = _emulate(block, threshold, alias, w_in, w_out, in_flight, lr, rule)
    assert pairs == want_pairs and loss == pytest.approx(want_loss, rel=1e-5)
    assert torch.allclose(got_in, want_in, atol=1e-5) and torch.allclose(got_out, want_out, atol=1e-5)
    one_in, _, one_loss, _ = _emulate(block, threshold, alias, w_in, w_out, 1, lr, rule)
    assert not torch.allclose(one_in, got_in, atol=1e-3)  # concurrent programs learn something else


def test_the_sequential_rule_with_one_program_is_the_sequential_cpu_kernel():
    """word2vec's order within each window, chunk after chunk: the sequential rule on one shard."""
    from w2v.kernels.sequential import sequential_chunks

    block, threshold, alias, w_in, w_out = _chunk_setup("cpu")
    want_in, want_out = w_in.numpy().copy(), w_out.numpy().copy()
    keys, none = _keys(), np.zeros((0, 3), dtype=np.int64)
    want_loss, _, want_pairs = sequential_chunks(
        want_in, want_out, *_numpy_block(block, threshold, alias)[:4], 0, block.n_chunks, keys.window, keys.noise, 2,
        True, 2, *_numpy_block(block, threshold, alias)[4:], none, none.astype(np.float32), 0.05, 0.05, 1, 1 << 20,
        False, False, 1)
    got_in, got_out, loss, pairs = _emulate(block, threshold, alias, w_in, w_out, 1, (0.05, 0.05), "sequential")
    assert pairs == want_pairs > 50 and loss == pytest.approx(want_loss, rel=1e-4)
    assert np.allclose(got_in, want_in, atol=1e-5) and np.allclose(got_out, want_out, atol=1e-5)
    assert not np.allclose(got_in, w_in, atol=1e-3)
    several_in, _, _, _ = _emulate(block, threshold, alias, w_in, w_out, 3, (0.05, 0.05), "sequential")
    assert not np.allclose(several_in, got_in, atol=1e-4)  # programs in flight read one another's rows late


def test_bad_settings_are_one_line_errors():
    block, threshold, alias, w_in, w_out = _chunk_setup("cpu")
    with pytest.raises(ValueError, match="in_flight=0 must be at least 1"):
        _emulate(block, threshold, alias, w_in, w_out, 0)
    with pytest.raises(ValueError, match="rule='sgd' is unknown; use one of plain, damped, sequential"):
        _emulate(block, threshold, alias, w_in, w_out, 2, rule="sgd")
    with pytest.raises(ValueError, match="w_in must be a C-contiguous 2-D float32 array"):
        _emulate(block, threshold, alias, w_in.double(), w_out, 2)
