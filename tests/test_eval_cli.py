"""predict -> evaluate round trip on tiny prepared folders, and the CLI's errors."""
from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest
from test_seg import make_prepared, tiny_config

from glua_lib.cli import main
from glua_lib.data import list_subjects, load_volume, read_manifest, save_volume
from glua_lib.seg.predict import evaluate_folders, predict_folder
from glua_lib.seg.train import train_seg


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny oracle run on CT and its folders (trained once for this module)."""
    root = tmp_path_factory.mktemp("seg")
    src = make_prepared(root / "src", "mr")
    tgt = make_prepared(root / "tgt", "ct", seed=10)
    run = train_seg("oracle", src, tgt, root / "run", tiny_config(steps=4), "cpu", progress=False)
    return root, src, tgt, run


def test_predict_folder_writes_prepared_volumes(trained):
    root, _, tgt, run = trained
    out = predict_folder(run, tgt, root / "pred", device="cpu", batch_size=4, split="test",
                         progress=False)
    manifest = read_manifest(out)
    assert list_subjects(out) == list_subjects(tgt, "test") == ["ct02", "ct03"]
    assert manifest["prediction"]["uses_target_labels"] is True
    pred, gt = load_volume(out / "ct02.npz"), load_volume(tgt / "ct02.npz")
    assert pred.label.shape == gt.label.shape and pred.label.dtype == np.uint8
    assert np.array_equal(pred.image, gt.image) and pred.spacing == gt.spacing
    assert int(pred.label.max()) < 5
    with pytest.raises(FileExistsError, match="not empty"):
        predict_folder(run, tgt, out, device="cpu", progress=False)


def test_evaluate_perfect_prediction_and_mismatches(trained, tmp_path):
    _, _, tgt, _ = trained
    perfect = evaluate_folders(tgt, tgt, split="test")
    assert sorted(perfect["volumes"]) == ["ct02", "ct03"]
    assert perfect["classes"] == ["background", "MYO", "LAC", "LVC", "AA"]
    for v in perfect["volumes"].values():
        assert set(v["dice"].values()) == {1.0} and set(v["assd"].values()) == {0.0}
    json.dumps(perfect)

    # a prediction folder missing a subject
    partial = tmp_path / "partial"
    shutil.copytree(tgt, partial)
    manifest = json.loads((partial / "manifest.json").read_text())
    del manifest["subjects"]["ct03"]
    (partial / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="no prediction for subjects \\['ct03'\\]"):
        evaluate_folders(partial, tgt)

    # a prediction of the wrong shape
    shutil.copy(tgt / "manifest.json", partial / "manifest.json")
    vol = load_volume(partial / "ct02.npz")
    vol.image, vol.label = vol.image[:3], vol.label[:3]
    save_volume(partial / "ct02.npz", vol)
    with pytest.raises(ValueError, match="subject 'ct02': prediction .*ct02.npz has shape "
                                         "\\(3, 16, 16\\)"):
        evaluate_folders(partial, tgt, split="test")


def test_cli_round_trip(trained, capsys):
    root, _, _, _ = trained  # the demo profile's U-Net (depth 4) needs 32² slices
    src, tgt = make_prepared(root / "src32", "mr", size=32), make_prepared(root / "tgt32", "ct",
                                                                          size=32, seed=10)
    run = root / "cli-run"
    assert main(["train-seg", "--method", "none", "--source", str(src), "--target", str(tgt),
                 "--out", str(run), "--steps", "2", "--device", "cpu", "--no-progress"]) == 0
    assert json.loads((run / "config.json").read_text())["steps"] == 2
    pred = root / "cli-pred"
    assert main(["predict", "--run", str(run), "--input", str(tgt), "--out", str(pred),
                 "--split", "test", "--device", "cpu", "--no-progress"]) == 0
    out = root / "results.json"
    assert main(["evaluate", "--pred", str(pred), "--gt", str(tgt), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Dice (%)" in printed and "ASSD (mm)" in printed and "MYO" in printed
    saved = json.loads(out.read_text())
    assert sorted(saved["per_volume"]["volumes"]) == ["ct02", "ct03"]
    assert saved["tables"]["dice"]["columns"][-1] == "average"


def test_predict_refuses_slices_of_another_size(trained, tmp_path):
    *_, run = trained
    big = make_prepared(tmp_path / "ct32", "ct", seed=10, size=32)  # converted with another --size
    with pytest.raises(ValueError, match=r"ct32/ct00.npz: slices are 32×32 but the model in .* "
                                         r"was trained on 16×16; prepare this folder with --size"):
        predict_folder(run, big, tmp_path / "pred", device="cpu", progress=False)
    assert not (tmp_path / "pred").exists()


@pytest.mark.parametrize("argv, message", [
    (["train-seg", "--method", "glue", "--source", "S", "--target", "T", "--out", "O"],
     "unknown method 'glue'"),
    (["train-seg", "--method", "none", "--source", "{tmp}/none", "--target", "{tgt}",
      "--out", "{tmp}/o", "--device", "cpu"], "none: source folder does not exist"),
    (["train-seg", "--method", "global", "--source", "{src}", "--target", "{tgt}",
      "--out", "{tmp}/g", "--device", "cpu"], "pass --style-run"),
    (["predict", "--run", "{tmp}/norun", "--input", "{tgt}", "--out", "{tmp}/p"],
     "norun: run folder does not exist"),
    (["predict", "--run", "{src}", "--input", "{tgt}", "--out", "{tmp}/p", "--device", "cpu"],
     "model.pt: no final model"),
    (["evaluate", "--pred", "{tmp}/nopred", "--gt", "{tgt}"],
     "nopred: prediction folder does not exist"),
    (["evaluate", "--pred", "{src}", "--gt", "{tgt}"], "no prediction for subjects"),
    (["evaluate", "--pred", "{tgt}", "--gt", "{tgt}", "--split", "val"], "no subjects in split"),
])
def test_cli_errors_name_the_file_and_exit_2(trained, tmp_path, capsys, argv, message):
    _, src, tgt, _ = trained
    argv = [a.format(tmp=tmp_path, src=src, tgt=tgt) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err


def test_help_names_every_method_train_seg_takes():
    from glua_lib.cli import COMMANDS
    from glua_lib.methods import METHODS

    summary = COMMANDS["train-seg"][1]  # its line in `python -m glua_lib --help`
    assert set(METHODS) > {"none", "global", "local", "glua", "oracle"}
    for name in METHODS:
        assert re.search(rf"\b{name.removesuffix('-unmasked')}\b", summary), name
