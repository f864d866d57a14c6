"""The GLUA authors' PNG slices of MM-WHS (kiwi12138/UDA_SEG_MEDICAL) → prepared format.

Raw layout (``--src``; a folder such as the release's ``data/testB/``)::

    images/image_ct_1003.nii_0.png   images/image_ct_1003.nii_1.png   ...   one 256×256 PNG a slice
    labels/gth_ct_1003.nii_0.png     labels/gth_ct_1003.nii_1.png     ...   its mask, same name

Names are ``image_<modality>_<volume>.nii_<slice>.png`` and ``gth_<modality>_<volume>.nii_<slice>
.png`` (modality ``ct`` or ``mr``). Files not ending in ``.png`` are ignored; a PNG with another
name is an error. Every image needs its label and every label its image.

Grouping: slices are grouped into volumes by ``<modality>_<volume>`` (subject ``ct_1003``) and
stacked in the order of the **integer** slice number (9, 10, 11, not the string order 10, 11, 9)
into ``D×H×W``: D = slice number ascending, H = PNG rows (top to bottom), W = PNG columns (left to
right), as distributed; PNGs carry no orientation, so nothing is reoriented. The slice numbers of a
volume must be consecutive (a gap is a missing file) and need not start at 0 (the release's do);
all slices of a volume, and each label and its image, must have the same size. Each slice is then
resampled to ``--size`` (default 256, the release's size: nothing changes).

Pixels: 8-bit greyscale PNGs. RGB(A), LA or palette PNGs are accepted only when their colour
channels are equal (and any alpha channel opaque) and are converted to grey; the manifest records
how many PNGs (images and labels) of each subject were (``converted_to_grey``). 16-bit and other
modes are errors. Labels: grey 0 → background, 51 → MYO, 102 → LAC, 153 → LVC, 204 → AA, mapped
by class name to the cardiac task's class indices (:func:`glua_lib.data.get_task`); any other
value is an error naming the PNG.

Intensities: the grey values 0-255 are the release's intensities (8-bit grey levels, not HU).
CT: :mod:`data_prep.common`'s CT normalisation with the window [0, 255] grey levels, i.e.
``2 x / 255 - 1`` in [-1, 1], also what the authors' loader feeds their network. MR:
:mod:`data_prep.common`'s MR normalisation (clip above the ``--mr-percentile`` and z-score per
volume; the numbers go into the manifest).

Voxel spacing: the PNGs carry none. ``--spacing Z Y X`` (or one value for all three) in mm along
(D, H, W); without it 1 mm isotropic is stored and the manifest says it is assumed.

``--modality`` picks ``ct`` or ``mr``; without it the folder must hold one modality only. Subjects
are named ``ct_1003``; MM-WHS's published test split applies (CT 1003, 1008, 1014, 1019, the
release's ``testB``; MR 1007, 1009, 1018, 1019), everything else is ``train``.

    python -m data_prep glua-png --src UDA_SEG_MEDICAL/data/testB --out prep/glua_ct --modality ct
"""
from __future__ import annotations

import argparse
import re
import zlib
from collections import defaultdict
from pathlib import Path

import numpy as np
from PIL import Image

from data_prep.common import (Preprocessing, add_mr_percentile_argument, add_size_argument,
                              check_src_out, map_labels, require_dir, resample_inplane,
                              write_prepared)
from data_prep.mmwhs import TEST_IDS
from glua_lib.data import get_task
from glua_lib.data.prepared import PreparedDataError

MODALITIES = ("ct", "mr")
IMAGE_RE = re.compile(r"image_(ct|mr)_([A-Za-z0-9-]+)\.nii_(\d+)\.png")
LABEL_RE = re.compile(r"gth_(ct|mr)_([A-Za-z0-9-]+)\.nii_(\d+)\.png")
GREY_CLASSES = {0: "background", 51: "MYO", 102: "LAC", 153: "LVC", 204: "AA"}
LABELS = {grey: get_task("cardiac").classes.index(name) for grey, name in GREY_CLASSES.items()}
GREY_WINDOW = (0.0, 255.0)  # the CT "window", in grey levels of the 8-bit PNGs
DEFAULT_SPACING = (1.0, 1.0, 1.0)
_PNG_ERRORS = (OSError, ValueError, SyntaxError, EOFError, zlib.error)
_COLOUR_MODES = {"RGB", "RGBA", "LA"}


