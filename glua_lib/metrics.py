"""Per-class 3D Dice and ASSD (in mm) per volume, and an accumulator that aggregates them.

Both metrics come from MONAI (``monai.metrics.compute_dice`` and
``monai.metrics.compute_average_surface_distance`` with ``symmetric=True`` and the voxel
``spacing``), computed on whole ``D×H×W`` volumes, one foreground class at a time. ASSD is the
mean over the surface voxels of *both* masks of the Euclidean distance (mm) to the other mask's
surface; a surface voxel is a mask voxel with a 6-neighbour outside the mask.

Protocols (:data:`PROTOCOLS`): ``per-volume`` scores each test volume and summarises mean (std)
over volumes; ``pooled`` (:func:`pool_volumes`) concatenates the volumes and scores the one array
(the GLUA authors' ``metric.py``). ASSD in mm, or in voxels (:data:`ASSD_UNITS`) to set beside
papers that report it so.

Empty cases (class ``c`` of one volume)
--------------------------------------
=======================  ============  ==========================================  =============
ground truth / predicted  Dice          ASSD                                        ``status``
=======================  ============  ==========================================  =============
present / present         MONAI         MONAI (mm)                                  ``"ok"``
absent / absent           1.0           0.0 mm (nothing to find, nothing found)     ``"both_empty"``
present / absent          0.0           the penalty (below)                         ``"missed"``
absent / present          0.0           the penalty (below)                         ``"false_positive"``
=======================  ============  ==========================================  =============

The **penalty** is the volume's physical diagonal ``sqrt(sum((n_i * s_i)**2))`` in mm (sizes
``n_i`` voxels and spacings ``s_i`` mm along D, H, W): no surface distance inside the volume can
be larger, so a missed or hallucinated organ counts as the worst possible ASSD, never as ``NaN``
and never as "not counted" (leaving it out would *reward* missing an organ). Every value is
finite, so averages never silently become ``NaN``; :class:`MetricAccumulator` also counts the
non-``"ok"`` cases so a table can say how many penalties it contains.
"""
from __future__ import annotations

import math
import warnings
from typing import Iterable, Mapping, Sequence

import numpy as np
import torch

STATUSES = ("ok", "both_empty", "missed", "false_positive")
# How the test volumes are scored: each volume on its own, then mean (std) over volumes (SIFA's
# protocol), or all of them concatenated into one array and scored once (the GLUA authors'
# metric.py: a pooled figure, dominated by the larger volumes).
PROTOCOLS = ("per-volume", "pooled")
# ASSD in mm (from each volume's spacing) or in voxels (spacing 1, as SIFA and the GLUA authors
# report it, on their preprocessed grids).
ASSD_UNITS = ("mm", "voxel")


def pool_volumes(preds: Sequence[np.ndarray], gts: Sequence[np.ndarray],
                 spacings: Sequence[Sequence[float]], names: Sequence[str],
                 assd_unit: str = "mm") -> tuple[np.ndarray, np.ndarray, tuple[float, ...]]:
    """All volumes concatenated along ``D`` into one prediction and one ground truth, with the
    spacing to score them by (the ``pooled`` protocol).

    Raises:
        ValueError: no volumes, slices of another size (named), or (``assd_unit="mm"``) volumes
            of different spacings, which one pooled array cannot have: score in voxels then.
    """
    if assd_unit not in ASSD_UNITS:
        raise ValueError(f"assd_unit must be one of {ASSD_UNITS}, got {assd_unit!r}")
    if not preds:
        raise ValueError("no volumes to pool")
    for p, g, name in zip(preds, gts, names):
        if p.shape[1:] != preds[0].shape[1:] or g.shape != p.shape:
            raise ValueError(f"{name}: slices of {p.shape[1:]} (ground truth {g.shape}), but "
                             f"{names[0]} has {preds[0].shape[1:]}; pooling needs one slice size")
    if assd_unit == "voxel":
        spacing = (1.0, 1.0, 1.0)
    else:
        spacing = tuple(float(s) for s in spacings[0])
        other = [n for n, s in zip(names, spacings) if not np.allclose(s, spacing)]
        if other:
            raise ValueError(f"{other[0]} has spacing {tuple(spacings[names.index(other[0])])} "
                             f"mm but {names[0]} {spacing}: one pooled array cannot have both; "
                             "score the pooled protocol with ASSD in voxels")
    return np.concatenate(list(preds)), np.concatenate(list(gts)), spacing


def penalty_mm(shape: Sequence[int], spacing: Sequence[float]) -> float:
    """The ASSD given to a missed or hallucinated class: the volume's diagonal in mm."""
    return float(math.sqrt(sum((n * s) ** 2 for n, s in zip(shape, spacing))))


def _check(pred: np.ndarray, gt: np.ndarray, spacing: Sequence[float]) -> tuple[float, ...]:
    if pred.shape != gt.shape:
        raise ValueError(f"prediction shape {pred.shape} != ground-truth shape {gt.shape}")
    if pred.ndim != 3:
        raise ValueError(f"expected D×H×W label volumes, got shape {pred.shape}")
    spacing = tuple(float(s) for s in spacing)
    if len(spacing) != 3 or not all(math.isfinite(s) and s > 0 for s in spacing):
        raise ValueError(f"spacing {spacing} must be 3 positive mm values (D, H, W)")
    return spacing


