"""Synthetic cross-modality phantoms: the book's embedded default dataset.

Each subject is a 3D torso slab (``D×H×W`` axial slices) with the real tasks' classes:

* ``cardiac``: 0 background, 1 MYO, 2 LAC, 3 LVC, 4 AA (MR = bSSFP, CT = arterial-phase CTA);
* ``abdominal``: 0 background, 1 liver, 2 right kidney, 3 left kidney, 4 spleen
  (MR = T2-SPIR, CT = portal-venous).

Generation is three steps: a **tissue map** is painted from random anatomy
(:mod:`data_prep.phantom_anatomy`: sizes, positions and rotations from the subject's seed, a smooth
B-spline deformation, and unlabelled distractors: lungs, fat, muscle, spine, ribs, other heart
chambers and vessels, bowel, stomach, pancreas ...); the **labels** are a lookup on it; the
**image** is rendered from it in one modality (:mod:`data_prep.phantom_render`: tissue contrasts with
the inversions between modalities, texture, blur, MR bias field and Rician noise, CT Gaussian noise,
normalisation to [-1, 1]).

Source and target are unpaired: a subject's random streams come from
``SeedSequence(seed, spawn_key=(task, modality, index, stream))``, so index ``i`` in MR and in CT
are different anatomies. Anatomy is drawn in millimetres, so the same subject at another ``size``
or ``n_slices`` is the same anatomy sampled more finely. Same arguments give bit-identical arrays.

Every subject carries a **gap map** (:func:`gap_map`): the per-voxel local domain gap, defined from
the rendering parameters; :func:`class_gap` measures the per-class gap on rendered images.

Because a phantom folder keeps each subject's tissue map, its anatomy can be rendered again in the
other modality (:func:`ideal_translations`): the output of a perfect translator, which no real
dataset has, and the reference chapter 2 measures a learnt translation against.

Command line::

    python -m data_prep phantom --task cardiac --modality mr --n 9 --seed 0 --size 64 \
        --slices 32 --n-test 3 --out PREP_DIR
"""
from __future__ import annotations

import argparse
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from data_prep.phantom_anatomy import (FOV_MM, SLAB_MM, TISSUES, build_tissue_map, label_lut,
                                       make_grid, tissue_ids)
from data_prep.phantom_render import (CT_PHASE, GAP_SIGMA_MM, MR_SEQUENCE, expected_normalised,
                                      gap_map, normalisation_info, render, tissue_gap_table)
from glua_lib.config import DEMO
from glua_lib.data.prepared import (PreparedDataError, Volume, list_subjects, load_extra,
                                    load_volume, make_manifest, read_manifest, save_volume,
                                    staged_output, write_manifest)
from glua_lib.data.tasks import MODALITIES, get_task
from glua_lib.gap import appearance_gap

__all__ = [
    "PhantomSubject", "generate_subject", "generate_subjects", "write_phantoms", "gap_map",
    "class_gap", "class_mean_gap", "tissue_gap_table", "expected_normalised", "tissue_names",
    "tissue_ids", "subject_id", "ideal_translations", "write_ideal_translations",
    "GENERATOR_VERSION", "add_arguments", "run",
]

GENERATOR_VERSION = 1
_TASK_KEY = {"cardiac": 0, "abdominal": 1}
_MODALITY_KEY = {"mr": 0, "ct": 1}
_ANATOMY, _RENDER, _IDEAL = 0, 1, 2  # random streams: anatomy, rendering, ideal translations


@dataclass
class PhantomSubject:
    """One generated subject. Arrays are ``D×H×W``; ``spacing`` is (D, H, W) in mm."""

    task: str
    modality: str
    index: int
    seed: int
    subject: str  # identifier and file stem
    image: np.ndarray  # float32, normalised to [-1, 1]
    label: np.ndarray  # uint8 class indices
    tissue: np.ndarray  # uint8 tissue ids (see tissue_names(task))
    gap: np.ndarray  # float32 local gap map in [0, 3]
    raw: np.ndarray  # float32 before normalisation: MR relative units, CT HU
    spacing: tuple[float, float, float]
    params: dict  # drawn anatomy and rendering parameters (JSON-ready)

    def to_volume(self) -> Volume:
        """The prepared-format :class:`~glua_lib.data.prepared.Volume` of this subject."""
        return Volume(image=self.image, label=self.label, spacing=self.spacing,
                      modality=self.modality, task=self.task, subject=self.subject)


