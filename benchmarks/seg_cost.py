"""Training cost of the segmenter: steps/s and peak memory, on synthetic batches.

    python benchmarks/seg_cost.py [--profile demo|full] [--steps 30] [--device cpu|cuda] \
        [--batch-size B]

Uses the U-Net, loss, optimiser and AMP setting of ``SegConfig.from_profile`` (the ``demo``
profile on CPU, ``full`` when CUDA is present, unless ``--profile`` says otherwise) on random
slices of the profile's size, so it measures the model step alone, not data loading. Peak
memory is CUDA's ``max_memory_allocated`` on a GPU, the process's peak resident set size
(``ru_maxrss``, whole process, torch included) on a CPU.
"""
from __future__ import annotations

import argparse
import platform
import resource
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from glua_lib.config import get_profile  # noqa: E402
from glua_lib.runtime import amp_enabled, autocast, get_device, set_seed  # noqa: E402
from glua_lib.seg.losses import DiceCELoss  # noqa: E402
from glua_lib.seg.train import SegConfig, build_model  # noqa: E402
from glua_lib.seg.unet import count_parameters  # noqa: E402


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"


def measure(config: SegConfig, size: int, device: torch.device, steps: int, warmup: int = 3,
            n_classes: int = 5) -> dict:
    set_seed(0)
    model = build_model(config, 2 * config.context + 1, n_classes).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    use_amp = amp_enabled(config.amp, device)
    scaler = torch.amp.GradScaler(device.type, enabled=use_amp)
    loss_fn = DiceCELoss()
    x = torch.randn(config.batch_size, 2 * config.context + 1, size, size, device=device)
    y = torch.randint(0, n_classes, (config.batch_size, size, size), device=device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    def step():
        with autocast(device, use_amp):
            loss = loss_fn(model(x), y)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    for _ in range(warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        peak = torch.cuda.max_memory_allocated(device) / 2**20
        peak_kind = "CUDA max allocated"
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        peak_kind = "process peak RSS"
    dt = time.perf_counter() - t0
    return {"steps_per_s": steps / dt, "slices_per_s": steps * config.batch_size / dt,
            "peak_mib": peak, "peak_kind": peak_kind, "params": count_parameters(model),
            "amp": use_amp, "est_run_s": config.steps / (steps / dt)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default=None)
    parser.add_argument("--device", default=None)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=None, metavar="B",
                        help="slices per step (default: the profile's)")
    args = parser.parse_args(argv)
    device = get_device(args.device)
    profile = get_profile(args.profile, device=device, batch_size=args.batch_size)
    config = SegConfig.from_profile(profile)
    r = measure(config, profile.slice_size, device, args.steps)
    print(f"device   : {device} ({device_name(device)})")
    print(f"torch    : {torch.__version__}")
    print(f"profile  : {profile.name}: {profile.slice_size}² slices, batch {config.batch_size}, "
          f"U-Net width {config.width} depth {config.depth} {config.norm} norm, "
          f"{r['params'] / 1e6:.2f} M params, AMP {r['amp']}")
    print(f"speed    : {r['steps_per_s']:.2f} steps/s ({r['slices_per_s']:.0f} slices/s) "
          f"over {args.steps} steps")
    print(f"memory   : {r['peak_mib']:.0f} MiB ({r['peak_kind']})")
    print(f"estimate : {config.steps} steps (profile budget) ≈ {r['est_run_s']:.0f} s "
          "of model time per run")
    return 0


if __name__ == "__main__":
    sys.exit(main())
