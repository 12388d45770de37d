"""SGNS's Triton kernel alone, variant beside variant: words/s per epoch, the mean loss and the scores
after the last epoch, on the default data (all reviews, from the cache) and the default model, with
no Lightning around the kernel. What `w2v-train trainer=gpu` adds to the kernel's time is the
difference from scripts/gpu_benchmark.py's SGNS row; which update keeps the quality at the kernel's
speed is read off the variants' scores (the issue's "pick by measurement").

    W2V_DATA_DIR=... python scripts/sgns_kernel_bench.py                 # the default variants, 5 epochs
    python scripts/sgns_kernel_bench.py --epochs 2 --variant damped --variant plain,warps=8
    python scripts/sgns_kernel_bench.py data.max_docs=10000              # Hydra overrides for data and model

A variant is comma-separated settings: its window update, `sequential` (word2vec's order within a
window: each context word's decisions move the output rows the next one reads; the default, as in
training), `damped` (the damped rule's bounded update, `model.update_rule=damped`) or `plain` (lr·G),
these two over a whole window at once; `warps=N` (num_warps of a program), `chunk=N` (positions a
program walks in order, model.chunk_tokens), `step=N` (positions a launch covers, model.step_tokens), and
`lockstep=N`: not the kernel but its emulation on the CPU with N programs in flight
(`w2v/kernels/sgns_lockstep.py`), which tells what concurrent updates do to the scores without a
GPU. Each variant starts from the same initial vectors and draws the same samples (counter-based,
keyed by the seed). On a CPU the kernel itself runs only in Triton's interpreter
(TRITON_INTERPRET=1), slowly: for tests.

    python scripts/sgns_kernel_bench.py --variant damped,lockstep=264 --variant plain,lockstep=264
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # w2v from this checkout when not installed

from w2v.kernels import SGNS_WINDOW_RULES  # noqa: E402  (torch only)

DEFAULT_VARIANTS = ("sequential", "damped", "plain", "warps=1", "warps=2", "warps=8", "chunk=256", "chunk=4096")


@dataclass(frozen=True)
class Variant:
    rule: str = "sequential"  # a window's update: sequential, damped or plain (SGNS_WINDOW_RULES)
    warps: int = 4
    chunk: int | None = None  # None: the model's chunk_tokens
    step: int | None = None  # None: the model's step_tokens
    lockstep: int | None = None  # programs in flight of the CPU emulation; None: the kernel itself

    @classmethod
    def parse(cls, text: str) -> "Variant":
        variant = cls()
        for part in filter(None, (p.strip() for p in text.split(","))):
            key, _, value = part.partition("=")
            if key in SGNS_WINDOW_RULES and not value:
                variant = replace(variant, rule=key)
            elif key in ("warps", "chunk", "step", "lockstep") and value.isdigit() and int(value) > 0:
                variant = replace(variant, **{key: int(value)})
            else:
                raise SystemExit(f"error: variant setting {part!r} is unknown; use sequential, damped, plain, warps=N, "
                                 "chunk=N, step=N or lockstep=N, comma-separated")
        if variant.lockstep and variant.warps != cls.warps:
            raise SystemExit(f"error: variant {text!r}: warps=N sets the kernel's programs, which lockstep=N emulates "
                             "without warps; leave one out")
        return variant


def train_variant(variant: Variant, model_cfg, datamodule, epochs: int, device: torch.device) -> dict:
    """Trains a fresh model's vectors with the kernel alone, as the GPU path's steps would (the same
    blocks, chunks, draws and linearly falling learning rate); returns per-epoch seconds and losses,
    and the vectors."""
    from w2v.data.datamodule import ChunkBatches
    from w2v.models.negative_sampling import NegativeSampling
    from w2v.optim import LinearDecay
    from w2v.training import instantiate_model

    torch.manual_seed(datamodule.seed)  # every variant from the same initial vectors
    model = instantiate_model(model_cfg, datamodule.vocab)
    if not isinstance(model, NegativeSampling) or model.mean_context:
        raise SystemExit("error: the kernel trains Skip-gram with negative sampling; leave model= out (model=sgns)")
    if variant.lockstep:
        device = torch.device("cpu")
    model.to(device)
    hp = model.hparams
    stream = ChunkBatches(datamodule.corpus, variant.chunk or hp.chunk_tokens, variant.step or hp.step_tokens,
                          shuffle=True, seed=datamodule.seed, progress=lambda: (0, 0))
    steps = len(stream)
    lr0 = float(model_cfg.optimizer.lr)
    floor = float(model_cfg.scheduler.get("min_lr_ratio", 1.0))  # the constant schedule has none
    schedule = LinearDecay(torch.optim.SGD([torch.zeros(1)], lr=lr0), lambda: epochs * steps, floor)

    def rate(step: int) -> float:
        return lr0 * schedule.factor(step)

    rows = []
    for epoch in range(epochs):
        make = stream.epoch_batches(epoch)
        totals = torch.zeros(2, dtype=torch.float64, device=device)
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for index in range(steps):
            batch, _ = make(index)
            batch = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
            step = epoch * steps + index
            if variant.lockstep:
                totals += emulate_chunks(model, batch, rate(step), rate(step + 1), variant)
            else:
                totals += model.train_chunks(batch, rate(step), rate(step + 1), rule=variant.rule,
                                             num_warps=variant.warps)
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        loss_sum, pairs = totals.tolist()
        rows.append({"seconds": seconds, "words_per_sec": len(datamodule.corpus) / seconds,
                     "loss": loss_sum / max(pairs, 1)})
    return {"epochs": rows, "vectors": model.word_vectors()}


def emulate_chunks(model, batch, lr_begin: float, lr_end: float, variant: Variant) -> torch.Tensor:
    """`NegativeSampling.train_chunks` with the kernel emulated on the CPU, `variant.lockstep` programs in
    flight; (2,) float64 the summed loss and the pairs."""
    from w2v.kernels.sgns_lockstep import lockstep_chunks

    block, keys, threshold, alias = model.device_block(batch)
    hp = model.hparams
    arrays = (t.numpy() for t in (block.seq, block.docs, block.bounds, block.order, threshold, alias))
    loss, pairs = lockstep_chunks(model.in_embed.weight.data.numpy(), model.out_embed.weight.data.numpy(), *arrays,
                                  keys.window, keys.noise, batch["first_chunk"], batch["chunks"], lr_begin, lr_end,
                                  hp.window, hp.shrink_window, hp.negatives, variant.rule, variant.lockstep)
    return torch.tensor([loss, pairs], dtype=torch.float64)


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=5, help="epochs of each variant (default 5)")
    parser.add_argument("--variant", action="append", help=f"repeatable (default: {'; '.join(DEFAULT_VARIANTS)})")
    parser.add_argument("--no-scores", action="store_true", help="skip WordSim-353, SimLex-999 and the analogies")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. data.max_docs=10000 model.window=8")
    args = parser.parse_args(argv)
    if args.epochs < 1:
        raise SystemExit("error: --epochs must be at least 1")
    variants = [(text, Variant.parse(text)) for text in (args.variant or DEFAULT_VARIANTS)]
    if torch.cuda.is_available():
        device = torch.device("cuda")
    elif os.environ.get("TRITON_INTERPRET") == "1" or all(v.lockstep for _, v in variants):
        device = torch.device("cpu")
    else:
        raise SystemExit("error: the kernel needs a CUDA device (or TRITON_INTERPRET=1, slowly, on a CPU); "
                         "without one, emulate it with lockstep=N variants")
    from w2v.api import compose_config
    from w2v.evaluation import evaluate_all
    from w2v.training import build

    cfg = compose_config(*args.overrides)
    datamodule = build(cfg.data)
    datamodule.prepare_data()
    datamodule.setup("fit")
    if device.type == "cuda":
        name = torch.cuda.get_device_name()
    else:
        name = "the CPU" if all(v.lockstep for _, v in variants) else "the CPU, Triton's interpreter"
    if any(v.lockstep for _, v in variants):
        name += " (lockstep=N variants: the kernel emulated on the CPU, at the emulation's speed)"
    print(f"# SGNS kernel alone on {name}: {len(datamodule.corpus):,} tokens, vocabulary {len(datamodule.vocab):,}, "
          f"{args.epochs} epoch(s), {time.strftime('%Y-%m-%d')}")
    print("| variant | words/s per epoch | mean loss, last epoch | WordSim-353 / SimLex-999 / analogies |")
    print("|---|---|---|---|")
    files = {k: cfg.callbacks.evaluation.get(k) for k in ("wordsim", "simlex", "analogies")}
    results = []
    for text, variant in variants:
        result = train_variant(variant, cfg.model, datamodule, args.epochs, device)
        scores = "-"
        if not args.no_scores:
            metrics = evaluate_all(result["vectors"], **files)
            scores = " / ".join(f"{metrics[k]:.3f}" for k in ("wordsim353_spearman", "simlex999_spearman",
                                                               "analogy_3cosadd"))
        rates = ", ".join(f"{r['words_per_sec']:,.0f}" for r in result["epochs"])
        print(f"| {text} | {rates} | {result['epochs'][-1]['loss']:.4f} | {scores} |", flush=True)
        results.append({"variant": text, **result})
    return results


if __name__ == "__main__":
    main()
