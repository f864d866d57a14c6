"""Phantom generation speed and the per-class gap table.

    .venv/bin/python benchmarks/phantom_speed.py [--threads 1] [--demo-n 5] [--full-n 2]

Prints volumes per second (generation of image, label, tissue and gap map; no file writing) at the
demo size (32×64×64) and the full size (96×256×256) for both tasks and modalities, then per class
the Wasserstein-1 distance between normalised MR and CT intensities (``class_gap``) and the mean
gap map (``class_mean_gap``) at both sizes. Thread count is pinned before numpy loads (default 1).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="BLAS/OpenMP threads (default 1)")
    parser.add_argument("--demo-n", type=int, default=5, help="volumes per case at demo size")
    parser.add_argument("--full-n", type=int, default=2, help="volumes per case at full size")
    parser.add_argument("--gap-n", type=int, default=3, help="subjects per modality for the gap")
    args = parser.parse_args(argv)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

    import numpy as np

    from glua_lib.phantoms import class_gap, class_mean_gap, generate_subject, generate_subjects
    from glua_lib.config import DEMO, FULL

    print(f"threads={args.threads}  cpus={os.cpu_count()}  numpy={np.__version__}")
    sizes = {"demo": (DEMO.slice_size, DEMO.n_slices, args.demo_n),
             "full": (FULL.slice_size, FULL.n_slices, args.full_n)}
    print(f"\n{'profile':8s} {'shape':>12s} {'task':10s} {'mod':4s} {'vol/s':>8s} {'s/vol':>8s}")
    for prof, (size, ns, n) in sizes.items():
        for task in ("cardiac", "abdominal"):
            for mod in ("mr", "ct"):
                generate_subject(task, mod, 1000, 0, size, ns)  # warm-up
                t0 = time.perf_counter()
                for i in range(n):
                    generate_subject(task, mod, i, 0, size, ns)
                dt = (time.perf_counter() - t0) / n
                print(f"{prof:8s} {f'{ns}x{size}x{size}':>12s} {task:10s} {mod:4s} "
                      f"{1 / dt:8.2f} {dt:8.3f}")

    for prof, (size, ns, _) in sizes.items():
        n = args.gap_n if prof == "demo" else max(1, args.gap_n - 1)
        print(f"\nper-class gap, {prof} ({ns}x{size}x{size}, {n} MR + {n} CT subjects, seed 0)")
        for task in ("cardiac", "abdominal"):
            mr = generate_subjects(task, "mr", n, 0, size, ns)
            ct = generate_subjects(task, "ct", n, 0, size, ns)
            w1 = class_gap(task, mr, ct)
            mg = class_mean_gap(task, [s.label for s in mr + ct], [s.gap for s in mr + ct])
            print(f"  {task:10s} {'class':14s} {'W1(MR,CT)':>10s} {'mean gap':>9s}")
            for name in w1:
                print(f"  {'':10s} {name:14s} {w1[name]:10.3f} {mg[name]:9.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
