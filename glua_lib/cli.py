"""The command line ``python -m glua_lib COMMAND [options]`` (its ``__main__`` calls :func:`main`).

Each command is an object with ``add_arguments(parser)`` and ``run(args) -> int`` (an exit status):
a module that defines both, or a :class:`Command` inside a module that serves several commands
(named ``"module:attribute"``). This file only dispatches. Errors that name a file (``ValueError``,
``FileNotFoundError``, ``FileExistsError``) are printed as ``error: ...`` with exit status 2.
"""
from __future__ import annotations

import argparse
import importlib
import sys
import warnings
from typing import Callable, NamedTuple

from glua_lib.runtime import AdviceWarning, get_device


class Command(NamedTuple):
    """One command of a module that serves several: its options and what it runs."""
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


COMMANDS: dict[str, tuple[str, str]] = {
    # name: ("module" or "module:attribute", one-line help); imported when the parser is built
    "train-style": ("glua_lib.style.cli:train", "train source<->target style transfer (chapter 2)"),
    "translate": ("glua_lib.style.cli:translate",
                  "render a prepared source folder in target styles (chapter 2)"),
    "train-seg": ("glua_lib.seg.cli:train", "train a segmenter: none, global, local, glua "
                  "(+ ablations), the authors' local step local-attn, glua-attn (+ variants "
                  "local-attn-every-level, local-attn-detached) or oracle (chapters 3, 4)"),
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


def _resolve(target: str):
    module, _, attribute = target.partition(":")
    obj = importlib.import_module(module)
    return getattr(obj, attribute) if attribute else obj


def build_parser(commands: dict[str, tuple[str, str]] | None = None) -> argparse.ArgumentParser:
    commands = COMMANDS if commands is None else commands
    parser = argparse.ArgumentParser(
        prog="python -m glua_lib", description="GLUA: train, translate, predict, evaluate, compare.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module, help_text) in commands.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        _resolve(module).add_arguments(p)
        p.set_defaults(_target=module)
    return parser


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
            return int(_resolve(args._target).run(args) or 0)
        except (FileNotFoundError, FileExistsError, ValueError) as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
