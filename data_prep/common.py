"""Steps shared by the converters: read, check, map labels, normalise, reorient, resample, write.

Orientation
    Every converter gives an array and its voxel→world affine (RAS+ mm, nibabel's convention; DICOM
    geometry is converted from LPS) to :meth:`Preprocessing.apply`. It reorients with
    ``nibabel.as_closest_canonical`` (voxel axes → x: left→Right, y: posterior→Anterior,
    z: inferior→Superior) and then arranges the array as ``D×H×W`` for one of two planes, in the
    radiological display convention (row 0 at the top of the screen, the patient's right on the
    left of the screen):

    * ``axial`` (abdominal): D inferior→superior, H anterior→posterior, W right→left. This is a
      standard axial DICOM series stacked from feet to head.
    * ``coronal`` (cardiac by default, as SIFA slices MM-WHS coronally): D posterior→anterior,
      H superior→inferior, W right→left.

    ``spacing`` is the voxel size in mm along (D, H, W), updated after resampling.

Resampling
    Each slice is resampled to ``size×size`` with :func:`scipy.ndimage.zoom` (``grid_mode=True``,
    so the field of view is kept and the new spacing is ``old · n_old / size``): order 1 for images,
    order 0 (nearest) for labels, which are never interpolated. D is not resampled.

Intensities
    * CT: clip to a HU window, then scale linearly to [-1, 1]. Windows: abdominal [-350, 350] HU;
      cardiac CTA [-200, 600] HU (level 200, width 800: contrast blood, myocardium and fat inside,
      bone and lung clipped).
    * MR: clip above the volume's 98th percentile ("top 2 %"), then z-score with the mean and
      standard deviation of the whole clipped volume. The per-volume numbers go into the manifest.

Normalisation and resampling happen after the checks; errors name the offending file(s) and are
:class:`~glua_lib.data.prepared.PreparedDataError` (a ``ValueError``) or ``FileNotFoundError``.
"""
from __future__ import annotations

import argparse
import re
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import nibabel as nib
import numpy as np
from scipy import ndimage
from tqdm import tqdm

from glua_lib.data.prepared import (PreparedDataError, Volume, make_manifest, save_volume,
                                    staged_output, write_manifest)

CT_WINDOWS = {"abdominal": (-350.0, 350.0), "cardiac": (-200.0, 600.0)}  # HU
MR_PERCENTILE = 98.0
DEFAULT_SIZE = 256
# canonical RAS array (x, y, z) -> D×H×W: axis permutation, then H and W are reversed
PLANES = {
    "axial": ((2, 1, 0), "D inferior->superior, H anterior->posterior, W right->left (patient)"),
    "coronal": ((1, 2, 0), "D posterior->anterior, H superior->inferior, W right->left (patient)"),
}
_NIFTI_ERRORS = (OSError, EOFError, ValueError, zlib.error, nib.filebasedimages.ImageFileError,
                 nib.spatialimages.HeaderDataError)


# ----------------------------------------------------------------------------------- arguments
def positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def add_size_argument(parser: argparse.ArgumentParser) -> None:
    """``--size N``: in-plane size of the prepared slices (N×N)."""
    parser.add_argument("--size", type=positive_int, default=DEFAULT_SIZE,
                        help=f"resample every slice to SIZE×SIZE (default {DEFAULT_SIZE})")


def add_ct_window_argument(parser: argparse.ArgumentParser, task: str) -> None:
    """``--ct-window LO HI``: the HU window CT is clipped to before scaling to [-1, 1]."""
    lo, hi = CT_WINDOWS[task]
    parser.add_argument("--ct-window", type=float, nargs=2, metavar=("LO", "HI"), default=[lo, hi],
                        help=f"CT window in HU, clipped, then scaled to [-1, 1] "
                             f"(default {lo:g} {hi:g})")


def add_mr_percentile_argument(parser: argparse.ArgumentParser) -> None:
    """``--mr-percentile P``: MR is clipped above its P-th percentile before z-scoring."""
    parser.add_argument("--mr-percentile", type=float, default=MR_PERCENTILE,
                        help="clip MR above this percentile, then z-score "
                             f"(default {MR_PERCENTILE:g})")


# ----------------------------------------------------------------------------------- paths
def check_src_out(src: Path, out: Path) -> Path:
    """``src`` resolved; it must be a folder and ``out`` must not overlap it (raw is read only)."""
    src_r, out_r = Path(src).resolve(), Path(out).resolve()
    if not src_r.is_dir():
        raise FileNotFoundError(f"{src}: no such folder; pass the raw dataset folder as --src")
    if out_r == src_r or src_r in out_r.parents or out_r in src_r.parents:
        raise ValueError(f"--out {out} overlaps --src {src}; the raw folder is never written to, "
                         "choose an --out outside it")
    return src_r


def require_dir(path: Path, what: str) -> Path:
    """``path`` if it is a folder, else ``FileNotFoundError`` saying what was expected there."""
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such folder; expected {what}")
    return path


