"""Corpora, preprocessing, vocabulary and sample generation."""

from w2v.data.datamodule import CorpusDataModule, ImdbDataModule, TextDataModule
from w2v.data.vocab import Vocabulary

__all__ = ["CorpusDataModule", "ImdbDataModule", "TextDataModule", "Vocabulary"]
