"""What the book costs: a training run's FLOPs and time, and the book's durations on a machine.

**A run's cost** (:func:`style_cost`, :func:`seg_cost`; the chapters print
:func:`cost_markdown` before they train): the FLOPs of one optimisation step, counted by
PyTorch's ``torch.utils.flop_counter.FlopCounterMode`` (matrix products and convolutions,
2 FLOPs per multiply-add, forward and backward; element-wise work and data loading not
counted), times the run's steps; and its time, one step measured on the device after a warm-up
step, times the steps: an estimate (data loading, logging and checkpoints come on top). The
step is the trainer's own (:meth:`~glua_lib.style.train.StyleTrainer.step`; the segmenter's
step as :func:`~glua_lib.seg.train.train_seg` runs it, :func:`seg_step`) on random slices of
the run's size, with the random number generators left as they were.

**The book's durations on a machine.** The one figure machines are compared by is the ``demo`` segmenter's training steps per second on
one CPU thread (``benchmarks/seg_cost.py --profile demo --steps 30 --device cpu``). A reference
file (``benchmarks/results/book-times-demo.json``, written by ``benchmarks/book_times.py`` after a
``make test``) holds the durations measured on one machine and that machine's speed; the book's
time is almost all training, which scales with the speed, so :func:`expected` scales them to
another. Not all of it: pytest's start, the browser and the HTML build take about as long on a
slow machine as on a fast one, so scaling a fast machine's figures overstates a slow one's. Given
a second measurement at a lower speed (``benchmarks/results/book-times-demo-slow.json``, made on a
slow machine or an emulated one, ``benchmarks/slow_cores.py``), :func:`expected` fits each
duration as ``t = a + b / speed`` through both: ``a`` the part that does not scale. Used by
``benchmarks/machine_speed.py`` and by the introduction's table.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Callable, Mapping

import torch
from torch.utils.flop_counter import FlopCounterMode

from glua_lib.checkpoint import rng_state, set_rng_state
from glua_lib.seg.losses import DiceCELoss
from glua_lib.method import Batch, StepHook
from glua_lib.methods import get_method
from glua_lib.seg.train import SegConfig, build_model
from glua_lib.style.train import StyleConfig, StyleTrainer

N_CLASSES = 5  # background + 4 structures (heart) or organs (abdomen): both tasks

# Speeds measured on this project's two classes of machine (benchmarks/RESULTS.md, issue 26).
SPEED_CLASSES = {"slow class (AVX2, 2.24 steps/s)": 2.24, "fast class (10.8 steps/s)": 10.8}


def _durations(reference: Mapping) -> dict[str, float]:
    """The durations of a reference file by name: ``{"make test": s, …, chapter: s}``."""
    out = {name: float(reference[key])
           for name, key in (("make test", "make_test_s"), ("make book", "make_book_s"),
                             ("its runs and chapters", "execute_book_s"))
           if reference.get(key) is not None}
    out.update({name: float(s) for name, s in reference.get("chapters", {}).items()})
    return out


def expected(reference: Mapping, speed: float, slow: Mapping | None = None) -> dict[str, float]:
    """Every duration of ``reference`` (seconds, measured at ``reference['steps_per_s']``) as
    it should be on a machine of ``speed`` steps/s: ``{"make test": s, "make book": s,
    chapter: s}``.

    Alone, ``reference`` is scaled by the ratio of the speeds. With ``slow``, a measurement of
    the same durations at a lower speed, each duration is ``a + b / speed`` through the two
    measurements; where the fit finds no part that stays fixed (``a < 0``: the duration grew
    faster than the speed fell, as work that competes for the cores does), the nearer of the two
    (in ``1 / speed``) is scaled by the ratio; where ``slow`` lacks a duration, ``reference``."""
    s_ref, measured = float(reference["steps_per_s"]), _durations(reference)
    out = {name: t * s_ref / speed for name, t in measured.items()}
    if slow is not None and float(slow["steps_per_s"]) < s_ref:
        s_slow = float(slow["steps_per_s"])
        for name, t_slow in _durations(slow).items():
            if name not in out:
                continue
            t_ref = measured[name]
            b = (t_slow - t_ref) / (1 / s_slow - 1 / s_ref)
            a = t_ref - b / s_ref
            if a >= 0 and b > 0:
                out[name] = a + b / speed
            elif abs(1 / speed - 1 / s_slow) < abs(1 / speed - 1 / s_ref):
                out[name] = t_slow * s_slow / speed
    return out


def minutes(seconds: float) -> str:
    """``"45 s"`` below 90 seconds, ``"12 min"`` below 3 hours, ``"5.2 h"`` above."""
    if seconds >= 3 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"


def times_table(reference: Mapping, speeds: Mapping[str, float] = SPEED_CLASSES,
                slow: Mapping | None = None) -> str:
    """A Markdown table: each chapter's execution in the book build and ``make test`` as
    measured in ``reference``, and as :func:`expected` makes them (with ``slow`` if given) at
    each of ``speeds`` (estimates, so labelled)."""
    here = f"measured ({reference['cpu']}, {reference['steps_per_s']:.2f} steps/s)"
    head = ["", here, *(f"estimated, {name}" for name in speeds)]
    scaled = {name: expected(reference, s, slow) for name, s in speeds.items()}
    rows = [*(f"chapter {c.split('_', 1)[0].lstrip('0')} in the book build"
              for c in reference.get("chapters", {})), "make test"]
    keys = [*reference.get("chapters", {}), "make test"]
    measured = _durations(reference)
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for row, key in zip(rows, keys):
        if key in measured:
            lines.append("| " + " | ".join([row, minutes(measured[key]),
                                            *(minutes(scaled[n][key]) for n in speeds)]) + " |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# a training run's cost: FLOPs counted on one step, time measured on one step


def count_flops(fn: Callable[[], object]) -> int:
    """FLOPs ``FlopCounterMode`` counts while ``fn()`` runs (forward and backward alike)."""
    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    return int(counter.get_total_flops())


def style_step(config: StyleConfig, device: torch.device | str = "cpu",
               batch: int | None = None) -> Callable[[], dict]:
    """One :meth:`StyleTrainer.step` of ``config``'s model on random source and target slices
    (``batch`` per domain, default the config's; values in [-1, 1]), as a function."""
    device = torch.device(device)
    b = config.batch_size if batch is None else batch
    trainer = StyleTrainer(dataclasses.replace(config, batch_size=b), device)
    size = config.image_size
    x_s = torch.rand(b, 1, size, size, device=device) * 2 - 1
    x_t = torch.rand(b, 1, size, size, device=device) * 2 - 1
    return lambda: trainer.step(x_s, x_t)


def seg_step(config: SegConfig, size: int, device: torch.device | str = "cpu",
             batch: int | None = None) -> Callable[[], None]:
    """One training step of :func:`~glua_lib.seg.train.train_seg` for ``config`` on random
    ``size``² slices (``batch`` per domain, default the config's), as a function.

    The model, the method's hook, the optimiser and the loss are built as ``train_seg`` builds
    them; each call runs the labelled forward, the target forward (methods that see target
    images, through the hook's ``target_feature_mask``), the hook's ``loss``, the backward, the
    optimiser step and the hook's ``after_step``.
    """
    device = torch.device(device)
    b = config.batch_size if batch is None else batch
    spec = get_method(config.method)
    channels = 2 * config.context + 1
    model = build_model(config, channels, N_CLASSES).to(device)
    hook = spec.make_hook(model, config, device) if spec.make_hook else StepHook()
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr,
                                 weight_decay=config.weight_decay)
    use_amp = config.amp and device.type == "cuda"
    scaler = torch.amp.GradScaler(device.type, enabled=use_amp)
    criterion = DiceCELoss(config.ce_weight, config.dice_weight)
    need = bool(hook.feature_levels)
    image = torch.randn(b, channels, size, size, device=device)
    label = torch.randint(0, N_CLASSES, (b, size, size), device=device)
    t_image = torch.randn(b, channels, size, size, device=device)
    model.train()

    def step() -> None:
        with torch.autocast(device.type, enabled=use_amp):
            out = model(image, return_features=need)
            src = Batch(image, label, *(out if need else (out, None)))
            tgt = None
            if spec.uses_target_images:
                t_out = model(t_image, return_features=need,
                              feature_mask=hook.target_feature_mask())
                tgt = Batch(t_image, None, *(t_out if need else (t_out, None)))
            loss, _ = criterion.parts(src.logits, label)
            extra, _ = hook.loss(0, src, tgt)
            loss = loss + extra
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        hook.after_step(0, src, tgt, scaler)

    return step


