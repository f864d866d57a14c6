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


# A page of this test's own, served beside the book: it opens a book page in a same-origin
# iframe of a reader's width and, once the page has settled, writes what it measured into
# <pre id="result"> as JSON (Chromium's --dump-dom then returns it): every code or output block
# wider than its column, every image a cell drew with its rendered and natural width, and how
# many of its equations MathJax typeset.
READER_WIDTH = 1280
HARNESS = """<!doctype html><html><body style="margin:0">
<iframe id="f" src="/{page}" style="width:{width}px;height:1600px;border:0"></iframe>
<pre id="result">pending</pre>
<script>
const frame = document.getElementById("f");
frame.addEventListener("load", () => setTimeout(() => {{
  const doc = frame.contentDocument, wide = [], images = [];
  doc.querySelectorAll("div.cell pre, div.highlight pre").forEach(el => {{
    if (el.scrollWidth > el.clientWidth + 1) {{
      const lines = el.textContent.split("\\n");
      const longest = lines.reduce((a, b) => (b.length > a.length ? b : a), "");
      wide.push({{width: el.scrollWidth, column: el.clientWidth,
                  input: !!el.closest(".cell_input"), line: longest.slice(0, 160)}});
    }}
  }});
  doc.querySelectorAll("div.cell_output img").forEach(img => {{
    const figure = img.closest("figure");
    images.push({{width: Math.round(img.getBoundingClientRect().width), natural: img.naturalWidth,
                  widget: !!img.closest("[class*='widget']"), src: img.getAttribute("src"),
                  caption: figure && figure.querySelector("figcaption")
                           ? figure.querySelector("figcaption").textContent.trim() : ""}});
  }});
  const article = doc.querySelector("article") || doc.body;
  const maths = [...doc.querySelectorAll(".math")];
  const typeset = maths.filter(el => el.querySelector("mjx-container svg")).length;
  document.getElementById("result").textContent =
    JSON.stringify({{wide, images, column: article.clientWidth,
                    maths: maths.length, typeset}});
}}, 2000));
</script></body></html>"""


class _Handler(SimpleHTTPRequestHandler):
    log: list[tuple[str, int]] = []

    def log_request(self, code="-", size="-"):
        self.log.append((self.path, int(code)))

    def do_GET(self):
        if self.path.startswith("/_measure/"):
            body = HARNESS.format(page=self.path[len("/_measure/"):], width=READER_WIDTH).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()


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
    import json

    results = ROOT / "benchmarks" / "results" / "ablation-demo.json"
    n = len(json.loads(results.read_text())["experiments"]) if results.is_file() else 0
    # its live Dice and ASSD tables; the file's summary, its two tables per experiment and the
    # paired differences
    want = 2 + (1 + 2 * n + 1 if n else 0)
    assert len(tables) >= want, f"chapter 4 shows {len(tables)} tables, not {want}"


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


PAGES = ("intro", "01_data", "02_global_alignment", "03_local_masks", "04_segmentation")


@functools.lru_cache(maxsize=None)
def _measure(base: str, page: str) -> dict:
    """What the harness measured on ``book/<page>.html`` at ``READER_WIDTH`` pixels: one
    Chromium run per page, shared by the checks below (the built book does not change while
    they run; a Chromium run costs 2 s on a fast machine, 10 on the slow class)."""
    import html
    import json

    done = _run_chromium(["--virtual-time-budget=20000", f"--window-size={READER_WIDTH + 40},1700",
                          "--dump-dom", f"{base}/_measure/book/{page}.html"])
    found = re.search(r'<pre id="result">(.*?)</pre>', done.stdout, re.S)
    assert found and found.group(1) != "pending", f"{page}: nothing measured {done.stderr[-1500:]}"
    return json.loads(html.unescape(found.group(1)))


