"""`w2v-query PATH most-similar|analogy|similarity|doesnt-match ...`: ask trained vectors questions."""

from __future__ import annotations

import argparse

from w2v.commands import run_command
from w2v.errors import ConfigError
from w2v.vectors import WordVectors, load_vectors


def _known(vectors: WordVectors, words: list[str]) -> None:
    for word in words:
        if word not in vectors:
            near = vectors.close_spellings(word)
            hint = f"; did you mean {', '.join(near)}?" if near else ""
            raise ConfigError(f"{word!r} is not in the vocabulary of {len(vectors):,} words{hint}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="w2v-query", description="Query trained word vectors.")
    parser.add_argument("path", help="a run directory, or a vectors file in word2vec text or binary format")
    sub = parser.add_subparsers(dest="query", required=True)
    p = sub.add_parser("most-similar", help="nearest neighbours of a word")
    p.add_argument("word")
    p.add_argument("-k", type=int, default=10)
    p = sub.add_parser("analogy", help="A is to B as C is to ?")
    p.add_argument("words", nargs=3, metavar="WORD")
    p.add_argument("-k", type=int, default=5)
    p = sub.add_parser("similarity", help="cosine similarity of two words")
    p.add_argument("words", nargs=2, metavar="WORD")
    p = sub.add_parser("doesnt-match", help="the word that fits least with the others")
    p.add_argument("words", nargs="+", metavar="WORD")
    args = parser.parse_args(argv)

    vectors = load_vectors(args.path)
    if args.query == "most-similar":
        _known(vectors, [args.word])
        for word, score in vectors.most_similar(args.word, topn=args.k):
            print(f"{score:7.3f}  {word}")
    elif args.query == "analogy":
        a, b, c = args.words
        _known(vectors, [a, b, c])
        for word, score in vectors.most_similar(positive=[b, c], negative=[a], topn=args.k):
            print(f"{score:7.3f}  {word}")
    elif args.query == "similarity":
        _known(vectors, args.words)
        print(f"{vectors.similarity(*args.words):.4f}")
    else:
        _known(vectors, args.words)
        print(vectors.doesnt_match(args.words))
    return 0


def cli() -> None:
    run_command(main)
