"""Two ablation results files against each other, method by method: what changed when a
default did.

    python benchmarks/compare_ablations.py AFTER.json BEFORE.json [--methods none global ...]

For every method and experiment both files have, the paired difference of average Dice,
AFTER − BEFORE, seed by seed and test volume by test volume, with its 95 % Student-t interval
over the seeds, and a last row pooling every task, direction and seed
(:func:`glua_lib.results.reports_difference`); **bold**: the interval excludes zero, a finding.
Methods whose defaults did not change show how far the same training moves on its own (another
machine's floating point, for instance); the two files must have scored the same seeds on the
same test volumes. Prints a Markdown table; reads nothing but the two files.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from glua_lib.results import load_report, reports_difference  # noqa: E402


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("after", help="results file of benchmarks/ablation.py, after the change")
    parser.add_argument("before", help="the same, before it")
    parser.add_argument("--methods", nargs="+", default=None,
                        help="default: every method both files have")
    args = parser.parse_args(argv)
    _, text = reports_difference(load_report(args.after), load_report(args.before),
                                 args.methods)
    print(f"{args.after} − {args.before}:\n\n{text}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
