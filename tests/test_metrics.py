"""3D Dice and ASSD (mm) on hand-computed volumes, the empty cases, and the results tables."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from glua_lib.metrics import MetricAccumulator, binary_metrics, penalty_mm, volume_metrics
from glua_lib.results import (POOLED, ablation_summary, candidates_markdown, ceiling_markdown,
                              compare,
                              describe_difference, differences_markdown, gap_closed, is_finding,
                              load_report, make_table, make_tables, method_difference,
                              pooled_difference, report_tables, reports_difference,
                              seed_differences,
                              tables_markdown, volume_averages)

CLASSES = ("background", "A", "B")


def slabs(shape=(8, 8, 8)):
    """Two 2×4×4 slabs offset by one voxel along D: every voxel is a surface voxel."""
    a, b = np.zeros(shape, bool), np.zeros(shape, bool)
    a[2:4, 2:6, 2:6] = True
    b[3:5, 2:6, 2:6] = True
    return a, b


def test_offset_slabs_by_hand_with_anisotropic_spacing():
    a, b = slabs()
    # Overlap 16 of 32 + 32 voxels: Dice = 2·16/64. Surface distances: the shared layer d=3 is
    # 0 away, the other layer of each slab is one D-step (3 mm) away -> ASSD = (16·3·2)/64.
    dice, assd, status = binary_metrics(a, b, spacing=(3.0, 0.5, 0.5))
    assert (dice, status) == (pytest.approx(0.5), "ok")
    assert assd == pytest.approx(1.5)


def test_offset_cubes_by_hand():
    a, b = np.zeros((9, 9, 9), bool), np.zeros((9, 9, 9), bool)
    a[2:5, 2:5, 2:5] = True  # 3×3×3 cubes: 26 surface voxels each (the centre is interior)
    b[3:6, 2:5, 2:5] = True
    # a -> b: its d=2 face (9 voxels) is 2 mm from b's d=3 face; its d=3 layer lies on b's surface;
    # its d=4 face lies in b, on b's surface except b's centre (4,3,3), which is 1 mm (in-plane)
    # from b's surface. Symmetric for b -> a. ASSD = (9·2 + 1) · 2 / 52.
    dice, assd, _ = binary_metrics(a, b, spacing=(2.0, 1.0, 1.0))
    assert dice == pytest.approx(2 * 18 / 54)
    assert assd == pytest.approx(38 / 52, rel=1e-6)


def test_identical_masks_and_spacing_scaling():
    a, b = slabs()
    assert binary_metrics(a, a, (1, 1, 1))[:2] == (pytest.approx(1.0), 0.0)
    one = binary_metrics(a, b, (1.0, 1.0, 1.0))[1]
    assert binary_metrics(a, b, (2.0, 2.0, 2.0))[1] == pytest.approx(2 * one)
    # only the D spacing matters for a shift along D
    assert binary_metrics(a, b, (1.0, 5.0, 7.0))[1] == pytest.approx(one)


def test_empty_cases_are_finite_and_documented():
    empty = np.zeros((4, 6, 8), bool)
    full = empty.copy()
    full[1:3, 1:4, 1:5] = True
    spacing = (2.0, 1.0, 0.5)
    diag = math.sqrt((4 * 2) ** 2 + 6 ** 2 + (8 * 0.5) ** 2)
    assert penalty_mm(empty.shape, spacing) == pytest.approx(diag)
    assert binary_metrics(empty, empty, spacing) == (1.0, 0.0, "both_empty")
    assert binary_metrics(empty, full, spacing) == (0.0, pytest.approx(diag), "missed")
    assert binary_metrics(full, empty, spacing) == (0.0, pytest.approx(diag), "false_positive")


def test_volume_metrics_per_class_and_accumulator():
    a, b = slabs()
    gt = np.zeros(a.shape, np.uint8)
    gt[a] = 1
    pred = np.zeros_like(gt)
    pred[b] = 1
    pred[0, 0, 0] = 2  # class B hallucinated, absent in the ground truth
    m = volume_metrics(pred, gt, (3.0, 0.5, 0.5), CLASSES)
    assert m["status"] == {"A": "ok", "B": "false_positive"}
    assert m["dice"] == {"A": pytest.approx(0.5), "B": 0.0}
    assert m["assd"]["B"] == pytest.approx(penalty_mm(gt.shape, (3.0, 0.5, 0.5)))
    json.dumps(m)  # JSON-ready

    acc = MetricAccumulator(CLASSES)
    acc.add_metrics("v1", m)
    acc.add("v2", gt, gt, (1, 1, 1))  # perfect A, B absent in both -> Dice 1, ASSD 0
    agg = acc.aggregate()
    assert agg["n_volumes"] == 2
    assert agg["dice"]["A"] == {"mean": pytest.approx(0.75), "std": pytest.approx(0.25), "n": 2}
    assert agg["dice"]["average"]["mean"] == pytest.approx((0.25 + 1.0) / 2)
    assert agg["status_counts"]["B"] == {"ok": 0, "both_empty": 1, "missed": 0,
                                         "false_positive": 1}
    with pytest.raises(ValueError, match="'v1' was already added"):
        acc.add_metrics("v1", m)
    with pytest.raises(ValueError, match="shape"):
        volume_metrics(pred[:4], gt, (1, 1, 1), CLASSES)


def _run(dice_a, dice_b, assd=1.0):
    vols = {f"s{i}": {"dice": {"A": da, "B": db}, "assd": {"A": assd, "B": assd},
                      "status": {"A": "ok", "B": "ok"}}
            for i, (da, db) in enumerate(zip(dice_a, dice_b))}
    return {"classes": list(CLASSES), "volumes": vols}


def test_results_tables_layout_mean_std_and_gap_closed():
    results = {"none": _run([0.2, 0.4], [0.0, 0.2]),
               "global": [_run([0.6, 0.6], [0.4, 0.4]), _run([0.8, 0.8], [0.6, 0.6])],
               "oracle": _run([0.9, 0.9], [0.9, 0.9], assd=0.5)}
    tables = make_tables(results)
    dice = tables["dice"]
    assert dice.columns == ["A", "B", "average"] and dice.methods == ["none", "global", "oracle"]
    assert dice.cell("none", "A").mean == pytest.approx(30.0)
    assert dice.cell("none", "A").std == pytest.approx(10.0)
    assert dice.cell("none", "average").mean == pytest.approx(20.0)
    g = dice.cell("global", "average")  # pooled over 2 seeds × 2 volumes: 50, 50, 70, 70
    assert (g.mean, g.std, g.n, g.seed_std) == (pytest.approx(60.0), pytest.approx(10.0), 4,
                                                pytest.approx(10.0))
    assert dice.gap_closed == {"none": 0.0, "global": pytest.approx(40 / 70), "oracle": 1.0}
    assert tables["assd"].cell("oracle", "B").format(2) == "0.50 (0.00)"
    md = tables_markdown(tables)
    assert "| none | 30.0 (10.0) | 10.0 (10.0) | 20.0 (10.0) | 0.00 |" in md
    assert "ASSD (mm)" in str(tables["assd"]) and "gap closed" not in str(tables["assd"])
    back = json.loads(json.dumps(dice.to_dict()))
    assert back["rows"]["global"]["average"]["n"] == 4 and back["n_seeds"]["global"] == 2


def test_gap_closed_undefined_cases_and_table_errors():
    assert gap_closed({"x": 0.5}) == {}
    assert gap_closed({"none": 0.5, "oracle": 0.5, "x": 0.7}) == {"none": None, "oracle": None,
                                                                   "x": None}
    with pytest.raises(ValueError, match="unknown metric"):
        make_table({"none": _run([0.1], [0.1])}, metric="hd95")
    with pytest.raises(ValueError, match="no dice for class 'C'"):
        make_table({"none": _run([0.1], [0.1])}, classes=["A", "C"])


def _report(tmp_path, experiments):
    path = tmp_path / "ablation.json"
    path.write_text(json.dumps({"command": "python benchmarks/ablation.py", "code_version": "abc",
                                "profile": "demo", "seeds": [0, 1], "device": "cpu",
                                "experiments": experiments}))
    return path


def test_results_file_tables_are_recomputed_and_compared(tmp_path):
    per = {"none": [_run([0.2], [0.2]), _run([0.4], [0.4])],  # 30
           "local": [_run([0.4], [0.4])],  # 40
           "global": [_run([0.6], [0.6])],  # 60
           "glua": [_run([0.7], [0.8]), _run([0.8], [0.7])],  # 75
           "oracle": [_run([0.9], [0.9])]}  # 90
    report = load_report(_report(tmp_path, {"t a→b": {"per_volume": per}}))
    dice = report_tables(report, "t a→b", ["none", "global", "glua", "oracle", "local"])["dice"]
    assert dice.methods == ["none", "global", "glua", "oracle", "local"]
    assert dice.cell("glua", "average").mean == pytest.approx(75.0)
    assert dice.n_seeds["glua"] == 2 and dice.gap_closed["glua"] == pytest.approx(0.75)
    verdict = compare(dice, "glua", ["global", "local"], target_gap=0.7)
    assert verdict["beats"] == {"global": True, "local": True} and verdict["all"]
    assert verdict["margin"]["global"] == pytest.approx(15.0)
    worse = compare(dice, "local", ["global"], target_gap=0.7)
    assert worse["beats"] == {"global": False} and worse["meets_gap"] is False
    assert not worse["all"]
    one = report_tables(report, "t a→b", ["glua"], seeds=[1])["dice"]
    assert one.cell("glua", "average").mean == pytest.approx(75.0) and one.n_seeds["glua"] == 1
    assert one.cell("glua", "A").mean == pytest.approx(80.0)  # the second seed's run
    with pytest.raises(KeyError, match="not all of \\[5\\]"):
        report_tables(report, "t a→b", seeds=[5])
    rows, md = ablation_summary(report, "glua", ["global", "local"], target_gap=0.8)
    assert rows[0]["experiment"] == "t a→b" and rows[0]["dice"]["glua"] == pytest.approx(75.0)
    assert not rows[0]["all"]  # beats both, but 0.75 < 0.8 of the gap
    assert "| t a→b | 30.0 | 40.0 | 60.0 | 75.0 | 90.0 | +15.0 | +35.0 | 0.75 | no |" in md
    assert "(per-volume protocol (SIFA's))" in md  # the protocol, next to the table
    _, narrow = ablation_summary(report, "glua", ["global"], target_gap=0.8, shown=["none", "glua"])
    assert "| experiment | none | glua | glua − global | gap closed | target met |" in narrow
    assert "| t a→b | 30.0 | 75.0 | +15.0 | 0.75 | no |" in narrow
    with pytest.raises(KeyError, match="no runs of \\['x'\\]"):
        report_tables(report, "t a→b", ["none", "x"])
    with pytest.raises(KeyError, match="no experiment"):
        report_tables(report, "t b→a")


def test_results_file_errors_name_the_file_and_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.json.*make ablation"):
        load_report(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="bad.json: not a JSON results file"):
        load_report(bad)
    with pytest.raises(ValueError, match="missing.*per_volume in t"):
        load_report(_report(tmp_path, {"t": {"tables": {}}}))


def test_paired_difference_is_the_mean_difference_with_a_student_t_interval():
    from glua_lib.results import paired_difference

    # differences 1, 2, 3: mean 2, sample std 1, sem 1/√3; t(0.975, 2 df) = 4.302652729911275
    mean, low, high = paired_difference([11.0, 12.0, 13.0], [10.0, 10.0, 10.0])
    half = 4.302652729911275 / 3 ** 0.5
    assert mean == pytest.approx(2.0)
    assert (low, high) == (pytest.approx(2.0 - half), pytest.approx(2.0 + half))
    assert low < 0 < high  # three seeds this spread: not a finding
    mean, low, high = paired_difference([5.0, 6.0], [4.0, 5.0])  # equal differences: no spread
    assert (mean, low, high) == (1.0, 1.0, 1.0)
    with pytest.raises(ValueError, match="two or more pairs of equal length, got 2 and 3"):
        paired_difference([1.0, 2.0], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="got 1 and 1"):
        paired_difference([1.0], [2.0])


def test_average_dice_is_the_mean_over_volumes_of_the_foreground_mean():
    from glua_lib.results import average_dice

    ok = {c: "ok" for c in ("A", "B")}
    metrics = {"volumes": {"v1": {"dice": {"A": 1.0, "B": 0.5}, "assd": {"A": 0.0, "B": 1.0},
                                  "status": ok},
                           "v2": {"dice": {"A": 0.5, "B": 0.0}, "assd": {"A": 1.0, "B": 2.0},
                                  "status": ok}}}
    assert average_dice(metrics) == pytest.approx(50.0)  # (75 + 25) / 2, in %


def test_ablation_verdict_counts_the_experiments_that_meet_the_target():
    from glua_lib.results import ablation_verdict
    rows = [
        {"experiment": "a", "all": True, "gap_closed": 0.9, "beats": {"global": True, "local": True},
         "dice": {"glua": 80.0, "glua-unmasked": 78.5}},
        {"experiment": "b", "all": False, "gap_closed": 0.4,
         "beats": {"global": False, "local": True}, "dice": {"glua": 50.0, "glua-unmasked": 51.0}},
    ]
    text = ablation_verdict(rows, target_gap=0.7)
    assert text == ("**Verdict, computed from the file.** `glua` meets the target (beats `global` "
                    "and `local`, closes ≥ 70 % of the gap) in 1 of 2 task-directions: a. It beats "
                    "`global` in 1 and `local` in 2 of them; its gap closed ranges from 0.40 to "
                    "0.90. The mask's own effect (`glua` − `glua-unmasked`) ranges from -1.0 to "
                    "+1.5 points.")
    none = ablation_verdict([{**rows[1], "gap_closed": None}], target_gap=0.85)
    assert "in 0 of 1 task-directions." in none and "closes ≥ 85 %" in none
    assert "gap closed ranges" not in none
    assert "The mask's own effect (`glua` − `glua-unmasked`) is -1.0 points." in none
    one = ablation_verdict(rows[1:], target_gap=0.7)
    assert "its gap closed is 0.40." in one


def test_penalised_pairs_and_class_differences_by_hand():
    from glua_lib.results import class_differences, penalised_pairs

    def result(dice_a, status_b):
        vols = {f"v{i}": {"dice": {"A": d, "B": 1.0}, "assd": {"A": 1.0, "B": 1.0},
                          "status": {"A": "ok", "B": s}} for i, (d, s) in
                enumerate(zip(dice_a, status_b))}
        return {"classes": ["background", "A", "B"], "volumes": vols}

    runs = {"none": result([0.2, 0.4], ["ok", "missed"]),
            "oracle": result([0.9, 0.7], ["ok", "ok"])}
    assert penalised_pairs(runs, ["A", "B"]) == {"none": 1, "oracle": 0}
    table = make_table(runs)  # A: 30 and 80 points; B: 100 and 100
    drop = class_differences(table, "oracle", "none")
    assert drop == {"A": pytest.approx(50.0), "B": pytest.approx(0.0)}
    assert class_differences(table, "none", "oracle", ["A"]) == {"A": pytest.approx(-50.0)}


def test_method_differences_are_paired_by_volume_and_seed_with_a_t_interval_over_seeds():
    base = [_run([0.5, 0.5], [0.5, 0.5]) for _ in range(3)]  # 50 on every volume
    glua = [_run([0.6, 0.6], [0.6, 0.6]),  # 60, 60: +10
            _run([0.56, 0.6], [0.56, 0.6]),  # 56, 60: +8
            _run([0.62, 0.62], [0.62, 0.62])]  # 62, 62: +12
    assert volume_averages(glua[1]) == pytest.approx({"s0": 56.0, "s1": 60.0})
    assert seed_differences(glua, base) == pytest.approx([10.0, 8.0, 12.0])
    report = {"seeds": [0, 1, 2], "experiments": {"t a→b": {"per_volume": {
        "glua": glua, "glua-unmasked": base, "global": glua}}}}
    d = method_difference(report, "t a→b", "glua", "glua-unmasked")
    half = 4.302652729749464 * 2.0 / math.sqrt(3)  # t(0.975, 2 df) × sd 2 / √3
    assert d["mean"] == pytest.approx(10.0) and d["n_seeds"] == 3 and d["n_volumes"] == 2
    assert (d["low"], d["high"]) == pytest.approx((10.0 - half, 10.0 + half))
    assert d["finding"]
    same = method_difference(report, "t a→b", "glua", "global")
    assert same["mean"] == 0.0 and not same["finding"]
    found, md = differences_markdown(report, [("glua", "glua-unmasked"), ("glua", "local")])
    assert list(found["t a→b"]) == ["glua − glua-unmasked"]  # no local runs: no cell
    assert f"**+10.0 [{10 - half:+.1f}, {10 + half:+.1f}]**" in md and "| – |" in md
    assert "3 seeds of 2 test volumes" in md
    with pytest.raises(KeyError, match="no runs of 'local'"):
        method_difference(report, "t a→b", "glua", "local")
    with pytest.raises(ValueError, match="pair them seed by seed"):
        seed_differences(glua, base[:2])
    other = _run([0.5], [0.5])
    with pytest.raises(ValueError, match="different volumes"):
        seed_differences(glua[:1], [other])


def test_pooled_difference_takes_every_task_direction_and_seed_as_one_unit():
    base = [_run([0.5], [0.5]) for _ in range(2)]  # 50 on the one volume
    up = {10: _run([0.6], [0.6]), 8: _run([0.58], [0.58]), 12: _run([0.62], [0.62]),
          6: _run([0.56], [0.56])}
    report = {"seeds": [0, 1], "experiments": {
        "t a→b": {"per_volume": {"glua": [up[10], up[8]], "global": base}},
        "t b→a": {"per_volume": {"glua": [up[12], up[6]], "global": base}},
        "u a→b": {"per_volume": {"glua": [up[10], up[8]]}}}}  # no global: not pooled
    d = pooled_difference(report, "glua", "global")
    assert d["per_seed"] == pytest.approx([10.0, 8.0, 12.0, 6.0])
    sd = math.sqrt(((1 ** 2) + (1 ** 2) + (3 ** 2) + (3 ** 2)) / 3)  # around the mean 9
    half = 3.182446305284263 * sd / 2  # t(0.975, 3 df) × sd / √4
    assert d["mean"] == pytest.approx(9.0) and d["n_seeds"] == 4 and d["n_experiments"] == 2
    assert (d["low"], d["high"]) == pytest.approx((9.0 - half, 9.0 + half)) and d["finding"]
    one = {"seeds": [0, 1], "experiments": {k: report["experiments"][k] for k in ["t a→b"]}}
    assert pooled_difference(one, "glua", "global") is None  # one experiment: nothing to pool
    found, md = differences_markdown(report, [("glua", "global")], pooled=True)
    assert found[POOLED]["glua − global"]["mean"] == pytest.approx(9.0)
    assert md.splitlines()[-1] == f"| {POOLED} | **+9.0 [{9 - half:+.1f}, {9 + half:+.1f}]** |"
    assert "(4 units)" in md
    plain, md_plain = differences_markdown(report, [("glua", "global")])
    assert POOLED not in plain and POOLED not in md_plain


def test_two_results_files_are_compared_method_by_method_seed_by_seed():
    fifty = [_run([0.5], [0.5]) for _ in range(2)]  # 50 on the one volume
    up = {10: _run([0.6], [0.6]), 8: _run([0.58], [0.58]), 12: _run([0.62], [0.62]),
          6: _run([0.56], [0.56])}
    before = {"seeds": [0, 1], "experiments": {
        "t a→b": {"per_volume": {"glua": fifty, "none": fifty}},
        "t b→a": {"per_volume": {"glua": fifty, "none": fifty}},
        "u a→b": {"per_volume": {"glua": fifty}}}}  # not in `after`: left out
    after = {"seeds": [0, 1], "experiments": {
        "t a→b": {"per_volume": {"glua": [up[10], up[8]], "none": fifty, "oracle": fifty}},
        "t b→a": {"per_volume": {"glua": [up[12], up[6]], "none": fifty}}}}
    found, md = reports_difference(after, before)  # glua and none: oracle is only in `after`
    assert list(found) == ["t a→b", "t b→a", POOLED] and list(found[POOLED]) == ["glua", "none"]
    assert found["t a→b"]["glua"]["per_seed"] == pytest.approx([10.0, 8.0])
    assert found[POOLED]["glua"]["mean"] == pytest.approx(9.0)  # as the pooled test above
    assert found[POOLED]["none"]["mean"] == 0.0 and not found[POOLED]["none"]["finding"]
    assert "| experiment | glua | none |" in md and "(4 units)" in md
    only, _ = reports_difference(after, before, ["none"])
    assert list(only["t a→b"]) == ["none"]
    with pytest.raises(ValueError, match="no experiment in both"):
        reports_difference(after, {"experiments": {"u a→b": before["experiments"]["u a→b"]}})


def test_ceiling_markdown_pairs_global_with_its_ceiling_by_seed():
    def seed(glob, ideal, oracle, judge):
        return {"dice_global": {"A": glob[0], "B": glob[1]},
                "dice_global_ideal": {"A": ideal, "B": ideal}, "dice_oracle": {"A": oracle,
                                                                               "B": oracle},
                **{f"judge_{k}": {"A": v, "B": v} for k, v in judge.items()}}
    judge = {"source": 20.0, "translated": 50.0, "ideal": 90.0}
    report = {"experiments": {
        "t a→b": {"0": seed((60.0, 70.0), 90.0, 92.0, judge),  # 65: −25
                  "1": seed((70.0, 70.0), 90.0, 94.0, judge)},  # 70: −20
        "t b→a": {"0": seed((80.0, 80.0), 85.0, 90.0, judge)}}}  # one seed: no interval
    rows, md = ceiling_markdown(report)
    half = 12.706204736174707 * math.sqrt(12.5) / math.sqrt(2)  # t(0.975, 1 df) × sd / √2
    assert rows[0]["global"] == pytest.approx(67.5) and rows[0]["ceiling"] == 90.0
    assert rows[0]["oracle"] == pytest.approx(93.0) and rows[0]["n_seeds"] == 2
    assert rows[0]["difference"] == pytest.approx((-22.5, -22.5 - half, -22.5 + half))
    assert rows[0]["judge"] == judge and rows[1]["difference"] is None
    assert -22.5 + half > 0  # two seeds: not a finding, so not bold
    assert f"| t a→b | 67.5 | 90.0 | 93.0 | -22.5 [{-22.5 - half:+.1f}, {-22.5 + half:+.1f}] " \
           "| 20.0 → 50.0 (90.0) |" in md
    assert "| t b→a | 80.0 | 85.0 | 90.0 | – |" in md and "mean over 1, 2 seeds" in md


def test_candidates_markdown_pairs_translators_by_task_direction_and_seed():
    from scipy import stats

    units = [("cardiac", "mr2ct", 0), ("cardiac", "mr2ct", 1), ("abdominal", "ct2mr", 0)]
    glob = {"A": [60, 62, 70], "B": [61, 65, 72]}  # B − A: 1, 3, 2
    side = {"A": [80, 80, 80], "B": [85, 87, 88]}  # B − A: 5, 7, 8
    ceiling = [90, 90, 95]
    rows = [{"task": t, "direction": d, "seed": s, "candidate": c, "global": glob[c][i],
             "source_side": side[c][i], "ceiling": ceiling[i]}
            for c in ("A", "B") for i, (t, d, s) in enumerate(units)]
    found, md = candidates_markdown(rows, reference="A")
    half = stats.t.ppf(0.975, 2) / math.sqrt(3)
    assert found["A"] == {}
    assert found["B"]["global"] == pytest.approx((2.0, 2.0 - half * 1.0, 2.0 + half * 1.0))
    sd = float(np.std([5, 7, 8], ddof=1))
    assert found["B"]["source_side"] == pytest.approx((20 / 3, 20 / 3 - half * sd,
                                                       20 / 3 + half * sd))
    lines = md.splitlines()
    assert lines[2] == ("| translator | cardiac MR→CT | abdominal CT→MR | mean | − reference: "
                        "target | − reference: source side |")
    assert lines[4] == "| ceiling (ideal translations) | 90.0 | 95.0 | 92.5 | | |"
    assert lines[5] == "| A | 61.0 (80.0) | 70.0 (80.0) | 65.5 (80.0) | – | – |"
    assert lines[6] == ("| B | 63.0 (86.0) | 72.0 (88.0) | 67.5 (87.0) | +2.0 [-0.5, +4.5] "
                        "| **+6.7 [+2.9, +10.5]** |")  # only the source side is a finding
    assert "3 (task, direction, seed) units" in lines[0]
    unnamed = [{**r, "candidate": "" if r["candidate"] == "A" else r["candidate"]} for r in rows]
    _, md = candidates_markdown(unnamed, reference="")  # "": the profile's translator
    assert "differences to (the profile's translator) paired" in md.splitlines()[0]
    assert md.splitlines()[5].startswith("| (the profile's translator) | 61.0 (80.0) |")
    with pytest.raises(ValueError, match="reference 'C' is not among"):
        candidates_markdown(rows, reference="C")
    with pytest.raises(ValueError, match="candidate 'B' lacks the unit"):
        candidates_markdown(rows[:-1], reference="A")
    with pytest.raises(ValueError, match="appears twice"):
        candidates_markdown(rows + rows[:1], reference="A")


def test_command_lines_keeps_quoted_arguments_whole_and_round_trips_through_the_shell():
    import shlex

    from glua_lib.results import command_lines

    command = ("python b.py --seeds 0 --candidates '' seg.x=0.1 "
               "'n_down=1 w_sem=1.0 seg.x=0.1' --out r.json")
    text = command_lines(command, width=40)
    assert text.splitlines() == ["python b.py --seeds 0 --candidates '' \\",
                                 "    seg.x=0.1 \\",
                                 "    'n_down=1 w_sem=1.0 seg.x=0.1' --out \\",
                                 "    r.json"]
    assert shlex.split(text.replace("\\\n", "")) == shlex.split(command)
    assert command_lines("python a-very-long-word-here", width=5) == (
        "python \\\n    a-very-long-word-here")


def test_a_difference_is_a_finding_only_when_its_interval_excludes_zero():
    assert is_finding((2.0, 0.5, 3.5)) and is_finding((-2.0, -3.5, -0.5))
    assert not is_finding((1.0, -0.5, 2.5)) and not is_finding((0.5, 0.0, 1.0))  # 0 is held
    assert describe_difference((2.04, 0.46, 3.55)) == "+2.0 [+0.5, +3.5], a finding"
    assert describe_difference((-0.3, -2.5, 2.0)) == "-0.3 [-2.5, +2.0], not a finding"
