"""The built book, served on 127.0.0.1, renders its widgets in headless Chromium with no internet."""
from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import tempfile
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from conftest import ROOT

pytestmark = pytest.mark.browser

HTML = ROOT / "_build" / "html"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--disable-quic", "--hide-scrollbars"]


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    reason = "no Chromium on PATH (.ci/run installs Debian's chromium)"
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def _built_html() -> Path:
    if not (HTML / "index.html").exists():
        reason = f"{HTML} not built (run `make book`; `make test` builds it first)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return HTML


class _Handler(SimpleHTTPRequestHandler):
    log: list[tuple[str, int]] = []

    def log_request(self, code="-", size="-"):
        self.log.append((self.path, int(code)))


@pytest.fixture(scope="module")
def server():
    root = _built_html()
    handler = functools.partial(_Handler, directory=str(root))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", _Handler.log
    httpd.shutdown()


def _run_chromium(args: list[str]) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run([_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                              capture_output=True, text=True, timeout=180)


def _widget_pages(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.html") if WIDGET_STATE in p.read_text(errors="ignore"))


def test_index_links_every_chapter():
    index = (_built_html() / "book" / "intro.html").read_text()
    for chapter in ("01_data", "02_global_alignment", "03_local_masks", "04_segmentation"):
        assert f'href="{chapter}.html"' in index, chapter
    assert "intro.html" in (_built_html() / "index.html").read_text()  # the redirect


def test_results_tables_render_as_tables():
    # a Markdown table rendered as CommonMark becomes one paragraph of pipes (issue 31)
    pages = sorted((_built_html() / "book").glob("*.html"))
    for page in pages:
        html = page.read_text(errors="ignore")
        pipes = re.findall(r"<p>\s*\|[^<]*\|", html)
        assert not pipes, f"{page.name}: a table printed as text: {pipes[0][:120]}"
    tables = re.findall(r"<table", (_built_html() / "book" / "04_segmentation.html").read_text())
    assert len(tables) >= 11, "chapter 4 shows its Dice and ASSD tables and the ablation's"


def test_widget_pages_load_their_javascript_from_the_book():
    pages = _widget_pages(_built_html())
    assert pages, "no page of the built book embeds widget state"
    for page in pages:
        scripts = re.findall(r'<script[^>]+src="([^"]+)"', page.read_text())
        assert not [s for s in scripts if s.startswith(("http:", "https:", "//"))], page
        assert any("embed-amd.js" in s for s in scripts) and any("require.js" in s for s in scripts)


def test_widgets_render_in_headless_chromium(server, tmp_path):
    base, log = server
    page = _widget_pages(_built_html())[0].relative_to(HTML).as_posix()
    log.clear()
    done = _run_chromium(["--virtual-time-budget=15000", "--dump-dom", f"{base}/{page}"])
    dom = done.stdout
    assert "<html" in dom, done.stderr[-2000:]
    # The widget manager replaced the embedded state with live DOM widgets:
    assert re.search(r'class="[^"]*\bwidget-slider\b', dom), "no slider rendered"
    assert re.search(r'class="[^"]*\bwidget-image\b[^"]*"[^>]*src="(blob:|data:)', dom) or \
        re.search(r'<img[^>]*src="(blob:|data:)[^"]*"[^>]*class="[^"]*\bwidget-image\b', dom), \
        "no image widget with content rendered"
    failed = [(p, code) for p, code in log if code >= 400 and p != "/favicon.ico"]
    assert not failed, f"requests that failed: {failed}"
    assert any("embed-amd.js" in path for path, _ in log)

    shot = tmp_path / "page.png"
    _run_chromium(["--virtual-time-budget=15000", "--window-size=1200,1600",
                   f"--screenshot={shot}", f"{base}/{page}"])
    from PIL import Image

    pixels = Image.open(shot).convert("L")
    lo, hi = pixels.getextrema()
    assert hi - lo > 100, "the screenshot is blank"
