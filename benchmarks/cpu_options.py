"""What makes the demo's training faster on this CPU: threads, two runs side by side, channels-last,
torch.compile.

    python benchmarks/cpu_options.py [--steps 20] [--only seg|style] [--no-compile]

Times the ``demo`` segmenter step (``seg_cost.measure``) and the ``demo`` style-transfer step
(``style_cost.measure``) on random slices, one variant at a time:

- ``1 thread`` / ``2 threads``: ``torch.set_num_threads``;
- ``2 processes``: two 1-thread processes timing the same step at once (what ``make book``'s
  ``cache-book-runs --workers 2`` does); the figure is each process's own rate and their sum;
- ``channels-last``: model and input in ``torch.channels_last`` memory format, 1 thread;
- ``torch.compile``: the segmenter compiled (inductor, 1 thread; compile time not counted).

The step rates are printed, nothing is written; RESULTS.md ("What the book costs") keeps the
figures with the machine's speed.
"""
from __future__ import annotations

import argparse
import multiprocessing
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import seg_cost  # noqa: E402
import style_cost  # noqa: E402

from glua_lib.config import get_profile  # noqa: E402
from glua_lib.seg.train import SegConfig  # noqa: E402
from glua_lib.style.train import StyleConfig  # noqa: E402


def seg_rate(steps: int, threads: int = 1, channels_last: bool = False,
             compile_model: bool = False) -> float:
    """Demo segmenter steps/s with ``threads`` torch threads (and the options)."""
    torch.set_num_threads(threads)
    profile = get_profile("demo")
    config = SegConfig.from_profile(profile)
    if not (channels_last or compile_model):
        return seg_cost.measure(config, profile.slice_size, torch.device("cpu"), steps)["steps_per_s"]
    from glua_lib.seg.losses import DiceCELoss
    from glua_lib.seg.train import build_model

    torch.manual_seed(0)
    model = build_model(config, 1, 5)
    x = torch.randn(config.batch_size, 1, profile.slice_size, profile.slice_size)
    y = torch.randint(0, 5, (config.batch_size, profile.slice_size, profile.slice_size))
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    forward = torch.compile(model) if compile_model else model
    opt, loss_fn = torch.optim.Adam(model.parameters(), lr=config.lr), DiceCELoss()

    def step():
        loss = loss_fn(forward(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(3):  # warm-up (and compilation)
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return steps / (time.perf_counter() - start)


def style_rate(steps: int, threads: int = 1, channels_last: bool = False) -> float:
    """Demo style-transfer steps/s with ``threads`` torch threads."""
    torch.set_num_threads(threads)
    config = StyleConfig.from_profile(get_profile("demo"))
    if not channels_last:
        return style_cost.measure(config, torch.device("cpu"), steps)["steps/s"]
    from glua_lib.style.train import StyleTrainer

    torch.manual_seed(0)
    trainer = StyleTrainer(config, "cpu")
    trainer.model.to(memory_format=torch.channels_last)
    trainer.dis.to(memory_format=torch.channels_last)
    size, b = config.image_size, config.batch_size
    x_s, x_t = (torch.rand(b, 1, size, size).contiguous(memory_format=torch.channels_last) * 2 - 1
                for _ in range(2))
    for _ in range(2):
        trainer.step(x_s, x_t)
    start = time.perf_counter()
    for _ in range(steps):
        trainer.step(x_s, x_t)
    return steps / (time.perf_counter() - start)


def _side_by_side(what: str, steps: int) -> float:
    return seg_rate(steps) if what == "seg" else style_rate(steps)


def two_processes(what: str, steps: int) -> list[float]:
    """Each rate of two 1-thread processes timing ``what`` at the same time."""
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2) as pool:
        return pool.starmap(_side_by_side, [(what, steps)] * 2)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--only", choices=("seg", "style"), default=None)
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile")
    args = parser.parse_args(argv)
    for what in ("seg", "style"):
        if args.only not in (None, what):
            continue
        rate = seg_rate if what == "seg" else style_rate
        rows = [("1 thread", rate(args.steps, 1)), ("2 threads", rate(args.steps, 2))]
        pair = two_processes(what, args.steps)
        rows.append((f"2 processes ({pair[0]:.2f} + {pair[1]:.2f})", sum(pair)))
        rows.append(("channels-last, 1 thread", rate(args.steps, 1, channels_last=True)))
        if what == "seg" and not args.no_compile:
            try:
                rows.append(("torch.compile, 1 thread", seg_rate(args.steps, 1, compile_model=True)))
            except Exception as err:  # inductor needs a C++ compiler; say why it was skipped
                print(f"torch.compile: not measured ({type(err).__name__}: "
                      f"{str(err).splitlines()[0][:120]})")
        for name, steps_per_s in rows:
            print(f"{what:>5}  {name:<34} {steps_per_s:6.2f} steps/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