def natural_key(name: str) -> list:
    """Sort key that orders ``slice2`` before ``slice10``."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


# ------------------------------------------------------------------------------- reading + checks
def read_nifti(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read a NIfTI file fully: (array ``X×Y×Z`` in file order, 4×4 voxel→RAS affine)."""
    try:
        img = nib.load(path)
        data = np.asanyarray(img.dataobj)
    except _NIFTI_ERRORS as err:
        raise PreparedDataError(f"{path}: not a readable NIfTI file ({type(err).__name__}: {err}); "
                                "re-download or re-extract it") from err
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise PreparedDataError(f"{path}: expected a 3D volume, got shape {data.shape}")
    return data, np.asarray(img.affine, dtype=np.float64)


def check_pair(image: np.ndarray, label: np.ndarray, image_affine: np.ndarray,
               label_affine: np.ndarray, image_path: Path, label_path: Path) -> None:
    """Image and label must have the same shape and (to 1e-3 mm) the same affine."""
    if image.shape != label.shape:
        raise PreparedDataError(f"{image_path} has shape {image.shape} but {label_path} has "
                                f"{label.shape}; the label must match its image voxel for voxel")
    if not np.allclose(image_affine, label_affine, rtol=0, atol=1e-3):
        raise PreparedDataError(
            f"{image_path} and {label_path} have different affines (voxel-to-world geometry):\n"
            f"{np.round(image_affine, 4)}\nvs\n{np.round(label_affine, 4)}\n"
            "they must describe the same grid; check that the files belong together")


def check_finite(image: np.ndarray, where: object) -> None:
    """Raise naming ``where`` if ``image`` holds NaN or inf."""
    bad = ~np.isfinite(image)
    if bad.any():
        raise PreparedDataError(f"{where}: image has {int(bad.sum())} NaN/inf values; "
                                "the file is damaged, re-download it")


def map_labels(raw: np.ndarray, table: dict[int, int], where: object, dataset: str) -> np.ndarray:
    """Map raw label values to class indices (uint8, same shape) with ``table`` (raw → class).

    Every raw value must be a key of ``table``; otherwise the error lists the unknown values and
    names ``where``.
    """
    values, inverse = np.unique(raw, return_inverse=True)
    unknown = [v for v in values.tolist() if v not in table]
    if unknown:
        shown = ", ".join(f"{v:g}" for v in unknown[:20]) + (" ..." if len(unknown) > 20 else "")
        raise PreparedDataError(
            f"{where}: label values {shown} are not {dataset} labels (known: "
            f"{_ranges(sorted(table))}); check that this is the right file of the right dataset")
    lut = np.array([table[v] for v in values.tolist()], dtype=np.uint8)
    return lut[inverse.reshape(-1)].reshape(raw.shape)


def _ranges(values: list[int]) -> str:
    """``[0, 1, 2, 5]`` → ``"0-2, 5"``."""
    runs: list[list[int]] = []
    for v in values:
        if runs and v == runs[-1][1] + 1:
            runs[-1][1] = v
        else:
            runs.append([v, v])
    return ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in runs)


# ----------------------------------------------------------------------------------- geometry
def to_dhw(data: np.ndarray, affine: np.ndarray, plane: str) -> tuple[np.ndarray, tuple]:
    """Reorient ``data`` (voxel axes as in ``affine``) to RAS+ with nibabel, then to ``D×H×W``.

    Returns the contiguous ``D×H×W`` array and the spacing in mm along (D, H, W). See the module
    docstring for the anatomical direction of each axis.
    """
    perm, _ = PLANES[plane]
    canonical = nib.as_closest_canonical(nib.Nifti1Image(data, affine))
    ras = np.asanyarray(canonical.dataobj)
    zooms = nib.affines.voxel_sizes(canonical.affine)
    out = np.ascontiguousarray(np.transpose(ras, perm)[:, ::-1, ::-1])
    return out, tuple(float(zooms[p]) for p in perm)


def resample_inplane(image: np.ndarray, label: np.ndarray, spacing: tuple,
                     size: int) -> tuple[np.ndarray, np.ndarray, tuple]:
    """Resample ``D×H×W`` image (linear) and label (nearest) to ``D×size×size``; update spacing."""
    d, h, w = image.shape
    if (h, w) == (size, size):
        return image, label, spacing
    factors = (1.0, size / h, size / w)
    image = ndimage.zoom(image, factors, order=1, mode="nearest", grid_mode=True)
    label = ndimage.zoom(label, factors, order=0, mode="nearest", grid_mode=True)
    return image, label, (spacing[0], spacing[1] * h / size, spacing[2] * w / size)


