"""MM-WHS 2017 cardiac MR or CT (NIfTI) → prepared format.

Raw layout (``--src``), as downloaded and unpacked; the files may also sit in ``mr_train/`` or
``ct_train/`` below ``--src``::

    mr_train_1001_image.nii.gz  mr_train_1001_label.nii.gz  ...  mr_train_1020_*.nii.gz
    ct_train_1001_image.nii.gz  ct_train_1001_label.nii.gz  ...  ct_train_1020_*.nii.gz

Per volume: read image and label, check shapes, affines and finiteness, map the labels
(205 → MYO 1, 420 and the stray 421 → LAC 2, 500 → LVC 3, 820 → AA 4; the other MM-WHS structures
550, 600, 850 → background; any other value is an error), normalise (MR: clip above the 98th
percentile and z-score; CT: clip to [-200, 600] HU and scale to [-1, 1]), reorient with nibabel
(MR headers disagree on orientation) and arrange as coronal ``D×H×W`` slices by default, as SIFA
does (D posterior→anterior, H superior→inferior, W right→left; ``--plane axial`` for axial), and
resample each slice to ``--size``. No cropping around the heart is done.

Subjects are named ``mr_1001``/``ct_1001``; the published test split is MR 1007, 1009, 1018, 1019
and CT 1003, 1008, 1014, 1019, everything else is ``train``.
"""
from __future__ import annotations

import argparse
import re
from pathlib import Path

from data_prep.common import (PLANES, Preprocessing, add_ct_window_argument,
                              add_mr_percentile_argument, add_size_argument, check_src_out,
                              nifti_pair_loader, write_prepared)

TEST_IDS = {"mr": {1007, 1009, 1018, 1019}, "ct": {1003, 1008, 1014, 1019}}
LABELS = {0: 0, 205: 1, 420: 2, 421: 2, 500: 3, 820: 4, 550: 0, 600: 0, 850: 0}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--modality", choices=("mr", "ct"), required=True,
                        help="which half to convert")
    parser.add_argument("--plane", choices=sorted(PLANES), default="coronal",
                        help="slice plane of the prepared volumes (default coronal, as SIFA)")
    add_size_argument(parser)
    add_ct_window_argument(parser, "cardiac")
    add_mr_percentile_argument(parser)


def find_cases(src: Path, modality: str) -> list[tuple[str, str, tuple[Path, Path]]]:
    """(subject, split, (image, label)) for every ``{modality}_train_10XX_image.nii.gz``."""
    pattern = re.compile(rf"{modality}_train_(\d+)_image\.nii\.gz")
    for folder in (src, src / f"{modality}_train"):
        images = sorted(p for p in folder.glob(f"{modality}_train_*_image.nii.gz")
                        if pattern.fullmatch(p.name))
        if images:
            break
    else:
        raise FileNotFoundError(f"{src}: no {modality}_train_10XX_image.nii.gz files here or in "
                                f"{src / f'{modality}_train'}; pass the unpacked MM-WHS folder "
                                "as --src")
    cases = []
    for image in images:
        num = pattern.fullmatch(image.name).group(1)
        label = image.with_name(f"{modality}_train_{num}_label.nii.gz")
        if not label.is_file():
            raise FileNotFoundError(f"{label}: label of {image.name} is missing; re-extract MM-WHS")
        split = "test" if int(num) in TEST_IDS[modality] else "train"
        cases.append((f"{modality}_{num}", split, (image, label)))
    return cases


def run(args: argparse.Namespace) -> Path:
    """Convert MM-WHS ``args.modality`` from ``args.src`` into ``args.out`` (returned)."""
    src = check_src_out(args.src, args.out)
    prep = Preprocessing(modality=args.modality, plane=args.plane, size=args.size,
                         ct_window=tuple(args.ct_window), mr_percentile=args.mr_percentile)

    load = nifti_pair_loader(prep, LABELS, "MM-WHS")

    return write_prepared(
        args, dataset="mmwhs", task="cardiac", modality=args.modality,
        cases=find_cases(src, args.modality), load=load, normalisation=prep.describe(),
        extra={"source": str(src), **prep.geometry(),
               "label_mapping": {"205": "MYO", "420": "LAC", "421": "LAC", "500": "LVC",
                                 "820": "AA", "550/600/850": "background"}})
