"""benchmarks/method_pairs.py: the jobs it asks for, the paired differences it prints and saves
(training and evaluation stubbed: they are train_runs' and evaluate_run's, tested elsewhere)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest


def test_pairs_are_trained_on_the_development_seed_and_compared_seed_by_seed(
        benchmark_script, monkeypatch, tmp_path, capsys):
    module = benchmark_script("method_pairs")
    dice = {("none", 0): 30.0, ("none", 1): 32.0, ("local", 0): 35.0,
            ("local", 1): 36.0}
    asked = []

    def train_runs(jobs, profile, device, workers, threads):
        asked.extend(jobs)
        return [(job, tmp_path / f"{job.method}-{job.seed}", 1.0) for job in jobs]

    monkeypatch.setattr(module, "train_runs", train_runs)
    monkeypatch.setattr(module, "evaluate_run", lambda run, *a: Path(run).name)
    monkeypatch.setattr(module, "average_dice",
                        lambda name: dice[(name.rsplit("-", 1)[0], int(name.rsplit("-", 1)[1]))])
    monkeypatch.setattr(module, "training_seconds", lambda run: 60.0)
    out = tmp_path / "pairs.json"
    assert module.main(["--seeds", "0", "1", "--methods", "none", "local",
                        "--pairs", "local:none", "--out", str(out)]) == 0
    assert [(j.kind, j.method, j.seed, j.data_seed, j.committed) for j in asked] == [
        ("seg", m, s, 7, False) for s in (0, 1) for m in ("none", "local")]  # no style run
    saved = json.loads(out.read_text())
    assert saved["differences"]["local - none"]["mean"] == pytest.approx(4.5)  # (5 + 4) / 2
    printed = capsys.readouterr().out
    assert "local − none: +4.5" in printed and "data seed 7" in printed


def test_pairs_must_name_methods_that_are_asked_for(benchmark_script):
    module = benchmark_script("method_pairs")
    assert module.parse_pairs(["a:b"], ["a", "b"]) == [("a", "b")]
    with pytest.raises(SystemExit, match="A:B with A and B among"):
        module.parse_pairs(["a:c"], ["a", "b"])
    with pytest.raises(SystemExit, match="A:B"):
        module.parse_pairs(["ab"], ["a", "b"])
