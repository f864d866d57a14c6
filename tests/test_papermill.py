"""Every chapter runs under papermill with injected parameters.

Chapters 1 and 4 run with an *empty* cache folder: chapter 4 needs everything earlier chapters
make (phantoms, the style model, trained segmenters), so running it from nothing proves that a
reader can open it first. Chapters 2 and 3 run on the cache `make test` has already filled (the
book build trains their models), which keeps CI well inside its time limit.
"""
import os

import nbformat
import papermill
import pytest

from conftest import BOOK, chapters

pytestmark = pytest.mark.slow
FROM_NOTHING = {"01_data", "04_segmentation"}


@pytest.mark.parametrize("chapter", chapters(), ids=lambda p: p.stem)
def test_chapter_runs_with_injected_parameters(chapter, tmp_path, monkeypatch):
    if chapter.stem in FROM_NOTHING or not os.environ.get("GLUA_CACHE"):
        # the kernel inherits this environment
        monkeypatch.setenv("GLUA_CACHE", str(tmp_path / "cache"))
    cache = os.environ["GLUA_CACHE"]
    out = tmp_path / chapter.name
    # execution_timeout: nbclient can, rarely, block for good on a cell that opens ipywidgets
    # (jupyter/nbclient#312, nteract/papermill#723; seen once here on chapter 1's live slider);
    # a per-cell limit turns such a hang into a failure instead of stalling CI. The slowest cell
    # (chapter 4 training six methods from an empty cache on 1 thread) stays well under it: the
    # whole test module ran in about 11 minutes in CI.
    papermill.execute_notebook(str(chapter), str(out), parameters={"profile": "demo", "seed": 0},
                               cwd=str(BOOK), kernel_name="python3", progress_bar=False,
                               execution_timeout=1800)
    nb = nbformat.read(out, as_version=4)
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and 'profile = "demo"' in injected[0].source
    printed = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                      for o in c.get("outputs", []) if o.get("name") == "stdout")
    assert "profile        : demo" in printed and "seed           : 0" in printed
    assert cache in printed
