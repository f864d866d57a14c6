"""Durations of one `make test`: the book's cached runs, each chapter, `make book`, `make test`.

    python benchmarks/book_times.py --speed _build/speed.json --book-log _build/book-build.log \
        --make-test-s SECONDS --out _build/book-times.json

``make test`` calls it when it ends (its figures land in ``_build/book-times.json``); copied to
``benchmarks/results/book-times-demo.json`` they are the reference that
``benchmarks/machine_speed.py`` scales to another machine, and the table in RESULTS.md. The
chapter times are those ``book/_ext/execute_book.py`` logs in MyST-NB's words ("Executed notebook
in … seconds"), each chapter once the runs it reads are in the cache; its last line gives the
whole time of the runs and chapters.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from glua_lib.io import atomic_write_text  # noqa: E402
from glua_lib.runtime import code_version  # noqa: E402

EXECUTED = re.compile(r"/([^/\s]+)\.ipynb: Executed notebook in ([0-9.]+) seconds")
EXECUTED_ALL = re.compile(r"^execute-book: done in ([0-9.]+) s", re.M)
BOOK = re.compile(r"^make book: ([0-9.]+) s", re.M)


def parse_book_log(text: str) -> dict:
    """``{"chapters": {stem: s}, "execute_book_s": s, "make_book_s": s}`` from a book build's
    log (``None`` where a line is missing).

    Raises:
        ValueError: no chapter was executed in the log.
    """
    chapters = dict(sorted((stem, float(s)) for stem, s in EXECUTED.findall(text)))  # book order
    if not chapters:
        raise ValueError("no 'Executed notebook in … seconds' line: is this a book build's log?")
    executed, book = EXECUTED_ALL.search(text), BOOK.search(text)
    return {"chapters": chapters, "execute_book_s": float(executed[1]) if executed else None,
            "make_book_s": float(book[1]) if book else None}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speed", type=Path, required=True,
                        help="machine_speed.py --save's file (this machine's speed)")
    parser.add_argument("--book-log", type=Path, required=True, help="the book build's log")
    parser.add_argument("--make-test-s", type=float, default=None, help="make test's wall time")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    for path in (args.speed, args.book_log):
        if not path.is_file():
            raise SystemExit(f"error: {path} does not exist: run `make test`, which writes it")
    speed = json.loads(args.speed.read_text())
    times = parse_book_log(args.book_log.read_text(errors="replace"))
    result = {"code_version": code_version(), "cpu": speed["cpu"],
              "steps_per_s": speed["steps_per_s"], "make_test_s": args.make_test_s, **times}
    atomic_write_text(args.out, json.dumps(result, indent=2) + "\n")
    print(f"at {speed['steps_per_s']:.2f} demo steps/s ({speed['cpu']}): make test "
          f"{args.make_test_s or float('nan'):.0f} s, make book {times['make_book_s'] or float('nan'):.0f} s "
          f"(runs and chapters {times['execute_book_s'] or float('nan'):.0f} s; chapters "
          + ", ".join(f"{k} {v:.0f} s" for k, v in times["chapters"].items()) + f") -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
