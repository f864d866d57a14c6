"""The project's own files agree with each other (pins, environment, toc, chapters, CI)."""
import ast
import json
import re
import tomllib

import nbformat
import pytest
import yaml

from conftest import BOOK, ROOT, chapters

CONDA_NAMES = {"pytorch": "torch"}  # conda name -> PyPI name where they differ


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ;]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _pyproject_names() -> set[str]:
    project = _pyproject()["project"]
    reqs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        reqs += extra
    return {_name(r) for r in reqs}


def test_environment_yml_lists_the_same_packages_as_pyproject():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    names = set()
    for dep in env["dependencies"]:
        items = dep["pip"] if isinstance(dep, dict) else [dep]
        for item in items:
            name = _name(item)
            if name not in ("python", "pip", "-e"):
                names.add(CONDA_NAMES.get(name, name))
    assert names == _pyproject_names()


def test_constraints_pin_every_dependency_exactly_and_torch_to_the_local_wheel():
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"not an exact pin: {line}"
            pins[_name(name)] = version
    assert pins["torch"] == "2.13.0"
    missing = _pyproject_names() - set(pins)
    assert not missing, f"constraints.txt does not pin {sorted(missing)}"


def test_pyproject_uses_ranges_not_pins():
    for req in _pyproject()["project"]["dependencies"]:
        assert "==" not in req, f"pin in pyproject (use constraints.txt): {req}"


def test_toc_lists_the_four_chapters_in_order():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    assert toc["root"] == "book/intro"
    files = [c["file"] for c in toc["chapters"]]
    assert files[:4] == ["book/01_data", "book/02_global_alignment", "book/03_local_masks",
                         "book/04_segmentation"]
    for f in files:
        assert any((ROOT / f"{f}{ext}").exists() for ext in (".ipynb", ".md")), f
    assert len(chapters()) == 4


@pytest.mark.parametrize("path", chapters(), ids=lambda p: p.stem)
def test_chapter_follows_the_template(path):
    nb = nbformat.read(path, as_version=4)
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    for heading in ("## Overview", "## Prerequisites", "## Imports", "## Summary", "## Exercises"):
        assert heading in text, f"{path.name}: no '{heading}'"
    assert nb.cells[0].source.startswith("# Chapter")
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1, f"{path.name}: needs exactly one cell tagged 'parameters'"
    assert "profile" in params[0].source and "seed" in params[0].source
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    assert any("print_config(" in c for c in code), f"{path.name}: no print_config()"
    for c in code:  # the library is the single source of truth: no helpers pasted here
        assert not re.search(r"^\s*(def|class) ", c, re.M), f"{path.name}: defines code:\n{c}"
        assert ".cuda()" not in c


@pytest.mark.parametrize("path", chapters(), ids=lambda p: p.stem)
def test_every_figure_a_chapter_draws_is_displayed(path):
    # a plots.* function returns its Figure; Jupyter shows it only as a cell's last expression,
    # so one drawn inside a block or before another statement needs display(...)
    for i, cell in enumerate(c for c in nbformat.read(path, as_version=4).cells
                             if c.cell_type == "code"):
        tree = ast.parse("\n".join(line for line in cell.source.splitlines()
                                   if not line.startswith("%")))
        last = tree.body[-1] if tree.body else None
        hidden = [ast.unparse(node.value.func) for node in ast.walk(tree)
                  if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)
                  and ast.unparse(node.value.func).startswith("plots.") and node is not last]
        assert not hidden, f"{path.name}, code cell {i}: {hidden} drawn but never displayed"


@pytest.mark.parametrize("path", chapters(), ids=lambda p: p.stem)
def test_every_cell_has_an_id_of_its_own(path):
    # nbformat 4.5 wants them (a cell added without one warns at every read, and "will become a
    # hard error"); JSON edits that insert cells must give each its id
    raw = json.loads(path.read_text())
    ids = [c.get("id") for c in raw["cells"]]
    assert None not in ids, f"{path.name}: cell {ids.index(None)} has no id"
    assert len(set(ids)) == len(ids), f"{path.name}: two cells share an id"


CODE_WIDTH = 100  # characters; the book's column holds about 107 at 1280 px (book/_static/glua.css)


@pytest.mark.parametrize("path", chapters(), ids=lambda p: p.stem)
def test_chapter_code_fits_the_books_column(path):
    # what the browser check measures on the built page, checked here without a build
    for i, cell in enumerate(c for c in nbformat.read(path, as_version=4).cells
                             if c.cell_type == "code"):
        long = [line for line in cell.source.splitlines() if len(line) > CODE_WIDTH]
        assert not long, f"{path.name}, code cell {i}: lines over {CODE_WIDTH} characters: {long}"


def test_every_chapter_opens_with_the_same_setup_cell():
    # a reader on JupyterHub or Colab opens any chapter first: each installs the library from the
    # repository around it where the kernel lacks it, with the same cell
    firsts = [next(c.source for c in nbformat.read(p, as_version=4).cells if c.cell_type == "code")
              for p in chapters()]
    assert len(set(firsts)) == 1
    assert 'find_spec("glua_lib") is None' in firsts[0] and '"-e", f"{repo}[book]"' in firsts[0]


def test_readme_quick_start_and_ci_entry_point():
    readme = (ROOT / "README.md").read_text()
    quick = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    assert re.findall(r"^make \w+", quick, re.M) == ["make book", "make test"]
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci


def test_book_config_is_strict_and_offline():
    cfg = yaml.safe_load((ROOT / "_config.yml").read_text())
    # chapters executed afresh by book/_ext/execute_book.py into this cache, which it empties
    assert cfg["execute"]["execute_notebooks"] == "cache"
    assert cfg["execute"]["cache"].startswith("_build/")
    assert cfg["execute"]["allow_errors"] is False
    sphinx = cfg["sphinx"]["config"]
    assert sphinx["nb_execution_raise_on_error"] is True
    assert set(sphinx["nb_ipywidgets_js"]) == {"require.js", "embed-amd.js"}  # no CDN URL
    assert all(not p.startswith("http") for p in sphinx["html_static_path"])
    assert cfg["only_build_toc_files"] is True
    for pattern in (".*", "_build", "**/.ipynb_checkpoints"):
        assert pattern in cfg["exclude_patterns"]
    assert (BOOK / "references.bib").exists()
    makefile = (ROOT / "Makefile").read_text()
    assert "--warningiserror" in makefile and "--keep-going" in makefile


def test_the_setup_cell_installs_from_the_repository_or_says_what_to_do(tmp_path, monkeypatch):
    import importlib.util
    import subprocess
    import sys

    cell = next(c.source for c in nbformat.read(chapters()[0], as_version=4).cells
                if c.cell_type == "code")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)  # a kernel without it
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda args, check: calls.append(args))
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.chdir(tmp_path)  # not in the repository
    with pytest.raises(ModuleNotFoundError, match="clone it, open this chapter from its book/"):
        exec(cell, {})
    assert calls == []
    monkeypatch.chdir(BOOK)
    exec(cell, {})
    assert calls == [[sys.executable, "-m", "pip", "install", "--quiet", "-e", f"{ROOT}[book]"]]
    assert sys.path[0] == str(ROOT)
