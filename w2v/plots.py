"""Figures: the notebooks' t-SNE map of probe-word neighbourhoods, and sweep comparison plots."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")  # files and TensorBoard only; never a window
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from w2v.errors import ConfigError  # noqa: E402
from w2v.fileio import atomic_write  # noqa: E402
from w2v.vectors import WordVectors  # noqa: E402


def tsne_figure(vectors: WordVectors, probe_words: Sequence[str], k: int = 10, seed: int = 0):
    """Each probe word and its k nearest neighbours, reduced to 2-D by t-SNE, one colour per probe word;
    None if no probe word is in the vocabulary, a ConfigError if they and their neighbours are fewer
    than 3 words (t-SNE's least)."""
    from sklearn.manifold import TSNE

    probes = [w for w in probe_words if w in vectors]
    if not probes:
        return None
    words, groups = [], []
    for group, probe in enumerate(probes):
        for word in [probe] + [w for w, _ in vectors.most_similar(probe, topn=k)]:
            words.append(word)
            groups.append(group)
    if len(words) < 3:  # t-SNE's perplexity must stay below the number of points, and 2 is its least
        raise ConfigError(f"a t-SNE map needs 3 words or more, and the probe words {probes} with their neighbours "
                          f"give {len(words)}; name more probe words or ask for more neighbours (k={k})")
    points = np.stack([vectors.unit[vectors.index[w]] for w in words])  # (N, D)
    perplexity = min(30.0, max(2.0, (len(words) - 1) / 3))
    xy = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(points)  # (N, 2)
    figure, ax = plt.subplots(figsize=(11, 9))
    colours = plt.get_cmap("tab10" if len(probes) <= 10 else "tab20")
    for group, probe in enumerate(probes):
        idx = [i for i, g in enumerate(groups) if g == group]
        ax.scatter(xy[idx, 0], xy[idx, 1], color=colours(group % colours.N), label=probe, s=28)
        for i in idx:
            ax.annotate(words[i], xy[i], fontsize=8 if i != idx[0] else 10, fontweight="bold" if i == idx[0] else None,
                        xytext=(3, 2), textcoords="offset points")
    ax.set_title(f"t-SNE of {len(probes)} probe words and their {k} nearest neighbours")
    ax.legend(loc="best", fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])
    figure.tight_layout()
    return figure


def save_figure(figure, path: str | os.PathLike) -> Path:
    """Save as PNG through a temporary file, then close the figure."""
    path = Path(path)
    with atomic_write(path, "wb") as out:
        figure.savefig(out, format="png", dpi=110)
    plt.close(figure)
    return path


def sweep_plot(rows: list[dict], metric: str, param: str, by: str | None = None):
    """`metric` against swept `param`, one line per value of `by` (if given); None if no run has both."""
    groups: dict[str, list[tuple]] = {}
    for row in rows:
        if row.get(metric) is None or row.get(param) is None:
            continue
        groups.setdefault(str(row.get(by)) if by else metric, []).append((row[param], row[metric]))
    if not groups:
        return None
    figure, ax = plt.subplots(figsize=(7, 4.5))
    for label, points in sorted(groups.items()):
        points.sort(key=lambda p: _sort_key(p[0]))
        ax.plot([str(p[0]) for p in points], [p[1] for p in points], marker="o", label=f"{by}={label}" if by else label)
    ax.set_xlabel(param)
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    figure.tight_layout()
    return figure


def curves_plot(curves: dict[str, dict[str, list[tuple[int, float]]]], tags: Sequence[str]):
    """One panel per tag that has points (loss, evaluation scores), one line per run:
    {run: {tag: [(step, value)]}}; None if no run logged any of the tags."""
    tags = [tag for tag in tags if any(series.get(tag) for series in curves.values())]
    if not tags:
        return None
    figure, axes = plt.subplots(1, len(tags), figsize=(6 * len(tags), 4.2), squeeze=False)
    for ax, tag in zip(axes[0], tags):
        for run, series in sorted(curves.items()):
            if series.get(tag):
                steps, values = zip(*series[tag])
                ax.plot(steps, values, marker="." if len(steps) < 30 else None, label=run)
        ax.set_title(tag)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    figure.tight_layout()
    return figure


def _sort_key(value):
    try:
        return (0, float(value), "")
    except (TypeError, ValueError):
        return (1, 0.0, str(value))
