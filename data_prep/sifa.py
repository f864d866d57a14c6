"""The SIFA / PnP-AdaNet release of MM-WHS (TFRecord slices + npz test volumes) → prepared format.

Raw layout (``--src``; the release's ``data/`` folder plus the separately downloaded test volumes)::

    training_mr/*.tfrecords    validation_mr/*.tfrecords    test_mr/*.npz
    training_ct/*.tfrecords    validation_ct/*.tfrecords    test_ct/*.npz

TFRecords are read without TensorFlow: the framing (``uint64 length``, masked CRC32C of the length,
``data``, masked CRC32C of the data) is parsed here and **both CRCs are verified** (the ``tfrecord``
package's reader does not check them; its ``masked_crc`` computes them), and ``data`` is parsed with
the package's ``tf.train.Example`` protobuf class. Each record holds ``data_vol`` and ``label_vol``
(raw little-endian float32 of ``dsize_dim0×dsize_dim1×dsize_dim2`` = 256×256×3 adjacent slices, C
order; the label uses ``lsize_dim*``). Only the middle slice (index ``dim2 // 2``) is kept, as
SIFA's loader does; ``dim0`` is H and ``dim1`` is W.

Grouping: records carry no subject id, and the release has one record (one slice) per file. The
files of a folder are sorted by name with numbers compared as numbers (``slice2`` before
``slice10``), their records are taken in file order, and every ``--files-per-volume`` consecutive
files (default 64) are stacked into one pseudo-volume ``train_000``, ``train_001``, ... (``val_...``
for validation). Pseudo-volumes are a pool of 2D slices: neighbouring slices may come from
different patients, so do not compute 3D metrics on them.

Test volumes: ``arr_0`` image, ``arr_1`` label, ``H×W×slices``. SIFA's ``evaluate.py`` flips both on
axes 0 and 1 to match the training slices' orientation; the same flips are applied here to image and
label alike (so they stay aligned), then the slice axis is moved first: ``D×H×W`` with D = slices.
Subjects are ``test_<file stem>``.

Labels: 1 MYO, 2 LAC, 3 LVC, 4 AA; 5 (also in the release) → background; others are an error.
Intensities are already z-scored per volume by the release; they are mapped with
``2 (x - lo) / (hi - lo) - 1``, bounds MR [-1.8, 4.4], CT [-2.8, 3.2], without clipping, exactly as
SIFA's ``data_loader.py``/``evaluate.py``. Voxel spacing is unknown: 1.0 is stored and the manifest
says ``spacing unknown (voxels)``. Splits: training → train, validation → val, test → test.
"""
from __future__ import annotations

import argparse
import struct
import zipfile
from pathlib import Path
from typing import Iterator

import numpy as np
from google.protobuf.message import DecodeError
from tfrecord import example_pb2
from tfrecord.writer import TFRecordWriter

from data_prep.common import (check_finite, check_src_out, map_labels, natural_key, positive_int,
                              require_dir, write_prepared)
from glua_lib.data.prepared import PreparedDataError

BOUNDS = {"mr": (-1.8, 4.4), "ct": (-2.8, 3.2)}
LABELS = {0: 0, 1: 1, 2: 2, 3: 3, 4: 4, 5: 0}
FOLDERS = {"train": "training_{m}", "val": "validation_{m}", "test": "test_{m}"}
SPACING = (1.0, 1.0, 1.0)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--modality", choices=("mr", "ct"), required=True,
                        help="which half to convert")
    parser.add_argument("--files-per-volume", type=positive_int, default=64,
                        help="consecutive .tfrecords files stacked into one pseudo-volume "
                             "(default 64)")


def read_records(path: Path) -> Iterator[bytes]:
    """The ``data`` of every record in a TFRecord file, after checking both CRCs of each."""
    buf = path.read_bytes()
    pos, index = 0, 0
    while pos < len(buf):
        where = f"{path} (record {index}, byte {pos})"
        if len(buf) - pos < 12:
            raise PreparedDataError(f"{where}: truncated record header; re-download the file")
        head = buf[pos:pos + 8]
        if TFRecordWriter.masked_crc(head) != buf[pos + 8:pos + 12]:
            raise PreparedDataError(f"{where}: length CRC mismatch, the file is corrupt; "
                                    "re-download it")
        (length,) = struct.unpack("<Q", head)
        end = pos + 12 + length + 4
        if end > len(buf):
            raise PreparedDataError(f"{where}: truncated record ({length} bytes announced, "
                                    f"{len(buf) - pos - 12} left); re-download the file")
        data = buf[pos + 12:pos + 12 + length]
        if TFRecordWriter.masked_crc(data) != buf[end - 4:end]:
            raise PreparedDataError(f"{where}: data CRC mismatch, the file is corrupt; "
                                    "re-download it")
        yield data
        pos, index = end, index + 1


def _feature_array(feats, prefix: str, name: str, where: str) -> np.ndarray:
    """Decode ``name`` (raw float32 bytes) shaped by ``{prefix}_dim0..2``."""
    try:
        dims = [int(feats[f"{prefix}_dim{i}"].int64_list.value[0]) for i in range(3)]
        raw = feats[name].bytes_list.value[0]
    except (KeyError, IndexError) as err:
        raise PreparedDataError(f"{where}: missing feature {err} of the SIFA schema "
                                "(data_vol, label_vol, dsize_dim0..2, lsize_dim0..2)") from err
    if min(dims) < 1 or len(raw) != 4 * int(np.prod(dims)):
        raise PreparedDataError(f"{where}: {name} holds {len(raw)} bytes, not float32 {dims}")
    return np.frombuffer(raw, dtype="<f4").reshape(dims)


