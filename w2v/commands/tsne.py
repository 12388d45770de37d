"""`w2v tsne PATH`: the t-SNE map of probe words and their nearest neighbours, as a PNG."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from w2v.commands import positive_int
from w2v.errors import ConfigError
from w2v.vectors import load_vectors


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", help="a run directory, or a vectors file in word2vec text or binary format")
    parser.add_argument("-o", "--output", help="PNG to write, or a folder for tsne.png (default: the run directory, "
                                               "or the vectors file's folder)")
    parser.add_argument("-w", "--probe_words", "--probe-words", nargs="+", metavar="WORD",
                        help="the words to draw with their neighbours (default: callbacks.neighbours.probe_words "
                             "of conf/callbacks/default.yaml)")
    parser.add_argument("-k", type=positive_int, default=10, help="neighbours per probe word (default 10)")


def default_probe_words() -> list[str]:
    from omegaconf import OmegaConf

    from w2v import CONFIG_DIR

    return list(OmegaConf.load(Path(CONFIG_DIR) / "callbacks" / "default.yaml").neighbours.probe_words)


def run(args: argparse.Namespace) -> int:
    from w2v.plots import save_figure, tsne_figure

    args.probe_words = args.probe_words or default_probe_words()
    path = Path(args.path)
    figure = tsne_figure(load_vectors(path), args.probe_words, args.k)
    if figure is None:
        raise ConfigError(f"none of the probe words {args.probe_words} is in the vocabulary; name others with --probe_words")
    output = Path(args.output) if args.output else (path if path.is_dir() else path.parent)
    if output.is_dir() or (args.output or "").endswith(("/", os.sep)):  # a folder, or one to make
        output = output / "tsne.png"
    print(save_figure(figure, output))
    return 0
