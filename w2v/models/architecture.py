"""Architectures times output layers: `CBOW` and `SkipGram` each train with any output layer.

An architecture says how a window's context words meet the output layer (CBOW: their mean
predicts the center; Skip-gram: each of them does, or the center predicts each through a full
softmax); an output layer how a prediction is scored and trained (`full_softmax`,
`negative_sampling`, `hierarchical`). `CBOW(vocab, output="negative", ...)` makes an instance of
the class that combines the two, `CBOW.with_output("negative")`, so a config names the
architecture in `_target_` and the output layer in `output`.
"""

from __future__ import annotations

import sys
from functools import cache

from w2v.errors import ConfigError
from w2v.models.base import Word2VecModule
from w2v.models.full_softmax import FullSoftmaxModule
from w2v.models.hierarchical import HierarchicalSoftmax
from w2v.models.negative_sampling import NegativeSampling

OUTPUT_LAYERS = {"softmax": FullSoftmaxModule, "negative": NegativeSampling, "hierarchical": HierarchicalSoftmax}


class Architecture(Word2VecModule):
    """An architecture's own behaviour; instantiated, it becomes its combination with `output`."""

    def __new__(cls, *args, output: str | None = None, **kwargs):
        return super().__new__(cls.with_output(output))

    def __init__(self, vocab, *, output: str | None = None, **kwargs):
        super().__init__(vocab, **kwargs)
        self.hparams.output = next(name for name, layer in OUTPUT_LAYERS.items() if isinstance(self, layer))

    @classmethod
    def with_output(cls, output: str | None) -> type:
        """The class of this architecture with output layer `output` (one of OUTPUT_LAYERS; None: the
        class's own, or the full softmax for a bare architecture)."""
        combined = issubclass(cls, tuple(OUTPUT_LAYERS.values()))
        if output is None:
            return cls if combined else cls.with_output("softmax")
        if output not in OUTPUT_LAYERS:
            raise ConfigError(f"model.output={output!r} is unknown; pick the output layer with "
                              f"model/output={'|'.join(OUTPUT_LAYERS)}")
        if combined:
            if not issubclass(cls, OUTPUT_LAYERS[output]):
                raise ConfigError(f"{cls.__name__} has another output layer than model.output={output}")
            return cls
        return _combine(cls, OUTPUT_LAYERS[output], output)


@cache
def _combine(architecture: type, layer: type, output: str) -> type:
    """The class of `architecture` with output layer `layer`, made once. It is named `CBOW[negative]`
    in messages and registered in the architecture's module as `CBOW_negative`, where pickle finds it."""
    doc = f"{architecture.__doc__.splitlines()[0]} Output layer: {layer.__doc__.splitlines()[0]}"
    combined = type(f"{architecture.__name__}[{output}]", (architecture, layer),
                    {"__module__": architecture.__module__, "__qualname__": f"{architecture.__name__}_{output}",
                     "__doc__": doc})
    setattr(sys.modules[architecture.__module__], combined.__qualname__, combined)
    return combined
