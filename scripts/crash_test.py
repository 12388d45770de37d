"""Crash test: runs killed outright (SIGKILL) at random moments of every phase leave nothing half-written.

    python scripts/crash_test.py                       # 50 kills, seed 0
    python scripts/crash_test.py --runs 5 --seed 1     # the short version the test suite runs

Each kill's run is `w2v train` on the first 200 IMDb reviews (the archive in W2V_DATA_DIR, else
../shared/data), 2 epochs of about 140 batches, in a folder of its own. Its whole process group gets
SIGKILL, as from the out-of-memory killer or a power cut, at a moment drawn within one phase:

- archive, tokenize: while the cache entry is built from the archive (first half, second half);
- cache: as the entry's last files are written (offsets, counts, words, checksums);
- train: a random moment of the training steps;
- checkpoint: while a checkpoint is being written (its temporary file exists);
- export: while the vectors are being written;
- sweep: two runs of a sweep started together on a cold cache, one of them killed at a random
  moment; the other must finish.

The runs are forks of one server process that imported w2v once (scripts/forked_runs.py): each
runs `w2v train` from its start as the command would, without paying the imports again.
The phases come in a seeded shuffled order, so a few kills cover different phases. After each
kill the script checks that:
1. every cache entry passes its size and checksum checks (a folder left mid-build is not an entry);
2. vectors.txt, vocab.tsv, metrics.json, config.yaml and last.ckpt, where present, are whole;
3. `w2v train ckpt_path=last` resumes the killed run to a complete one, or, when it left no
   checkpoint to resume, stops with one `error:` line and no traceback;
4. a fresh run, started with the resumed one, succeeds.
It prints a line per kill and `K/N clean`, and exits with status 1 on any violation. A kill that
came too late for its phase (the run ended first) still has its files checked and is counted apart.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # w2v from this checkout when not installed

from scripts.forked_runs import Run, start  # noqa: E402
from w2v.checkpoints import read_checkpoint  # noqa: E402
from w2v.data.cache import entry_problem  # noqa: E402
from w2v.data.vocab import Vocabulary  # noqa: E402
from w2v.vectors import WordVectors  # noqa: E402

PHASES = ("archive", "tokenize", "cache", "train", "checkpoint", "export", "sweep")
RUN_SETTINGS = ["data.max_docs=200", "data.batch_size=256", "data.tokenizer.n_process=1", "trainer.max_epochs=2",
                "trainer.enable_progress_bar=false", "callbacks.tsne=null", "callbacks.projector=null",
                "callbacks.neighbours=null"]
# Lines of a run's train.log that open its phases.
PREPARE_STARTS, TRAINING_STARTS = "Instantiating datamodule", "stops training after the current batch"
RUN_TIMEOUT = 300


@dataclass
class Calibration:
    """How long a cold run's phases last here, in seconds."""

    prepare: float  # from the datamodule's start to the cached corpus
    training: float  # from the first step to the vectors' export
    total: float  # the whole process


@dataclass
class Trigger:
    """When to kill: `delay` seconds after a line containing `log_line` appears in the run's log, or
    after a file matching `pattern` appears under `folder`."""

    delay: float
    log_line: str | None = None
    folder: Path | None = None
    pattern: str | None = None


@dataclass
class Outcome:
    phase: str
    landed: bool  # the kill came within its phase, before the run ended
    violations: list[str] = field(default_factory=list)


def data_dir() -> Path:
    folder = Path(os.environ.get("W2V_DATA_DIR", REPO.parent / "shared" / "data"))
    if not (folder / "aclImdb_v1.tar.gz").is_file():
        raise SystemExit(f"error: no aclImdb_v1.tar.gz in {folder}; set W2V_DATA_DIR to the folder that holds it")
    return folder


def train_command(outputs: Path, name: str, *extra: str) -> list[str]:
    """The arguments of `w2v` for a run named `name` under `outputs`."""
    return ["train", *RUN_SETTINGS, f"paths.outputs_root={outputs}", f"hydra.run.dir={outputs / name}", *extra]


def environment(cache: Path) -> dict[str, str]:
    return {**os.environ, "W2V_DATA_DIR": str(data_dir()), "W2V_CACHE_DIR": str(cache)}


def start_run(argv: list[str], cache: Path, cwd: Path) -> Run:
    """The run, both its streams in one file of `cwd`."""
    return start(argv, cwd, environment(cache), output=cwd / f"output-{time.monotonic_ns()}.txt")


def finish(run: Run) -> tuple[int, str]:
    status = run.wait(timeout=RUN_TIMEOUT)
    return status, run.output()


def log_lines(run_dir: Path) -> list[str]:
    log = run_dir / "train.log"
    return log.read_text(encoding="utf-8", errors="replace").splitlines() if log.is_file() else []


