"""The exception types whose message is a single line that names the fix: bad input, and a full disk."""

from __future__ import annotations

import errno
import os


class ConfigError(ValueError):
    """Raised for invalid input (config values, corpus files, archives, checkpoints) before any heavy work."""


class StorageError(ConfigError):
    """A write failed for lack of space: the message names the path and what to do; earlier files are intact."""


# The errors that mean the disk (or the user's quota on it) is full.
FULL_DISK = (errno.ENOSPC, errno.EDQUOT)


def full_disk_error(err: BaseException, path: str | os.PathLike, fix: str) -> StorageError | None:
    """A StorageError for `err` if it says the disk is full while writing `path`, else None."""
    if not isinstance(err, OSError) or err.errno not in FULL_DISK:
        return None
    return StorageError(f"no space left on the disk of {path} ({os.strerror(err.errno)}): {fix}; "
                        f"nothing earlier was overwritten")
