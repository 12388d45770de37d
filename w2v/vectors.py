"""Trained word vectors apart from any model: queries and the word2vec text/binary formats."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from w2v.errors import ConfigError
from w2v.fileio import atomic_write

log = logging.getLogger(__name__)


class WordVectors:
    """A (V, D) float32 matrix with its words, like gensim's KeyedVectors but small."""

    def __init__(self, words: Sequence[str], vectors: np.ndarray):
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or len(words) != len(vectors):
            raise ValueError(f"{len(words)} words for a matrix of shape {vectors.shape}")
        self.words = list(words)
        self.vectors = vectors
        self.index = {w: i for i, w in enumerate(self.words)}
        if len(self.index) != len(self.words):
            raise ValueError("the words must be distinct; each names one row")
        self._unit: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: str) -> bool:
        return word in self.index

    def __getitem__(self, word: str) -> np.ndarray:
        return self.vectors[self._id(word)]

    @property
    def dim(self) -> int:
        return self.vectors.shape[1]

    @property
    def unit(self) -> np.ndarray:
        """(V, D) rows scaled to unit length (zero rows stay zero)."""
        if self._unit is None:
            norms = np.linalg.norm(self.vectors, axis=1, keepdims=True)
            self._unit = self.vectors / np.maximum(norms, 1e-12)
        return self._unit

    def _id(self, word: str) -> int:
        try:
            return self.index[word]
        except KeyError:
            raise KeyError(f"word {word!r} is not in the vocabulary") from None

    def similarity(self, a: str, b: str) -> float:
        """Cosine similarity of two words."""
        return float(self.unit[self._id(a)] @ self.unit[self._id(b)])

    def most_similar(self, positive: str | Iterable[str] = (), negative: str | Iterable[str] = (),
                     topn: int | None = 10) -> list[tuple[str, float]]:
        """The `topn` words (None: all) closest by cosine to the sum of the positive words' unit
        vectors minus the negative words', the query words excluded."""
        positive = [positive] if isinstance(positive, str) else list(positive)
        negative = [negative] if isinstance(negative, str) else list(negative)
        if not positive and not negative:
            raise ConfigError("most_similar needs at least one word, positive or negative")
        query_ids = [self._id(w) for w in positive + negative]
        query = self.unit[query_ids[: len(positive)]].sum(0) - self.unit[query_ids[len(positive):]].sum(0)
        query /= max(np.linalg.norm(query), 1e-12)
        scores = self.unit @ query  # (V,)
        scores[query_ids] = -np.inf
        topn = len(self) - len(set(query_ids)) if topn is None else min(topn, len(self) - len(set(query_ids)))
        best = np.argpartition(-scores, topn - 1)[:topn] if topn > 0 else np.zeros(0, dtype=int)
        best = best[np.argsort(-scores[best], kind="stable")]
        return [(self.words[i], float(scores[i])) for i in best]

    def doesnt_match(self, words: Iterable[str]) -> str:
        """The word farthest from the mean of the others' unit vectors."""
        words = list(words)
        if len(words) < 2:
            raise ConfigError("doesnt-match needs at least two words")
        unit = self.unit[[self._id(w) for w in words]]  # (n, D)
        mean = unit.mean(0)
        return words[int(np.argmin(unit @ mean))]

    def close_spellings(self, word: str, n: int = 5) -> list[str]:
        """Vocabulary words spelled like `word`, for 'did you mean' messages."""
        import difflib

        return difflib.get_close_matches(word, self.words, n=n, cutoff=0.7)

    def save_word2vec_format(self, path: str | os.PathLike, binary: bool = False) -> None:
        """Write the word2vec format (text or binary) that gensim's load_word2vec_format reads."""
        for word in self.words:
            if not word or any(ch.isspace() for ch in word):
                raise ConfigError(f"word {word!r} contains whitespace and cannot be stored in word2vec format")
        with atomic_write(path, "wb") as out:
            out.write(f"{len(self)} {self.dim}\n".encode())
            if binary:
                for word, vector in zip(self.words, self.vectors):
                    out.write(word.encode() + b" " + vector.astype("<f4").tobytes() + b"\n")
            else:
                for start, rows in _formatted_rows(self.vectors, " "):
                    words = self.words[start: start + len(rows)]
                    out.write("".join(f"{word} {row}\n" for word, row in zip(words, rows)).encode())

    @classmethod
    def load_word2vec_format(cls, path: str | os.PathLike, binary: bool | None = None) -> "WordVectors":
        """Read word2vec text or binary format (detected from the content when `binary` is None)."""
        path = Path(path)
        data = path.read_bytes()
        header, _, body = data.partition(b"\n")
        try:
            count, dim = (int(x) for x in header.split())
        except ValueError:
            raise ConfigError(f"{path}: first line must be '<count> <dimension>', found {header[:60]!r}") from None
        if count < 1 or dim < 1:
            raise ConfigError(f"{path}: header announces {count} vectors of dimension {dim}; both must be positive")
        if binary is None:
            binary = not _first_line_is_text(body, dim)
        words, rows = [], []
        if binary:
            pos = 0
            for line_no in range(count):
                end = body.find(b" ", pos)
                if end < 0 or end + 1 + 4 * dim > len(body):
                    raise ConfigError(f"{path}: truncated at vector {line_no + 1} of {count}; re-export the vectors")
                words.append(body[pos:end].decode("utf-8", errors="replace").lstrip("\n"))
                rows.append(np.frombuffer(body, dtype="<f4", count=dim, offset=end + 1))
                pos = end + 1 + 4 * dim
            if body[pos:].strip():
                raise ConfigError(f"{path}: {len(body) - pos} bytes follow the {count} binary vectors its header "
                                  "announces (more vectors than it says, or float64 values?); re-export the "
                                  "vectors in word2vec's format, float32")
        else:
            lines = body.split(b"\n")  # only "\n" ends a line, as word2vec writes them
            if lines and not lines[-1].strip():
                lines.pop()
            if len(lines) < count:
                raise ConfigError(f"{path}: header announces {count} vectors but only {len(lines)} lines follow")
            for line_no, line in enumerate(lines[:count], start=2):
                parts = line.split()  # at ASCII spaces and tabs, as many as written (a word may hold others)
                if len(parts) != dim + 1:
                    raise ConfigError(f"{path}:{line_no}: expected a word and {dim} numbers, found {len(parts) - 1} values")
                words.append(parts[0].decode("utf-8", errors="replace"))
                try:
                    rows.append(np.array(parts[1:], dtype=np.float32))
                except ValueError:
                    raise ConfigError(f"{path}:{line_no}: a value is not a number; re-export the vectors") from None
        vectors = np.vstack(rows) if rows else np.zeros((0, dim), dtype=np.float32)
        if not np.isfinite(vectors).all():
            raise ConfigError(f"{path}: vectors contain NaN or infinite values; retrain or re-export them")
        first = {}
        for i, word in enumerate(words):
            first.setdefault(word, i)
        if len(first) < len(words):  # as gensim does: the first row of a word counts
            log.warning("%s: %d words appear more than once; their first rows are kept", path, len(words) - len(first))
            keep = sorted(first.values())
            words, vectors = [words[i] for i in keep], vectors[keep]
        return cls(words, vectors)


