"""Is the mask right? The local feature mask against the phantoms' known gap map.

The synthetic phantoms store, per voxel, the *true* local domain gap (``gap`` in each ``.npz``;
:func:`glua_lib.phantoms.gap_map`). A good mask puts its weight where that gap is large.

**Comparison at feature resolution.** A mask lives on the ``h×w`` grid of its encoder level
(``H/2^l × W/2^l``); the gap map is pooled down to that grid by averaging each ``2^l × 2^l``
cell (:func:`pool_to`), so every mask location is compared with the mean true gap of the pixels
it sits on. (``at="image"`` instead enlarges the mask to ``H×W`` by nearest neighbour and compares
pixel by pixel.) The *high-gap region* is where the (pooled) gap exceeds a ``threshold``, by
default the ``quantile`` (0.8) of the pooled gap over all locations of the batch. The score is the
**ROC AUC** of the mask as a detector of that region (:func:`roc_auc`, the Mann–Whitney U
statistic with average ranks for ties): 1 = every high-gap location has a larger mask value than
every other location, 0.5 = no better than chance, 0 = exactly reversed.

Here the measures on arrays only (they never read files); reading a trained run's masks and
target slices is :mod:`glua_lib.local.runs`. :func:`class_mean_mask` gives the mean mask per class.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import torch

from glua_lib.data.prepared import Volume
from glua_lib.local.mask import resize_mask


# ---------------------------------------------------------------------------------------------
# AUC and the mask-vs-gap score


def roc_auc(scores, labels) -> float:
    """ROC AUC of ``scores`` for binary ``labels`` (any shapes, flattened), by ranks.

    ``AUC = (R₊ − n₊(n₊ + 1)/2) / (n₊ n₋)`` where ``R₊`` is the sum of the positives' ranks
    among all scores (1-based, ties get their average rank) — the Mann–Whitney U of the
    positives divided by ``n₊ n₋``, i.e. the probability that a random positive scores higher
    than a random negative (ties count ½). ``nan`` when either class is empty.
    """
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(labels).astype(bool).ravel()
    if s.shape != y.shape:
        raise ValueError(f"{s.size} scores but {y.size} labels")
    if not np.all(np.isfinite(s)):
        raise ValueError("scores must be finite")
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    sorted_s = s[order]
    ranks = np.empty(s.size, dtype=np.float64)
    # average rank of each run of equal scores
    starts = np.flatnonzero(np.r_[True, sorted_s[1:] != sorted_s[:-1]])
    ends = np.r_[starts[1:], s.size]
    avg = (starts + ends + 1) / 2.0  # mean of 1-based ranks start+1 … end
    ranks[order] = np.repeat(avg, ends - starts)
    u = ranks[y].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def _numpy(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().float().cpu().numpy()
    return np.asarray(x, dtype=np.float32)


def _as_maps(mask) -> np.ndarray:
    """``B×1×h×w``, ``B×h×w`` or ``h×w`` → ``B×h×w``."""
    m = _numpy(mask)
    if m.ndim == 4:
        if m.shape[1] != 1:
            raise ValueError(f"mask must be B×1×h×w, got shape {m.shape}")
        m = m[:, 0]
    elif m.ndim == 2:
        m = m[None]
    elif m.ndim != 3:
        raise ValueError(f"mask must be B×1×h×w, B×h×w or h×w, got shape {m.shape}")
    return m


def pool_to(gap_map, size: tuple[int, int]) -> np.ndarray:
    """Average-pool ``B×H×W`` (or ``H×W``) maps to ``B×h×w``: each output location is the mean
    of its cell (``H/h × W/w`` pixels when divisible, else adaptive average pooling)."""
    g = _as_maps(gap_map)
    h, w = (int(s) for s in size)
    b, big_h, big_w = g.shape
    if (big_h, big_w) == (h, w):
        return g
    if big_h % h == 0 and big_w % w == 0:
        return g.reshape(b, h, big_h // h, w, big_w // w).mean(axis=(2, 4))
    t = torch.from_numpy(np.ascontiguousarray(g))[:, None]
    return torch.nn.functional.adaptive_avg_pool2d(t, (h, w))[:, 0].numpy()


def high_gap(gap, quantile: float = 0.8, threshold: float | None = None) -> np.ndarray:
    """Boolean map of the high-gap region: ``gap > threshold`` (default: the ``quantile`` of
    ``gap`` over all its values). When ties at the top leave nothing above a quantile threshold,
    ``gap >= threshold`` is used instead."""
    g = np.asarray(gap, dtype=np.float64)
    if threshold is None:
        if not 0 <= quantile < 1:
            raise ValueError(f"quantile must be in [0, 1), got {quantile}")
        threshold = float(np.quantile(g, quantile))
        high = g > threshold
        return high if high.any() else g >= threshold
    return g > threshold


def mask_gap_auc(mask, gap_map, quantile: float = 0.8, threshold: float | None = None,
                 at: str = "feature") -> float:
    """ROC AUC of the mask against the high-gap region (module docstring).

    Args:
        mask: ``B×1×h×w`` (or ``B×h×w``, ``h×w``) mask values (tensor or array); any score
            works (the gap score, ``1 − P(source)``, …).
        gap_map: the matching true gap maps ``B×H×W`` (or ``H×W``).
        quantile / threshold: the high-gap region is ``gap > threshold``, by default the
            ``quantile`` of the (pooled) gap over the batch (:func:`high_gap`).
        at: ``"feature"`` (pool the gap map to the mask's grid; default) or ``"image"``
            (enlarge the mask to the gap map's grid, nearest neighbour).

    Returns:
        The AUC in ``[0, 1]`` (``nan`` if the region is empty or everything).
    """
    m = _as_maps(mask)
    g = _as_maps(gap_map)
    if m.shape[0] != g.shape[0]:
        raise ValueError(f"{m.shape[0]} masks but {g.shape[0]} gap maps")
    if at == "feature":
        g = pool_to(g, m.shape[-2:])
    elif at == "image":
        t = torch.from_numpy(np.ascontiguousarray(m))[:, None]
        m = resize_mask(t, g.shape[-2:])[:, 0].numpy()
    else:
        raise ValueError(f"at must be 'feature' or 'image', got {at!r}")
    return roc_auc(m, high_gap(g, quantile, threshold))


def mask_gap_auc_interval(mask, gap_map, quantile: float = 0.8, n_boot: int = 200,
                          seed: int = 0, level: float = 0.95) -> tuple[float, float, float, str]:
    """:func:`mask_gap_auc` with a bootstrap interval over whole slices, and a verdict.

    Neighbouring locations of one slice are not independent, so slices (the batch axis of
    ``mask`` ``B×…`` and ``gap_map`` ``B×H×W``) are resampled with replacement ``n_boot`` times.

    Returns:
        ``(auc, low, high, verdict)``: the verdict is ``"above chance"`` when the whole interval
        is above ½, ``"below chance"`` when it is below, else ``"not distinguishable from chance"``.
    """
    m, g = _as_maps(mask), _as_maps(gap_map)
    auc = mask_gap_auc(m, g, quantile)
    rng = np.random.default_rng(seed)
    boot = [mask_gap_auc(m[idx], g[idx], quantile)
            for idx in (rng.integers(0, len(m), len(m)) for _ in range(n_boot))]
    tail = 100 * (1 - level) / 2
    low, high = (float(v) for v in np.nanpercentile(boot, [tail, 100 - tail]))
    verdict = ("above chance" if low > 0.5 else "below chance" if high < 0.5
               else "not distinguishable from chance")
    return float(auc), low, high, verdict


def class_mean_mask(mask, label, n_classes: int) -> np.ndarray:
    """Mean mask value per class (``n_classes`` floats, ``nan`` for absent classes): the mask is
    enlarged to the label's ``H×W`` (nearest neighbour) and averaged over each class's pixels.

    ``mask``: ``B×1×h×w``; ``label``: ``B×H×W`` class indices.
    """
    lab = np.asarray(label)
    if lab.ndim == 2:
        lab = lab[None]
    t = torch.from_numpy(np.ascontiguousarray(_as_maps(mask)))[:, None]
    m = resize_mask(t, lab.shape[-2:])[:, 0].numpy()
    return np.array([m[lab == c].mean() if (lab == c).any() else np.nan
                     for c in range(n_classes)])


def quantile_match(volumes: Sequence[Volume], reference: Sequence[Volume],
                   n_quantiles: int = 1001) -> list[Volume]:
    """``volumes`` with their intensities mapped by one global monotone function so that their
    pooled histogram matches ``reference``'s (``n_quantiles`` evenly spaced quantiles, linear in
    between): the best a single global intensity mapping can do, against which the chapters show
    the local imbalance it leaves. Labels and the rest are kept; images become float32."""
    q = np.linspace(0, 1, n_quantiles)
    own = np.quantile(np.concatenate([v.image.ravel() for v in volumes]), q)
    ref = np.quantile(np.concatenate([v.image.ravel() for v in reference]), q)
    return [dataclasses.replace(v, image=np.interp(v.image, own, ref).astype(np.float32))
            for v in volumes]


@dataclass(frozen=True)
class MaskByClass:
    """The mean true gap and the mean mask of each class (:func:`mask_by_class`), and whether the
    mask is largest on the class with the largest gap."""

    gap: dict[str, float]  # mean true gap per class present (background included)
    mask: dict[str, dict[str, float]]  # per named mask (e.g. "step 600, level 3"): mean per class
    top_gap: str  # the foreground class with the largest mean gap
    gap_ratio: float  # its mean gap over the mean of the other foreground classes' mean gaps
    top_mask: dict[str, str]  # per mask: the foreground class with the largest mean mask
    mask_ratio: dict[str, float]  # per mask: its mean on top_gap over the other classes' mean

    def markdown(self) -> str:
        """The table the chapters show: for each mask, where it is largest, and its ratio."""
        lines = ["| snapshot | largest mean mask on | vs the largest-gap class "
                 f"| mean mask on {self.top_gap} over the other classes' mean |",
                 "|---|---|---|---|"]
        for name, c in self.top_mask.items():
            same = "the same class" if c == self.top_gap else "a different class"
            lines.append(f"| {name} | {c} | {same} | {self.mask_ratio[name]:.2f} |")
        return "\n".join(lines)


def mask_by_class(gap, label, masks: Mapping[str, np.ndarray],
                  classes: Sequence[str]) -> MaskByClass:
    """Each named mask's mean per class against the true gap's (:class:`MaskByClass`).

    ``gap``: ``B×H×W`` true gap maps; ``label``: ``B×H×W`` class indices (``classes[k]`` names
    index ``k``, ``classes[0]`` the background); ``masks``: name → ``B×1×h×w`` mask. Classes
    absent from ``label`` are left out. Needs at least two foreground classes present.
    """
    gap, label = _numpy(gap), np.asarray(label)
    present = [(k, c) for k, c in enumerate(classes) if (label == k).any()]
    gap_by = {c: float(gap[label == k].mean()) for k, c in present}
    mask_by = {}
    for name, m in masks.items():
        means = class_mean_mask(m, label, len(classes))
        mask_by[name] = {c: float(means[k]) for k, c in present}
    fg = [c for _, c in present if c != classes[0]]
    if len(fg) < 2:
        raise ValueError(f"mask_by_class needs two foreground classes in the labels, got {fg}")
    top = max(fg, key=gap_by.get)
    others = [c for c in fg if c != top]
    return MaskByClass(
        gap=gap_by, mask=mask_by, top_gap=top,
        gap_ratio=gap_by[top] / float(np.mean([gap_by[c] for c in others])),
        top_mask={n: max(fg, key=means.get) for n, means in mask_by.items()},
        mask_ratio={n: means[top] / float(np.mean([means[c] for c in others]))
                    for n, means in mask_by.items()})


__all__ = ["MaskByClass", "class_mean_mask", "high_gap", "mask_by_class", "mask_gap_auc",
           "mask_gap_auc_interval", "pool_to", "quantile_match", "roc_auc"]