def binary_metrics(pred: np.ndarray, gt: np.ndarray,
                   spacing: Sequence[float]) -> tuple[float, float, str]:
    """3D Dice, ASSD (mm) and status of one binary mask pair (``D×H×W`` bool or 0/1).

    Follows the empty-case conventions of this module's docstring.
    """
    from monai.metrics import compute_average_surface_distance, compute_dice

    pred, gt = np.asarray(pred).astype(bool), np.asarray(gt).astype(bool)
    spacing = _check(pred, gt, spacing)
    has_p, has_g = bool(pred.any()), bool(gt.any())
    if not has_g and not has_p:
        return 1.0, 0.0, "both_empty"
    if has_g != has_p:
        return 0.0, penalty_mm(gt.shape, spacing), "missed" if has_g else "false_positive"
    p = torch.from_numpy(pred)[None, None]
    g = torch.from_numpy(gt)[None, None]
    dice = float(compute_dice(p, g, include_background=True, ignore_empty=False)[0, 0])
    with warnings.catch_warnings():  # MONAI warns about empty masks; both are non-empty here
        warnings.simplefilter("ignore")
        assd = float(compute_average_surface_distance(
            p, g, include_background=True, symmetric=True, spacing=list(spacing))[0, 0])
    return dice, assd, "ok"


def volume_metrics(pred: np.ndarray, gt: np.ndarray, spacing: Sequence[float],
                   classes: Sequence[str]) -> dict:
    """Per-class Dice and ASSD of one label volume pair.

    Args:
        pred, gt: ``D×H×W`` integer label volumes (class indices; 0 is the background).
        spacing: voxel size in mm along (D, H, W).
        classes: all class names in label order, background first (``Task.classes``); the
            background is not scored.

    Returns:
        ``{"dice": {name: float}, "assd": {name: float (mm)}, "status": {name: str},
        "spacing": [d, h, w], "shape": [D, H, W]}`` over the foreground classes (JSON-ready).
    """
    pred, gt = np.asarray(pred), np.asarray(gt)
    spacing = _check(pred, gt, spacing)
    out: dict = {"dice": {}, "assd": {}, "status": {}, "spacing": list(spacing),
                 "shape": list(gt.shape)}
    for idx, name in enumerate(classes):
        if idx == 0:
            continue
        dice, assd, status = binary_metrics(pred == idx, gt == idx, spacing)
        out["dice"][name], out["assd"][name], out["status"][name] = dice, assd, status
    return out


def summarise(values: Iterable[float]) -> dict:
    """``{"mean", "std", "n"}`` of finite values (population std, ``ddof=0``, as is usual in
    segmentation tables); ``mean``/``std`` are ``None`` for no values, never ``NaN``."""
    arr = np.asarray(list(values), dtype=np.float64)
    if arr.size == 0:
        return {"mean": None, "std": None, "n": 0}
    if not np.isfinite(arr).all():
        raise ValueError(f"non-finite metric values {arr[~np.isfinite(arr)].tolist()}")
    return {"mean": float(arr.mean()), "std": float(arr.std()), "n": int(arr.size)}


class MetricAccumulator:
    """Collects per-volume metrics (like MONAI's ``Cumulative``) and aggregates them.

    >>> acc = MetricAccumulator(("background", "MYO"))
    >>> acc.add("case1", pred, gt, spacing)                       # doctest: +SKIP
    >>> acc.aggregate()["dice"]["MYO"]                              # doctest: +SKIP
    {'mean': 0.8, 'std': 0.05, 'n': 3}

    The ``"average"`` entry is computed per volume (mean over the foreground classes), then
    summarised over volumes, so its mean equals the mean of the class means.
    """

    def __init__(self, classes: Sequence[str]):
        if len(classes) < 2:
            raise ValueError(f"need background plus at least one class, got {list(classes)}")
        self.classes = tuple(classes)
        self.volumes: dict[str, dict] = {}

    @property
    def foreground(self) -> tuple[str, ...]:
        return self.classes[1:]

    def add(self, subject: str, pred: np.ndarray, gt: np.ndarray,
            spacing: Sequence[float]) -> dict:
        """Score one volume pair, store it under ``subject`` and return its metrics."""
        metrics = volume_metrics(pred, gt, spacing, self.classes)
        self.add_metrics(subject, metrics)
        return metrics

    def add_metrics(self, subject: str, metrics: Mapping) -> None:
        """Store already computed metrics of one volume (a :func:`volume_metrics` dict)."""
        if subject in self.volumes:
            raise ValueError(f"subject {subject!r} was already added")
        missing = [c for c in self.foreground if c not in metrics["dice"]]
        if missing:
            raise ValueError(f"metrics of {subject!r} lack classes {missing}")
        self.volumes[subject] = dict(metrics)

    def reset(self) -> None:
        self.volumes.clear()

    def __len__(self) -> int:
        return len(self.volumes)

    def aggregate(self) -> dict:
        """Mean (std) over volumes per class and of the per-volume average, plus status counts."""
        vols = list(self.volumes.values())
        out: dict = {"n_volumes": len(vols)}
        for metric in ("dice", "assd"):
            table = {c: summarise(v[metric][c] for v in vols) for c in self.foreground}
            table["average"] = summarise(
                float(np.mean([v[metric][c] for c in self.foreground])) for v in vols)
            out[metric] = table
        out["status_counts"] = {
            c: {s: sum(v["status"][c] == s for v in vols) for s in STATUSES}
            for c in self.foreground}
        return out

    def to_dict(self) -> dict:
        """JSON-ready per-volume metrics: ``{"classes": [...], "volumes": {subject: metrics}}``."""
        return {"classes": list(self.classes), "volumes": dict(sorted(self.volumes.items()))}
