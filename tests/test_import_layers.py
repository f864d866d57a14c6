"""The library's import structure: the contracts of pyproject.toml ([tool.importlinter]) hold,
and no module imports itself back through others (an import circle)."""
import shutil
import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[1]
def import_circles(*packages: str) -> list[set[str]]:
    """Groups of modules that import each other, directly or through others (the strongly
    connected components of the import graph with more than one module; type-only imports under
    ``if TYPE_CHECKING:`` left out)."""
    graph = grimp.build_graph(*packages, exclude_type_checking_imports=True)
    modules = sorted(graph.modules)
    edges = {m: sorted(set(graph.find_modules_directly_imported_by(m)) & set(modules))
             for m in modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles: list[set[str]] = []

    def visit(v: str) -> None:  # Tarjan's algorithm
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = set()
            while True:
                w = stack.pop()
                group.add(w)
                if w == v:
                    break
            if len(group) > 1:
                circles.append(group)

    for m in modules:
        if m not in index:
            visit(m)
    return circles


def test_the_import_contracts_hold():
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert exe, "import-linter is a test dependency (pyproject.toml [test])"
    done = subprocess.run([exe], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout


def test_no_import_circle():
    assert import_circles("glua_lib", "data_prep") == []


def test_the_circle_finder_finds_a_circle(tmp_path, monkeypatch):
    pkg = tmp_path / "circ"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from circ import b\n")
    (pkg / "b.py").write_text("from circ import c\n")
    (pkg / "c.py").write_text("import circ.a\n")
    (pkg / "d.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                              "    import circ.e\n")
    (pkg / "e.py").write_text("import circ.d\n")  # d → e is types only: no circle
    monkeypatch.syspath_prepend(str(tmp_path))
    assert import_circles("circ") == [{"circ.a", "circ.b", "circ.c"}]
