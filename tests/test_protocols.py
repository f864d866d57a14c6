"""The two evaluation protocols (per-volume, SIFA's; pooled, the GLUA authors' metric.py) and
ASSD in mm or voxels: hand-computed volumes, prepared folders, tables and the CLI."""
from __future__ import annotations

import json

import numpy as np
import pytest

from glua_lib.cli import main
from glua_lib.data import Volume, make_manifest, save_volume, write_manifest
from glua_lib.metrics import pool_volumes
from glua_lib.results import combine_evaluations, make_table
from glua_lib.seg.predict import evaluate_folders

CLASSES = ("background", "MYO", "LAC", "LVC", "AA")


def _folder(path, labels, spacings, modality="ct"):
    """A prepared folder whose volumes carry the given label arrays (test split)."""
    path.mkdir(parents=True)
    splits = {}
    for i, (label, spacing) in enumerate(zip(labels, spacings)):
        subject = f"{modality}{i:02d}"
        save_volume(path / f"{subject}.npz", Volume(
            image=np.zeros(label.shape, np.float32), label=label.astype(np.uint8),
            spacing=spacing, modality=modality, task="cardiac", subject=subject))
        splits[subject] = "test"
    write_manifest(path, make_manifest(dataset="tiny", task="cardiac", modality=modality,
                                       normalisation={"kind": "none"}, splits=splits,
                                       command="tests"))
    return path


@pytest.fixture
def pair(tmp_path):
    """Volume 0: MYO of 4 voxels found exactly (Dice 1). Volume 1: MYO of 1 voxel missed (Dice
    0). Per volume the MYO mean is ½; pooled, |P ∩ G| = 4, |P| = 4, |G| = 5: Dice 8/9."""
    gt0 = np.zeros((1, 4, 4), np.uint8)
    gt0[0, :2, :2] = 1
    gt1 = np.zeros((1, 4, 4), np.uint8)
    gt1[0, 3, 3] = 1
    gt = _folder(tmp_path / "gt", [gt0, gt1], [(2.0, 1.0, 1.0)] * 2)
    pred = _folder(tmp_path / "pred", [gt0, np.zeros_like(gt1)], [(2.0, 1.0, 1.0)] * 2)
    return pred, gt


def test_pooled_dice_is_one_figure_over_the_concatenated_volumes(pair):
    pred, gt = pair
    per_volume = evaluate_folders(pred, gt)
    pooled = evaluate_folders(pred, gt, protocol="pooled")
    assert [v["dice"]["MYO"] for v in per_volume["volumes"].values()] == [1.0, 0.0]
    assert list(pooled["volumes"]) == ["pooled"] and pooled["pooled_subjects"] == ["ct00", "ct01"]
    assert pooled["volumes"]["pooled"]["dice"]["MYO"] == pytest.approx(8 / 9)
    assert (pooled["protocol"], pooled["assd_unit"]) == ("pooled", "mm")
    # the table says which protocol its figures come from
    table = make_table({"pred": pooled})
    assert table.cell("pred", "MYO").mean == pytest.approx(100 * 8 / 9)
    assert "pooled into one figure" in table.to_str() and "over volumes" in \
        make_table({"pred": per_volume}).to_str()
    assert table.to_markdown().startswith("**Dice (%)**, pooled protocol (GLUA's metric.py)")
    assert "per-volume protocol (SIFA's)" in make_table({"pred": per_volume}).to_markdown()
    with pytest.raises(ValueError, match="mix evaluation protocols"):
        make_table({"a": pooled, "b": per_volume})


def test_assd_in_voxels_ignores_the_spacing(tmp_path):
    gt = np.zeros((1, 8, 8), np.uint8)
    gt[0, 2:4, 2:4] = 1
    shifted = np.zeros_like(gt)
    shifted[0, 2:4, 4:6] = 1  # two columns right: the near column 1 voxel away, the far one 2
    g = _folder(tmp_path / "g", [gt], [(1.0, 3.0, 3.0)])
    p = _folder(tmp_path / "p", [shifted], [(1.0, 3.0, 3.0)])
    mm = evaluate_folders(p, g)["volumes"]["ct00"]["assd"]["MYO"]
    vox = evaluate_folders(p, g, assd_unit="voxel")["volumes"]["ct00"]["assd"]["MYO"]
    assert vox == pytest.approx(1.5) and mm == pytest.approx(3 * 1.5)  # 3 mm a column
    table = make_table({"p": evaluate_folders(p, g, assd_unit="voxel")}, "assd")
    assert table.title == "ASSD (voxels)"


def test_pooling_needs_one_slice_size_and_one_spacing_in_mm():
    a, b = np.zeros((1, 4, 4)), np.zeros((2, 4, 4))
    p, g, spacing = pool_volumes([a, b], [a, b], [(1, 1, 1), (1, 1, 1)], ["a", "b"])
    assert p.shape == (3, 4, 4) and spacing == (1.0, 1.0, 1.0)
    with pytest.raises(ValueError, match=r"b has spacing \(2, 1, 1\).*ASSD in voxels"):
        pool_volumes([a, b], [a, b], [(1, 1, 1), (2, 1, 1)], ["a", "b"])
    assert pool_volumes([a, b], [a, b], [(1, 1, 1), (2, 1, 1)], ["a", "b"], "voxel")[2] == \
        (1.0, 1.0, 1.0)
    with pytest.raises(ValueError, match="b: slices of"):
        pool_volumes([a, np.zeros((1, 5, 5))], [a, np.zeros((1, 5, 5))], [(1, 1, 1)] * 2,
                     ["a", "b"])


def test_cli_evaluates_pooled_and_compare_refuses_a_mix(pair, tmp_path, capsys):
    pred, gt = pair
    pooled, per_volume = tmp_path / "pooled.json", tmp_path / "per_volume.json"
    assert main(["evaluate", "--pred", str(pred), "--gt", str(gt), "--protocol", "pooled",
                 "--assd-unit", "voxel", "--name", "none", "--out", str(pooled)]) == 0
    out = capsys.readouterr().out
    assert "pooled into one figure" in out and "ASSD (voxels)" in out
    assert json.loads(pooled.read_text())["per_volume"]["protocol"] == "pooled"
    assert main(["evaluate", "--pred", str(pred), "--gt", str(gt), "--name", "oracle",
                 "--out", str(per_volume)]) == 0
    with pytest.raises(ValueError, match="protocol 'per-volume', but .*pooled.json has "
                                         "'pooled'"):
        combine_evaluations([pooled, per_volume])
