"""Shared fixtures. Chapters and papermill runs use the `demo` profile unless told otherwise."""
from __future__ import annotations

import importlib.util
import os
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"


def chapters() -> list[Path]:
    """The chapter notebooks listed in _toc.yml, in order."""
    import yaml

    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [ROOT / f"{entry['file']}.ipynb" for entry in toc["chapters"]]
    return [f for f in files if f.exists()]


@pytest.fixture
def root() -> Path:
    return ROOT


@pytest.fixture(autouse=True)
def _demo_profile(monkeypatch):
    """Tests never pick the full profile by accident (a developer's GPU, say)."""
    monkeypatch.setenv("GLUA_PROFILE", os.environ.get("GLUA_PROFILE", "demo"))


@pytest.fixture
def other_threads():
    """``with other_threads() as (before, other):`` runs its block with another torch CPU thread
    count (floats summed in another order, as on another machine), then restores it."""
    import torch

    @contextmanager
    def switch():
        before = torch.get_num_threads()
        other = 1 if before != 1 else 2
        torch.set_num_threads(other)
        try:
            yield before, other
        finally:
            torch.set_num_threads(before)

    return switch


@pytest.fixture
def benchmark_script():
    """``benchmark_script("ablation")`` imports ``benchmarks/ablation.py`` as a fresh module (the
    scripts are not a package; each test gets its own copy to monkeypatch)."""
    def load(name: str):
        spec = importlib.util.spec_from_file_location(f"{name}_script",
                                                      ROOT / "benchmarks" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load


@pytest.fixture
def fake_translator(monkeypatch):
    """The ``translate_folder`` that the methods training on translated source call
    (:func:`glua_lib.methods.translated_source`) replaced by a stand-in that copies the source
    folder as its "translation" (they run without a style model); returns the list of its calls,
    ``(run_dir, source_dir, n_styles, seed, styles)`` each."""
    import shutil

    import glua_lib.methods

    calls = []

    def translate_folder(run_dir, source_dir, out_dir, n_styles=3, device=None, seed=0,
                         overwrite=False, progress=True, *, styles="kmeans"):
        calls.append((run_dir, source_dir, n_styles, seed, styles))
        shutil.copytree(source_dir, out_dir)
        return out_dir

    monkeypatch.setattr(glua_lib.methods, "translate_folder", translate_folder)
    return calls