def tissue_names(task: str) -> list[str]:
    """Names of the tissue ids of ``task`` (index = id in the tissue map)."""
    get_task(task)
    return [t.name for t in TISSUES[task]]


def subject_id(task: str, modality: str, index: int) -> str:
    """File stem of a phantom subject, e.g. ``cardiac-mr-007``."""
    return f"{task}-{modality}-{index:03d}"


def _check(task: str, modality: str, size: int, n_slices: int) -> None:
    get_task(task)
    if modality not in MODALITIES:
        raise ValueError(f"unknown modality {modality!r}; choose one of {MODALITIES}")
    if not (isinstance(size, (int, np.integer)) and size >= 16):
        raise ValueError(f"size must be an integer >= 16, got {size!r}")
    if not (isinstance(n_slices, (int, np.integer)) and n_slices >= 1):
        raise ValueError(f"n_slices must be a positive integer, got {n_slices!r}")


def _rng(seed: int, task: str, modality: str, index: int, stream: int) -> np.random.Generator:
    ss = np.random.SeedSequence(
        int(seed), spawn_key=(_TASK_KEY[task], _MODALITY_KEY[modality], int(index), stream))
    return np.random.Generator(np.random.PCG64(ss))


def generate_subject(task: str, modality: str, index: int, seed: int = 0, size: int = 64,
                     n_slices: int = 32, with_gap: bool = True) -> PhantomSubject:
    """Generate subject ``index`` of ``task`` in ``modality`` (``"mr"`` or ``"ct"``).

    Args:
        size: in-plane size H = W (the in-plane spacing is 300 mm / size).
        n_slices: number of axial slices D (the slab is 128 mm thick for cardiac, 160 mm for
            abdominal, so the slice thickness is slab / n_slices).
        with_gap: compute the gap map (skip it for speed; ``gap`` is then all zeros).
    """
    _check(task, modality, size, n_slices)
    if index < 0:
        raise ValueError(f"index must be >= 0, got {index}")
    tissue, grid, anatomy = build_tissue_map(
        task, int(size), int(n_slices), _rng(seed, task, modality, index, _ANATOMY))
    label = label_lut(task)[tissue]
    image, raw, rec = render(task, modality, tissue, grid,
                             _rng(seed, task, modality, index, _RENDER))
    spacing = tuple(float(s) for s in grid.spacing)
    gap = (gap_map(task, tissue, spacing) if with_gap
           else np.zeros(tissue.shape, np.float32))
    return PhantomSubject(
        task=task, modality=modality, index=int(index), seed=int(seed),
        subject=subject_id(task, modality, index), image=image, label=label, tissue=tissue,
        gap=gap, raw=raw, spacing=spacing, params={"anatomy": anatomy, "render": rec})


def generate_subjects(task: str, modality: str, n: int, seed: int = 0, size: int = 64,
                      n_slices: int = 32, start: int = 0) -> list[PhantomSubject]:
    """Subjects ``start .. start + n - 1``."""
    return [generate_subject(task, modality, i, seed, size, n_slices)
            for i in range(start, start + n)]


# ----------------------------------------------------------------------------------------------
# per-class gap


def _subjects_pair(task, mr_subjects, ct_subjects, n_subjects, seed, size, n_slices):
    if mr_subjects is None:
        mr_subjects = generate_subjects(task, "mr", n_subjects, seed, size, n_slices)
    if ct_subjects is None:
        ct_subjects = generate_subjects(task, "ct", n_subjects, seed, size, n_slices)
    return list(mr_subjects), list(ct_subjects)


