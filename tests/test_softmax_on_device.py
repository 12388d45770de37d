"""The full softmax's GPU step, run on the CPU: windows drawn on the device from a corpus block
(`model.sampling=device`, `device_sampling.step_windows`), and the padded inputs in fixed shapes
with dense Adam (`FullSoftmaxModule.padded_inputs`, `DeferredAdam.settle`)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from tests.conftest import planted_neighbour_share
from w2v.api import build_model
from w2v.data.sampling import keep_probabilities
from w2v.data.vocab import Vocabulary
from w2v.errors import ConfigError
from w2v.kernels.device_sampling import StreamKeys, chunk_examples, prepare_block, step_windows
from w2v.models import losses
from w2v.models.full_softmax import FullSoftmaxModule
from w2v.models.skipgram import distinct_counted
from w2v.training import train

# Operations whose output size or value the host must read, which on a GPU waits for the device.
HOST_READS = {"nonzero", "_local_scalar_dense", "_unique", "_unique2", "unique_dim", "unique_consecutive",
              "masked_select", "masked_scatter"}


class HostReads(TorchDispatchMode):
    """Records the operations of a piece of code that would make a GPU's host wait for the device:
    HOST_READS, indexing by a boolean mask, and repeat_interleave by counts without output_size."""

    def __init__(self):
        super().__init__()
        self.reads: list[str] = []

    def __enter__(self):
        tolist = torch.Tensor.tolist  # reads a CPU tensor's memory below the dispatcher: wrapped

        def recorded(tensor):
            self.reads.append("tolist")
            return tolist(tensor)

        self._tolist, torch.Tensor.tolist = tolist, recorded
        return super().__enter__()

    def __exit__(self, *exc):
        torch.Tensor.tolist = self._tolist
        return super().__exit__(*exc)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = func.overloadpacket.__name__
        by_mask = name in ("index", "index_put", "index_put_") and any(
            i is not None and i.dtype == torch.bool for i in args[1])
        by_counts = name == "repeat_interleave" and "Tensor" in func._overloadname and kwargs.get("output_size") is None
        if name in HOST_READS or by_mask or by_counts:
            self.reads.append(name)
        return func(*args, **kwargs)


def small_block(chunk_tokens: int, subsample: float | None = 0.005, device="cpu"):
    """A corpus block of 300 positions in four documents (one of a single token) on `device`,
    subsampled (at 0.005 about half kept) or, with None, not; and its keys."""
    rng = np.random.default_rng(2)
    counts = rng.integers(1, 100, 30)
    ids = torch.from_numpy(rng.choice(np.arange(2, 30), 300)).int()
    offsets = torch.tensor([0, 50, 51, 120, 300])  # a one-token document among them
    keep = None if subsample is None else torch.from_numpy(keep_probabilities(counts, subsample)).float().to(device)
    keys = StreamKeys.for_block(seed=4, epoch=1, block=0)
    return prepare_block(ids.to(device), offsets.to(device), keep, chunk_tokens, keys), keys


@pytest.mark.parametrize("shrink", [True, False])
def test_a_steps_windows_are_its_chunks_windows_padded_to_a_fixed_shape(shrink):
    block, keys = small_block(chunk_tokens=8)
    first, chunks, window = 3, 5, 3
    got = step_windows(block, first, chunks, 8, window, shrink, keys.window)
    assert got["centers"].shape == (chunks * 8,) and got["contexts"].shape == got["mask"].shape == (chunks * 8, 2 * window)
    tables = torch.ones(30), torch.arange(30, dtype=torch.int32)  # noise words: not part of the windows
    kept = 0
    for i, chunk in enumerate(block.order[first:first + chunks].tolist()):
        want = chunk_examples(block, chunk, window, shrink, 1, keys, *tables)
        n = len(want["centers"])
        part = slice(i * 8, i * 8 + n)
        assert torch.equal(got["centers"][part], want["centers"])
        assert torch.equal(got["mask"][part], want["mask"])
        assert torch.equal(torch.where(want["mask"], got["contexts"][part], 0), torch.where(want["mask"], want["contexts"], 0))
        assert not got["mask"][i * 8 + n:(i + 1) * 8].any()  # the chunk's slots past its kept tokens: padding
        kept += n
    assert 0 < kept < chunks * 8  # subsampling left some slots empty
    assert block.seq[-1] == 0 and block.docs[-1] == -1  # the padding's spare slot: word 0, no document


@pytest.mark.parametrize("n", [0, 1, 7, 300])
def test_distinct_counted_is_unique_in_fixed_shapes_without_a_host_read(n):
    values = torch.randint(0, 20, (n,), generator=torch.Generator().manual_seed(n))
    with HostReads() as recorder:
        words, inverse, count = distinct_counted(values)
    assert recorder.reads == []
    want, want_inverse = torch.unique(values, return_inverse=True)
    assert words.shape == inverse.shape == (n,) and count.dtype == torch.int32 and int(count) == len(want)
    assert torch.equal(words[:len(want)], want) and torch.equal(inverse, want_inverse)


def _device_run(make_cfg, tmp_path, name, *extra):
    cfg = make_cfg(["model=cbow", "model.sampling=device", "trainer.max_epochs=2", *extra], output_dir=tmp_path / name)
    return train(cfg)


def test_windows_drawn_on_the_device_cover_each_epochs_positions_in_steps_of_the_batch_size(make_cfg, tmp_path):
    result = _device_run(make_cfg, tmp_path, "run")
    model = result["model"]
    assert model.draws_on_device() and not model.padded_inputs()  # a CPU steps on the flat inputs
    positions = int(sum(result["datamodule"].corpus.block_sizes))
    assert result["trainer"].global_step == 2 * -(-positions // 256)  # data.batch_size=256 positions a step
    again = _device_run(make_cfg, tmp_path, "again")
    assert (result["output_dir"] / "vectors.txt").read_bytes() == (again["output_dir"] / "vectors.txt").read_bytes()
    other = _device_run(make_cfg, tmp_path, "other", "seed=5")
    assert (result["output_dir"] / "vectors.txt").read_bytes() != (other["output_dir"] / "vectors.txt").read_bytes()


@pytest.mark.parametrize("arch", ["cbow", "skipgram"])
def test_the_padded_step_with_dense_adam_trains_the_planted_classes(make_cfg, tmp_path, arch, monkeypatch):
    """A GPU's whole path on the CPU: windows drawn on the device, the padded step, dense Adam."""
    monkeypatch.setattr(FullSoftmaxModule, "padded_inputs", lambda self: True)
    cfg = make_cfg([f"model={arch}", "model.sampling=device", "trainer.max_epochs=5",
                    "callbacks.neighbours.probe_words=[cat,red]"])
    result = train(cfg)
    model = result["model"]
    share = planted_neighbour_share(model.word_vectors())
    assert share >= 0.9, f"{arch}: only {share:.0%} of the top-5 neighbours share the planted class"
    state = model.trainer.optimizers[0].state[model.in_embed.weight]
    assert "last" not in state and int(state["step"]) == result["trainer"].global_step  # dense Adam every step


