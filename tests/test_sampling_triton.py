"""The full softmax's step windows in one Triton kernel (`kernels.sampling_triton.step_windows`)
against their PyTorch specification (`device_sampling.step_windows`), bit for bit; in Triton's
interpreter without a GPU."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.test_softmax_on_device import HostReads, small_block
from w2v.api import build_model
from w2v.data.vocab import Vocabulary
from w2v.kernels import device_sampling

sampling_triton = pytest.importorskip("w2v.kernels.sampling_triton")  # Triton is an optional dependency on a CPU

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def _fused(block, keys, first, *args):
    first = torch.tensor([first], device=DEVICE)  # (1,) int64, read on the device
    return sampling_triton.step_windows(block.seq, block.docs, block.bounds, block.order, keys.tensor(DEVICE), first,
                                        *args)


@pytest.mark.parametrize("chunk_tokens", [1, 8])
@pytest.mark.parametrize("subsample", [None, 0.005])
@pytest.mark.parametrize("window,shrink", [(5, True), (3, False), (2, True)])
def test_the_kernels_windows_are_the_specifications_bit_for_bit(chunk_tokens, subsample, window, shrink):
    """Every field, padding included: the step's first, middle and last chunks, and a window whose
    2W context slots (6) are fewer than the kernel's power-of-2 tile (8)."""
    block, keys = small_block(chunk_tokens, subsample, DEVICE)
    n = block.n_chunks
    for first, chunks in ((0, n), (n // 3, n // 4), (n - 1, 1)):
        want = device_sampling.step_windows(block, first, chunks, chunk_tokens, window, shrink, keys.window)
        fused = _fused(block, keys, first, chunks, chunk_tokens, window, shrink)
        got = dict(zip(("centers", "contexts", "mask"), fused))
        for name in want:
            assert got[name].dtype == want[name].dtype and torch.equal(got[name], want[name]), (name, first, chunks)
        if chunks == n:  # the whole block: windows cut short by documents' ends, and padding if subsampled
            assert got["mask"].any() and not got["mask"].all()


def test_a_step_of_no_chunks_draws_nothing():
    block, keys = small_block(8, None, DEVICE)
    centers, contexts, mask = _fused(block, keys, 2, 0, 8, 5, True)
    assert centers.shape == (0,) and contexts.shape == mask.shape == (0, 10)


def test_bad_arguments_are_one_line_errors():
    block, keys = small_block(8, None, DEVICE)
    with pytest.raises(ValueError, match="39 chunks a step, but the block has 38"):
        _fused(block, keys, 0, block.n_chunks + 1, 8, 5, True)
    with pytest.raises(ValueError, match="window \\(0\\) and chunk_tokens \\(8\\) must be at least 1"):
        _fused(block, keys, 0, 1, 8, 0, True)
    first = torch.zeros(1, dtype=torch.int64, device=DEVICE)
    with pytest.raises(ValueError, match="seq must be a 1-D torch.int32 tensor, got torch.int64"):
        sampling_triton.step_windows(block.seq.long(), block.docs, block.bounds, block.order, keys.tensor(DEVICE),
                                     first, 1, 8, 5, True)
    with pytest.raises(ValueError, match="first_chunk must be a 1-D torch.int64 tensor, got torch.int32"):
        sampling_triton.step_windows(block.seq, block.docs, block.bounds, block.order, keys.tensor(DEVICE),
                                     first.int(), 1, 8, 5, True)
    with pytest.raises(ValueError, match="docs must match seq"):
        sampling_triton.step_windows(block.seq, block.docs[1:], block.bounds, block.order, keys.tensor(DEVICE),
                                     first, 1, 8, 5, True)


def test_the_kernel_is_a_sound_custom_op():
    block, keys = small_block(1, 0.005, DEVICE)
    first = torch.tensor([3], device=DEVICE)
    torch.library.opcheck(sampling_triton.step_windows,
                          (block.seq, block.docs, block.bounds, block.order, keys.tensor(DEVICE), first, 40, 1, 5, True))


@pytest.mark.parametrize("kernels,triton", [("triton", True), ("torch", False), ("auto", torch.cuda.is_available())])
def test_a_model_draws_its_windows_in_triton_where_its_step_takes_triton(kernels, triton):
    """`model.kernels` picks the windows' kernel with the step's; its windows are the other
    kernel's, and drawing them reads nothing back to the host."""
    vocab = Vocabulary([f"w{i}" for i in range(30)], [5] * 30)
    model = build_model(vocab, "model=cbow", "model.embedding_dim=8", "model.sampling=device",
                        f"model.kernels={kernels}").to(DEVICE)
    assert model.triton_windows() == triton
    ids = torch.from_numpy(np.random.default_rng(0).integers(0, 30, 200))
    batch = {"ids": ids, "offsets": torch.tensor([0, 120, 200]), "seed": 1, "epoch": 0, "block": 0, "chunk_tokens": 1,
             "shuffle": True, "first_chunk": 50, "chunks": 64}
    model.device_windows(batch)  # brings the block
    with HostReads() as recorder:  # a step's windows, without a new block, wait for nothing
        got = model.device_windows({"first_chunk": 50, "chunks": 64})
    assert recorder.reads == []
    block, keys, key_tensor, _ = model._block
    if triton:  # the specification
        want = device_sampling.step_windows(block, 50, 64, 1, model.hparams.window, True, keys.window)
    else:  # the kernel
        first = torch.tensor([50], device=DEVICE)
        want = dict(zip(("centers", "contexts", "mask"), sampling_triton.step_windows(
            block.seq, block.docs, block.bounds, block.order, key_tensor, first, 64, 1, model.hparams.window, True)))
    assert all(torch.equal(got[name], want[name]) for name in want)
