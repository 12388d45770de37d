"""The three architectures, each a LightningModule on one shared base class."""

from w2v.models.base import Word2VecModule
from w2v.models.cbow import CBOW
from w2v.models.sgns import SGNS
from w2v.models.skipgram import SkipGram

__all__ = ["CBOW", "SGNS", "SkipGram", "Word2VecModule"]
