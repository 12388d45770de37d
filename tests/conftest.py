"""Shared fixtures: a planted-structure corpus, the real Hydra config composed (once per list of overrides)
and shrunk for tests, and a seeded random state for every test; and, in a checkout whose kernels were
never compiled, the kernels compiled on the spare core while the suite starts."""

from __future__ import annotations

import copy
import functools
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

# Without a GPU the Triton kernels run in Triton's interpreter, on CPU tensors. It must be chosen
# before Triton is first imported (Lightning imports it).
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")


def _patch_triton_language_once_a_launch() -> None:
    """Triton's interpreter patches triton.language for itself at each launch, and again at each call
    of a @triton.jit helper within it (the kernels' draws, their windows): those repeats, the same
    patches, took most of a kernel's time in the tests. Here a helper whose language
    modules the launch has patched runs without patching them again; anything else is left to Triton.
    Where Triton's interpreter lacks these internals, nothing changes."""
    try:
        from triton.runtime import interpreter
    except ImportError:
        return
    patch, launch = getattr(interpreter, "_patch_lang", None), getattr(interpreter, "GridExecutor", None)
    if patch is None or launch is None or not hasattr(interpreter, "_LangPatchScope"):
        return
    patched: set[int] = set()  # the language modules the running launch has patched
    run, run_depth = launch.__call__, [0]

    def languages(fn) -> set[int]:
        return {id(v) for v in fn.__globals__.values() if v is interpreter.tl or v is interpreter.tl.core}

    def patch_once(fn):
        wanted = languages(fn)
        if patched and wanted <= patched:
            return interpreter._LangPatchScope()
        scope = patch(fn)
        if run_depth[0]:
            patched.update(wanted)
        return scope

    def run_patched(self, *args, **kwargs):
        run_depth[0] += 1
        try:
            return run(self, *args, **kwargs)
        finally:
            run_depth[0] -= 1
            if not run_depth[0]:
                patched.clear()

    interpreter._patch_lang = patch_once
    launch.__call__ = run_patched


if os.environ.get("TRITON_INTERPRET") == "1":
    _patch_triton_language_once_a_launch()

import lightning as L  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from omegaconf import DictConfig, open_dict  # noqa: E402

from w2v import api  # noqa: E402
from w2v.data import tokenize  # noqa: E402

SHARED_ARCHIVE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "aclImdb_v1.tar.gz"

# Five classes of six words. A document talks about one class, so words of a class share contexts.
PLANTED_CLASSES = {
    "animal": ["cat", "dog", "horse", "cow", "sheep", "goat"],
    "color": ["red", "blue", "green", "yellow", "purple", "orange"],
    "food": ["bread", "cheese", "apple", "rice", "soup", "cake"],
    "tool": ["hammer", "saw", "drill", "wrench", "chisel", "pliers"],
    "place": ["city", "village", "forest", "beach", "desert", "island"],
}
FILLER = ["the", "a", "and", "of", "with", "then"]


@dataclass(frozen=True)
class _Token:
    """What w2v's tokenizer reads of a spaCy token."""

    text: str
    is_space = False

    @property
    def lemma_(self) -> str:
        return self.text

    @property
    def is_alpha(self) -> bool:
        return self.text.isalpha()


class _WhitespacePipeline:
    def pipe(self, texts, batch_size=64):
        for text in texts:
            yield [_Token(word) for word in text.split()]


# A run of at least this many tests compiles the kernels on the spare core when they need compiling.
WARM_UP_FROM = 100
_WARMING = "W2V_TESTS_WARMING_KERNELS"  # set in the warm-up's own pytest process (or to start none)
_warm_up: dict = {}

# Test files whose tests, and the processes they start, call none of the kernels that take long to
# compile (the Triton interpreter's tests, the tokenizer's, the cache's, the evaluation's): the
# suite runs them first, so that in a fresh clone the warm-up compiles those kernels meanwhile.
# A test here that comes to call one compiles it itself: slower, not wrong.
RUN_FIRST = ("test_softmax_triton.py", "test_softmax_on_device.py", "test_sampling_triton.py",
             "test_step_profile.py", "test_evaluation.py", "test_reliability.py", "test_corpora.py",
             "test_cache.py", "test_gpu_benchmark.py", "test_vectors_fuzz.py", "test_vocab.py", "test_runs.py",
             "test_lazy_adam.py")


def _kernels_compiled() -> bool:
    """Whether Numba's cache holds the sequential kernel compiled from its source as it is now.
    True where Numba's cache cannot tell: nothing is started then."""
    try:
        from w2v.kernels.sequential import sequential_chunks

        return bool(sequential_chunks._cache._cache_file._load_index())
    except Exception:  # noqa: BLE001  Numba's cache internals moved: leave the suite as it is
        return True


def pytest_collection_finish(session) -> None:
    """In a checkout whose Numba kernels were never compiled (a fresh clone, as CI's), the suite
    would compile them one after the other, a few minutes on one core, while the machine's second
    core mostly idles. A long run therefore starts the tests marked `warms_kernels` (cheap tests
    that call the compiled kernels as the suite calls them) in a pytest process of its own, which
    writes the kernels to Numba's cache while the suite runs the files of RUN_FIRST; the suite's
    tests load the kernels from there when they get to them, or compile them themselves if they get
    there first. The warm-up's results are not the suite's: those tests run again in the suite."""
    if os.environ.get(_WARMING) or len(session.items) < WARM_UP_FROM or _kernels_compiled():
        return
    basetemp = Path(tempfile.mkdtemp(prefix="w2v-kernels-"))
    _warm_up["basetemp"] = basetemp
    _warm_up["process"] = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-m", "warms_kernels", "-p", "no:cacheprovider",
         f"--basetemp={basetemp / 'tmp'}", str(Path(__file__).parent)],
        env={**os.environ, _WARMING: "1"}, cwd=Path(__file__).parents[1],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def pytest_collection_modifyitems(config, items) -> None:
    """The suite runs the files of RUN_FIRST first; the warm-up (a run of `-m warms_kernels`) runs
    its tests by their marker's `order` (the kernels the suite needs soonest first), then in file
    order. Both sorts are stable."""
    if config.option.markexpr == "warms_kernels":
        def rank(item) -> float:
            marker = item.get_closest_marker("warms_kernels")
            return marker.kwargs.get("order", float("inf")) if marker is not None else float("inf")

        items.sort(key=rank)
    else:
        items.sort(key=lambda item: item.path.name not in RUN_FIRST)


