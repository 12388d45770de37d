"""Atomic file writing and cross-process locks, so no reader ever sees a half-written file."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import tempfile
from pathlib import Path
from typing import IO, Iterator

from filelock import FileLock

from w2v.errors import ConfigError, full_disk_error


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8",
                 fix: str = "free space there or write to another disk") -> Iterator[IO]:
    """Open a temporary file beside `path`; rename it onto `path` only if the block succeeds.

    The data reach the disk before the rename and the rename before this returns, so after a
    crash or a power loss `path` holds either its previous content or the whole new one. A full
    disk is a StorageError naming `path` and `fix`, with `path` as it was; a folder at `path`, or a
    file where its folder should be, a ConfigError.
    """
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{path} is a folder; name a file to write instead")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise ConfigError(f"cannot write {path}: a file stands where a folder of its path should be; name "
                          "another path") from None
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else encoding) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        sync_directory(path.parent)
    except BaseException as err:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        full = full_disk_error(err, path, fix)
        if full is not None:
            raise full from err
        raise


def sync_directory(folder: Path) -> None:
    """Make a rename in `folder` durable (a no-op where directories cannot be opened, as on Windows)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def file_lock(path: str | os.PathLike) -> Iterator[None]:
    """Hold an exclusive lock on `path` (created if needed) for the duration of the block: the
    operating system's advisory lock through the `filelock` package, released if the process dies."""
    if getattr(multiprocessing.current_process(), "_inheriting", False):
        # A worker process that re-runs its parent's script while it starts (spawn) would wait here
        # for a lock its parent holds, and the parent for the worker: stop the worker instead.
        raise RuntimeError('w2v was started again in a worker process, because the script that runs it has no '
                           '`if __name__ == "__main__":` guard; put the script\'s code under one')
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(path):
        yield
