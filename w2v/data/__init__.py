"""Corpora, preprocessing, vocabulary and sample generation."""

__all__ = ["CorpusDataModule", "ImdbDataModule", "TextDataModule", "Vocabulary"]


def __getattr__(name: str):
    # The DataModules import Lightning: only when one is asked for, so that a tokenizer's worker
    # process, which imports w2v.data.tokenize, starts without it.
    if name in ("CorpusDataModule", "ImdbDataModule", "TextDataModule"):
        from w2v.data import datamodule

        return getattr(datamodule, name)
    if name == "Vocabulary":
        from w2v.data.vocab import Vocabulary

        return Vocabulary
    raise AttributeError(f"module 'w2v.data' has no attribute {name!r}")
