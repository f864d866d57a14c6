"""Translators measured by what the segmenter needs, on a development data seed: for each
candidate style run, ``global``'s Dice on the real target test volumes against its ceiling (the
same segmenter trained on *ideal* translations, :func:`glua_lib.pipeline.ideal_global_run`), and
the source-side check (``global``'s Dice on the translated held-out *source* test volumes, scored
with the source labels the translations carry).

    python benchmarks/translator_candidates.py [--data-seed 7] [--seeds 0]
        [--tasks cardiac abdominal] [--directions mr2ct ct2mr]
        [--candidates "" "arch=domain" "arch=domain n_down=1"] [--workers 2]
        --out benchmarks/results/translator-candidates-dev7.json

A candidate is a space-separated list of ``StyleConfig`` overrides (``""``: the profile's
translator; the first candidate is the reference); an item ``seg.FIELD=VALUE`` changes the
``global`` segmenter's ``SegConfig`` instead (``seg.aug_class_offset=0.1``), so candidates that
share a translator share its style run (the ceiling stays the profile's segmenter, without
``seg.`` changes). Every run trains on phantoms of
``--data-seed`` (not the book's 2026), so their target labels may choose a default; the book's
own seed is reported only after the choice is frozen. Runs are 1-thread runs, ``--workers`` at a
time, cached like the chapters' (folder names carry ``data<seed>`` and the overrides).

Printed: the table chapter 2 shows (:func:`glua_lib.results.candidates_markdown`): per candidate,
average Dice (%) of ``global`` per task and direction (mean over seeds) with the source-side Dice,
the ceiling's row, and the paired difference to the reference over all (task, direction, seed)
units with its 95 % Student-t interval (a finding only when the interval excludes zero); then
each candidate's mean style-run time.
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.demo_candidates import parse_candidate  # noqa: E402
from glua_lib import get_profile  # noqa: E402
from glua_lib.io import atomic_write_text  # noqa: E402
from glua_lib.pipeline import (Job, evaluate_on, evaluate_run, train_runs,  # noqa: E402
                               translated_dir)
from glua_lib.results import average_dice, candidates_markdown, make_table  # noqa: E402
from glua_lib.runfolder import training_seconds  # noqa: E402
from glua_lib.runtime import code_version, device_description  # noqa: E402


SEG_PREFIX = "seg."


def split_candidate(candidate: tuple) -> tuple[tuple, tuple]:
    """``(("arch", "domain"), ("seg.aug_class_offset", 0.1))`` -> the ``StyleConfig`` overrides
    ``(("arch", "domain"),)`` and the ``SegConfig`` ones ``(("aug_class_offset", 0.1),)``."""
    style = tuple((k, v) for k, v in candidate if not k.startswith(SEG_PREFIX))
    seg = tuple((k[len(SEG_PREFIX):], v) for k, v in candidate if k.startswith(SEG_PREFIX))
    return style, seg


def candidate_name(style: tuple, seg: tuple) -> str:
    """A candidate's name in tables and rows: its style overrides, then its ``seg.`` ones."""
    return " ".join([*(f"{k}={v}" for k, v in style),
                     *(f"{SEG_PREFIX}{k}={v}" for k, v in seg)])


def jobs_for(experiments, candidates, seeds, data_seed) -> list[Job]:
    """Unit by unit (task, direction, seed): every translator's style run (they take longest;
    one per distinct set of style overrides), the ceiling, then each candidate's ``global``
    segmenter; so units finish one after another."""
    split = [split_candidate(c) for c in candidates]
    translators = list(dict.fromkeys(style for style, _ in split))
    jobs = []
    for task, src, tgt in experiments:
        for seed in seeds:
            jobs += [Job("style", task, src, tgt, seed, data_seed=data_seed, style_overrides=s)
                     for s in translators]
            jobs.append(Job("ideal", task, src, tgt, seed, data_seed=data_seed))
            jobs += [Job("seg", task, src, tgt, seed, "global", data_seed, overrides=seg,
                         style_overrides=style) for style, seg in split]
    return jobs


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-seed", type=int, default=7)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--tasks", nargs="+", default=["cardiac", "abdominal"])
    parser.add_argument("--directions", nargs="+", default=["mr2ct", "ct2mr"])
    parser.add_argument("--candidates", nargs="+", default=["", "arch=domain"])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.data_seed == 2026:
        parser.error("--data-seed 2026 is the book's own data: choose defaults on another seed")
    profile, device = get_profile("demo"), torch.device("cpu")
    candidates = [parse_candidate(c) for c in args.candidates]
    experiments = [(task, *d.split("2")) for task in args.tasks for d in args.directions]
    done = train_runs(jobs_for(experiments, candidates, args.seeds, args.data_seed), profile,
                      device, workers=args.workers, threads=1)
    torch.set_num_threads(1)
    rows, ceilings = [], {}
    for job, run, _ in done:
        key = (job.task, f"{job.source}2{job.target}", job.seed)
        if job.kind == "ideal":
            metrics = evaluate_run(run, job.task, job.target, profile, device, job.data_seed)
            ceilings[key] = average_dice(metrics)
        elif job.kind == "seg":
            metrics = evaluate_run(run, job.task, job.target, profile, device, job.data_seed)
            translated = translated_dir(job.task, job.source, job.target, profile, job.seed,
                                        device, job.data_seed, job.style_overrides)
            source_side = evaluate_on(run, translated, "translated-source-test", "test",
                                      device=device)
            style = run_of_style(done, job)
            rows.append({"task": job.task, "direction": key[1], "seed": job.seed,
                         "candidate": candidate_name(job.style_overrides, job.overrides),
                         "global": average_dice(metrics), "source_side": average_dice(source_side),
                         "per_class": per_class(metrics),
                         "style_train_s": training_seconds(style), "run": run.name,
                         "style_run": style.name})
    for row in rows:
        row["ceiling"] = ceilings[(row["task"], row["direction"], row["seed"])]
    names = [candidate_name(*split_candidate(c)) for c in candidates]
    _, table = candidates_markdown(rows, reference=names[0])
    print(f"data seed {args.data_seed}, seeds {args.seeds}\n\n{table}\n")
    for name in names:
        t = np.mean([r["style_train_s"] for r in rows if r["candidate"] == name])
        print(f"{name or '(profile translator)'}: style run {t:.0f} s (mean)")
    report = {"command": "python benchmarks/translator_candidates.py "
                         + shlex.join(argv if argv is not None else sys.argv[1:]),
              "code_version": code_version(), "profile": profile.name,
              "data_seed": args.data_seed, "seeds": args.seeds,
              "device": device_description(device) + ", 1-thread runs", "rows": rows}
    atomic_write_text(args.out, json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


def run_of_style(done, job: Job) -> Path:
    """The style run folder of ``job``'s style overrides among the finished jobs."""
    return next(run for j, run, _ in done if j.kind == "style"
                and (j.task, j.source, j.target, j.seed, j.style_overrides)
                == (job.task, job.source, job.target, job.seed, job.style_overrides))


def per_class(metrics: dict) -> dict[str, float]:
    """Mean Dice (%) over the test volumes per foreground class of one evaluation."""
    table = make_table({"run": metrics})
    return {c: table.cell("run", c).mean for c in table.columns if c != "average"}


if __name__ == "__main__":
    sys.exit(main())
