"""Plain-text corpora: one document per line, UTF-8, plain or compressed (gzip, bzip2, xz, known by
their first bytes), invalid bytes replaced."""

from __future__ import annotations

import importlib
import logging
import os
import re
import zlib
from pathlib import Path
from typing import Iterator

from w2v.errors import ConfigError

log = logging.getLogger(__name__)

# What changes the lines read from a file beside its bytes: a cached tokenization read otherwise is
# not reused (the text datamodule's cache key holds it).
READER_VERSION = 2

# Compressed formats by their first bytes (a file's suffix may not say): format, module that opens it.
_COMPRESSED = {
    re.compile(rb"\x1f\x8b"): ("gzip", "gzip"),
    re.compile(rb"BZh[1-9]1AY&SY"): ("bzip2", "bz2"),  # a block's start after the header: not a text's "BZh"
    re.compile(rb"\xfd7zXZ\x00"): ("xz", "lzma"),
}
_UNREADABLE = {  # first bytes of what this reader cannot take, and the fix
    b"\x28\xb5\x2f\xfd": "is compressed with zstd; decompress it (zstd -d) or recompress it with gzip",
    b"PK\x03\x04": "is a zip archive; unzip it and set data.path to the text file inside",
    b"\xff\xfe": "is UTF-16 text; convert it to UTF-8 (iconv -f UTF-16 -t UTF-8)",
    b"\xfe\xff": "is UTF-16 text; convert it to UTF-8 (iconv -f UTF-16 -t UTF-8)",
}


def check_text_file(path: str | os.PathLike) -> Path:
    """Fail early, in one line, on a corpus file that is missing, unreadable, empty or in a form not read."""
    path = Path(path).expanduser()
    if not path.exists():
        raise ConfigError(f"corpus file {path} does not exist; set data.path to a UTF-8 text file, one document per line")
    if not path.is_file():
        raise ConfigError(f"corpus path {path} is not a file; set data.path to a UTF-8 text file, one document per line")
    if not os.access(path, os.R_OK):
        raise ConfigError(f"corpus file {path} is not readable; fix its permissions or copy it somewhere readable")
    if path.stat().st_size == 0:
        raise ConfigError(f"corpus file {path} is empty; point data.path at a file with at least one document")
    head = _head(path)
    for magic, problem in _UNREADABLE.items():
        if head.startswith(magic):
            raise ConfigError(f"corpus file {path} {problem}")
    return path


def _head(path: Path) -> bytes:
    with open(path, "rb") as handle:
        return handle.read(10)


def _form(path: Path) -> tuple[str, object | None]:
    """The file's format and the module that opens it (None: plain text, the built-in open)."""
    head = _head(path)
    for magic, (name, module) in _COMPRESSED.items():
        if magic.match(head):
            return name, importlib.import_module(module)
    return "text", None


def iter_lines(path: str | os.PathLike, max_docs: int | None = None) -> Iterator[str]:
    """The non-blank lines of `path`, at most `max_docs` of them, read as consumed.

    Lines end at "\\n" only (a stray carriage return inside a line does not cut it); a byte-order
    mark is dropped; bytes that are not UTF-8 become U+FFFD, and a warning counts the lines that
    held some (alpha_only drops the words they are in).
    """
    path = check_text_file(path)
    form, module = _form(path)
    opener = open if module is None else module.open
    broken = (OSError, EOFError, zlib.error) + ((module.LZMAError,) if form == "xz" else ())
    count = damaged = 0
    try:
        with opener(path, "rt", encoding="utf-8-sig", errors="replace", newline="\n") as handle:
            for line in handle:
                if line.strip():
                    damaged += "\ufffd" in line
                    yield line
                    count += 1
                    if max_docs is not None and count >= max_docs:
                        break
    except broken as err:
        raise ConfigError(f"could not read corpus file {path} ({err}); check that it is intact "
                          f"{'text' if form == 'text' else form + ' data'}") from err
    if count == 0:
        raise ConfigError(f"corpus file {path} has no non-blank line; add documents, one per line")
    if damaged:
        log.warning("%d of the %d lines read from %s hold bytes that are not UTF-8 (replaced by U+FFFD); if the file "
                    "is in another encoding, convert it, e.g. iconv -f latin1 -t utf-8", damaged, count, path)


def read_lines(path: str | os.PathLike, max_docs: int | None = None) -> list[str]:
    """All of `iter_lines` in a list."""
    return list(iter_lines(path, max_docs))
