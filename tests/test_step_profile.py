"""scripts/step_profile.py: the callback that profiles a few steps of a real run, here on the CPU."""

from __future__ import annotations

import re

import pytest

from scripts.step_profile import StepProfile
from w2v.training import train


def _per_step(report: str, row: str) -> float:
    return float(re.search(rf"\| {row} \| ([0-9.]+)", report).group(1))


@pytest.mark.parametrize("start, steps, profiled", [(2, 3, 3), (5, 100, None)])
def test_a_runs_steps_are_profiled_into_a_report_beside_it(make_cfg, tmp_path, start, steps, profiled):
    """Steps start.. of the first epoch; an epoch shorter than asked for is profiled to its end."""
    cfg = make_cfg(["model=cbow", "+callbacks.step_profile._target_=scripts.step_profile.StepProfile",
                    "+callbacks.step_profile.path=${paths.output_dir}/step_profile.md",
                    f"+callbacks.step_profile.start={start}", f"+callbacks.step_profile.steps={steps}",
                    "+callbacks.step_profile.top=5"])
    result = train(cfg)
    report = (result["output_dir"] / "step_profile.md").read_text()
    epoch_steps = result["trainer"].global_step  # one epoch
    assert report.startswith(f"{profiled or epoch_steps - start} steps profiled")
    assert 0 < _per_step(report, "host, batch start to end") <= _per_step(report, "wall")
    assert "device busy" not in report  # a CPU has no device time: its table lists operations
    operations = re.findall(r"^\| (aten::\S+|[^|]*\S) \| [0-9.]+ \| [0-9.]+ \| \d+% \|$", report, re.MULTILINE)
    assert len(operations) == 5 and any(name.startswith("aten::") for name in operations)


def test_bad_settings_are_one_line_errors(tmp_path):
    with pytest.raises(ValueError, match="start \\(-1\\) must be at least 0, steps \\(1\\) and top \\(1\\) at least 1"):
        StepProfile(str(tmp_path / "p.md"), start=-1, steps=1, top=1)
