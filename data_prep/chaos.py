"""CHAOS MR T2-SPIR abdominal (DICOM series + PNG masks) → prepared format.

Raw layout (``--src``; the CHAOS training zip unpacked, ``CHAOS_Train_Sets/`` above it also works)::

    Train_Sets/MR/<id>/T2SPIR/DICOM_anon/IMG-0002-00001.dcm ...   one file per slice
    Train_Sets/MR/<id>/T2SPIR/Ground/IMG-0002-00001.png ...       one 8-bit mask per slice

Per subject:

* Every DICOM is read with pydicom (a corrupt one is an error naming it); all must share
  ImageOrientationPatient, PixelSpacing and size. Slices are sorted by ImagePositionPatient
  projected on the slice normal (row direction × column direction), **not** by file name;
  positions must be distinct and evenly spaced (a gap means a missing slice). Spacing comes from
  PixelSpacing and the slice positions; the voxel→world affine is built from the DICOM geometry
  (LPS, converted to RAS) so nibabel reorients CHAOS exactly like the NIfTI datasets: axial
  ``D×H×W``, D inferior→superior, H anterior→posterior, W right→left.
* Masks are matched to slices by file name stem (CHAOS gives ``IMG-0002-00001.dcm`` the mask
  ``IMG-0002-00001.png``). If the stems do not match, the masks sorted by name (numbers compared as
  numbers) are paired with the slices sorted by InstanceNumber, the order in which CHAOS numbers
  its masks. A mask's pixel (row, column) is the slice's pixel (row, column). Gray values
  0 → background, 55–70 → liver 1, 110–135 → right kidney 2, 175–200 → left kidney 3,
  240–255 → spleen 4; any other value is an error naming the PNG.
* MR normalisation (clip above the 98th percentile, z-score); each slice resampled to ``--size``.

Subjects are named ``chaos_<id>``; the published test split is ids 1, 13, 32, 38; the rest is
``train``.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pydicom
from PIL import Image, UnidentifiedImageError
from pydicom.errors import InvalidDicomError
from pydicom.pixels import apply_modality_lut

from data_prep.common import (Preprocessing, add_mr_percentile_argument, add_size_argument,
                              check_src_out, map_labels, natural_key, require_dir, write_prepared)
from glua_lib.data.prepared import PreparedDataError

TEST_IDS = {"1", "13", "32", "38"}
GRAY_RANGES = {0: (0, 0), 1: (55, 70), 2: (110, 135), 3: (175, 200), 4: (240, 255)}
LABELS = {v: c for c, (lo, hi) in GRAY_RANGES.items() for v in range(lo, hi + 1)}
_DICOM_ERRORS = (InvalidDicomError, AttributeError, KeyError, ValueError, TypeError, IndexError,
                 OSError, EOFError, NotImplementedError, RuntimeError)
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_size_argument(parser)
    add_mr_percentile_argument(parser)


def find_cases(src: Path) -> list[tuple[str, str, Path]]:
    """(subject, split, ``.../MR/<id>/T2SPIR`` folder) for every CHAOS MR subject."""
    mr = src / "Train_Sets" / "MR"
    if not mr.is_dir() and (src / "CHAOS_Train_Sets" / "Train_Sets" / "MR").is_dir():
        mr = src / "CHAOS_Train_Sets" / "Train_Sets" / "MR"
    require_dir(mr, "the CHAOS training set Train_Sets/MR/<id>/T2SPIR/ (pass its parent as --src)")
    subjects = sorted((d for d in mr.iterdir() if d.is_dir()), key=lambda d: natural_key(d.name))
    if not subjects:
        raise FileNotFoundError(f"{mr}: no subject folders <id>/T2SPIR; re-extract CHAOS")
    return [(f"chaos_{d.name}", "test" if d.name in TEST_IDS else "train", d / "T2SPIR")
            for d in subjects]


def _read_slice(path: Path) -> dict:
    """One DICOM slice: pixels (rows×cols float32) and the geometry tags."""
    try:
        ds = pydicom.dcmread(path)
        return {"path": path, "pixels": apply_modality_lut(ds.pixel_array, ds).astype(np.float32),
                "iop": np.array(ds.ImageOrientationPatient, dtype=np.float64),
                "ipp": np.array(ds.ImagePositionPatient, dtype=np.float64),
                "spacing": np.array(ds.PixelSpacing, dtype=np.float64),
                "instance": ds.get("InstanceNumber")}
    except _DICOM_ERRORS as err:
        raise PreparedDataError(f"{path}: not a readable DICOM image slice ({type(err).__name__}: "
                                f"{err}); re-download or re-extract CHAOS") from err


def read_series(folder: Path) -> tuple[list[dict], np.ndarray]:
    """Slices sorted along the slice normal; voxel→RAS affine of the ``col×row×slice`` array."""
    paths = sorted(folder.glob("*.dcm"))
    if len(paths) < 2:
        raise FileNotFoundError(f"{folder}: found {len(paths)} .dcm files, need a series of at "
                                "least 2 slices; re-extract CHAOS")
    slices = [_read_slice(p) for p in paths]
    first = slices[0]
    for s in slices[1:]:
        if (not np.allclose(s["iop"], first["iop"], atol=1e-4)
                or not np.allclose(s["spacing"], first["spacing"], atol=1e-4)
                or s["pixels"].shape != first["pixels"].shape):
            raise PreparedDataError(f"{s['path']}: orientation, pixel spacing or size differs from "
                                    f"{first['path']}; a series must share them")
    row_dir, col_dir = first["iop"][:3], first["iop"][3:]
    normal = np.cross(row_dir, col_dir)
    slices.sort(key=lambda s: float(s["ipp"] @ normal))
    pos = np.array([s["ipp"] @ normal for s in slices])
    gaps = np.diff(pos)
    step = float(np.median(gaps))
    if gaps.min() < 1e-3 or np.abs(gaps - step).max() > max(0.01 * step, 1e-3):
        k = int(np.argmax(np.abs(gaps - step)))
        raise PreparedDataError(
            f"{folder}: slices are not evenly spaced along the slice normal (positions "
            f"{pos[k]:.3f} mm in {slices[k]['path'].name} and {pos[k + 1]:.3f} mm in "
            f"{slices[k + 1]['path'].name}, typical step {step:.3f} mm); a slice is missing "
            "or duplicated")
    row_spacing, col_spacing = first["spacing"]  # PixelSpacing: (between rows, between columns)
    lps = np.eye(4)
    lps[:3, 0] = row_dir * col_spacing  # column index i moves along the row direction
    lps[:3, 1] = col_dir * row_spacing  # row index j moves along the column direction
    lps[:3, 2] = (slices[-1]["ipp"] - slices[0]["ipp"]) / (len(slices) - 1)
    lps[:3, 3] = slices[0]["ipp"]
    return slices, LPS_TO_RAS @ lps


def _read_mask(path: Path, shape: tuple[int, int], dicom: Path) -> np.ndarray:
    """One PNG mask as class indices (rows×cols uint8)."""
    try:
        with Image.open(path) as im:
            arr = np.asarray(im)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as err:
        raise PreparedDataError(f"{path}: not a readable PNG mask ({err}); "
                                "re-extract CHAOS") from err
    if arr.ndim == 3:  # gray stored as RGB(A): all colour channels must agree
        if not (arr[..., :3] == arr[..., :1]).all():
            raise PreparedDataError(f"{path}: colour mask; CHAOS masks are gray levels")
        arr = arr[..., 0]
    if arr.shape != shape:
        raise PreparedDataError(f"{path} has shape {arr.shape} but its slice {dicom} has {shape}; "
                                "the mask must match its slice")
    return map_labels(arr, LABELS, path, "CHAOS (gray ranges 0, 55-70, 110-135, 175-200, 240-255)")


def match_masks(slices: list[dict], ground: Path) -> list[Path]:
    """The PNG mask of each slice, in the order of ``slices`` (see the module docstring)."""
    pngs = sorted(ground.glob("*.png"), key=lambda p: natural_key(p.name))
    if len(pngs) != len(slices):
        raise PreparedDataError(f"{ground}: {len(pngs)} PNG masks for {len(slices)} DICOM slices "
                                f"in {slices[0]['path'].parent}; there must be one mask per slice")
    by_stem = {p.stem: p for p in pngs}
    if all(s["path"].stem in by_stem for s in slices):
        return [by_stem[s["path"].stem] for s in slices]
    missing = [s["path"] for s in slices if s["instance"] is None]
    if missing:
        raise PreparedDataError(f"{missing[0]}: no PNG with the same name in {ground} and no "
                                "InstanceNumber to pair it by; cannot match masks to slices")
    by_instance = sorted(range(len(slices)), key=lambda k: int(slices[k]["instance"]))
    if len({int(s["instance"]) for s in slices}) != len(slices):
        raise PreparedDataError(f"{slices[0]['path'].parent}: repeated InstanceNumbers and PNG "
                                f"names in {ground} differ from the DICOM names; cannot match "
                                "masks to slices")
    masks: list[Path] = [ground] * len(slices)
    for png, k in zip(pngs, by_instance):
        masks[k] = png
    return masks


def run(args: argparse.Namespace) -> Path:
    """Convert CHAOS MR T2-SPIR from ``args.src`` into ``args.out``; returns ``args.out``."""
    src = check_src_out(args.src, args.out)
    prep = Preprocessing(modality="mr", plane="axial", size=args.size,
                         mr_percentile=args.mr_percentile)

    def load(folder: Path):
        dicom_dir = require_dir(folder / "DICOM_anon", "the DICOM slices T2SPIR/DICOM_anon/*.dcm")
        ground = require_dir(folder / "Ground", "the PNG masks T2SPIR/Ground/*.png")
        slices, affine = read_series(dicom_dir)
        masks = match_masks(slices, ground)
        image = np.stack([s["pixels"] for s in slices])  # slice × row × col
        label = np.stack([_read_mask(m, s["pixels"].shape, s["path"])
                          for m, s in zip(masks, slices)])
        # nibabel wants (col, row, slice) to match the affine's voxel axes
        return prep.apply(image.transpose(2, 1, 0), label.transpose(2, 1, 0), affine, dicom_dir)

    return write_prepared(
        args, dataset="chaos", task="abdominal", modality="mr", cases=find_cases(src), load=load,
        normalisation=prep.describe(),
        extra={"source": str(src), **prep.geometry(),
               "slice_order": "ImagePositionPatient projected on the slice normal",
               "mask_matching": "same file stem as the DICOM; else PNG name order = "
                                "InstanceNumber order",
               "label_mapping": {"55-70": "liver", "110-135": "right kidney",
                                 "175-200": "left kidney", "240-255": "spleen"}})