def kill_when(process: Run, run_dir: Path, trigger: Trigger) -> bool:
    """SIGKILL to the run's process group once `trigger` fires; False if the run ended first."""
    fired_at = None
    while process.poll() is None:
        now = time.monotonic()
        if fired_at is None:
            if trigger.log_line is not None and any(trigger.log_line in line for line in log_lines(run_dir)):
                fired_at = now
            elif trigger.pattern is not None and any(trigger.folder.glob(trigger.pattern)):
                fired_at = now
        if fired_at is not None and now - fired_at >= trigger.delay:
            process.kill()
            return True
        time.sleep(0.0005 if trigger.pattern is not None else 0.005)
    return False


def calibrate(workdir: Path) -> Calibration:
    """Two whole runs, timing their phases from their logs: the preparation of the first, on a cold
    cache, and the training of the second, whose compiled kernels are cached as the kills' runs' are
    (the first run's training also compiles them, and would draw kills past the end of a run)."""
    outputs, cache = workdir / "outputs", workdir / "cache"
    stamps, totals = [], []
    for name in ("cold", "warm"):
        began = time.time()
        status, output = finish(start_run(train_command(outputs, name), cache, workdir))
        totals.append(time.time() - began)
        if status != 0:
            raise SystemExit(f"error: the calibration run failed (exit {status}):\n{output[-3000:]}")
        stamps.append({})
        for line in log_lines(outputs / name):
            for key, marker in (("prepare", PREPARE_STARTS), ("cached", "Cached tokenized corpus"),
                                ("train", TRAINING_STARTS), ("export", "Saved vectors")):
                if marker in line and key not in stamps[-1]:
                    stamps[-1][key] = time.mktime(time.strptime(line[1:20], "%Y-%m-%d %H:%M:%S")) + int(line[21:24]) / 1000
    cold, warm = stamps
    return Calibration(prepare=cold["cached"] - cold["prepare"], training=warm["export"] - warm["train"],
                       total=totals[0])


def trigger_for(phase: str, calibration: Calibration, run_dir: Path, cache: Path, rng: np.random.Generator) -> Trigger:
    if phase == "archive":
        return Trigger(rng.uniform(0, 0.5) * calibration.prepare, log_line=PREPARE_STARTS)
    if phase == "tokenize":
        return Trigger(rng.uniform(0.5, 0.95) * calibration.prepare, log_line=PREPARE_STARTS)
    if phase == "cache":  # the entry's closing writes follow the ids: offsets, counts, words, checksums
        return Trigger(rng.uniform(0, 0.02), folder=cache, pattern=".imdb-*/offsets.npy")
    if phase == "train":
        return Trigger(rng.uniform(0, 1) * calibration.training, log_line=TRAINING_STARTS)
    if phase == "checkpoint":
        return Trigger(rng.uniform(0, 0.003), folder=run_dir, pattern=".last.ckpt.*.tmp")
    if phase == "export":
        return Trigger(rng.uniform(0, 0.003), folder=run_dir, pattern=".vectors.txt.*.tmp")
    raise ValueError(phase)


def file_problems(run_dir: Path) -> list[str]:
    """What is partial among the run's files under their final names."""
    checks = {
        "vectors.txt": WordVectors.load_word2vec_format,
        "vocab.tsv": Vocabulary.load_tsv,
        "metrics.json": lambda p: json.loads(p.read_text()),
        "last.ckpt": read_checkpoint,
        "config.yaml": lambda p: __import__("omegaconf").OmegaConf.load(p),
    }
    problems = []
    for name, check in checks.items():
        path = run_dir / name
        if path.exists():
            try:
                check(path)
            except Exception as err:  # noqa: BLE001  any failure to read it back is a violation
                problems.append(f"{path.name} is partial or unreadable: {str(err).splitlines()[0][:160]}")
    return problems


def cache_problems(cache: Path) -> list[str]:
    if not cache.is_dir():
        return []
    return [f"cache entry {entry.name}: {problem}" for entry in sorted(cache.iterdir())
            if entry.is_dir() and not entry.name.startswith(".") and (problem := entry_problem(entry)) is not None]