def class_gap(task: str, mr_subjects=None, ct_subjects=None, n_subjects: int = 3,
              seed: int = 0, size: int = 64, n_slices: int = 32,
              max_samples: int = 20000) -> dict[str, float]:
    """Per class, the 1-D Wasserstein distance between normalised MR and CT intensities.

    Pools the voxels of each class over the MR subjects and over the (different) CT subjects,
    draws at most ``max_samples`` of each with a fixed generator, and returns
    ``{class name: scipy.stats.wasserstein_distance(mr, ct)}`` (background included), computed by
    :func:`glua_lib.gap.appearance_gap`, the measure chapter 2 applies to translations. Subjects may
    be passed in (objects with ``.image`` and ``.label``); otherwise ``n_subjects`` of each
    modality are generated with ``seed``, ``size`` and ``n_slices``.
    """
    mr_subjects, ct_subjects = _subjects_pair(task, mr_subjects, ct_subjects, n_subjects, seed,
                                              size, n_slices)
    return appearance_gap([s.image for s in mr_subjects], [s.label for s in mr_subjects],
                          [s.image for s in ct_subjects], [s.label for s in ct_subjects],
                          get_task(task).classes, max_samples=max_samples, seed=12345)


def class_mean_gap(task: str, labels, gaps) -> dict[str, float]:
    """Per class, the mean gap-map value over the class's voxels.

    ``labels`` and ``gaps`` are matching lists of ``D×H×W`` arrays (a subject's ``label`` and
    ``gap``; for a prepared folder, ``load_volume(f).label`` and ``load_extra(f, "gap")``).
    """
    t = get_task(task)
    labels, gaps = list(labels), list(gaps)
    if len(labels) != len(gaps):
        raise ValueError(f"{len(labels)} label volumes but {len(gaps)} gap maps")
    out = {}
    for c, name in enumerate(t.classes):
        total = sum(float(g[lab == c].sum()) for lab, g in zip(labels, gaps))
        count = sum(int((lab == c).sum()) for lab in labels)
        out[name] = total / count if count else float("nan")
    return out


# ----------------------------------------------------------------------------------------------
# the ideal translation


def ideal_translations(prep_dir: str | os.PathLike, modality: str, split: str | None = "test",
                       n_styles: int = 3, draw: int = 0) -> list[Volume]:
    """The phantom volumes of ``prep_dir`` rendered again, in ``modality``, from their own tissue
    maps: what a perfect translator would output.

    Each volume keeps its anatomy and labels exactly and takes ``modality``'s appearance with
    ``n_styles`` independent draws of that modality's subject-to-subject variation (tissue-mean
    jitter, contrast enhancement, texture, bias field, noise, normalisation): the phantoms'
    counterpart of rendering a source volume in ``n_styles`` target styles. Real scans have no
    tissue map, so only phantoms have this reference. ``draw`` selects another independent set
    of renderings; the same arguments give the same arrays.

    Returns:
        :class:`~glua_lib.data.prepared.Volume` objects named ``<subject>_style<k>`` (as
        :func:`glua_lib.style.translate.translate_folder` names translations), modality
        ``modality``, the source labels and spacing, in the order of ``list_subjects``.

    Raises:
        PreparedDataError: ``prep_dir`` is not a phantom folder (no generator record or no tissue
            maps), was made by another version of the generator (its rendering may differ), or a
            volume's tissue map does not give its labels (the file is named).
        ValueError: an unknown ``modality``, ``n_styles`` < 1 or ``draw`` < 0.
    """
    if modality not in MODALITIES:
        raise ValueError(f"unknown modality {modality!r}; choose one of {MODALITIES}")
    if n_styles < 1 or draw < 0:
        raise ValueError(f"need n_styles >= 1 and draw >= 0, got {n_styles} and {draw}")
    prep_dir = Path(prep_dir)
    manifest = read_manifest(prep_dir)
    record = manifest.get("phantom")
    if not isinstance(record, dict) or "seed" not in record:
        raise PreparedDataError(
            f"{prep_dir / 'manifest.json'}: not a phantom folder (no 'phantom' generator record); "
            "ideal translations need the phantoms' tissue maps (python -m data_prep phantom)")
    if record.get("generator_version") != GENERATOR_VERSION:
        raise PreparedDataError(
            f"{prep_dir / 'manifest.json'}: made by phantom generator version "
            f"{record.get('generator_version')}, this is version {GENERATOR_VERSION}, whose "
            "rendering may differ: generate the phantoms again")
    task = manifest["task"]
    out = []
    for subject in list_subjects(prep_dir, split):
        path = prep_dir / manifest["subjects"][subject]["file"]
        vol = load_volume(path)
        tissue = load_extra(path, "tissue")
        if tissue.shape != vol.label.shape or not np.array_equal(label_lut(task)[tissue],
                                                                  vol.label):
            raise PreparedDataError(f"{path}: its tissue map does not give its labels; the file "
                                    "was changed after generation: generate the phantoms again")
        n_slices, size = vol.image.shape[0], vol.image.shape[-1]
        grid = make_grid(task, size, n_slices)
        key = zlib.crc32(subject.encode())  # a subject's own streams, whatever the split
        for k in range(n_styles):
            rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(
                int(record["seed"]), spawn_key=(_TASK_KEY[task], _MODALITY_KEY[modality], key,
                                                _IDEAL, int(draw), k))))
            image, _, _ = render(task, modality, tissue, grid, rng)
            out.append(Volume(image=image, label=vol.label, spacing=vol.spacing,
                              modality=modality, task=task, subject=f"{subject}_style{k}"))
    return out


