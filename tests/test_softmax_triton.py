"""The full softmax's fused Triton step (`kernels.softmax_triton`), run in Triton's interpreter on the
CPU (TRITON_INTERPRET=1, set by conftest), against a naive autograd reference on tiny tensors and
against the PyTorch step; and the models' choice of it (`model.kernels`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.conftest import planted_neighbour_share
from tests.test_softmax_on_device import HostReads
from w2v.api import build_model
from w2v.data.vocab import Vocabulary
from w2v.errors import ConfigError
from w2v.kernels import triton_interpreted
from w2v.models.cuda_graph import StepGraph
from w2v.models.full_softmax import FullSoftmaxModule
from w2v.models.losses import softmax_cross_entropy_backward
from w2v.training import train

pytestmark = pytest.mark.skipif(not (torch.cuda.is_available() or triton_interpreted()),
                                reason="needs CUDA or TRITON_INTERPRET=1")
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
TRAINER = ["trainer=gpu"] if torch.cuda.is_available() else []

softmax_triton = pytest.importorskip("w2v.kernels.softmax_triton")


@pytest.fixture(autouse=True)
def float32_products():
    """PyTorch's products in float32 on CUDA too, as the references here take them (training turns
    TF32 on, and earlier tests train)."""
    tf32 = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32 = tf32


def _naive(hidden, weight, bias, rows, targets, grad_losses):
    """Losses -log softmax(h_r W^T + b)[t] and the gradients of Σ g·loss, by autograd on the whole logits."""
    hidden, weight = hidden.detach().requires_grad_(), weight.detach().requires_grad_()
    bias = None if bias is None else bias.detach().requires_grad_()
    logits = hidden @ weight.T + (0 if bias is None else bias)  # (U, V)
    losses = torch.logsumexp(logits, 1)[rows] - logits[rows, targets]  # (P,)
    (losses * grad_losses).sum().backward()
    return losses.detach(), hidden.grad, weight.grad, None if bias is None else bias.grad


def _problem(rows=37, vocab=301, dim=20, pairs=90, scale=1.0, seed=0):
    """Sizes that fill no tile exactly; pairs share rows (Skip-gram's centers), some weigh 0 (padding),
    and some rows have no pair."""
    gen = torch.Generator().manual_seed(seed)
    hidden = torch.randn(rows, dim, generator=gen) * scale
    weight = torch.randn(vocab, dim, generator=gen) * 0.5
    bias = torch.randn(vocab, generator=gen)
    row_of = torch.randint(0, rows - 3, (pairs,), generator=gen)  # the last three rows: no pair
    targets = torch.randint(0, vocab, (pairs,), generator=gen)
    grad_losses = torch.rand(pairs, generator=gen)
    grad_losses[::7] = 0.0
    return [t.to(DEVICE) for t in (hidden, weight, bias, row_of, targets, grad_losses)]


def _close(got, want, rtol):
    for name, a, b in zip(("losses", "grad_hidden", "grad_weight", "grad_bias"), got, want):
        if b is None:
            assert a is None, name
            continue
        error = ((a - b).abs().max() / b.abs().max().clamp_min(1e-30)).item()
        assert error < rtol, f"{name}: relative error {error:.2e}"


@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.parametrize("splits", [1, 2, 5])
def test_the_kernels_equal_autograd_on_the_whole_logits(with_bias, splits):
    hidden, weight, bias, rows, targets, grad_losses = _problem()
    bias = bias if with_bias else None
    got = softmax_triton.softmax_cross_entropy_fused(hidden, weight, bias, rows, targets, grad_losses,
                                                     precision="float32", splits=splits)
    _close(got, _naive(hidden, weight, bias, rows, targets, grad_losses), rtol=1e-5)
    assert not got[1][-3:].any()  # rows without a pair get no gradient


@pytest.mark.parametrize("dim", [100, 200])  # 200: the tiles of widths above 128
def test_the_kernels_equal_the_pytorch_step(dim):
    hidden, weight, bias, rows, targets, grad_losses = _problem(rows=130, vocab=200, dim=dim)
    got = softmax_triton.softmax_cross_entropy_fused(hidden, weight, bias, rows, targets, grad_losses, precision="float32")
    want = softmax_cross_entropy_backward(hidden, weight, bias, rows, targets, grad_losses, chunk=64)
    _close(got, want, rtol=1e-5)


def test_large_logits_stay_exact():
    """Logits in the hundreds overflow exp: the running maximum keeps every row's sum finite."""
    hidden, weight, bias, rows, targets, grad_losses = _problem(scale=40.0)
    got = softmax_triton.softmax_cross_entropy_fused(hidden, weight, bias, rows, targets, grad_losses,
                                                     precision="float32", splits=3)
    assert got[0].max() > 100  # the targets' probabilities are far below float32's smallest normal
    # float32 holds a logit s to within |s|·2^-24, and exp(s - max) carries that as a relative error: the
    # bound follows the largest logit (about 430 here, 2.6e-5), whatever the CPU's vector exp rounds
    largest = (hidden @ weight.T + bias).abs().max().item()
    _close(got, _naive(hidden.double(), weight.double(), bias.double(), rows, targets, grad_losses.double()),
           rtol=4 * largest * 2.0**-24)


@pytest.mark.parametrize("precision", ["bfloat16", "float16"])
def test_half_precision_products_stay_near_float32(precision):
    """The products' operands in a half type: off float32's results by that type's rounding, no more."""
    problem = _problem(dim=64)
    got = softmax_triton.softmax_cross_entropy_fused(*problem, precision=precision, splits=2)
    want = _naive(*problem)
    _close(got, want, rtol=0.05)
    error = ((got[2] - want[2]).abs().max() / want[2].abs().max()).item()
    assert error > 1e-4  # the operands were rounded: the precision reached the products


@pytest.mark.parametrize("count", [0, 1, 64, 70, 130])
def test_rows_past_the_count_are_skipped_as_if_absent(count):
    """The first `count` rows in use, counted on the device: the results equal those of those rows
    alone, whatever the rows past them hold, and those rows get no gradient."""
    hidden, weight, bias, rows, targets, grad_losses = _problem(rows=130, pairs=300)
    if count == 0:  # no row in use, no pair
        rows, targets, grad_losses = rows[:0], targets[:0], grad_losses[:0]
    rows = rows % max(count, 1)
    hidden[count:] = float("nan")  # rows past the count: values that would spoil any result they entered
    got = softmax_triton.softmax_cross_entropy_fused(
        hidden, weight, bias, rows, targets, grad_losses, precision="float32", splits=2,
        row_count=torch.tensor([count], dtype=torch.int32, device=DEVICE))
    assert all(torch.isfinite(t).all() for t in got)
    if count:
        want = _naive(hidden[:count], weight, bias, rows, targets, grad_losses)
        _close([got[0], got[1][:count], got[2], got[3]], want, rtol=1e-5)
    assert not got[1][count:].any()  # rows past the count: no gradient
    assert count or not (got[2].any() or got[3].any())
    # The kernels do skip them: the rows' kernel leaves their blocks at maximum 0, sum 1, no acc;
    # the columns' kernel never reads their log-sum-exp (NaN here).
    block_u = softmax_triton.blocks(hidden.shape[1])[0]
    past = block_u * -(-count // block_u)  # the first row of the first block wholly past the count
    count_t = torch.tensor([count], dtype=torch.int32, device=DEVICE)
    part_max, part_sum, part_acc = softmax_triton.softmax_rows(hidden * 1.0, weight, bias, count_t, 2, "float32")
    assert not part_max[:, past:].any() and (part_sum[:, past:] == 1).all() and not part_acc[:, past:].any()
    lse2 = torch.zeros(len(hidden), device=DEVICE)
    lse2[count:] = float("nan")
    grad_weight, grad_bias = softmax_triton.softmax_columns(hidden * 1.0, weight, bias, count_t, lse2,
                                                             torch.ones(len(hidden), device=DEVICE), "float32")
    assert torch.isfinite(grad_weight).all() and torch.isfinite(grad_bias).all()


@pytest.mark.parametrize("rows", [37, 0])
def test_no_pairs_give_zero_gradients(rows):
    """Rows without pairs, or no rows at all (a batch whose windows all lack a context word)."""
    hidden, weight, bias, *_ = _problem()
    hidden = hidden[:rows]
    none = torch.zeros(0, dtype=torch.int64, device=DEVICE)
    losses, grad_hidden, grad_weight, grad_bias = softmax_triton.softmax_cross_entropy_fused(
        hidden, weight, bias, none, none, torch.zeros(0, device=DEVICE), precision="float32")
    assert losses.shape == (0,) and grad_hidden.shape == hidden.shape and grad_weight.shape == weight.shape
    assert not grad_hidden.any() and not grad_weight.any() and not grad_bias.any()


def test_the_precision_follows_autocast_and_tf32():
    device = torch.device(DEVICE)
    assert softmax_triton.products_precision(device) == "float32"
    torch.backends.cuda.matmul.allow_tf32 = True  # the fixture puts it back
    assert softmax_triton.products_precision(device) == ("tf32" if DEVICE == "cuda" else "float32")
    with torch.autocast(DEVICE, dtype=torch.bfloat16):
        assert softmax_triton.products_precision(device) == "bfloat16"


def test_vocabulary_splits_keep_the_device_busy_and_every_split_in_the_vocabulary():
    cpu = torch.device("cpu")
    block_v = softmax_triton.blocks(100)[1]
    assert softmax_triton.vocabulary_splits(n_rows=10, vocab_size=block_v * 3, dim=100, device=cpu) == 3
    assert softmax_triton.vocabulary_splits(n_rows=4096, vocab_size=50_000, dim=100, device=cpu) == 1
    assert softmax_triton.blocks(20)[1] == 64
    hidden, weight, bias, *_ = _problem(vocab=5 * 64 + 1)  # six tiles, the last with one column
    for splits in range(1, 7):
        count = torch.tensor([len(hidden)], dtype=torch.int32, device=DEVICE)
        part_max, part_sum, _ = softmax_triton.softmax_rows(hidden, weight, bias, count, splits, "float32")
        assert torch.isfinite(part_max).all() and (part_sum >= 1).all()  # each split saw its row's largest exp


@pytest.mark.parametrize("bad, message", [
    (dict(weight=torch.zeros(301, 20, dtype=torch.float64)), "weight must be a 2-D torch.float32 tensor"),
    (dict(hidden=torch.zeros(37, 21)), r"hidden \(37, 21\) and weight \(301, 20\) must have the same width"),
    (dict(bias=torch.zeros(300)), "bias has 300 entries for weight's 301 rows"),
    (dict(weight=torch.zeros(20, 301).T), r"weight must be contiguous; pass weight.contiguous\(\)"),
    (dict(hidden=torch.zeros(37, 300), weight=torch.zeros(301, 300)), "wider than the kernels' tiles.*model.kernels=torch"),
    (dict(precision="fp8"), "precision='fp8' is unknown"),
])
def test_bad_inputs_are_clear_errors(bad, message):
    hidden, weight, bias, rows, targets, grad_losses = _problem()
    args = dict(hidden=hidden, weight=weight, bias=bias, precision="float32")
    args.update({key: value.to(DEVICE) if isinstance(value, torch.Tensor) else value for key, value in bad.items()})
    with pytest.raises(ValueError, match=message):
        softmax_triton.softmax_cross_entropy_fused(args["hidden"], args["weight"], args["bias"], rows, targets,
                                                   grad_losses, precision=args["precision"])


@pytest.mark.parametrize("with_bias", [True, False])
def test_the_kernels_are_sound_custom_ops(with_bias):
    """torch.library.opcheck: the schemas, and the fake implementations (what torch.compile and
    CUDA graph capture see) give the real outputs' shapes and types."""
    hidden, weight, bias, *_ = _problem()
    bias = bias if with_bias else None
    count = torch.tensor([len(hidden) - 5], dtype=torch.int32, device=DEVICE)
    torch.library.opcheck(softmax_triton.softmax_rows, (hidden, weight, bias, count, 3, "float32"))
    lse2, scale = torch.randn(len(hidden), device=DEVICE), torch.rand(len(hidden), device=DEVICE)
    torch.library.opcheck(softmax_triton.softmax_columns, (hidden, weight, bias, count, lse2, scale, "float32"))


def test_splits_outside_the_vocabulary_are_a_clear_error():
    hidden, weight, bias, *_ = _problem()
    with pytest.raises(ValueError, match="splits=9 must be between 1 and the vocabulary's 5 tiles"):
        softmax_triton.softmax_rows(hidden * 1.0, weight, bias, torch.ones(1, dtype=torch.int32), 9, "float32")


@pytest.mark.skipif(torch.cuda.is_available(), reason="CPU tensors")
def test_cpu_tensors_need_the_interpreter(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET")
    hidden, weight, bias, rows, targets, grad_losses = _problem()
    with pytest.raises(ValueError, match="runs on CUDA tensors, got cpu; on a CPU use model.kernels=auto"):
        softmax_triton.softmax_cross_entropy_fused(hidden, weight, bias, rows, targets, grad_losses)


# -- the models ----------------------------------------------------------------------------------
def _batch(vocab_size=30, windows=64, window=3, seed=1):
    gen = torch.Generator().manual_seed(seed)
    mask = torch.rand(windows, 2 * window, generator=gen) < 0.7
    mask[:4] = False  # windows without a context word (padding, or centers alone in their document)
    return {"centers": torch.randint(0, vocab_size, (windows,), generator=gen),
            "contexts": torch.randint(0, vocab_size, (windows, 2 * window), generator=gen), "mask": mask}


@pytest.mark.parametrize("arch", ["cbow", "skipgram"])
@pytest.mark.parametrize("padded", [True, False])
def test_a_models_fused_step_equals_its_pytorch_step(arch, padded):
    vocab = Vocabulary([f"w{i}" for i in range(30)], [5] * 30)
    grads = {}
    for kernels in ("torch", "triton"):
        torch.manual_seed(0)
        model = build_model(vocab, f"model={arch}", "model.embedding_dim=24", "model.window=3",
                            f"model.kernels={kernels}").to(DEVICE)
        assert model.fused_step() == (kernels == "triton")
        batch = {key: value.to(DEVICE) for key, value in _batch().items()}
        losses, weights = model.backward_by_hand(batch, padded=padded)
        grads[kernels] = [losses, weights] + [p.grad.to_dense() for p in (model.in_embed.weight, model.out.weight,
                                                                          model.out.bias)]
    for name, a, b in zip(("losses", "weights", "embedding", "weight", "bias"), grads["triton"], grads["torch"]):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-7), name


@pytest.mark.parametrize("arch", ["cbow", "skipgram"])
def test_a_batch_without_context_words_gives_an_empty_fused_step(arch):
    vocab = Vocabulary([f"w{i}" for i in range(30)], [5] * 30)
    model = build_model(vocab, f"model={arch}", "model.embedding_dim=8", "model.window=3",
                        "model.kernels=triton").to(DEVICE)
    batch = {key: value.to(DEVICE) for key, value in _batch().items()}
    batch["mask"][:] = False
    losses, weights = model.backward_by_hand(batch, padded=False)
    assert losses.shape == weights.shape == (0,)
    assert not model.out.weight.grad.any() and not model.in_embed.weight.grad.to_dense().any()


@pytest.mark.parametrize("arch", ["cbow", "skipgram"])
def test_the_fused_padded_step_leaves_the_host_nothing_to_wait_for(arch):
    """Outside the kernels, the fused step reads nothing back: Skip-gram's distinct centers are
    counted on the device, and the kernels skip the rows past the count."""
    vocab = Vocabulary([f"w{i}" for i in range(30)], [5] * 30)
    model = build_model(vocab, f"model={arch}", "model.embedding_dim=8", "model.window=3",
                        "model.kernels=triton").to(DEVICE)
    batch = {key: value.to(DEVICE) for key, value in _batch().items()}
    with HostReads() as recorder:
        model.backward_by_hand(batch, padded=True)
    assert recorder.reads == []


def test_the_gpu_path_with_the_fused_step_trains_the_planted_classes(make_cfg, monkeypatch):
    """A GPU's whole path on the CPU: windows drawn on the device, the padded step through the
    kernels (in the interpreter), dense Adam. Skip-gram's only: CBOW's step, whose softmax rows are
    all its windows, takes twice as long in the interpreter, and its fused step equals PyTorch's above."""
    arch = "skipgram"
    monkeypatch.setattr(FullSoftmaxModule, "padded_inputs", lambda self: True)
    cfg = make_cfg([f"model={arch}", *TRAINER, "model.sampling=device", "model.kernels=triton", "trainer.max_epochs=3",
                    "data.max_docs=150", "callbacks.neighbours.probe_words=[cat,red]"])
    result = train(cfg)
    assert result["model"].fused_step()
    share = planted_neighbour_share(result["model"].word_vectors())
    assert share >= 0.9, f"{arch}: only {share:.0%} of the top-5 neighbours share the planted class"


def test_model_kernels_errors_name_the_fix(make_cfg, monkeypatch):
    with pytest.raises(ConfigError, match="model.kernels='fused' is unknown; use auto \\(the fused Triton step on CUDA"):
        train(make_cfg(["model=cbow", "model.kernels=fused"]))
    with pytest.raises(ConfigError, match="model.kernels=triton takes embeddings up to 256 wide, not "
                                          "model.embedding_dim=300; use model.kernels=auto"):
        train(make_cfg(["model=cbow", "model.kernels=triton", "model.embedding_dim=300"]))
    vocab = Vocabulary([f"w{i}" for i in range(30)], [5] * 30)
    model = build_model(vocab, "model=cbow", "model.embedding_dim=8", "model.kernels=triton")
    if not torch.cuda.is_available():
        monkeypatch.delenv("TRITON_INTERPRET")
        with pytest.raises(ConfigError, match="model.kernels=triton runs on CUDA, not cpu; use model.kernels=auto"):
            model.fused_step()
    monkeypatch.setattr("w2v.models.base.triton_available", lambda: False)
    with pytest.raises(ConfigError, match="model.kernels=triton needs Triton; pip install triton"):
        model.fused_step()


def test_auto_takes_the_fused_step_on_cuda_only_where_the_kernels_fit():
    vocab = Vocabulary([f"w{i}" for i in range(30)], [5] * 30)
    model = build_model(vocab, "model=skipgram", "model.embedding_dim=8")
    assert not model.fused_step()  # a CPU takes PyTorch's step, even where the interpreter could run the kernels
    if torch.cuda.is_available():
        assert model.cuda().fused_step()
        assert not build_model(vocab, "model=skipgram", "model.embedding_dim=300").cuda().fused_step()


def test_the_kernels_compile_for_a_gpu_without_spilling():
    """Ahead of time, for an H100's sm_90, with the ptxas that Triton's wheel carries: what the
    interpreter cannot show (the kernels' lowering to the GPU) fails here, and the softmax's default
    tiles keep every value in registers and fit any recent GPU's shared memory."""
    script = Path(__file__).resolve().parents[1] / "scripts" / "kernel_resources.py"
    done = subprocess.run([sys.executable, str(script), "--check", "--dim", "100", "--dim", "256"],
                          capture_output=True, text=True, timeout=300)
    if done.returncode == 2:
        pytest.skip(done.stderr.strip())
    assert done.returncode == 0, done.stdout + done.stderr
    assert "does not compile" not in done.stdout and done.stdout.count("| softmax") == 16


def test_the_scripts_tile_configurations_take_the_widths_block():
    assert softmax_triton.blocks_given("64,32,8,3", 100) == (64, 32, 128, 8, 3)
    with pytest.raises(ValueError, match="--blocks '64,32,8': give rows,vocab,warps,stages, e.g. 64,32,8,3"):
        softmax_triton.blocks_given("64,32,8", 100)


class _ReplayedTrace:
    """cuda_graph.StepGraph's contract without CUDA: the captured function is traced once into its
    tensor operations (torch.fx's make_fx; the Triton kernels are custom ops, single nodes), which
    each replay runs again on the tensors it read at capture, writing the results into the
    capture's outputs, as a graph's kernels rewrite theirs. No Python of the step runs at a replay:
    a value baked into the capture, a tensor the model has replaced since, or a gradient not handed
    back to the parameters gives other results than the eager steps. The capture must read nothing
    back to the host, which a CUDA graph could not capture."""

    made: list[_ReplayedTrace] = []

    def __init__(self, fn):
        from torch.fx.experimental.proxy_tensor import make_fx

        with HostReads() as recorder:
            self._trace = make_fx(lambda: fn())()  # no arguments: the step reads what it was bound to
        assert recorder.reads == [], f"the captured step reads {recorder.reads} back to the host"
        self.outputs, self.replays = self._trace(), 0  # the capture's outputs, as a graph's pool holds them
        type(self).made.append(self)

    def __call__(self):
        for old, new in zip(_flat(self.outputs), _flat(self._trace()), strict=True):
            old.copy_(new)
        self.replays += 1
        return self.outputs


def _flat(outputs):
    for item in outputs:
        yield from _flat(item) if isinstance(item, tuple) else [item]


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU runs the real graph: test_the_graphed_step_on_cuda")
@pytest.mark.parametrize("arch", ["cbow", "skipgram"])
def test_the_graphed_step_gives_the_eager_steps_vectors(make_cfg, tmp_path, monkeypatch, arch):
    """model.cuda_graph=true: a block's first step eager, the next captured, the later ones
    replayed; the run's vectors are those of the eager steps, bit for bit."""
    monkeypatch.setattr(FullSoftmaxModule, "padded_inputs", lambda self: True)
    monkeypatch.setattr(FullSoftmaxModule, "check_cuda_graph", lambda self: None)  # CUDA's: tested below
    monkeypatch.setattr("w2v.models.full_softmax.StepGraph", _ReplayedTrace)
    monkeypatch.setattr(_ReplayedTrace, "made", [])
    settings = [f"model={arch}", "model.sampling=device", "model.kernels=triton", "trainer.max_epochs=2",
                "data.max_docs=50", "data.batch_size=200", "callbacks.neighbours.probe_words=[cat,red]"]
    runs = {graph: train(make_cfg([*settings, f"model.cuda_graph={graph}"], output_dir=tmp_path / str(graph)))
            for graph in ("false", "true")}
    eager, graphed = ((runs[g]["output_dir"] / "vectors.txt").read_bytes() for g in ("false", "true"))
    assert graphed == eager
    graphs = _ReplayedTrace.made
    steps = runs["true"]["trainer"].global_step  # 2 epochs of one block: a first step, a capture, replays, a last step
    assert len(graphs) == 2 and all(g.replays >= 2 for g in graphs) and sum(g.replays for g in graphs) >= steps - 4


def test_a_graph_needs_windows_drawn_on_the_device(make_cfg, monkeypatch):
    monkeypatch.setattr(FullSoftmaxModule, "padded_inputs", lambda self: True)
    monkeypatch.setattr(FullSoftmaxModule, "check_cuda_graph", lambda self: None)
    cfg = make_cfg(["model=cbow", "model.cuda_graph=true", "data.shuffle_unit=document"])  # the loader's windows
    with pytest.raises(ConfigError, match="model.cuda_graph=true replays windows drawn on the device, but the data "
                                          "loader draws these.*or use model.cuda_graph=false"):
        train(cfg)


def test_cuda_graph_errors_name_the_fix(monkeypatch):
    vocab = Vocabulary([f"w{i}" for i in range(30)], [5] * 30)
    with pytest.raises(ConfigError, match="model.cuda_graph='yes' must be true"):
        build_model(vocab, "model=cbow", "model.cuda_graph='yes'")
    model = build_model(vocab, "model=cbow", "model.embedding_dim=8", "model.cuda_graph=true")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="model.cuda_graph=true replays a step on CUDA, not cpu; use "
                                              "model.cuda_graph=false"):
            model.check_cuda_graph()
    model._device = torch.device("cuda", 0)  # the other conditions, as a GPU's model would meet them
    meets = {"draws_on_device": True, "padded_inputs": True, "fused_step": True, "triton_windows": True}
    for condition, message in (("draws_on_device", "replays windows drawn on the device; use model.sampling=auto"),
                               ("padded_inputs", "replays the fixed-shape step, which LazyAdam does not take"),
                               ("fused_step", "replays the Triton kernels; use model.kernels=auto")):
        for name, value in meets.items():
            monkeypatch.setattr(FullSoftmaxModule, name, lambda self, value=value and name != condition: value)
        with pytest.raises(ConfigError, match=message + ".*or model.cuda_graph=false"):
            model.check_cuda_graph()
    for name in meets:
        monkeypatch.setattr(FullSoftmaxModule, name, lambda self: True)
    model.check_cuda_graph()  # every condition met
    model._max_norm = 1.0
    with pytest.raises(ConfigError, match="cannot replay model.max_norm's renormalisation.*model.max_norm=null"):
        model.check_cuda_graph()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("arch", ["cbow", "skipgram"])
def test_the_graphed_step_on_cuda(make_cfg, tmp_path, monkeypatch, arch):
    """A real CUDA graph: the run trains as the eager steps do (up to the order of atomic adds)."""
    made = []

    class Recorded(StepGraph):
        def __init__(self, fn):
            super().__init__(fn)
            made.append(self)

    monkeypatch.setattr("w2v.models.full_softmax.StepGraph", Recorded)
    settings = [f"model={arch}", *TRAINER, "trainer.max_epochs=2", "callbacks.neighbours.probe_words=[cat,red]"]
    runs = {graph: train(make_cfg([*settings, f"model.cuda_graph={graph}"], output_dir=tmp_path / str(graph)))
            for graph in ("false", "true")}
    model = runs["true"]["model"]
    assert model.fused_step() and model.triton_windows() and model._step_graph is None  # dropped at the end
    assert len(made) == 2 and all(graph.replays >= 2 for graph in made)  # one block an epoch
    losses = [runs[g]["metrics"]["train/loss_epoch"] for g in ("false", "true")]
    assert abs(losses[0] - losses[1]) < 1e-3 * losses[0]
    share = planted_neighbour_share(model.word_vectors())
    assert share >= 0.9, f"{arch}: only {share:.0%} of the top-5 neighbours share the planted class"
