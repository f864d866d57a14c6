"""The phantoms' tissues: what each tissue of a task looks like and which class it is.

A phantom is painted as a *tissue map* (uint8 ids into :data:`TISSUES`, see
:mod:`glua_lib.phantoms.geometry`); each tissue has an appearance (how the modalities render it,
see :mod:`glua_lib.phantoms.render`) and a label (its class, 0 for the unlabelled distractors), so
labels are a lookup on the tissue map (:func:`label_lut`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from glua_lib.data.tasks import get_task


@dataclass(frozen=True)
class TissueDef:
    """One tissue of a task: its name, the appearance it is rendered with, and its class label."""

    name: str
    appearance: str  # key into glua_lib.phantoms.render.APPEARANCE[task][modality]
    label: int  # class index of the task (0 = background / unlabelled distractor)


_COMMON = (
    TissueDef("air", "air", 0),
    TissueDef("lung", "lung", 0),
    TissueDef("subcutaneous fat", "fat", 0),
    TissueDef("skeletal muscle", "muscle", 0),
    TissueDef("cortical bone", "bone", 0),
    TissueDef("bone marrow", "marrow", 0),
    TissueDef("cerebrospinal fluid", "fluid", 0),
    TissueDef("spinal cord", "cord", 0),
    TissueDef("intervertebral disc", "disc", 0),
)

CARDIAC_TISSUES: tuple[TissueDef, ...] = _COMMON + (
    TissueDef("mediastinal/epicardial fat", "fat", 0),
    TissueDef("LV myocardium", "myocardium", 1),
    TissueDef("LA blood", "arterial_blood", 2),
    TissueDef("LV blood", "arterial_blood", 3),
    TissueDef("papillary muscle", "myocardium", 3),
    TissueDef("ascending aorta blood", "arterial_blood", 4),
    TissueDef("descending aorta blood", "arterial_blood", 0),
    TissueDef("pulmonary vein blood", "arterial_blood", 0),
    TissueDef("RA blood", "right_blood", 0),
    TissueDef("RV blood", "right_blood", 0),
    TissueDef("RV wall", "myocardium", 0),
    TissueDef("pulmonary artery blood", "right_blood", 0),
    TissueDef("SVC blood", "svc_blood", 0),
    TissueDef("IVC blood", "unenhanced_blood", 0),
    TissueDef("esophagus", "muscle", 0),
    TissueDef("liver", "liver", 0),
    TissueDef("spleen", "spleen", 0),
    TissueDef("stomach wall", "bowel_wall", 0),
    TissueDef("stomach fluid", "fluid", 0),
    TissueDef("gas", "gas", 0),
)

ABDOMINAL_TISSUES: tuple[TissueDef, ...] = _COMMON + (
    TissueDef("visceral fat", "fat", 0),
    TissueDef("liver", "liver", 1),
    TissueDef("intrahepatic vessels", "venous_blood", 1),
    TissueDef("right kidney cortex", "kidney_cortex", 2),
    TissueDef("right kidney medulla", "kidney_medulla", 2),
    TissueDef("left kidney cortex", "kidney_cortex", 3),
    TissueDef("left kidney medulla", "kidney_medulla", 3),
    TissueDef("spleen", "spleen", 4),
    TissueDef("renal sinus fat", "fat", 0),
    TissueDef("renal pelvis", "fluid", 0),
    TissueDef("aorta blood", "arterial_blood", 0),
    TissueDef("IVC blood", "venous_blood", 0),
    TissueDef("portal/splenic/renal vein blood", "venous_blood", 0),
    TissueDef("pancreas", "pancreas", 0),
    TissueDef("gallbladder", "fluid", 0),
    TissueDef("stomach wall", "bowel_wall", 0),
    TissueDef("stomach fluid", "fluid", 0),
    TissueDef("bowel wall", "bowel_wall", 0),
    TissueDef("small bowel fluid", "fluid", 0),
    TissueDef("colon content", "feces", 0),
    TissueDef("gas", "gas", 0),
)

TISSUES: dict[str, tuple[TissueDef, ...]] = {
    "cardiac": CARDIAC_TISSUES, "abdominal": ABDOMINAL_TISSUES}


def tissue_ids(task: str) -> dict[str, int]:
    """Tissue name -> id (the value stored in the tissue map) for ``task``."""
    return {t.name: i for i, t in enumerate(task_tissues(task))}


def label_lut(task: str) -> np.ndarray:
    """uint8 lookup table: ``label = label_lut(task)[tissue]``."""
    lut = np.zeros(256, np.uint8)
    for i, t in enumerate(task_tissues(task)):
        lut[i] = t.label
    return lut


def task_tissues(task: str) -> tuple[TissueDef, ...]:
    """The tissues of ``task`` (index = id in the tissue map); ``ValueError`` if unknown."""
    try:
        return TISSUES[task]
    except KeyError:
        raise ValueError(f"unknown task {task!r}; choose one of {sorted(TISSUES)}") from None


def tissue_names(task: str) -> list[str]:
    """Names of the tissue ids of ``task`` (index = id in the tissue map)."""
    get_task(task)
    return [t.name for t in TISSUES[task]]
