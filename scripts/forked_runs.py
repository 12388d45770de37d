"""`w2v` commands run as forks of one server process that has imported w2v, Lightning and Hydra once.

Importing PyTorch, Lightning and Hydra takes most of a small run's time. The crash test and the
tests that need a run's whole process (its exit status, its signals, its output) start their runs
here instead of with `python -m w2v`:

    from scripts.forked_runs import run, start
    done = run(["train", "data=text", ...], cwd=tmp_path, env={...})   # a subprocess.CompletedProcess
    started = start(["train", ...], cwd=tmp_path, env={...}); started.kill()

Each fork runs `w2v ARGV` from its start, as the command does: in a session of its own (a kill of
the session reaches every process the run starts), with the environment and folder it is given,
the platform's start method for the processes it starts, and its exit handlers run at its end.
What a fork does not repeat is the interpreter's start-up; the tests of the command's entry point
itself (DDP, which re-launches it, and the scripts of test_reliability) start real processes.
"""

from __future__ import annotations

import atexit
import functools
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

# What `w2v train` imports, not w2v.training itself, which the command runs as __main__ (runpy
# warns when such a module is already imported).
PRELOAD = ["lightning", "hydra", "spacy", "w2v.commands", "w2v.callbacks", "w2v.models", "w2v.data.datamodule", "w2v.resume",
           "w2v.runs", "scripts.forked_runs"]


@functools.cache
def _forkserver() -> multiprocessing.context.BaseContext:
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    return context


def _run_w2v(argv: list[str], cwd: str, env: dict[str, str], stdout: str, stderr: str) -> None:
    """The body of a forked run: `w2v ARGV` in `cwd`, its output appended to the files `stdout` and `stderr`."""
    os.setsid()  # a session of its own, so that a kill of the session reaches every process the run starts
    for fd, path in ((1, stdout), (2, stderr)):
        with open(path, "ab", buffering=0) as sink:
            os.dup2(sink.fileno(), fd)
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    multiprocessing.set_start_method(None, force=True)  # the platform's default, as in a process of its own
    sys.argv = ["w2v", *argv]
    from w2v.commands import cli

    try:
        cli()  # exits with the run's status, or raises what a run that crashes raises
    finally:
        atexit._run_exitfuncs()  # a forked process ends by os._exit, which skips them
        sys.stdout.flush()
        sys.stderr.flush()


class Run:
    """A started `w2v` run: its process, in its own session, and the files that hold its output."""

    def __init__(self, argv: list[str], process: multiprocessing.process.BaseProcess, stdout: Path, stderr: Path):
        self.argv, self.process, self.stdout_path, self.stderr_path = argv, process, stdout, stderr

    @property
    def pid(self) -> int:
        return self.process.pid

    def poll(self) -> int | None:
        """The exit status (negative: the signal that ended it), or None while it runs."""
        return self.process.exitcode

    def kill(self) -> None:
        """SIGKILL to the run's session: the run and every process it started."""
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except ProcessLookupError:  # killed before its first statement made it a session leader
            os.kill(self.pid, signal.SIGKILL)
        self.process.join()

    def wait(self, timeout: float | None = None) -> int:
        """The exit status once the run ends; a run still going after `timeout` seconds is killed."""
        self.process.join(timeout)
        if self.process.exitcode is None:
            self.kill()
            raise subprocess.TimeoutExpired(["w2v", *self.argv], timeout, self.output())
        return self.process.exitcode

    def output(self) -> str:
        """What the run wrote to stdout, then what it wrote to stderr."""
        paths = dict.fromkeys((self.stdout_path, self.stderr_path))  # one file when both streams share it
        return "".join(path.read_text(errors="replace") for path in paths)


def start(argv: list[str], cwd: Path, env: dict[str, str] | None = None, output: Path | None = None) -> Run:
    """`w2v ARGV` started in `cwd` with environment `env` (default: this process's). Its output goes
    to files in `cwd`, or both streams to the file `output`: a pipe that nobody reads while a caller
    waits to kill the run could fill up and stall it."""
    cwd = Path(cwd)
    cwd.mkdir(parents=True, exist_ok=True)
    if output is None:
        stamp = time.monotonic_ns()
        stdout, stderr = cwd / f".w2v-{stamp}.out", cwd / f".w2v-{stamp}.err"
    else:
        stdout = stderr = Path(output)
    for path in {stdout, stderr}:
        path.touch()
    process = _forkserver().Process(target=_run_w2v, args=(list(argv), str(cwd), dict(os.environ if env is None else env),
                                                           str(stdout), str(stderr)))
    process.start()
    return Run(list(argv), process, stdout, stderr)


def run(argv: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """`w2v ARGV` run to its end, as `subprocess.run([... "-m", "w2v", *argv], capture_output=True, text=True)` would."""
    started = start(argv, cwd, env)
    status = started.wait(timeout)
    stdout, stderr = (p.read_text(errors="replace") for p in (started.stdout_path, started.stderr_path))
    for path in (started.stdout_path, started.stderr_path):
        path.unlink(missing_ok=True)
    return subprocess.CompletedProcess(["w2v", *argv], status, stdout, stderr)
