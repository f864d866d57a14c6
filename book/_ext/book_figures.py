"""A Sphinx extension of this book: the introduction's figures, computed from the results files.

On ``config-inited`` it reads what ``make test`` measured (``benchmarks/results/
book-times-demo.json``, and ``book-times-demo-slow.json`` at a low speed when it is there), what
``make ablation`` found (``benchmarks/results/ablation-demo.json``) and what
``benchmarks/flops.py`` counted (``benchmarks/results/flops.json``), and gives the
introduction three MyST substitutions: ``chapter_times`` (:func:`glua_lib.costs.times_table`),
``profile_costs`` (:func:`glua_lib.costs.profiles_table`) and ``ablation_preview``
(:func:`glua_lib.results.ablation_summary`). So the introduction's numbers are those files',
recomputed at every build, never typed in.
"""
from __future__ import annotations

import json
from pathlib import Path


def _figures(app, config) -> None:
    from glua_lib.config import PROFILES
    from glua_lib.costs import profiles_table, times_table
    from glua_lib.results import ablation_summary, load_report

    results = Path(app.srcdir) / "benchmarks" / "results"
    subs = dict(config.myst_substitutions or {})
    times, slow = results / "book-times-demo.json", results / "book-times-demo-slow.json"
    subs["chapter_times"] = (
        times_table(json.loads(times.read_text()),
                    slow=json.loads(slow.read_text()) if slow.is_file() else None)
        if times.is_file() else
        f"(no {times.name}: `make test` writes it to `_build/book-times.json`)")
    flops = results / "flops.json"
    subs["profile_costs"] = (profiles_table(json.loads(flops.read_text())) if flops.is_file() else
                             f"(no {flops.name}: `python benchmarks/flops.py --json "
                             f"benchmarks/results/{flops.name}` writes it)")
    ablation = results / "ablation-demo.json"
    if ablation.is_file():
        report = load_report(ablation)
        _, summary = ablation_summary(report, "glua", ["global", "local"],
                                      target_gap=PROFILES[report["profile"]].gap_target,
                                      shown=["none", "global", "local", "glua", "oracle"])
        subs["ablation_preview"] = (f"{summary}\n\n(`{report['command']}`, code "
                                    f"{report['code_version'][:12]}, seeds {report['seeds']})")
    else:
        subs["ablation_preview"] = f"(no {ablation.name}: `make ablation` makes it)"
    config.myst_substitutions = subs


def setup(app):
    app.connect("config-inited", _figures)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
