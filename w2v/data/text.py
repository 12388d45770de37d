"""Plain-text corpora: one document per line, UTF-8 (plain or .gz), invalid bytes replaced."""

from __future__ import annotations

import gzip
import os
from pathlib import Path
from typing import Iterator

from w2v.errors import ConfigError


def check_text_file(path: str | os.PathLike) -> Path:
    """Fail early, in one line, on a corpus file that is missing, unreadable or empty."""
    path = Path(path).expanduser()
    if not path.exists():
        raise ConfigError(f"corpus file {path} does not exist; set data.path to a UTF-8 text file, one document per line")
    if not path.is_file():
        raise ConfigError(f"corpus path {path} is not a file; set data.path to a UTF-8 text file, one document per line")
    if not os.access(path, os.R_OK):
        raise ConfigError(f"corpus file {path} is not readable; fix its permissions or copy it somewhere readable")
    if path.stat().st_size == 0:
        raise ConfigError(f"corpus file {path} is empty; point data.path at a file with at least one document")
    return path


def iter_lines(path: str | os.PathLike, max_docs: int | None = None) -> Iterator[str]:
    """The non-blank lines of `path` (gzip if it ends in .gz), at most `max_docs` of them, read as consumed."""
    path = check_text_file(path)
    opener = gzip.open if path.suffix == ".gz" else open
    count = 0
    try:
        with opener(path, "rt", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.strip():
                    yield line
                    count += 1
                    if max_docs is not None and count >= max_docs:
                        return
    except (OSError, EOFError) as err:
        raise ConfigError(f"could not read corpus file {path} ({err}); check that it is intact text or gzip") from err
    if count == 0:
        raise ConfigError(f"corpus file {path} has no non-blank line; add documents, one per line")


def read_lines(path: str | os.PathLike, max_docs: int | None = None) -> list[str]:
    """All of `iter_lines` in a list."""
    return list(iter_lines(path, max_docs))
