"""Intrinsic evaluation: word-pair similarity (WordSim-353, SimLex-999) and analogies (Google's file).

Scores follow gensim's `evaluate_word_pairs` / `evaluate_word_analogies` conventions (case-insensitive,
restricted to the most frequent words, unknown words skipped and counted), so numbers compare.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from w2v.errors import ConfigError
from w2v.vectors import WordVectors

DEFAULT_RESTRICT_VOCAB = 300_000
BENCHMARK_FILES = {"wordsim353": "wordsim353.tsv", "simlex999": "simlex999.txt", "analogies": "questions-words.txt"}


def gensim_test_file(name: str) -> Path:
    """Path of an evaluation file shipped with gensim (`gensim/test/test_data/NAME`)."""
    try:
        import gensim
    except ImportError:
        raise ConfigError(
            f"the benchmark file {name} comes with gensim, which is not installed; pip install gensim "
            f"(or, in w2v's checkout, pip install -e '.[eval]'), or name your own copy of the file"
        ) from None
    path = Path(gensim.__file__).parent / "test" / "test_data" / name
    if not path.is_file():
        raise ConfigError(f"gensim has no {path}; reinstall gensim or name your own copy of {name}")
    return path


def read_word_pairs(path: str | os.PathLike) -> list[tuple[str, str, float]]:
    """(word, word, score) triples of a tab-separated pair file; lines starting with # are comments."""
    path = Path(path)
    pairs = []
    for line_no, line in enumerate(_read_lines(path), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.rstrip("\n").split("\t")
        if len(parts) < 3:
            raise ConfigError(f"{path}:{line_no}: expected 'word<TAB>word<TAB>score', found {len(parts)} column(s)")
        try:
            score = float(parts[2])
        except ValueError:
            raise ConfigError(f"{path}:{line_no}: score {parts[2]!r} is not a number") from None
        pairs.append((parts[0], parts[1], score))
    return pairs


def read_analogies(path: str | os.PathLike) -> list[tuple[str, list[tuple[str, str, str, str]]]]:
    """Sections of an analogy file: `: name` headers followed by lines of four words."""
    path = Path(path)
    sections: list[tuple[str, list]] = []
    for line_no, line in enumerate(_read_lines(path), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        if line.startswith(":"):
            sections.append((line[1:].strip(), []))
            continue
        words = line.split()
        if len(words) != 4:
            raise ConfigError(f"{path}:{line_no}: expected four words, found {len(words)}")
        if not sections:
            raise ConfigError(f"{path}:{line_no}: question before the first ': section' header")
        sections[-1][1].append(tuple(words))
    return sections


def _read_lines(path: Path) -> list[str]:
    if not path.is_file():
        raise ConfigError(f"benchmark file {path} does not exist; fix the path")
    return path.read_text(encoding="utf-8", errors="replace").splitlines()


def _restricted_index(vectors: WordVectors, restrict_vocab: int | None, case_insensitive: bool) -> dict[str, int]:
    """word -> row among the first `restrict_vocab` rows; lower-cased keys keep the most frequent form."""
    n = len(vectors) if restrict_vocab is None else min(restrict_vocab, len(vectors))
    index: dict[str, int] = {}
    for i in range(n - 1, -1, -1):  # reversed, so that a more frequent spelling overwrites a rarer one
        index[vectors.words[i].lower() if case_insensitive else vectors.words[i]] = i
    return index


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation (average ranks for ties)."""
    return pearson(_ranks(a), _ranks(b))


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, float) - np.mean(a), np.asarray(b, float) - np.mean(b)
    denom = math.sqrt(float(a @ a) * float(b @ b))
    return float(a @ b / denom) if denom else float("nan")


def _ranks(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, float)
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values))
    sorted_vals = values[order]
    i = 0
    while i < len(values):
        j = i
        while j + 1 < len(values) and sorted_vals[j + 1] == sorted_vals[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0 + 1
        i = j + 1
    return ranks


@dataclass
class PairScores:
    pearson: float
    spearman: float
    oov_ratio: float  # share of pairs with a word out of vocabulary, 0..1
    pairs: int
    oov_pairs: int


def evaluate_word_pairs(vectors: WordVectors, pairs_path: str | os.PathLike,
                        restrict_vocab: int | None = DEFAULT_RESTRICT_VOCAB, case_insensitive: bool = True) -> PairScores:
    """Correlation of cosine similarities with human scores, over the pairs whose words are known."""
    pairs = read_word_pairs(pairs_path)
    index = _restricted_index(vectors, restrict_vocab, case_insensitive)
    fold = str.lower if case_insensitive else (lambda w: w)
    ids = [(index.get(fold(a)), index.get(fold(b)), score) for a, b, score in pairs]
    known_pairs = np.array([(ia, ib) for ia, ib, _ in ids if ia is not None and ib is not None], np.int64).reshape(-1, 2)
    gold = np.array([score for ia, ib, score in ids if ia is not None and ib is not None], float)
    unit = vectors.unit
    sims = np.einsum("pd,pd->p", unit[known_pairs[:, 0]], unit[known_pairs[:, 1]]).astype(float)  # (P,) cosines
    known, oov = len(sims), len(pairs) - len(sims)
    return PairScores(
        pearson=pearson(sims, gold) if known > 1 else float("nan"),
        spearman=spearman(sims, gold) if known > 1 else float("nan"),
        oov_ratio=oov / len(pairs) if pairs else 0.0,
        pairs=len(pairs),
        oov_pairs=oov,
    )


@dataclass
class AnalogyScores:
    accuracy: float  # over all answered questions
    semantic: float
    syntactic: float
    correct: int
    answered: int
    skipped: int  # questions with a word outside the restricted vocabulary
    sections: dict[str, float] = field(default_factory=dict)


ANALOGY_METHODS = ("3cosadd", "3cosmul")


def evaluate_word_analogies(vectors: WordVectors, analogies_path: str | os.PathLike, method: str = "3cosadd",
                            restrict_vocab: int | None = DEFAULT_RESTRICT_VOCAB, case_insensitive: bool = True) -> AnalogyScores:
    """Accuracy on `a : b :: c : d` questions, answering with the closest word to b - a + c (3CosAdd)
    or by 3CosMul, among the first `restrict_vocab` words, the three question words excluded."""
    if method not in ANALOGY_METHODS:
        raise ConfigError(f"analogy method {method!r} is unknown; use 3cosadd or 3cosmul")
    return evaluate_analogy_methods(vectors, analogies_path, restrict_vocab, case_insensitive)[method]


def evaluate_analogy_methods(vectors: WordVectors, analogies_path: str | os.PathLike,
                             restrict_vocab: int | None = DEFAULT_RESTRICT_VOCAB,
                             case_insensitive: bool = True) -> dict[str, AnalogyScores]:
    """Both methods' scores (`evaluate_word_analogies`) from one pass over the questions."""
    from w2v.kernels.analogies import best_answers

    sections = read_analogies(analogies_path)
    index = _restricted_index(vectors, restrict_vocab, case_insensitive)
    fold = str.lower if case_insensitive else (lambda w: w)
    n = len(vectors) if restrict_vocab is None else min(restrict_vocab, len(vectors))
    names, known, skipped = [], [], 0
    for name, questions in sections:
        for question in questions:
            ids = tuple(index.get(fold(w)) for w in question)
            if None in ids:
                skipped += 1
            else:
                names.append(name)
                known.append(ids)
    rows = np.array(known, dtype=np.int64).reshape(-1, 4)  # (Q, 4) a, b, c, expected
    unit = np.ascontiguousarray(vectors.unit[:n], dtype=np.float32)  # (n, D)
    words, inverse = np.unique(rows[:, :3], return_inverse=True)  # (W,) the distinct question words
    sims = unit[words] @ unit.T  # (W, n) their cosines to every candidate
    answers = best_answers(sims, inverse.reshape(-1, 3), np.ascontiguousarray(rows[:, :3]))  # 2 x (Q,)
    return {method: _analogy_scores(names, answer == rows[:, 3], skipped)
            for method, answer in zip(ANALOGY_METHODS, answers)}


def _analogy_scores(sections: list[str], correct: np.ndarray, skipped: int) -> AnalogyScores:
    """Accuracies overall, per kind (sections named gram* are syntactic) and per section."""
    per_section: dict[str, list[int]] = {}
    totals = {"semantic": [0, 0], "syntactic": [0, 0]}
    for name, right in zip(sections, correct.tolist()):
        for tally in (per_section.setdefault(name, [0, 0]), totals["syntactic" if name.startswith("gram") else "semantic"]):
            tally[0] += right
            tally[1] += 1
    ratio = lambda c, a: c / a if a else float("nan")  # noqa: E731
    answered = totals["semantic"][1] + totals["syntactic"][1]
    return AnalogyScores(
        accuracy=ratio(int(correct.sum()), answered),
        semantic=ratio(*totals["semantic"]),
        syntactic=ratio(*totals["syntactic"]),
        correct=int(correct.sum()),
        answered=answered,
        skipped=skipped,
        sections={name: c / a for name, (c, a) in per_section.items()},
    )


def benchmark_paths(wordsim: str | None = None, simlex: str | None = None,
                    analogies: str | None = None) -> dict[str, Path]:
    """The benchmark files to use: those named, else gensim's copies."""
    named = {"wordsim353": wordsim, "simlex999": simlex, "analogies": analogies}
    return {key: Path(path) if path else gensim_test_file(BENCHMARK_FILES[key]) for key, path in named.items()}


def evaluate_all(vectors: WordVectors, wordsim: str | None = None, simlex: str | None = None, analogies: str | None = None,
                 restrict_vocab: int | None = DEFAULT_RESTRICT_VOCAB) -> dict[str, float]:
    """The headline scores as flat `name: value` metrics (files default to gensim's copies)."""
    paths = benchmark_paths(wordsim, simlex, analogies)
    metrics: dict[str, float] = {}
    for name in ("wordsim353", "simlex999"):
        scores = evaluate_word_pairs(vectors, paths[name], restrict_vocab)
        metrics.update({f"{name}_spearman": scores.spearman, f"{name}_oov": scores.oov_ratio})
    for method, scores in evaluate_analogy_methods(vectors, paths["analogies"], restrict_vocab).items():
        metrics[f"analogy_{method}"] = scores.accuracy
        if method == "3cosadd":
            metrics.update({"analogy_semantic": scores.semantic, "analogy_syntactic": scores.syntactic})
    return metrics
