"""Train the runs the chapters read and execute the chapters, both cores busy: `make book`'s first step.

    python book/_ext/execute_book.py [--workers 2] [--threads 1] [--jupyter-cache DIR]

Before, ``make book`` trained the runs (``python -m glua_lib cache-book-runs``) and then let
Jupyter Book execute the chapters one after the other: while chapter 2's style run trained on one
core, the other core finished ``local`` and then waited minutes for it. Here one pool of
``--workers`` processes takes the training jobs of :func:`glua_lib.pipeline.book_runs` first, then
each chapter as soon as the runs it reads are there (:data:`NEEDS`): chapters 1, 3 and 4 execute
on the free core while the style run trains, chapter 2 when it is done. Each chapter is executed
exactly as MyST-NB executes it (``jupyter_cache``'s ``single_nb_execution``, the timeout and
``allow_errors`` of ``_config.yml``, the chapter's folder as working directory), with
``OMP_NUM_THREADS=--threads`` so that it does not slow the training beside it, and its executed
notebook goes into the Jupyter cache that ``_config.yml`` names (``execute_notebooks: cache``),
where ``jupyter-book build`` finds it. The cache is emptied first, so every chapter is executed
afresh each time, as ``execute_notebooks: force`` would; a chapter that raises stops everything
with its traceback and exit status 1.

Each finished job and chapter prints one line (a chapter's in MyST-NB's words, "…: Executed
notebook in … seconds", which ``benchmarks/book_times.py`` reads), and the last line gives the
whole time.
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import yaml
from jupyter_cache import get_cache
from jupyter_cache.base import CacheBundleIn
from jupyter_cache.executors.utils import single_nb_execution
from nbclient.exceptions import CellTimeoutError
from traitlets.config import Config

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from glua_lib.config import get_profile  # noqa: E402
from glua_lib.pipeline import Job, book_runs, train_job  # noqa: E402
from glua_lib.runtime import get_device  # noqa: E402

# The training jobs (by kind) a chapter reads; a chapter is executed once they are all done. A
# chapter that reads a run not listed still gets it right: the cache's file locks make it wait
# for a run being trained, or it trains the run itself.
NEEDS = {"01_data": (), "02_global_alignment": ("style", "ideal", "seg"),
         "03_local_masks": ("seg",), "04_segmentation": ("seg",)}


def chapters(root: Path = ROOT) -> list[Path]:
    """The notebooks of ``_toc.yml``, in the book's order."""
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    files = [toc["root"], *(c["file"] for c in toc.get("chapters", []))]
    return [root / f"{f}.ipynb" for f in files if (root / f"{f}.ipynb").is_file()]


# The cells that open ipywidgets, and their limit in seconds: such a cell draws one figure in 0.1 to
# a few seconds. nbclient can, rarely, miss the kernel's reply to it and wait while the kernel
# sits idle (jupyter/nbclient#312, nteract/papermill#723); pyzmq's last poll usually finds the
# reply when the cell's limit runs out, so a short limit turns that wait from `_config.yml`'s
# 1800 s into a minute, and a chapter whose widget cell still times out is run once more.
WIDGET_CELL = "plots.live_slider("
WIDGET_TIMEOUT = 60


def cell_timeout(cell, timeout: int) -> int:
    """A cell's limit in seconds: :data:`WIDGET_TIMEOUT` for a widget cell, else ``timeout``."""
    return WIDGET_TIMEOUT if WIDGET_CELL in cell.source else timeout


def execute_chapter(path: str, timeout: int, allow_errors: bool, threads: int) -> tuple:
    """Execute one chapter in place as MyST-NB does; ``(path, notebook, seconds, traceback or
    None)``. Runs in a worker process, whose environment its kernel inherits.

    The kernel talks to its client over Unix sockets in a folder of its own (ZeroMQ's ``ipc``
    transport) instead of TCP ports on localhost: while the book builds, ``make test`` starts
    other kernels beside it, and a TCP port picked for one kernel can be taken by another
    before it binds it. A chapter's client that waited on an idle kernel for ever was, once
    seen with ``py-spy`` and a second client, ipykernel 7's shell channel leaving a request
    unread (ipython/ipykernel#1554); ``constraints.txt`` pins ipykernel 6 for that. A widget
    cell has :data:`WIDGET_TIMEOUT` seconds (:func:`cell_timeout`), and a chapter whose widget
    cell timed out is executed once more from the start; any other error is returned."""
    os.environ["OMP_NUM_THREADS"] = str(threads)
    for attempt in (1, 2):
        nb = nbformat.read(path, as_version=4)
        with tempfile.TemporaryDirectory(prefix="glua-kernel-") as sockets:
            config = Config()
            config.KernelManager.transport = "ipc"
            config.KernelManager.ip = os.path.join(sockets, "kernel")
            result = single_nb_execution(nb, cwd=str(Path(path).parent), timeout=timeout,
                                         allow_errors=allow_errors, meta_override=True,
                                         config=config,
                                         timeout_func=lambda cell: cell_timeout(cell, timeout))
        missed = isinstance(result.err, CellTimeoutError) and WIDGET_CELL in str(result.err)
        if not (missed and attempt == 1):
            break
        print(f"execute-book: {path}: no reply to a widget cell in {WIDGET_TIMEOUT} s "
              "(jupyter/nbclient#312); running the chapter again", file=sys.stderr, flush=True)
    return path, nb, result.time, result.exc_string if result.err is not None else None


