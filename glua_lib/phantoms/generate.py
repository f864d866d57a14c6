"""Generating phantom subjects, measuring their gap, writing them as a prepared folder.

Each subject is a 3D torso slab (``D×H×W`` axial slices) with the real tasks' classes:

* ``cardiac``: 0 background, 1 MYO, 2 LAC, 3 LVC, 4 AA (MR = bSSFP, CT = arterial-phase CTA);
* ``abdominal``: 0 background, 1 liver, 2 right kidney, 3 left kidney, 4 spleen
  (MR = T2-SPIR, CT = portal-venous).

Generation is three steps: a **tissue map** is painted from random anatomy
(:func:`build_tissue_map`: the task's builder, :mod:`glua_lib.phantoms.cardiac` or
:mod:`glua_lib.phantoms.abdominal`, paints into the grid of :mod:`glua_lib.phantoms.geometry`:
sizes, positions and rotations from the subject's seed, a smooth B-spline deformation, and
unlabelled distractors: lungs, fat, muscle, spine, ribs, other heart chambers and vessels, bowel,
stomach, pancreas ...); the **labels** are a lookup on it (:mod:`glua_lib.phantoms.tissues`); the
**image** is rendered from it in one modality (:mod:`glua_lib.phantoms.render`: tissue contrasts
with the inversions between modalities, texture, blur, MR bias field and Rician noise, CT Gaussian
noise, normalisation to [-1, 1]).

Source and target are unpaired: a subject's random streams come from
``SeedSequence(seed, spawn_key=(task, modality, index, stream))``, so index ``i`` in MR and in CT
are different anatomies. Anatomy is drawn in millimetres, so the same subject at another ``size``
or ``n_slices`` is the same anatomy sampled more finely. Same arguments give bit-identical arrays.

Every subject carries a **gap map** (:func:`glua_lib.phantoms.render.gap_map`): the per-voxel
local domain gap, defined from the rendering parameters; :func:`class_gap` measures the per-class
gap on rendered images.

:func:`write_phantoms` writes subjects as a prepared folder; :func:`add_arguments` and :func:`run`
are its command line::

    python -m data_prep phantom --task cardiac --modality mr --n 9 --seed 0 --size 64 \
        --slices 32 --n-test 3 --out PREP_DIR
"""
from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from glua_lib.config import DEMO
from glua_lib.data.prepared import Volume, make_manifest, save_volume, staged_output, write_manifest
from glua_lib.data.tasks import MODALITIES, get_task
from glua_lib.gap import appearance_gap
from glua_lib.phantoms.abdominal import build_abdominal
from glua_lib.phantoms.cardiac import build_cardiac
from glua_lib.phantoms.geometry import FOV_MM, SLAB_MM, Grid, Painter, make_grid
from glua_lib.phantoms.render import (CT_PHASE, GAP_SIGMA_MM, MR_SEQUENCE, gap_map,
                                      normalisation_info, render, tissue_gap_table)
from glua_lib.phantoms.tissues import TISSUES, label_lut, task_tissues, tissue_ids

__all__ = [
    "GENERATOR_VERSION", "PhantomSubject", "build_tissue_map", "generate_subject",
    "generate_subjects", "class_gap", "class_mean_gap", "subject_id", "generator_record",
    "write_phantoms", "add_arguments", "run",
]

GENERATOR_VERSION = 1
# a subject's random streams: SeedSequence(seed, spawn_key=(task, modality, index, stream))
TASK_KEY = {"cardiac": 0, "abdominal": 1}
MODALITY_KEY = {"mr": 0, "ct": 1}
ANATOMY_STREAM, RENDER_STREAM, IDEAL_STREAM = 0, 1, 2  # anatomy, rendering, ideal translations


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
        int(seed), spawn_key=(TASK_KEY[task], MODALITY_KEY[modality], int(index), stream))
    return np.random.Generator(np.random.PCG64(ss))


# ----------------------------------------------------------------------------------------------
# a subject: tissue map, labels, image, gap map


BUILDERS = {"cardiac": build_cardiac, "abdominal": build_abdominal}


def build_tissue_map(task: str, size: int, n_slices: int, rng: np.random.Generator,
                     ) -> tuple[np.ndarray, Grid, dict]:
    """The tissue map (uint8 ``D×H×W``), its grid, and the drawn anatomy parameters."""
    task_tissues(task)
    grid = make_grid(task, size, n_slices)
    painter = Painter(grid, SLAB_MM[task], rng)
    params = BUILDERS[task](painter, rng)
    params.update(scale=[round(s, 3) for s in painter.scale],
                  shift_mm=[round(s, 1) for s in painter.shift])
    return painter.tissue, grid, params


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
        task, int(size), int(n_slices), _rng(seed, task, modality, index, ANATOMY_STREAM))
    label = label_lut(task)[tissue]
    image, raw, rec = render(task, modality, tissue, grid,
                             _rng(seed, task, modality, index, RENDER_STREAM))
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
    """The options of ``python -m data_prep phantom`` (``data_prep`` adds ``--out``,
    ``--overwrite`` and ``--no-progress``)."""
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
    """``python -m data_prep phantom``: :func:`write_phantoms` with the parsed options; returns
    the folder written."""
    return write_phantoms(
        args.out, args.task, args.modality, n=args.n, seed=args.seed, size=args.size,
        n_slices=args.slices, n_test=args.n_test, overwrite=args.overwrite,
        progress=not args.no_progress, command=getattr(args, "command", ""))
