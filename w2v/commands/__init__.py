"""Command-line tools beside `w2v-train`: w2v-eval, w2v-query, w2v-report, w2v-tsne."""

from __future__ import annotations

import sys
from typing import Callable

from w2v.errors import ConfigError


def run_command(main: Callable[[list[str] | None], int], argv: list[str] | None = None) -> None:
    """Run a command's main; a ConfigError becomes one `error:` line on stderr and exit status 1, not a traceback."""
    try:
        sys.exit(main(argv))
    except ConfigError as err:
        sys.exit(f"error: {err}")
