"""Results tables in the paper's layout: one row per method, a column per class, then the average.

Input: for each method, the per-volume metrics of one run (what :func:`glua_lib.seg.predict.
evaluate_folders` returns, ``{"classes": [...], "volumes": {subject: {"dice": {...}, "assd":
{...}, ...}}}``) or a list of them, one per seed. Cells are ``mean (std)`` over all
(seed, volume) values pooled together, so with one seed the std is over test volumes and with
several it is the spread over volumes *and* seeds; the JSON form also gives ``seed_std``, the std
of the per-seed means, to separate the two. Dice is shown in %, ASSD in mm.

*Gap closed* = (method − none) / (oracle − none) of the mean average Dice: 0 for the no-adaptation
baseline, 1 for the supervised upper bound. It needs rows named ``none`` and ``oracle`` (or the
names passed as ``baseline``/``upper``) and is ``None`` where it is undefined.

Everything is plain Python (lists, dicts, floats): no pandas.
"""
from __future__ import annotations

import json
import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from glua_lib.io import atomic_write_text

METRICS = {"dice": ("Dice (%)", 100.0), "assd": ("ASSD (mm)", 1.0)}


@dataclass
class Cell:
    """One table cell: mean and std (in the table's display unit) over ``n`` values."""

    mean: float | None
    std: float | None
    n: int
    seed_std: float | None = None  # std over seeds of the per-seed means (None with one seed)

    def format(self, digits: int = 1) -> str:
        if self.mean is None:
            return "–"
        return f"{self.mean:.{digits}f} ({self.std:.{digits}f})"


@dataclass
class ResultsTable:
    """A metric's table: ``rows[i]`` belongs to ``methods[i]``; columns are classes + average."""

    metric: str  # "dice" or "assd"
    title: str  # e.g. "Dice (%)"
    columns: list[str]  # class names, then "average"
    methods: list[str]
    rows: list[list[Cell]]
    n_seeds: dict[str, int]
    gap_closed: dict[str, float | None] = field(default_factory=dict)  # Dice tables only
    protocol: str = "per-volume"  # "per-volume" or "pooled" (glua_lib.metrics.PROTOCOLS)
    assd_unit: str = "mm"  # "mm" or "voxel"

    @property
    def spread(self) -> str:
        """The evaluation protocol and what a cell's mean (std) is over, stated next to the
        table, so its figures can be set beside a paper's."""
        if self.protocol == "pooled":
            return ("pooled protocol (GLUA's metric.py): test volumes pooled into one figure, "
                    "mean (std) over seeds")
        return "per-volume protocol (SIFA's): mean (std) over volumes"

    def cell(self, method: str, column: str) -> Cell:
        return self.rows[self.methods.index(method)][self.columns.index(column)]

    def _grid(self, digits: int) -> list[list[str]]:
        header = ["method", *self.columns] + (["gap closed"] if self.gap_closed else [])
        grid = [header]
        for method, row in zip(self.methods, self.rows):
            line = [method, *(c.format(digits) for c in row)]
            if self.gap_closed:
                g = self.gap_closed.get(method)
                line.append("–" if g is None else f"{g:.2f}")
            grid.append(line)
        return grid

    def to_markdown(self, digits: int = 1) -> str:
        grid = self._grid(digits)
        lines = ["| " + " | ".join(grid[0]) + " |",
                 "|" + "|".join("---" for _ in grid[0]) + "|"]
        lines += ["| " + " | ".join(r) + " |" for r in grid[1:]]
        return f"**{self.title}**, {self.spread}\n\n" + "\n".join(lines)

    def to_str(self, digits: int = 1) -> str:
        grid = self._grid(digits)
        widths = [max(len(r[i]) for r in grid) for i in range(len(grid[0]))]
        fmt = lambda r: "  ".join(c.ljust(w) if i == 0 else c.rjust(w)  # noqa: E731
                                  for i, (c, w) in enumerate(zip(r, widths)))
        rule = "-" * len(fmt(grid[0]))
        return "\n".join([f"{self.title}, {self.spread}", fmt(grid[0]), rule,
                          *map(fmt, grid[1:])])

    __str__ = to_str

    def to_dict(self) -> dict:
        return {
            "metric": self.metric, "title": self.title, "columns": list(self.columns),
            "protocol": self.protocol, "assd_unit": self.assd_unit,
            "n_seeds": dict(self.n_seeds),
            "rows": {m: {c: {"mean": x.mean, "std": x.std, "n": x.n, "seed_std": x.seed_std}
                         for c, x in zip(self.columns, row)}
                     for m, row in zip(self.methods, self.rows)},
            **({"gap_closed": dict(self.gap_closed)} if self.gap_closed else {}),
        }


def _runs(value) -> list[Mapping]:
    runs = [value] if isinstance(value, Mapping) else list(value)
    if not runs:
        raise ValueError("a method has no runs")
    for r in runs:
        if "volumes" not in r or not r["volumes"]:
            raise ValueError("each run must be a per-volume metrics dict with a non-empty "
                             "'volumes' entry (from evaluate_folders)")
    return runs


