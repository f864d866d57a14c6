"""Command line: ``python -m data_prep DATASET --src RAW_DIR --out PREP_DIR [options]``.

:data:`COMMANDS` is a command table (:mod:`glua_lib.commands`, the convention ``python -m
glua_lib`` uses too): each dataset's target has ``add_arguments(parser)`` (its own options) and
``run(args) -> Path`` (writes the prepared folder and returns it). Options common to all are added
here; ``phantom`` generates the synthetic phantoms of :mod:`glua_lib.phantoms` (no ``--src``).
"""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from glua_lib import commands as command_table
from glua_lib.commands import ERRORS, CommandTable

COMMANDS: CommandTable = {
    "mmwhs": ("data_prep.mmwhs", "MM-WHS 2017 cardiac MR or CT (NIfTI)"),
    "chaos": ("data_prep.chaos", "CHAOS MR T2-SPIR abdominal (DICOM + PNG masks)"),
    "btcv": ("data_prep.btcv", "BTCV / Synapse abdominal CT (NIfTI)"),
    "sifa": ("data_prep.sifa", "the SIFA release of MM-WHS (TFRecord + npz)"),
    "glua-png": ("data_prep.glua_png", "GLUA authors' PNG slices of MM-WHS (images/, labels/)"),
    "phantom": ("glua_lib.phantoms.generate", "synthetic MR/CT phantoms (the embedded default)"),
}


def add_common_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    """The options every dataset takes (``--src`` all but ``phantom``, which reads nothing)."""
    if name != "phantom":
        parser.add_argument("--src", type=Path, required=True,
                            help="raw dataset folder (read only)")
    parser.add_argument("--out", type=Path, required=True, help="prepared output folder")
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty --out")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def build_parser(commands: CommandTable | None = None) -> argparse.ArgumentParser:
    """The parser of ``python -m data_prep`` (``commands``: :data:`COMMANDS` unless given)."""
    return command_table.build_parser(
        COMMANDS if commands is None else commands, prog="python -m data_prep",
        description="Convert a dataset (or generate phantoms) into the prepared format.",
        dest="dataset", metavar="DATASET", common=add_common_arguments)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    args.command = "python -m data_prep " + shlex.join(argv)
    try:
        out = command_table.call(args)
    except ERRORS as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