# ----------------------------------------------------------------------------------- arguments
def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text}") from None
    if not (np.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number of mm, got {text}")
    return value


class _SpacingAction(argparse.Action):
    """``--spacing Z Y X`` or ``--spacing S`` (isotropic) → a (D, H, W) tuple in mm."""

    def __call__(self, parser, namespace, values, option_string=None):
        if len(values) not in (1, 3):
            raise argparse.ArgumentError(self, f"give one value or three (Z Y X), got "
                                               f"{len(values)}")
        setattr(namespace, self.dest, tuple(values) * 3 if len(values) == 1 else tuple(values))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--modality", choices=MODALITIES, default=None,
                        help="convert only these slices (default: the folder's one modality)")
    parser.add_argument("--spacing", type=positive_float, nargs="+", action=_SpacingAction,
                        metavar="MM", default=None,
                        help="voxel size in mm along Z Y X (slices, rows, columns), or one value "
                             "for all three; the PNGs carry none (default: 1 mm isotropic, "
                             "recorded as assumed)")
    add_size_argument(parser)
    add_mr_percentile_argument(parser)


# ----------------------------------------------------------------------------------- finding
def _scan(folder: Path, pattern: re.Pattern, what: str) -> dict[tuple[str, str, int], Path]:
    """{(modality, volume, slice): path} of ``folder``'s PNGs; a PNG of another name is an error.

    Two files whose slice numbers are the same integer (``_7`` and ``_07``) are an error too.
    """
    found: dict[tuple[str, str, int], Path] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() != ".png" or not path.is_file():
            continue
        match = pattern.fullmatch(path.name)
        if not match:
            raise PreparedDataError(f"{path}: not named {what} (modality ct or mr); rename it "
                                    f"or move it out of {folder}")
        key = (match.group(1), match.group(2), int(match.group(3)))
        if key in found:
            raise PreparedDataError(f"{path} and {found[key]} have the same slice number "
                                    f"{key[2]}; keep one of them")
        found[key] = path
    return found


def _check_slice_numbers(subject: str, numbers: list[int], images: Path, mod: str,
                         vol: str) -> None:
    """The sorted slice numbers must be consecutive; a gap names the first missing file."""
    missing = sorted(set(range(numbers[0], numbers[-1] + 1)) - set(numbers))
    if missing:
        shown = ", ".join(map(str, missing[:10])) + (" ..." if len(missing) > 10 else "")
        raise PreparedDataError(
            f"{images / f'image_{mod}_{vol}.nii_{missing[0]}.png'}: missing; volume {subject} "
            f"has slices {numbers[0]}-{numbers[-1]} with gaps (missing {shown}); restore the "
            "missing slices (image and label) from the release")


