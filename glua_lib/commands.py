"""Command tables: the convention ``python -m glua_lib`` and ``python -m data_prep`` share.

A command table (:data:`CommandTable`) maps each command name to ``("module" or
"module:attribute", one-line help)``. The target is an object with ``add_arguments(parser)`` (its
options) and ``run(args)``: a module that defines both, or a :class:`Command` inside a module that
serves several commands. Targets are imported only when :func:`build_parser` builds the parser;
the parsed arguments keep their target, and :func:`call` runs it. Errors that name a file or a
value (:data:`ERRORS`) are printed by each command line as ``error: ...`` with exit status 2.

This module imports nothing of the library, so both command lines can import it.
"""
from __future__ import annotations

import argparse
import importlib
from typing import Callable, NamedTuple

CommandTable = dict[str, tuple[str, str]]  # name: ("module" or "module:attribute", help)
ERRORS = (FileNotFoundError, FileExistsError, ValueError)  # printed as "error: ...", status 2


class Command(NamedTuple):
    """One command of a module that serves several: its options and what it runs."""
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], object]


def resolve(target: str):
    """The object a table names: the module ``"module"``, or ``"module:attribute"`` in it."""
    module, _, attribute = target.partition(":")
    obj = importlib.import_module(module)
    return getattr(obj, attribute) if attribute else obj


def build_parser(commands: CommandTable, *, prog: str, description: str,
                 dest: str = "command", metavar: str = "COMMAND",
                 common: Callable[[str, argparse.ArgumentParser], None] | None = None,
                 ) -> argparse.ArgumentParser:
    """A parser with one sub-command per entry of ``commands``, in the table's order.

    Each entry's target is imported (:func:`resolve`) and adds its options to its sub-parser,
    after ``common(name, sub_parser)`` (options the command line adds to every command) when
    given. The chosen name is parsed into ``dest``; :func:`call` runs the chosen target.
    """
    parser = argparse.ArgumentParser(prog=prog, description=description)
    sub = parser.add_subparsers(dest=dest, required=True, metavar=metavar)
    for name, (target, help_text) in commands.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if common is not None:
            common(name, p)
        resolve(target).add_arguments(p)
        p.set_defaults(_target=target)
    return parser


def call(args: argparse.Namespace):
    """Run the command ``args`` were parsed for (by :func:`build_parser`): its ``run(args)``,
    returning what it returns."""
    return resolve(args._target).run(args)
