"""``python -m glua_lib cache-book-runs``: train the runs the chapters read, several at a time.

::

    python -m glua_lib cache-book-runs [--workers 2] [--threads 1] [--profile demo|full] \\
        [--task cardiac] [--source mr] [--target ct] [--seed 0] [--device D]

Fills the cache (``$GLUA_CACHE``) with :func:`glua_lib.pipeline.book_runs` through
:func:`glua_lib.pipeline.train_runs`; the chapters then find them there. ``make book`` calls it
with two 1-thread workers before it executes the chapters, so the two cores train two runs at
once; the runs are those a chapter would train for itself under ``make book``, bit for bit.
"""
from __future__ import annotations

import argparse
import time

from glua_lib.cli import device_arg


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
    from glua_lib.config import get_profile
    from glua_lib.pipeline import book_runs, train_runs

    device = device_arg(args.device)
    profile = get_profile(args.profile, device)
    jobs = book_runs(args.task, args.source, args.target, args.seed)
    print(f"{len(jobs)} runs of the {profile.name} profile, {args.workers} at a time with "
          f"{args.threads} thread(s) each, on {device} (cached runs are reused)")
    start = time.perf_counter()
    train_runs(jobs, profile, device, args.workers, args.threads)
    print(f"cache-book-runs: done in {time.perf_counter() - start:.0f} s")
    return 0
