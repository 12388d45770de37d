"""w2v: a Word2Vec experiment framework (CBOW, Skip-gram, SGNS) on Lightning and Hydra."""

from w2v.vectors import WordVectors

__all__ = ["WordVectors"]
__version__ = "0.1.0"
