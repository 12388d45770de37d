"""On-disk cache of tokenized corpora, keyed by the corpus and every setting that changes the tokens.

An entry is a folder holding `ids.int32` (the token ids, raw little-endian int32, written as the
tokenizer produces them and memory-mapped on load), `offsets.npy`, `words.txt`, `counts.npy` and
`meta.json` (written last, with each file's size and sha256). It is built in a temporary folder and
renamed into place under a lock, so concurrent runs of a sweep build it once and never read a
half-written entry.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable

import numpy as np

from w2v.data.tokenize import TokenizedCorpus, TokenMerger
from w2v.errors import full_disk_error
from w2v.fileio import atomic_write, file_lock, sync_directory

log = logging.getLogger(__name__)

CACHE_FORMAT = 2
CACHE_FIX = "free space there, or point the cache elsewhere with W2V_CACHE_DIR or paths.cache_dir"
_FILES = ("ids.int32", "offsets.npy", "words.txt", "counts.npy")
ID_DTYPE = np.dtype("<i4")


def cache_key(description: dict) -> str:
    """A short stable hash of a JSON-serialisable description of the corpus and settings."""
    blob = json.dumps({"format": CACHE_FORMAT, **description}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def _write_entry(folder: Path, build: Callable[[BinaryIO], TokenMerger], description: dict) -> None:
    with open(folder / "ids.int32", "wb") as ids_file:
        merger = build(ids_file)
    np.save(folder / "offsets.npy", merger.offsets())
    np.save(folder / "counts.npy", merger.counts)
    # One word per line: spaCy tokens never contain a newline once whitespace tokens are skipped.
    (folder / "words.txt").write_text("".join(w.replace("\n", " ") + "\n" for w in merger.words), encoding="utf-8")
    files = {name: {"size": (folder / name).stat().st_size, "sha256": _sha256(folder / name)} for name in _FILES}
    for name in _FILES:  # on the disk before meta.json says they are complete
        with open(folder / name, "rb+") as handle:
            os.fsync(handle.fileno())
    with atomic_write(folder / "meta.json", fix=CACHE_FIX) as out:
        json.dump({"format": CACHE_FORMAT, "description": description, "files": files}, out, indent=1, default=str)


def id_sink(handle: BinaryIO) -> Callable[[np.ndarray], None]:
    """Appends each array of token ids to `handle` in the cache's format."""
    return lambda ids: handle.write(np.ascontiguousarray(ids, dtype=ID_DTYPE).tobytes())


def entry_problem(folder: Path) -> str | None:
    """None if the entry is complete and intact, else what is wrong with it."""
    meta_path = folder / "meta.json"
    if not meta_path.is_file():
        return "no meta.json"
    try:
        meta = json.loads(meta_path.read_text())
        for name, expected in meta["files"].items():
            path = folder / name
            if not path.is_file():
                return f"{name} is missing"
            if path.stat().st_size != expected["size"]:
                return f"{name} has {path.stat().st_size} bytes, expected {expected['size']}"
            if _sha256(path) != expected["sha256"]:
                return f"{name} fails its checksum"
    except (ValueError, KeyError, TypeError) as err:
        return f"meta.json is unreadable ({err})"
    return None


def _load_entry(folder: Path) -> TokenizedCorpus:
    words = (folder / "words.txt").read_text(encoding="utf-8").split("\n")[:-1]
    return TokenizedCorpus(
        words=words,
        ids=np.memmap(folder / "ids.int32", dtype=ID_DTYPE, mode="r"),
        offsets=np.load(folder / "offsets.npy"),
        counts=np.load(folder / "counts.npy"),
    )


def entry_folder(cache_dir: str | Path, name: str, description: dict) -> Path:
    """The folder of the cache entry for `description` (whether or not it exists)."""
    return Path(cache_dir).expanduser() / f"{name}-{cache_key(description)}"


def cached_tokens(cache_dir: str | Path, name: str, description: dict,
                  build: Callable[[BinaryIO], TokenMerger]) -> TokenizedCorpus:
    """The cached tokenized corpus for `description`; if it is absent or damaged, `build(ids_file)`
    tokenizes once, streaming the ids into the open file, and returns its merger (words, counts, offsets)."""
    folder = entry_folder(cache_dir, name, description)
    cache_dir = folder.parent
    with file_lock(cache_dir / f".{folder.name}.lock"):
        if folder.exists():
            problem = entry_problem(folder)
            if problem is None:
                log.info("Loading tokenized corpus from cache %s", folder)
                return _load_entry(folder)
            log.warning("Cache entry %s is damaged (%s); rebuilding it", folder, problem)
            shutil.rmtree(folder)
        for stale in cache_dir.glob(f".{folder.name}.*"):  # a build killed outright (SIGKILL) leaves its folder
            if stale.is_dir():  # no other build runs: this process holds the lock
                log.info("Removing %s, left by a build that was stopped", stale)
                shutil.rmtree(stale, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=cache_dir))
        try:
            _write_entry(tmp, build, description)
            tmp.rename(folder)
            sync_directory(cache_dir)
        except BaseException as err:
            shutil.rmtree(tmp, ignore_errors=True)
            full = full_disk_error(err, cache_dir, CACHE_FIX)
            if full is not None:
                raise full from err
            raise
        log.info("Cached tokenized corpus in %s", folder)
        return _load_entry(folder)
