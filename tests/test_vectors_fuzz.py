"""Damaged vectors files for `w2v eval` and `w2v query`: a clear one-line error, never a traceback."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from w2v.errors import ConfigError
from w2v.vectors import WordVectors, load_vectors


def _good_files(tmp_path):
    rng = np.random.default_rng(0)
    vectors = WordVectors([f"w{i}" for i in range(20)], rng.normal(size=(20, 8)).astype(np.float32))
    vectors.save_word2vec_format(tmp_path / "good.txt")
    vectors.save_word2vec_format(tmp_path / "good.bin", binary=True)
    return [(tmp_path / "good.txt").read_bytes(), (tmp_path / "good.bin").read_bytes()]


def _mutations(data: bytes, rng: np.random.Generator):
    yield data[: rng.integers(0, len(data))]  # truncated anywhere
    flipped = bytearray(data)
    for i in rng.integers(0, len(data), 5):
        flipped[i] = rng.integers(0, 256)
    yield bytes(flipped)  # random bytes changed, the header included
    header, _, body = data.partition(b"\n")
    for bad_header in (b"20", b"20 8 3", b"-5 8", b"20 -8", b"0 8", b"20 0", b"99999999 8", b"20 99999999", b"x y", b""):
        yield bad_header + b"\n" + body
    yield rng.integers(0, 256, 500, dtype=np.uint8).tobytes()
    yield b"20 8\n" + rng.integers(0, 256, 500, dtype=np.uint8).tobytes()


@pytest.mark.parametrize("seed", range(20))
def test_damaged_vectors_files_load_or_fail_cleanly(tmp_path, seed):
    rng = np.random.default_rng(seed)
    for good in _good_files(tmp_path):
        for i, data in enumerate(_mutations(good, rng)):
            path = tmp_path / f"bad{i}.vec"
            path.write_bytes(data)
            try:
                vectors = load_vectors(path)
            except ConfigError as err:
                assert "\n" not in str(err) and str(path) in str(err)
            else:  # what loads is usable
                assert len(vectors.words) == len(vectors.vectors) and np.isfinite(vectors.vectors).all()


@pytest.mark.parametrize("command", ["eval", "query"])
def test_commands_report_a_damaged_file_in_one_line(tmp_path, command):
    data = _good_files(tmp_path)[0]
    (tmp_path / "cut.txt").write_bytes(data[: len(data) // 2])
    args = [str(tmp_path / "cut.txt")] + (["most-similar", "w1"] if command == "query" else [])
    done = subprocess.run([sys.executable, "-m", "w2v", command, *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert done.stderr.startswith("error: ") and "Traceback" not in done.stderr
    assert "announces 20 vectors" in done.stderr
