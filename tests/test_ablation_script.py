"""benchmarks/ablation.py writes a results file that chapter 4 can read (training replaced by
fakes: the script's own logic, not the methods, is under test here)."""
from __future__ import annotations

import json

import pytest

from glua_lib.results import ablation_summary, load_report

DICE = {"none": 0.2, "global": 0.6, "local": 0.3, "glua-unmasked": 0.6, "glua": 0.7,
        "oracle": 0.9}


@pytest.fixture
def ablation(monkeypatch, tmp_path, benchmark_script):
    module = benchmark_script("ablation")
    calls = []

    def seg_run(method, task, source, target, profile, seed, device, committed=True):
        assert committed is False  # the ablation measures training, never the book's copies
        run = tmp_path / "runs" / f"{method}-{task}-{source}2{target}-{seed}"
        run.mkdir(parents=True, exist_ok=True)
        (run / "log.jsonl").write_text(json.dumps({"event": "done", "elapsed_s": 1.5}) + "\n")
        if method == "none" and seed == 1:  # a run resumed with another thread count
            stretches = [{"from_step": 0, "device": "cpu (x, 2 threads)", "threads": 2},
                         {"from_step": 300, "device": "cpu (x, 1 threads)", "threads": 1}]
            (run / "run.json").write_text(json.dumps({"trained_on": stretches}))
        else:  # a run.json from before the trained_on list
            (run / "run.json").write_text(json.dumps({"device": "cpu", "threads": 2}))
        calls.append((seed, task, source, method))
        return run

    def evaluate_run(run, task, target, profile, device):
        method = run.name.rsplit("-", 3)[0]
        classes = module.get_task(task).classes
        d = DICE[method] + 0.01 * int(run.name[-1])  # seed 1 a point above seed 0
        vol = {"dice": {c: d for c in classes[1:]}, "assd": {c: 1.0 for c in classes[1:]}}
        return {"classes": list(classes), "volumes": {"v0": vol, "v1": vol}}

    monkeypatch.setattr(module.pipeline, "seg_run", seg_run)
    monkeypatch.setattr(module.pipeline, "evaluate_run", evaluate_run)
    return module, calls


def test_ablation_writes_a_results_file_with_provenance(ablation, tmp_path):
    module, calls = ablation
    out = tmp_path / "ablation-demo.json"
    argv = ["--profile", "demo", "--tasks", "cardiac", "--seeds", "0", "1", "--out", str(out)]
    assert module.main(argv) == 0
    assert calls[0] == (0, "cardiac", "mr", "none") and calls[-1] == (1, "cardiac", "ct", "oracle")
    assert len(calls) == 2 * 2 * len(module.ABLATION_METHODS)  # seeds × directions × methods
    report = load_report(out)
    assert report["command"] == "python benchmarks/ablation.py " + " ".join(argv)
    assert report["seeds"] == [0, 1] and report["profile"] == "demo" and report["code_version"]
    assert report["batch_size"] == 8  # the demo profile's
    assert sorted(report["experiments"]) == ["cardiac ct→mr", "cardiac mr→ct"]
    wall = report["experiments"]["cardiac mr→ct"]["wall_time"]["glua"]
    assert [(w["seed"], w["train_s"], w["threads"]) for w in wall] == [(0, 1.5, 2), (1, 1.5, 2)]
    none = report["experiments"]["cardiac mr→ct"]["wall_time"]["none"]
    assert none[1]["threads"] == [2, 1] and [s["from_step"] for s in none[1]["trained_on"]] == \
        [0, 300]
    assert none[0]["trained_on"] == [{"from_step": 0, "device": "cpu", "threads": 2}]
    rows, _ = ablation_summary(report)
    glua = rows[0]["dice"]["glua"]  # 70 and 71 % over the two seeds
    assert glua == pytest.approx(70.5)
    assert rows[0]["gap_closed"] == pytest.approx(50 / 70)  # (70.5 − 20.5) / (90.5 − 20.5)


def test_batch_size_reaches_every_run_and_the_file(ablation, tmp_path, monkeypatch):
    module, calls = ablation
    fake, seen = module.pipeline.seg_run, []
    monkeypatch.setattr(module.pipeline, "seg_run",
                        lambda *args, **kw: seen.append(args[4].batch_size) or fake(*args, **kw))
    out = tmp_path / "ablation-small.json"
    assert module.main(["--profile", "demo", "--batch-size", "4", "--tasks", "cardiac",
                        "--seeds", "0", "--out", str(out)]) == 0
    assert len(seen) == 2 * len(module.ABLATION_METHODS) and set(seen) == {4}
    report = load_report(out)
    assert report["batch_size"] == 4 and "--batch-size 4" in report["command"]


def test_directions_pick_the_experiments(ablation, tmp_path):
    module, calls = ablation
    out = tmp_path / "one.json"
    assert module.main(["--profile", "demo", "--tasks", "cardiac", "--directions", "mr2ct",
                        "--seeds", "0", "--out", str(out)]) == 0
    assert {(task, source) for _, task, source, _ in calls} == {("cardiac", "mr")}
    assert sorted(load_report(out)["experiments"]) == ["cardiac mr→ct"]


def test_experiments_pick_exactly_those_in_the_book_order(ablation, tmp_path):
    module, calls = ablation
    out = tmp_path / "three.json"
    assert module.main(["--profile", "demo", "--experiments", "abdominal:mr2ct", "cardiac:ct2mr",
                        "cardiac:mr2ct", "--methods", "none", "--seeds", "0",
                        "--out", str(out)]) == 0
    assert [(task, source) for _, task, source, _ in calls] == \
        [("cardiac", "mr"), ("cardiac", "ct"), ("abdominal", "mr")]
    assert list(load_report(out)["experiments"]) == ["cardiac mr→ct", "cardiac ct→mr",
                                                     "abdominal mr→ct"]


def test_two_ablations_compared_method_by_method(ablation, tmp_path, monkeypatch, capsys,
                                                 benchmark_script):
    module, _ = ablation
    argv = ["--profile", "demo", "--tasks", "cardiac", "--seeds", "0", "1", "--out"]
    assert module.main(argv + [str(tmp_path / "before.json")]) == 0
    monkeypatch.setitem(DICE, "global", DICE["global"] - 0.05)  # a default that cost 5 points
    assert module.main(argv + [str(tmp_path / "after.json")]) == 0
    capsys.readouterr()
    compare = benchmark_script("compare_ablations")
    assert compare.main([str(tmp_path / "after.json"), str(tmp_path / "before.json"),
                         "--methods", "none", "global"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "| experiment | none | global |" in lines
    # every seed of both directions 5 points down: the same on each, an interval of width 0
    assert lines[-1] == "| all, pooled | +0.0 [+0.0, +0.0] | **-5.0 [-5.0, -5.0]** |"
