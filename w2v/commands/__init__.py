"""The `w2v` command: `w2v train` (Hydra overrides, as `w2v-train`), and `eval`, `query`, `report`, `tsne`.

Each tool's module gives `configure(parser)` and `run(args) -> int`. Option names are the config
keys they match (`--restrict_vocab` as `callbacks.evaluation.restrict_vocab`; the hyphenated
spelling works too), `-o/--output` names what a tool writes, and `--json` prints data as JSON.
"""

from __future__ import annotations

import argparse
import importlib
import runpy
import sys

from w2v import __version__
from w2v.config import exit_if_not_composed
from w2v.errors import ConfigError

# subcommand: (module, one-line help)
TOOLS = {
    "eval": ("w2v.commands.evaluate", "score vectors on WordSim-353, SimLex-999 and the Google analogies"),
    "query": ("w2v.commands.query", "ask vectors for neighbours, analogies, similarities, the odd one out"),
    "report": ("w2v.commands.report", "tabulate and plot the runs of a sweep"),
    "tsne": ("w2v.commands.tsne", "draw probe words and their neighbours with t-SNE"),
}


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1 (a count of words, answers or neighbours)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return value


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="w2v", description="Train, score and inspect word2vec embeddings.",
                                  epilog="`w2v train --help` shows the training config's groups and keys (Hydra).")
    top.add_argument("--version", action="version", version=f"w2v {__version__}")
    sub = top.add_subparsers(dest="tool", required=True, metavar="{train,eval,query,report,tsne}")
    sub.add_parser("train", help="train a run: Hydra overrides such as model=cbow trainer.max_epochs=3 (as w2v-train)",
                   add_help=False)
    for name, (module, summary) in TOOLS.items():
        importlib.import_module(module).configure(sub.add_parser(name, help=summary, description=summary))
    return top


def train(overrides: list[str]) -> None:
    """Runs the training entry point as `python -m w2v.training OVERRIDES...` would: Hydra reads
    sys.argv, and a data-parallel run's launcher starts its other processes the same way. Overrides
    that do not compose stop it first, before w2v.training imports PyTorch and Lightning."""
    exit_if_not_composed(overrides)
    sys.argv = [sys.argv[0], *overrides]
    runpy.run_module("w2v.training", init_globals={"OVERRIDES_CHECKED": True}, run_name="__main__", alter_sys=True)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["train"]:
        train(argv[1:])
        return 0
    args = parser().parse_args(argv)
    return importlib.import_module(TOOLS[args.tool][0]).run(args)


def train_cli() -> None:
    """The `w2v-train` console script: `w2v train` under its own name."""
    train(sys.argv[1:])


def cli() -> None:
    """The console script: a ConfigError becomes one `error:` line on stderr and exit status 1, not a traceback."""
    try:
        sys.exit(main())
    except ConfigError as err:
        sys.exit(f"error: {err}")
