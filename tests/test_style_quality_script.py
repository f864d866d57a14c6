"""benchmarks/style_quality.py measures every task, direction and seed and writes a results
file (style training replaced by hand-made translated folders: the script's logic is under test)."""
from __future__ import annotations

import json
from types import SimpleNamespace as V

import numpy as np
import pytest


@pytest.fixture
def script(monkeypatch, benchmark_script):
    module = benchmark_script("style_quality")
    lab = np.array([[[0, 1, 2, 3, 4]]], np.uint8)
    calls = []

    def translated_dir(task, source, target, profile, seed, device):
        calls.append((task, source, seed))
        return f"translated/{task}/{source}2{target}/{seed}"

    def load_volumes(folder, split):
        assert split == "test"
        if folder.startswith("translated/"):
            seed = int(folder.rsplit("/", 1)[1])
            # seed 0 moves every class halfway to the target; seed 1 leaves class 4 behind
            last = 0.5 if seed == 0 else -0.2
            return [V(subject=f"s_style{k}", label=lab,
                      image=np.array([[[0.0, 0.5, 0.5, 0.5, last]]]) + 0.01 * k)
                    for k in range(2)]
        if folder.endswith("source"):
            return [V(subject="s", label=lab, image=np.zeros((1, 1, 5)))]
        return [V(subject=f"t{i}", label=lab, image=np.array([[[0.0, 1, 1, 1, 1]]]) + 0.1 * i)
                for i in range(2)]

    def judge_translation(task, source, target, profile, seed, device, committed=True):
        assert committed is False
        # two volumes; the judge finds MYO (Dice 0.2 and 0.4) on the source as it is,
        # (0.8 and 0.9) once translated, and (0.9 and 1.0) on the ideal translation
        return {k: {"volumes": {f"v{i}": {"dice": {"MYO": d, "LAC": 1.0, "LVC": 0.5, "AA": 0.0}}
                                for i, d in enumerate(myo)}}
                for k, myo in (("source", (0.2, 0.4)), ("translated", (0.8, 0.9)),
                               ("ideal", (0.9, 1.0)))}

    def ideal_translation_sets(task, source, target, profile):
        # four sets of ideal translations: every class at 1.0 (gap 0.05 to the targets at 1.0
        # and 1.1), except AA at -0.3 in two sets (gap 1.35)
        return [[V(subject="s_style0", label=lab, image=np.array([[[0.0, 1, 1, 1, aa]]]))]
                for aa in (1.0, 1.0, -0.3, -0.3)]

    def seg_run(method, task, source, target, profile, seed, device, committed=True):
        assert committed is False  # measured on trained runs, never the book's copies
        return f"run/{method}/{seed}"

    def ideal_global_run(task, source, target, profile, seed, device):
        return f"run/global_ideal/{seed}"

    def evaluate_run(run, task, target, profile, device):
        # target test Dice: global 0.6 (seed 0) or 0.4, on ideal translations 0.8, oracle 0.9
        kind, seed = run.split("/")[1:]
        d = {"global": 0.6 - 0.2 * int(seed), "global_ideal": 0.8, "oracle": 0.9}[kind]
        return {"volumes": {"v0": {"dice": {"MYO": d, "LAC": d, "LVC": d, "AA": d}}}}

    monkeypatch.setattr(module.pipeline, "seg_run", seg_run)
    monkeypatch.setattr(module.pipeline, "ideal_global_run", ideal_global_run)
    monkeypatch.setattr(module.pipeline, "evaluate_run", evaluate_run)
    monkeypatch.setattr(module.pipeline, "translated_dir", translated_dir)
    monkeypatch.setattr(module.pipeline, "ideal_translation_sets", ideal_translation_sets)
    monkeypatch.setattr(module.pipeline, "judge_translation", judge_translation)
    monkeypatch.setattr(module, "phantom_dir",
                        lambda task, modality, profile: "source" if modality == "mr" else "target")
    monkeypatch.setattr(module, "load_volumes", load_volumes)
    return module, calls


def test_style_quality_writes_per_seed_measures_and_counts_failures(script, tmp_path, capsys):
    module, calls = script
    module.DIRECTIONS = (("mr", "ct"),)
    out = tmp_path / "style-quality.json"
    argv = ["--profile", "demo", "--tasks", "cardiac", "--seeds", "0", "1", "--out", str(out)]
    assert module.main(argv) == 0
    assert calls == [("cardiac", "mr", 0), ("cardiac", "mr", 1)]
    report = json.loads(out.read_text())
    assert report["command"] == "python benchmarks/style_quality.py " + " ".join(argv)
    assert report["seeds"] == [0, 1] and report["code_version"]
    runs = report["experiments"]["cardiac mr→ct"]
    assert runs["0"]["shrank"] == ["MYO", "LAC", "LVC", "AA"]
    assert runs["1"]["shrank"] == ["MYO", "LAC", "LVC"]  # AA moved away from the target
    assert runs["0"]["between_styles"]["MYO"] == pytest.approx(0.005)  # styles 0.01 apart
    assert runs["0"]["judge_source"]["MYO"] == pytest.approx(30.0)  # mean of 0.2 and 0.4, in %
    assert runs["0"]["judge_translated"] == pytest.approx({"MYO": 85.0, "LAC": 100.0,
                                                           "LVC": 50.0, "AA": 0.0})
    # ideal gaps 0.05 everywhere but AA: 0.05, 0.05, 1.35, 1.35 (median 0.7, 95 % quantile
    # 1.35); AA's before (source at 0) is 1.05, so half the ideal sets shrink it
    assert runs["0"]["ideal"]["MYO"] == pytest.approx(0.05)
    assert runs["1"]["ideal"]["AA"] == pytest.approx(0.7)
    assert runs["1"]["ideal_high"]["AA"] == pytest.approx(1.35)
    assert runs["1"]["ideal_shrinks"] == pytest.approx({"MYO": 1.0, "LAC": 1.0, "LVC": 1.0,
                                                        "AA": 0.5})
    # seed 1's AA (at -0.2 and -0.19) is 1.245 from the target: larger than before, within ideal
    assert runs["1"]["after"]["AA"] == pytest.approx(1.245)
    assert runs["1"]["within_ideal"] == ["AA"] and "ideal_edge_alignment" in runs["1"]
    printed = capsys.readouterr().out
    assert "| 1 | AA |" in printed and "| as ideal |" in printed
    assert "| 0.700 (0.050–1.350) | 50% |" in printed
    assert runs["0"]["judge_ideal"]["MYO"] == pytest.approx(95.0)
    assert "| 30.0 → 85.0 (95.0) |" in printed
    assert "every class in 1 of 2 runs" in printed
    assert "ideal translations' range in 2 of 2 runs" in printed
    assert "(share of sets that do): cardiac mr→ct AA (50%)" in printed
    # what the translations are worth to the segmenter, against its ceiling and the oracle
    assert runs["1"]["dice_global"] == pytest.approx({c: 40.0 for c in ("MYO", "LAC", "LVC", "AA")})
    assert runs["0"]["dice_global_ideal"]["AA"] == pytest.approx(80.0)
    assert "`oracle`, by seed: 60.0 / 80.0 / 90.0, 40.0 / 80.0 / 90.0" in printed
    # and, last, chapter 2's table over tasks and directions: 50 against 80 over the two seeds
    assert "| cardiac mr→ct | 50.0 | 80.0 | 90.0 | -30.0 [" in printed
