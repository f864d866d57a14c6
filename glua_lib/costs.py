"""What the book costs on a machine: measured durations, scaled by the machine's demo speed.

The one figure machines are compared by is the ``demo`` segmenter's training steps per second on
one CPU thread (``benchmarks/seg_cost.py --profile demo --steps 30 --device cpu``). A reference
file (``benchmarks/results/book-times-demo.json``, written by ``benchmarks/book_times.py`` after a
``make test``) holds the durations measured on one machine and that machine's speed; the book's
time is almost all training, which scales with the speed, so :func:`expected` scales them to
another. Used by ``benchmarks/machine_speed.py`` and by the introduction's table.
"""
from __future__ import annotations

from typing import Mapping

# Speeds measured on this project's two classes of machine (benchmarks/RESULTS.md, issue 26).
SPEED_CLASSES = {"slow class (AVX2, 2.24 steps/s)": 2.24, "fast class (10.8 steps/s)": 10.8}


def expected(reference: Mapping, speed: float) -> dict[str, float]:
    """Every duration of ``reference`` (seconds, measured at ``reference['steps_per_s']``)
    scaled to a machine of ``speed`` steps/s: ``{"make test": s, "make book": s, chapter: s}``."""
    scale = float(reference["steps_per_s"]) / speed
    out = {name: float(reference[key]) * scale
           for name, key in (("make test", "make_test_s"), ("make book", "make_book_s"),
                             ("its runs and chapters", "execute_book_s"))
           if reference.get(key) is not None}
    out.update({name: float(s) * scale for name, s in reference.get("chapters", {}).items()})
    return out


def minutes(seconds: float) -> str:
    """``"45 s"`` below 90 seconds, ``"12 min"`` above."""
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"


def times_table(reference: Mapping, speeds: Mapping[str, float] = SPEED_CLASSES) -> str:
    """A Markdown table: each chapter's execution in the book build and ``make test`` as
    measured in ``reference``, and scaled to each of ``speeds`` (estimates, so labelled)."""
    here = f"measured ({reference['cpu']}, {reference['steps_per_s']:.2f} steps/s)"
    head = ["", here, *(f"estimated, {name}" for name in speeds)]
    scaled = {name: expected(reference, s) for name, s in speeds.items()}
    rows = [*(f"chapter {c.split('_', 1)[0].lstrip('0')} in the book build"
              for c in reference.get("chapters", {})), "make test"]
    keys = [*reference.get("chapters", {}), "make test"]
    measured = expected(reference, float(reference["steps_per_s"]))
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for row, key in zip(rows, keys):
        if key in measured:
            lines.append("| " + " | ".join([row, minutes(measured[key]),
                                            *(minutes(scaled[n][key]) for n in speeds)]) + " |")
    return "\n".join(lines)


__all__ = ["SPEED_CLASSES", "expected", "minutes", "times_table"]
