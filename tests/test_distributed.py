"""Data-parallel training: the combined SGNS update against a one-process reference, and 2-process DDP runs."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from tests.conftest import planted_neighbour_share
from w2v.models.binary_output import RowChanges, damped_row_update
from w2v.distributed import average_gradients, gather_row_updates
from w2v.vectors import WordVectors

pytestmark = pytest.mark.slow  # processes talking through gloo

VOCAB, DIM, LR = 12, 4, 0.5


def _update(rank: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Process `rank`'s batch update: rows with repeats, and rows the other process also touches."""
    generator = torch.Generator().manual_seed(rank)
    rows = torch.randint(0, VOCAB, (9 + 4 * rank,), generator=generator)  # the ranks' batches differ in size
    return rows, torch.randn(len(rows), DIM, generator=generator), torch.rand(len(rows), generator=generator)


def _gradients(rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Process `rank`'s gradients: sparse rows with repeats (none at all on rank 1), and a dense one."""
    generator = torch.Generator().manual_seed(10 + rank)
    rows = torch.randint(0, VOCAB, (7,), generator=generator) if rank == 0 else torch.zeros(0, dtype=torch.long)
    sparse = torch.sparse_coo_tensor(rows.unsqueeze(0), torch.randn(len(rows), DIM, generator=generator), (VOCAB, DIM))
    return sparse, torch.randn(VOCAB, generator=generator)


def _changes(rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Process `rank`'s changes by the sequential rule: rows with repeats (its shards') and unused entries (-1)."""
    generator = torch.Generator().manual_seed(20 + rank)
    rows = torch.randint(-1, VOCAB, (8,), generator=generator)
    return rows, torch.randn(len(rows), DIM, generator=generator)


def _collectives_on_rank(rank: int, world: int, init_file: str, out: str) -> None:
    """The collectives of a data-parallel step, on this process's share: the row updates of the
    hand-written SGD step by either rule, and the gradients of the autograd path."""
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    weight = torch.ones(VOCAB, DIM)
    damped_row_update(weight, *gather_row_updates(*_update(rank)), LR)
    changed = torch.ones(VOCAB, DIM)
    RowChanges(*_changes(rank)).gathered().apply(changed, LR, threads=1)
    embedding, bias = torch.zeros(VOCAB, DIM, requires_grad=True), torch.zeros(VOCAB, requires_grad=True)
    embedding.grad, bias.grad = _gradients(rank)
    average_gradients([embedding, bias])
    torch.save((weight, changed, embedding.grad.to_dense(), bias.grad), f"{out}.{rank}")
    dist.destroy_process_group()


def test_collectives_equal_one_process_doing_both_processes_work(tmp_path):
    mp.spawn(_collectives_on_rank, args=(2, str(tmp_path / "init"), str(tmp_path / "out")), nprocs=2)
    # The gathered update equals the update of the joined batch, made by one process.
    joined = [torch.cat(parts) for parts in zip(_update(0), _update(1))]
    expected = torch.ones(VOCAB, DIM)
    damped_row_update(expected, *joined, LR)
    # The averaged gradients are the mean of the processes' gradients (sparse rows, and none on rank 1).
    sparse = [_gradients(rank)[0].to_dense() for rank in range(2)]
    dense = [_gradients(rank)[1] for rank in range(2)]
    # The gathered changes are every process's, added once each (unused entries left out).
    expected_changed = torch.ones(VOCAB, DIM)
    for rank in range(2):
        rows, deltas = _changes(rank)
        expected_changed.index_add_(0, rows[rows >= 0], deltas[rows >= 0])
    for rank in range(2):
        weight, changed, embedding, bias = torch.load(tmp_path / f"out.{rank}")
        assert torch.allclose(weight, expected, atol=1e-6)
        assert torch.allclose(changed, expected_changed, atol=1e-5)
        assert torch.allclose(embedding, (sparse[0] + sparse[1]) / 2, atol=1e-6)
        assert torch.allclose(bias, (dense[0] + dense[1]) / 2, atol=1e-6)


def _free_ports(count: int) -> list[int]:
    """`count` distinct ports free now: runs started together must not pick the same one."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]


def _start_ddp_run(tmp_path, planted_corpus, run, overrides=("model.compile=false",), port=None) -> subprocess.Popen:
    # PYTHONFAULTHANDLER: a process that dies in native code still prints its Python stack.
    env = {**os.environ, "W2V_CACHE_DIR": str(tmp_path / "cache"), "PYTHONFAULTHANDLER": "1",
           "MASTER_PORT": str(port or _free_ports(1)[0])}
    return subprocess.Popen(
        [sys.executable, "-m", "w2v", "train", "trainer=ddp", "data=text", f"data.path={planted_corpus}", "data.batch_size=500",
         "data.tokenizer.n_process=1", "data.vocab.min_count=1", *overrides, "trainer.max_epochs=3",
         "trainer.enable_progress_bar=false", "callbacks.tsne=null", f"hydra.run.dir={run}"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(process: subprocess.Popen) -> subprocess.CompletedProcess:
    try:
        stdout, stderr = process.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def _failure(done: subprocess.CompletedProcess) -> str:
    """A failed run's report: the error lines of both processes, which share stderr (the end of the
    output alone would show only the last process to fail), then the end of the output."""
    errors = [line for line in done.stderr.splitlines()
              if "Error" in line or "Fatal Python error" in line or "File " in line or "Signals" in line]
    return "\n".join(errors[-60:]) + "\n--- end of the output ---\n" + done.stdout[-2000:] + done.stderr[-2000:]


def test_ddp_run_on_two_cpu_processes(tmp_path, planted_corpus):
    run, again = tmp_path / "run", tmp_path / "again"
    # Two runs of the same seed at once (each waits while its second process starts): same vectors.
    ports = _free_ports(2)
    started = [_start_ddp_run(tmp_path, planted_corpus, folder, port=port) for folder, port in zip((run, again), ports)]
    done, done_again = map(_finish, started)
    assert done.returncode == 0, _failure(done)
    logs = done.stdout + done.stderr
    assert "GLOBAL_RANK: 1, MEMBER: 2/2" in logs  # two processes, one run directory
    assert logs.count("Saved vectors") == 1 and logs.count("epoch 2: 24,000 words") == 1  # rank 0 writes; ranks share the corpus
    assert sorted(p.name for p in run.iterdir() if p.is_file() and not p.name.startswith(".")) == [
        "config.yaml", "last.ckpt", "metrics.json", "train.log", "train_ddp_process_1.log", "vectors.txt", "vocab.tsv"]
    vectors = WordVectors.load_word2vec_format(run / "vectors.txt")
    assert planted_neighbour_share(vectors) >= 0.9
    assert done_again.returncode == 0, _failure(done_again)
    assert (again / "vectors.txt").read_bytes() == (run / "vectors.txt").read_bytes()


def test_ddp_run_of_a_full_softmax_model(tmp_path, planted_corpus):
    # CBOW and Skip-gram train with hand-written gradients, which the processes average
    # (Skip-gram's sparse ones too) before the optimizer's step: every optimizer then steps alike.
    run = tmp_path / "run"
    done = _finish(_start_ddp_run(tmp_path, planted_corpus, run, ["model=skipgram"]))
    assert done.returncode == 0, _failure(done)
    assert "GLOBAL_RANK: 1, MEMBER: 2/2" in done.stdout + done.stderr
    assert planted_neighbour_share(WordVectors.load_word2vec_format(run / "vectors.txt")) >= 0.9
