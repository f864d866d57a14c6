"""A Sphinx extension of this book: each inline ``<script>`` once per page.

sphinx-thebe 0.3.1 and sphinx-togglebutton add their inline configuration scripts on events that
fire twice in a Jupyter Book 1 build, so every page declared ``const THEBE_JS_URL`` twice and the
browser stopped on "Identifier 'THEBE_JS_URL' has already been declared" (issue 31).
Sphinx de-duplicates script *files*, not inline bodies; this drops the repeats before the page is
written. ``tests/test_browser.py`` checks that no page logs a JavaScript error.
"""
from __future__ import annotations


def _unique_scripts(app, pagename, templatename, context, doctree):
    seen, kept = set(), []
    for script in context.get("script_files", []):
        body = getattr(script, "attributes", {}).get("body")
        key = ("body", body) if body else ("file", str(script))
        if key not in seen:
            seen.add(key)
            kept.append(script)
    if "script_files" in context:
        context["script_files"][:] = kept


def setup(app):
    app.connect("html-page-context", _unique_scripts)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
