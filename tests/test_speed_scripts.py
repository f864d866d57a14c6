"""benchmarks/machine_speed.py and book_times.py: the expected durations a machine's speed implies,
and the durations a book build's log holds (hand-made logs and reference files; the speed itself
is the script's output, not a test's)."""
from __future__ import annotations

import json
import os

import pytest

LOG = """\
execute-book: 8 runs of the demo profile and 4 chapters, 2 at a time with 1 thread(s) each, on cpu
/work/x/book/01_data.ipynb: Executed notebook in 13.69 seconds
style cardiac mr2ct seed0                   365 s  style-cardiac-mr2ct-demo-seed0-a5d49a8b
/work/x/book/02_global_alignment.ipynb: Executed notebook in 40.5 seconds
execute-book: done in 612 s
Running Jupyter-Book v1.0.4
make book: 700 s
"""


def test_expected_durations_scale_with_the_speed_ratio(benchmark_script):
    module = benchmark_script("machine_speed")
    ref = {"steps_per_s": 10.0, "make_test_s": 600.0, "make_book_s": 500.0,
           "chapters": {"01_data": 10.0, "04_segmentation": 30.0}}
    assert module.expected(ref, 2.0) == {"make test": 3000.0, "make book": 2500.0,
                                         "01_data": 50.0, "04_segmentation": 150.0}
    assert module.expected({**ref, "execute_book_s": 400.0}, 5.0)["its runs and chapters"] == 800.0
    assert module.expected({**ref, "make_test_s": None}, 10.0)["make book"] == 500.0
    assert "make test" not in module.expected({**ref, "make_test_s": None}, 10.0)
    assert (module.minutes(89), module.minutes(150)) == ("89 s", "2 min")


def test_machine_speed_prints_the_speed_and_the_estimate(benchmark_script, tmp_path, capsys,
                                                        monkeypatch):
    module = benchmark_script("machine_speed")
    monkeypatch.setattr(module, "measure_speed", lambda steps: 2.5)
    ref = tmp_path / "ref.json"
    ref.write_text(json.dumps({"steps_per_s": 10.0, "make_test_s": 600, "make_book_s": 480,
                               "chapters": {"01_data": 3.0, "02_global_alignment": 30.0},
                               "cpu": "Some CPU, AVX-512", "code_version": "0123456789abcdef"}))
    assert module.main(["--reference", str(ref), "--slow-reference", str(tmp_path / "none.json"),
                        "--save", str(tmp_path / "s" / "speed.json")]) == 0
    out = capsys.readouterr().out
    assert "machine speed: 2.50 demo steps/s" in out
    assert "make test ≈ 40 min, make book ≈ 32 min; then each chapter 12 s to 2 min" in out
    assert "Some CPU, AVX-512" in out
    assert json.loads((tmp_path / "s" / "speed.json").read_text())["steps_per_s"] == 2.5
    assert module.main(["--reference", str(tmp_path / "none.json")]) == 0
    assert "no reference durations" in capsys.readouterr().out
    # with a second reference at a low speed: make test is 80 s + (5200 s·steps/s) / speed
    slow = tmp_path / "slow.json"
    slow.write_text(json.dumps({"steps_per_s": 2.0, "make_test_s": 2680, "cpu": "Slow CPU",
                                "code_version": "fedcba9876543210"}))
    monkeypatch.setenv("GLUA_EMULATED", "2 cores at 0.200 of a CPU each")
    assert module.main(["--reference", str(ref), "--slow-reference", str(slow),
                        "--save", str(tmp_path / "s" / "speed.json")]) == 0
    out = capsys.readouterr().out
    assert "make test ≈ 36 min, make book ≈ 32 min" in out  # 80 + 2080 s; make book scaled
    assert "at 10.00 steps/s on Some CPU" in out and "at 2.00 steps/s on Slow CPU" in out
    assert json.loads((tmp_path / "s" / "speed.json").read_text())["cpu"].endswith(
        "emulating 2 cores at 0.200 of a CPU each")


