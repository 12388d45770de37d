"""Interrupted runs: Ctrl-C or SIGTERM mid-epoch leaves a checkpoint, and resuming ends where the whole run would."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from scripts.forked_runs import run
from w2v.errors import ConfigError
from w2v.resume import CHECKPOINT_NAME, resolve_checkpoint, resume_overrides


def _command(planted_corpus: Path, run_dir: Path, *extra: str) -> list[str]:
    # Small batches: an epoch of 375 steps, long enough to be interrupted in its middle.
    return ["train", "data=text", f"data.path={planted_corpus}", "data.batch_size=64",
            "data.tokenizer.n_process=1", "data.vocab.min_count=1", "model.compile=false", "trainer.max_epochs=2",
            "trainer.enable_progress_bar=false", "callbacks.tsne=null", "callbacks.projector=null",
            f"hydra.run.dir={run_dir}", *extra]


def _env(tmp_path: Path) -> dict[str, str]:
    # PYTHONPATH: the repository, for the tests' own callbacks (tests/helpers.py)
    return {**os.environ, "W2V_CACHE_DIR": str(tmp_path / "cache"), "PYTHONPATH": str(Path(__file__).resolve().parents[1])}


def _run(argv: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    """`w2v ARGV`, forked from a process that has imported w2v (scripts/forked_runs.py)."""
    return run(argv, tmp_path, _env(tmp_path))


@pytest.fixture(scope="module")
def uninterrupted_vectors(tmp_path_factory, planted_corpus) -> bytes:
    tmp_path = tmp_path_factory.mktemp("whole")
    reference = _run(_command(planted_corpus, tmp_path / "run"), tmp_path)
    assert reference.returncode == 0, reference.stderr[-3000:]
    return (tmp_path / "run" / "vectors.txt").read_bytes()


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_run_resumes_to_the_vectors_of_an_uninterrupted_one(tmp_path, planted_corpus, signum,
                                                                          uninterrupted_vectors):
    first, resumed = tmp_path / "first", tmp_path / "resumed"
    # The signal arrives at the end of batch 150 of the first epoch (of 375), from a callback of
    # the run itself: GracefulStop, ahead of it in the list, sees it at the next batch's end.
    signal_at = ["+callbacks.signal_at._target_=tests.helpers.SignalAtBatch", "+callbacks.signal_at.batch=150",
                 f"+callbacks.signal_at.signum={int(signum)}"]
    done = _run(_command(planted_corpus, first, *signal_at), tmp_path)
    output = done.stdout + done.stderr
    assert done.returncode == 128 + signum, output[-3000:]
    stop = re.search(r"stopped in epoch (\d) after batch (\d+) of (\d+)", output)
    assert stop, output[-3000:]
    epoch, batch, batches = map(int, stop.groups())
    assert epoch == 0 and batch == 152 and batch < batches  # mid-epoch, at the step the signal came (1-based)
    assert (first / CHECKPOINT_NAME).is_file() and not (first / "vectors.txt").exists()

    # The run directory alone is enough: the resumed run takes the interrupted run's overrides.
    done = _run(["train", f"ckpt_path={first}", f"hydra.run.dir={resumed}"], tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert f"Resuming epoch {epoch} at batch {batch}" in done.stdout + done.stderr
    assert OmegaConf.load(resumed / "config.yaml").data.batch_size == 64
    assert OmegaConf.load(resumed / "metrics.json")["epochs"] == 2
    vectors = (resumed / "vectors.txt").read_text().splitlines()
    assert len(vectors) == 1 + int(vectors[0].split()[0]) == 1 + 36
    assert (resumed / "vectors.txt").read_bytes() == uninterrupted_vectors
    names = [sorted(p.name for p in (run / "tensorboard").iterdir() if p.is_dir()) for run in (first, resumed)]
    assert names[0] == names[1] and names[0][0].startswith("data=text,")  # named by the overrides it continues


def test_checkpoint_lookup(tmp_path):
    with pytest.raises(ConfigError, match="ckpt_path=last: no interrupted run"):
        resolve_checkpoint("last", tmp_path)
    with pytest.raises(ConfigError, match="pass a run directory holding last.ckpt"):
        resolve_checkpoint(str(tmp_path), tmp_path)
    older, newer = tmp_path / "runs" / "a" / CHECKPOINT_NAME, tmp_path / "multiruns" / "b" / "0" / CHECKPOINT_NAME
    finished = tmp_path / "runs" / "c" / CHECKPOINT_NAME
    for path, mtime in ((older, 1_000), (newer, 2_000), (finished, 3_000)):
        path.parent.mkdir(parents=True)
        path.write_bytes(b"x")
        os.utime(path, (mtime, mtime))
    (finished.parent / "metrics.json").write_text("{}")
    assert resolve_checkpoint("last", tmp_path) == newer  # the newest run that did not finish
    assert resolve_checkpoint(str(older.parent), tmp_path) == older
    assert resolve_checkpoint(None, tmp_path) is None


def test_resume_overrides_update_the_interrupted_runs(tmp_path):
    (tmp_path / ".hydra").mkdir()
    OmegaConf.save(OmegaConf.create(["model=cbow", "trainer.max_epochs=3", "data.batch_size=64"]),
                   tmp_path / ".hydra" / "overrides.yaml")
    merged = resume_overrides(tmp_path, ["trainer.max_epochs=5", "ckpt_path=last"])
    assert merged == ["model=cbow", "trainer.max_epochs=5", "data.batch_size=64", "ckpt_path=last"]
    assert resume_overrides(tmp_path / "elsewhere", []) is None


def test_resuming_with_other_model_settings_is_a_clear_error(make_cfg, tmp_path):
    from w2v.training import check_resumable

    run = tmp_path / "run0"
    run.mkdir()
    OmegaConf.save(make_cfg(), run / "config.yaml", resolve=True)
    check_resumable(make_cfg(["trainer.max_epochs=4"]), run / CHECKPOINT_NAME)  # training longer is fine
    with pytest.raises(ConfigError, match=r"its run had model.window=5, this one model.window=3; resume with "
                                          r"model.window=5, or start"):
        check_resumable(make_cfg(["model.window=3"]), run / CHECKPOINT_NAME)
    # A run saved before data.shuffle_unit (it shuffled positions): every difference and its fix in one line.
    saved = make_cfg()
    del saved.data.shuffle_unit
    OmegaConf.save(saved, run / "config.yaml", resolve=True)
    with pytest.raises(ConfigError, match=r"its run had data.shuffle_unit='position', model.window=5, this one "
                                          r"data.shuffle_unit='auto', model.window=3; resume with "
                                          r"data.shuffle_unit=position model.window=5, or start") as err:
        check_resumable(make_cfg(["model.window=3"]), run / CHECKPOINT_NAME)
    assert "\n" not in str(err.value)


def test_resuming_past_the_epochs_to_train_is_a_clear_error(tmp_path):
    """Lightning stops with a traceback when a checkpoint's epoch is past trainer.max_epochs."""
    from w2v.training import check_epochs_left

    checkpoint = tmp_path / CHECKPOINT_NAME
    for epoch, max_epochs in ((60, 60), (60, 61), (60, None), (60, -1), (None, 3)):
        check_epochs_left(epoch, max_epochs, checkpoint)  # epochs left, or none to finish: no error
    with pytest.raises(ConfigError, match=r"its run stopped in epoch 60, past trainer.max_epochs=3; resume with "
                                          r"trainer.max_epochs above 60, or without it"):
        check_epochs_left(60, 3, checkpoint)


