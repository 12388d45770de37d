"""The full softmax's step alone on a GPU: the fused Triton kernels (`kernels.softmax_triton`) beside
PyTorch's chunked step (`models.losses.softmax_cross_entropy_backward`, fixed shapes), in float32,
TF32 and bfloat16 products, on random operands of the default run's shapes.

    python scripts/softmax_kernel_bench.py                                   # CBOW's and Skip-gram's steps
    python scripts/softmax_kernel_bench.py --blocks 64,64,8,3 --blocks 128,64,8,3 --blocks 64,128,8,3

Per step: milliseconds, TFLOP/s counted as 6·U·V·D (the logits, and the products of both
gradients: what either step must compute; the fused one also recomputes the logits), and the
largest error of the output weight's gradient relative to float32 PyTorch's. `--blocks` tries tile
configurations of the kernels (rows, vocabulary block, warps, pipeline stages; the width block is
D rounded up to a power of 2), the first default being `softmax_triton.blocks`'. The shapes:
IMDb's vocabulary and width under the default settings, as the models' padded steps give them:
CBOW's step takes a softmax row per window (4,096) and one pair each; Skip-gram's a row per
distinct center (about 37% of 4,096) and every (window, context slot) pair, 4,096 x 10, the 40%
outside the windows weighted 0. PyTorch's step gets the distinct rows alone, the fused one all
4,096 with their count on the device (`skipgram.distinct_counted`).
"""

from __future__ import annotations

import argparse
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # w2v from this checkout when not installed

PRECISIONS = ("float32", "tf32", "bfloat16")


def operands(windows: int, rows: int, slots: int, vocab: int, dim: int, device: torch.device, seed: int = 0):
    """Hidden rows (U, D) and output layer of a trained model's scale, and a step's pairs: `slots` a
    window, windows row by row where there is a row a window (CBOW), else each a random row's; with
    several slots, 40% of the pairs padding (weight 0), the others weighing 1/(real pairs)."""
    gen = torch.Generator(device=device).manual_seed(seed)
    hidden = torch.randn(rows, dim, device=device, generator=gen) * 0.3
    weight = torch.randn(vocab, dim, device=device, generator=gen) * 0.3
    bias = torch.randn(vocab, device=device, generator=gen) * 0.1
    window_rows = (torch.arange(windows, device=device) if rows == windows
                   else torch.randint(0, rows, (windows,), device=device, generator=gen))
    pair_rows = window_rows.repeat_interleave(slots)  # (P,)
    targets = torch.randint(0, vocab, (len(pair_rows),), device=device, generator=gen)
    real = (torch.rand(len(pair_rows), device=device, generator=gen) >= 0.4) if slots > 1 else torch.ones_like(targets, dtype=torch.bool)
    grad_losses = real / real.sum()
    return hidden, weight, bias, pair_rows, targets, grad_losses


def timed(step, repeats: int, device: torch.device) -> tuple[float, tuple]:
    """Milliseconds a call of `step` takes (after warm-up calls, which compile), and its last result."""
    synchronize = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(3):
        result = step()
    synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        result = step()
    synchronize()
    return (time.perf_counter() - start) / repeats * 1e3, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vocab", type=int, default=53228, help="V (IMDb's vocabulary under the defaults)")
    parser.add_argument("--dim", type=int, default=100, help="D, model.embedding_dim")
    parser.add_argument("--rows", type=int, default=4096, help="CBOW's softmax rows a step (Skip-gram's: 3/8 of them)")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--blocks", action="append", default=[],
                        help="a tile configuration rows,vocab,warps,stages to try (repeatable)")
    args = parser.parse_args()
    from w2v.kernels import triton_interpreted

    if not (torch.cuda.is_available() or triton_interpreted()):
        raise SystemExit("softmax_kernel_bench.py needs a CUDA device (or TRITON_INTERPRET=1 and small sizes, "
                         "to check the script on a CPU)")
    from w2v.kernels import softmax_triton
    from w2v.models.full_softmax import softmax_chunk
    from w2v.models.losses import softmax_cross_entropy_backward

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    default_blocks = softmax_triton.blocks
    default = default_blocks(args.dim)
    configs = [default] + [softmax_triton.blocks_given(text, args.dim) for text in args.blocks]
    name = torch.cuda.get_device_name() if device.type == "cuda" else "CPU (Triton's interpreter)"
    print(f"# {name}, V={args.vocab}, D={args.dim}; blocks: rows, vocab, width, warps, stages")
    print("| step | rows x window slots | products | blocks | ms | TFLOP/s (6UVD) | grad_weight error vs float32 |")
    print("|---|---|---|---|---|---|---|")
    for label, rows, slots in (("CBOW", args.rows, 1), ("Skip-gram", args.rows * 3 // 8, 10)):
        problem = operands(args.rows, rows, slots, args.vocab, args.dim, device)
        pairs_per_row = 1 if slots == 1 else None  # Skip-gram's pairs are in window order
        hidden = problem[0]  # the fused step's rows: the batch's, those past the count skipped
        padded = torch.cat([hidden, hidden.new_zeros(args.rows - rows, args.dim)])
        count = torch.tensor([rows], dtype=torch.int32, device=device)
        chunk = softmax_chunk(device, args.vocab)
        flops = 6 * rows * args.vocab * args.dim
        reference = None
        for precision in PRECISIONS:
            torch.backends.cuda.matmul.allow_tf32 = precision == "tf32"
            half = torch.bfloat16 if precision == "bfloat16" else None

            def pytorch_step():
                with torch.autocast(device.type, dtype=half) if half else nullcontext():
                    return softmax_cross_entropy_backward(*problem, chunk, pairs_per_row=pairs_per_row, fixed=True)

            def fused_step():
                with torch.autocast(device.type, dtype=half) if half else nullcontext():
                    return softmax_triton.softmax_cross_entropy_fused(
                        padded, *problem[1:], precision=precision, row_count=count)

            for config in [None, *configs]:
                softmax_triton.blocks = default_blocks if config is None else (lambda dim, config=config: config)
                ms, result = timed(pytorch_step if config is None else fused_step, args.repeats, device)
                grad_weight = result[2].float()
                reference = grad_weight if reference is None else reference
                error = ((grad_weight - reference).abs().max() / reference.abs().max()).item()
                print(f"| {label} {'PyTorch' if config is None else 'fused'} | {rows} x {slots} | {precision} | "
                      f"{'-' if config is None else ','.join(map(str, config))} | {ms:.2f} | {flops / ms / 1e9:.1f} | "
                      f"{error:.1e} |", flush=True)
        torch.backends.cuda.matmul.allow_tf32 = False
    softmax_triton.blocks = default_blocks


if __name__ == "__main__":
    main()