def _foreground(runs_by_method: Mapping[str, list[Mapping]],
                classes: Sequence[str] | None) -> list[str]:
    if classes is not None:
        return list(classes)
    first = next(iter(runs_by_method.values()))[0]
    if "classes" in first:
        return list(first["classes"])[1:]
    return list(next(iter(first["volumes"].values()))["dice"])


def _cell(per_seed: list[list[float]], scale: float) -> Cell:
    pooled = np.asarray([v for seed in per_seed for v in seed], dtype=np.float64) * scale
    if not np.isfinite(pooled).all():
        raise ValueError("non-finite metric values; metrics.py never produces them")
    means = [float(np.mean(s)) * scale for s in per_seed]
    return Cell(mean=float(pooled.mean()), std=float(pooled.std()), n=int(pooled.size),
                seed_std=float(np.std(means)) if len(means) > 1 else None)


def make_table(results: Mapping[str, Mapping | Sequence[Mapping]], metric: str = "dice",
               classes: Sequence[str] | None = None, baseline: str = "none",
               upper: str = "oracle") -> ResultsTable:
    """One metric's table from ``{method: per-volume metrics or [one per seed]}``.

    ``classes`` are the foreground class names (default: from the first run). Rows keep the
    order of ``results``. A method missing a class or volume metrics raises ``ValueError``.
    """
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose one of {sorted(METRICS)}")
    if not results:
        raise ValueError("no methods to tabulate")
    runs_by_method = {m: _runs(v) for m, v in results.items()}
    fg = _foreground(runs_by_method, classes)
    title, scale = METRICS[metric]
    kinds = {(r.get("protocol", "per-volume"), r.get("assd_unit", "mm"))
             for runs in runs_by_method.values() for r in runs}
    if len(kinds) > 1:
        raise ValueError(f"the results mix evaluation protocols / ASSD units {sorted(kinds)}; "
                         "evaluate every method the same way")
    protocol, assd_unit = kinds.pop()
    if metric == "assd" and assd_unit == "voxel":
        title = "ASSD (voxels)"
    rows = []
    for method, runs in runs_by_method.items():
        row = []
        for c in fg:
            try:
                row.append(_cell([[v[metric][c] for v in r["volumes"].values()] for r in runs],
                                 scale))
            except KeyError:
                raise ValueError(f"method {method!r} has no {metric} for class {c!r}") from None
        row.append(_cell([[float(np.mean([v[metric][c] for c in fg]))
                           for v in r["volumes"].values()] for r in runs], scale))
        rows.append(row)
    table = ResultsTable(metric=metric, title=title, columns=[*fg, "average"],
                         methods=list(runs_by_method), rows=rows,
                         n_seeds={m: len(r) for m, r in runs_by_method.items()},
                         protocol=protocol, assd_unit=assd_unit)
    if metric == "dice":
        avg = {m: row[-1].mean for m, row in zip(table.methods, rows)}
        table.gap_closed = gap_closed(avg, baseline=baseline, upper=upper)
    return table


def average_dice(metrics: Mapping) -> float | None:
    """Average foreground Dice (%) of one run over its test volumes: the ``average`` column of
    its row in :func:`make_table` (``metrics``: one :func:`glua_lib.pipeline.evaluate_run`
    result)."""
    return make_table({"run": metrics}).cell("run", "average").mean


