"""The ablation: train and evaluate every method on the phantoms, every task and direction.

Prints the Dice and ASSD tables (mean (std) over test volumes and seeds) and the gap closed, and
writes them with per-volume metrics, wall times, seeds, the command and the code version to a JSON
file that chapter 4 shows next to its own live table::

    python benchmarks/ablation.py --profile demo \
        --out benchmarks/results/ablation-demo.json

Methods (default): none, global, local, glua-unmasked, glua, oracle (any method of
``glua_lib.methods.METHODS``, e.g. local-unmasked or glua-lossweight, with ``--methods``); seeds:
the profile's (demo: 0 … 4; gpu16 and full: 0, 1, 2); each seed trains its own style model and
segmenters; ``--tasks`` and ``--directions`` pick the experiments (or ``--experiments``, e.g.
``cardiac:ct2mr abdominal:mr2ct``, exactly those). Runs are cached
(glua_lib.pipeline), so rerunning skips what is already trained and two processes with different
``--tasks`` can fill the cache side by side. `make ablation` runs exactly the command above. The
file's ``device`` is that of the call that wrote it; each run's own device, torch threads (and
``trained_on``, one entry per training stretch) and training time are under ``wall_time`` (runs
taken from the cache were trained by earlier calls, possibly with other thread counts).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from script_common import add_run_arguments, start_report  # noqa: E402

from glua_lib import pipeline  # noqa: E402
from glua_lib.data import get_task  # noqa: E402
from glua_lib.io import atomic_write_text  # noqa: E402
from glua_lib.results import ABLATION_METHODS, make_tables  # noqa: E402
from glua_lib.runfolder import training_seconds  # noqa: E402

DIRECTIONS = {"cardiac": [("mr", "ct"), ("ct", "mr")], "abdominal": [("mr", "ct"), ("ct", "mr")]}


def _one_or_all(values):
    """The value if every training stretch had the same, else the list of them."""
    values = list(values)
    return values[0] if len(set(map(str, values))) == 1 else values


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_run_arguments(parser, DIRECTIONS)
    parser.add_argument("--methods", nargs="+", default=list(ABLATION_METHODS))
    parser.add_argument("--directions", nargs="+", default=["mr2ct", "ct2mr"],
                        choices=["mr2ct", "ct2mr"], help="default: both")
    parser.add_argument("--experiments", nargs="+", default=None, metavar="TASK:DIRECTION",
                        choices=[f"{t}:{s}2{g}" for t, ds in DIRECTIONS.items() for s, g in ds],
                        help="exactly these, e.g. cardiac:ct2mr abdominal:mr2ct (instead of every "
                             "direction of every task)")
    args = parser.parse_args(argv)
    report, profile, seeds, device = start_report("benchmarks/ablation.py", argv, args)
    wanted = (set(args.experiments) if args.experiments else
              {f"{t}:{d}" for t in args.tasks for d in args.directions})
    experiments = [(task, source, target) for task in DIRECTIONS
                   for source, target in DIRECTIONS[task] if f"{task}:{source}2{target}" in wanted]
    per_method = {e: {m: [] for m in args.methods} for e in experiments}
    wall = {e: {m: [] for m in args.methods} for e in experiments}
    for seed in seeds:  # seed outermost: an interrupted call leaves whole seeds in the cache
        for task, source, target in experiments:
            for method in args.methods:
                t0 = time.time()
                run = pipeline.seg_run(method, task, source, target, profile, seed, device,
                                       committed=False)  # measure training, not copies
                per_method[task, source, target][method].append(
                    pipeline.evaluate_run(run, task, target, profile, device))
                trained = training_seconds(run)
                info = json.loads((run / "run.json").read_text())
                stretches = info.get("trained_on") or [  # runs from before the list
                    {"from_step": 0, "device": info.get("device"), "threads": info.get("threads")}]
                wall[task, source, target][method].append(
                    {"seed": seed, "run": run.name, "train_s": trained,
                     "device": _one_or_all(s["device"] for s in stretches),
                     "threads": _one_or_all(s["threads"] for s in stretches),
                     "trained_on": stretches, "this_call_s": round(time.time() - t0, 1)})
                print(f"{task} {source}→{target} {method} seed {seed}: trained in {trained} s",
                      flush=True)
    for task, source, target in experiments:
        key = f"{task} {source}→{target}"
        tables = make_tables(per_method[task, source, target],
                             classes=get_task(task).classes[1:])
        print(f"\n## {key} ({profile.name}, seeds {seeds})\n")
        for t in tables.values():
            print(t.to_markdown(), "\n")
        report["experiments"][key] = {
            "tables": {k: t.to_dict() for k, t in tables.items()},
            "markdown": {k: t.to_markdown() for k, t in tables.items()},
            "wall_time": wall[task, source, target],
            "per_volume": per_method[task, source, target]}
    atomic_write_text(args.out, json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