@dataclass(frozen=True)
class RunCost:
    """What training one run costs: FLOPs counted on one step, time measured on one step."""

    name: str  # what is trained: "style model" or a segmenter method ("glua", ...)
    steps: int  # the run's optimisation steps
    batch: int  # slices per domain per step
    flops_per_step: int  # counted at ``batch`` (matrix products and convolutions, fwd + bwd)
    seconds_per_step: float | None  # one step measured on ``device`` (None: not measured)
    device: str  # where the step was measured
    status: str = "to train"  # "to train", "in the cache" or "committed" (installed, no training)

    @property
    def flops(self) -> int:
        """The whole run's FLOPs."""
        return self.flops_per_step * self.steps

    @property
    def seconds(self) -> float | None:
        """The whole run's estimated seconds (one measured step × the steps)."""
        return None if self.seconds_per_step is None else self.seconds_per_step * self.steps


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(name: str, make_step: Callable[[int], Callable], batch: int, steps: int,
            device: torch.device | str, count_batch: int | None = None,
            timed: bool = True) -> RunCost:
    """Count and time the step that ``make_step(b)`` builds for ``b`` slices per domain.

    The FLOPs are counted on ``count_batch`` slices (default: the whole batch) and scaled to
    ``batch`` (exact: every counted op is per sample). Then, if ``timed``, the full-batch step
    runs once more and is timed: the counted step was its warm-up (allocations, the optimiser's
    state, kernel choice), or, when fewer slices were counted, a warm-up step runs first. The
    random number generators are restored afterwards, so measuring changes no later result.
    """
    device = torch.device(device)
    b = batch if not count_batch or count_batch >= batch else count_batch
    saved = rng_state()
    try:
        torch.manual_seed(0)
        step = make_step(b)
        flops = count_flops(step) * batch // b
        seconds = None
        if timed:
            if b != batch:
                step = make_step(batch)
                step()  # warm-up
            _sync(device)
            start = time.perf_counter()
            step()
            _sync(device)
            seconds = time.perf_counter() - start
    finally:
        set_rng_state(saved)
    return RunCost(name, steps, batch, flops, seconds, str(device))