def find_cases(src: Path, modality: str | None) -> tuple[str, list[tuple[str, str, list]]]:
    """(modality, [(subject, split, [(slice, image, label), ...] in slice order), ...]).

    Checks names, pairs images with labels, filters by ``modality`` (or requires one modality)
    and checks that each volume's slice numbers are consecutive. Reads no pixels.
    """
    images_dir = require_dir(src / "images", "the slices images/image_<modality>_<volume>.nii_"
                                             "<slice>.png (pass the folder holding images/ and "
                                             "labels/ as --src)")
    labels_dir = require_dir(src / "labels", "the masks labels/gth_<modality>_<volume>.nii_"
                                             "<slice>.png beside images/")
    images = _scan(images_dir, IMAGE_RE, "image_<modality>_<volume>.nii_<slice>.png")
    labels = _scan(labels_dir, LABEL_RE, "gth_<modality>_<volume>.nii_<slice>.png")
    if not images and not labels:
        raise FileNotFoundError(f"{images_dir}: no image_<modality>_<volume>.nii_<slice>.png "
                                "files; pass the folder holding the GLUA release's images/ and "
                                "labels/ (e.g. data/testB) as --src")
    present = sorted({k[0] for k in images} | {k[0] for k in labels})
    if modality is None:
        if len(present) > 1:
            raise PreparedDataError(f"{images_dir}: holds both CT and MR slices; a prepared folder "
                                    "has one modality, choose one with --modality ct or mr")
        modality = present[0]
    elif modality not in present:
        raise FileNotFoundError(f"{images_dir}: no {modality} slices (image_{modality}_*.png), "
                                f"only {' and '.join(present)}; --modality {modality} leaves "
                                "nothing to convert, pick the modality this folder holds")
    images = {k: p for k, p in images.items() if k[0] == modality}
    labels = {k: p for k, p in labels.items() if k[0] == modality}
    for key, image in sorted(images.items()):
        if key not in labels:
            label = labels_dir / f"gth_{key[0]}_{key[1]}.nii_{key[2]}.png"
            raise FileNotFoundError(f"{label}: label of {image} is missing; every slice needs "
                                    "its mask (restore it from the release or remove the image)")
    for key, label in sorted(labels.items()):
        if key not in images:
            image = images_dir / f"image_{key[0]}_{key[1]}.nii_{key[2]}.png"
            raise FileNotFoundError(f"{image}: image of the label {label} is missing; restore it "
                                    "from the release or remove the label")
    volumes: dict[str, dict[int, tuple[Path, Path]]] = defaultdict(dict)
    for (mod, vol, num), image in images.items():
        volumes[vol][num] = (image, labels[(mod, vol, num)])
    cases = []
    for vol in sorted(volumes):
        subject, numbers = f"{modality}_{vol}", sorted(volumes[vol])
        _check_slice_numbers(subject, numbers, images_dir, modality, vol)
        split = "test" if vol.isdigit() and int(vol) in TEST_IDS[modality] else "train"
        cases.append((subject, split, [(n, *volumes[vol][n]) for n in numbers]))
    return modality, cases


# ----------------------------------------------------------------------------------- reading
def read_grey_png(path: Path) -> tuple[np.ndarray, bool]:
    """An 8-bit grey PNG as ``H×W`` uint8, and whether it had to be converted from colour."""
    try:
        with Image.open(path) as im:
            fmt, mode = im.format, im.mode
            if mode in ("P", "PA"):  # palette: look the colours up
                im, mode = im.convert("RGBA"), "RGBA"
            arr = np.asarray(im)
    except _PNG_ERRORS as err:
        raise PreparedDataError(f"{path}: not a readable PNG ({type(err).__name__}: {err}); the "
                                "file is damaged, re-download it") from err
    if fmt != "PNG":
        raise PreparedDataError(f"{path}: a {fmt} file, not a PNG; re-download the release's PNG")
    if mode == "L":
        return arr, False
    if mode not in _COLOUR_MODES or arr.dtype != np.uint8 or arr.ndim != 3:
        raise PreparedDataError(f"{path}: PNG mode {mode!r} is not 8-bit greyscale; save it as "
                                "8-bit grey (mode 'L')")
    colour = arr[..., :1] if mode == "LA" else arr[..., :3]
    alpha = arr[..., -1] if mode in ("LA", "RGBA") else None
    if not (colour == colour[..., :1]).all():
        raise PreparedDataError(f"{path}: colour PNG ({mode}) whose channels differ; only grey "
                                "images (equal channels) can be converted, save it as 8-bit grey")
    if alpha is not None and not (alpha == 255).all():
        raise PreparedDataError(f"{path}: PNG ({mode}) with transparent pixels; save it as 8-bit "
                                "grey without alpha")
    return np.ascontiguousarray(colour[..., 0]), True


