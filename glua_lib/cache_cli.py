"""``python -m glua_lib cache-book-runs``: train the runs the chapters read, several at a time.

::

    python -m glua_lib cache-book-runs [--workers 2] [--threads 1] [--profile demo|full] \\
        [--task cardiac] [--source mr] [--target ct] [--seed 0] [--device D]

Fills the cache (``$GLUA_CACHE``) with :func:`glua_lib.pipeline.book_runs` through
:func:`glua_lib.pipeline.train_runs`; the chapters then find them there. ``make book`` trains the
same jobs (``book/_ext/execute_book.py``, which also executes each chapter once its runs are
there), two 1-thread workers at a time; the runs are those a chapter would train for itself,
bit for bit, except the segmenters the book has committed (:mod:`glua_lib.committed`), which are
installed.

``python -m glua_lib commit-book-runs [--workers 2]`` (``make book-runs``) remakes those
committed segmenters: :func:`run_commit`.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import tempfile
import time
from pathlib import Path

import torch

from glua_lib import committed
from glua_lib.cli import device_arg
from glua_lib.commands import Command
from glua_lib.config import get_profile
from glua_lib.io import atomic_write_text
from glua_lib.pipeline import (BOOK_METHODS, Job, book_runs, evaluate_run, ideal_global_run,
                               seg_run, train_runs)
from glua_lib.results import average_dice
from glua_lib.runtime import code_version, cpu_name


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workers", type=int, default=1, help="processes training at once (default 1)")
    p.add_argument("--threads", type=int, default=1, help="torch threads of each (default 1)")
    p.add_argument("--profile", default=None, help="demo or full (default: $GLUA_PROFILE or by "
                   "device)")
    p.add_argument("--task", default="cardiac", help="cardiac or abdominal (default cardiac)")
    p.add_argument("--source", default="mr", help="labelled source modality (default mr)")
    p.add_argument("--target", default="ct", help="unlabelled target modality (default ct)")
    p.add_argument("--seed", type=int, default=0, help="seed of every run (default 0)")
    p.add_argument("--device", default=None, help="cpu, cuda, ... (default: the best there is)")


def run(args: argparse.Namespace) -> int:

    device = device_arg(args.device)
    profile = get_profile(args.profile, device)
    jobs = book_runs(args.task, args.source, args.target, args.seed)
    print(f"{len(jobs)} runs of the {profile.name} profile, {args.workers} at a time with "
          f"{args.threads} thread(s) each, on {device} (cached runs are reused)")
    start = time.perf_counter()
    train_runs(jobs, profile, device, args.workers, args.threads)
    print(f"cache-book-runs: done in {time.perf_counter() - start:.0f} s")
    return 0


@contextlib.contextmanager
def _environ(**values: str):
    """Set environment variables for a block (spawned workers inherit them), then restore."""
    before = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def add_commit_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workers", type=int, default=2, help="processes training at once (default 2)")
    p.add_argument("--out", default=None, help="where the committed runs go (default: book/runs "
                   "of this checkout)")
    p.add_argument("--cache", default=None, help="cache folder to train in (default: a new, "
                   "empty one, so every run is trained by this code)")
    p.add_argument("--device", default="cpu", help="device to train on (default cpu: the "
                   "demo profile's runs, as a reader's laptop trains them)")


def run_commit(args: argparse.Namespace) -> int:
    """Train the book's segmenters (demo profile, default parameters: :data:`BOOK_METHODS` and
    ``global``'s ceiling) in an empty cache (or ``--cache``), write their committed form
    (:func:`glua_lib.committed.write`), then install each into a second empty cache and
    evaluate it there: the Dice of the float16 copy next to the original's."""
    device = device_arg(args.device)
    profile = get_profile("demo", device)
    out = Path(args.out) if args.out else committed.BOOK_RUNS
    task, source, target, seed = "cardiac", "mr", "ct", 0
    with tempfile.TemporaryDirectory(prefix="glua-commit-") as tmp, \
            _environ(GLUA_CACHE=args.cache or str(Path(tmp) / "train"),
                     GLUA_COMMITTED_RUNS=""):  # train, never install an older copy
        jobs = [Job("style", task, source, target, seed),
                *(Job("seg", task, source, target, seed, method=m, committed=False)
                  for m in BOOK_METHODS),
                Job("ideal", task, source, target, seed, committed=False)]
        print(f"training {len(jobs)} runs in {os.environ['GLUA_CACHE']}, {args.workers} at a time")
        done = train_runs(jobs, profile, device, args.workers, threads=1)
        # the segmenters by method, global's ceiling (chapter 2 reads it) as "ideal"
        runs = {job.method or job.kind: Path(run) for job, run, _ in done if job.kind != "style"}

        def dice(run: Path) -> float:
            metrics = evaluate_run(run, task, target, profile, device)
            return round(average_dice(metrics), 3)

        original = {m: dice(run) for m, run in runs.items()}
        info = {"command": "make book-runs",  # python -m glua_lib commit-book-runs
                "code_version": code_version(), "made_on": time.strftime("%Y-%m-%d"),
                "machine": cpu_name(),  # each run trained with 1 torch thread
                "torch": torch.__version__, "profile": profile.name,
                "task": task, "direction": f"{source}2{target}", "seed": seed,
                # where they were trained; runs already in a --cache folder were reused
                "cache": args.cache or "a new, empty one"}
        committed.write(list(runs.values()), out, info)
    with tempfile.TemporaryDirectory(prefix="glua-commit-") as tmp, \
            _environ(GLUA_CACHE=str(Path(tmp) / "installed"), GLUA_COMMITTED_RUNS=str(out)):
        check = {}
        for method, run in runs.items():
            installed = (ideal_global_run(task, source, target, profile, seed, device)
                         if method == "ideal" else
                         seg_run(method, task, source, target, profile, seed, device))
            if committed.origin(installed) == "trained on this machine":
                raise RuntimeError(f"{installed}: was trained, not installed from {out}")
            check[run.name] = {"dice_float32": original[method], "dice_float16": dice(installed)}
            print(f"{method:>14}: average Dice {original[method]:.3f} (float32) "
                  f"{check[run.name]['dice_float16']:.3f} (float16 copy)")
        manifest = {**committed.manifest(out), "dice": check}
        atomic_write_text(out / committed.MANIFEST, json.dumps(manifest, indent=2) + "\n")
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"commit-book-runs: {len(runs)} runs, {size / 2**20:.1f} MiB in {out}")
    return 0


commit = Command(add_commit_arguments, run_commit)