def style_cost(config: StyleConfig, device: torch.device | str = "cpu",
               count_batch: int | None = None, timed: bool = True) -> RunCost:
    """The cost of training the style model of ``config`` (:func:`measure`)."""
    return measure("style model", lambda b: style_step(config, device, b), config.batch_size,
                   config.steps, device, count_batch, timed)


def seg_cost(config: SegConfig, size: int, device: torch.device | str = "cpu",
             count_batch: int | None = None, timed: bool = True) -> RunCost:
    """The cost of training the segmenter of ``config`` on ``size``² slices (:func:`measure`)."""
    return measure(config.method, lambda b: seg_step(config, size, device, b),
                   config.batch_size, config.steps, device, count_batch, timed)


def human(flops: float) -> str:
    """FLOPs with a unit: GFLOP below 10^12, TFLOP below 10^15, PFLOP below 10^18, else EFLOP."""
    for scale, unit in ((1e18, "EFLOP"), (1e15, "PFLOP"), (1e12, "TFLOP")):
        if flops >= scale:
            return f"{flops / scale:,.2f} {unit}"
    return f"{flops / 1e9:,.2f} GFLOP"


def cost_markdown(costs: list[RunCost]) -> str:
    """A Markdown table of runs' costs (what a chapter prints before it trains): per step and
    per run, FLOPs and the estimated time, and whether the run will be trained; then the total
    of the runs to train."""
    lines = ["| run | steps × slices | FLOPs a step | FLOPs | one step here | estimated "
             "time | |", "|---|---|---|---|---|---|---|"]
    for c in costs:
        step = "–" if c.seconds_per_step is None else f"{c.seconds_per_step:.3g} s"
        total = "–" if c.seconds is None else minutes(c.seconds)
        lines.append(f"| {c.name} | {c.steps} × {c.batch} | {human(c.flops_per_step)} | "
                     f"{human(c.flops)} | {step} | {total} | {c.status} |")
    todo = [c for c in costs if c.status == "to train"]
    known = [c.seconds for c in todo if c.seconds is not None]
    total = (f"**To train here: {len(todo)} of {len(costs)} runs, {human(sum(c.flops for c in todo))}"
             + (f", about {minutes(sum(known))}** (one measured step × the steps, on "
                f"{todo[0].device}; an estimate)" if todo and len(known) == len(todo) else "**"))
    return "\n".join(lines) + "\n\n" + total


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 5400 else f"{seconds / 60:.0f} min"


