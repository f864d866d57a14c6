"""Trained runs committed with the book (``book/runs/``), installed into the cache when it lacks them.

A chapter *teaches* some runs and only *reads* others: chapter 2 trains the style run and reads
``global``'s ceiling, chapter 3 trains the ``local`` segmenter, while chapter 4 compares six
segmenters it does not train. Training all of them from an empty cache takes tens of minutes on
a laptop CPU, so the book's segmenters of the ``demo`` profile (:func:`glua_lib.pipeline.book_runs`,
the ceiling included) are committed, small, in
``book/runs/<run folder name>/``: the training log and config as they were, the final weights in
float16 (``model.pt``, with the test-time mask of a masked method), and for the run whose training
snapshots a chapter reads (chapter 3's ``local``) its discriminators and snapshots
(``hook.pt``); ``committed.json`` records the command that made them, the code version, the
machine, and a fingerprint of the training code. :func:`install` copies one into the cache,
weights back in float32, when the cache lacks that run folder (the folder name already fixes
every setting and the phantoms); evaluation is then done here as for a trained run.

A committed run is used only while the training code is the code that made it
(:func:`training_code_fingerprint`, a hash of those modules' syntax trees, so comments and
docstrings do not count); otherwise the run is trained, with a warning. ``make book-runs``
remakes them (:func:`write`); ``tests/test_committed_runs.py`` fails while they are stale.

Float16 storage halves the files; the Dice of every committed run with float16-rounded weights
is measured against its float32 original when they are made (``committed.json``,
``dice_float32`` / ``dice_float16``).
"""
from __future__ import annotations

import ast
import functools
import hashlib
import io
import json
import os
import shutil
import warnings
from pathlib import Path

import torch

from glua_lib.checkpoint import load_checkpoint, save_checkpoint
from glua_lib.io import atomic_write_bytes, atomic_write_text

MANIFEST = "committed.json"  # provenance of the committed runs, in the folder that holds them
MARK = "installed.json"  # written into a cache run folder that was installed, not trained
DONE = "done.json"  # marks a finished run folder (glua_lib.pipeline uses this one)
COPIED = ("config.json", "run.json", "method.json", "log.jsonl", DONE)  # kept as they are
SNAPSHOT_METHODS = ("local",)  # runs whose discriminators and snapshots a chapter reads (ch. 3)

_ROOT = Path(__file__).resolve().parents[1]
BOOK_RUNS = _ROOT / "book" / "runs"  # the committed runs of this checkout
# The modules a trained run depends on: data and phantoms, models, losses, trainers, style transfer.
TRAINING_CODE = ("glua_lib/config.py", "glua_lib/runtime.py", "glua_lib/checkpoint.py",
                 "glua_lib/runfolder.py",
                 "glua_lib/data", "glua_lib/method.py", "glua_lib/methods.py",
                 "glua_lib/seg/train.py", "glua_lib/seg/unet.py", "glua_lib/seg/deeplab.py",
                 "glua_lib/seg/losses.py", "glua_lib/local/methods.py",
                 "glua_lib/local/attention.py", "glua_lib/local/attention_methods.py",
                 "glua_lib/local/discriminator.py", "glua_lib/local/mask.py",
                 "glua_lib/style/models.py", "glua_lib/style/losses.py",
                 "glua_lib/style/train.py", "glua_lib/style/translate.py",
                 "glua_lib/phantoms", "glua_lib/gap.py")


def committed_dir() -> Path | None:
    """Where committed runs are read from: ``$GLUA_COMMITTED_RUNS`` if set (empty: nowhere,
    ``None``), else ``book/runs`` of the checkout this library was imported from."""
    env = os.environ.get("GLUA_COMMITTED_RUNS")
    if env is None:
        return BOOK_RUNS
    return Path(env).expanduser() if env.strip() else None


def _without_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(body, list) and body and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return tree


def source_fingerprint(paths: list[Path], root: Path) -> str:
    """12 hex digits of the syntax trees of the Python files ``paths`` (docstrings left out,
    comments and layout never seen) and of their names relative to ``root``."""
    digest = hashlib.sha1()
    for path in sorted(paths):
        tree = _without_docstrings(ast.parse(path.read_text(encoding="utf-8")))
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(ast.dump(tree, annotate_fields=False).encode() + b"\0")
    return digest.hexdigest()[:12]


@functools.lru_cache(maxsize=1)
def training_code_fingerprint() -> str:
    """:func:`source_fingerprint` of :data:`TRAINING_CODE`: changes when code that could change a
    trained run changes, not when a comment or docstring does."""
    files = [p for entry in TRAINING_CODE for p in
             ((_ROOT / entry).rglob("*.py") if (_ROOT / entry).is_dir() else [_ROOT / entry])]
    return source_fingerprint(files, _ROOT)


def manifest(folder: Path | None = None) -> dict | None:
    """The committed runs' ``committed.json`` (``None`` when there are none)."""
    folder = folder or committed_dir()
    path = folder / MANIFEST if folder else None
    return json.loads(path.read_text()) if path and path.is_file() else None


