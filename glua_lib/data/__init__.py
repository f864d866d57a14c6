"""Data: the tasks and their classes, the prepared format, and datasets of 2D slices.

The book's embedded data, the synthetic phantoms, are generated into this format by
:mod:`glua_lib.phantoms` (``phantom_dir``), one layer up.
"""
from glua_lib.data.prepared import (PreparedDataError, Volume, check_slice_size, list_subjects,
                                    load_extra, load_volume, load_volumes, make_manifest,
                                    read_manifest, save_volume, staged_output, write_manifest)
from glua_lib.data.tasks import ABDOMINAL, CARDIAC, MODALITIES, TASKS, Task, get_task

__all__ = [
    "ABDOMINAL", "CARDIAC", "MODALITIES", "PreparedDataError", "TASKS", "Task", "Volume",
    "check_slice_size", "get_task", "list_subjects", "load_extra", "load_volume", "load_volumes",
    "make_manifest", "read_manifest", "save_volume", "staged_output", "write_manifest",
]

from glua_lib.data.datasets import Augment, SliceDataset  # noqa: E402

__all__ += ["Augment", "SliceDataset"]
