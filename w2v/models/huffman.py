"""The Huffman tree of hierarchical softmax: each word's path of binary decisions from the root.

Built as word2vec builds it: the words sorted by count, the two least frequent nodes merged until
one is left, the second of each merged pair taking code 1. A word's `points` are the inner nodes on
its path, root first (inner node n is row n of the output matrix, the root V'-2 for V' counted
words), and its `codes` the branch taken at each: decision j predicts label 1 - codes[j] from
the word's input (word2vec's `g = (1 - code - f)`). Frequent words get short paths, so a word
costs about log2 of its rank, not V, output rows. Words with count 0 (special tokens) are not
in the tree: their path is empty.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit


@dataclass(frozen=True)
class HuffmanTree:
    """Each word's path: points (V, L) inner nodes and codes (V, L) branches, valid up to lengths (V,);
    the padding holds point -1 and code 0. L is the longest path."""

    points: np.ndarray  # (V, L) int64
    codes: np.ndarray  # (V, L) int8
    lengths: np.ndarray  # (V,) int64

    @property
    def inner_nodes(self) -> int:
        """Rows of the output matrix the tree uses: one per merge."""
        return max(int((self.lengths > 0).sum()) - 1, 0)


def huffman_tree(counts: np.ndarray) -> HuffmanTree:
    """The Huffman tree over the words with a positive count in `counts` (V,)."""
    counts = np.asarray(counts, dtype=np.int64)
    words = np.flatnonzero(counts > 0)
    words = words[np.argsort(-counts[words], kind="stable")]  # (V',) most frequent first, as word2vec's vocabulary
    n = len(words)
    lengths = np.zeros(len(counts), dtype=np.int64)
    if n < 2:  # no decision to make: an empty tree
        return HuffmanTree(np.full((len(counts), 1), -1, np.int64), np.zeros((len(counts), 1), np.int8), lengths)
    parent, branch = _merge(counts[words])
    path_points, path_codes, path_lengths = _paths(parent, branch, n)  # (V', L) in the sorted order
    width = path_points.shape[1]
    points = np.full((len(counts), width), -1, dtype=np.int64)
    codes = np.zeros((len(counts), width), dtype=np.int8)
    points[words], codes[words], lengths[words] = path_points, path_codes, path_lengths
    return HuffmanTree(points, codes, lengths)


@njit(cache=True)
def _merge(sorted_counts):  # pragma: no cover - compiled
    """word2vec's construction in O(V): leaves 0..n-1 sorted by falling count, inner node n+a made by
    merge a. Two cursors walk the leaves (rising counts, from the end) and the inner nodes (made in
    rising order); each merge takes the two smallest. Returns each node's parent and branch (2n-1,)."""
    n = len(sorted_counts)
    count = np.empty(2 * n - 1, dtype=np.int64)
    count[:n] = sorted_counts
    count[n:] = np.iinfo(np.int64).max
    parent = np.zeros(2 * n - 1, dtype=np.int64)
    branch = np.zeros(2 * n - 1, dtype=np.int8)
    leaf, inner = n - 1, n
    for a in range(n - 1):
        picked = np.empty(2, dtype=np.int64)
        for k in range(2):
            if leaf >= 0 and count[leaf] < count[inner]:
                picked[k] = leaf
                leaf -= 1
            else:
                picked[k] = inner
                inner += 1
        count[n + a] = count[picked[0]] + count[picked[1]]
        parent[picked[0]] = parent[picked[1]] = n + a
        branch[picked[1]] = 1
    return parent, branch


@njit(cache=True)
def _paths(parent, branch, n):  # pragma: no cover - compiled
    """Each leaf's inner nodes (numbered 0..n-2, root n-2) and branches, root first, and path lengths."""
    root = 2 * n - 2
    lengths = np.zeros(n, dtype=np.int64)
    for a in range(n):
        b, depth = a, 0
        while b != root:
            depth += 1
            b = parent[b]
        lengths[a] = depth
    width = lengths.max()
    points = np.full((n, width), -1, dtype=np.int64)
    codes = np.zeros((n, width), dtype=np.int8)
    for a in range(n):
        b, j = a, lengths[a] - 1
        while b != root:  # from the leaf up: the decision at parent[b] is b's branch
            points[a, j] = parent[b] - n
            codes[a, j] = branch[b]
            b = parent[b]
            j -= 1
    return points, codes, lengths