def _run_dir(path: Path, overrides: list[str], resumed: Path | None = None, *files: str) -> Path:
    """A run's directory as w2v train leaves it: its command line, its config's ckpt_path (resolved)."""
    (path / ".hydra").mkdir(parents=True)
    OmegaConf.save(OmegaConf.create(overrides), path / ".hydra" / "overrides.yaml")
    (path / "config.yaml").write_text(f"ckpt_path: {resumed if resumed else 'null'}\nseed: 42\n")
    for name in files:
        (path / name).write_text("{}")
    return path


def test_a_run_resumed_twice_keeps_its_first_command_lines_settings(tmp_path):
    first = _run_dir(tmp_path / "a", ["data=text", "data.path=c.txt", "trainer.max_epochs=20"], None, CHECKPOINT_NAME)
    second = _run_dir(tmp_path / "b", ["ckpt_path=last", "trainer.max_epochs=30"], first / CHECKPOINT_NAME,
                      CHECKPOINT_NAME)
    assert resume_overrides(second, [f"ckpt_path={second}"]) == [
        "data=text", "data.path=c.txt", "trainer.max_epochs=30", f"ckpt_path={second}"]
    # A rerun of it trains anew from those settings, without resuming anything.
    from w2v.training import _rerun_overrides

    assert _rerun_overrides([f"rerun={second}", "seed=1"])[2] == [
        "data=text", "data.path=c.txt", "trainer.max_epochs=30", "seed=1"]


@pytest.mark.parametrize("second_left, last", [((CHECKPOINT_NAME,), "b"), ((CHECKPOINT_NAME, "metrics.json"), None),
                                               ((), "a")])
def test_last_is_not_a_run_that_a_later_one_took_further(tmp_path, second_left, last):
    """a stopped; b resumed it: interrupted again (b is the one to resume), finished (none is), or
    killed before its first checkpoint (a still is)."""
    first = _run_dir(tmp_path / "a", ["model=cbow"], None, CHECKPOINT_NAME)
    _run_dir(tmp_path / "b", ["ckpt_path=last"], first / CHECKPOINT_NAME, *second_left)
    if last is None:
        with pytest.raises(ConfigError, match="ckpt_path=last: no interrupted run"):
            resolve_checkpoint("last", tmp_path)
    else:
        assert resolve_checkpoint("last", tmp_path) == tmp_path / last / CHECKPOINT_NAME