def write_ideal_translations(prep_dir: str | os.PathLike, modality: str,
                             out: str | os.PathLike, split: str | None = "test",
                             n_styles: int = 3, draw: int = 0, overwrite: bool = False) -> Path:
    """:func:`ideal_translations` written as a prepared folder at ``out`` (the source splits,
    ``modality``'s normalisation); returns it. Chapter 2's judge scores it like a learnt
    translation."""
    prep_dir = Path(prep_dir)
    volumes = ideal_translations(prep_dir, modality, split, n_styles, draw)
    source = read_manifest(prep_dir)
    with staged_output(out, overwrite=overwrite) as stage:
        for v in volumes:
            save_volume(stage / f"{v.subject}.npz", v)
        write_manifest(stage, make_manifest(
            dataset="phantom-ideal", task=source["task"], modality=modality,
            normalisation=normalisation_info(source["task"], modality),
            splits={v.subject: source["subjects"][v.subject.rsplit("_style", 1)[0]]["split"]
                    for v in volumes},
            command=f"write_ideal_translations({str(prep_dir)!r}, {modality!r}, "
                    f"split={split!r}, n_styles={n_styles}, draw={draw})",
            extra={"ideal_translation": {"source_dir": str(prep_dir.resolve()),
                                         "source_modality": source["modality"],
                                         "n_styles": n_styles, "draw": draw}}))
    return Path(out).resolve()


# ----------------------------------------------------------------------------------------------
# writing a prepared folder


def generator_record(task: str, modality: str, n: int, seed: int, size: int, n_slices: int,
                     tissue: np.ndarray | None = None) -> dict:
    """The generator parameters stored in the manifest under ``"phantom"``.

    ``tissue`` (a tissue map, e.g. the first subject's) sets the MR normalisation used in the
    recorded per-tissue gap table; without it the darkest and brightest tissues set it.
    """
    ids = tissue_ids(task)
    return {
        "generator_version": GENERATOR_VERSION, "seed": int(seed), "n": int(n),
        "size": int(size), "n_slices": int(n_slices),
        "spacing_mm": [SLAB_MM[task] / n_slices, FOV_MM / size, FOV_MM / size],
        "fov_mm": FOV_MM, "slab_mm": SLAB_MM[task],
        "sequence": MR_SEQUENCE[task] if modality == "mr" else CT_PHASE[task],
        "seeding": "SeedSequence(seed, spawn_key=(task, modality, index, stream)); "
                   "task cardiac=0 abdominal=1, modality mr=0 ct=1, stream anatomy=0 render=1",
        "tissues": list(ids), "tissue_labels": [t.label for t in TISSUES[task]],
        "tissue_gap": tissue_gap_table(task, tissue),
        "extras": {"gap": "float32 D×H×W local gap map in [0, 3]",
                   "tissue": "uint8 D×H×W tissue ids (index into 'tissues')"},
        "gap_definition": (
            "gap = 0.5*|d| + 0.5*|d - G_sigma*d|, d = m_MR(tissue) - m_CT(tissue): noise-free "
            "normalised tissue intensities (MR normalised by the percentiles of its noise-free "
            f"render), G_sigma a Gaussian of sigma {GAP_SIGMA_MM} mm"),
    }


