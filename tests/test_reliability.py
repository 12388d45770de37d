"""Shared caches under concurrent runs, and bad bytes fed to the reader and the tokenizer."""

from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pytest

from w2v.api import build_datamodule
from w2v.errors import ConfigError


def _text_datamodule(path, cache_dir):
    return build_datamodule("data=text", f"data.path={path}", f"data.cache_dir={cache_dir}",
                            "data.tokenizer.n_process=1", "data.vocab.min_count=1")


# The scripts below build a cache entry as a DataModule's setup does, through the same cache and
# tokenizer calls, without importing Lightning, which would take most of each process's time.
BUILD = """
from w2v.data.cache import cached_tokens, id_sink
from w2v.data.text import iter_lines
from w2v.data.tokenize import TokenizerSettings, tokenize_stream
settings = TokenizerSettings(spacy_model=sys.argv[3])
tokens = cached_tokens(sys.argv[2], "text", {"path": sys.argv[1]},
                       lambda ids: tokenize_stream(iter_lines(sys.argv[1]), settings, int(sys.argv[4]), id_sink(ids)))
"""
PREPARE = "import logging, sys\nlogging.basicConfig(level=logging.INFO, format='%(message)s')\n" + BUILD + "print(len(tokens.ids))\n"


def test_two_processes_started_together_tokenize_once(tmp_path, planted_corpus):
    cache = tmp_path / "cache"
    procs = [subprocess.Popen([sys.executable, "-c", PREPARE, str(planted_corpus), str(cache), "blank:en", "1"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err[-2000:] for _, err in outputs]
    logs = "".join(err for _, err in outputs)
    assert logs.count("Cached tokenized corpus") == 1
    assert outputs[0][0] == outputs[1][0]
    assert [p.name for p in cache.iterdir() if not p.name.startswith(".")] == [next(cache.glob("text-*")).name]


def _fuzz_lines(rng: np.random.Generator) -> bytes:
    pieces = [
        rng.integers(0, 256, 5000, dtype=np.uint8).tobytes(),  # random bytes, NULs included
        b"\xff\xfe\xc3\x28 invalid utf-8 \xa0\xa1\n",
        b"\x00\x00 nul bytes \x00 inside words\n",
        b"\n\n\n   \n\t\n",
        b"!!! ... ??? --- ;;; \xe2\x80\x94\n",
        b"word " * (2 * 1024 * 1024) + b"\n",  # a 10 MB line
        "caf\u00e9 na\u00efve \u4e2d\u6587 \U0001f600\n".encode(),
    ]
    order = rng.permutation(len(pieces))
    return b"".join(pieces[i] for i in order)


@pytest.mark.parametrize("seed", [0, 1])
def test_bad_bytes_never_crash(tmp_path, seed):
    path = tmp_path / "fuzz.txt"
    path.write_bytes(_fuzz_lines(np.random.default_rng(seed)))
    dm = _text_datamodule(path, tmp_path / "cache")
    dm.setup()
    assert "word" in dm.vocab and len(dm.corpus) > 0


def test_corpus_of_punctuation_and_noise_only_is_a_clear_error(tmp_path):
    path = tmp_path / "noise.txt"
    path.write_bytes(b"!!! ??? ...\n\x00\x01\x02\n12345 678\n\xff\xfe\n")
    dm = _text_datamodule(path, tmp_path / "cache")
    with pytest.raises(ConfigError, match="no token left after preprocessing"):
        dm.setup()
    assert not any((tmp_path / "cache").glob("text-*"))  # nothing half-built left behind


# Run as a file, so that spawned workers re-run it as their parent's main script.
UNGUARDED = "import sys\n" + BUILD
GUARDED = "if __name__ == '__main__':\n" + "".join("    " + line + "\n" for line in UNGUARDED.strip().splitlines())


def _prepare_on_two_processes(tmp_path, script: str, pipeline: str = "blank:en") -> subprocess.CompletedProcess:
    """Tokenize 2,500 lines (enough for worker processes) with the script, failing the test if it hangs."""
    corpus, path = tmp_path / "lines.txt", tmp_path / "prepare.py"
    corpus.write_text("".join(f"line {i} of a corpus\n" for i in range(2500)))
    path.write_text(script)
    return subprocess.run([sys.executable, str(path), str(corpus), str(tmp_path / "cache"), pipeline, "2"],
                          capture_output=True, text=True, timeout=180)


def test_an_uninstalled_pipeline_on_worker_processes_stops_with_its_error(tmp_path):
    done = _prepare_on_two_processes(tmp_path, GUARDED, "no_such_pipeline")
    assert done.returncode != 0
    assert "ConfigError: spaCy pipeline 'no_such_pipeline' is not installed" in done.stderr.splitlines()[-1]
    assert not [p for p in (tmp_path / "cache").iterdir() if p.is_dir()]  # no entry, no half-built folder


def test_a_script_without_main_guard_stops_instead_of_waiting_forever(tmp_path):
    done = _prepare_on_two_processes(tmp_path, UNGUARDED)
    assert done.returncode != 0
    assert 'no `if __name__ == "__main__":` guard' in done.stderr  # the worker's error
    assert "a spaCy worker process stopped abruptly" in done.stderr.splitlines()[-1]
    assert not [p for p in (tmp_path / "cache").iterdir() if p.is_dir()]
    assert _prepare_on_two_processes(tmp_path, GUARDED).returncode == 0  # the fix the error names


def test_folder_of_a_build_killed_outright_is_removed(tmp_path, planted_corpus):
    make = lambda: _text_datamodule(planted_corpus, tmp_path / "cache")  # noqa: E731
    make().setup()
    entry = next((tmp_path / "cache").glob("text-*"))
    shutil.rmtree(entry)
    stale = tmp_path / "cache" / f".{entry.name}.k1lled"  # as tempfile.mkdtemp names a build's folder
    stale.mkdir()
    (stale / "ids.int32").write_bytes(b"\0" * 64)
    make().setup()
    assert not stale.exists() and (entry / "meta.json").is_file()