def resume_problems(outputs: Path, killed: Path, status: int, output: str) -> list[str]:
    """`ckpt_path=last` either resumed the killed run to a complete one or said in one line why it cannot."""
    resumable = (killed / "last.ckpt").is_file() and not (killed / "metrics.json").exists()
    if resumable:
        if status != 0:
            return [f"ckpt_path=last failed (exit {status}): {output.strip().splitlines()[-1][:200] if output.strip() else ''}"]
        missing = [n for n in ("metrics.json", "vectors.txt") if not (outputs / "resumed" / n).is_file()]
        if missing:
            return [f"the run resumed by ckpt_path=last ended without {' and '.join(missing)}"]
        metrics = json.loads((outputs / "resumed" / "metrics.json").read_text())
        if "eval/simlex999_spearman" not in metrics:
            return ["the run resumed by ckpt_path=last has no final scores in metrics.json"]
        return file_problems(outputs / "resumed")
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    if status == 0 or len(errors) != 1 or "Traceback" in output:
        return [f"ckpt_path=last with nothing to resume: exit {status}, {len(errors)} error lines"
                + (", a traceback" if "Traceback" in output else "")]
    return []


def fresh_problems(outputs: Path, status: int, output: str) -> list[str]:
    """A fresh run under `outputs` ended well and left whole files."""
    if status != 0:
        return [f"a fresh run failed (exit {status}): {output.strip().splitlines()[-1][:200] if output.strip() else ''}"]
    return file_problems(outputs / "fresh") + (
        [] if (outputs / "fresh" / "vectors.txt").is_file() else ["a fresh run wrote no vectors.txt"])


def kill_once(phase: str, calibration: Calibration, folder: Path, shared_cache: Path,
              rng: np.random.Generator) -> Outcome:
    outputs = folder / "outputs"
    # The phases before training need a cold cache; the others share a warm one.
    cache = folder / "cache" if phase in ("archive", "tokenize", "cache", "sweep") else shared_cache
    killed = outputs / "killed"
    if phase == "sweep":
        runs = [start_run(train_command(outputs, name, f"model.window={w}"), cache, folder)
                for name, w in (("killed", 3), ("other", 5))]
        time.sleep(rng.uniform(0, 1) * calibration.total)
        landed = runs[0].poll() is None
        if landed:
            runs[0].kill()
        runs[0].wait()
        status, output = finish(runs[1])
        outcome = Outcome(phase, landed)
        if status != 0:
            outcome.violations.append(f"the other sweep run failed (exit {status}): {output.strip()[-300:]}")
        outcome.violations += file_problems(outputs / "other")
    else:
        process = start_run(train_command(outputs, "killed"), cache, folder)
        outcome = Outcome(phase, kill_when(process, killed, trigger_for(phase, calibration, killed, cache, rng)))
        if not outcome.landed:
            finish(process)
    outcome.violations += cache_problems(cache) + file_problems(killed)
    # The resumed run and a fresh one start together: they share the cache (and its lock) as two
    # runs of a sweep would, and a cache entry the kill left absent is built by one of them. The
    # fresh run's outputs are apart, where `ckpt_path=last` does not look for a run to resume.
    resumed = start_run(train_command(outputs, "resumed", "ckpt_path=last"), cache, folder)
    fresh = start_run(train_command(folder / "fresh", "fresh"), cache, folder)
    outcome.violations += resume_problems(outputs, killed, *finish(resumed))
    outcome.violations += fresh_problems(folder / "fresh", *finish(fresh)) + cache_problems(cache)
    return outcome


def main(argv: list[str] | None = None) -> int:
    """The kill loop; its exit status: 0 when every kill left everything clean."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=50, help="kills to make (default 50)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the phases' order and the kills' moments")
    parser.add_argument("--workdir", type=Path, help="folder for the runs (default: a temporary one, removed after)")
    args = parser.parse_args(argv)
    if args.runs < 1:
        raise SystemExit("error: --runs must be at least 1")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="w2v-crash-"))
    workdir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    try:
        calibration = calibrate(workdir / "calibration")
        print(f"calibration: preparing {calibration.prepare:.1f} s (cold cache), training and export "
              f"{calibration.training:.1f} s (kernels compiled), {calibration.total:.1f} s in all", flush=True)
        phases = [p for _ in range(-(-args.runs // len(PHASES))) for p in rng.permutation(PHASES)][:args.runs]
        outcomes = []
        for i, phase in enumerate(phases):
            began = time.perf_counter()
            outcome = kill_once(str(phase), calibration, workdir / f"kill{i:03d}", workdir / "calibration" / "cache", rng)
            outcomes.append(outcome)
            verdict = "clean" if not outcome.violations else "VIOLATED: " + "; ".join(outcome.violations)
            print(f"kill {i + 1:3d} {outcome.phase:10s} {'in its phase' if outcome.landed else 'after the run ended'}"
                  f" ({time.perf_counter() - began:.0f} s): {verdict}", flush=True)
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    clean = sum(not o.violations for o in outcomes)
    landed = sum(o.landed for o in outcomes)
    print(f"{clean}/{len(outcomes)} clean ({landed} of the kills landed in their phase)")
    return 0 if clean == len(outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
