"""BTCV / Synapse multi-organ abdominal CT (NIfTI) → prepared format.

Raw layout (``--src``; ``RawData/Training/...`` as in the Synapse zip works too)::

    Training/img/img0001.nii.gz     Training/label/label0001.nii.gz
    Training/img/img0002.nii.gz     Training/label/label0002.nii.gz   ...

Per volume: read image and label, check shapes, affines and finiteness, map the labels
(6 → liver 1, 2 → right kidney 2, 3 → left kidney 3, 1 → spleen 4, the other BTCV organs 4..13 →
background; values above 13 or negative are an error), clip to [-350, 350] HU and scale to [-1, 1],
reorient with nibabel to axial ``D×H×W`` (D inferior→superior, H anterior→posterior,
W right→left) and resample each slice to ``--size``.

Subjects are named ``btcv_0001``; the published test split is 1, 9, 30, 32, 33, 39; the rest is
``train``.
"""
from __future__ import annotations

import argparse
import re
from pathlib import Path

from data_prep.common import (Preprocessing, add_ct_window_argument, add_size_argument,
                              check_src_out, nifti_pair_loader, require_dir, write_prepared)

TEST_IDS = {1, 9, 30, 32, 33, 39}
LABELS = {**{v: 0 for v in range(14)}, 6: 1, 2: 2, 3: 3, 1: 4}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_size_argument(parser)
    add_ct_window_argument(parser, "abdominal")


def find_cases(src: Path) -> list[tuple[str, str, tuple[Path, Path]]]:
    """(subject, split, (image, label)) for every ``Training/img/img00XX.nii.gz``."""
    root = src / "Training"
    if not root.is_dir() and (src / "RawData" / "Training").is_dir():
        root = src / "RawData" / "Training"
    img_dir = require_dir(root / "img", "the BTCV images Training/img/img00XX.nii.gz")
    lab_dir = require_dir(root / "label", "the BTCV labels Training/label/label00XX.nii.gz")
    pattern = re.compile(r"img(\d+)\.nii\.gz")
    images = sorted(p for p in img_dir.glob("img*.nii.gz") if pattern.fullmatch(p.name))
    if not images:
        raise FileNotFoundError(f"{img_dir}: no img00XX.nii.gz files; pass the BTCV folder "
                                "holding Training/ as --src")
    cases = []
    for image in images:
        num = pattern.fullmatch(image.name).group(1)
        label = lab_dir / f"label{num}.nii.gz"
        if not label.is_file():
            raise FileNotFoundError(f"{label}: label of {image} is missing; re-extract BTCV")
        cases.append((f"btcv_{num}", "test" if int(num) in TEST_IDS else "train", (image, label)))
    return cases


def run(args: argparse.Namespace) -> Path:
    """Convert BTCV CT from ``args.src`` into ``args.out``; returns ``args.out``."""
    src = check_src_out(args.src, args.out)
    prep = Preprocessing(modality="ct", plane="axial", size=args.size,
                         ct_window=tuple(args.ct_window))

    load = nifti_pair_loader(prep, LABELS, "BTCV")

    return write_prepared(
        args, dataset="btcv", task="abdominal", modality="ct", cases=find_cases(src), load=load,
        normalisation=prep.describe(),
        extra={"source": str(src), **prep.geometry(),
               "label_mapping": {"6": "liver", "2": "right kidney", "3": "left kidney",
                                 "1": "spleen", "4,5,7-13": "background"}})
