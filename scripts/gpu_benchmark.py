"""SGNS, CBOW and Skip-gram on one CUDA GPU, default data and settings: words/s per epoch, the GPU's
own matrix-product rates measured in the same run, each model's share of them, peak GPU memory and
the final scores, beside a CPU run's scores when one is given.

    W2V_DATA_DIR=... python scripts/gpu_benchmark.py [--cpu-run outputs/RUN] [--sgns-epochs 5]
    W2V_DATA_DIR=... python scripts/gpu_benchmark.py --runs cbow,cbow-float32,cbow-bf16,cbow-loader,cbow-torch

`--runs` picks among RUNS: the full-softmax models also in float32 products (TF32 off), under
bf16-mixed, on the data loader's windows (model.sampling=loader) instead of the device's, with
PyTorch's step (model.kernels=torch) instead of the fused Triton kernels, and with the fused step
replayed from a CUDA graph (model.cuda_graph=true). `--profile-steps N` profiles N steps of each
run (`scripts/step_profile.py`) and prints where their time went after the run's row.

Each model trains in this process through `w2v.train` (trainer=gpu); its per-epoch words/s are read
back from the run's TensorBoard log. The full-softmax models' FLOP/s count 6·V·D per example
(forward, and backward to both sides): per center for CBOW, per (center, context) pair for
Skip-gram, whose pairs per center are estimated as the shrunk window's mean, 2·(W+1)/2.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SCORES = ("eval/wordsim353_spearman", "eval/simlex999_spearman", "eval/analogy_3cosadd")
# Each run's overrides (SGNS's epochs are --sgns-epochs); the full-softmax models train one epoch.
VARIANTS = {"": [], "-float32": ["cuda_tf32=false"], "-bf16": ["trainer.precision=bf16-mixed"],
            "-loader": ["model.sampling=loader"], "-torch": ["model.kernels=torch"], "-graph": ["model.cuda_graph=true"]}
RUNS = {"sgns": ["model=sgns"], **{f"{model}{suffix}": [f"model={model}", "trainer.max_epochs=1", *extra]
                                   for model in ("cbow", "skipgram") for suffix, extra in VARIANTS.items()}}


def mm_rates(size: int = 2048, repeats: int = 50) -> dict[str, float]:
    """TFLOP/s of a size×size `torch.mm` in float32 (TF32 off), TF32 and bf16."""
    rates = {}
    for name, dtype, tf32 in (("float32", torch.float32, False), ("tf32", torch.float32, True), ("bf16", torch.bfloat16, False)):
        torch.backends.cuda.matmul.allow_tf32 = tf32
        a = torch.randn(size, size, device="cuda", dtype=dtype)
        b = torch.randn(size, size, device="cuda", dtype=dtype)
        for _ in range(5):
            a @ b
        torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(repeats):
            a @ b
        torch.cuda.synchronize()
        rates[name] = 2 * size**3 * repeats / (time.perf_counter() - start) / 1e12
    torch.backends.cuda.matmul.allow_tf32 = False
    return rates


def process_seconds() -> float:
    """Seconds since this process started, its interpreter's start and imports included (Linux's /proc)."""
    start_ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])  # field 22, starttime
    return float(Path("/proc/uptime").read_text().split()[0]) - start_ticks / os.sysconf("SC_CLK_TCK")


def epoch_rates(run_dir: Path) -> list[float]:
    """The words/s of each epoch, from the run's TensorBoard events."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    rates = []
    for events in sorted((run_dir / "tensorboard").rglob("events.out.tfevents.*")):
        accumulator = EventAccumulator(str(events))
        accumulator.Reload()
        if "train/epoch_words_per_sec" in accumulator.Tags()["scalars"]:
            rates += [e.value for e in accumulator.Scalars("train/epoch_words_per_sec")]
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cpu-run", type=Path, help="a finished CPU run's directory, whose scores are shown beside")
    parser.add_argument("--sgns-epochs", type=int, default=5, help="SGNS's epochs (the default experiment's 5)")
    parser.add_argument("--runs", default="sgns,cbow,skipgram", help=f"comma-separated, of {', '.join(RUNS)}")
    parser.add_argument("--output", "-o", type=Path, default=Path("outputs/gpu_benchmark"), help="folder for the runs")
    parser.add_argument("--profile-steps", type=int, default=0,
                        help="profile this many steps of each run's first epoch, from its 51st (scripts/step_profile.py)")
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides for every run, e.g. data.max_docs=1000")
    args = parser.parse_args()
    names = args.runs.split(",")
    unknown = [name for name in names if name not in RUNS]
    if unknown:
        raise SystemExit(f"--runs: {', '.join(unknown)} unknown; pick from {', '.join(RUNS)}")
    if not torch.cuda.is_available():
        raise SystemExit("gpu_benchmark.py needs a CUDA device; on a CPU use scripts/benchmark.py")
    import w2v

    rates = mm_rates()
    print(f"# {torch.cuda.get_device_name()}: torch.mm 2048x2048 " + ", ".join(f"{k} {v:.1f} TFLOP/s" for k, v in rates.items()))
    cpu_scores = {}
    if args.cpu_run:
        cpu_scores = json.loads((args.cpu_run / "metrics.json").read_text())
    runs = {name: RUNS[name] + ([f"trainer.max_epochs={args.sgns_epochs}"] if name == "sgns" else []) for name in names}
    print("| model | words/s per epoch | share of float32 / TF32 / bf16 peak | peak GPU memory | wall s | "
          "final loss | WordSim-353 / SimLex-999 / analogies | CPU run's |")
    print("|---|---|---|---|---|---|---|---|")
    stamp = time.strftime("%Y-%m-%d_%H-%M-%S")
    for name, overrides in runs.items():
        gc.collect()  # the previous model's memory is not this one's peak
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        # each run in its own new directory, as w2v-train's: its TensorBoard log is read back from there
        profiled = [] if not args.profile_steps else [
            "+callbacks.step_profile._target_=scripts.step_profile.StepProfile",
            "+callbacks.step_profile.path=${paths.output_dir}/step_profile.md",
            f"+callbacks.step_profile.steps={args.profile_steps}"]
        run = w2v.train("trainer=gpu", *overrides, f"hydra.run.dir={args.output / f'{stamp}_{name}'}", *profiled,
                        *args.overrides)
        wall = time.perf_counter() - start
        words = epoch_rates(run.output_dir)
        if not words:
            print(f"warning: no train/epoch_words_per_sec in {run.output_dir / 'tensorboard'}", file=sys.stderr)
        cfg = run.config.model
        share = "-"
        if name != "sgns":  # full softmax: 6·V·D per example, examples per word as the module docstring says
            per_word = 6 * len(run.vectors) * cfg.embedding_dim * (1 if name.startswith("cbow") else cfg.window + 1)
            flops = per_word * (sum(words) / max(len(words), 1)) / 1e12
            share = " / ".join(f"{flops / rates[k]:.0%}" for k in ("float32", "tf32", "bf16"))
        scores = " / ".join(f"{run.metrics.get(k, float('nan')):.3f}" for k in SCORES)
        cpu = " / ".join(f"{cpu_scores[k]:.3f}" for k in SCORES if k in cpu_scores) if name == "sgns" else ""
        loss = run.metrics.get("train/loss_epoch", float("nan"))
        print(f"| {name} | {', '.join(f'{w:,.0f}' for w in words)} | {share} | "
              f"{torch.cuda.max_memory_allocated() / 2**30:.2f} GiB | {wall:.0f} | {loss:.4f} | {scores} | {cpu} |",
              flush=True)
        if name == "sgns" and name == names[0]:  # what `w2v-train trainer=gpu` takes, at most
            print(f"\nsgns ended {process_seconds():.0f} s after this process started: the default experiment's "
                  "wall time with the imports, plus the torch.mm rates and any profiled steps (target: under 60 s)\n",
                  flush=True)
        report = run.output_dir / "step_profile.md"
        if report.is_file():  # here, not after the table: a run cut off at a time limit keeps the reports before it
            print(f"\n{name}'s step profile ({report}):\n\n{report.read_text()}", flush=True)


if __name__ == "__main__":
    main()