def store(cache, path: str, nb, seconds: float) -> None:
    """Put an executed chapter into the Jupyter cache, as MyST-NB's cache mode would, and check
    that MyST-NB will find it there for the notebook on disk.

    Raises:
        RuntimeError: the cache does not match the notebook on disk (so the book build would
            execute it again).
    """
    stage = cache.add_nb_to_project(path)
    cache.cache_notebook_bundle(CacheBundleIn(nb, stage.uri, data={"execution_seconds": seconds}),
                                check_validity=False, overwrite=True)
    try:
        cache.match_cache_notebook(nbformat.read(path, as_version=4))
    except KeyError:
        raise RuntimeError(f"{path}: its executed copy does not match the notebook on disk in "
                           "the Jupyter cache; was the notebook edited while it ran?") from None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2, help="processes at once (default 2)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of each training "
                        "job and chapter kernel (default 1)")
    parser.add_argument("--jupyter-cache", type=Path, default=None, help="where the executed "
                        "chapters go (default: _config.yml's execute.cache)")
    parser.add_argument("--no-runs", action="store_true", help="execute the chapters only")
    parser.add_argument("--root", type=Path, default=ROOT, help="the book's folder, with "
                        "_config.yml and _toc.yml (default: this checkout)")
    args = parser.parse_args(argv)
    if args.workers < 1 or args.threads < 1:
        parser.error("--workers and --threads must be >= 1")
    execute = yaml.safe_load((args.root / "_config.yml").read_text())["execute"]
    if execute.get("execute_notebooks") != "cache":
        raise SystemExit("error: _config.yml's execute.execute_notebooks must be 'cache' for the "
                         "book build to use the chapters executed here")
    jcache = args.jupyter_cache or args.root / execute["cache"]
    shutil.rmtree(jcache, ignore_errors=True)  # every chapter afresh, as `force` would
    cache = get_cache(str(jcache))

    device = get_device()
    profile = get_profile(None, device)
    jobs: list[Job] = [] if args.no_runs else book_runs()
    todo = {p.stem: p for p in chapters(args.root)}
    print(f"execute-book: {len(jobs)} runs of the {profile.name} profile and {len(todo)} "
          f"chapters, {args.workers} at a time with {args.threads} thread(s) each, on {device}",
          flush=True)
    start = time.perf_counter()
    pool = multiprocessing.get_context("spawn").Pool(args.workers)  # no forked torch state
    running = {pool.apply_async(train_job, (job, profile, str(device), args.threads)): job.kind
               for job in jobs}

    def submit_ready() -> None:
        busy = set(running.values())
        for stem in [s for s in todo if not busy.intersection(NEEDS.get(s, ("style", "seg")))]:
            running[pool.apply_async(execute_chapter, (
                str(todo.pop(stem)), execute["timeout"], bool(execute["allow_errors"]),
                args.threads))] = "chapter"

    try:
        submit_ready()
        while running:
            done = [r for r in running if r.ready()]
            if not done:
                time.sleep(0.2)
            for result in done:
                kind = running.pop(result)
                if kind == "chapter":
                    path, nb, seconds, error = result.get()
                    if error is not None:
                        print(error, file=sys.stderr)
                        print(f"execute-book: {path} raised; the book is not built",
                              file=sys.stderr)
                        return 1
                    store(cache, path, nb, seconds)
                    print(f"{path}: Executed notebook in {seconds:.2f} seconds", flush=True)
                else:
                    job, run, seconds = result.get()
                    print(f"{str(job):<44} {seconds:6.0f} s  {Path(run).name}", flush=True)
            submit_ready()
    finally:
        pool.terminate()  # nothing left on success; on a failure, stop the other jobs now
        pool.join()
    print(f"execute-book: done in {time.perf_counter() - start:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
