"""Compiles w2v's Triton kernels ahead of time for a CUDA architecture, without a GPU, and prints what
ptxas gave each: registers a thread, bytes spilled to the stack, shared memory. A compile error that
Triton's interpreter cannot show (it runs the kernels' logic, not their lowering to the GPU), or
spills that would slow a kernel, are found here before a GPU is lent.

    python scripts/kernel_resources.py                     # sm_90 (H100, H200), the default tiles
    python scripts/kernel_resources.py --arch 80 --dim 50 --dim 256
    python scripts/kernel_resources.py --blocks 64,64,8,3 --blocks 64,32,4,3   # other softmax tiles

Kernels: the full softmax's two (`kernels.softmax_triton`) in float32, TF32, bfloat16 and float16
products, with the tiles `softmax_triton.blocks` picks for `--dim` (and those of `--blocks`: rows,
vocabulary block, warps, stages); SGNS's (`kernels.sgns_triton`) with the default model's window
and noise words, each of its window updates (damped, plain, sequential), at 4 warps (its default) and 8, and
the sequential one at 1; the full softmax's step windows
(`kernels.sampling_triton`) with the default window.

Exits with status 1 if a kernel does not compile, or with `--check` if one of the softmax's
default tiles spills registers or takes more shared memory than SHARED_LIMIT in TF32 or half-type
products (they are chosen not to; float32 products, `cuda_tf32=false`, run on the CUDA cores,
where wide tiles spill: they are there to check TF32's scores, not for speed); 2 where Triton
lacks the NVIDIA tools (its x86-64 Linux wheels carry them).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # w2v from this checkout when not installed

if os.environ.get("TRITON_INTERPRET") == "1":  # interpreted kernels cannot be compiled: start again without
    os.environ.pop("TRITON_INTERPRET")
    os.execv(sys.executable, [sys.executable, *sys.argv])

import triton  # noqa: E402
from triton.backends.compiler import GPUTarget  # noqa: E402
from triton.compiler import ASTSource  # noqa: E402

SOFTMAX_ARGS = {"hidden2": "*fp32", "weight": "*fp32", "bias2": "*fp32", "row_count": "*i32"}
ROWS_ARGS = {**SOFTMAX_ARGS, "part_max": "*fp32", "part_sum": "*fp32", "part_acc": "*fp32", "n_rows": "i32",
             "vocab_size": "i32", "dim": "i32", "tiles_per_split": "i32"}
COLUMNS_ARGS = {**SOFTMAX_ARGS, "row_lse2": "*fp32", "row_scale": "*fp32", "grad_weight": "*fp32",
                "grad_bias": "*fp32", "n_rows": "i32", "vocab_size": "i32", "dim": "i32"}
# The least shared memory a program gets on the GPUs from sm_80 on (sm_86 and sm_89 cards: 99 KiB).
SHARED_LIMIT = 99 * 1024
SGNS_ARGS = {"w_in": "*fp32", "w_out": "*fp32", "seq": "*i32", "docs": "*i32", "bounds": "*i64", "order": "*i64",
             "threshold": "*fp32", "alias": "*i32", "keys": "*i64", "totals": "*fp64", "first": "i32",
             "n_programs": "i32", "n_chunks": "i32", "vocab_size": "i32", "dim": "i32", "lr_begin": "fp32",
             "lr_end": "fp32"}
WINDOWS_ARGS = {"seq": "*i32", "docs": "*i32", "bounds": "*i64", "order": "*i64", "keys": "*i64", "first": "*i64",
                "centers": "*i64", "contexts": "*i64", "mask": "*u8", "n_centers": "i32", "chunk_tokens": "i32",
                "n_chunks": "i32", "spare": "i32"}


def compile_kernel(fn, args: dict[str, str], constants: dict, target: GPUTarget, warps: int, stages: int,
                   dim: int):
    """`fn` compiled for `target` as a launch would: every pointer aligned to 16 bytes (torch's
    allocations are) and the width `dim` known to be a multiple of 16 where it is, which Triton
    checks at launch and compiles in."""
    signature = {**args, **{name: "constexpr" for name in constants}}
    aligned = {(fn.arg_names.index(name),): [["tt.divisibility", 16]] for name, kind in args.items()
               if kind.startswith("*") or (name == "dim" and dim % 16 == 0)}
    source = ASTSource(fn=fn, signature=signature, constexprs=constants, attrs=aligned)
    return triton.compile(source, target=target, options={"num_warps": warps, "num_stages": stages})


CUOBJDUMP = Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "cuobjdump"


def resources(kernel) -> tuple[int, int, int]:
    """Registers a thread, stack bytes (spills) and shared memory bytes of a compiled kernel."""
    with tempfile.NamedTemporaryFile(suffix=".cubin") as handle:
        handle.write(kernel.asm["cubin"])
        handle.flush()
        usage = subprocess.run([str(CUOBJDUMP), "--dump-resource-usage", handle.name], capture_output=True,
                               text=True, check=True).stdout
    found = re.search(r"REG:(\d+) STACK:(\d+)", usage)
    return int(found.group(1)), int(found.group(2)), kernel.metadata.shared


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", type=int, default=90, help="CUDA compute capability × 10 (90: H100, H200)")
    parser.add_argument("--dim", type=int, action="append", help="model.embedding_dim (repeatable; default 100)")
    parser.add_argument("--blocks", action="append", default=[], help="softmax tiles rows,vocab,warps,stages")
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if the softmax's default tiles spill or exceed SHARED_LIMIT")
    args = parser.parse_args()
    if not CUOBJDUMP.is_file():
        print(f"error: {CUOBJDUMP} is missing: this Triton has no NVIDIA backend tools (x86-64 Linux wheels "
              "carry them)", file=sys.stderr)
        return 2
    from w2v.kernels import SGNS_WINDOW_RULES, sampling_triton, sgns_triton, softmax_triton

    target = GPUTarget("cuda", args.arch, 32)
    jobs = []  # (name, settings, whether --check checks it, compile)
    for dim in args.dim or [100]:
        if dim > softmax_triton.MAX_DIM:
            print(f"# D={dim}: wider than the softmax kernels take ({softmax_triton.MAX_DIM}); SGNS's only")
            configs = []
        else:
            default = softmax_triton.blocks(dim)
            configs = [default] + [softmax_triton.blocks_given(text, dim) for text in args.blocks]
        for rows, vocab, width, warps, stages in configs:
            for precision in softmax_triton.PRECISIONS:
                constants = {"HAS_BIAS": True, "PRECISION": precision, "EMULATED": False, "BLOCK_U": rows,
                             "BLOCK_V": vocab, "BLOCK_D": width}
                settings = f"D={dim}, {precision}, tiles {rows}x{vocab}x{width}, {warps} warps, {stages} stages"
                for name, fn, kernel_args in (("softmax rows", softmax_triton._rows_kernel, ROWS_ARGS),
                                              ("softmax columns", softmax_triton._columns_kernel, COLUMNS_ARGS)):
                    checked = (rows, vocab, width, warps, stages) == default and precision != "float32"
                    jobs.append((name, settings, checked,
                                 lambda fn=fn, a=kernel_args, c=constants, w=warps, s=stages, d=dim:
                                 compile_kernel(fn, a, c, target, w, s, d)))
        for rule in SGNS_WINDOW_RULES:
            # 4: sgns_chunks' default; the sequential rule's dependent steps may run faster on fewer warps
            for warps in (1, 4, 8) if rule == "sequential" else (4, 8):
                constants = {"WINDOW": 5, "SHRINK": True, "NEGATIVES": 5, "RULE": SGNS_WINDOW_RULES[rule], "C": 16,
                             "T": 8, "BLOCK_D": triton.next_power_of_2(dim)}
                jobs.append(("sgns chunks", f"D={dim}, {rule}, {warps} warps", False,
                             lambda c=constants, d=dim, w=warps: compile_kernel(sgns_triton._sgns_chunks_kernel,
                                                                                SGNS_ARGS, c, target, w, 3, d)))
    windows = {"WINDOW": 5, "SHRINK": True, "C": 16, "BLOCK_N": sampling_triton.BLOCK_N}
    jobs.append(("step windows", "window 5", False,
                 lambda: compile_kernel(sampling_triton._windows_kernel, WINDOWS_ARGS, windows, target, 4, 3, 0)))
    print(f"# sm_{args.arch}, Triton {triton.__version__}")
    print("| kernel | settings | registers | spilled bytes | shared KiB |")
    print("|---|---|---|---|---|")
    failed = over = 0
    for name, settings, checked, build in jobs:
        try:
            registers, stack, shared = resources(build())
        except Exception as error:  # a compile error: report it, go on with the others
            print(f"| {name} | {settings} | does not compile: {type(error).__name__}: "
                  f"{str(error).splitlines()[0] if str(error) else ''} | | |", flush=True)
            failed += 1
            continue
        over += checked and (stack > 0 or shared > SHARED_LIMIT)
        print(f"| {name} | {settings} | {registers} | {stack} | {shared / 1024:.0f} |", flush=True)
    if over and args.check:
        print(f"{over} of the softmax's kernels spill registers or exceed {SHARED_LIMIT // 1024} KiB of shared "
              "memory with their default tiles", file=sys.stderr)
    return 1 if failed or (over and args.check) else 0


if __name__ == "__main__":
    sys.exit(main())
