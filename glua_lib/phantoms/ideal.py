"""The ideal translation: a phantom folder's anatomy rendered again in the other modality.

Because a phantom folder keeps each subject's tissue map, its anatomy can be rendered again in the
other modality (:func:`ideal_translations`): the output of a perfect translator, which no real
dataset has, and the reference chapter 2 measures a learnt translation against
(:func:`glua_lib.style.measure.ideal_gap`).
"""
from __future__ import annotations

import os
import zlib
from pathlib import Path

import numpy as np

from glua_lib.data.prepared import (PreparedDataError, Volume, list_subjects, load_extra,
                                    load_volume, make_manifest, read_manifest, save_volume,
                                    staged_output, write_manifest)
from glua_lib.data.tasks import MODALITIES
from glua_lib.phantoms.generate import GENERATOR_VERSION, IDEAL_STREAM, MODALITY_KEY, TASK_KEY
from glua_lib.phantoms.geometry import make_grid
from glua_lib.phantoms.render import normalisation_info, render
from glua_lib.phantoms.tissues import label_lut

__all__ = ["ideal_translations", "write_ideal_translations"]


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
                int(record["seed"]), spawn_key=(TASK_KEY[task], MODALITY_KEY[modality], key,
                                                IDEAL_STREAM, int(draw), k))))
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