def write_phantoms(out: str | os.PathLike, task: str, modality: str, n: int | None = None,
                   seed: int = 0, size: int = DEMO.slice_size, n_slices: int = DEMO.n_slices,
                   n_test: int | None = None, overwrite: bool = False, progress: bool = True,
                   command: str = "") -> Path:
    """Generate ``n`` subjects and write them as a prepared folder at ``out``; returns it.

    The last ``n_test`` subjects are the ``test`` split, the rest ``train``. Each ``.npz`` holds
    the prepared keys plus the extras ``gap`` (float32) and ``tissue`` (uint8); the manifest
    records the normalisation and, under ``"phantom"``, the generator parameters and tissues.
    """
    n = DEMO.n_train + DEMO.n_test if n is None else int(n)
    n_test = DEMO.n_test if n_test is None else int(n_test)
    _check(task, modality, size, n_slices)
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if not 0 <= n_test <= n:
        raise ValueError(f"n_test must be between 0 and n={n}, got {n_test}")
    from tqdm.auto import tqdm

    splits, stats, first = {}, {}, None
    with staged_output(out, overwrite=overwrite) as stage:
        for i in tqdm(range(n), desc=f"phantom {task} {modality}", unit="vol",
                      disable=not progress):
            s = generate_subject(task, modality, i, seed, size, n_slices)
            save_volume(stage / f"{s.subject}.npz", s.to_volume(),
                        extras={"gap": s.gap, "tissue": s.tissue})
            splits[s.subject] = "test" if i >= n - n_test else "train"
            stats[s.subject] = s.params
            first = s.tissue if first is None else first
        record = generator_record(task, modality, n, seed, size, n_slices, first)
        record["subject_params"] = stats
        manifest = make_manifest(
            dataset="phantom", task=task, modality=modality,
            normalisation=normalisation_info(task, modality), splits=splits,
            command=command or f"write_phantoms(task={task!r}, modality={modality!r}, n={n}, "
                               f"seed={seed}, size={size}, n_slices={n_slices}, n_test={n_test})",
            extra={"phantom": record})
        write_manifest(stage, manifest)
    return Path(out).resolve()


# ----------------------------------------------------------------------------------------------
# command line (python -m data_prep phantom ...)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", choices=("cardiac", "abdominal"), required=True)
    parser.add_argument("--modality", choices=MODALITIES, required=True)
    parser.add_argument("--n", type=int, default=DEMO.n_train + DEMO.n_test,
                        help="number of subjects (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="base seed (default: %(default)s)")
    parser.add_argument("--size", type=int, default=DEMO.slice_size,
                        help="in-plane size H = W (default: %(default)s)")
    parser.add_argument("--slices", type=int, default=DEMO.n_slices,
                        help="slices D per volume (default: %(default)s)")
    parser.add_argument("--n-test", type=int, default=DEMO.n_test,
                        help="last subjects held out as 'test' (default: %(default)s)")


def run(args: argparse.Namespace) -> Path:
    return write_phantoms(
        args.out, args.task, args.modality, n=args.n, seed=args.seed, size=args.size,
        n_slices=args.slices, n_test=args.n_test, overwrite=args.overwrite,
        progress=not args.no_progress, command=getattr(args, "command", ""))
