"""Training cost of the style-transfer model: steps/s and peak memory, on synthetic batches.

    .venv/bin/python benchmarks/style_cost.py [--steps 20] [--profile demo|full] [--threads N]
        [--w-class W] [--batch-size B [B ...]]

Times :meth:`StyleTrainer.step` (one generator and one critic update, and with ``--w-class`` the
labeller update and the class-wise term switched on; the ``StyleConfig`` of the profile, AMP as
the profile says on CUDA) on random slices of the profile's size, so it measures
the model step alone, not data loading. Runs ``demo`` on the CPU, and ``full`` too when CUDA is
present (or only the ``--profile`` given). Peak memory: ``torch.cuda.max_memory_allocated`` on a
GPU; on a CPU the peak traced by ``tracemalloc`` does not see torch's allocator, so the process's
peak resident set size (``ru_maxrss``, torch and Python included) is printed, before and after.
``--batch-size`` measures other batch sizes than the profile's, in ascending order (on a CPU the
peak is the process's so far, which the largest batch yet sets): what a smaller GPU can afford.
"""
from __future__ import annotations

import argparse
import dataclasses
import platform
import resource
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from glua_lib.config import PROFILES  # noqa: E402
from glua_lib.runtime import set_seed  # noqa: E402
from glua_lib.style.models import n_params  # noqa: E402
from glua_lib.style.train import StyleConfig, StyleTrainer  # noqa: E402


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"


def rss_mib() -> float:
    """Peak resident set size of this process so far, MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(config: StyleConfig, device: torch.device, steps: int, warmup: int = 3) -> dict:
    set_seed(0)
    n_classes = 5  # background + 4 classes, as both tasks have
    trainer = StyleTrainer(config, device, n_classes=n_classes)
    trainer.step_count = config.class_start  # with w_class > 0: time the class-wise term on
    b, size = config.batch_size, config.image_size
    x_s = torch.rand(b, 1, size, size, device=device) * 2 - 1
    x_t = torch.rand(b, 1, size, size, device=device) * 2 - 1
    y_s = (torch.arange(size, device=device) * n_classes // size).expand(b, size, size)
    for _ in range(warmup):
        trainer.step(x_s, x_t, y_s)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        trainer.step(x_s, x_t, y_s)  # returns floats: synchronises every step, like training does
    seconds = time.perf_counter() - t0
    peak = (torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda"
            else rss_mib())
    return {"steps/s": steps / seconds, "s/step": seconds / steps, "peak MiB": peak,
            "generator params": n_params(trainer.model), "critic params": n_params(trainer.dis),
            "labeller params": n_params(trainer.labeller) if trainer.labeller else 0,
            "amp": trainer.amp}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="timed steps (default 20)")
    parser.add_argument("--profile", choices=sorted(PROFILES), default=None,
                        help="only this profile (default: demo on CPU, and full on CUDA)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--w-class", type=float, default=None,
                        help="weight of the class-wise term (default: the config's)")
    parser.add_argument("--batch-size", type=int, nargs="+", default=None, metavar="B",
                        help="slices per domain and step to measure (default: the profile's)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    runs = [("demo", torch.device("cpu"))]
    if torch.cuda.is_available():
        runs.append(("full", torch.device("cuda")))
    if args.profile:
        dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        runs = [(args.profile, dev if args.profile == "full" else torch.device("cpu"))]
    print(f"torch {torch.__version__}; RSS before building models: {rss_mib():.0f} MiB")
    for name, device in runs:
        profile = PROFILES[name]
        config = StyleConfig.from_profile(profile, **({} if args.w_class is None
                                                       else {"w_class": args.w_class}))
        for batch in sorted(args.batch_size or [config.batch_size]):
            config = dataclasses.replace(config, batch_size=batch)
            r = measure(config, device, args.steps)
            mem = "CUDA max allocated" if device.type == "cuda" else "process max RSS"
            print(f"{name}: {device_name(device)}; batch {config.batch_size}×1×"
                  f"{config.image_size}×{config.image_size} per domain, width {config.dim}, "
                  f"amp {r['amp']}; {r['generator params']:,} generator + "
                  f"{r['critic params']:,} critic + {r['labeller params']:,} labeller params")
            print(f"  {r['steps/s']:.2f} steps/s ({r['s/step']:.3f} s/step), peak {mem} "
                  f"{r['peak MiB']:.0f} MiB; {config.steps} steps ≈ "
                  f"{config.steps * r['s/step'] / 60:.1f} min", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
