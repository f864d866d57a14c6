"""Charts: per-class histograms and bars, curves over training, scatter plots."""
from __future__ import annotations

from typing import Sequence

import numpy as np
from matplotlib.figure import Figure

from glua_lib.plots.common import _finish


def class_histograms(mr_images: Sequence[np.ndarray], mr_labels: Sequence[np.ndarray],
                     ct_images: Sequence[np.ndarray], ct_labels: Sequence[np.ndarray],
                     class_names: Sequence[str], bins: int = 60,
                     fig: Figure | None = None) -> Figure:
    """Per-class histograms of normalised intensity, MR against CT (one panel per class).

    Images and labels are matching lists of arrays of any shape; intensities are pooled over
    all voxels of each class. Densities, so the two modalities compare whatever their voxel counts.
    """
    n = len(class_names)
    cols = min(n, 3)  # at most three panels a row: readable at the book's column width
    rows = -(-n // cols)
    fig = fig or Figure(figsize=(3.1 * cols, 2.3 * rows))
    axes = np.atleast_1d(fig.subplots(rows, cols, sharey=False)).ravel()
    for ax in axes[n:]:
        ax.set_visible(False)
    for k, (ax, name) in enumerate(zip(axes, class_names)):
        mr = np.concatenate([im[lb == k] for im, lb in zip(mr_images, mr_labels)])
        ct = np.concatenate([im[lb == k] for im, lb in zip(ct_images, ct_labels)])
        both = np.concatenate([mr, ct]) if mr.size + ct.size else np.zeros(1)
        edges = np.linspace(np.percentile(both, 0.5), np.percentile(both, 99.5) + 1e-6, bins + 1)
        for values, colour, label in ((mr, "tab:blue", "MR"), (ct, "tab:orange", "CT")):
            if values.size:
                ax.hist(values, bins=edges, density=True, alpha=0.55, color=colour, label=label)
        ax.set_title(name, fontsize=10)
        ax.set_yticks([])
        ax.tick_params(labelsize=9)
    axes[0].legend(fontsize=9)
    fig.supxlabel("normalised intensity", fontsize=10)
    fig.tight_layout()
    return fig


def bar_per_class(values: dict[str, float], ylabel: str, title: str = "",
                  errors: dict[str, float] | None = None, fig: Figure | None = None) -> Figure:
    """One bar per class (for example the per-class domain gap), with optional error bars."""
    fig = fig or Figure(figsize=(4.2, 2.6))
    ax = fig.add_subplot(1, 1, 1)
    names = list(values)
    err = [errors[n] for n in names] if errors else None
    ax.bar(names, [values[n] for n in names], yerr=err, color="tab:purple", alpha=0.8, capsize=3)
    return _finish(fig, ax, ylabel, title)


def curves(series: dict[str, tuple[Sequence[float], Sequence[float]]], xlabel: str, ylabel: str,
           title: str = "", fig: Figure | None = None) -> Figure:
    """Line plot of named ``(x, y)`` series (training losses, for example)."""
    fig = fig or Figure(figsize=(4.6, 2.8))
    ax = fig.add_subplot(1, 1, 1)
    for name, (x, y) in series.items():
        ax.plot(x, y, label=name, lw=1.2)
    return _finish(fig, ax, ylabel, title, xlabel=xlabel, legend=True)


def class_scatter(x: dict[str, float], series: dict[str, dict[str, float]], xlabel: str,
                  ylabel: str, title: str = "", fig: Figure | None = None) -> Figure:
    """Per-class points: ``x[class]`` against ``series[name][class]`` for each named series.

    One marker colour per series (e.g. one per training snapshot and level), each point labelled
    with its class name; classes missing from a series, or ``nan``, are skipped. Use it to ask
    whether a per-class quantity (the mean mask) follows another (the mean true gap).
    """
    fig = fig or Figure(figsize=(5.8, 3.2))
    ax = fig.add_subplot(1, 1, 1)
    for k, (name, ys) in enumerate(series.items()):
        names = [c for c in x if c in ys and np.isfinite(ys[c]) and np.isfinite(x[c])]
        ax.plot([x[c] for c in names], [ys[c] for c in names], "o", ms=5, alpha=0.8,
                color=f"C{k % 10}", label=name)
        for c in names:
            ax.annotate(c, (x[c], ys[c]), fontsize=6, xytext=(3, 2), textcoords="offset points")
    ax.set_xlabel(xlabel, fontsize=8)
    ax.set_ylabel(ylabel, fontsize=8)
    ax.tick_params(labelsize=8)
    if series:  # beside the axes, where it hides no point
        ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def bars_compared(series: dict[str, dict[str, float]], ylabel: str, title: str = "",
                  ranges: dict[str, tuple[dict[str, float], dict[str, float]]] | None = None,
                  fig: Figure | None = None) -> Figure:
    """Grouped bars: one group per class, one bar per named series (e.g. before / after).

    ``ranges`` maps a series' name to ``(low, high)`` (``{class: value}`` each), drawn as a
    vertical line over that series' bars (e.g. the 5–95 % range of the ideal translations).
    """
    fig = fig or Figure(figsize=(5.0, 2.8))
    ax = fig.add_subplot(1, 1, 1)
    names = list(next(iter(series.values())))
    width = 0.8 / len(series)
    for k, (label, values) in enumerate(series.items()):
        x = np.arange(len(names)) + (k - (len(series) - 1) / 2) * width
        ax.bar(x, [values[n] for n in names], width, label=label)
        if ranges and label in ranges:
            low, high = ranges[label]
            ax.vlines(x, [low[n] for n in names], [high[n] for n in names], color="black",
                      linewidth=1.2)
    ax.set_xticks(np.arange(len(names)), names)
    return _finish(fig, ax, ylabel, title, legend=True)


def differences_chart(found: dict[str, dict[str, dict]], xlabel: str = "Dice points",
                      title: str = "", fig: Figure | None = None) -> Figure:
    """Paired differences with their intervals: one row per experiment and difference, a dot
    at the mean and a line over the interval, filled where the interval excludes zero.

    ``found``: ``{experiment: {"a − b": {"mean", "low", "high", "finding"}}}``, as
    :func:`glua_lib.results.differences_markdown` returns it. A vertical line marks zero.
    """
    rows = [(f"{exp}: {name}", d) for exp, pairs in found.items() for name, d in pairs.items()]
    if not rows:
        raise ValueError("no differences to draw")
    fig = fig or Figure(figsize=(6.0, 0.9 + 0.28 * len(rows)))
    ax = fig.add_subplot(1, 1, 1)
    y = np.arange(len(rows))[::-1]
    for yi, (_, d) in zip(y, rows):
        ax.hlines(yi, d["low"], d["high"], color="black", linewidth=1.4)
        ax.plot([d["mean"]], [yi], "o", color="black",
                markerfacecolor="black" if d["finding"] else "white")
    ax.axvline(0.0, color="grey", linewidth=0.8, linestyle="--")
    ax.set_yticks(y, [label for label, _ in rows])
    return _finish(fig, ax, "", title, xlabel=xlabel)
