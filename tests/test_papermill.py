"""Every chapter runs under papermill with injected parameters, on its own (an empty cache)."""
import nbformat
import papermill
import pytest

from conftest import BOOK, chapters

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("chapter", chapters(), ids=lambda p: p.stem)
def test_chapter_runs_with_injected_parameters_and_an_empty_cache(chapter, tmp_path, monkeypatch):
    # The kernel inherits this environment: a fresh cache proves the chapter rebuilds whatever
    # earlier chapters would have left there (a Colab reader may open chapter 4 first).
    monkeypatch.setenv("GLUA_CACHE", str(tmp_path / "cache"))
    out = tmp_path / chapter.name
    papermill.execute_notebook(str(chapter), str(out), parameters={"profile": "demo", "seed": 1},
                               cwd=str(BOOK), kernel_name="python3", progress_bar=False)
    nb = nbformat.read(out, as_version=4)
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and 'profile = "demo"' in injected[0].source
    printed = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                      for o in c.get("outputs", []) if o.get("name") == "stdout")
    assert "profile        : demo" in printed and "seed           : 1" in printed
    assert str(tmp_path / "cache") in printed
