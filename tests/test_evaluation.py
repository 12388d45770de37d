"""Intrinsic evaluation: hand-built vectors with known answers, agreement with gensim, bad files."""

from __future__ import annotations

import numpy as np
import pytest

from w2v.errors import ConfigError
from w2v.evaluation import (BENCHMARK_FILES, evaluate_word_analogies, evaluate_word_pairs, gensim_test_file,
                            read_word_pairs, spearman)
from w2v.vectors import WordVectors


def toy_vectors() -> WordVectors:
    # gender along axis 0, royalty along axis 1, fruit along axis 2
    words = ["King", "queen", "man", "woman", "apple", "pear", "prince", "princess"]
    vectors = np.array([[1, 1, 0, 0.1], [-1, 1, 0, 0.1], [1, 0, 0, 0.2], [-1, 0, 0, 0.2],
                        [0, 0, 1, 0.0], [0, 0, 1, 0.3], [1, 0.8, 0, 0.5], [-1, 0.8, 0, 0.5]], dtype=np.float32)
    return WordVectors(words, vectors)


def test_analogy_is_solved_and_unknown_words_are_counted(tmp_path):
    path = tmp_path / "questions.txt"
    path.write_text(": royalty\nman woman king queen\nMAN WOMAN KING QUEEN\nman woman dragon queen\n"
                    ": gram-fruit\napple pear apple pear\n")
    for method in ("3cosadd", "3cosmul"):
        scores = evaluate_word_analogies(toy_vectors(), path, method)
        assert scores.sections["royalty"] == 1.0 and scores.semantic == 1.0
        assert scores.skipped == 1 and scores.answered == 3
        # a question whose answer is one of its own words can never be right: the three are excluded
        assert scores.syntactic == 0.0 and scores.correct == 2


def test_pairs_with_known_rank_correlation(tmp_path):
    path = tmp_path / "pairs.tsv"
    path.write_text("# comment\nman\tking\t7\nman\twoman\t5\nking\tqueen\t6\napple\tpear\t9\nman\tunicorn\t3\n")
    scores = evaluate_word_pairs(toy_vectors(), path)
    assert scores.oov_pairs == 1 and scores.oov_ratio == pytest.approx(0.2)
    v = toy_vectors()
    sims = [v.similarity(*p) for p in (("man", "King"), ("man", "woman"), ("King", "queen"), ("apple", "pear"))]
    from scipy.stats import pearsonr, spearmanr

    assert scores.spearman == pytest.approx(spearmanr(sims, [7, 5, 6, 9]).statistic)
    assert scores.pearson == pytest.approx(pearsonr(sims, [7, 5, 6, 9]).statistic, abs=1e-6)


def test_spearman_handles_ties_like_scipy():
    from scipy.stats import spearmanr

    a, b = np.array([1, 2, 2, 3, 5, 5, 5]), np.array([3, 1, 4, 1, 5, 9, 2])
    assert spearman(a, b) == pytest.approx(spearmanr(a, b).statistic)


@pytest.fixture(scope="module")
def benchmark_vectors(tmp_path_factory):
    """Random vectors over the benchmark words (some left out), in frequency-like order, saved to disk."""
    words = []
    for name in ("wordsim353", "simlex999"):
        words += [w for pair in read_word_pairs(gensim_test_file(BENCHMARK_FILES[name])) for w in pair[:2]]
    for line in gensim_test_file(BENCHMARK_FILES["analogies"]).read_text().splitlines():
        if not line.startswith(":"):
            words += line.lower().split()
    rng = np.random.default_rng(0)
    vocab = list(dict.fromkeys(w.lower() for w in words))
    vocab = [w for w in vocab if rng.random() < 0.9]  # some out of vocabulary
    vectors = WordVectors(vocab, rng.normal(size=(len(vocab), 20)).astype(np.float32))
    path = tmp_path_factory.mktemp("vectors") / "vectors.txt"
    vectors.save_word2vec_format(path)
    return WordVectors.load_word2vec_format(path), path


@pytest.mark.parametrize("restrict_vocab", [300_000, 400])
def test_agrees_with_gensim(benchmark_vectors, restrict_vocab):
    from gensim.models import KeyedVectors

    ours, path = benchmark_vectors
    kv = KeyedVectors.load_word2vec_format(path)
    for name in ("wordsim353", "simlex999"):
        file = gensim_test_file(BENCHMARK_FILES[name])
        (g_pearson, _), (g_spearman, _), g_oov = kv.evaluate_word_pairs(file, restrict_vocab=restrict_vocab)
        scores = evaluate_word_pairs(ours, file, restrict_vocab)
        assert scores.spearman == pytest.approx(g_spearman, abs=1e-6)
        assert scores.pearson == pytest.approx(g_pearson, abs=1e-5)
        assert scores.oov_ratio * 100 == pytest.approx(g_oov)
    file = gensim_test_file(BENCHMARK_FILES["analogies"])
    g_accuracy, g_sections = kv.evaluate_word_analogies(file, restrict_vocab=restrict_vocab)
    scores = evaluate_word_analogies(ours, file, "3cosadd", restrict_vocab)
    total = next(s for s in g_sections if s["section"] == "Total accuracy")
    assert scores.accuracy == pytest.approx(g_accuracy)
    assert scores.correct == len(total["correct"]) and scores.answered == len(total["correct"]) + len(total["incorrect"])


