"""Time one evaluation of a run's vectors (what `callbacks.evaluation` does each epoch), against
answering the analogies by one matrix product per method and batch of questions (the way w2v
answered them before `w2v/kernels/analogies.py`), in one run on the same vectors.

    python scripts/evaluation_speed.py outputs/train/runs/<run>     # e.g. after `w2v train`
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from w2v.evaluation import (DEFAULT_RESTRICT_VOCAB, _restricted_index, benchmark_paths, evaluate_all,
                            evaluate_analogy_methods, read_analogies)
from w2v.vectors import load_vectors


def products_per_method(vectors, path, restrict_vocab=DEFAULT_RESTRICT_VOCAB, batch_size=512) -> dict[str, int]:
    """Correct answers by each method, each batch of questions scored against the whole vocabulary."""
    index = _restricted_index(vectors, restrict_vocab, True)
    unit = vectors.unit[: min(restrict_vocab, len(vectors))]
    rows = np.array([ids for _, questions in read_analogies(path) for q in questions
                     if None not in (ids := tuple(index.get(w.lower()) for w in q))], np.int64)
    correct = {}
    for method in ("3cosadd", "3cosmul"):
        right = 0
        for start in range(0, len(rows), batch_size):
            chunk = rows[start : start + batch_size]  # (Q, 4)
            a, b, c = (unit[chunk[:, i]] for i in range(3))
            if method == "3cosadd":
                scores = (b - a + c) @ unit.T
            else:
                cos = lambda x: (x @ unit.T + 1) / 2  # noqa: E731
                scores = cos(b) * cos(c) / (cos(a) + 1e-3)
            np.put_along_axis(scores, chunk[:, :3], -np.inf, axis=1)
            right += int((scores.argmax(1) == chunk[:, 3]).sum())
        correct[method] = right
    return correct


def best_time(work, repeats: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - start)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", help="a run directory or a vectors file")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each; the fastest counts (default 3)")
    args = parser.parse_args()
    vectors = load_vectors(args.path)
    analogies = benchmark_paths()["analogies"]
    evaluate_analogy_methods(vectors, analogies)  # compiles (or loads) the kernel first
    whole, metrics = best_time(lambda: evaluate_all(vectors), args.repeats)
    ours, scores = best_time(lambda: evaluate_analogy_methods(vectors, analogies), args.repeats)
    theirs, correct = best_time(lambda: products_per_method(vectors, analogies), args.repeats)
    assert {m: s.correct for m, s in scores.items()} == correct, (scores, correct)
    print(f"{len(vectors):,} words, dimension {vectors.dim}; best of {args.repeats}\n")
    print("| | seconds |\n|---|---|")
    print(f"| one evaluation (pairs, both analogy methods) | {whole:.2f} |")
    print(f"| analogies, one pass (w2v/kernels/analogies.py) | {ours:.2f} |")
    print(f"| analogies, a matrix product per method and batch | {theirs:.2f} |")
    print(f"| ratio | {theirs / ours:.1f}x |\n")
    print(", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))


if __name__ == "__main__":
    main()
