"""w2v: a Word2Vec experiment framework (CBOW, Skip-gram, SGNS) on Lightning and Hydra.

`w2v.train(*overrides)` trains a run as `w2v-train` does and returns a `Run`; `w2v.load(path)` reads
vectors (`w2v/api.py`).
"""

from w2v.vectors import WordVectors

__all__ = ["Run", "WordVectors", "load", "train"]
__version__ = "0.1.0"


def __getattr__(name: str):
    # The API imports Hydra, Lightning and torch: only when it is used, so `import w2v` stays quick.
    if name in ("Run", "load", "train"):
        from w2v import api

        return getattr(api, name)
    raise AttributeError(f"module 'w2v' has no attribute {name!r}")
