"""Helpers for the converter tests: tiny raw datasets in the real layouts, and run/check helpers.

Imported by ``tests/test_convert_*.py`` as ``from _raw_layouts import ...`` (pytest puts ``tests/``
on ``sys.path``). The CLI helpers patch ``data_prep.__main__.COMMANDS`` down to the dataset under
test, so these tests do not depend on the other dataset modules.
"""
from __future__ import annotations

import hashlib
import shlex
import struct
from pathlib import Path
from unittest import mock

import crc32c
import nibabel as nib
import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

from data_prep import __main__ as cli
from glua_lib.commands import resolve

# ----------------------------------------------------------------------------------- running


def _only(dataset: str):
    return mock.patch.dict(cli.COMMANDS, {dataset: cli.COMMANDS[dataset]}, clear=True)


def convert(dataset: str, *argv) -> Path:
    """Parse ``argv`` with the real CLI parser and call the converter's ``run``; errors raise."""
    argv = [dataset, *map(str, argv)]
    with _only(dataset):
        args = cli.build_parser().parse_args(argv)
    args.command = "python -m data_prep " + shlex.join(argv)
    return resolve(cli.COMMANDS[dataset][0]).run(args)


def run_main(dataset: str, *argv) -> int:
    """``python -m data_prep dataset argv`` in-process; returns the exit code."""
    with _only(dataset):
        return cli.main([dataset, *map(str, argv)])


def command(dataset: str, *argv) -> str:
    """The command string a run records in its manifest."""
    return "python -m data_prep " + shlex.join([dataset, *map(str, argv)])


def snapshot(folder: Path) -> dict[str, str]:
    """{relative path: sha256} of every file below ``folder`` (empty if it does not exist)."""
    if not folder.exists():
        return {}
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def assert_fails(dataset: str, argv: list, raw: Path, out: Path, exc: type, *names) -> str:
    """Run the converter expecting ``exc``; the message must contain every one of ``names``.

    Also checks that ``raw`` is byte-identical afterwards, that ``out`` is unchanged (absent if it
    was absent) and that no staging folder is left beside it. Returns the message.
    """
    raw_before, out_before = snapshot(raw), snapshot(out)
    out_existed = out.exists()
    with pytest.raises(exc) as info:
        convert(dataset, *argv)
    message = str(info.value)
    for name in names:
        assert str(name) in message, f"{name!r} not named in: {message}"
    assert snapshot(raw) == raw_before, "the raw folder was modified"
    assert out.exists() == out_existed and snapshot(out) == out_before, "--out was modified"
    if out.parent.exists():
        assert not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]
    return message


# ----------------------------------------------------------------------------------- NIfTI


def lps_affine(spacing=(0.8, 0.9, 2.5), origin=(40.0, 30.0, -20.0)) -> np.ndarray:
    """Voxel axes i→Left, j→Posterior, k→Superior (DICOM-like LPS), as a RAS+ NIfTI affine."""
    aff = np.diag([-spacing[0], -spacing[1], spacing[2], 1.0])
    aff[:3, 3] = origin
    return aff


def permuted_affine(spacing=(0.8, 0.9, 2.5), origin=(-5.0, 7.0, 12.0)) -> np.ndarray:
    """Voxel axis 0 → S (spacing[2]), axis 1 → R (spacing[0]), axis 2 → A (spacing[1])."""
    aff = np.zeros((4, 4))
    aff[2, 0], aff[0, 1], aff[1, 2], aff[3, 3] = spacing[2], spacing[0], spacing[1], 1.0
    aff[:3, 3] = origin
    return aff


def write_nifti(path: Path, data: np.ndarray, affine: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(data, affine), path)
    return path


def truncate(path: Path, keep: float = 0.5) -> None:
    """Cut a file to a fraction of its size (a damaged download)."""
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def labels_with(values, shape, seed=0) -> np.ndarray:
    """A label volume of ``shape`` that contains every value of ``values`` (int16)."""
    rng = np.random.default_rng(seed)
    lab = rng.choice(np.asarray(values), size=shape).astype(np.int16)
    lab.flat[: len(values)] = values
    return lab


# ----------------------------------------------------------------------------------- DICOM + PNG


def write_dicom(path: Path, pixels: np.ndarray, position, orientation=(1, 0, 0, 0, 1, 0),
                spacing=(0.9, 0.8), instance: int = 1) -> Path:
    """One MR slice (``rows×cols`` uint16); ``spacing`` is PixelSpacing (row, column) in mm."""
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MRImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = MRImageStorage, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.InstanceNumber = "MR", instance
    ds.ImagePositionPatient = [float(v) for v in position]
    ds.ImageOrientationPatient = [float(v) for v in orientation]
    ds.PixelSpacing = [float(v) for v in spacing]
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.PixelData = pixels.astype("<u2").tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


def write_png(path: Path, gray: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(gray.astype(np.uint8), mode="L").save(path)
    return path


# ----------------------------------------------------------------------------------- TFRecord


def masked_crc(data: bytes) -> bytes:
    """TFRecord's masked CRC32C, written out by hand (independent of the tfrecord package)."""
    crc = crc32c.crc32c(data)
    return struct.pack("<I", (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF)


def frame(payload: bytes) -> bytes:
    """One TFRecord record: length, masked CRC of length, payload, masked CRC of payload."""
    head = struct.pack("<Q", len(payload))
    return head + masked_crc(head) + payload + masked_crc(payload)


def sifa_features(image: np.ndarray, label: np.ndarray) -> dict:
    """The SIFA schema for the ``tfrecord`` writer: float32 H×W×3 volumes and their dims."""
    feats = {"data_vol": (image.astype("<f4").tobytes(), "byte"),
             "label_vol": (label.astype("<f4").tobytes(), "byte")}
    feats.update({f"dsize_dim{i}": (int(n), "int") for i, n in enumerate(image.shape)})
    feats.update({f"lsize_dim{i}": (int(n), "int") for i, n in enumerate(label.shape)})
    return feats
