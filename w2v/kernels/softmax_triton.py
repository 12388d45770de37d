"""The full softmax's training step on the GPU without its (U, V) matrix: two Triton kernels.

The PyTorch step (`models.losses.softmax_cross_entropy_backward`) writes a (rows, V) matrix of
logits, exponentiates it, and reads it again for each gradient's product: on a GPU those passes
over memory, not the products, bound its speed. Here the logits are made tile by tile and never
stored, as flash attention makes its scores:

- `softmax_rows`: for a block of softmax rows and a range of the vocabulary, the running maximum
  and sum of exps (online softmax) and Σ_v exp(logit_v - max)·W_v; the ranges' partial results are
  then combined (`_combine`) into each row's log-sum-exp and softmax(row) @ W, the dense part of the
  hidden rows' gradient.
- `softmax_columns`: for a block of the vocabulary, the logits again from every row, and the dense
  part of the output weight's and bias's gradients, Σ_u s_u·softmax(u)_v·h_u and Σ_u s_u·softmax(u)_v.

The sparse parts (each pair's target logit, and the one-hot term of every gradient) are gathers and
index_adds of (P, D). Nothing is read back to the host, and the products' operands stay in the
kernels' tiles: float32 (TF32 products where torch.backends.cuda.matmul.allow_tf32 says, as the
PyTorch step's), or bfloat16 / float16 under autocast, always accumulated in float32. Each tile's
exps are taken in base 2 (log2(e) scales the hidden rows and the bias once). Both kernels write
every output element once, without atomic adds, so their results do not depend on the order the
programs run in; the sparse parts' index_adds are atomic on CUDA unless torch's deterministic
algorithms are on (trainer.deterministic=true).

With TRITON_INTERPRET=1 the kernels run on CPU tensors (slowly): that is how the tests check them
without a GPU.
"""

from __future__ import annotations

import functools

import torch
import triton
import triton.language as tl

from w2v.kernels import LN2, LOG2E, check_tensors, triton_interpreted
from w2v.kernels import SOFTMAX_TRITON_MAX_DIM as MAX_DIM

_LN2 = tl.constexpr(LN2)  # for the kernels, which read module globals only as constexprs
# Operand types of the products, by the `precision` argument's name.
PRECISIONS = ("float32", "tf32", "bfloat16", "float16")


@triton.jit
def _operand(x, PRECISION: tl.constexpr, EMULATED: tl.constexpr):
    """A product's operand in the type the products take (float32 stays as it is). `EMULATED`:
    half types rounded to and stored as float32, whose exact products and float32 sums are the
    half products' (Triton's interpreter multiplies half types' bits as integers)."""
    if PRECISION == "bfloat16":
        x = x.to(tl.bfloat16)
    elif PRECISION == "float16":
        x = x.to(tl.float16)
    if EMULATED:
        x = x.to(tl.float32)
    return x


@triton.jit
def _dot(a, b, PRECISION: tl.constexpr, EMULATED: tl.constexpr):
    """a @ b of `_operand`s, accumulated in float32; float32 operands as IEEE products, or TF32 ones."""
    if PRECISION == "float32" or EMULATED:
        return tl.dot(a, b, input_precision="ieee")
    else:
        return tl.dot(a, b, input_precision="tf32")