def paired_difference(a: Sequence[float], b: Sequence[float],
                      confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean of the paired differences ``a[i] - b[i]`` (e.g. one method's average Dice minus
    another's, seed by seed) and its two-sided Student-t interval over the ``n`` pairs:
    ``(mean, low, high)``. A difference is a finding only when the interval excludes zero.

    Raises:
        ValueError: fewer than two pairs, or ``a`` and ``b`` of different lengths.
    """
    from scipy import stats

    if len(a) != len(b) or len(a) < 2:
        raise ValueError(f"need two or more pairs of equal length, got {len(a)} and {len(b)}")
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    mean, sem = float(d.mean()), float(d.std(ddof=1) / np.sqrt(d.size))
    half = float(stats.t.ppf(0.5 + confidence / 2, d.size - 1)) * sem
    return mean, mean - half, mean + half


def command_lines(command: str, width: int = 80) -> str:
    """A results file's ``command`` as a shell would take it, continued over lines (a backslash
    ends each but the last; the next is indented by four spaces) of at most ``width``
    characters before the backslash where it can (a longer word stands alone). Words are split
    as the shell splits them, so a quoted argument with spaces (``'n_down=1 w_sem=1.0'``)
    stays whole on one line."""
    lines: list[str] = []
    for word in (shlex.quote(w) for w in shlex.split(command)):
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(("    " if lines else "") + word)
    return " \\\n".join(lines)


def is_finding(difference: Sequence[float]) -> bool:
    """Whether a paired difference ``(mean, low, high)`` (:func:`paired_difference`) is a finding:
    its interval excludes zero."""
    _, low, high = difference
    return bool(low > 0 or high < 0)


def describe_difference(difference: Sequence[float]) -> str:
    """A paired difference ``(mean, low, high)`` as the book writes it, in points with one
    decimal: ``"+1.2 [-0.3, +2.7], not a finding"`` (:func:`is_finding`)."""
    mean, low, high = difference
    return (f"{mean:+.1f} [{low:+.1f}, {high:+.1f}], "
            + ("a finding" if is_finding(difference) else "not a finding"))


def volume_averages(run: Mapping, classes: Sequence[str] | None = None) -> dict[str, float]:
    """Average foreground Dice (%) of each test volume of one evaluation result (``run``: one
    :func:`glua_lib.pipeline.evaluate_run` result; ``classes``: the foreground classes, default
    its own), as the ``average`` column of :func:`make_table` computes it per volume."""
    fg = _foreground({"run": _runs(run)}, classes)
    return {name: 100.0 * float(np.mean([v["dice"][c] for c in fg]))
            for name, v in run["volumes"].items()}


def seed_differences(a: Sequence[Mapping], b: Sequence[Mapping]) -> list[float]:
    """Per seed, the mean over test volumes of ``a``'s average Dice minus ``b``'s on the same
    volume (``a``, ``b``: one evaluation result per seed, in the same seed order): the paired
    differences :func:`method_difference` takes its interval over.

    Raises:
        ValueError: different numbers of seeds, or a seed whose two runs were scored on
            different test volumes.
    """
    if len(a) != len(b):
        raise ValueError(f"{len(a)} and {len(b)} runs: pair them seed by seed")
    out = []
    for i, (ra, rb) in enumerate(zip(a, b)):
        va, vb = volume_averages(ra), volume_averages(rb)
        if va.keys() != vb.keys():
            raise ValueError(f"seed #{i}: the two runs were scored on different volumes "
                             f"({sorted(va)} and {sorted(vb)})")
        out.append(float(np.mean([va[k] - vb[k] for k in va])))
    return out


def method_difference(report: Mapping, experiment: str, method: str, other: str,
                      confidence: float = 0.95) -> dict:
    """``method`` − ``other`` in average Dice points in one experiment of a results file,
    paired by seed and test volume: each seed gives the mean over its test volumes of the
    per-volume difference (:func:`seed_differences`; both runs of a seed saw the same data and
    volumes), and the interval is the Student-t interval over the seeds
    (:func:`paired_difference`). The seeds are the independent replicates (a seed trains its own
    style model and segmenters); the volumes of one seed share its models, so they enter through
    the seed's mean rather than as replicates of their own.

    Returns ``{"mean", "low", "high", "per_seed", "n_seeds", "n_volumes", "finding"}``;
    ``finding``: the interval excludes zero.
    """
    per = report["experiments"][experiment]["per_volume"]
    for m in (method, other):
        if m not in per:
            raise KeyError(f"experiment {experiment!r} has no runs of {m!r}; it has "
                           f"{sorted(per)}")
    diffs = seed_differences(per[method], per[other])
    mean, low, high = paired_difference(diffs, [0.0] * len(diffs), confidence)
    return {"mean": mean, "low": low, "high": high, "per_seed": diffs, "n_seeds": len(diffs),
            "n_volumes": len(per[method][0]["volumes"]),
            "finding": is_finding((mean, low, high))}


POOLED = "all, pooled"  # the row name of :func:`pooled_difference` in differences_markdown


def pooled_difference(report: Mapping, method: str, other: str,
                      confidence: float = 0.95) -> dict | None:
    """``method`` − ``other`` over every experiment of a results file that has both: each
    experiment's per-seed differences (:func:`method_difference`) are the units, one per task,
    direction and seed, and the interval is Student's t over all of them.

    It treats the experiments as exchangeable: the spread *between* them enters the interval
    with the spread between seeds, so it is wide where the experiments disagree, and it says
    nothing about any one of them. ``None`` when fewer than two experiments have both methods.
    Returns :func:`method_difference`'s keys (``n_seeds``: the units) and ``n_experiments``.
    """
    found = [method_difference(report, key, method, other, confidence)
             for key, exp in report["experiments"].items()
             if method in exp["per_volume"] and other in exp["per_volume"]]
    if len(found) < 2:
        return None
    units = [d for f in found for d in f["per_seed"]]
    mean, low, high = paired_difference(units, [0.0] * len(units), confidence)
    return {"mean": mean, "low": low, "high": high, "per_seed": units, "n_seeds": len(units),
            "n_volumes": found[0]["n_volumes"], "n_experiments": len(found),
            "finding": is_finding((mean, low, high))}


def _interval_text(difference: Sequence[float] | None) -> str:
    """``mean [low, high]`` of a ``(mean, low, high)`` difference, bold when it is a finding
    (:func:`is_finding`); ``–`` for none."""
    if difference is None:
        return "–"
    mean, low, high = difference
    text = f"{mean:+.1f} [{low:+.1f}, {high:+.1f}]"
    return f"**{text}**" if is_finding(difference) else text


def _interval_cell(d: Mapping | None) -> str:
    """:func:`_interval_text` of a :func:`method_difference` result (``–`` for none)."""
    return "–" if d is None else _interval_text((d["mean"], d["low"], d["high"]))


def differences_markdown(report: Mapping, pairs: Sequence[tuple[str, str]],
                         confidence: float = 0.95, pooled: bool = False,
                         names: Sequence[str] | None = None) -> tuple[dict, str]:
    """:func:`method_difference` of every pair ``(method, other)`` in every experiment of a
    results file that has both: ``({experiment: {"method − other": difference}}, markdown)``,
    one row per experiment, each cell ``mean [low, high]`` with the findings in bold.
    ``pooled``: a last row, :data:`POOLED`, of :func:`pooled_difference` (where two experiments
    or more have the pair). ``names``: one per pair, for the keys and columns instead of
    ``"method − other"``."""
    names = list(names) if names is not None else [f"{a} − {b}" for a, b in pairs]
    if len(names) != len(pairs):
        raise ValueError(f"{len(names)} names for {len(pairs)} pairs")
    found: dict[str, dict] = {}
    for key, exp in report["experiments"].items():
        found[key] = {n: method_difference(report, key, a, b, confidence)
                      for n, (a, b) in zip(names, pairs)
                      if a in exp["per_volume"] and b in exp["per_volume"]}
    pooled_row = {n: pooled_difference(report, a, b, confidence)
                  for n, (a, b) in zip(names, pairs)} if pooled else {}
    pooled_row = {k: d for k, d in pooled_row.items() if d is not None}
    lines = ["| experiment | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for key, row in found.items():
        lines.append(f"| {key} | " + " | ".join(_interval_cell(row.get(n)) for n in names) + " |")
    seeds = sorted({d["n_seeds"] for row in found.values() for d in row.values()})
    volumes = sorted({d["n_volumes"] for row in found.values() for d in row.values()})
    note = (f"Paired differences of average Dice (points), mean [{100 * confidence:.0f} % "
            f"interval] over {', '.join(map(str, seeds))} seeds of "
            f"{', '.join(map(str, volumes))} test volumes each (per seed, the mean over its "
            "volumes of the per-volume difference; Student-t over seeds); **bold**: the "
            "interval excludes zero, a finding.")
    if pooled_row:
        units = sorted({d["n_seeds"] for d in pooled_row.values()})
        lines.append(f"| {POOLED} | " + " | ".join(_interval_cell(pooled_row.get(n))
                                                   for n in names) + " |")
        note += (f" *{POOLED}*: every task, direction and seed one unit "
                 f"({', '.join(map(str, units))} units), Student-t over them.")
        found[POOLED] = pooled_row
    return found, note + "\n\n" + "\n".join(lines)


def reports_difference(after: Mapping, before: Mapping, methods: Sequence[str] | None = None,
                       confidence: float = 0.95) -> tuple[dict, str]:
    """Each method's average Dice in one results file minus the same method's in another
    (``after`` − ``before``, e.g. the ablation after a default changed against the one before),
    in every experiment both files have, paired by seed and test volume as
    :func:`method_difference` pairs two methods of one file; the last row pools every task,
    direction and seed (:func:`pooled_difference`). ``methods``: default, every method both files
    have in their first shared experiment. The two files must have scored the same seeds on the
    same test volumes. Returns :func:`differences_markdown`'s ``(found, markdown)``, the columns
    named by method.

    Raises:
        ValueError: no experiment in both files.
    """
    shared = [k for k in after["experiments"] if k in before["experiments"]]
    if not shared:
        raise ValueError(f"no experiment in both files: {sorted(after['experiments'])} and "
                         f"{sorted(before['experiments'])}")
    first = (after["experiments"][shared[0]]["per_volume"],
             before["experiments"][shared[0]]["per_volume"])
    methods = list(methods) if methods else [m for m in first[0] if m in first[1]]
    merged = {"experiments": {key: {"per_volume": {
        **{m: after["experiments"][key]["per_volume"][m] for m in methods
           if m in after["experiments"][key]["per_volume"]},
        **{f"{m} before": before["experiments"][key]["per_volume"][m] for m in methods
           if m in before["experiments"][key]["per_volume"]}}} for key in shared}}
    return differences_markdown(merged, [(m, f"{m} before") for m in methods], confidence,
                                pooled=True, names=methods)


PROFILE_TRANSLATOR = "(the profile's translator)"  # candidate "": no StyleConfig change


def candidates_markdown(rows: Sequence[Mapping], reference: str,
                        confidence: float = 0.95) -> tuple[dict, str]:
    """Translators compared by what the segmenter gets from them
    (``benchmarks/translator_candidates.py``): one row per ``candidate``, one column per
    (task, direction), each cell the ``global`` average Dice (%) and in brackets the source-side
    check, means over seeds; first a row with the ceiling (``global`` on ideal translations).
    Then each candidate's paired difference to ``reference`` over all (task, direction, seed)
    units, for ``global`` and for the source side, ``mean [low, high]`` (:func:`paired_difference`;
    bold: a finding). ``rows``: dicts with ``task``, ``direction``, ``seed``, ``candidate``,
    ``global``, ``source_side``, ``ceiling``; the candidate ``""`` (no change) is shown as
    :data:`PROFILE_TRANSLATOR`. Returns ``({candidate: {"global": (mean, low,
    high), "source_side": ...}}, markdown)`` (the reference's entry is empty).

    Raises:
        ValueError: ``reference`` is not a candidate of ``rows``, candidates were measured
            on different units, or one unit twice.
    """
    arrows = {"mr2ct": "MR→CT", "ct2mr": "CT→MR"}
    names = list(dict.fromkeys(r["candidate"] for r in rows))
    if reference not in names:
        raise ValueError(f"reference {reference!r} is not among the candidates {names}")
    columns = list(dict.fromkeys((r["task"], r["direction"]) for r in rows))
    units = sorted({(r["task"], r["direction"], r["seed"]) for r in rows})
    by = {(r["candidate"], r["task"], r["direction"], r["seed"]): r for r in rows}
    if len(by) < len(rows):
        raise ValueError("a candidate appears twice for one (task, direction, seed): rows from "
                         "several files must not overlap")
    missing = [(n, u) for n in names for u in units if (n, *u) not in by]
    if missing:
        raise ValueError(f"candidate {missing[0][0]!r} lacks the unit {missing[0][1]}: every "
                         "candidate must be measured on the same tasks, directions and seeds")

    def mean_of(name, column, field):
        return float(np.mean([by[(name, *column, u[2])][field] for u in units
                              if u[:2] == column]))

    head = [f"{t} {arrows.get(d, d)}" for t, d in columns]
    lines = ["| translator | " + " | ".join(head) + " | mean | − reference: target "
             "| − reference: source side |", "|---|" + "---|" * (len(columns) + 3)]
    ceiling = [mean_of(names[0], c, "ceiling") for c in columns]
    lines.append("| ceiling (ideal translations) | " + " | ".join(f"{v:.1f}" for v in ceiling)
                 + f" | {np.mean(ceiling):.1f} | | |")
    found: dict[str, dict] = {}
    for name in names:
        cells = [f"{mean_of(name, c, 'global'):.1f} ({mean_of(name, c, 'source_side'):.1f})"
                 for c in columns]
        average = (np.mean([mean_of(name, c, "global") for c in columns]),
                   np.mean([mean_of(name, c, "source_side") for c in columns]))
        found[name] = {}
        if name != reference and len(units) > 1:
            for what in ("global", "source_side"):
                found[name][what] = paired_difference(
                    [by[(name, *u)][what] for u in units],
                    [by[(reference, *u)][what] for u in units], confidence)
        diffs = [_interval_text(found[name].get(f)) for f in ("global", "source_side")]
        lines.append(f"| {name or PROFILE_TRANSLATOR} | " + " | ".join(cells)
                     + f" | {average[0]:.1f} ({average[1]:.1f}) | " + " | ".join(diffs) + " |")
    seeds = sorted({u[2] for u in units})
    note = (f"`global`'s average Dice (%) on the real target test volumes, and in brackets on the "
            f"translated source test volumes (the source-side check), mean over seed(s) "
            f"{', '.join(map(str, seeds))}; differences to {reference or PROFILE_TRANSLATOR} "
            "paired over the "
            f"{len(units)} (task, direction, seed) units, mean [{100 * confidence:.0f} % "
            "interval]; **bold**: the interval excludes zero, a finding.")
    return found, note + "\n\n" + "\n".join(lines)


def ceiling_markdown(report: Mapping, confidence: float = 0.95) -> tuple[list[dict], str]:
    """What the translations are worth to the segmenter, from ``make style-quality``'s file
    (``benchmarks/style_quality.py``): one row per experiment (task and direction) with the
    target test Dice (%, mean of the classes, then over seeds) of ``global``, of its ceiling (the
    same segmenter on ideal translations) and of ``oracle``; ``global`` − ceiling paired by seed,
    ``mean [low, high]`` (:func:`paired_difference`, Student-t over the seeds); and the judge
    (``oracle``) on the source test volumes as they are, translated and ideally translated (the
    source-side content check). Returns ``(rows, markdown)``; each row has ``experiment``,
    ``global``, ``ceiling``, ``oracle``, ``difference`` ``(mean, low, high)`` (``None`` with one
    seed), ``judge`` ``{"source", "translated", "ideal"}`` and ``n_seeds``.
    """
    def average(per_class: Mapping) -> float:
        return float(np.mean(list(per_class.values())))

    rows = []
    for key, by_seed in report["experiments"].items():
        seeds = list(by_seed.values())
        per = {k: [average(r[f"dice_{k}"]) for r in seeds]
               for k in ("global", "global_ideal", "oracle")}
        rows.append({"experiment": key, "n_seeds": len(seeds),
                     "global": float(np.mean(per["global"])),
                     "ceiling": float(np.mean(per["global_ideal"])),
                     "oracle": float(np.mean(per["oracle"])),
                     "difference": (paired_difference(per["global"], per["global_ideal"],
                                                      confidence) if len(seeds) > 1 else None),
                     "judge": {k: float(np.mean([average(r[f"judge_{k}"]) for r in seeds]))
                               for k in ("source", "translated", "ideal")}})
    lines = ["| experiment | `global` | ceiling | `oracle` | `global` − ceiling | "
             "judge: source → translated (ideal) |", "|---|---|---|---|---|---|"]
    for r in rows:
        j = r["judge"]
        lines.append(f"| {r['experiment']} | {r['global']:.1f} | {r['ceiling']:.1f} | "
                     f"{r['oracle']:.1f} | {_interval_text(r['difference'])} | "
                     f"{j['source']:.1f} → {j['translated']:.1f} "
                     f"({j['ideal']:.1f}) |")
    seeds = sorted({r["n_seeds"] for r in rows})
    note = (f"Target test Dice (%, mean of the classes), mean over {', '.join(map(str, seeds))} "
            f"seeds; `global` − ceiling paired by seed, mean [{100 * confidence:.0f} % interval] "
            "(**bold**: a finding); the judge (`oracle`) on the source test volumes as they are, "
            "translated and ideally translated.")
    return rows, note + "\n\n" + "\n".join(lines)


def penalised_pairs(results: Mapping[str, Mapping], classes: Sequence[str]) -> dict[str, int]:
    """Per run (``results``: name → one :func:`glua_lib.pipeline.evaluate_run` result), how many
    (test volume, class) pairs of ``classes`` were scored with the empty-case penalty rather than
    measured (``status`` other than ``"ok"``, :func:`glua_lib.metrics.binary_metrics`)."""
    return {name: sum(vol["status"][c] != "ok" for vol in r["volumes"].values() for c in classes)
            for name, r in results.items()}


def class_differences(table: ResultsTable, method: str, other: str,
                      classes: Sequence[str] | None = None) -> dict[str, float]:
    """Per class, ``method``'s mean minus ``other``'s in one :class:`ResultsTable` (e.g. the
    Dice ``oracle`` − ``none``: what the domain gap costs each class)."""
    classes = [c for c in table.columns if c != "average"] if classes is None else classes
    return {c: table.cell(method, c).mean - table.cell(other, c).mean for c in classes}


def gap_closed(average_dice: Mapping[str, float], baseline: str = "none",
               upper: str = "oracle") -> dict[str, float | None]:
    """``(method − baseline) / (upper − baseline)`` for every method; ``{}`` without both rows,
    ``None`` values when the upper bound does not beat the baseline (undefined)."""
    if baseline not in average_dice or upper not in average_dice:
        return {}
    lo, hi = average_dice[baseline], average_dice[upper]
    if lo is None or hi is None or hi - lo <= 1e-12:
        return {m: None for m in average_dice}
    return {m: None if v is None else float((v - lo) / (hi - lo)) for m, v in average_dice.items()}


def make_tables(results: Mapping[str, Mapping | Sequence[Mapping]],
                classes: Sequence[str] | None = None, **kwargs) -> dict[str, ResultsTable]:
    """The Dice and the ASSD table: ``{"dice": ResultsTable, "assd": ResultsTable}``."""
    return {m: make_table(results, m, classes, **kwargs) for m in METRICS}


def tables_markdown(tables: Mapping[str, ResultsTable], digits: int = 1) -> str:
    return "\n\n".join(t.to_markdown(digits) for t in tables.values())


def tables_str(tables: Mapping[str, ResultsTable], digits: int = 1) -> str:
    return "\n\n".join(t.to_str(digits) for t in tables.values())


def save_results(path: str | os.PathLike, per_volume: Mapping,
                 tables: Mapping[str, ResultsTable] | None = None,
                 name: str | None = None) -> Path:
    """Write per-volume metrics (and tables and the row name, if given) as JSON atomically:
    ``python -m glua_lib evaluate --out``'s file, read back by :func:`load_evaluation`."""
    path = Path(path)
    data = {**({"name": name} if name is not None else {}), "per_volume": per_volume}
    if tables:
        data["tables"] = {k: t.to_dict() for k, t in tables.items()}
    atomic_write_text(path, json.dumps(data, indent=2) + "\n")
    return path


def load_evaluation(path: str | os.PathLike) -> tuple[str, dict]:
    """``(name, per-volume metrics)`` of a file written by ``python -m glua_lib evaluate --out``
    (:func:`save_results`). The name is the file's ``--name`` (files written before it was
    stored: the row of their tables, else the file name's stem).

    Raises ``FileNotFoundError`` / ``ValueError`` naming the file and what to do when it is
    missing, not JSON, or holds no per-volume metrics.
    """
    path = Path(path)
    redo = "write it with `python -m glua_lib evaluate --pred PRED --gt PREP --out FILE`"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such results file; {redo}")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not a JSON results file ({err}); {redo}") from None
    per_volume = data.get("per_volume") if isinstance(data, dict) else None
    if not isinstance(per_volume, dict) or not per_volume.get("volumes") \
            or "classes" not in per_volume:
        raise ValueError(f"{path}: holds no per-volume metrics of `evaluate` (a 'per_volume' "
                         f"entry with 'classes' and 'volumes'); {redo}")
    for subject, v in per_volume["volumes"].items():
        for metric in METRICS:
            bad = {c: x for c, x in v.get(metric, {}).items()
                   if not isinstance(x, (int, float)) or not np.isfinite(x)}
            if metric not in v or bad:
                raise ValueError(f"{path}: volume {subject!r} has "
                                 + (f"non-finite {metric} {bad}" if bad else f"no {metric}")
                                 + f" (evaluate never writes that; the file was edited?); {redo}")
    name = data.get("name")
    if name is None:
        rows = list(data.get("tables", {}).get("dice", {}).get("rows", {}))
        name = rows[0] if len(rows) == 1 else path.stem
    return str(name), per_volume


def combine_evaluations(paths: Sequence[str | os.PathLike],
                        names: Sequence[str] | None = None) -> dict[str, dict]:
    """``{name: per-volume metrics}`` of several :func:`load_evaluation` files, in their order,
    for :func:`make_tables` (rows named ``none`` and ``oracle`` give the gap closed).

    ``names`` replace the files' own names. The files must be comparable: same task, classes,
    split and test volumes; otherwise ``ValueError`` names the file that differs from the first
    and how. Two files with one name are refused too.
    """
    paths = [Path(p) for p in paths]
    if not paths:
        raise ValueError("no results files to compare")
    if names is not None and len(names) != len(paths):
        raise ValueError(f"{len(names)} names for {len(paths)} results files; give one per file")
    combined: dict[str, dict] = {}
    source: dict[str, Path] = {}  # name -> its file
    for i, path in enumerate(paths):
        name, per_volume = load_evaluation(path)
        name = names[i] if names is not None else name
        if name in combined:
            raise ValueError(f"{path}: the name {name!r} is taken by {source[name]}; pass "
                             "--names (one per file) or re-run evaluate with another --name")
        if combined:
            ref_path, ref = paths[0], next(iter(combined.values()))
            for key, default in (("task", None), ("classes", None), ("split", None),
                                 ("protocol", "per-volume"), ("assd_unit", "mm")):
                if per_volume.get(key, default) != ref.get(key, default):
                    raise ValueError(f"{path}: {key} {per_volume.get(key, default)!r}, but "
                                     f"{ref_path} has {ref.get(key, default)!r}; compare results "
                                     "of one task and split, evaluated the same way")
            extra = sorted(set(per_volume["volumes"]) - set(ref["volumes"]))
            lacking = sorted(set(ref["volumes"]) - set(per_volume["volumes"]))
            if extra or lacking:
                raise ValueError(f"{path}: scored other volumes than {ref_path} (missing "
                                 f"{lacking}, extra {extra}); evaluate every method on the same "
                                 "--gt folder and --split")
        combined[name], source[name] = per_volume, path
    return combined


# ---------------------------------------------------------------------------------------------
# the ablation's results file (benchmarks/ablation.py, `make ablation`)

REPORT_KEYS = ("command", "code_version", "profile", "seeds", "device", "experiments")


def load_report(path: str | os.PathLike) -> dict:
    """Read a results file written by ``benchmarks/ablation.py`` (``make ablation``).

    Raises ``FileNotFoundError`` / ``ValueError`` naming the file and what to do when it is
    missing, not JSON, or lacks the command, code version, seeds or per-volume metrics.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no results file; make it with `make ablation` "
                                "(or benchmarks/ablation.py --out PATH)")
    try:
        report = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not a JSON results file ({err}); rerun `make ablation`") \
            from None
    missing = [k for k in REPORT_KEYS if k not in report]
    bad = [k for k, e in report.get("experiments", {}).items() if "per_volume" not in e]
    if missing or bad:
        raise ValueError(f"{path}: not a results file of benchmarks/ablation.py (missing "
                         f"{missing or ['per_volume in ' + ', '.join(bad)]}); rerun "
                         "`make ablation`")
    return report


def report_tables(report: Mapping, experiment: str, methods: Sequence[str] | None = None,
                  seeds: Sequence[int] | None = None) -> dict[str, ResultsTable]:
    """The Dice and ASSD tables of one experiment (e.g. ``"cardiac mr→ct"``) of a results file,
    recomputed from its per-volume metrics (the seeds pooled); ``methods`` picks and orders the
    rows (default: the file's order), ``seeds`` the seeds (default: all of the file's)."""
    experiments = report["experiments"]
    if experiment not in experiments:
        raise KeyError(f"no experiment {experiment!r} in the results file; it has "
                       f"{sorted(experiments)}")
    per = experiments[experiment]["per_volume"]
    methods = list(methods) if methods is not None else list(per)
    absent = [m for m in methods if m not in per]
    if absent:
        raise KeyError(f"experiment {experiment!r} has no runs of {absent}")
    if seeds is None:
        return make_tables({m: per[m] for m in methods})
    file_seeds = list(report["seeds"])
    if not set(seeds) <= set(file_seeds):
        raise KeyError(f"the results file has seeds {file_seeds}, not all of {list(seeds)}")
    return make_tables({m: [per[m][file_seeds.index(s)] for s in seeds] for m in methods})


def compare(table: ResultsTable, method: str, rivals: Sequence[str],
            target_gap: float | None = None) -> dict:
    """Does ``method`` beat each of ``rivals`` on mean average Dice, and close ``target_gap``
    of the gap? ``{"beats": {rival: bool}, "margin": {rival: points}, "gap_closed": g,
    "meets_gap": bool | None, "all": bool}`` (``all``: every rival beaten and the gap met)."""
    avg = {m: table.cell(m, "average").mean for m in (method, *rivals)}
    margin = {r: avg[method] - avg[r] for r in rivals}
    g = table.gap_closed.get(method) if table.gap_closed else None
    meets = None if target_gap is None or g is None else bool(g >= target_gap)
    beats = {r: bool(m > 0) for r, m in margin.items()}
    return {"beats": beats, "margin": margin, "gap_closed": g, "meets_gap": meets,
            "all": all(beats.values()) and meets is not False}


ABLATION_METHODS = ("none", "global", "local", "glua-unmasked", "glua", "oracle")  # table order


def ablation_summary(report: Mapping, method: str = "glua",
                     rivals: Sequence[str] = ("global", "local"),
                     target_gap: float | None = 0.7,
                     shown: Sequence[str] | None = None) -> tuple[list[dict], str]:
    """One line per experiment of a results file: mean average Dice of every method, ``method``'s
    margin over each rival, its gap closed and whether it meets the target (:func:`compare`).

    Returns ``(rows, markdown)``; ``rows[i]`` has ``experiment``, ``dice`` ``{method: mean}``,
    ``n_seeds`` and the :func:`compare` verdict. ``shown``: the methods the Markdown table has a
    column for (default: all of them; the rows keep every method).
    """
    rows, spread = [], ""
    for key in report["experiments"]:
        dice = report_tables(report, key)["dice"]
        spread = dice.spread.split(":")[0]  # the evaluation protocol
        rows.append({"experiment": key, "n_seeds": dice.n_seeds.get(method),
                     "dice": {m: dice.cell(m, "average").mean for m in dice.methods},
                     **compare(dice, method, rivals, target_gap)})
    if not rows:
        return rows, ""
    methods = [m for m in rows[0]["dice"] if shown is None or m in shown]
    head = ["experiment", *methods, *(f"{method} − {r}" for r in rivals), "gap closed",
            "target met"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for r in rows:
        g = r["gap_closed"]
        cells = [r["experiment"], *(f"{r['dice'][m]:.1f}" for m in methods),
                 *(f"{r['margin'][x]:+.1f}" for x in rivals), "–" if g is None else f"{g:.2f}",
                 "yes" if r["all"] else "no"]
        lines.append("| " + " | ".join(cells) + " |")
    target = "" if target_gap is None else f" and gap closed ≥ {target_gap:.2f}"
    note = (f"Average Dice (%) over test volumes and seeds ({spread}); *target met*: "
            f"`{method}` above {', '.join(f'`{r}`' for r in rivals)}{target}.")
    return rows, note + "\n\n" + "\n".join(lines)


def ablation_verdict(rows: Sequence[Mapping], target_gap: float, method: str = "glua",
                     twin: str | None = None) -> str:
    """The verdict over the experiments of :func:`ablation_summary`'s ``rows`` (those of
    ``compare`` against ``global`` and ``local``), as one Markdown paragraph: in how many
    ``method`` meets the target and which, how often it beats each rival, the range of its gap
    closed, and of the mask's own effect (``method`` − ``twin``, default ``<method>-unmasked``)."""
    twin = twin or f"{method}-unmasked"
    met = [r["experiment"] for r in rows if r["all"]]
    closed = [r["gap_closed"] for r in rows if r["gap_closed"] is not None]
    mask = [r["dice"][method] - r["dice"][twin] for r in rows if twin in r["dice"]]
    rivals = list(rows[0]["beats"]) if rows else []
    text = (f"**Verdict, computed from the file.** `{method}` meets the target (beats "
            f"{' and '.join(f'`{r}`' for r in rivals)}, closes ≥ {100 * target_gap:.0f} % of "
            f"the gap) in {len(met)} of {len(rows)} task-directions"
            f"{': ' + ', '.join(met) if met else ''}.")
    if rivals:
        text += " It beats " + " and ".join(
            f"`{r}` in {sum(row['beats'][r] for row in rows)}" for r in rivals) + " of them"
        text += f"; its gap closed {_span(closed, '.2f')}." if closed else "."
    if mask:
        text += f" The mask's own effect (`{method}` − `{twin}`) {_span(mask, '+.1f')} points."
    return text


def _span(values: Sequence[float], spec: str) -> str:
    """``"is x"`` for one value, ``"ranges from lo to hi"`` for several."""
    if len(values) == 1:
        return f"is {values[0]:{spec}}"
    return f"ranges from {min(values):{spec}} to {max(values):{spec}}"
