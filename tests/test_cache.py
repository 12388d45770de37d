"""The token cache: built once, reused, keyed by every setting, rebuilt when damaged."""

from __future__ import annotations

import logging
import subprocess
import sys

import numpy as np

from w2v.api import build_datamodule
from w2v.data import datamodule as datamodule_module
from w2v.fileio import file_lock


def _dm(tmp_path, corpus, **tokenizer):
    return build_datamodule("data=text", f"data.path={corpus}", f"data.cache_dir={tmp_path / 'cache'}",
                            "data.tokenizer.n_process=1", "data.vocab.min_count=1",
                            *[f"data.tokenizer.{k}={v}" for k, v in tokenizer.items()])


def test_second_setup_reads_the_cache(tmp_path, planted_corpus, monkeypatch):
    first = _dm(tmp_path, planted_corpus)
    first.setup()
    calls = []
    monkeypatch.setattr(datamodule_module, "tokenize_stream", lambda *a, **k: calls.append(1))
    second = _dm(tmp_path, planted_corpus)
    second.setup()
    assert calls == []
    assert np.array_equal(first.corpus.all_ids()[0], second.corpus.all_ids()[0]) and first.vocab.words == second.vocab.words


def test_settings_and_content_change_the_key(tmp_path, planted_corpus):
    _dm(tmp_path, planted_corpus).setup()
    _dm(tmp_path, planted_corpus, lowercase=False).setup()
    copy = tmp_path / "copy.txt"
    copy.write_text(planted_corpus.read_text() + "one more line\n")
    _dm(tmp_path, copy).setup()
    assert len(list((tmp_path / "cache").glob("text-*"))) == 3


def test_damaged_entry_is_rebuilt_and_reported(tmp_path, planted_corpus, caplog):
    good = _dm(tmp_path, planted_corpus)
    good.setup()
    entry = next((tmp_path / "cache").glob("text-*"))
    ids = entry / "ids.int32"
    ids.write_bytes(ids.read_bytes()[:-40])  # truncated
    with caplog.at_level(logging.WARNING):
        again = _dm(tmp_path, planted_corpus)
        again.setup()
    assert any("damaged" in r.message and "ids.int32" in r.message for r in caplog.records)
    assert np.array_equal(good.corpus.all_ids()[0], again.corpus.all_ids()[0])


def test_cache_lock_excludes_other_processes(tmp_path):
    lock = tmp_path / "locks" / ".entry.lock"
    probe = ("import sys; from filelock import FileLock, Timeout\n"
             "try:\n    FileLock(sys.argv[1], timeout=0.1).acquire()\nexcept Timeout:\n    sys.exit(3)\n")
    with file_lock(lock):
        held = subprocess.run([sys.executable, "-c", probe, str(lock)], timeout=60)
    free = subprocess.run([sys.executable, "-c", probe, str(lock)], timeout=60)
    assert (held.returncode, free.returncode) == (3, 0)
