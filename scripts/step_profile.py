"""Where a training step's time goes: a callback that profiles a few steps of a real run with
torch.profiler and writes a short report beside the run, `step_profile.md`.

    w2v-train trainer=gpu model=cbow trainer.max_epochs=1 \\
        +callbacks.step_profile._target_=scripts.step_profile.StepProfile \\
        '+callbacks.step_profile.path=${paths.output_dir}/step_profile.md'
    python scripts/gpu_benchmark.py --runs cbow,skipgram --profile-steps 20

(from the repository's root, which must be on the path: `PYTHONPATH=.` for w2v-train). The report
gives, per step: the wall time (the device waited for at both ends), the host's time from the
batch's start to its end, the device's busy time (its kernels and copies, summed), the kernels
run and the launches that ran them (a CUDA graph's replay is one launch), and the host's waits
for the device (a value read back, a synchronous copy); then the kernels that take most of the
device's time. On a CPU, which has no device time, the reads of values that would wait on a GPU,
and the operations that take most of the host's. A step whose device is busy for much less than
its wall time is bound by the host (launches, Python, the training loop) or by its waits, not by
its kernels. The profiler itself adds host time to every operation, more to an eager step's many
than to a graph's replay.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from pathlib import Path

import lightning as L
import torch
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile

from w2v.fileio import atomic_write

log = logging.getLogger(__name__)

# The CUDA runtime's calls in which the host waits for the device (a value read back is a copy and a
# stream synchronisation); the profile's own closing cudaDeviceSynchronize is not among them.
WAITS = ("cudaStreamSynchronize", "cudaEventSynchronize", "cudaMemcpy")
# On a CPU, the reads of a value that would wait on a GPU.
READS = ("aten::_local_scalar_dense",)
# The host's launches of device work, as the CUDA runtime and driver calls are named: a captured
# graph's replay is one launch, however many kernels it holds.
LAUNCHES = ("cudaLaunchKernel", "cudaLaunchKernelExC", "cuLaunchKernel", "cuLaunchKernelEx", "cudaGraphLaunch",
            "cudaMemsetAsync", "cudaMemcpyAsync")


class StepProfile(L.Callback):
    """Profiles steps `start`..`start + steps - 1` of the run's first epoch and writes the report
    to `path` (a Markdown table; see the module's docstring), keeping it in `report` too; `top`:
    the kernels (or operations) it lists. An epoch of fewer steps has its last `steps` profiled,
    or all but its first.
    The profiler adds host time to every operation: compare the wall time a step with that of the
    run's words/s, unprofiled."""

    def __init__(self, path: str, start: int = 50, steps: int = 20, top: int = 12):
        if start < 0 or steps < 1 or top < 1:
            raise ValueError(f"StepProfile: start ({start}) must be at least 0, steps ({steps}) and top ({top}) at "
                             "least 1")
        self.path, self.start, self.steps, self.top = Path(path), start, steps, top
        self.report: str | None = None
        self._profiler: profile | None = None
        self._host: list[float] = []  # each profiled step's host seconds, batch start to batch end
        self._began = self._step_began = 0.0
        self._epoch = 0
        self._start = start  # `start`, or earlier in an epoch too short for it

    def on_train_start(self, trainer, pl_module) -> None:
        self._epoch = trainer.current_epoch  # the run's first epoch (a resumed run's is not 0)
        batches = trainer.num_training_batches
        if batches != float("inf"):  # a short epoch: its last steps, but its first (kernels compile there)
            self._start = min(self.start, max(min(1, int(batches) - 1), int(batches) - self.steps))

    def on_train_end(self, trainer, pl_module) -> None:
        if self.report is None:
            log.warning("step profile: no step was profiled (the first epoch ended before step %d)", self._start)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self._profiler is not None:
            self._step_began = time.perf_counter()
        elif trainer.current_epoch == self._epoch and batch_idx == self._start:
            self._synchronize(pl_module)  # the steps queued before are not this profile's
            cuda = pl_module.device.type == "cuda"
            self._profiler = profile(activities=[ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else []))
            self._profiler.start()
            self._began = self._step_began = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self._profiler is None or self.report is not None:
            return
        self._host.append(time.perf_counter() - self._step_began)
        if len(self._host) == self.steps:
            self._finish(pl_module)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if self._profiler is not None and self.report is None:  # the epoch had fewer steps than asked for
            self._finish(pl_module)

    @staticmethod
    def _synchronize(pl_module) -> None:
        if pl_module.device.type == "cuda":
            torch.cuda.synchronize(pl_module.device)

    def _finish(self, pl_module) -> None:
        self._synchronize(pl_module)  # cudaDeviceSynchronize: not among WAITS, which count the step's own
        wall = time.perf_counter() - self._began
        self._profiler.stop()
        self.report = profile_report(self._profiler.events(), len(self._host), wall, sum(self._host), self.top,
                                     pl_module.device.type == "cuda")
        with atomic_write(self.path) as out:
            out.write(self.report)
        log.info("step profile (%s):\n%s", self.path, self.report)


def profile_report(events, steps: int, wall: float, host: float, top: int, cuda: bool) -> str:
    """The report of `steps` profiled steps from their profiler `events`, their `wall` and summed
    `host` seconds: a summary line each and the `top` kernels (CUDA) or operations (CPU)."""
    device_events = [e for e in events if e.device_type == DeviceType.CUDA]
    waits = sum(e.name in (WAITS if cuda else READS) for e in events)
    launches = sum(e.name in LAUNCHES for e in events)
    busy = sum(e.time_range.elapsed_us() for e in device_events) / 1e6
    per_step = 1e3 / steps  # seconds in total -> ms per step
    lines = [f"{steps} steps profiled", "",
             "| per step | |", "|---|---|",
             f"| wall | {wall * per_step:.3f} ms |",
             f"| host, batch start to end | {host * per_step:.3f} ms |"]
    if cuda:
        lines += [f"| device busy | {busy * per_step:.3f} ms ({busy / wall:.0%} of the wall time) |",
                  f"| kernels and copies run | {len(device_events) / steps:.1f} |",
                  f"| launches by the host (a graph's replay: one) | {launches / steps:.1f} |"]
    lines += [f"| waits for the device | {waits / steps:.1f} |" if cuda else
              f"| reads of values (on a GPU, each a wait) | {waits / steps:.1f} |", ""]
    # by self time: the kernels' own (CUDA), or each operation's own host time without its children's (CPU)
    totals: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    for event in device_events if cuda else (e for e in events if e.device_type == DeviceType.CPU):
        entry = totals[event.name]
        entry[0] += 1
        entry[1] += event.time_range.elapsed_us() if cuda else event.self_cpu_time_total
    spent = sum(t for _, t in totals.values()) or 1.0
    lines += [f"| {'kernel' if cuda else 'operation'} | calls a step | µs a step | share |", "|---|---|---|---|"]
    for name, (calls, micros) in sorted(totals.items(), key=lambda item: -item[1][1])[:top]:
        shown = name if len(name) <= 70 else name[:67] + "..."
        lines.append(f"| {shown.replace('|', '/')} | {calls / steps:.1f} | {micros / steps:.1f} | {micros / spent:.0%} |")
    return "\n".join(lines) + "\n"