@triton.jit(do_not_specialize=["n_rows", "tiles_per_split"])
def _rows_kernel(hidden2, weight, bias2, row_count, part_max, part_sum, part_acc, n_rows, vocab_size, dim,
                 tiles_per_split, HAS_BIAS: tl.constexpr, PRECISION: tl.constexpr, EMULATED: tl.constexpr,
                 BLOCK_U: tl.constexpr, BLOCK_V: tl.constexpr, BLOCK_D: tl.constexpr):
    pid_u = tl.program_id(0)
    split = tl.program_id(1)
    in_use = tl.minimum(tl.load(row_count), n_rows)  # the rows in use, read on the device: a block wholly past them takes no tile
    tiles = tl.where(pid_u * BLOCK_U < in_use, tiles_per_split, 0)
    u = pid_u * BLOCK_U + tl.arange(0, BLOCK_U)  # (BU,) softmax rows
    d = tl.arange(0, BLOCK_D)  # (BD,)
    in_u = u < in_use  # rows past them are read as zeros, whatever they hold
    in_d = d < dim
    h = tl.load(hidden2 + u[:, None] * dim + d[None, :], mask=in_u[:, None] & in_d[None, :], other=0.0)  # (BU, BD)
    h = _operand(h, PRECISION, EMULATED)
    top = tl.full([BLOCK_U], float("-inf"), tl.float32)  # running maximum of the base-2 logits
    total = tl.zeros([BLOCK_U], dtype=tl.float32)  # Σ exp2(logit - top)
    acc = tl.zeros([BLOCK_U, BLOCK_D], dtype=tl.float32)  # Σ exp2(logit - top)·W_v
    # The split's first tile has a column in the vocabulary (the wrapper's split count sees to it),
    # so `top` is finite from there on and a tile past the vocabulary's end adds zeros.
    first = split * tiles_per_split * BLOCK_V
    for t in range(0, tiles):
        v = (first + t * BLOCK_V + tl.arange(0, BLOCK_V)).to(tl.int64)  # (BV,) int64: V·D may pass 2^31
        in_v = v < vocab_size
        w = tl.load(weight + v[:, None] * dim + d[None, :], mask=in_v[:, None] & in_d[None, :], other=0.0)  # (BV, BD)
        w = _operand(w, PRECISION, EMULATED)
        logits = _dot(h, tl.trans(w), PRECISION, EMULATED)  # (BU, BV) in base 2
        if HAS_BIAS:
            logits += tl.load(bias2 + v, mask=in_v, other=0.0)[None, :]
        logits = tl.where(in_v[None, :], logits, float("-inf"))
        new_top = tl.maximum(top, tl.max(logits, axis=1))  # (BU,)
        exps = tl.exp2(logits - new_top[:, None])  # (BU, BV)
        rescale = tl.exp2(top - new_top)  # (BU,) 0 on the first tile
        total = total * rescale + tl.sum(exps, axis=1)
        acc = acc * rescale[:, None] + _dot(_operand(exps, PRECISION, EMULATED), w, PRECISION, EMULATED)  # (BU, BD)
        top = new_top
    unused = total == 0.0  # rows of a block that took no tile: log-sum-exp 0, no gradient
    top = tl.where(unused, 0.0, top)
    total = tl.where(unused, 1.0, total)
    out = split * n_rows + u  # (BU,)
    stored = u < n_rows
    tl.store(part_max + out, top, mask=stored)
    tl.store(part_sum + out, total, mask=stored)
    tl.store(part_acc + out[:, None] * dim + d[None, :], acc, mask=stored[:, None] & in_d[None, :])


@triton.jit(do_not_specialize=["n_rows"])
def _columns_kernel(hidden2, weight, bias2, row_count, row_lse2, row_scale, grad_weight, grad_bias, n_rows,
                    vocab_size, dim,
                    HAS_BIAS: tl.constexpr, PRECISION: tl.constexpr, EMULATED: tl.constexpr,
                    BLOCK_U: tl.constexpr, BLOCK_V: tl.constexpr, BLOCK_D: tl.constexpr):
    pid = tl.program_id(0)
    v = (pid * BLOCK_V + tl.arange(0, BLOCK_V)).to(tl.int64)  # (BV,) output rows; int64: V·D may pass 2^31
    d = tl.arange(0, BLOCK_D)  # (BD,)
    in_v = v < vocab_size
    in_d = d < dim
    w = tl.load(weight + v[:, None] * dim + d[None, :], mask=in_v[:, None] & in_d[None, :], other=0.0)  # (BV, BD)
    w = _operand(w, PRECISION, EMULATED)
    if HAS_BIAS:
        b = tl.load(bias2 + v, mask=in_v, other=0.0)  # (BV,)
    acc_w = tl.zeros([BLOCK_V, BLOCK_D], dtype=tl.float32)  # Σ_u s_u·p_uv·h2_u
    acc_b = tl.zeros([BLOCK_V], dtype=tl.float32)  # Σ_u s_u·p_uv
    # The logits come out transposed, (BV, BU), so that the probabilities are the left operand of
    # the weight's product as they are: no tile is transposed in registers.
    in_use = tl.minimum(tl.load(row_count), n_rows)  # the rows in use, read on the device
    for start in range(0, in_use, BLOCK_U):
        u = start + tl.arange(0, BLOCK_U)  # (BU,)
        in_u = u < in_use
        h = tl.load(hidden2 + u[:, None] * dim + d[None, :], mask=in_u[:, None] & in_d[None, :], other=0.0)  # (BU, BD)
        h = _operand(h, PRECISION, EMULATED)
        lse = tl.load(row_lse2 + u, mask=in_u, other=0.0)  # (BU,)
        s = tl.load(row_scale + u, mask=in_u, other=0.0)  # (BU,)
        logits = _dot(w, tl.trans(h), PRECISION, EMULATED)  # (BV, BU) in base 2, as the rows' kernel made them
        if HAS_BIAS:
            logits += b[:, None]
        probs = tl.where(in_u[None, :], tl.exp2(logits - lse[None, :]) * s[None, :], 0.0)  # (BV, BU) s_u·softmax
        acc_w += _dot(_operand(probs, PRECISION, EMULATED), h, PRECISION, EMULATED)  # (BV, BD)
        acc_b += tl.sum(probs, axis=1)
    # h2 = log2(e)·h: ln(2) brings the weight's gradient back to h's scale
    tl.store(grad_weight + v[:, None] * dim + d[None, :], acc_w * _LN2,
             mask=in_v[:, None] & in_d[None, :])
    tl.store(grad_bias + v, acc_b, mask=in_v)