def _formatted_rows(vectors: np.ndarray, sep: str, block: int = 4096) -> Iterator[tuple[int, list[str]]]:
    """(first row, its block's rows as text): six significant digits a number, joined by `sep`.

    One %-format a row rather than one format call a number, which made the export of a run's
    vectors several times as slow; a block at a time keeps the Python floats few.
    """
    row_format = sep.join(["%.6g"] * vectors.shape[1])
    for start in range(0, len(vectors), block):
        yield start, [row_format % tuple(row) for row in vectors[start: start + block].tolist()]


def _first_line_is_text(body: bytes, dim: int) -> bool:
    """Whether the first vector is a line of text: a word and numbers (a binary row's float bytes
    almost never parse so, whatever the encoding of the words); their count is the text reader's
    to check, with the line named."""
    line = body[: body.find(b"\n") if b"\n" in body else len(body)]
    parts = line.split()
    if b"\0" in line or len(parts) < 2:
        return False
    try:
        [float(part) for part in parts[1:]]
    except ValueError:
        return False
    return True


def save_projector_tsv(vectors: WordVectors, vectors_path: str | os.PathLike, metadata_path: str | os.PathLike) -> None:
    """The `vectors.tsv` + `metadata.tsv` pair that the standalone TensorBoard projector loads."""
    with atomic_write(vectors_path) as out:
        for _, rows in _formatted_rows(vectors.vectors, "\t"):
            out.write("".join(f"{row}\n" for row in rows))
    with atomic_write(metadata_path) as out:
        out.write("".join(f"{word}\n" for word in vectors.words))


def load_vectors(path: str | os.PathLike) -> WordVectors:
    """Vectors from a word2vec file (text or binary) or a run directory (its vectors.txt or vectors.bin)."""
    path = Path(path).expanduser()
    if path.is_dir():
        for name in ("vectors.txt", "vectors.bin"):
            if (path / name).is_file():
                return WordVectors.load_word2vec_format(path / name)
        raise ConfigError(f"{path} holds no vectors.txt or vectors.bin; pass a finished run directory or a vectors file")
    if not path.is_file():
        raise ConfigError(f"{path} does not exist; pass a run directory or a word2vec vectors file")
    return WordVectors.load_word2vec_format(path)