@pytest.mark.parametrize("content, match", [
    ("a\tb\n", r"pairs.tsv:1: expected 'word<TAB>word<TAB>score', found 2"),
    ("# c\na\tb\tfive\n", r"pairs.tsv:2: score 'five' is not a number"),
])
def test_malformed_pair_file_names_file_and_line(tmp_path, content, match):
    (tmp_path / "pairs.tsv").write_text(content)
    with pytest.raises(ConfigError, match=match):
        evaluate_word_pairs(toy_vectors(), tmp_path / "pairs.tsv")


def test_malformed_analogy_file_and_missing_file(tmp_path):
    (tmp_path / "q.txt").write_text(": s\na b c\n")
    with pytest.raises(ConfigError, match=r"q.txt:2: expected four words, found 3"):
        evaluate_word_analogies(toy_vectors(), tmp_path / "q.txt")
    with pytest.raises(ConfigError, match="does not exist"):
        evaluate_word_pairs(toy_vectors(), tmp_path / "missing.tsv")


@pytest.mark.parametrize("content, match", [
    ("2 3\na 1 2 3\nb 1 nan 3\n", "NaN"),
    ("2 3\na 1 2 3\nb 1 2\n", r":3: expected a word and 3 numbers, found 2"),
    ("3 3\na 1 2 3\nb 1 2 3\n", "announces 3 vectors but only 2"),
    ("vectors\na 1 2 3\n", "first line must be"),
])
def test_bad_vectors_files(tmp_path, content, match):
    (tmp_path / "v.txt").write_text(content)
    with pytest.raises(ConfigError, match=match):
        WordVectors.load_word2vec_format(tmp_path / "v.txt")


def test_binary_round_trip_and_truncation(tmp_path):
    vectors = toy_vectors()
    vectors.save_word2vec_format(tmp_path / "v.bin", binary=True)
    loaded = WordVectors.load_word2vec_format(tmp_path / "v.bin")
    assert loaded.words == vectors.words and np.array_equal(loaded.vectors, vectors.vectors)
    from gensim.models import KeyedVectors

    assert np.array_equal(KeyedVectors.load_word2vec_format(tmp_path / "v.bin", binary=True)["queen"], vectors["queen"])
    data = (tmp_path / "v.bin").read_bytes()
    (tmp_path / "cut.bin").write_bytes(data[:-20])
    with pytest.raises(ConfigError, match="truncated"):
        WordVectors.load_word2vec_format(tmp_path / "cut.bin", binary=True)


def test_vectors_files_read_as_their_writers_meant(tmp_path, caplog):
    """Text in another encoding stays text; float64 rows are refused; a word holding a character
    that Python counts as a line break loads; a word written twice keeps its first row (gensim's rules)."""
    (tmp_path / "latin1.txt").write_bytes("2 3\ncafé 1 2 3\nthé 4 5 6\n".encode("latin-1"))
    loaded = WordVectors.load_word2vec_format(tmp_path / "latin1.txt")
    assert loaded.words == ["caf\ufffd", "th\ufffd"] and loaded.vectors.tolist() == [[1, 2, 3], [4, 5, 6]]
    rows = np.arange(6, dtype="<f8").reshape(2, 3)
    (tmp_path / "f64.bin").write_bytes(b"2 3\n" + b"".join(w + b" " + r.tobytes() + b"\n" for w, r in zip((b"a", b"b"), rows)))
    with pytest.raises(ConfigError, match="bytes follow the 2 binary vectors .*float64"):
        WordVectors.load_word2vec_format(tmp_path / "f64.bin")
    (tmp_path / "odd.txt").write_text("2 2\nx\x85y 1 2\nz 3 4\n", encoding="utf-8")
    assert WordVectors.load_word2vec_format(tmp_path / "odd.txt").words == ["x\x85y", "z"]
    (tmp_path / "spaced.txt").write_text("2 2\nking  0.1 0.2\nqueen\t0.3 0.4\n")
    assert WordVectors.load_word2vec_format(tmp_path / "spaced.txt").words == ["king", "queen"]
    (tmp_path / "dim.txt").write_text("2 3\nking 0.1 0.2\nqueen 0.3 0.4\n")
    with pytest.raises(ConfigError, match=r"dim.txt:2: expected a word and 3 numbers, found 2"):
        WordVectors.load_word2vec_format(tmp_path / "dim.txt")
    (tmp_path / "twice.txt").write_text("3 2\nx 1 2\ny 3 4\nx 5 6\n")
    with caplog.at_level("WARNING", logger="w2v.vectors"):
        twice = WordVectors.load_word2vec_format(tmp_path / "twice.txt")
    assert twice.words == ["x", "y"] and twice["x"].tolist() == [1, 2] and "appear more than once" in caplog.text