def blocks(dim: int) -> tuple[int, int, int, int, int]:
    """Tile sizes for embeddings of width `dim`: rows, vocabulary and width blocks, warps, pipeline
    stages. Chosen, among configurations compiled ahead of time for an H100 (sm_90,
    scripts/kernel_resources.py), as ones where neither kernel spills registers in TF32 or bfloat16
    and a program's shared memory fits every GPU from sm_80 on (99 KiB); their speeds are for a GPU
    to compare (scripts/softmax_kernel_bench.py --blocks)."""
    block_d = max(16, triton.next_power_of_2(dim))
    if block_d <= 32:
        return 64, 64, block_d, 4, 3
    if block_d <= 64:
        return 64, 64, block_d, 8, 3
    if block_d <= 128:
        return 64, 32, block_d, 8, 3
    return 32, 16, block_d, 8, 2  # 16x32 at 4 warps spilled in TF32's columns kernel with Triton 3.6


def blocks_given(text: str, dim: int) -> tuple[int, int, int, int, int]:
    """`blocks`' tuple from "rows,vocab,warps,stages" (the scripts' `--blocks`), the width block `dim`'s."""
    try:
        rows, vocab, warps, stages = (int(part) for part in text.split(","))
    except ValueError:
        raise ValueError(f"--blocks {text!r}: give rows,vocab,warps,stages, e.g. 64,32,8,3") from None
    return rows, vocab, blocks(dim)[2], warps, stages


@functools.lru_cache(maxsize=None)
def _processors(device: torch.device) -> int:
    """Programs the device runs at once, roughly: a CUDA device's multiprocessors; the interpreter, a few."""
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).multi_processor_count
    return 2