def test_two_measurements_give_a_fixed_part_and_a_part_that_scales(benchmark_script):
    module = benchmark_script("machine_speed")
    ref = {"steps_per_s": 10.0, "make_test_s": 100.0, "make_book_s": 50.0,
           "chapters": {"01_data": 10.0}}
    slow = {"steps_per_s": 2.0, "make_test_s": 420.0, "chapters": {"01_data": 50.0}}
    # make test: b = (420 - 100) / (1/2 - 1/10) = 800, a = 100 - 800/10 = 20
    assert module.expected(ref, 4.0, slow)["make test"] == pytest.approx(20 + 800 / 4)
    assert module.expected(ref, 2.0, slow)["make test"] == pytest.approx(420.0)
    assert module.expected(ref, 10.0, slow)["make test"] == pytest.approx(100.0)
    assert module.expected(ref, 4.0, slow)["01_data"] == pytest.approx(25.0)  # all of it scales
    assert module.expected(ref, 4.0, slow)["make book"] == pytest.approx(125.0)  # only in ref
    # a slow figure that grew more than in proportion fits a < 0: the nearer measurement
    # (in 1/speed) scaled by the ratio, then
    assert module.expected(ref, 4.0, {**slow, "make_test_s": 600.0})["make test"] == \
        pytest.approx(100.0 * 10 / 4)
    assert module.expected(ref, 3.0, {**slow, "make_test_s": 600.0})["make test"] == \
        pytest.approx(600.0 * 2 / 3)
    assert module.expected(ref, 4.0, {**slow, "steps_per_s": 20.0}) == module.expected(ref, 4.0)


def test_book_log_gives_chapters_cached_runs_and_the_book(benchmark_script):
    module = benchmark_script("book_times")
    assert module.parse_book_log(LOG) == {
        "chapters": {"01_data": 13.69, "02_global_alignment": 40.5},
        "execute_book_s": 612.0, "make_book_s": 700.0}
    reversed_log = "\n".join(reversed(LOG.splitlines()))  # chapters finish in any order
    assert list(module.parse_book_log(reversed_log)["chapters"]) == ["01_data",
                                                                     "02_global_alignment"]
    bare = module.parse_book_log(LOG.splitlines()[1])
    assert bare["execute_book_s"] is None and bare["make_book_s"] is None
    with pytest.raises(ValueError, match="no 'Executed notebook"):
        module.parse_book_log("Running Jupyter-Book v1.0.4\n")


