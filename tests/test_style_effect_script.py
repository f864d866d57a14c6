"""benchmarks/style_effect.py: one row per style run, from the run's checkpoint and data."""
from __future__ import annotations

import dataclasses
import re

import pytest
import torch

from glua_lib.checkpoint import load_checkpoint
from glua_lib.style.train import train_style
from test_style_train import TINY, _prepared


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("effect")
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    out = train_style(_prepared(root / "mr", "mr"), _prepared(root / "ct", "ct"), root / "run",
                      dataclasses.replace(TINY, steps=2), device="cpu", progress=False)
    torch.set_num_threads(n)
    return out


def test_style_effect_prints_the_codes_spread_and_the_renderings_difference(
        run, capsys, benchmark_script, monkeypatch, tmp_path):
    module = benchmark_script("style_effect")
    assert module.main([str(run), "--styles", "2"]) == 0
    row = capsys.readouterr().out.splitlines()[1]
    expected = module.measure(run, 2, 0)
    std = load_checkpoint(run / "checkpoint.pt")["target_styles"].float().std(0)
    assert expected["trained_std"] == pytest.approx((float(std.min()), float(std.max())))
    assert row.startswith(run.name)
    assert f"{std.min():.4f}–{std.max():.4f}" in row
    assert f"{expected['random']:.4f}" in row and expected["random"] > 0
    assert row.endswith("collapsed") == expected["collapsed"]
    # nothing to measure: a clear error, not an empty table
    monkeypatch.setenv("GLUA_CACHE", str(tmp_path / "empty"))
    assert module.main([]) == 2
    assert re.search(r"no style runs given or in .*empty/runs", capsys.readouterr().err)
