"""scripts/step_profile.py: the callback that profiles a few steps of a real run, here on the CPU."""

from __future__ import annotations

import re

import pytest

from scripts.step_profile import StepProfile, profile_report
from w2v.training import train


def _per_step(report: str, row: str) -> float:
    return float(re.search(rf"\| {row} \| ([0-9.]+)", report).group(1))


@pytest.mark.parametrize("start, steps, profiled", [(2, 3, 3), (5, 100, None), (500, 4, 4)])
def test_a_runs_steps_are_profiled_into_a_report_beside_it(make_cfg, tmp_path, start, steps, profiled):
    """Steps start.. of the first epoch; an epoch shorter than asked for has its last `steps`
    profiled, or all but its first (where the kernels compile)."""
    cfg = make_cfg(["model=cbow", "+callbacks.step_profile._target_=scripts.step_profile.StepProfile",
                    "+callbacks.step_profile.path=${paths.output_dir}/step_profile.md",
                    f"+callbacks.step_profile.start={start}", f"+callbacks.step_profile.steps={steps}",
                    "+callbacks.step_profile.top=5"])
    result = train(cfg)
    report = (result["output_dir"] / "step_profile.md").read_text()
    epoch_steps = result["trainer"].global_step  # one epoch
    assert report.startswith(f"{profiled or epoch_steps - 1} steps profiled")
    assert 0 < _per_step(report, "host, batch start to end") <= _per_step(report, "wall")
    assert "device busy" not in report  # a CPU has no device time: its table lists operations
    operations = re.findall(r"^\| (aten::\S+|[^|]*\S) \| [0-9.]+ \| [0-9.]+ \| \d+% \|$", report, re.MULTILINE)
    assert len(operations) == 5 and any(name.startswith("aten::") for name in operations)


def test_bad_settings_are_one_line_errors(tmp_path):
    with pytest.raises(ValueError, match="start \\(-1\\) must be at least 0, steps \\(1\\) and top \\(1\\) at least 1"):
        StepProfile(str(tmp_path / "p.md"), start=-1, steps=1, top=1)


def test_a_gpus_report_sums_device_time_and_counts_launches_and_waits():
    """profile_report's CUDA branch, on events as torch.profiler gives them (2 steps)."""
    from types import SimpleNamespace

    from torch.autograd import DeviceType

    def event(name, device, micros):
        return SimpleNamespace(name=name, device_type=device, self_cpu_time_total=0.0,
                               time_range=SimpleNamespace(elapsed_us=lambda: micros))

    events = ([event("softmax_rows_kernel", DeviceType.CUDA, 300.0)] * 2
              + [event("index_add", DeviceType.CUDA, 50.0)] * 4
              + [event("cudaLaunchKernel", DeviceType.CPU, 5.0)] * 6
              + [event("cudaStreamSynchronize", DeviceType.CPU, 1.0)]
              + [event("cudaDeviceSynchronize", DeviceType.CPU, 1.0)])  # the profile's own closing wait
    report = profile_report(events, steps=2, wall=0.002, host=0.0015, top=5, cuda=True)
    assert _per_step(report, "wall") == 1.0 and _per_step(report, "host, batch start to end") == 0.75
    assert "| device busy | 0.400 ms (40% of the wall time) |" in report
    assert _per_step(report, "kernels and copies run") == 3.0
    assert _per_step(report, r"launches by the host \(a graph's replay: one\)") == 3.0
    assert _per_step(report, "waits for the device") == 0.5
    assert "| softmax_rows_kernel | 1.0 | 300.0 | 75% |" in report and "| index_add | 2.0 | 100.0 | 25% |" in report