def _cast(obj, dtype: torch.dtype, only: torch.dtype):
    """``obj`` (nested dicts/lists of tensors) with every ``only`` tensor cast to ``dtype``."""
    if torch.is_tensor(obj):
        return obj.to(dtype) if obj.dtype == only else obj
    if isinstance(obj, dict):
        return type(obj)((k, _cast(v, dtype, only)) for k, v in obj.items())
    if isinstance(obj, list):
        return [_cast(v, dtype, only) for v in obj]
    return obj


def available(out: Path) -> bool:
    """Whether :func:`install` would install a committed copy of the run folder ``out`` (one is
    committed under its name, finished, by this training code, and ``out`` does not exist yet)."""
    folder = committed_dir()
    src = folder / out.name if folder else None
    return (src is not None and not out.exists() and (src / DONE).is_file()
            and (manifest(src.parent) or {}).get("training_code") == training_code_fingerprint())


def install(out: Path) -> bool:
    """Copy the committed run named ``out.name`` into ``out`` (float32 weights, a
    ``checkpoint.pt`` without optimiser state, :data:`MARK`); ``False`` (nothing done) when
    there is none, ``out`` exists, or the training code changed since it was made (then with a
    warning). The caller holds the run's lock."""
    folder = committed_dir()
    src = folder / out.name if folder else None
    if src is None or out.exists() or not (src / DONE).is_file():
        return False
    made = manifest(src.parent) or {}
    if made.get("training_code") != training_code_fingerprint():
        warnings.warn(f"{src}: committed by other training code (fingerprint "
                      f"{made.get('training_code')}, this code {training_code_fingerprint()}); "
                      "training the run instead. `make book-runs` remakes the committed runs.",
                      stacklevel=3)
        return False
    tmp = out.with_name(f".{out.name}.installing")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name in COPIED:
        if (src / name).is_file():
            shutil.copy2(src / name, tmp / name)
    final = _cast(load_checkpoint(src / "model.pt"), torch.float32, torch.float16)
    save_checkpoint(tmp / "model.pt", final)
    state = {"model": final["model"], "step": final["step"], "config": final["config"]}
    if (src / "hook.pt").is_file():
        state.update(_cast(load_checkpoint(src / "hook.pt"), torch.float32, torch.float16))
    save_checkpoint(tmp / "checkpoint.pt", state)
    atomic_write_text(tmp / MARK, json.dumps({"from": str(src), **{
        k: made.get(k) for k in ("command", "code_version", "machine", "torch", "made_on")}},
        indent=2) + "\n")
    os.replace(tmp, out)
    return True


def origin(run: str | os.PathLike) -> str:
    """Where a run folder came from, for a chapter to print: trained here, or installed from
    the committed runs (with the command, code version and machine that made them)."""
    mark = Path(run) / MARK
    if not mark.is_file():
        return "trained on this machine"
    m = json.loads(mark.read_text())
    return (f"installed from the committed runs (`{m['command']}` at "
            f"{str(m['code_version'])[:7]}, {m['machine']})")


def _save_stable(path: Path, state: dict) -> None:
    """``torch.save`` through memory: the archive inside is always named ``archive`` (saved to a
    path, it is named after the temporary file), so the same weights give the same bytes and a
    remade run that did not change leaves git nothing to store."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def slim(run: Path, dest: Path) -> None:
    """Write the committed form of the finished ``run`` folder into ``dest`` (see the module
    docstring): what the chapters read, weights in float16, no optimiser or RNG state."""
    dest.mkdir(parents=True)
    for name in COPIED:
        if (run / name).is_file():
            shutil.copy2(run / name, dest / name)
    _save_stable(dest / "model.pt",
                 _cast(load_checkpoint(run / "model.pt"), torch.float16, torch.float32))
    hook = load_checkpoint(run / "checkpoint.pt").get("hook")
    method = json.loads((run / "run.json").read_text()).get("method")
    if hook and method in SNAPSHOT_METHODS:  # the others' discriminators no chapter reads
        kept = {k: v for k, v in hook.items() if k not in ("optimizer", "scaler")}
        _save_stable(dest / "hook.pt", {"hook": _cast(kept, torch.float16, torch.float32)})


def write(runs: list[Path], dest: Path, info: dict) -> Path:
    """Replace the committed runs in ``dest`` by the slim forms of ``runs`` (finished run
    folders) and a ``committed.json`` of ``info`` plus the training-code fingerprint; the old
    folder is swapped out only when the new one is complete."""
    new = dest.with_name(dest.name + ".new")
    shutil.rmtree(new, ignore_errors=True)
    new.mkdir(parents=True)
    for run in runs:
        slim(Path(run), new / Path(run).name)
    atomic_write_text(new / MANIFEST, json.dumps(
        {**info, "training_code": training_code_fingerprint(),
         "runs": sorted(Path(r).name for r in runs)}, indent=2) + "\n")
    old = dest.with_name(dest.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if dest.exists():
        os.replace(dest, old)
    os.replace(new, dest)
    shutil.rmtree(old, ignore_errors=True)
    return dest


__all__ = ["BOOK_RUNS", "MANIFEST", "available", "committed_dir", "install", "manifest", "origin", "slim",
           "source_fingerprint", "training_code_fingerprint", "write"]