def read_slice(data: bytes, where: str) -> tuple[np.ndarray, np.ndarray]:
    """The middle slice of one record: image (H×W float32, raw) and label (H×W, raw values)."""
    try:
        feats = example_pb2.Example.FromString(data).features.feature
    except DecodeError as err:
        raise PreparedDataError(f"{where}: not a tf.train.Example ({err}); "
                                "re-download the file") from err
    image = _feature_array(feats, "dsize", "data_vol", where)
    label = _feature_array(feats, "lsize", "label_vol", where)
    if label.shape[:2] != image.shape[:2]:
        raise PreparedDataError(f"{where}: label {label.shape} and image {image.shape} differ "
                                "in-plane")
    return image[:, :, image.shape[2] // 2], label[:, :, label.shape[2] // 2]


def _map(image: np.ndarray, label: np.ndarray, bounds: tuple[float, float], where: str):
    check_finite(image, where)
    lo, hi = bounds
    image = (2.0 * (image.astype(np.float64) - lo) / (hi - lo) - 1.0).astype(np.float32)
    return image, map_labels(label, LABELS, where, "SIFA (0-5)")


def load_records(files: list[Path], bounds: tuple[float, float]):
    """Stack the middle slices of all records of ``files`` into one ``D×H×W`` pseudo-volume."""
    images, labels = [], []
    for path in files:
        for k, data in enumerate(read_records(path)):
            where = f"{path} (record {k})"
            image, label = _map(*read_slice(data, where), bounds, where)
            if images and image.shape != images[0].shape:
                raise PreparedDataError(f"{where}: slice {image.shape} differs from "
                                        f"{images[0].shape} of {files[0]}; all slices must "
                                        "have the same size")
            images.append(image)
            labels.append(label)
    if not images:
        raise PreparedDataError(f"{files[0]} ... {files[-1]}: no records; re-download the release")
    return np.stack(images), np.stack(labels), SPACING, None


def load_test(path: Path, bounds: tuple[float, float]):
    """One test volume: flip H×W×slices arrays on axes 0 and 1, then to ``D×H×W`` (D = slices)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            image, label = z["arr_0"], z["arr_1"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
        raise PreparedDataError(f"{path}: not a SIFA test volume with arr_0 (image) and arr_1 "
                                f"(label) ({type(err).__name__}: {err}); re-download it") from err
    if image.ndim != 3 or image.shape != label.shape:
        raise PreparedDataError(f"{path}: arr_0 {image.shape} and arr_1 {label.shape} must be the "
                                "same H×W×slices shape")
    image, label = _map(image, label, bounds, str(path))
    image, label = (np.ascontiguousarray(np.flip(a, axis=(0, 1)).transpose(2, 0, 1))
                    for a in (image, label))
    return image, label, SPACING, None


def find_cases(src: Path, modality: str, per_volume: int) -> list[tuple[str, str, object]]:
    """(subject, split, item): item is a list of ``.tfrecords`` files or one test ``.npz``."""
    cases: list[tuple[str, str, object]] = []
    for split in ("train", "val"):
        folder = require_dir(src / FOLDERS[split].format(m=modality),
                             f"the release's {split} TFRecords (*.tfrecords)")
        files = sorted(folder.glob("*.tfrecords"), key=lambda p: natural_key(p.name))
        if not files:
            raise FileNotFoundError(f"{folder}: no .tfrecords files; put the SIFA release's "
                                    f"{folder.name} files here")
        for g, start in enumerate(range(0, len(files), per_volume)):
            cases.append((f"{split}_{g:03d}", split, files[start:start + per_volume]))
    folder = require_dir(src / FOLDERS["test"].format(m=modality),
                         f"the separately downloaded {modality.upper()} test volumes (*.npz)")
    tests = sorted(folder.glob("*.npz"), key=lambda p: natural_key(p.name))
    if not tests:
        raise FileNotFoundError(f"{folder}: no .npz test volumes; download SIFA's "
                                f"{modality.upper()} test data into it")
    return cases + [(f"test_{p.stem}", "test", p) for p in tests]


def run(args: argparse.Namespace) -> Path:
    """Convert the SIFA release's ``args.modality`` from ``args.src`` into ``args.out``."""
    src = check_src_out(args.src, args.out)
    bounds = BOUNDS[args.modality]

    def load(item):
        return load_test(item, bounds) if isinstance(item, Path) else load_records(item, bounds)

    lo, hi = bounds
    return write_prepared(
        args, dataset="sifa", task="cardiac", modality=args.modality,
        cases=find_cases(src, args.modality, args.files_per_volume), load=load,
        normalisation={"method": "sifa-linear", "bounds": [lo, hi], "clipped": False,
                       "formula": "2 * (x - lo) / (hi - lo) - 1 on the release's z-scored slices",
                       "source": "SIFA data_loader.py / evaluate.py"},
        extra={"source": str(src), "spacing": "spacing unknown (voxels)",
               "axes": "D slices, H = record dim0 / npz axis 0, W = record dim1 / npz axis 1",
               "grouping": f"{args.files_per_volume} consecutive .tfrecords files (natural "
                           "name order, records in file order) per pseudo-volume; middle slice "
                           "of each record",
               "test_flip": "arr_0 and arr_1 flipped on axes 0 and 1 (as SIFA evaluate.py), "
                            "then transposed (2, 0, 1)",
               "label_mapping": {"1": "MYO", "2": "LAC", "3": "LVC", "4": "AA", "5": "background"}})
