"""The exception types whose message is a single line that names the fix: bad input, and a full disk."""

from __future__ import annotations

import errno
import numbers
import os


class ConfigError(ValueError):
    """Raised for invalid input (config values, corpus files, archives, checkpoints) before any heavy work."""


class StorageError(ConfigError):
    """A write failed for lack of space: the message names the path and what to do; earlier files are intact."""


def check_number(name: str, value, *, integer: bool = False, least: float | None = None, above: float | None = None,
                 most: float | None = None, null: str | None = None, unit: str = "") -> None:
    """A one-line ConfigError unless `value` is a number (an int with `integer`; never a bool) with
    `least` <= value, `above` < value and value <= `most` where given, or None where `null` says what
    null means. `unit` says what the number counts, e.g. " (words on each side)"."""
    if value is None and null is not None:
        return
    number = isinstance(value, numbers.Integral if integer else numbers.Real) and not isinstance(value, bool)
    if number and (least is None or value >= least) and (above is None or value > above) and (
            most is None or value <= most):
        return
    kind = "an integer" if integer else "a number"
    if least is not None and most is not None:
        kind += f" between {least} and {most}"
    elif least is not None:
        kind += f" of at least {least}"
    elif above is not None:
        kind += f" above {above}"
    message = f"{name}={value} must be {kind}{unit}" + (f", or null {null}" if null is not None else "")
    if null is not None and isinstance(value, str) and value.strip().lower() in ("none", "nil", ""):
        message += f"; write null, not {value!r}"
    elif integer and isinstance(value, float) and value.is_integer():
        message += f"; write {int(value)}"
    raise ConfigError(message)


# The errors that mean the disk (or the user's quota on it) is full.
FULL_DISK = (errno.ENOSPC, errno.EDQUOT)


def full_disk_error(err: BaseException, path: str | os.PathLike, fix: str) -> StorageError | None:
    """A StorageError for `err` if it says the disk is full while writing `path`, else None."""
    if not isinstance(err, OSError) or err.errno not in FULL_DISK:
        return None
    return StorageError(f"no space left on the disk of {path} ({os.strerror(err.errno)}): {fix}; "
                        f"nothing earlier was overwritten")