def pytest_sessionfinish(session) -> None:
    """A warm-up still running is stopped, and its folder removed."""
    process = _warm_up.pop("process", None)
    if process is None:
        return
    process.kill()  # nothing if it has ended
    process.wait()
    shutil.rmtree(_warm_up.pop("basetemp"), ignore_errors=True)


@pytest.fixture(autouse=True, scope="session")
def tokenizer_without_spacy():
    """The GPU machine has no spaCy: there the planted corpora (words between spaces) are split on
    spaces, for the whole session (module-scoped runs included)."""
    with pytest.MonkeyPatch.context() as patch:
        if importlib.util.find_spec("spacy") is None:
            patch.setattr(tokenize, "load_pipeline", lambda settings: _WhitespacePipeline())
        yield


@pytest.fixture(autouse=True)
def seeded_torch():
    """Every test starts from the same state of torch's global generator, whatever ran before it, so
    a test that draws random inputs gives the same result alone as in the suite."""
    torch.manual_seed(0)


def write_planted_corpus(path: Path, n_docs: int = 600, doc_len: int = 40, seed: int = 0) -> Path:
    """Documents drawn from one planted class each, mixed with common filler words."""
    rng = np.random.default_rng(seed)
    classes = list(PLANTED_CLASSES.values())
    lines = []
    for _ in range(n_docs):
        words = classes[rng.integers(len(classes))]
        tokens = [words[rng.integers(len(words))] if rng.random() < 0.75 else FILLER[rng.integers(len(FILLER))]
                  for _ in range(doc_len)]
        lines.append(" ".join(tokens))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def planted_neighbour_share(vectors, topn: int = 5) -> float:
    """The share of each planted word's `topn` nearest neighbours that belong to its own class."""
    hits = total = 0
    for words in PLANTED_CLASSES.values():
        for word in words:
            neighbours = [w for w, _ in vectors.most_similar(word, topn=topn)]
            hits += sum(n in words for n in neighbours)
            total += len(neighbours)
    return hits / total


@pytest.fixture(scope="session")
def planted_corpus(tmp_path_factory) -> Path:
    return write_planted_corpus(tmp_path_factory.mktemp("corpus") / "planted.txt")


def compose_config(overrides: list[str] | None = None) -> DictConfig:
    return api.compose_config(*(overrides or []))


@pytest.fixture(autouse=True, scope="session")
def compose_each_config_once():
    """Hydra composes a config in a quarter of a second, and tests compose the same overrides over
    and over (a model's settings in each case of a parametrized test): here each list of overrides
    is composed once, and every caller gets a copy of its own to change. The composition reads no
    state a test may change (the config files are the package's; the environment and the working
    directory are read when a value is resolved), and a list that fails to compose is not kept."""
    composed = functools.lru_cache(maxsize=None)(api.compose_config)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(api, "compose_config", lambda *overrides: copy.deepcopy(composed(*overrides)))
        yield


def shrunk_config(overrides: Sequence[str], corpus: Path, folder: Path, output_dir: Path | None = None) -> DictConfig:
    """The real config composed with `overrides`, shrunk to `corpus` (the planted one) and `folder`."""
    base = ["data=text", f"data.path={corpus}", "trainer.max_epochs=1", "trainer.enable_progress_bar=false",
            "data.batch_size=256", "data.tokenizer.n_process=1", "data.vocab.min_count=1"]
    cfg = compose_config([*base, *overrides])
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir or folder / "run")
        cfg.paths.cache_dir = str(folder / "cache")
        cfg.paths.data_dir = str(folder / "data")
        cfg.trainer.log_every_n_steps = 5
        cfg.callbacks.projector.n_words = 50
        if "compile" in cfg.model:  # compiling takes longer than these tiny runs; one test covers it
            cfg.model.compile = False
    return cfg


@pytest.fixture
def make_cfg(tmp_path, planted_corpus):
    """Compose the real config with `overrides`, shrunk to the planted corpus and this test's tmp_path."""

    def make(overrides: list[str] | None = None, output_dir: Path | None = None) -> DictConfig:
        return shrunk_config(overrides or [], planted_corpus, tmp_path, output_dir)

    return make


@pytest.fixture
def shared_archive() -> Path:
    """The IMDb archive beside the repository; required on CI, skipped elsewhere when absent."""
    if SHARED_ARCHIVE.is_file():
        return SHARED_ARCHIVE
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI needs the IMDb archive at {SHARED_ARCHIVE}")
    pytest.skip("IMDb archive not available")


class StopAfterEpoch(L.Callback):
    """Stops training at the end of epoch `epoch` (0-based), as an interrupted run would."""

    def __init__(self, epoch: int = 0):
        self.epoch = epoch

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if trainer.current_epoch == self.epoch:
            trainer.should_stop = True
