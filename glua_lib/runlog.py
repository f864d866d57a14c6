"""A run folder's training log, ``log.jsonl``, the same for both trainers (style model, segmenter).

One JSON object a line: a logged step (``"step"``, the loss terms, the time) or an event (the
segmenter's ``"event"`` lines: start, done, stop, ...). :func:`read_log` reads it back in order;
:func:`trim_log` drops the lines logged after a checkpoint, so that a resumed run's log is the log
of an uninterrupted one.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from glua_lib.io import atomic_write_text

LOG = "log.jsonl"  # the training log's file name in every run folder


def read_log(run_dir: str | os.PathLike) -> list[dict]:
    """The records of a run's ``log.jsonl`` (steps and events), in order.

    Raises:
        FileNotFoundError: the folder has no training log (names the file).
    """
    path = Path(run_dir) / LOG
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no training log here")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def trim_log(path: str | os.PathLike, step: int) -> None:
    """Drop the lines of ``path`` logged at steps after ``step`` (written after the checkpoint a
    run resumes from); lines without a step (events) are kept. Nothing to do without a file."""
    path = Path(path)
    if not path.is_file():
        return
    keep = [line for line in path.read_text().splitlines()
            if line.strip() and json.loads(line).get("step", -1) <= step]
    atomic_write_text(path, "".join(line + "\n" for line in keep))


__all__ = ["LOG", "read_log", "trim_log"]
