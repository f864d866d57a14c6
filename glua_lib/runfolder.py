"""The run folder both trainers write (the style model, chapter 2; the segmenter, chapters 3–4):
what they share, with one name each.

- **The log**, ``log.jsonl``: one JSON object a line, a logged step (``"step"``, the loss terms,
  :data:`ELAPSED`) or an event (the segmenter's ``"event"`` lines: start, done, stop, ...).
  :func:`append_log` writes a line, :func:`read_log` reads them back in order,
  :func:`log_series` gives its training curves, :func:`training_seconds` how long a run trained,
  and :func:`trim_log` drops the lines logged after a checkpoint, so that a resumed run's log is
  the log of an uninterrupted one.
- **The batch order**, :class:`StepBatches` (and :func:`step_loader`, its ``DataLoader``): batch
  ``t`` is a pure function of ``(seed, t)``, so a resumed run needs only its step to go on with
  the same data.
- **The resume rule**, :func:`check_resume`: a folder is resumed only with the config it was
  trained with, except for the fields a trainer lists as harmless (budget, bookkeeping,
  precision).
- **One divergence error**, :class:`TrainingDiverged`: a loss became NaN or infinite; the run
  stopped and its last good checkpoint was kept.
- **The checkpoint interval** is ``checkpoint_every`` in both configs.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterator

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from glua_lib.io import atomic_write_text
from glua_lib.runtime import seed_worker

LOG = "log.jsonl"  # the training log's file name in every run folder
ELAPSED = "elapsed_s"  # a log line's seconds since its training stretch started
_OLD_ELAPSED = "seconds"  # the style trainer's name for it before the two were made one


class TrainingDiverged(FloatingPointError):
    """A loss became NaN or infinite; training stopped and the last good checkpoint was kept."""


def append_log(path: str | os.PathLike, record: dict) -> None:
    """Append one JSON line to the log ``path``."""
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")


def read_log(run_dir: str | os.PathLike) -> list[dict]:
    """The records of a run's ``log.jsonl`` (steps and events), in order. A style run logged
    before the names were made one has its ``"seconds"`` read as :data:`ELAPSED`.

    Raises:
        FileNotFoundError: the folder has no training log (names the file).
    """
    path = Path(run_dir) / LOG
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no training log here")
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    for rec in records:
        if _OLD_ELAPSED in rec and ELAPSED not in rec:
            rec[ELAPSED] = rec.pop(_OLD_ELAPSED)
    return records


def training_seconds(run_dir: str | os.PathLike) -> float:
    """Seconds a run trained in its last stretch: the ``done`` event's :data:`ELAPSED` (the
    segmenter), else the last logged step's (the style model).

    Raises:
        FileNotFoundError: no training log; ValueError: the log holds no time.
    """
    records = read_log(run_dir)
    done = [r for r in records if r.get("event") == "done" and ELAPSED in r]
    timed = done or [r for r in records if ELAPSED in r]
    if not timed:
        raise ValueError(f"{Path(run_dir) / LOG}: no line says how long the run trained")
    return float(timed[-1][ELAPSED])


def log_series(run_dir: str | os.PathLike,
               keys: list[str] | tuple[str, ...]) -> dict[str, tuple[list[int], list[float]]]:
    """``{key: (steps, values)}`` from a run's log: each key's values at the logged steps that
    have it (a training curve; e.g. ``plots.curves(log_series(run, ["loss"]), ...)``).

    Raises:
        FileNotFoundError: no training log; KeyError: a key no logged step has (named, with the
            keys there are).
    """
    records = [r for r in read_log(run_dir) if "step" in r and "event" not in r]
    out = {}
    for key in keys:
        have = [r for r in records if key in r]
        if not have:
            known = sorted({k for r in records for k in r} - {"step", ELAPSED})
            raise KeyError(f"{Path(run_dir) / LOG}: no logged step has {key!r}; it has {known}")
        out[key] = ([int(r["step"]) for r in have], [float(r[key]) for r in have])
    return out


def trim_log(path: str | os.PathLike, step: int) -> None:
    """Drop the lines of ``path`` logged at steps after ``step`` (written after the checkpoint a
    run resumes from); lines without a step (events) are kept. Nothing to do without a file."""
    path = Path(path)
    if not path.is_file():
        return
    keep = [line for line in path.read_text().splitlines()
            if line.strip() and json.loads(line).get("step", -1) <= step]
    atomic_write_text(path, "".join(line + "\n" for line in keep))


class StepBatches(Sampler):
    """Batches of ``(epoch, index)`` for steps ``start … stop−1`` of ``n`` items.

    Epoch ``e`` is a permutation of ``range(n)`` seeded by ``(seed, e)``; step ``t`` takes batch
    ``t mod n_b`` of epoch ``t // n_b`` (``n_b = n // batch_size``; the remainder of an epoch is
    skipped). A batch is a pure function of ``(seed, t)``, so a resumed run needs only its step.
    The epoch travels with each index, so a dataset can draw that epoch's augmentation.
    """

    def __init__(self, n: int, batch_size: int, seed: int, start: int, stop: int):
        if n < batch_size:
            raise ValueError(f"only {n} training slices, fewer than batch_size {batch_size}")
        self.n, self.batch, self.seed, self.start, self.stop = n, batch_size, seed, start, stop
        self.per_epoch = n // batch_size
        self._cache: tuple[int, torch.Tensor] | None = None

    def _perm(self, epoch: int) -> torch.Tensor:
        if self._cache is None or self._cache[0] != epoch:
            g = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
            self._cache = (epoch, torch.randperm(self.n, generator=g))
        return self._cache[1]

    def indices(self, step: int) -> list[tuple[int, int]]:
        """The ``(epoch, index)`` pairs of batch ``step``."""
        epoch, b = divmod(step, self.per_epoch)
        chosen = self._perm(epoch)[b * self.batch:(b + 1) * self.batch]
        return [(epoch, int(i)) for i in chosen]

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for step in range(self.start, self.stop):
            yield self.indices(step)

    def __len__(self) -> int:
        return max(0, self.stop - self.start)


class EpochItems(Dataset):
    """Wraps a dataset with ``set_epoch`` (:class:`~glua_lib.data.SliceDataset`) so that an
    index ``(epoch, i)`` from :class:`StepBatches` picks that epoch's augmentation draw."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key):
        epoch, i = key
        self.dataset.set_epoch(epoch)
        return self.dataset[i]