def test_most_similar_takes_a_word_or_a_list_on_either_side():
    vectors = toy_vectors()
    assert vectors.most_similar(["King", "woman"], negative="man") == vectors.most_similar(["King", "woman"], ["man"])
    assert len(vectors.most_similar("King", topn=None)) == len(vectors) - 1
    with pytest.raises(ConfigError, match="needs at least one word"):
        vectors.most_similar([])


def test_text_and_projector_files_hold_each_number_to_six_digits(tmp_path):
    """Written a block of rows at a time; every number as `f"{x:.6g}"` formats it alone, in gensim's reader too."""
    from gensim.models import KeyedVectors

    from w2v import vectors as vectors_module

    rng = np.random.default_rng(0)
    matrix = (rng.standard_normal((11, 5)) * 10.0 ** rng.integers(-6, 7, (11, 5))).astype(np.float32)
    matrix[0, :3] = [0.0, -0.0, 1 / 3]
    vectors = WordVectors([f"w{i}" for i in range(11)], matrix)
    naive = ["\t".join(f"{x:.6g}" for x in row) for row in matrix]
    blocks = list(vectors_module._formatted_rows(matrix, "\t", block=4))
    assert [start for start, _ in blocks] == [0, 4, 8]
    assert [row for _, rows in blocks for row in rows] == naive

    vectors.save_word2vec_format(tmp_path / "v.txt")
    lines = (tmp_path / "v.txt").read_text().splitlines()
    assert lines[0] == "11 5" and lines[1:] == [f"{w} {row.replace(chr(9), ' ')}" for w, row in zip(vectors.words, naive)]
    loaded = KeyedVectors.load_word2vec_format(tmp_path / "v.txt")
    np.testing.assert_allclose(loaded[vectors.words], matrix, rtol=5e-6)
    vectors_module.save_projector_tsv(vectors, tmp_path / "v.tsv", tmp_path / "m.tsv")
    assert (tmp_path / "v.tsv").read_text().splitlines() == naive
    assert (tmp_path / "m.tsv").read_text().splitlines() == vectors.words


def _naive_answers(unit: np.ndarray, question: list[int]) -> dict[str, int]:
    """One question answered alone, as the methods define it: the best candidate, a, b, c excluded."""
    a, b, c = (unit @ unit[i] for i in question)  # (n,) cosines to each question word
    half = lambda x: (x + 1) / 2  # noqa: E731
    scores = {"3cosadd": b - a + c, "3cosmul": half(b) * half(c) / (half(a) + 1e-3)}
    for s in scores.values():
        s[question] = -np.inf
    return {method: int(s.argmax()) for method, s in scores.items()}


@pytest.mark.warms_kernels
@pytest.mark.parametrize("restrict_vocab", [None, 150])
def test_batched_analogies_equal_each_question_answered_alone(tmp_path, restrict_vocab):
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(200)]
    vectors = WordVectors(words, rng.normal(size=(200, 16)).astype(np.float32))
    n = restrict_vocab or 200
    unit = vectors.unit[:n]
    lines, expected = [], {"3cosadd": {}, "3cosmul": {}}
    for section in ("capitals", "gram-plural"):
        lines.append(f": {section}")
        for q in range(150):
            question = [int(i) for i in rng.choice(n, 3, replace=False)]
            answers = _naive_answers(unit, question)
            # half the questions expect the naive answer of one method, the others a random word
            method = ("3cosadd", "3cosmul")[q % 2]
            d = answers[method] if q % 4 < 2 else int(rng.integers(n))
            lines.append(" ".join(words[i] for i in [*question, d]))
            for m in expected:
                expected[m].setdefault(section, []).append(answers[m] == d)
    lines.append(": unknown\nw1 w2 w3 nowhere")
    path = tmp_path / "questions.txt"
    path.write_text("\n".join(lines) + "\n")
    for method in ("3cosadd", "3cosmul"):
        scores = evaluate_word_analogies(vectors, path, method, restrict_vocab)
        assert scores.skipped == 1 and scores.answered == 300
        assert scores.sections == {s: np.mean(v) for s, v in expected[method].items()}
        assert scores.correct == sum(map(sum, expected[method].values())) >= 75