# ----------------------------------------------------------------------------------- intensities
@dataclass(frozen=True)
class Preprocessing:
    """Normalise, reorient to ``D×H×W`` and resample one volume; describe it for the manifest."""

    modality: str  # "mr" or "ct"
    plane: str  # "axial" or "coronal"
    size: int  # in-plane size after resampling
    ct_window: tuple[float, float] = CT_WINDOWS["abdominal"]
    mr_percentile: float = MR_PERCENTILE

    def normalise(self, image: np.ndarray, where: object) -> tuple[np.ndarray, dict | None]:
        """Normalised float32 copy of ``image`` and the per-volume parameters (MR) or None (CT)."""
        image = image.astype(np.float32)
        if self.modality == "ct":
            lo, hi = self.ct_window
            return (2.0 * (np.clip(image, lo, hi) - lo) / (hi - lo) - 1.0).astype(np.float32), None
        clip_at = float(np.percentile(image, self.mr_percentile))
        image = np.minimum(image, clip_at)
        mean, std = float(image.mean(dtype=np.float64)), float(image.std(dtype=np.float64))
        if not std > 0:
            raise PreparedDataError(f"{where}: image is constant after clipping; cannot z-score it "
                                    "(is the file empty or damaged?)")
        params = {"clip_at": clip_at, "mean": mean, "std": std}
        return ((image - mean) / std).astype(np.float32), params

    def apply(self, image: np.ndarray, label: np.ndarray, affine: np.ndarray,
              where: object) -> tuple[np.ndarray, np.ndarray, tuple, dict | None]:
        """Image and mapped uint8 label (voxel axes of ``affine``) → ``D×H×W`` image, label,
        spacing (D, H, W) in mm and the per-volume normalisation parameters."""
        check_finite(image, where)
        image, params = self.normalise(image, where)
        image, spacing = to_dhw(image, affine, self.plane)
        label, _ = to_dhw(label, affine, self.plane)
        image, label, spacing = resample_inplane(image, label, spacing, self.size)
        return image, label, spacing, params

    def describe(self) -> dict:
        """The manifest's ``normalisation`` entry (per-volume MR numbers are added when writing)."""
        if self.modality == "ct":
            lo, hi = self.ct_window
            return {"method": "ct-window", "window_hu": [lo, hi], "range": [-1.0, 1.0],
                    "formula": "2 * (clip(x, lo, hi) - lo) / (hi - lo) - 1"}
        return {"method": "mr-percentile-zscore", "upper_percentile": self.mr_percentile,
                "formula": "x = min(x, P-th percentile); (x - mean) / std, per volume"}

    def geometry(self) -> dict:
        """Manifest entries describing axes, size and resampling."""
        return {"axes": PLANES[self.plane][1], "plane": self.plane, "size": self.size,
                "orientation": "nibabel.as_closest_canonical (RAS+) then D×H×W as in 'axes'",
                "resampling": "in-plane scipy.ndimage.zoom: order 1 image, order 0 label"}


# ----------------------------------------------------------------------------------- writing
def write_prepared(args: argparse.Namespace, *, dataset: str, task: str, modality: str,
                   cases: Iterable[tuple[str, str, object]],
                   load: Callable[[object], tuple[np.ndarray, np.ndarray, tuple, dict | None]],
                   normalisation: dict, extra: dict | None = None) -> Path:
    """Convert every case with ``load`` and write volumes + manifest to ``args.out`` atomically.

    ``cases`` are (subject, split, item) triples; ``item`` is what the converter's ``load`` takes.
    ``load(item)`` returns (image float32 ``D×H×W``, label uint8 ``D×H×W``, spacing (D, H, W) mm,
    per-volume normalisation parameters or None). Writing goes through ``staged_output``: on any
    error ``args.out`` is left as it was.
    """
    cases = list(cases)
    splits, per_volume = {}, {}
    with staged_output(args.out, overwrite=args.overwrite) as stage:
        for subject, split, item in tqdm(cases, desc=dataset, unit="volume",
                                         disable=args.no_progress):
            image, label, spacing, params = load(item)
            save_volume(stage / f"{subject}.npz",
                        Volume(image=image, label=label, spacing=spacing, modality=modality,
                               task=task, subject=subject))
            splits[subject] = split
            if params:
                per_volume[subject] = params
        if per_volume:
            normalisation = {**normalisation, "per_volume": per_volume}
        write_manifest(stage, make_manifest(dataset=dataset, task=task, modality=modality,
                                            normalisation=normalisation, splits=splits,
                                            command=args.command, extra=extra))
    return Path(args.out)


def nifti_pair_loader(prep: "Preprocessing", labels: dict, dataset: str):
    """``load((image_path, label_path))`` for datasets of NIfTI image/label pairs (MM-WHS, BTCV):
    read both, check shapes and affines agree, map the label values, preprocess."""
    def load(paths: tuple[Path, Path]):
        image_path, label_path = paths
        image, affine = read_nifti(image_path)
        label, label_affine = read_nifti(label_path)
        check_pair(image, label, affine, label_affine, image_path, label_path)
        label = map_labels(label, labels, label_path, dataset)
        return prep.apply(image, label, affine, image_path)

    return load

