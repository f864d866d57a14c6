"""Command line: ``python -m data_prep DATASET --src RAW_DIR --out PREP_DIR [options]``.

Each dataset module exposes ``add_arguments(parser)`` (its own options) and ``run(args) -> Path``
(writes the prepared folder and returns it). Options common to all are added here.
"""
from __future__ import annotations

import argparse
import importlib
import shlex
import sys
from pathlib import Path

DATASETS = {
    "mmwhs": ("data_prep.mmwhs", "MM-WHS 2017 cardiac MR or CT (NIfTI)"),
    "chaos": ("data_prep.chaos", "CHAOS MR T2-SPIR abdominal (DICOM + PNG masks)"),
    "btcv": ("data_prep.btcv", "BTCV / Synapse abdominal CT (NIfTI)"),
    "sifa": ("data_prep.sifa", "the SIFA release of MM-WHS (TFRecord + npz)"),
    "glua-png": ("data_prep.glua_png", "GLUA authors' PNG slices of MM-WHS (images/, labels/)"),
    "phantom": ("glua_lib.phantoms.generate", "synthetic MR/CT phantoms (the embedded default)"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m data_prep",
        description="Convert a dataset (or generate phantoms) into the prepared format.")
    sub = parser.add_subparsers(dest="dataset", required=True, metavar="DATASET")
    for name, (module, help_text) in DATASETS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name != "phantom":
            p.add_argument("--src", type=Path, required=True, help="raw dataset folder (read only)")
        p.add_argument("--out", type=Path, required=True, help="prepared output folder")
        p.add_argument("--overwrite", action="store_true", help="replace a non-empty --out")
        p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
        importlib.import_module(module).add_arguments(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    args.command = "python -m data_prep " + shlex.join(argv)
    module = importlib.import_module(DATASETS[args.dataset][0])
    try:
        out = module.run(args)
    except (FileNotFoundError, FileExistsError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