def vocabulary_splits(n_rows: int, vocab_size: int, dim: int, device: torch.device) -> int:
    """Ranges of the vocabulary that `softmax_rows` takes in separate programs: a batch of few rows
    (a handful of row blocks) would otherwise leave most of a GPU idle, and a row's partial results
    cost (D+2) floats a range to combine. About two programs per processor, each at least one tile."""
    block_u, block_v = blocks(dim)[:2]
    row_blocks = max(1, -(-n_rows // block_u))  # a batch without rows launches no program
    tiles = -(-vocab_size // block_v)
    return max(1, min(tiles, -(-2 * _processors(device) // row_blocks)))


def check_inputs(name: str, hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                 row_count: torch.Tensor, precision: str, **rows: torch.Tensor) -> None:
    """One-line ValueErrors for inputs the kernels cannot take; `rows`: float32 tensors of one entry per hidden row."""
    check_tensors(name, {"weight": (weight, torch.float32, 2), "hidden": (hidden, torch.float32, 2),
                         "bias": (bias, torch.float32, 1), "row_count": (row_count, torch.int32, 1),
                         **{label: (tensor, torch.float32, 1) for label, tensor in rows.items()}})
    if precision not in PRECISIONS:
        raise ValueError(f"{name}: precision={precision!r} is unknown; use one of {', '.join(PRECISIONS)}")
    if len(row_count) != 1:
        raise ValueError(f"{name}: row_count must hold one number, the rows in use; got {len(row_count)}")
    for label, tensor in rows.items():
        if len(tensor) != len(hidden):
            raise ValueError(f"{name}: {label} has {len(tensor)} entries for hidden's {len(hidden)} rows")
    if hidden.shape[1] != weight.shape[1]:
        raise ValueError(f"{name}: hidden {tuple(hidden.shape)} and weight {tuple(weight.shape)} must have the same width")
    if bias is not None and len(bias) != len(weight):
        raise ValueError(f"{name}: bias has {len(bias)} entries for weight's {len(weight)} rows")
    if weight.shape[1] > MAX_DIM:
        raise ValueError(f"{name}: embeddings of width {weight.shape[1]} are wider than the kernels' tiles "
                         f"({MAX_DIM}); use model.kernels=torch")


def _split_tiles(vocab_size: int, block_v: int, splits: int) -> tuple[int, int]:
    """Tiles a split of the vocabulary takes, and the splits that makes: every split starts inside it."""
    tiles = -(-vocab_size // block_v)
    tiles_per_split = -(-tiles // splits)
    return tiles_per_split, -(-tiles // tiles_per_split)


@torch.library.custom_op("w2v::softmax_rows", mutates_args=())
def softmax_rows(hidden2: torch.Tensor, weight: torch.Tensor, bias2: torch.Tensor | None, row_count: torch.Tensor,
                 splits: int, precision: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Partial online-softmax results of each row over `splits` ranges of the vocabulary: maxima
    (S, U) and sums of exps (S, U) of the base-2 logits hidden2 @ W^T + bias2, and Σ exp2(logit - max)·W
    (S, U, D). hidden2 (U, D) and bias2 (V,) are log2(e) times the hidden rows and the bias. Blocks
    of rows wholly past row_count (1,) int32, read on the device, are left at maximum 0, sum 1, 0."""
    check_inputs("softmax_rows", hidden2, weight, bias2, row_count, precision)
    n_rows, dim = hidden2.shape
    block_u, block_v, block_d, warps, stages = blocks(dim)
    tiles = -(-len(weight) // block_v)
    if not 1 <= splits <= tiles:
        raise ValueError(f"softmax_rows: splits={splits} must be between 1 and the vocabulary's {tiles} tiles")
    tiles_per_split, splits = _split_tiles(len(weight), block_v, splits)
    part_max = hidden2.new_empty(splits, n_rows)
    part_sum = hidden2.new_empty(splits, n_rows)
    part_acc = hidden2.new_empty(splits, n_rows, dim)
    if n_rows:
        _rows_kernel[(triton.cdiv(n_rows, block_u), splits)](
            hidden2, weight, weight if bias2 is None else bias2, row_count, part_max, part_sum, part_acc,
            n_rows, len(weight), dim, tiles_per_split, HAS_BIAS=bias2 is not None, PRECISION=precision,
            EMULATED=triton_interpreted(), BLOCK_U=block_u, BLOCK_V=block_v, BLOCK_D=block_d, num_warps=warps, num_stages=stages)
    return part_max, part_sum, part_acc


@softmax_rows.register_fake
def _(hidden2, weight, bias2, row_count, splits, precision):
    splits = _split_tiles(len(weight), blocks(hidden2.shape[1])[1], splits)[1]
    return (hidden2.new_empty(splits, len(hidden2)), hidden2.new_empty(splits, len(hidden2)),
            hidden2.new_empty(splits, *hidden2.shape))


@torch.library.custom_op("w2v::softmax_columns", mutates_args=())
def softmax_columns(hidden2: torch.Tensor, weight: torch.Tensor, bias2: torch.Tensor | None, row_count: torch.Tensor,
                    row_lse2: torch.Tensor, row_scale: torch.Tensor, precision: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The dense parts of the output layer's gradients, Σ_u s_u·softmax(u)_v·h_u (V, D) and
    Σ_u s_u·softmax(u)_v (V,), over the first row_count rows, from each row's base-2 log-sum-exp
    row_lse2 (U,) and weight s_u = row_scale (U,); hidden2, bias2 and row_count as `softmax_rows`'."""
    check_inputs("softmax_columns", hidden2, weight, bias2, row_count, precision, row_lse2=row_lse2,
                 row_scale=row_scale)
    block_u, block_v, block_d, warps, stages = blocks(hidden2.shape[1])
    grad_weight = torch.empty_like(weight)
    grad_bias = weight.new_empty(len(weight))
    _columns_kernel[(triton.cdiv(len(weight), block_v),)](
        hidden2, weight, weight if bias2 is None else bias2, row_count, row_lse2, row_scale,
        grad_weight, grad_bias, len(hidden2), len(weight), weight.shape[1], HAS_BIAS=bias2 is not None,
        PRECISION=precision, EMULATED=triton_interpreted(), BLOCK_U=block_u, BLOCK_V=block_v, BLOCK_D=block_d,
        num_warps=warps, num_stages=stages)
    return grad_weight, grad_bias


@softmax_columns.register_fake
def _(hidden2, weight, bias2, row_count, row_lse2, row_scale, precision):
    return torch.empty_like(weight), weight.new_empty(len(weight))


def _combine(part_max: torch.Tensor, part_sum: torch.Tensor, part_acc: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The vocabulary ranges' partial results as each row's base-2 log-sum-exp (U,) and softmax @ W (U, D)."""
    top = part_max.amax(0)  # (U,)
    rescale = torch.exp2(part_max - top)  # (S, U)
    total = (part_sum * rescale).sum(0)  # (U,)
    by_weight = (part_acc * rescale.unsqueeze(2)).sum(0) / total.unsqueeze(1)  # (U, D)
    return top + total.log2(), by_weight


def products_precision(device: torch.device) -> str:
    """The products' operand type as the PyTorch step's would have it on `device`: autocast's half
    type where it is on, else float32, as TF32 where torch.backends.cuda.matmul.allow_tf32 allows."""
    if torch.is_autocast_enabled(device.type):
        half = torch.get_autocast_dtype(device.type)
        return "bfloat16" if half == torch.bfloat16 else "float16"
    return "tf32" if device.type == "cuda" and torch.backends.cuda.matmul.allow_tf32 else "float32"


def softmax_cross_entropy_fused(hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                                rows: torch.Tensor, targets: torch.Tensor, grad_losses: torch.Tensor,
                                precision: str | None = None, splits: int | None = None,
                                row_count: torch.Tensor | None = None):
    """`losses.softmax_cross_entropy_backward`'s results, computed by the kernels: each pair's loss
    -log softmax(h_r W^T + b)[t] and the gradients of Σ_p g_p·loss_p.

    With s_r = Σ_{p of row r} g_p the logits' gradient is diag(s)·softmax - Σ_p g_p·onehot(r_p, t_p):
    the kernels take the dense term, index_adds the one-hot one. A pair weighted 0 (padding) adds
    nothing. `precision`: the products' operands (PRECISIONS), by default `products_precision`'s;
    `splits`: the vocabulary ranges of the rows' kernel, by default `vocabulary_splits`'.
    `row_count` (1,) int32: the rows in use, the first ones, counted on the device (no pair may
    point past them); the kernels skip the blocks past them, which get no gradient. By default all.
    hidden (U, D), weight (V, D), bias (V,) or None, rows, targets, grad_losses (P,)
    -> losses (P,), grad_hidden (U, D), grad_weight (V, D), grad_bias (V,) or None
    """
    precision = products_precision(weight.device) if precision is None else precision
    hidden = hidden.float().contiguous()
    g = grad_losses.float()  # (P,)
    row_scale = torch.zeros(len(hidden), dtype=torch.float32, device=hidden.device).index_add_(0, rows, g)  # (U,) s_r
    hidden2 = hidden * LOG2E  # (U, D)
    bias2 = None if bias is None else bias * LOG2E  # (V,)
    splits = vocabulary_splits(len(hidden), len(weight), weight.shape[1], weight.device) if splits is None else splits
    if row_count is None:
        row_count = torch.full((1,), len(hidden), dtype=torch.int32, device=hidden.device)
    lse2, by_weight = _combine(*softmax_rows(hidden2, weight, bias2, row_count, splits, precision))  # (U,), (U, D)
    grad_weight, grad_bias = softmax_columns(hidden2, weight, bias2, row_count, lse2, row_scale, precision)  # (V, D), (V,)
    pair_hidden, pair_weight = hidden[rows], weight[targets]  # (P, D), (P, D)
    picked = (pair_hidden * pair_weight).sum(1)  # (P,) each pair's target logit
    if bias is not None:
        picked = picked + bias[targets]
    losses = lse2[rows] * LN2 - picked  # (P,)
    grad_hidden = by_weight.mul_(row_scale.unsqueeze(1)).index_add_(0, rows, pair_weight.mul_(g.unsqueeze(1)), alpha=-1)
    grad_weight.index_add_(0, targets, pair_hidden.mul_(g.unsqueeze(1)), alpha=-1)
    if bias is None:
        return losses, grad_hidden, grad_weight, None
    return losses, grad_hidden, grad_weight, grad_bias.index_add_(0, targets, g, alpha=-1)
