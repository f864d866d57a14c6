"""Command line: ``python -m glua_lib COMMAND [options]``.

Each command lives in a module that exposes ``add_arguments(parser)`` and ``run(args) -> int``
(an exit status); this file only dispatches. Errors that name a file (``ValueError``,
``FileNotFoundError``, ``FileExistsError``) are printed as ``error: ...`` with exit status 2.
"""
from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS: dict[str, tuple[str, str]] = {
    # name: (module, one-line help); each module is imported when the parser is built
}


def build_parser(commands: dict[str, tuple[str, str]] | None = None) -> argparse.ArgumentParser:
    commands = COMMANDS if commands is None else commands
    parser = argparse.ArgumentParser(prog="python -m glua_lib",
                                     description="GLUA: train, translate, predict, evaluate.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module, help_text) in commands.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        importlib.import_module(module).add_arguments(p)
        p.set_defaults(_module=module)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        return int(importlib.import_module(args._module).run(args) or 0)
    except (FileNotFoundError, FileExistsError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
