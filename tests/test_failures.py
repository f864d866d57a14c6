"""A chapter that raises fails both the book build and the nbval run (no error-tolerant build)."""
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from conftest import ROOT

pytestmark = pytest.mark.slow


def _raising_notebook(path: Path) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_markdown_cell("# Broken chapter"),
                nbformat.v4.new_code_cell("x = 1"),
                nbformat.v4.new_code_cell("raise RuntimeError('chapter failed on purpose')")]
    nbformat.write(nb, path)
    return path


def test_book_build_fails_when_a_chapter_raises(tmp_path):
    """The project's own _config.yml, with one raising chapter: the build must exit non-zero."""
    shutil.copy(ROOT / "_config.yml", tmp_path / "_config.yml")
    (tmp_path / "book").mkdir()
    widgets_js = ROOT / "book" / "_widgets_js"  # fetched by `make widgets-js`
    if widgets_js.exists():
        shutil.copytree(widgets_js, tmp_path / "book" / "_widgets_js")
    shutil.copy(ROOT / "book" / "references.bib", tmp_path / "book" / "references.bib")
    for folder in ("_ext", "_static"):  # the book's Sphinx extension and stylesheet
        shutil.copytree(ROOT / "book" / folder, tmp_path / "book" / folder)
    (tmp_path / "book" / "intro.md").write_text("# Intro\n")
    _raising_notebook(tmp_path / "book" / "broken.ipynb")
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: book/intro\nchapters:\n"
                                       "  - file: book/broken\n")
    jb = Path(sys.executable).with_name("jupyter-book")
    done = subprocess.run([str(jb), "build", str(tmp_path), "--warningiserror", "--keep-going"],
                          capture_output=True, text=True, timeout=600, cwd=tmp_path)
    log = done.stdout + done.stderr
    assert done.returncode != 0, log[-3000:]
    assert "chapter failed on purpose" in log


def test_nbval_fails_when_a_chapter_raises(tmp_path):
    nb = _raising_notebook(tmp_path / "broken.ipynb")
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
                           "--nbval-lax", "--nbval-current-env", "-o", "addopts=", str(nb)],
                          capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 1, done.stdout[-3000:]
    assert "1 failed" in done.stdout and "chapter failed on purpose" in done.stdout
