"""Hierarchical softmax: each example predicts its center word by the binary decisions along the
word's path in a Huffman tree over the vocabulary's counts (`huffman`); word2vec's `-hs 1`.

The output matrix's rows are the tree's inner nodes, not words, so the run exports input vectors
(`model.export=input`); the tree itself goes with the run (`tree.tsv`, `write_run_files`) so the inner
nodes' vectors in its checkpoint can be used to score words.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from w2v.errors import ConfigError
from w2v.fileio import atomic_write
from w2v.models.binary_output import BinaryOutputModule, WindowTables
from w2v.models.huffman import HuffmanTree, huffman_tree
from w2v.models.negative_sampling import TRITON_SCOPE


class HierarchicalSoftmax(BinaryOutputModule):
    """The decisions along the center word's Huffman path: output row `points[j]`, label 1 - `codes[j]`."""

    def __init__(self, vocab, **kwargs):
        super().__init__(vocab, **kwargs)
        self.check_export(self.hparams.export)
        self.tree: HuffmanTree = huffman_tree(vocab.counts)
        self._paths: tuple[torch.Tensor, ...] | None = None  # the tree's points, codes, lengths on the model's device
        # Each word's path and its labels, for the CPU's chunks: (V, L) int64 and float32.
        self._path_tables = WindowTables(paths=self.tree.points.astype(np.int64),
                                         path_labels=(1 - self.tree.codes).astype(np.float32))

    @classmethod
    def check_hparams(cls, **settings) -> None:
        super().check_hparams(**settings)
        cls.check_export(settings.get("export"))
        if settings.get("kernels") == "triton":
            raise ConfigError(TRITON_SCOPE)

    @staticmethod
    def check_export(export) -> None:
        if export != "input":
            raise ConfigError(f"model.export={export} needs output vectors of words; hierarchical softmax's output "
                              "rows are the Huffman tree's inner nodes: use model.export=input")

    def decisions(self, batch):
        centers = batch["centers"]  # (B,)
        if self._paths is None or self._paths[0].device != centers.device:
            self._paths = tuple(torch.as_tensor(a, device=centers.device)
                                for a in (self.tree.points, self.tree.codes, self.tree.lengths))
        points, codes, lengths = self._paths
        targets = points[centers]  # (B, L) -1 past each path's end
        return targets, 1.0 - codes[centers].float(), targets >= 0  # (B, L), (B, L), (B, L)

    def window_tables(self) -> WindowTables:
        return self._path_tables

    def output_matrix(self) -> torch.Tensor:
        raise ConfigError("hierarchical softmax has no output vectors of words (its output rows are the Huffman "
                          "tree's inner nodes); use the input vectors, model.export=input")

    def write_run_files(self, folder) -> list[Path]:
        """`tree.tsv`: each word's path as `word<TAB>codes<TAB>points` (codes as 0/1 digits, points as
        inner-node rows of the output matrix, root first), one line a word of the tree."""
        path = Path(folder) / "tree.tsv"
        with atomic_write(path) as out:
            for word, length, codes, points in zip(self.vocab.words, self.tree.lengths, self.tree.codes,
                                                   self.tree.points):
                if length:
                    out.write(f"{word}\t{''.join(map(str, codes[:length]))}\t{' '.join(map(str, points[:length]))}\n")
        return [path]