def load_volume_pngs(slices: list[tuple[int, Path, Path]]) -> tuple[np.ndarray, np.ndarray, int]:
    """Stack the slices: raw grey image and class-index label (``D×H×W`` uint8) and the number of
    PNGs converted from colour. Checks sizes and label values, naming the PNG."""
    images, labels, converted = [], [], 0
    for _, image_path, label_path in slices:
        image, c1 = read_grey_png(image_path)
        label, c2 = read_grey_png(label_path)
        converted += c1 + c2
        if images and image.shape != images[0].shape:
            raise PreparedDataError(f"{image_path} is {image.shape[0]}×{image.shape[1]} but "
                                    f"{slices[0][1]} is {images[0].shape[0]}×{images[0].shape[1]};"
                                    " all slices of a volume must have the same size")
        if label.shape != image.shape:
            raise PreparedDataError(f"{label_path} is {label.shape[0]}×{label.shape[1]} but its "
                                    f"image {image_path} is {image.shape[0]}×{image.shape[1]}; "
                                    "the label must match its image pixel for pixel")
        images.append(image)
        labels.append(map_labels(label, LABELS, label_path,
                                 "GLUA (51 MYO, 102 LAC, 153 LVC, 204 AA)"))
    return np.stack(images), np.stack(labels), converted


# ----------------------------------------------------------------------------------- running
def run(args: argparse.Namespace) -> Path:
    """Convert the GLUA PNG slices of ``args.src`` into ``args.out``; returns ``args.out``."""
    src = check_src_out(args.src, args.out)
    modality, cases = find_cases(src, args.modality)
    spacing = tuple(args.spacing) if args.spacing else DEFAULT_SPACING
    # only prep.normalise is used (no reorientation: PNGs have no geometry); plane is a filler
    prep = Preprocessing(modality=modality, plane="coronal", size=args.size,
                         ct_window=GREY_WINDOW, mr_percentile=args.mr_percentile)
    by_subject = {subject: slices for subject, _, slices in cases}
    # filled while loading: write_prepared builds the manifest after the last volume (tested)
    converted: dict[str, int] = {}

    def load(subject: str):
        slices = by_subject[subject]
        raw, label, n = load_volume_pngs(slices)
        if n:
            converted[subject] = n
        image, params = prep.normalise(raw, f"{slices[0][1]} ... {slices[-1][1]}")
        image, label, out_spacing = resample_inplane(image, label, spacing, args.size)
        return image, label, out_spacing, params

    normalisation = prep.describe()
    if modality == "ct":
        normalisation = {"method": "ct-window", "window_grey": list(GREY_WINDOW),
                         "range": [-1.0, 1.0], "formula": "2 * (clip(x, lo, hi) - lo) / (hi - lo)"
                         " - 1 = 2 x / 255 - 1 on the PNGs' 8-bit grey values (not HU)"}
    given = args.spacing is not None
    return write_prepared(
        args, dataset="glua-png", task="cardiac", modality=modality,
        cases=[(subject, split, subject) for subject, split, _ in cases], load=load,
        normalisation=normalisation,
        extra={"source": str(src),
               "spacing": ("given with --spacing (Z Y X mm)" if given else
                           "assumed: 1 mm isotropic (the PNGs carry no voxel size; "
                           "pass --spacing Z Y X)"),
               "spacing_mm": list(spacing), "spacing_assumed": not given,
               "axes": "D slice number ascending, H PNG rows top->bottom, W PNG columns "
                       "left->right, as distributed (no orientation in the PNGs, none applied)",
               "size": args.size,
               "resampling": "in-plane scipy.ndimage.zoom: order 1 image, order 0 label",
               "slice_order": "integer slice number of <name>.nii_<slice>.png, ascending",
               "slice_numbers": {s: [sl[0][0], sl[-1][0]] for s, _, sl in cases},
               "greyscale": "8-bit grey PNGs; RGB(A)/LA/palette PNGs with equal colour channels "
                            "(opaque) converted to grey, counted per subject",
               "converted_to_grey": converted,
               "label_mapping": {str(g): name for g, name in GREY_CLASSES.items()}})