def test_book_times_writes_the_reference_file(benchmark_script, tmp_path, capsys):
    module = benchmark_script("book_times")
    (tmp_path / "speed.json").write_text(json.dumps({"steps_per_s": 7.5, "cpu": "X"}))
    (tmp_path / "book.log").write_text(LOG)
    out = tmp_path / "times.json"
    assert module.main(["--speed", str(tmp_path / "speed.json"), "--book-log",
                        str(tmp_path / "book.log"), "--make-test-s", "900", "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    assert (data["steps_per_s"], data["cpu"], data["make_test_s"], data["make_book_s"]) == \
        (7.5, "X", 900.0, 700.0)
    assert data["chapters"]["02_global_alignment"] == 40.5 and len(data["code_version"]) >= 7
    assert "make test 900 s, make book 700 s" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="missing.json does not exist"):
        module.main(["--speed", str(tmp_path / "missing.json"), "--book-log",
                     str(tmp_path / "book.log"), "--out", str(out)])


def test_demo_candidates_reads_overrides_and_refuses_the_books_data(benchmark_script, tmp_path,
                                                                    capsys):
    module = benchmark_script("demo_candidates")
    assert module.parse_candidate("") == ()
    assert module.parse_candidate("width=8 steps=400 norm=batch") == (
        ("norm", "batch"), ("steps", 400), ("width", 8))  # sorted: one folder name per setting
    with pytest.raises(ValueError, match="'width' is not field=value"):
        module.parse_candidate("width")
    with pytest.raises(SystemExit):
        module.main(["--data-seed", "2026", "--out", str(tmp_path / "x.json")])
    assert "the book's own data" in capsys.readouterr().err


def _fake_train_runs(jobs_by_run: dict):
    """A stand-in for ``pipeline.train_runs`` as the development scripts call it (demo profile,
    two 1-thread workers, development data seed 7): every job "done" at ``/runs/<i>``, its job
    recorded in ``jobs_by_run`` by run name."""
    from pathlib import Path

    def fake_train(jobs, profile, device, workers, threads):
        assert profile.name == "demo" and workers == 2 and threads == 1
        assert all(j.data_seed == 7 for j in jobs)
        done = [(j, Path(f"/runs/{i}"), 1.0) for i, j in enumerate(jobs)]
        jobs_by_run.update({run.name: job for job, run, _ in done})
        return done
    return fake_train


def test_demo_candidates_pairs_each_candidate_with_the_defaults_seed_by_seed(
        benchmark_script, tmp_path, capsys, monkeypatch):
    module = benchmark_script("demo_candidates")
    jobs_by_run = {}
    fake_train = _fake_train_runs(jobs_by_run)

    def fake_eval(run, task, target, profile, device, data_seed):
        job = jobs_by_run[run.name]
        dice = 0.5 + 0.01 * job.seed + (0.1 if job.overrides else 0.0)  # +10 points, no spread
        return {"classes": ["background", "A"], "volumes": {"v": {"dice": {"A": dice},
                                                                  "assd": {"A": 1.0}}}}

    monkeypatch.setattr(module, "train_runs", fake_train)
    monkeypatch.setattr(module, "evaluate_run", fake_eval)
    monkeypatch.setattr(module, "training_seconds", lambda run: 12.0)
    out = tmp_path / "c.json"
    assert module.main(["--tasks", "cardiac", "--methods", "none", "--candidates", "", "width=8",
                        "style_steps=300", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "(defaults)             Dice  51.0  train    12 s" in printed
    assert "width=8                Dice  61.0  train    12 s  +10.0 [+10.0, +10.0], a finding" \
        in printed
    assert "style_steps=300        Dice  51.0  train    12 s  +0.0 [+0.0, +0.0], not a finding\n" \
        in printed
    rows = json.loads(out.read_text())["rows"]
    assert len(rows) == 9 and {r["candidate"] for r in rows} == {"", "width=8", "style_steps=300"}
    style = [job for job in jobs_by_run.values() if job.profile_overrides]
    assert len(style) == 3 and all(j.profile_overrides == (("style_steps", 300),)
                                   and j.overrides == () for j in style)


def test_translator_candidates_prints_the_chapters_table_and_refuses_the_books_seed(
        benchmark_script, tmp_path, capsys, monkeypatch):
    module = benchmark_script("translator_candidates")
    from pathlib import Path

    jobs_by_run = {}
    fake_train = _fake_train_runs(jobs_by_run)

    def metrics(dice):
        return {"classes": ["background", "A"], "volumes": {"v": {"dice": {"A": dice},
                                                                  "assd": {"A": 1.0}}}}

    def fake_eval(run, task, target, profile, device, data_seed):
        job = jobs_by_run[run.name]  # ceiling 90; global 60 + seed, and 2 more with arch=domain
        if job.kind == "ideal":
            return metrics(0.9)
        domain = dict(job.style_overrides)["arch"] == "domain"
        return metrics(0.6 + 0.01 * job.seed + (0.02 if domain else 0.0))

    monkeypatch.setattr(module, "train_runs", fake_train)
    monkeypatch.setattr(module, "evaluate_run", fake_eval)
    monkeypatch.setattr(module, "translated_dir", lambda *a: Path("/translated"))
    monkeypatch.setattr(module, "evaluate_on", lambda *a, **k: metrics(0.8))
    monkeypatch.setattr(module, "training_seconds", lambda run: 300.0)
    out = tmp_path / "t.json"
    assert module.main(["--tasks", "cardiac", "--directions", "mr2ct", "--seeds", "0", "1",
                        "--candidates", "arch=munit", "arch=domain", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| ceiling (ideal translations) | 90.0 | 90.0 | | |" in printed
    assert "| arch=munit | 60.5 (80.0) | 60.5 (80.0) | – | – |" in printed
    assert ("| arch=domain | 62.5 (80.0) | 62.5 (80.0) | **+2.0 [+2.0, +2.0]** "
            "| +0.0 [+0.0, +0.0] |") in printed
    assert "arch=domain: style run 300 s (mean)" in printed
    rows = json.loads(out.read_text())["rows"]
    assert len(rows) == 4 and {r["ceiling"] for r in rows} == {90.0}
    with pytest.raises(SystemExit):
        module.main(["--data-seed", "2026", "--out", str(out)])


def test_translator_candidates_seg_items_change_the_segmenter_and_share_the_style_run(
        benchmark_script):
    module = benchmark_script("translator_candidates")
    from benchmarks.demo_candidates import parse_candidate

    candidates = [parse_candidate(c) for c in
                  ["arch=domain", "arch=domain seg.aug_class_offset=0.1",
                   "w_sem=1.0 n_down=1 seg.aug_class_offset=0.1"]]
    assert module.split_candidate(candidates[2]) == (
        (("n_down", 1), ("w_sem", 1.0)), (("aug_class_offset", 0.1),))
    jobs = module.jobs_for([("cardiac", "mr", "ct")], candidates, [0], 7)
    style = [j.style_overrides for j in jobs if j.kind == "style"]
    assert style == [(("arch", "domain"),), (("n_down", 1), ("w_sem", 1.0))]
    seg = [(j.style_overrides, j.overrides) for j in jobs if j.kind == "seg"]
    assert seg == [((("arch", "domain"),), ()),
                   ((("arch", "domain"),), (("aug_class_offset", 0.1),)),
                   ((("n_down", 1), ("w_sem", 1.0)), (("aug_class_offset", 0.1),))]
    assert [module.candidate_name(*module.split_candidate(c)) for c in candidates] == [
        "arch=domain", "arch=domain seg.aug_class_offset=0.1",
        "n_down=1 w_sem=1.0 seg.aug_class_offset=0.1"]
    assert [j.kind for j in jobs] == ["style", "style", "ideal", "seg", "seg", "seg"]


def test_times_table_gives_the_measured_and_the_scaled_durations():
    from glua_lib.costs import times_table

    ref = {"cpu": "X", "steps_per_s": 5.0, "make_test_s": 600.0,
           "chapters": {"01_data": 10.0, "04_segmentation": 30.0}}
    table = times_table(ref, {"half as fast": 2.5})
    lines = table.splitlines()
    assert lines[0] == "|  | measured (X, 5.00 steps/s) | estimated, half as fast |"
    assert lines[2] == "| chapter 1 in the book build | 10 s | 20 s |"
    assert lines[3] == "| chapter 4 in the book build | 30 s | 60 s |"
    assert lines[4] == "| make test | 10 min | 20 min |"


def test_slow_cores_caps_the_tree_and_each_process(benchmark_script, tmp_path):
    """``benchmarks/slow_cores.py`` on a stand-in of the cgroup v1 ``cpu`` tree (plain files: the
    caps it writes; moving processes needs the kernel's cgroup files and root)."""
    module = benchmark_script("slow_cores")
    cpu = tmp_path / "cpu"
    cpu.mkdir()
    (cpu / "cpu.cfs_quota_us").write_text("-1")
    groups = module.Groups(0.3, 2, base=tmp_path)
    assert not groups.v2 and groups.root == cpu / "glua-slow"
    assert (groups.root / "cpu.cfs_period_us").read_text() == str(module.PERIOD_US)
    assert (groups.root / "cpu.cfs_quota_us").read_text() == str(int(0.6 * module.PERIOD_US))
    groups.enter(12345)  # a group of its own, capped at the fraction
    assert (groups.root / "p12345" / "cpu.cfs_quota_us").read_text() == str(
        int(0.3 * module.PERIOD_US))
    assert (groups.root / "p12345" / "cgroup.procs").read_text() == "12345"
    with pytest.raises(SystemExit):
        module.main(["--speed", "2", "--fraction", "0.3", "--", "true"])  # one or the other
    # a group weighs what its process's nice value weighs to the kernel: 1024 at 0, 110 at 10
    groups.weigh(groups.root / "p12345", 10)
    assert (groups.root / "p12345" / "cpu.shares").read_text() == "110"
    groups.weigh(groups.root / "p12345", 0)
    assert (groups.root / "p12345" / "cpu.shares").read_text() == "1024"


def test_slow_cores_reads_a_process_nice_value(benchmark_script, tmp_path):
    module = benchmark_script("slow_cores")
    (tmp_path / "42").mkdir()  # /proc/42/stat of a process named "a) b", nice 10
    (tmp_path / "42" / "stat").write_text("42 (a) b) S 1 42 42 0 -1 4194560 0 0 0 0 0 0 0 0 "
                                          "30 10 1 0 100 0 0\n")
    assert module.nice_of(42, proc=tmp_path) == 10
    assert module.nice_of(43, proc=tmp_path) is None  # ended
    assert module.nice_of(os.getpid()) == os.nice(0)  # this process, from the real /proc
