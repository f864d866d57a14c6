"""The prepared format every converter writes and every chapter reads.

A prepared folder ``PREP_DIR`` holds one compressed ``.npz`` per volume and a ``manifest.json``:

=============  ==========================================================================
key            content
=============  ==========================================================================
``image``      float32, ``D×H×W``, normalised intensities (see the manifest)
``label``      uint8, ``D×H×W``, class indices in the task's order (0 = background)
``spacing``    float64, ``(3,)``, voxel size in mm along (D, H, W)
``modality``   ``"mr"`` or ``"ct"``
``task``       ``"cardiac"`` or ``"abdominal"``
``subject``    subject identifier (also the file name without ``.npz``)
=============  ==========================================================================

``manifest.json`` records the task, class names, modality, normalisation, the split of every
subject and the command that made the folder. Folders are written through :func:`staged_output`,
so a failed run leaves nothing half-written behind.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from glua_lib.data.tasks import MODALITIES, get_task
from glua_lib.io import atomic_path, atomic_write_text

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SPLITS = ("train", "val", "test")


class PreparedDataError(ValueError):
    """A prepared file or folder is missing, corrupt or inconsistent (the message names it)."""


@dataclass
class Volume:
    """One prepared volume. Arrays are ``D×H×W``; ``spacing`` is (D, H, W) in mm."""

    image: np.ndarray  # float32 D×H×W, normalised
    label: np.ndarray  # uint8 D×H×W, class indices
    spacing: tuple[float, float, float]  # mm along (D, H, W)
    modality: str  # "mr" or "ct"
    task: str  # "cardiac" or "abdominal"
    subject: str  # identifier, also the file stem

    def validate(self, source: str | os.PathLike = "<memory>") -> "Volume":
        """Check dtypes, shapes, finiteness and label range; raise naming ``source`` otherwise."""
        where = str(source)
        try:
            task = get_task(self.task)
        except ValueError as err:
            raise PreparedDataError(f"{where}: {err}") from None
        if self.modality not in MODALITIES:
            raise PreparedDataError(f"{where}: modality {self.modality!r} is not one of {MODALITIES}")
        if self.image.ndim != 3:
            raise PreparedDataError(f"{where}: image must be D×H×W, got shape {self.image.shape}")
        if self.image.shape != self.label.shape:
            raise PreparedDataError(
                f"{where}: image shape {self.image.shape} != label shape {self.label.shape}")
        if self.image.dtype != np.float32:
            raise PreparedDataError(f"{where}: image dtype {self.image.dtype}, expected float32")
        if self.label.dtype != np.uint8:
            raise PreparedDataError(f"{where}: label dtype {self.label.dtype}, expected uint8")
        if not np.isfinite(self.image).all():
            n = int((~np.isfinite(self.image)).sum())
            raise PreparedDataError(f"{where}: image has {n} non-finite values (NaN/inf)")
        if self.label.size and int(self.label.max()) >= task.n_classes:
            bad = sorted(set(np.unique(self.label).tolist()) - set(range(task.n_classes)))
            raise PreparedDataError(
                f"{where}: label values {bad} outside 0..{task.n_classes - 1} of task {task.name}")
        spacing = tuple(float(s) for s in self.spacing)
        if len(spacing) != 3 or not all(np.isfinite(s) and s > 0 for s in spacing):
            raise PreparedDataError(f"{where}: spacing {self.spacing} must be 3 positive mm values")
        self.spacing = spacing
        return self


_KEYS = ("image", "label", "spacing", "modality", "task", "subject")


def save_volume(path: str | os.PathLike, vol: Volume,
                extras: dict[str, np.ndarray] | None = None) -> Path:
    """Validate ``vol`` and write it as a compressed ``.npz`` atomically; returns the path.

    ``extras`` adds optional arrays under other keys (the phantoms store their ``gap`` map, a
    float32 ``D×H×W`` array); :func:`load_volume` ignores them, :func:`load_extra` reads one.
    """
    path = Path(path)
    vol.validate(path)
    extras = dict(extras or {})
    clash = set(extras) & set(_KEYS)
    if clash:
        raise ValueError(f"extras may not reuse the reserved keys {sorted(clash)}")
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez_compressed(
            tmp, image=vol.image, label=vol.label, spacing=np.asarray(vol.spacing, np.float64),
            modality=np.str_(vol.modality), task=np.str_(vol.task), subject=np.str_(vol.subject),
            **extras,
        )
    return path


def load_extra(path: str | os.PathLike, key: str) -> np.ndarray:
    """Read one optional array (for example the phantoms' ``gap`` map) from a prepared ``.npz``."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            if key not in z.files:
                raise PreparedDataError(f"{path}: has no {key!r} array (keys: {sorted(z.files)})")
            return z[key]
    except PreparedDataError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise PreparedDataError(f"{path}: not a readable .npz ({err}); re-create it") from err


def load_volume(path: str | os.PathLike) -> Volume:
    """Read and validate one prepared ``.npz``.

    Raises:
        PreparedDataError: the file is missing, not a readable ``.npz``, lacks a key, or fails
            :meth:`Volume.validate`; the message names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise PreparedDataError(f"{path}: no such prepared volume (run `python -m data_prep` first)")
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = set(_KEYS) - set(z.files)
            if missing:
                raise PreparedDataError(f"{path}: missing keys {sorted(missing)}")
            vol = Volume(image=z["image"], label=z["label"], spacing=tuple(z["spacing"].tolist()),
                         modality=str(z["modality"]), task=str(z["task"]),
                         subject=str(z["subject"]))
    except PreparedDataError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise PreparedDataError(f"{path}: not a readable .npz ({err}); re-create it") from err
    return vol.validate(path)


def make_manifest(*, dataset: str, task: str, modality: str, normalisation: dict,
                  splits: dict[str, str], command: str, extra: dict | None = None) -> dict:
    """Build a manifest dict; ``splits`` maps each subject to ``train``/``val``/``test``."""
    t = get_task(task)
    bad = {s: v for s, v in splits.items() if v not in SPLITS}
    if bad:
        raise ValueError(f"unknown splits {bad}; use {SPLITS}")
    manifest = {
        "format_version": FORMAT_VERSION, "dataset": dataset, "task": t.name,
        "classes": list(t.classes), "modality": modality, "normalisation": normalisation,
        "subjects": {s: {"split": v, "file": f"{s}.npz"} for s, v in sorted(splits.items())},
        "command": command,
    }
    if extra:
        manifest.update(extra)
    return manifest


def write_manifest(prep_dir: str | os.PathLike, manifest: dict) -> Path:
    """Write ``manifest.json`` into ``prep_dir`` atomically."""
    path = Path(prep_dir) / MANIFEST
    atomic_write_text(path, json.dumps(manifest, indent=2) + "\n")
    return path


def read_manifest(prep_dir: str | os.PathLike) -> dict:
    """Read and check ``manifest.json``: every listed subject's file must exist."""
    prep_dir = Path(prep_dir)
    path = prep_dir / MANIFEST
    if not path.is_file():
        raise PreparedDataError(
            f"{path}: no manifest; {prep_dir} is not a prepared folder (run `python -m data_prep`)")
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise PreparedDataError(f"{path}: not valid JSON ({err})") from err
    for key in ("task", "modality", "subjects", "classes"):
        if key not in manifest:
            raise PreparedDataError(f"{path}: missing key {key!r}")
    missing = [s for s, e in manifest["subjects"].items() if not (prep_dir / e["file"]).is_file()]
    if missing:
        raise PreparedDataError(f"{path}: lists subjects whose files are missing: {missing}")
    return manifest


def list_subjects(prep_dir: str | os.PathLike, split: str | None = None) -> list[str]:
    """Subjects of a prepared folder, optionally only those of one split, in sorted order."""
    subjects = read_manifest(prep_dir)["subjects"]
    return sorted(s for s, e in subjects.items() if split is None or e["split"] == split)


def check_slice_size(path: str | os.PathLike, size: tuple[int, ...], expected: tuple[int, ...],
                     whose: str, fix: str) -> None:
    """``ValueError`` naming ``path`` when its H×W slices (``size``) are not ``expected``.

    ``whose`` says whose size ``expected`` is ("the model in RUN was trained on"), ``fix`` what to
    do. One network applied at another scale than it learnt gives no error, only wrong results.
    """
    if tuple(size) != tuple(expected):
        raise ValueError(f"{path}: slices are {size[0]}×{size[1]} but {whose} "
                         f"{expected[0]}×{expected[1]}; {fix}")


def load_volumes(prep_dir: str | os.PathLike, split: str | None = None) -> list[Volume]:
    """All volumes of a prepared folder (optionally one split), sorted by subject."""
    prep_dir = Path(prep_dir)
    manifest = read_manifest(prep_dir)
    return [load_volume(prep_dir / manifest["subjects"][s]["file"])
            for s in list_subjects(prep_dir, split)]


@contextmanager
def staged_output(out_dir: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield an empty staging folder that replaces ``out_dir`` only if the block succeeds.

    Converters write every volume and the manifest into the staging folder; if anything raises,
    the staging folder is deleted and ``out_dir`` is untouched. An existing non-empty ``out_dir``
    is an error unless ``overwrite`` is true.
    """
    out_dir = Path(out_dir).resolve()
    if out_dir.exists() and not out_dir.is_dir():
        raise FileExistsError(f"{out_dir}: exists and is not a folder")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not overwrite:
        raise FileExistsError(f"{out_dir}: exists and is not empty; pass --overwrite to replace it")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.partial-", dir=out_dir.parent))
    try:
        yield stage
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    old = None
    if out_dir.exists():
        old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
        os.replace(out_dir, old)
    os.replace(stage, out_dir)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
