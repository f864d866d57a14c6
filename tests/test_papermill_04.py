"""Chapter 4 under papermill from an empty cache (see ``OWN_MODULE`` in test_papermill.py for
why it has a module of its own)."""
import pytest

from conftest import chapters
from test_papermill import OWN_MODULE, run_and_check

pytestmark = pytest.mark.slow


def test_chapter_4_runs_from_an_empty_cache_with_injected_parameters(tmp_path, monkeypatch):
    # The kernel inherits this process's environment, OMP_NUM_THREADS included: `make test` runs
    # this module with one torch thread on one core while the book builds on the other.
    (chapter,) = [c for c in chapters() if c.stem == OWN_MODULE]
    run_and_check(chapter, tmp_path, monkeypatch)
