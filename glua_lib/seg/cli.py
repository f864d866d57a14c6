"""``python -m glua_lib train-seg | predict | evaluate | compare``.

::

    python -m glua_lib train-seg --method METHOD --source PREP_SRC --target PREP_TGT \\
        --out RUN_DIR [--style-run STYLE_RUN] [--profile demo|full] [--seed S] [--steps N] \\
        [--batch-size B] [--random-styles] [--device D]
    python -m glua_lib predict --run RUN_DIR --input PREP_DIR --out PRED_DIR [--split test]
    python -m glua_lib evaluate --pred PRED_DIR --gt PREP_DIR [--split test] [--out results.json]
    python -m glua_lib compare none.json glua.json oracle.json [--names ...] [--out tables.md]

METHOD: ``none``, ``global``, ``local``, ``glua``, the ablations ``local-unmasked`` and
``glua-unmasked``, or ``oracle`` (target labels: the upper bound).

The four commands share this module: each is a :class:`~glua_lib.cli.Command` (its options
and its ``run``), which the dispatcher finds as ``glua_lib.seg.cli:train`` and so on.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from glua_lib.cli import device_arg
from glua_lib.commands import Command
from glua_lib.config import get_profile
from glua_lib.io import atomic_write_text
from glua_lib.runfolder import TrainingDiverged
from glua_lib.methods import get_method
from glua_lib.results import (combine_evaluations, make_tables, save_results, tables_markdown,
                              tables_str)
from glua_lib.seg.predict import evaluate_folders, predict_folder
from glua_lib.seg.train import SegConfig, train_seg


def _add_train(p: argparse.ArgumentParser) -> None:
    p.add_argument("--method", required=True, help="none, global, local, glua (GLUA's local "
                   "step as its authors built it; ablations local-unmasked, glua-unmasked, "
                   "variants local-every-level, local-detached), the book's first guess "
                   "local-lossweight, glua-lossweight (and -unmasked twins) or oracle (oracle "
                   "trains on TARGET labels: the supervised upper bound); see "
                   "glua_lib.methods.METHODS")
    p.add_argument("--backbone", default=None, choices=("unet", "deeplab"),
                   help="the segmenter: unet (default) or deeplab, the GLUA authors' DeepLab-v2 "
                        "(dilated ResNet + ASPP, output stride 8; small in demo, ResNet-101 "
                        "layout in full)")
    p.add_argument("--source", type=Path, required=True, help="prepared source folder (labelled)")
    p.add_argument("--target", type=Path, required=True, help="prepared target folder")
    p.add_argument("--out", type=Path, required=True, help="run folder (resumed if it exists)")
    p.add_argument("--style-run", type=Path, default=None,
                   help="trained style model run folder (methods global, glua)")
    p.add_argument("--profile", default=None, help="demo or full (default: $GLUA_PROFILE or by "
                   "device)")
    p.add_argument("--seed", type=int, default=None, help="seed (default 0)")
    p.add_argument("--steps", type=int, default=None, help="training steps (default: profile)")
    p.add_argument("--batch-size", type=int, default=None, metavar="B",
                   help="slices per step (default: profile; lower it when the GPU runs out of "
                        "memory)")
    p.add_argument("--random-styles", action="store_true",
                   help="render the translated source in N(0, I) prior styles instead of k-means "
                        "styles of the real target (methods global, glua; as translate "
                        "--random-styles)")
    p.add_argument("--lr", type=float, default=None,
                   help="learning rate (default: profile; a run resumes only with its own)")
    p.add_argument("--no-amp", action="store_true",
                   help="float32 on CUDA too (the full profile trains in mixed precision); a run "
                        "may resume with or without it")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1, mps (default: best)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def _add_predict(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run", type=Path, required=True, help="run folder of train-seg")
    p.add_argument("--domain", default=None, choices=("target", "source"),
                   help="for local/glua runs, whose mask applies to target images: "
                        "(default: target when the input's modality is the run's target's)")
    p.add_argument("--input", type=Path, required=True, help="prepared folder to segment")
    p.add_argument("--out", type=Path, required=True, help="prediction folder (prepared format)")
    p.add_argument("--split", default=None, help="only this split (default: every subject)")
    p.add_argument("--batch-size", type=int, default=32, help="slices per forward pass")
    p.add_argument("--device", default=None, help="cpu, cuda, ... (default: best)")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty --out")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def _add_evaluate(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pred", type=Path, required=True, help="prediction folder")
    p.add_argument("--gt", type=Path, required=True, help="prepared folder with the labels")
    p.add_argument("--split", default="test", help="split to score ('all' for every subject)")
    p.add_argument("--name", default="prediction", help="row name in the printed table")
    p.add_argument("--protocol", default="per-volume", choices=("per-volume", "pooled"),
                   help="per-volume: each test volume scored, mean (std) over volumes (SIFA's); "
                        "pooled: all test volumes concatenated and scored once (the GLUA "
                        "authors' metric.py)")
    p.add_argument("--assd-unit", default="mm", choices=("mm", "voxel"),
                   help="ASSD in mm from the voxel spacing (default) or in voxels, as SIFA and "
                        "the GLUA authors report it")
    p.add_argument("--out", type=Path, default=None, help="write per-volume metrics + tables "
                   "as JSON")


def _add_compare(p: argparse.ArgumentParser) -> None:
    p.add_argument("results", type=Path, nargs="+", metavar="RESULTS_JSON",
                   help="files written by `evaluate --out`, one per method, in table order")
    p.add_argument("--names", nargs="+", default=None,
                   help="row names, one per file (default: each file's evaluate --name)")
    p.add_argument("--out", type=Path, default=None,
                   help="write the tables: Markdown for a .md file, else JSON")


def run_train(args: argparse.Namespace) -> int:

    get_method(args.method)  # unknown method: ValueError before anything is read
    device = device_arg(args.device)
    profile = get_profile(args.profile, device=device)
    overrides = {k: v for k, v in (("seed", args.seed), ("steps", args.steps),
                                   ("batch_size", args.batch_size), ("lr", args.lr),
                                   ("backbone", args.backbone))
                 if v is not None}
    if args.no_amp:
        overrides["amp"] = False
    if args.random_styles:
        overrides["styles"] = "random"
    config = SegConfig.from_profile(profile, method=args.method, **overrides)
    try:
        out = train_seg(args.method, args.source, args.target, args.out, config, device,
                        style_run=args.style_run, progress=not args.no_progress)
    except (TrainingDiverged, torch.OutOfMemoryError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"trained {args.method} ({config.steps} steps, profile {profile.name}) -> {out}")
    return 0


def run_predict(args: argparse.Namespace) -> int:

    out = predict_folder(args.run, args.input, args.out, device=device_arg(args.device),
                         batch_size=args.batch_size, split=args.split, overwrite=args.overwrite,
                         progress=not args.no_progress, domain=args.domain)
    print(f"wrote {out}")
    return 0


def run_evaluate(args: argparse.Namespace) -> int:

    split = None if args.split in (None, "all") else args.split
    per_volume = evaluate_folders(args.pred, args.gt, split=split, protocol=args.protocol,
                                  assd_unit=args.assd_unit)
    tables = make_tables({args.name: per_volume})
    print(tables_str(tables))
    if args.out is not None:
        save_results(args.out, per_volume, tables, name=args.name)
        print(f"wrote {args.out}")
    return 0


def run_compare(args: argparse.Namespace) -> int:

    tables = make_tables(combine_evaluations(args.results, args.names))
    print(tables_str(tables))
    if args.out is not None:
        text = (tables_markdown(tables) if args.out.suffix == ".md" else json.dumps(
            {"files": [str(f) for f in args.results],
             "tables": {k: t.to_dict() for k, t in tables.items()}}, indent=2))
        atomic_write_text(args.out, text + "\n")
        print(f"wrote {args.out}")
    return 0


train = Command(_add_train, run_train)
predict = Command(_add_predict, run_predict)
evaluate = Command(_add_evaluate, run_evaluate)
compare = Command(_add_compare, run_compare)
