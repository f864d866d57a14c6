"""book/_ext/execute_book.py: chapters executed beside the training land in the Jupyter cache
where MyST-NB's cache mode finds them, and a raising chapter stops the build."""
from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys

import nbformat
import pytest
from jupyter_cache import get_cache

from conftest import ROOT

pytestmark = pytest.mark.slow  # starts Jupyter kernels


@pytest.fixture(scope="module")
def execute_book():
    spec = importlib.util.spec_from_file_location("execute_book",
                                                  ROOT / "book" / "_ext" / "execute_book.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SCRIPT = ROOT / "book" / "_ext" / "execute_book.py"


def _run(tmp_path, *args: str) -> subprocess.CompletedProcess:
    """The script as `make book` runs it (its worker processes import it by path)."""
    return subprocess.run([sys.executable, str(SCRIPT), "--root", str(tmp_path), "--no-runs",
                           "--workers", "1", *args], capture_output=True, text=True, timeout=300)


def _book(tmp_path, *cells: str):
    shutil.copy(ROOT / "_config.yml", tmp_path / "_config.yml")
    (tmp_path / "book").mkdir()
    (tmp_path / "book" / "intro.md").write_text("# Intro\n")
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nb.cells = [nbformat.v4.new_markdown_cell("# A chapter"),
                *(nbformat.v4.new_code_cell(c) for c in cells)]
    nbformat.write(nb, tmp_path / "book" / "01_one.ipynb")
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: book/intro\nchapters:\n"
                                       "  - file: book/01_one\n")
    return tmp_path / "book" / "01_one.ipynb"


def test_an_executed_chapter_is_found_by_its_notebook_in_the_jupyter_cache(execute_book,
                                                                          tmp_path):
    chapter = _book(tmp_path, "import os\nprint(os.environ['OMP_NUM_THREADS'], 6 * 7)")
    stale = tmp_path / "_build" / ".jupyter_cache" / "stale"
    stale.mkdir(parents=True)
    done = _run(tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert not stale.exists()  # emptied first: every chapter afresh
    assert "01_one.ipynb: Executed notebook in" in done.stdout
    cache = get_cache(str(tmp_path / "_build" / ".jupyter_cache"))
    # what MyST-NB's cache mode does with the notebook on disk
    _, merged = cache.merge_match_into_notebook(nbformat.read(chapter, as_version=4))
    assert merged.cells[1].outputs[0]["text"] == "1 42\n"  # and with one thread, as asked
    assert execute_book.chapters(tmp_path) == [chapter]  # the intro is Markdown


def test_a_raising_chapter_stops_with_its_traceback(tmp_path):
    _book(tmp_path, "x = 1", "raise RuntimeError('chapter failed on purpose')")
    done = _run(tmp_path)
    assert done.returncode == 1
    assert "chapter failed on purpose" in done.stderr and "01_one.ipynb raised" in done.stderr


def test_a_widget_cell_gets_a_short_limit_and_its_chapter_one_more_try(execute_book, tmp_path,
                                                                     monkeypatch):
    # nbclient sometimes misses the reply to a widget cell (jupyter/nbclient#312): played here
    # by a cell that outlasts the widget limit the first time it runs and not the second
    slow_once = ("import pathlib, time\n"
                 "first = not pathlib.Path('ran').exists()\n"
                 "pathlib.Path('ran').touch()\n"
                 "time.sleep(5 if first else 0)  # stands for plots.live_slider(...)\n"
                 "print('drawn')")
    chapter = _book(tmp_path, slow_once)
    assert execute_book.cell_timeout(nbformat.v4.new_code_cell(slow_once), 1800) == 60
    assert execute_book.cell_timeout(nbformat.v4.new_code_cell("x = 1"), 1800) == 1800
    monkeypatch.setattr(execute_book, "WIDGET_TIMEOUT", 2)
    path, nb, _, error = execute_book.execute_chapter(str(chapter), 1800, False, 1)
    assert error is None and nb.cells[1].outputs[0]["text"] == "drawn\n"  # the second try
    second = tmp_path / "second"  # and a widget cell that never replies fails the chapter
    second.mkdir()
    chapter = _book(second, slow_once.replace("5 if first else 0", "5"))
    _, _, _, error = execute_book.execute_chapter(str(chapter), 1800, False, 1)
    assert error is not None and "CellTimeoutError" in error


def test_the_book_config_asks_for_the_cache_it_fills(execute_book, tmp_path):
    _book(tmp_path, "x = 1")
    config = tmp_path / "_config.yml"
    config.write_text(config.read_text().replace("execute_notebooks: cache",
                                                 "execute_notebooks: force"))
    with pytest.raises(SystemExit, match="must be 'cache'"):
        execute_book.main(["--root", str(tmp_path), "--no-runs"])