def test_sampling_on_the_device_refuses_the_notebooks_batching(make_cfg):
    with pytest.raises(ConfigError, match="cannot feed a model that draws its own samples.*model.sampling=loader"):
        train(make_cfg(["model=cbow", "model.sampling=device", "data.batching=examples"]))


def test_sampling_on_the_device_refuses_the_loaders_shuffle_unit(make_cfg):
    with pytest.raises(ConfigError, match="data.shuffle_unit=document orders the data loader's.*model.sampling=loader"):
        train(make_cfg(["model=skipgram", "model.sampling=device", "data.shuffle_unit=document"]))


def test_an_unknown_sampling_is_a_clear_error(make_cfg):
    with pytest.raises(ConfigError, match="model.sampling='gpu' is unknown; use auto"):
        train(make_cfg(["model=skipgram", "model.sampling=gpu"]))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("arch", ["cbow", "skipgram"])
def test_on_cuda_the_full_softmax_draws_its_windows_and_steps_in_fixed_shapes(make_cfg, arch):
    cfg = make_cfg(["trainer=gpu", f"model={arch}", "trainer.max_epochs=5", "callbacks.neighbours.probe_words=[cat,red]"])
    result = train(cfg)
    model = result["model"]
    assert model.draws_on_device() and model.padded_inputs() and model.fused_step()  # model.sampling=auto, model.kernels=auto on CUDA
    share = planted_neighbour_share(model.word_vectors())
    assert share >= 0.9, f"{arch}: only {share:.0%} of the top-5 neighbours share the planted class"


def _host_reads(code) -> list[str]:
    with HostReads() as recorder:
        code()
    return recorder.reads


@pytest.mark.parametrize("arch", ["cbow", "skipgram"])
def test_the_padded_step_and_its_windows_leave_the_host_nothing_to_wait_for(arch, monkeypatch):
    """What a GPU's step runs, recorded on the CPU: drawing the windows and PyTorch's padded step
    read nothing back from the device, but Skip-gram's count of distinct centers (the fused step's
    counts them on the device: test_softmax_triton.py); the flat inputs do."""
    monkeypatch.setattr(losses, "_softmax_cross_entropy_base2", lambda hidden, weight, bias, rows, targets,
                        scratch=None, operand=None: losses._softmax_cross_entropy_fixed(hidden, weight, bias, rows, targets))
    block, keys = small_block(chunk_tokens=1)
    assert _host_reads(lambda: small_block(chunk_tokens=1)) == []  # subsampling, compaction, chunk order
    batch = {}
    assert _host_reads(lambda: batch.update(step_windows(block, 10, 64, 1, 3, True, keys.window))) == []
    vocab = Vocabulary([f"w{i}" for i in range(30)], [5] * 30)
    model = build_model(vocab, f"model={arch}", "model.embedding_dim=8", "model.window=3")
    assert len(torch.unique(batch["centers"])) > 16
    for chunk in (64, 16):  # the step's softmax rows in one chunk, or in several
        monkeypatch.setattr("w2v.models.full_softmax.softmax_chunk", lambda device, vocab_size: chunk)
        padded = _host_reads(lambda: model.backward_by_hand(batch, padded=True))
        assert padded == ([] if arch == "cbow" else ["_unique2"])  # Skip-gram: a softmax row a distinct center
        assert "index" in _host_reads(lambda: model.backward_by_hand(batch, padded=False))  # the flat inputs' masks