@pytest.mark.parametrize("page", PAGES)
def test_no_page_logs_a_javascript_error(server, page):
    base, _ = server
    done = _run_chromium(["--enable-logging=stderr", "--v=0", "--virtual-time-budget=15000",
                          "--dump-dom", f"{base}/book/{page}.html"])
    messages = re.findall(r':CONSOLE:\d+\] "(.*?)", source: (\S+)', done.stderr)
    assert messages or "CONSOLE" not in done.stderr  # the log format was understood
    errors = [m for m in messages if m[0].startswith(("Uncaught", "Failed to load"))]
    assert not errors, f"{page}.html: {errors}"


@pytest.mark.parametrize("page", PAGES)
def test_code_and_outputs_fit_the_column(server, page):
    measured = _measure(server[0], page)
    wide = [f"{'code' if w['input'] else 'output'} {w['width']} px > {w['column']} px: {w['line']!r}"
            for w in measured["wide"]]
    assert not wide, f"{page}.html at {READER_WIDTH} px: {len(wide)} blocks wider than their " \
                     "column:\n" + "\n".join(wide[:12])


@pytest.mark.parametrize("page", PAGES[1:])
def test_every_figure_has_a_caption_and_a_readable_size(server, page):
    measured = _measure(server[0], page)
    figures = [i for i in measured["images"] if not i["widget"]]
    assert figures, f"{page}.html: no figure measured"
    uncaptioned = [i["src"] for i in figures if len(i["caption"]) < 20]
    assert not uncaptioned, f"{page}.html: figures without a caption: {uncaptioned}"
    small = [(i["src"], i["width"]) for i in figures if i["width"] < min(300, i["natural"])]
    assert not small, f"{page}.html: figures shrunk below 300 px: {small}"


def test_every_static_slider_steps_through_frames_that_differ():
    # a frames slider (plots.frames_slider) embeds every frame: a Stack of images whose
    # selected_index a link ties to the slider; frames that were all the same would make a
    # slider that moves and shows nothing new
    import hashlib
    import json

    sliders = 0
    for page in sorted((_built_html() / "book").glob("0*.html")):
        for blob in re.findall(r'<script type="application/vnd.jupyter.widget-state\+json">'
                               r'(.*?)</script>', page.read_text(), re.S):
            state = json.loads(blob)["state"]
            links = {tuple(m["state"]["target"]) for m in state.values()
                     if m["model_name"] in ("LinkModel", "DirectionalLinkModel")}
            for key, model in state.items():
                if model["model_name"] != "StackModel":
                    continue
                sliders += 1
                frames = [state[c.removeprefix("IPY_MODEL_")] for c in model["state"]["children"]]
                data = [hashlib.sha1(f.get("buffers", [{}])[0].get("data", "").encode()).digest()
                        for f in frames]
                assert len(frames) > 1 and len(set(data)) == len(frames), \
                    f"{page.name}: a slider with {len(frames)} frames, {len(set(data))} different"
                assert (f"IPY_MODEL_{key}", "selected_index") in links, \
                    f"{page.name}: a stack of frames no slider moves"
    assert sliders >= 6  # chapters 1 to 4 embed at least this many


def test_the_intro_previews_the_results_and_the_measured_times():
    # both tables come from benchmarks/results at build time (book/_ext/book_figures.py)
    intro = (_built_html() / "book" / "intro.html").read_text()
    assert "{{" not in intro, "a substitution was left unreplaced"
    assert len(re.findall(r"<table", intro)) >= 3  # start here, the ablation, the times
    assert "glua − global" in intro and "estimated, slow class" in intro


@pytest.mark.parametrize("page", ["02_global_alignment", "03_local_masks", "04_segmentation"])
def test_equations_are_typeset_offline(server, page):
    """The chapters' equations come out as MathJax SVG, from the book's own copy of MathJax."""
    base, log = server
    seen = _measure(base, page)
    assert seen["maths"] > 0, f"{page}.html: no equation on the page"
    assert seen["typeset"] == seen["maths"], f"{page}.html: {seen['typeset']} of " \
        f"{seen['maths']} equations typeset"
    assert any(path.startswith("/_static/mathjax/tex-svg.js") and code == 200
               for path, code in log)
