"""This machine's demo speed, and how long `make test`, `make book` and each chapter should take here.

    python benchmarks/machine_speed.py [--steps 30] [--reference benchmarks/results/book-times-demo.json]
        [--save _build/speed.json]

The speed is the one figure the project compares machines by: the ``demo`` segmenter's training
steps per second on the CPU with **one** torch thread (``benchmarks/seg_cost.py --profile demo
--steps 30 --device cpu`` with ``OMP_NUM_THREADS=1``); machines of this project's kind give 2 to
11. The expected durations are the reference file's measured ones (written by
``benchmarks/book_times.py`` after a ``make test``) scaled by the ratio of the two speeds: the
book's time is almost all training, which scales with it. With a second reference measured at a
low speed (``--slow-reference``, on by default when the file is there), each duration is fitted
as ``a + b / speed`` through both (:func:`glua_lib.costs.expected`): the part that does not scale
(pytest's start, the browser, the HTML build) no longer inflates a slow machine's estimate.
``make test`` and ``make book`` print this before they start, so a slow run is explained, not
mysterious. Under ``benchmarks/slow_cores.py`` (``$GLUA_EMULATED`` set) the CPU's name says so.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import seg_cost  # noqa: E402

from glua_lib.config import get_profile  # noqa: E402
from glua_lib.costs import expected, minutes  # noqa: E402
from glua_lib.runtime import cpu_name  # noqa: E402
from glua_lib.seg.train import SegConfig  # noqa: E402

REFERENCE = Path(__file__).resolve().parent / "results" / "book-times-demo.json"
SLOW_REFERENCE = REFERENCE.with_name("book-times-demo-slow.json")


def measure_speed(steps: int = 30) -> float:
    """Demo segmenter steps per second on the CPU with one torch thread (seg_cost's measure)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        profile = get_profile("demo")
        result = seg_cost.measure(SegConfig.from_profile(profile), profile.slice_size,
                                  torch.device("cpu"), steps)
    finally:
        torch.set_num_threads(threads)
    return float(result["steps_per_s"])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30, help="timed steps (default 30)")
    parser.add_argument("--reference", type=Path, default=REFERENCE,
                        help="measured durations to scale (default: %(default)s)")
    parser.add_argument("--slow-reference", type=Path, default=SLOW_REFERENCE,
                        help="the same durations measured at a low speed, if the file exists "
                             "(default: %(default)s)")
    parser.add_argument("--save", type=Path, default=None, help="also write the speed as JSON")
    args = parser.parse_args(argv)
    speed = measure_speed(args.steps)
    cpu = cpu_name()
    if os.environ.get("GLUA_EMULATED"):  # set by benchmarks/slow_cores.py
        cpu = f"{cpu}, emulating {os.environ['GLUA_EMULATED']}"
    print(f"machine speed: {speed:.2f} demo steps/s on {cpu} (seg_cost.py --profile demo, 1 "
          "thread; this project's machines give 2 to 11)")
    if args.save:
        args.save.parent.mkdir(parents=True, exist_ok=True)
        args.save.write_text(json.dumps({"steps_per_s": speed, "cpu": cpu}) + "\n")
    if not args.reference.is_file():
        print(f"no reference durations ({args.reference}): no estimate")
        return 0
    ref = json.loads(args.reference.read_text())
    slow = (json.loads(args.slow_reference.read_text())
            if args.slow_reference and args.slow_reference.is_file() else None)
    times = expected(ref, speed, slow)
    chapters = [name for name in ref.get("chapters", {})]
    measured = [(r, path) for r, path in ((ref, args.reference), (slow, args.slow_reference))
                if r is not None]
    print("expected here: " + ", ".join(f"{k} ≈ {minutes(v)}" for k, v in times.items()
                                        if k not in chapters)
          + (f"; then each chapter {minutes(min(times[c] for c in chapters))} to "
             f"{minutes(max(times[c] for c in chapters))}" if chapters else "")
          + " (measured at " + " and at ".join(
              f"{r['steps_per_s']:.2f} steps/s on {r['cpu']}, commit {r['code_version'][:10]} "
              f"({path.name})" for r, path in measured) + ")")
    return 0


if __name__ == "__main__":
    sys.exit(main())
