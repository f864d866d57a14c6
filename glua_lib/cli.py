"""The command line ``python -m glua_lib COMMAND [options]`` (its ``__main__`` calls :func:`main`).

:data:`COMMANDS` is a command table (:mod:`glua_lib.commands`, the convention ``python -m
data_prep`` uses too): each command is an object with ``add_arguments(parser)`` and ``run(args) ->
int`` (an exit status), a module that defines both or a :class:`~glua_lib.commands.Command` inside a
module that serves several commands (named ``"module:attribute"``). This file only dispatches.
Errors that name a file (``ValueError``, ``FileNotFoundError``, ``FileExistsError``) are printed as
``error: ...`` with exit status 2.
"""
from __future__ import annotations

import argparse
import sys
import warnings

from glua_lib import commands as command_table
from glua_lib.commands import ERRORS, CommandTable
from glua_lib.runtime import AdviceWarning, get_device

COMMANDS: CommandTable = {
    # name: ("module" or "module:attribute", one-line help); imported when the parser is built
    "train-style": ("glua_lib.style.cli:train", "train source<->target style transfer (chapter 2)"),
    "translate": ("glua_lib.style.cli:translate",
                  "render a prepared source folder in target styles (chapter 2)"),
    "train-seg": ("glua_lib.seg.cli:train", "train a segmenter: none, global, local, glua "
                  "(GLUA's local step as its authors built it; variants local-every-level, "
                  "local-detached, -unmasked twins), the book's first guess local-lossweight, "
                  "glua-lossweight, or oracle (chapters 3, 4)"),
    "predict": ("glua_lib.seg.cli:predict", "segment a prepared folder with a trained segmenter"),
    "evaluate": ("glua_lib.seg.cli:evaluate", "per-class 3D Dice and ASSD (mm) of predictions"),
    "compare": ("glua_lib.seg.cli:compare", "several evaluate results in one table (with the "
                "gap closed when none and oracle are among them)"),
    "cache-book-runs": ("glua_lib.cache_cli", "train the runs the chapters read (default "
                        "parameters), several at a time, into the cache"),
    "commit-book-runs": ("glua_lib.cache_cli:commit", "retrain the segmenters committed in "
                         "book/runs (make book-runs)"),
}


def device_arg(name: str | None):
    """``--device`` of a command: the device, or ``ValueError`` (exit status 2) if unavailable."""
    try:
        return get_device(name)
    except RuntimeError as err:  # e.g. --device cuda on a machine without CUDA
        raise ValueError(f"--device: {err}") from None


def build_parser(commands: CommandTable | None = None) -> argparse.ArgumentParser:
    """The parser of ``python -m glua_lib`` (``commands``: :data:`COMMANDS` unless given)."""
    return command_table.build_parser(
        COMMANDS if commands is None else commands, prog="python -m glua_lib",
        description="GLUA: train, translate, predict, evaluate, compare.")


def main(argv: list[str] | None = None) -> int:

    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    with warnings.catch_warnings():  # restores showwarning afterwards
        show = warnings.showwarning

        def plain(message, category, filename, lineno, file=None, line=None):
            if issubclass(category, AdviceWarning):  # advice, not a code location
                print(f"warning: {message}", file=sys.stderr)
            else:
                show(message, category, filename, lineno, file, line)

        warnings.showwarning = plain
        try:
            return int(command_table.call(args) or 0)
        except ERRORS as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
