"""Measuring what a translation did, instead of assuming it: appearance and content.

- :func:`appearance_gap`: per class, the 1-D Wasserstein distance between the intensity
  distributions of two image sets (for example source vs target before translation, translated
  source vs target after). Smaller is more alike; a class whose gap stays large after global
  alignment is where local alignment has work left.
- :func:`edge_alignment`: whether a translation kept the *content*: the correlation of the
  gradient-magnitude maps of each source slice and its translation (1: edges in the same places
  with proportional strength; ~0: unrelated). Gradient magnitude ignores the sign of a contrast,
  so a modality's contrast inversion (dark fat becoming bright) does not count as lost content.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy import ndimage
from scipy.stats import wasserstein_distance

Arrays = np.ndarray | Sequence[np.ndarray]


def _pool(images: Arrays, labels: Arrays, c: int) -> np.ndarray:
    if isinstance(images, np.ndarray):
        images, labels = [images], [labels]
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} label maps")
    out = []
    for img, lab in zip(images, labels):
        img, lab = np.asarray(img), np.asarray(lab)
        if img.shape != lab.shape:
            raise ValueError(f"image shape {img.shape} != label shape {lab.shape}")
        out.append(img[lab == c].astype(np.float64))
    return np.concatenate(out) if out else np.zeros(0)


def appearance_gap(images_a: Arrays, labels_a: Arrays, images_b: Arrays, labels_b: Arrays,
                   class_names: Sequence[str], max_samples: int | None = 50_000,
                   seed: int = 0) -> dict[str, float]:
    """Per class, ``wasserstein_distance`` between the intensities of set A and set B.

    Args:
        images_a, labels_a: arrays (or sequences of arrays) of equal shapes, any dimension;
            label value ``i`` is ``class_names[i]``. Likewise ``images_b``, ``labels_b``.
        max_samples: at most this many voxels per class and set, drawn with ``seed`` (speed);
            ``None`` uses all.

    Returns:
        ``{class name: distance}`` in intensity units; ``nan`` where a set has no voxel of the
        class.
    """
    rng = np.random.default_rng(seed)
    gaps = {}
    for c, name in enumerate(class_names):
        a, b = _pool(images_a, labels_a, c), _pool(images_b, labels_b, c)
        if not a.size or not b.size:
            gaps[name] = float("nan")
            continue
        if max_samples is not None:
            a = a if a.size <= max_samples else rng.choice(a, max_samples, replace=False)
            b = b if b.size <= max_samples else rng.choice(b, max_samples, replace=False)
        gaps[name] = float(wasserstein_distance(a, b))
    return gaps


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
