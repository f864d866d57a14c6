"""What the results scripts of ``benchmarks/`` share: their common options and the provenance
every results file starts with (command, code version, profile, seeds, device)."""
from __future__ import annotations

import argparse
import shlex
from pathlib import Path
from typing import Sequence

import torch

from glua_lib import get_device, get_profile
from glua_lib.config import Profile
from glua_lib.runtime import code_version, device_description


def add_run_arguments(parser: argparse.ArgumentParser, tasks: Sequence[str]) -> None:
    """``--profile``, ``--batch-size``, ``--tasks``, ``--seeds``, ``--device`` and the required
    ``--out``."""
    parser.add_argument("--profile", default=None, help="demo or full (default: by device)")
    parser.add_argument("--batch-size", type=int, default=None, metavar="B",
                        help="slices per step (default: the profile's; lower it when the GPU runs "
                             "out of memory)")
    parser.add_argument("--tasks", nargs="+", default=list(tasks))
    parser.add_argument("--seeds", nargs="+", type=int, default=None,
                        help="default: the profile's seeds")
    parser.add_argument("--device", default=None)
    parser.add_argument("--out", type=Path, required=True)


def start_report(script: str, argv: Sequence[str],
                 args: argparse.Namespace) -> tuple[dict, Profile, list[int], torch.device]:
    """The device, profile (with its batch size) and seeds the options ask for, and a report
    holding them with the command (``python <script> <argv>``), the code version and the
    profile's translator (``Profile.style_arch``); its ``experiments`` are empty."""
    device = get_device(args.device)
    profile = get_profile(args.profile, device, batch_size=args.batch_size)
    seeds = list(args.seeds or profile.seeds)
    report = {"command": f"python {script} " + shlex.join(argv),
              "code_version": code_version(), "profile": profile.name,
              "batch_size": profile.batch_size, "translator": profile.style_arch,
              "seeds": seeds, "device": device_description(device), "experiments": {}}
    return report, profile, seeds, device