def step_loader(dataset, batch_size: int, seed: int, start: int, stop: int, num_workers: int,
                device: torch.device) -> DataLoader:
    """The batches of steps ``start … stop−1`` of ``dataset`` in :class:`StepBatches` order,
    with ``num_workers`` seeded worker processes (the order does not depend on them)."""
    sampler = StepBatches(len(dataset), batch_size, seed, start, stop)
    return DataLoader(EpochItems(dataset), batch_sampler=sampler, num_workers=num_workers,
                      worker_init_fn=seed_worker, pin_memory=device.type == "cuda")


def check_resume(path: str | os.PathLike, old: dict, new: dict, resumable: set[str]) -> None:
    """Refuse to resume a run folder with another config.

    ``old`` and ``new`` are the saved and the given config as dicts (``config_to_dict``);
    ``resumable`` the fields that may differ (what cannot change what the run learns from).

    Raises:
        ValueError: other fields differ; the message names ``path``, the fields and what to do.
    """
    diff = sorted(k for k in set(old) | set(new)
                  if k not in resumable and k != "_type" and old.get(k) != new.get(k))
    if diff:
        raise ValueError(f"{path}: this run folder holds a run with other settings (differs "
                         f"in {', '.join(diff)}); use another output folder or delete it to "
                         "start over")


__all__ = ["ELAPSED", "EpochItems", "LOG", "StepBatches", "TrainingDiverged", "append_log",
           "check_resume", "log_series", "read_log", "step_loader", "training_seconds",
           "trim_log"]
