"""``python -m glua_lib compare``: several ``evaluate --out`` files in one table, on hand-made
per-volume metrics whose means and gap closed are computed by hand below."""
from __future__ import annotations

import json

import pytest

from glua_lib.cli import main
from glua_lib.results import combine_evaluations, load_evaluation, save_results

CLASSES = ["background", "A", "B"]
# per method: (volume v1, volume v2) × (Dice A, Dice B); ASSD = 1 − Dice, in mm
DICE = {"none": ((0.2, 0.0), (0.4, 0.2)),  # per-volume averages 0.1, 0.3  -> 20 %
        "glua": ((0.6, 0.4), (0.6, 0.2)),  # 0.5, 0.4 -> 45 %
        "oracle": ((1.0, 0.6), (0.8, 0.6))}  # 0.8, 0.7 -> 75 %


def per_volume(dice, subjects=("v1", "v2"), classes=CLASSES, task="toy"):
    return {"task": task, "classes": list(classes), "split": "test", "volumes": {
        s: {"dice": dict(zip(classes[1:], d)), "assd": {c: 1 - x for c, x in zip(classes[1:], d)}}
        for s, d in zip(subjects, dice)}}


def write(tmp_path, name, data=None, **kwargs):
    path = tmp_path / f"{name}.json"
    save_results(path, data if data is not None else per_volume(DICE[name]), name=name, **kwargs)
    return path


def test_compare_tabulates_the_files_in_order_with_the_gap_closed(tmp_path, capsys):
    files = [write(tmp_path, m) for m in ("none", "glua", "oracle")]
    md, js = tmp_path / "tables.md", tmp_path / "tables.json"
    assert main(["compare", *map(str, files), "--out", str(md)]) == 0
    printed = capsys.readouterr().out
    rows = [line.split() for line in printed.splitlines() if line.split()[:1] in
            (["none"], ["glua"], ["oracle"])]
    # Dice table: method, A, (std), B, (std), average, (std), gap closed
    assert [r[0] for r in rows[:3]] == ["none", "glua", "oracle"]
    assert [r[5] for r in rows[:3]] == ["20.0", "45.0", "75.0"]
    assert [r[-1] for r in rows[:3]] == ["0.00", "0.45", "1.00"]  # (45 − 20) / (75 − 20)
    assert rows[3][5] == "0.8"  # ASSD table: none's average of 1 − Dice, in mm
    assert "| glua | 60.0 (0.0) | 30.0 (10.0) | 45.0 (5.0) | 0.45 |" in md.read_text()

    assert main(["compare", *map(str, files), "--names", "a", "b", "c", "--out", str(js)]) == 0
    saved = json.loads(js.read_text())
    assert saved["files"] == [str(f) for f in files]
    assert list(saved["tables"]["dice"]["rows"]) == ["a", "b", "c"]
    assert "gap_closed" not in saved["tables"]["dice"]  # no rows named none and oracle
    assert saved["tables"]["assd"]["rows"]["c"]["B"]["mean"] == pytest.approx(0.4)


def test_the_name_of_an_older_file_comes_from_its_table_or_its_stem(tmp_path):
    data = per_volume(DICE["glua"])
    (tmp_path / "a.json").write_text(json.dumps({"per_volume": data, "tables": {
        "dice": {"rows": {"glua": {}}}}}))
    (tmp_path / "b.json").write_text(json.dumps({"per_volume": data}))
    assert load_evaluation(tmp_path / "a.json") == ("glua", data)
    assert load_evaluation(tmp_path / "b.json")[0] == "b"


@pytest.mark.parametrize("make, message", [
    (lambda d: None, "missing.json: no such results file; write it with `python -m glua_lib "
                     "evaluate"),
    (lambda d: (d / "bad.json").write_text("{not json"), "bad.json: not a JSON results file"),
    (lambda d: (d / "bad.json").write_text('{"tables": {}}'),
     "bad.json: holds no per-volume metrics of `evaluate`"),
    (lambda d: write(d, "bad", per_volume(((float("nan"), 0.1), (0.2, 0.2)))),
     "bad.json: volume 'v1' has non-finite dice {'A': nan}"),
    (lambda d: write(d, "bad", per_volume(DICE["glua"], subjects=("v1", "v3"))),
     "bad.json: scored other volumes than"),
    (lambda d: write(d, "bad", per_volume(DICE["glua"], classes=["background", "A", "C"])),
     "bad.json: classes ['background', 'A', 'C'], but"),
    (lambda d: write(d, "bad", per_volume(DICE["glua"], task="other")),
     "bad.json: task 'other', but"),
    (lambda d: save_results(d / "bad.json", per_volume(DICE["glua"]), name="none"),
     "bad.json: the name 'none' is taken by"),
])
def test_compare_refuses_files_it_cannot_put_side_by_side(tmp_path, capsys, make, message):
    good = write(tmp_path, "none")
    make(tmp_path)
    bad = tmp_path / ("missing.json" if "missing" in message else "bad.json")
    assert main(["compare", str(good), str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err, err


def test_names_must_match_the_files(tmp_path):
    files = [write(tmp_path, m) for m in ("none", "glua")]
    with pytest.raises(ValueError, match="1 names for 2 results files"):
        combine_evaluations(files, names=["x"])
    with pytest.raises(ValueError, match="no results files"):
        combine_evaluations([])
