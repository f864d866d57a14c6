"""Measuring what a translation did, instead of assuming it: appearance and content.

- :func:`appearance_gap` (defined in :mod:`glua_lib.gap`, which the phantoms use too): per
  class, the 1-D Wasserstein distance between the intensity distributions of two image sets
  (for example source vs target before translation, translated source vs target after). Smaller
  is more alike; a class whose gap stays large after global alignment is where local alignment
  has work left.
- :func:`edge_alignment`: whether a translation kept the *content*: the correlation of the
  gradient-magnitude maps of each source slice and its translation (1: edges in the same places
  with proportional strength; ~0: unrelated). Gradient magnitude ignores the sign of a contrast,
  so a modality's contrast inversion (dark fat becoming bright) does not count as lost content.
- :func:`ideal_gap`: the same gap for *ideal* translations (on phantoms, the source anatomy
  rendered in the target modality by the phantom generator,
  :func:`glua_lib.phantoms.ideal_translations`), over independent draws: what a perfect
  translator would score, and how often even it shrinks a class's gap.
"""
from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
from scipy import ndimage

from glua_lib.gap import Arrays, appearance_gap


def appearance_floor(images: Sequence[np.ndarray], labels: Sequence[np.ndarray],
                     class_names: Sequence[str], max_samples: int | None = 50_000,
                     seed: int = 0) -> dict[str, float]:
    """Per class, the mean over images ``i`` of :func:`appearance_gap` (image ``i`` vs all the
    other images pooled): the gap between real subjects of one modality (leave one out).

    Args:
        images, labels: at least two arrays of equal shapes per pair (one per subject).

    Returns:
        ``{class name: mean distance}``; ``nan`` where no image pair has the class.
    """
    if len(images) < 2 or len(images) != len(labels):
        raise ValueError(f"need >= 2 images with one label map each, got {len(images)} images "
                         f"and {len(labels)} label maps")
    per_image = [appearance_gap([images[i]], [labels[i]],
                                [x for j, x in enumerate(images) if j != i],
                                [y for j, y in enumerate(labels) if j != i],
                                class_names, max_samples, seed) for i in range(len(images))]
    out = {}
    for name in class_names:
        values = [g[name] for g in per_image if not np.isnan(g[name])]
        out[name] = float(np.mean(values)) if values else float("nan")
    return out


def class_mean_spread(images: Sequence[np.ndarray], labels: Sequence[np.ndarray],
                      class_names: Sequence[str],
                      groups: Sequence | None = None) -> dict[str, float]:
    """Per class, the standard deviation (over images) of each image's mean intensity in the
    class, averaged over ``groups``.

    Args:
        images, labels: arrays of equal shapes per pair, any dimension.
        groups: one key per image; the spread is taken within each group (for example the
            source volume a translation came from, so that it is the spread *between styles*)
            and averaged over groups. ``None``: all images form one group (for example real
            subjects, the spread *between subjects*).

    Returns:
        ``{class name: spread}`` in intensity units; ``nan`` where no group has the class in
        two or more images.
    """
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} label maps")
    groups = [0] * len(images) if groups is None else list(groups)
    if len(groups) != len(images):
        raise ValueError(f"{len(groups)} group keys for {len(images)} images")
    out = {}
    for c, name in enumerate(class_names):
        by_group: dict = {}
        for img, lab, key in zip(images, labels, groups):
            img, lab = np.asarray(img), np.asarray(lab)
            if img.shape != lab.shape:
                raise ValueError(f"image shape {img.shape} != label shape {lab.shape}")
            inside = lab == c
            if inside.any():
                by_group.setdefault(key, []).append(float(img[inside].mean()))
        spreads = [np.std(means) for means in by_group.values() if len(means) >= 2]
        out[name] = float(np.mean(spreads)) if spreads else float("nan")
    return out


def gradient_magnitude(image: np.ndarray) -> np.ndarray:
    """Sobel gradient magnitude over the last two axes of an array (…×H×W)."""
    image = np.asarray(image, np.float64)
    gy = ndimage.sobel(image, axis=-2, mode="nearest")
    gx = ndimage.sobel(image, axis=-1, mode="nearest")
    return np.hypot(gx, gy)


