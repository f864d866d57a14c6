"""Chapter 4 under papermill from an empty cache (see ``OWN_MODULE`` in test_papermill.py for
why it has a module of its own)."""
import os

import pytest

from conftest import chapters
from test_papermill import OWN_MODULE, run_and_check

pytestmark = pytest.mark.slow


def test_chapter_4_runs_from_an_empty_cache_with_injected_parameters(tmp_path, monkeypatch):
    (chapter,) = [c for c in chapters() if c.stem == OWN_MODULE]
    # `make test` gives each pytest worker one torch thread. This run takes most of the suite's
    # time, and the other worker is done with everything else after the first few minutes and then
    # sits idle, so this kernel (it inherits the environment) gets every core the process may use:
    # 2 threads train 1.5x faster than 1 on CI's 2 cores.
    monkeypatch.setenv("OMP_NUM_THREADS", str(len(os.sched_getaffinity(0))))
    run_and_check(chapter, tmp_path, monkeypatch)
