"""`w2v eval PATH`: score a run's (or any word2vec file's) vectors on the standard benchmarks."""

from __future__ import annotations

import argparse
import json

from w2v.commands import positive_int
from w2v.evaluation import DEFAULT_RESTRICT_VOCAB, benchmark_paths, evaluate_analogy_methods, evaluate_word_pairs
from w2v.vectors import load_vectors


def evaluate(path: str, wordsim: str | None, simlex: str | None, analogies: str | None, restrict_vocab: int) -> dict:
    vectors = load_vectors(path)
    paths = benchmark_paths(wordsim, simlex, analogies)
    result: dict = {"vectors": str(path), "words": len(vectors), "dim": vectors.dim, "restrict_vocab": restrict_vocab}
    for name in ("wordsim353", "simlex999"):
        result[name] = vars(evaluate_word_pairs(vectors, paths[name], restrict_vocab))
    for method, scores in evaluate_analogy_methods(vectors, paths["analogies"], restrict_vocab).items():
        result[f"analogy_{method}"] = vars(scores)
    return result


def table(result: dict) -> str:
    lines = [f"{result['vectors']}: {result['words']:,} words, dimension {result['dim']}", "",
             f"{'benchmark':<22}{'score':>9}{'pearson':>9}{'oov':>8}{'answered':>10}"]
    for name in ("wordsim353", "simlex999"):
        s = result[name]
        lines.append(f"{name + ' spearman':<22}{s['spearman']:>9.3f}{s['pearson']:>9.3f}{s['oov_ratio']:>8.1%}{s['pairs'] - s['oov_pairs']:>10}")
    for method in ("3cosadd", "3cosmul"):
        s = result[f"analogy_{method}"]
        answered = s["answered"] + s["skipped"]
        lines.append(f"{'analogy ' + method:<22}{s['accuracy']:>9.1%}{'':>9}{s['skipped'] / max(answered, 1):>8.1%}{s['answered']:>10}")
        lines.append(f"{'  semantic':<22}{s['semantic']:>9.1%}")
        lines.append(f"{'  syntactic':<22}{s['syntactic']:>9.1%}")
    return "\n".join(lines)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", help="a run directory, or a vectors file in word2vec text or binary format")
    parser.add_argument("--wordsim", help="word-pair file, tab-separated (default: gensim's wordsim353.tsv)")
    parser.add_argument("--simlex", help="word-pair file, tab-separated (default: gensim's simlex999.txt)")
    parser.add_argument("--analogies", help="analogy file (default: gensim's questions-words.txt)")
    parser.add_argument("--restrict_vocab", "--restrict-vocab", type=positive_int, default=DEFAULT_RESTRICT_VOCAB,
                        help=f"score only the N most frequent words (default {DEFAULT_RESTRICT_VOCAB:,})")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    result = evaluate(args.path, args.wordsim, args.simlex, args.analogies, args.restrict_vocab)
    print(json.dumps(result, indent=1) if args.json else table(result))
    return 0