def edge_alignment(source_images: Arrays, translated_images: Arrays) -> float:
    """Mean over 2D slices of the Pearson correlation of source and translated edge maps.

    Inputs are arrays (or sequences of arrays) of equal shapes …×H×W; every H×W slice is one
    sample. Slices flat in either image (no edges) are skipped; ``nan`` if all are.
    """
    if isinstance(source_images, np.ndarray):
        source_images, translated_images = [source_images], [translated_images]
    scores = []
    for src, out in zip(source_images, translated_images, strict=True):
        src, out = np.asarray(src), np.asarray(out)
        if src.shape != out.shape or src.ndim < 2:
            raise ValueError(f"shapes {src.shape} and {out.shape}: expected equal …×H×W")
        ga = gradient_magnitude(src).reshape(-1, src.shape[-2] * src.shape[-1])
        gb = gradient_magnitude(out).reshape(-1, src.shape[-2] * src.shape[-1])
        for a, b in zip(ga, gb):
            a, b = a - a.mean(), b - b.mean()
            norm = np.sqrt((a * a).sum() * (b * b).sum())
            if norm > 1e-12:
                scores.append(float((a * b).sum() / norm))
    return float(np.mean(scores)) if scores else float("nan")


IDEAL_QUANTILES = (0.05, 0.95)  # the range of the ideal translations' gaps that is reported


def ideal_gap(target: Sequence, ideal_sets: Iterable[Sequence], class_names: Sequence[str],
              before: dict[str, float] | None = None, seed: int = 0) -> dict:
    """Per class, the gap to ``target`` of independent sets of ideal translations.

    Args:
        target: real target volumes (objects with ``.image`` and ``.label``); label value ``i``
            is ``class_names[i]``.
        ideal_sets: each item one set of ideal translations of the source volumes (for example
            :func:`glua_lib.phantoms.ideal_translations` with ``draw = 0, 1, …``), made the way
            the learnt translation's set was made, so that the two gaps are alike in sample size.
            May be a generator: one set at a time is held.
        before: the source's gaps (``{class: value}``); with it, ``"shrinks"`` is returned.

    Returns:
        ``{"median", "low", "high"}``: ``{class: value}`` over the sets (median and the
        :data:`IDEAL_QUANTILES` range), ``"n_sets"``, and with ``before`` ``"shrinks"``:
        ``{class: fraction of sets whose gap is below before}``.
    """
    gaps = [appearance_gap([v.image for v in s], [v.label for v in s],
                           [v.image for v in target], [v.label for v in target],
                           class_names, seed=seed) for s in ideal_sets]
    if not gaps:
        raise ValueError("ideal_sets is empty: give at least one set of ideal translations")
    out = {"median": {}, "low": {}, "high": {}, "n_sets": len(gaps)}
    if before is not None:
        out["shrinks"] = {}
    for c in class_names:
        values = np.array([g[c] for g in gaps])
        lo, hi = np.quantile(values, IDEAL_QUANTILES)
        out["median"][c], out["low"][c], out["high"][c] = (float(np.median(values)), float(lo),
                                                            float(hi))
        if before is not None:
            out["shrinks"][c] = float(np.mean(values < before[c]))
    return out