def profiles_table(report: Mapping, method: str = "glua", sifa: bool = True) -> str:
    """A Markdown table of what each profile costs, from ``benchmarks/flops.py --json``'s
    report: the style run, ``method`` for one task, direction and seed (and ÷ SIFA's schedule,
    an estimate), and each chapter's runs from an empty cache, with the hours they would take
    at the report's assumed GPU throughputs (``gpu_rates``; estimates, so labelled)."""
    rates = report.get("gpu_rates", {})
    ref = report.get("sifa", {}).get("released", {}).get("per_run") if sifa else None
    chapters = list(report.get("chapter_runs", {}))
    head = ["profile", "style run", f"`{method}`, one task/direction/seed",
            *(f"{c}, empty cache" for c in chapters)]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for name, prof in report["profiles"].items():
        total = prof.get("per_task", {}).get("unet", {}).get(method)
        cells = [f"`{name}`", human(prof["style"]["per_run"]),
                 "–" if total is None else human(total) + (f" ({total / ref:.2g}× SIFA)"
                                                         if ref else "")]
        for chapter in chapters:
            flops = prof.get("per_chapter", {}).get(chapter)
            est = "; ".join(f"{gpu} ≈ {_hours(flops / rate)}" for gpu, rate in rates.items())
            cells.append("–" if flops is None else f"{human(flops)}" + (
                f" ({est})" if name != "demo" and est else ""))
        lines.append("| " + " | ".join(cells) + " |")
    note = ("Estimated hours = FLOPs ÷ an assumed sustained mixed-precision throughput ("
            + ", ".join(f"{gpu} {rate / 1e12:.0f} TFLOP/s" for gpu, rate in rates.items())
            + "), not measurements; `demo` runs on the CPU, where `make test` measures it.")
    if ref:
        note += (f" SIFA's schedule ({human(ref)}) is an estimate counted on a stand-in of its "
                 "published networks (`benchmarks/flops.py`).")
    return "\n".join(lines) + "\n\n" + note


__all__ = ["N_CLASSES", "RunCost", "SPEED_CLASSES", "cost_markdown", "count_flops", "expected",
           "human", "measure", "minutes", "profiles_table", "seg_cost", "seg_step", "style_cost", "style_step",
           "times_table"]
