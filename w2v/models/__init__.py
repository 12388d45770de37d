"""The architectures, CBOW and Skip-gram, each with any output layer (full softmax, negative
sampling, hierarchical softmax): LightningModules on one shared base class."""

from w2v.models.architecture import OUTPUT_LAYERS, Architecture
from w2v.models.base import Word2VecModule
from w2v.models.cbow import CBOW
from w2v.models.skipgram import SkipGram

SGNS = SkipGram.with_output("negative")  # Skip-gram with negative sampling, word2vec's and the default experiment's

__all__ = ["CBOW", "OUTPUT_LAYERS", "SGNS", "Architecture", "SkipGram", "Word2VecModule"]
