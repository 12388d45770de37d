"""w2v: a Word2Vec experiment framework (CBOW and Skip-gram; full softmax, negative sampling,
hierarchical softmax) on Lightning and Hydra.

`w2v.train(*overrides)` trains a run as `w2v-train` does and returns a `Run`; `w2v.load(path)` reads
vectors (`w2v/api.py`).
"""

from pathlib import Path

from w2v.vectors import WordVectors

# The configs live in the repository's conf/ (editable install) or inside the installed package.
_PACKAGED = Path(__file__).parent / "conf"
CONFIG_DIR = str(_PACKAGED if _PACKAGED.is_dir() else Path(__file__).parent.parent / "conf")

__all__ = ["CONFIG_DIR", "Run", "WordVectors", "load", "train"]
__version__ = "0.1.0"


def __getattr__(name: str):
    # The API imports Hydra, Lightning and torch: only when it is used, so `import w2v` stays quick.
    if name in ("Run", "load", "train"):
        from w2v import api

        return getattr(api, name)
    raise AttributeError(f"module 'w2v' has no attribute {name!r}")
