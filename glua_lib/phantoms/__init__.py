"""Synthetic cross-modality phantoms: the book's embedded data.

Each subject is a 3D torso slab (``D×H×W``) with the real tasks' classes, in MR or CT; source and
target subjects are different anatomies, and every subject carries its tissue map and a gap map.

==========================================  ===================================================
:mod:`~glua_lib.phantoms.tissues`           each task's tissues: appearance and class label
:mod:`~glua_lib.phantoms.geometry`          the voxel grid, the random deformation, the painter
:mod:`~glua_lib.phantoms.body`              body wall, spine and ribs (both tasks)
:mod:`~glua_lib.phantoms.cardiac`           the cardiac anatomy (``build_cardiac``)
:mod:`~glua_lib.phantoms.abdominal`         the abdominal anatomy (``build_abdominal``)
:mod:`~glua_lib.phantoms.render`            MR/CT rendering, normalisation, the gap map
:mod:`~glua_lib.phantoms.generate`          a subject; the per-class gap; writing a prepared
                                            folder (``python -m data_prep phantom``)
:mod:`~glua_lib.phantoms.ideal`             ideal translations (a perfect translator's output)
:mod:`~glua_lib.phantoms.default`           ``phantom_dir``: the chapters' phantoms, cached
==========================================  ===================================================

Each module imports only those above it in this table (``pyproject.toml``'s import contracts).
"""
from glua_lib.phantoms.default import DATA_SEED, phantom_dir
from glua_lib.phantoms.generate import (GENERATOR_VERSION, PhantomSubject, build_tissue_map,
                                        class_gap, class_mean_gap, generate_subject,
                                        generate_subjects, generator_record, subject_id,
                                        write_phantoms)
from glua_lib.phantoms.ideal import ideal_translations, write_ideal_translations
from glua_lib.phantoms.render import expected_normalised, gap_map, render, tissue_gap_table
from glua_lib.phantoms.tissues import TISSUES, label_lut, tissue_ids, tissue_names

__all__ = [
    "DATA_SEED", "GENERATOR_VERSION", "PhantomSubject", "TISSUES", "build_tissue_map",
    "class_gap", "class_mean_gap", "expected_normalised", "gap_map", "generate_subject",
    "generate_subjects", "generator_record", "ideal_translations", "label_lut", "phantom_dir",
    "render", "subject_id", "tissue_gap_table", "tissue_ids", "tissue_names",
    "write_ideal_translations", "write_phantoms",
]
