"""What global alignment did, measured on the phantoms: every task, direction and seed.

    python benchmarks/style_quality.py --profile demo \
        --out benchmarks/results/style-quality-demo.json

For each style run (trained if missing, else taken from the cache, as chapter 2 and
``make ablation`` share them) it translates the source test volumes into the profile's
``n_styles`` target styles and prints, per class, the appearance gap to the real target before
and after translation, its floor (real target subjects against each other), the gap of *ideal*
translations (the source phantoms' own anatomy rendered in the target modality, median and 5–95 %
range over ``pipeline.IDEAL_SETS`` independent sets, and how often even they shrink the gap),
whether the gap shrank or else ended within the ideal range, the spread of the class means
between styles and between real subjects (0 between styles: a collapsed style code), the edge
alignment (next to the ideal translations'), and the **judge**: the Dice (%, per class, mean
over test volumes) against the source labels of a segmenter trained on real target labels (the
ablation's ``oracle`` of the same seed, chapter 2's content check), on the source test images
as they are, translated, and ideally translated (the most it can be); high on the translations
only if they look like the target and the anatomy stayed put. Last, what the translation is worth
to the segmenter: the target test Dice of ``global`` (trained on the translations), of the same
segmenter trained on ideal translations (:func:`pipeline.ideal_global_run`: ``global``'s
ceiling) and of ``oracle``. The image measures are
:func:`glua_lib.style.measure.translation_report`; the JSON file holds all of them with the
command, code version, seeds and device.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from script_common import add_run_arguments, start_report  # noqa: E402

from glua_lib import pipeline  # noqa: E402
from glua_lib.data import get_task, load_volumes  # noqa: E402
from glua_lib.io import atomic_write_text  # noqa: E402
from glua_lib.phantoms import phantom_dir  # noqa: E402
from glua_lib.results import ceiling_markdown  # noqa: E402
from glua_lib.style.measure import translation_report  # noqa: E402

DIRECTIONS = (("mr", "ct"), ("ct", "mr"))


def mean_dice(metrics: dict, classes: list[str]) -> dict[str, float]:
    """Per-class Dice in %, mean over the volumes of one :func:`pipeline.evaluate_on` result."""
    volumes = metrics["volumes"].values()
    return {c: 100 * float(np.mean([v["dice"][c] for v in volumes])) for c in classes}


def measure(task: str, source: str, target: str, profile, seed: int, device) -> dict:
    """:func:`translation_report` of the style run of ``seed`` on the test split, against the
    ideal translations too, and the judge's Dice (``judge_source``, ``judge_translated``,
    ``judge_ideal``: :func:`pipeline.judge_translation`)."""
    translated = pipeline.translated_dir(task, source, target, profile, seed, device)
    classes = list(get_task(task).classes)
    report = translation_report(load_volumes(phantom_dir(task, source, profile), "test"),
                                load_volumes(phantom_dir(task, target, profile), "test"),
                                load_volumes(translated, "test"), classes, seed=seed,
                                ideal_sets=pipeline.ideal_translation_sets(task, source, target,
                                                                           profile))
    judged = pipeline.judge_translation(task, source, target, profile, seed, device,
                                        committed=False)
    runs = {"global": pipeline.seg_run("global", task, source, target, profile, seed, device,
                                       committed=False),
            "global_ideal": pipeline.ideal_global_run(task, source, target, profile, seed,
                                                      device),
            "oracle": pipeline.seg_run("oracle", task, source, target, profile, seed, device,
                                       committed=False)}
    dice = {f"dice_{k}": mean_dice(pipeline.evaluate_run(run, task, target, profile, device),
                                    classes[1:]) for k, run in runs.items()}
    return {**report, **{f"judge_{k}": mean_dice(v, classes[1:]) for k, v in judged.items()},
            **dice}


def verdict(report: dict, c: str) -> str:
    """``yes`` (the gap shrank), ``as ideal`` (it did not, but is within the ideal translations'
    range) or ``NO``."""
    return ("yes" if c in report["shrank"] else
            "as ideal" if c in report["within_ideal"] else "NO")


def table(reports: dict[int, dict], classes: list[str]) -> str:
    """One markdown table: a row per seed and class."""
    lines = ["| seed | class | before | after | floor | ideal (5–95 %) | ideal shrinks | "
             "shrank | between styles | between subjects | "
             "judge Dice % source → translated (ideal) |",
             "|" + "---|" * 11]
    for seed, r in reports.items():
        for c in classes:
            lines.append(f"| {seed} | {c} | {r['before'][c]:.3f} | {r['after'][c]:.3f} | "
                         f"{r['floor'][c]:.3f} | {r['ideal'][c]:.3f} ({r['ideal_low'][c]:.3f}–"
                         f"{r['ideal_high'][c]:.3f}) | {r['ideal_shrinks'][c]:.0%} | "
                         f"{verdict(r, c)} | "
                         f"{r['between_styles'][c]:.4f} | {r['between_subjects'][c]:.4f} | "
                         f"{r['judge_source'][c]:.1f} → {r['judge_translated'][c]:.1f} "
                         f"({r['judge_ideal'][c]:.1f}) |")
    edges = ", ".join(f"{r['edge_alignment']:.3f} (ideal {r['ideal_edge_alignment']:.3f})"
                      for r in reports.values())
    ratios = ", ".join(f"{r['style_ratio']:.1%}" for r in reports.values())
    dice = ", ".join(" / ".join(f"{np.mean(list(r[f'dice_{k}'].values())):.1f}"
                                for k in ("global", "global_ideal", "oracle"))
                     for r in reports.values())
    return "\n".join(lines) + f"\n\nedge alignment by seed: {edges}; " \
                              f"style spread / subject spread by seed: {ratios}\n" \
                              "target test Dice % (mean of the classes) of `global` / `global` " \
                              f"on ideal translations / `oracle`, by seed: {dice}"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_run_arguments(parser, ["cardiac", "abdominal"])
    args = parser.parse_args(argv)
    report, profile, seeds, device = start_report("benchmarks/style_quality.py", argv, args)
    shrank_all, as_ideal_all, ideal_fails = [], [], []
    for task in args.tasks:
        classes = list(get_task(task).classes[1:])
        for source, target in DIRECTIONS:
            key = f"{task} {source}→{target}"
            reports = {seed: measure(task, source, target, profile, seed, device)
                       for seed in seeds}
            report["experiments"][key] = {str(s): r for s, r in reports.items()}
            print(f"\n## {key} ({profile.name})\n\n{table(reports, classes)}", flush=True)
            shrank_all += [len(r["shrank"]) == len(classes) for r in reports.values()]
            as_ideal_all += [all(verdict(r, c) != "NO" for c in classes)
                             for r in reports.values()]
            ideal = next(iter(reports.values()))["ideal_shrinks"]  # the sets do not depend on seed
            ideal_fails += [f"{key} {c} ({ideal[c]:.0%})" for c in classes if ideal[c] < 1]
    n = len(shrank_all)
    print(f"\nthe gap shrank for every class in {sum(shrank_all)} of {n} runs")
    print(f"every class shrank or ended within the ideal translations' range in "
          f"{sum(as_ideal_all)} of {n} runs")
    print("classes whose gap not every ideal set shrinks (share of sets that do): "
          + (", ".join(ideal_fails) or "none"))
    print("\nwhat the translations are worth to the segmenter (chapter 2 shows this table):\n\n"
          + ceiling_markdown(report)[1])
    atomic_write_text(args.out, json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
