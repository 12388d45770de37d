"""`w2v query PATH most-similar|analogy|similarity|doesnt-match ...`: ask trained vectors questions."""

from __future__ import annotations

import argparse
import json

from w2v.commands import positive_int
from w2v.errors import ConfigError
from w2v.vectors import WordVectors, load_vectors


def _known(vectors: WordVectors, words: list[str]) -> None:
    for word in words:
        if word not in vectors:
            near = vectors.close_spellings(word)
            hint = f"; did you mean {', '.join(near)}?" if near else ""
            raise ConfigError(f"{word!r} is not in the vocabulary of {len(vectors):,} words{hint}")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", help="a run directory, or a vectors file in word2vec text or binary format")
    sub = parser.add_subparsers(dest="query", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="print JSON instead of text")
    p = sub.add_parser("most-similar", parents=[common], help="nearest neighbours of a word, by cosine similarity")
    p.add_argument("word", help="the word whose neighbours to list")
    p.add_argument("-k", type=positive_int, default=10, help="how many neighbours (default 10)")
    p = sub.add_parser("analogy", parents=[common], help="A is to B as C is to ? (3CosAdd)")
    p.add_argument("words", nargs=3, metavar="WORD", help="A B C")
    p.add_argument("-k", type=positive_int, default=5, help="how many answers (default 5)")
    p = sub.add_parser("similarity", parents=[common], help="cosine similarity of two words")
    p.add_argument("words", nargs=2, metavar="WORD", help="the two words")
    p = sub.add_parser("doesnt-match", parents=[common], help="the word that fits least with the others")
    p.add_argument("words", nargs="+", metavar="WORD", help="two or more words")


def answer(vectors: WordVectors, args: argparse.Namespace):
    """The query's answer as data: [(word, similarity)], a similarity, or a word."""
    if args.query == "most-similar":
        _known(vectors, [args.word])
        return vectors.most_similar(args.word, topn=args.k)
    _known(vectors, args.words)
    if args.query == "analogy":
        a, b, c = args.words
        return vectors.most_similar(positive=[b, c], negative=[a], topn=args.k)
    if args.query == "similarity":
        return vectors.similarity(*args.words)
    return vectors.doesnt_match(args.words)


def run(args: argparse.Namespace) -> int:
    result = answer(load_vectors(args.path), args)
    if args.json:
        if isinstance(result, list):
            result = [{"word": word, "similarity": score} for word, score in result]
        print(json.dumps(result if isinstance(result, (list, str)) else float(result)))
    elif isinstance(result, list):
        for word, score in result:
            print(f"{score:7.3f}  {word}")
    else:
        print(result if isinstance(result, str) else f"{result:.4f}")
    return 0