def translation_report(source: Sequence, target: Sequence, translated: Sequence,
                       class_names: Sequence[str], seed: int = 0,
                       ideal_sets: Iterable[Sequence] | None = None) -> dict:
    """Every measure of one translation, from prepared volumes (objects with ``.image``,
    ``.label``, ``.subject``; translations named ``<source subject>_style<k>``).

    Returns ``{"before", "after", "floor", "between_styles", "between_subjects"}`` (each a
    ``{class: value}`` dict over the foreground classes), ``"shrank"`` (classes whose gap
    shrank), ``"edge_alignment"`` (each translation against its own source volume) and
    ``"style_ratio"`` (mean over classes of between-styles / between-subjects spread).

    With ``ideal_sets`` (see :func:`ideal_gap`) also ``"ideal"`` (median gap of the ideal
    translations), ``"ideal_low"``/``"ideal_high"`` (their range), ``"ideal_shrinks"`` (the
    fraction of ideal sets whose gap shrank: below 1, not even a perfect translation always
    shrinks the class), ``"ideal_sets"`` (how many), ``"ideal_edge_alignment"`` (the median
    edge alignment of the ideal translations with their sources: what a perfect translation
    scores, since contrasts and blur differ between modalities), and ``"within_ideal"``: the
    classes whose gap after translation is no larger than ``ideal_high``, as small as a perfect
    translation's.
    """
    if not source or not target or not translated:
        raise ValueError("source, target and translated volumes must each be non-empty")
    by_subject = {v.subject: v for v in source}
    origin = [t.subject.rsplit("_style", 1)[0] for t in translated]
    missing = sorted({o for o in origin if o not in by_subject})
    if missing:
        raise ValueError(f"translations of unknown source subjects {missing}: expected names "
                         "'<source subject>_style<k>'")

    def images(vols):
        return [v.image for v in vols]

    def labels(vols):
        return [v.label for v in vols]

    fg = list(class_names[1:])
    before = appearance_gap(images(source), labels(source), images(target), labels(target),
                            class_names, seed=seed)
    after = appearance_gap(images(translated), labels(translated), images(target),
                           labels(target), class_names, seed=seed)
    floor = (appearance_floor(images(target), labels(target), class_names, seed=seed)
             if len(target) > 1 else {c: float("nan") for c in class_names})
    styles = class_mean_spread(images(translated), labels(translated), class_names, origin)
    subjects = class_mean_spread(images(target), labels(target), class_names)
    ratios = [styles[c] / subjects[c] for c in fg if subjects[c] > 0]
    report = {
        "before": {c: before[c] for c in fg}, "after": {c: after[c] for c in fg},
        "floor": {c: floor[c] for c in fg},
        "shrank": [c for c in fg if after[c] < before[c]],
        "between_styles": {c: styles[c] for c in fg},
        "between_subjects": {c: subjects[c] for c in fg},
        # nan where no ratio is defined (one rendering per source volume: no spread to compare)
        "style_ratio": (float(np.nanmean(ratios)) if np.isfinite(ratios).any()
                        else float("nan")),
        "edge_alignment": edge_alignment([by_subject[o].image for o in origin],
                                         images(translated)),
    }
    if ideal_sets is not None:
        edges = []

        def with_edges(sets):  # each set's edge alignment, measured as ideal_gap takes it
            for s in sets:
                edges.append(edge_alignment(
                    [by_subject[v.subject.rsplit("_style", 1)[0]].image for v in s], images(s)))
                yield s

        ideal = ideal_gap(target, with_edges(ideal_sets), class_names, before, seed=seed)
        report.update({f"ideal{suffix}": {c: ideal[key][c] for c in fg} for suffix, key in
                       (("", "median"), ("_low", "low"), ("_high", "high"),
                        ("_shrinks", "shrinks"))})
        report["ideal_sets"] = ideal["n_sets"]
        report["ideal_edge_alignment"] = (float(np.nanmedian(edges))
                                          if not np.isnan(edges).all() else float("nan"))
        report["within_ideal"] = [c for c in fg if after[c] <= ideal["high"][c]]
    return report


def class_views(label: np.ndarray, n_classes: int, margin: int = 4
                ) -> dict[int, tuple[int, slice, slice]]:
    """Where to look at each class of a label volume ``D×H×W`` (ints, 0 = background): per
    foreground class ``k`` in ``1 … n_classes − 1`` that the volume holds, the slice with the
    most voxels of it and the rows and columns of its bounding box there, widened by ``margin``
    pixels and clipped to the image: ``{k: (slice index, rows, cols)}``. Classes absent from the
    volume are left out. (:func:`glua_lib.plots.class_translation_grid` crops its columns so.)

    Raises:
        ValueError: ``label`` is not 3-D, or ``margin`` is negative.
    """
    label = np.asarray(label)
    if label.ndim != 3:
        raise ValueError(f"label must be D×H×W, got shape {label.shape}")
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    views = {}
    for k in range(1, n_classes):
        per_slice = (label == k).sum(axis=(1, 2))
        if per_slice.max() == 0:
            continue
        z = int(per_slice.argmax())
        rows, cols = np.nonzero(label[z] == k)
        views[k] = (z, slice(max(0, int(rows.min()) - margin),
                             min(label.shape[1], int(rows.max()) + 1 + margin)),
                    slice(max(0, int(cols.min()) - margin),
                          min(label.shape[2], int(cols.max()) + 1 + margin)))
    return views
