"""Command lines of chapter 2 (registered in ``glua_lib.cli.COMMANDS``)::

    python -m glua_lib train-style --source PREP_SRC --target PREP_TGT --out RUN_DIR \
        [--profile demo|gpu16|full] [--arch munit|domain] [--semantic W] [--steps N] \
        [--batch-size B] [--seed S] [--device D]
    python -m glua_lib translate --run RUN_DIR --source PREP_SRC --out PREP_OUT [--styles K] \
        [--overwrite]

The dispatcher (``glua_lib.cli.COMMANDS``) takes the two :class:`~glua_lib.cli.Command` objects at
the end of this module, :data:`train` and :data:`translate`. Missing folders and mismatched tasks
raise errors that name the folder (exit status 2); a diverging run exits with status 1.
"""
from __future__ import annotations

import argparse
import sys

import torch

from glua_lib.cli import device_arg
from glua_lib.commands import Command
from glua_lib.config import PROFILES, get_profile
from glua_lib.data.prepared import list_subjects, load_volume, read_manifest
from glua_lib.runfolder import TrainingDiverged
from glua_lib.style.train import STYLE_ARCHS, StyleConfig, check_pair, train_style
from glua_lib.style.translate import translate_folder


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", required=True, metavar="PREP_SRC",
                        help="prepared folder of the labelled source modality")
    parser.add_argument("--target", required=True, metavar="PREP_TGT",
                        help="prepared folder of the unlabelled target modality (same task)")
    parser.add_argument("--out", required=True, metavar="RUN_DIR",
                        help="run folder (resumed if it holds a checkpoint)")
    parser.add_argument("--profile", choices=sorted(PROFILES), default=None,
                        help="sizes and budget (default: $GLUA_PROFILE, else by device)")
    parser.add_argument("--arch", choices=sorted(STYLE_ARCHS), default=None,
                        help="the translator: munit (MUNIT-like, style codes) or domain (the GLUA "
                             "authors': one encoder and decoder told the domain) (default: "
                             "profile)")
    parser.add_argument("--semantic", type=float, default=None, metavar="W",
                        help="weight of the semantic-consistency term (a labeller's loss on the "
                             "translated source reaches the generator; default: off)")
    parser.add_argument("--steps", type=int, default=None, help="training steps (default: profile)")
    parser.add_argument("--batch-size", type=int, default=None, metavar="B",
                        help="slices per domain and step (default: profile; lower it when the "
                             "GPU runs out of memory)")
    parser.add_argument("--lr", type=float, default=None,
                        help="learning rate (default: profile; a run resumes only with its own)")
    parser.add_argument("--no-amp", action="store_true",
                        help="float32 on CUDA too (the full profile trains in mixed precision); "
                             "a run may resume with or without it")
    parser.add_argument("--seed", type=int, default=0, help="seed (default: %(default)s)")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1, mps (default: best)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run_train(args: argparse.Namespace) -> int:

    device = device_arg(args.device)
    profile = get_profile(args.profile, device=device)
    check_pair(args.source, args.target)
    first = list_subjects(args.source, "train")[0]
    file = read_manifest(args.source)["subjects"][first]["file"]
    size = load_volume(f"{args.source}/{file}").image.shape[-1]
    overrides = {"seed": args.seed, "image_size": int(size)}
    if args.arch is not None:
        overrides["arch"] = args.arch
    if args.semantic is not None:
        overrides["w_sem"] = args.semantic
    if args.steps is not None:
        overrides["steps"] = args.steps
    if args.batch_size is not None:
        overrides["batch_size"] = args.batch_size
    if args.lr is not None:
        overrides["lr"] = args.lr
    if args.no_amp:
        overrides["amp"] = False
    config = StyleConfig.from_profile(profile, **overrides)
    try:
        out = train_style(args.source, args.target, args.out, config, device=device,
                          progress=not args.no_progress)
    except (TrainingDiverged, torch.OutOfMemoryError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(out)
    return 0


def add_translate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", required=True, metavar="RUN_DIR",
                        help="a style-transfer run folder (train-style --out)")
    parser.add_argument("--source", required=True, metavar="PREP_SRC",
                        help="prepared folder of the run's source modality")
    parser.add_argument("--out", required=True, metavar="PREP_OUT",
                        help="prepared folder to write (one volume per source volume and style)")
    parser.add_argument("--styles", type=int, default=3, metavar="K",
                        help="target styles per source volume (default: %(default)s)")
    parser.add_argument("--random-styles", action="store_true",
                        help="draw styles from N(0, I) instead of clustering real target styles")
    parser.add_argument("--seed", type=int, default=0, help="seed (default: %(default)s)")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1, mps (default: best)")
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty --out")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run_translate(args: argparse.Namespace) -> int:

    out = translate_folder(args.run, args.source, args.out, n_styles=args.styles,
                           device=device_arg(args.device), seed=args.seed,
                           overwrite=args.overwrite, progress=not args.no_progress,
                           styles="random" if args.random_styles else "kmeans")
    print(out)
    return 0


train = Command(add_train_arguments, run_train)  # python -m glua_lib train-style
translate = Command(add_translate_arguments, run_translate)  # python -m glua_lib translate
