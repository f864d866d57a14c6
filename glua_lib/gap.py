"""The appearance gap between two image sets, per class: the measure the phantoms and chapter 2
share.

:func:`appearance_gap` is the per-class 1-D Wasserstein distance between the intensity
distributions of two labelled image sets. The phantoms measure their MR/CT gap with it
(:func:`glua_lib.phantoms.class_gap`), and chapter 2 the gap left by a translation
(:mod:`glua_lib.style.measure`, which builds its other measures on it). It imports nothing of the
library, so both can import it.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
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
