"""PyTorch datasets of 2D slices cut from prepared volumes, with seeded augmentation."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from scipy import ndimage
from torch.utils.data import Dataset

from glua_lib.data.prepared import Volume, load_volumes


@dataclass(frozen=True)
class Augment:
    """Random in-plane geometry and intensity changes; every field 0 means "off".

    No flips: a left-right flip would swap the right and left kidney.
    """

    rotate_deg: float = 10.0  # rotation drawn uniformly from ±rotate_deg degrees
    scale: float = 0.1  # zoom factor drawn uniformly from 1 ± scale
    shift: float = 0.05  # translation drawn uniformly from ± shift × slice size
    gamma: float = 0.2  # intensity gamma exp(U(±gamma)) on the [0, 1]-rescaled slice
    noise: float = 0.02  # std of added Gaussian noise, relative to the slice's intensity range
    class_offset: float = 0.0  # std of an intensity offset per label class and slice (labels!)


def _augment(image: np.ndarray, label: np.ndarray, aug: Augment, rng: np.random.Generator):
    """Apply one random draw of ``aug`` to ``image`` (C×H×W) and ``label`` (H×W).

    With ``class_offset`` > 0 each label class first gets its own intensity offset, drawn from
    N(0, class_offset²) (the label-driven intensity randomisation of SynthSeg, Billot et al.,
    MedIA 2023, in its smallest form): it needs the labels, so only labelled images get it."""
    h, w = label.shape
    if aug.class_offset > 0:
        offsets = rng.normal(0.0, aug.class_offset, size=int(label.max()) + 1)
        image = image + offsets[label][None].astype(image.dtype)
    angle = np.deg2rad(rng.uniform(-aug.rotate_deg, aug.rotate_deg))
    zoom = rng.uniform(1 - aug.scale, 1 + aug.scale)
    shift = rng.uniform(-aug.shift, aug.shift, size=2) * (h, w)
    cos, sin = np.cos(angle) / zoom, np.sin(angle) / zoom
    matrix = np.array([[cos, -sin], [sin, cos]])
    centre = np.array([(h - 1) / 2, (w - 1) / 2])
    offset = centre - matrix @ (centre + shift)
    out = np.stack([ndimage.affine_transform(c, matrix, offset, order=1, mode="nearest")
                    for c in image])
    label = ndimage.affine_transform(label, matrix, offset, order=0, mode="constant", cval=0)
    lo, hi = float(out.min()), float(out.max())
    if hi > lo:
        unit = (out - lo) / (hi - lo)
        out = unit ** np.exp(rng.uniform(-aug.gamma, aug.gamma)) * (hi - lo) + lo
        out = out + rng.normal(0.0, aug.noise * (hi - lo), size=out.shape)
    return out.astype(np.float32), label


class SliceDataset(Dataset):
    """2D slices of prepared volumes, optionally with neighbouring slices as channels.

    Args:
        volumes: a prepared folder (``PREP_DIR``) or a list of :class:`Volume`.
        split: with a folder, only the subjects of this split (``train``/``val``/``test``).
        context: ``k`` neighbouring slices on each side become channels (``C = 2k + 1``);
            slices beyond the volume repeat the edge slice.
        augment: an :class:`Augment`, or ``None`` for none.
        seed: augmentation seed; item ``i`` of epoch ``e`` always gets the same draw
            (independent of DataLoader workers and their order). Call :meth:`set_epoch`.
        labelled_only: keep only slices with some foreground.

    Items are dicts: ``image`` float32 ``C×H×W``, ``label`` int64 ``H×W``, ``subject`` str,
    ``slice`` int.
    """

    def __init__(self, volumes: str | os.PathLike | Sequence[Volume], split: str | None = None,
                 context: int = 0, augment: Augment | None = None, seed: int = 0,
                 labelled_only: bool = False):
        if isinstance(volumes, (str, os.PathLike)):
            volumes = load_volumes(volumes, split)
        elif split is not None:
            raise ValueError("split selects subjects of a prepared folder; pass a folder")
        self.volumes = list(volumes)
        if not self.volumes:
            raise ValueError("no volumes to cut slices from")
        shapes = {v.image.shape[1:] for v in self.volumes}
        if len(shapes) != 1:
            raise ValueError(f"volumes have different slice sizes {sorted(shapes)}; resample first")
        if context < 0:
            raise ValueError(f"context must be >= 0, got {context}")
        self.context, self.augment, self.seed, self.epoch = context, augment, seed, 0
        self.index = [(v, z) for v, vol in enumerate(self.volumes) for z in range(len(vol.image))
                      if not labelled_only or vol.label[z].any()]

    def set_epoch(self, epoch: int) -> None:
        """Choose the augmentation draws of this epoch."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict:
        v, z = self.index[i]
        vol = self.volumes[v]
        depth = len(vol.image)
        zs = np.clip(np.arange(z - self.context, z + self.context + 1), 0, depth - 1)
        image, label = vol.image[zs], vol.label[z]
        if self.augment is not None:
            rng = np.random.default_rng([self.seed, self.epoch, i])
            image, label = _augment(image, label, self.augment, rng)
        return {"image": torch.from_numpy(np.ascontiguousarray(image, np.float32)),
                "label": torch.from_numpy(label.astype(np.int64)),
                "subject": vol.subject, "slice": int(z)}
