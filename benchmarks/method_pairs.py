"""Methods against each other on a development data seed, seed by seed: average Dice, training
time, and the paired difference of each pair with its interval.

    python benchmarks/method_pairs.py [--data-seed 7] [--seeds 0 1 2] [--task cardiac]
        [--source mr --target ct] [--methods none local-unmasked local]
        [--pairs local:local-unmasked local:none] [--workers 2]
        --out benchmarks/results/local-step-dev7.json

Every run trains on phantoms of ``--data-seed`` (not the book's 2026), so their target labels may
decide between variants; the book's seed is reported only after the choice is frozen. Runs are
1-thread runs, ``--workers`` at a time (:func:`glua_lib.pipeline.train_runs`), cached like the
chapters' (folder names carry ``data<seed>``). Printed: each method's average foreground Dice
per seed and its mean, training seconds per run (:func:`~glua_lib.runfolder.training_seconds`), and for each pair
``A:B`` the paired difference ``A − B`` over seeds with its 95 % Student-t interval
(:func:`glua_lib.results.paired_difference`); a difference is a finding only when that interval
excludes zero. Methods that translate the source (``global``, ``glua``, …) train their
style run first (several minutes per seed on a CPU).
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from glua_lib import get_profile  # noqa: E402
from glua_lib.io import atomic_write_text  # noqa: E402
from glua_lib.pipeline import Job, evaluate_run, train_runs  # noqa: E402
from glua_lib.results import average_dice, describe_difference, paired_difference  # noqa: E402
from glua_lib.runtime import code_version, device_description  # noqa: E402
from glua_lib.methods import get_method  # noqa: E402
from glua_lib.runfolder import training_seconds  # noqa: E402


def parse_pairs(pairs: list[str], methods: list[str]) -> list[tuple[str, str]]:
    """``["a:b", …]`` → ``[("a", "b"), …]``; both sides must be among ``methods``."""
    out = []
    for pair in pairs:
        a, sep, b = pair.partition(":")
        if not sep or a not in methods or b not in methods:
            raise SystemExit(f"error: --pairs takes A:B with A and B among --methods "
                             f"{methods}, got {pair!r}")
        out.append((a, b))
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-seed", type=int, default=7, help="the phantoms' seed (default 7, "
                        "a development set; the book's is 2026)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--task", default="cardiac")
    parser.add_argument("--source", default="mr")
    parser.add_argument("--target", default="ct")
    parser.add_argument("--methods", nargs="+",
                        default=["none", "local-unmasked", "local"])
    parser.add_argument("--pairs", nargs="+",
                        default=["local:local-unmasked", "local:none"])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--profile", default="demo")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    for m in args.methods:
        get_method(m)  # an unknown name fails now, not after an hour of training
    pairs = parse_pairs(args.pairs, args.methods)
    device = torch.device("cpu")
    profile = get_profile(args.profile, device)
    styles = sorted({s for s in args.seeds
                     if any(get_method(m).needs_style_run for m in args.methods)})
    jobs = [*(Job("style", args.task, args.source, args.target, s, data_seed=args.data_seed)
              for s in styles),
            *(Job("seg", args.task, args.source, args.target, s, method=m,
                  data_seed=args.data_seed, committed=False)
              for s in args.seeds for m in args.methods)]
    print(f"{len(jobs)} runs ({args.task} {args.source}→{args.target}, data seed "
          f"{args.data_seed}, seeds {args.seeds}), {args.workers} at a time, 1 thread each",
          flush=True)
    done = train_runs(jobs, profile, device, args.workers, 1)
    dice: dict[str, list[float]] = {m: [] for m in args.methods}
    seconds: dict[str, list[float]] = {m: [] for m in args.methods}
    for job, run, _ in done:
        if job.kind != "seg":
            continue
        result = evaluate_run(run, args.task, args.target, profile, device, args.data_seed)
        dice[job.method].append(average_dice(result))
        seconds[job.method].append(training_seconds(run))
    print(f"\naverage foreground Dice (%) per seed {args.seeds}, {args.task} "
          f"{args.source}→{args.target}, data seed {args.data_seed}:")
    for m in args.methods:
        values = " ".join(f"{v:5.1f}" for v in dice[m])
        print(f"  {m:<24} {values}   mean {sum(dice[m]) / len(dice[m]):5.1f}   "
              f"{sum(seconds[m]) / len(seconds[m]):5.0f} s/run")
    diffs = {}
    print("\npaired differences (Dice points, 95 % interval over seeds):")
    for a, b in pairs:
        mean, low, high = difference = paired_difference(dice[a], dice[b])
        diffs[f"{a} - {b}"] = {"mean": mean, "low": low, "high": high}
        print(f"  {a} − {b}: {describe_difference(difference)}")
    report = {"command": "python benchmarks/method_pairs.py " + shlex.join(argv or sys.argv[1:]),
              "code_version": code_version(), "device": device_description(device),
              "profile": profile.name, "task": args.task, "source": args.source,
              "target": args.target, "data_seed": args.data_seed, "seeds": args.seeds,
              "average_dice": dice, "train_seconds": seconds, "differences": diffs}
    atomic_write_text(args.out, json.dumps(report, indent=2) + "\n")
    print(f"-> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
