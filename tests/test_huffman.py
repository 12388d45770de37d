"""The Huffman tree of hierarchical softmax against word2vec's construction worked by hand and a
brute-force reference: optimal path lengths, prefix-free codes, consistent inner nodes."""

import heapq

import numpy as np
import pytest

from w2v.models.huffman import huffman_tree


@pytest.mark.warms_kernels
def test_a_small_tree_as_word2vec_builds_it():
    # Words a..d with counts 5, 3, 2, 1, out of order, and a special token of count 0 at index 1.
    counts = np.array([2, 0, 5, 1, 3])  # c, <PAD>, a, d, b
    tree = huffman_tree(counts)
    # By hand, word2vec's merges: (d, c) -> node 0, (node 0, b) -> node 1, (a, node 1) -> node 2, the root;
    # the second node of each merge takes code 1.
    expected = {2: ([2], [0]), 4: ([2, 1], [1, 1]), 0: ([2, 1, 0], [1, 0, 1]), 3: ([2, 1, 0], [1, 0, 0])}
    for word, (points, codes) in expected.items():
        length = tree.lengths[word]
        assert tree.points[word, :length].tolist() == points and tree.codes[word, :length].tolist() == codes, word
    assert tree.lengths[1] == 0 and (tree.points[1] == -1).all()  # count 0: not in the tree
    assert (tree.points[2, 1:] == -1).all()  # padding past the path's end
    assert tree.inner_nodes == 3


def _optimal_cost(counts) -> int:
    """Σ count · path length of an optimal prefix code (Huffman by a heap)."""
    heap = [int(c) for c in counts]
    heapq.heapify(heap)
    cost = 0
    while len(heap) > 1:
        merged = heapq.heappop(heap) + heapq.heappop(heap)
        cost += merged  # every leaf below the merge goes one level deeper
        heapq.heappush(heap, merged)
    return cost


@pytest.mark.parametrize("seed", range(5))
def test_random_trees_are_optimal_prefix_codes(seed):
    rng = np.random.default_rng(seed)
    counts = rng.zipf(1.3, size=int(rng.integers(2, 300))).clip(max=10**6)
    counts[rng.random(len(counts)) < 0.05] = 0  # a few words never seen
    counts[0] = max(counts[0], 1)
    counts[-1] = max(counts[-1], 1)
    tree = huffman_tree(counts)
    used = np.flatnonzero(counts > 0)
    # optimal: the weighted path length of a brute-force Huffman code
    assert int((counts * tree.lengths).sum()) == _optimal_cost(counts[used])
    n_inner = len(used) - 1
    assert tree.inner_nodes == n_inner
    children: dict[tuple[int, int], object] = {}
    for word in used:
        points, codes = tree.points[word, : tree.lengths[word]], tree.codes[word, : tree.lengths[word]]
        assert points[0] == n_inner - 1 and ((0 <= points) & (points < n_inner)).all()  # root first, inner rows
        for j, (point, code) in enumerate(zip(points, codes)):
            child = ("node", int(points[j + 1])) if j + 1 < len(points) else ("word", int(word))
            # every (inner node, branch) leads to one child only, whichever word's path passes it: a tree
            assert children.setdefault((int(point), int(code)), child) == child
    # every inner node has both branches, and every word is a leaf: a full binary tree over the words
    assert len(children) == 2 * n_inner
    assert sorted(c[1] for c in children.values() if c[0] == "word") == used.tolist()


def test_fewer_than_two_words_make_no_decisions():
    tree = huffman_tree(np.array([0, 7, 0]))
    assert tree.lengths.tolist() == [0, 0, 0] and tree.inner_nodes == 0
