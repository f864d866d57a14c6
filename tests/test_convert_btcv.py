"""BTCV converter on tiny NIfTI files in the real ``Training/img`` + ``Training/label`` layout."""
from __future__ import annotations

import numpy as np
import pytest
from _raw_layouts import (assert_fails, command, convert, labels_with, lps_affine, permuted_affine,
                          run_main, snapshot, truncate, write_nifti)

from glua_lib.data.prepared import PreparedDataError, load_volume, read_manifest

X, Y, Z = 8, 8, 5  # axial D×H×W = 5×8×8
SPACING = (0.7, 0.7, 3.0)
EXPECTED_CLASS = {**{v: 0 for v in range(14)}, 6: 1, 2: 2, 3: 3, 1: 4}  # liver, kidneys R/L, spleen


def classes(raw):
    return np.vectorize(EXPECTED_CLASS.get)(raw).astype(np.uint8)


def make_btcv(raw):
    """img0001 (test) with an LPS affine, img0002 (train) with permuted axes (S, R, A)."""
    rng, arrays = np.random.default_rng(5), {}
    for num, shape, affine in (("0001", (X, Y, Z), lps_affine(SPACING)),
                               ("0002", (Z, X, Y), permuted_affine(SPACING))):
        image = rng.integers(-1024, 1200, size=shape).astype(np.int16)
        label = labels_with(list(range(14)), shape, int(num))
        write_nifti(raw / "Training" / "img" / f"img{num}.nii.gz", image, affine)
        write_nifti(raw / "Training" / "label" / f"label{num}.nii.gz", label, affine)
        arrays[num] = (image, label)
    return arrays


def axial_lps(a):
    return a.transpose(2, 1, 0)  # (k, j, i): S, A→P, R→L


def axial_permuted(a):  # axes (S, R, A): H = A→P from axis 2 reversed, W = R→L from axis 1 reversed
    d, h, w = np.indices((Z, Y, X))
    return a[d, X - 1 - w, Y - 1 - h]


def ct(a):
    return 2 * (np.clip(a, -350, 350) + 350) / 700 - 1


def test_axial_output_labels_and_window(tmp_path):
    raw, out = tmp_path / "raw", tmp_path / "prep"
    arrays = make_btcv(raw)
    before = snapshot(raw)
    argv = ["--src", raw, "--out", out, "--size", 8, "--no-progress"]
    convert("btcv", *argv)
    assert snapshot(raw) == before
    manifest = read_manifest(out)
    assert manifest["task"] == "abdominal" and manifest["modality"] == "ct"
    assert {s: e["split"] for s, e in manifest["subjects"].items()} == {"btcv_0001": "test",
                                                                        "btcv_0002": "train"}
    assert manifest["command"] == command("btcv", *argv)
    assert manifest["normalisation"]["window_hu"] == [-350, 350]
    assert manifest["axes"].startswith("D inferior->superior")
    for num, reorient in (("0001", axial_lps), ("0002", axial_permuted)):
        image, label = arrays[num]
        vol = load_volume(out / f"btcv_{num}.npz")
        assert vol.image.shape == (Z, Y, X) and vol.spacing == pytest.approx((3.0, 0.7, 0.7))
        assert np.array_equal(vol.label, classes(reorient(label)))
        assert np.allclose(vol.image, reorient(ct(image)), atol=1e-6)
        assert set(np.unique(vol.label)) == {0, 1, 2, 3, 4}


def test_resampling_and_custom_window(tmp_path):
    raw, out = tmp_path / "raw", tmp_path / "prep"
    arrays = make_btcv(raw)
    convert("btcv", "--src", raw, "--out", out, "--size", 4, "--ct-window", -100, 300,
            "--no-progress")
    vol = load_volume(out / "btcv_0001.npz")
    assert vol.image.shape == (Z, 4, 4) and vol.spacing == pytest.approx((3.0, 1.4, 1.4))
    assert vol.image.min() >= -1 and vol.image.max() <= 1
    assert set(np.unique(vol.label)) <= set(np.unique(classes(arrays["0001"][1])))
    assert read_manifest(out)["normalisation"]["window_hu"] == [-100, 300]


def _label_14(raw):
    lab = labels_with([0, 1, 14], (Z, X, Y))
    write_nifti(raw / "Training" / "label" / "label0002.nii.gz", lab, permuted_affine(SPACING))
    return PreparedDataError, ["label0002.nii.gz", "label values 14"]


def _negative_label(raw):
    lab = labels_with([0, -1], (X, Y, Z))
    write_nifti(raw / "Training" / "label" / "label0001.nii.gz", lab, lps_affine(SPACING))
    return PreparedDataError, ["label0001.nii.gz", "label values -1"]


def _bad_shape(raw):
    write_nifti(raw / "Training" / "label" / "label0001.nii.gz", np.zeros((X, Y, Z - 1), np.int16),
                lps_affine(SPACING))
    return PreparedDataError, ["img0001.nii.gz", "label0001.nii.gz", "shape"]


def _bad_affine(raw):
    write_nifti(raw / "Training" / "label" / "label0002.nii.gz", np.zeros((Z, X, Y), np.int16),
                lps_affine(SPACING))
    return PreparedDataError, ["img0002.nii.gz", "label0002.nii.gz", "different affines"]


def _truncated(raw):
    truncate(raw / "Training" / "img" / "img0002.nii.gz", 0.4)
    return PreparedDataError, ["img0002.nii.gz"]


def _nan(raw):
    image = np.zeros((X, Y, Z), np.float32)
    image[0, 0, 0] = np.inf
    write_nifti(raw / "Training" / "img" / "img0001.nii.gz", image, lps_affine(SPACING))
    return PreparedDataError, ["img0001.nii.gz", "NaN/inf"]


def _missing_label(raw):
    (raw / "Training" / "label" / "label0002.nii.gz").unlink()
    return FileNotFoundError, ["label0002.nii.gz"]


def _no_label_folder(raw):
    for p in (raw / "Training" / "label").iterdir():
        p.unlink()
    (raw / "Training" / "label").rmdir()
    return FileNotFoundError, ["Training/label"]


def _empty_img_folder(raw):
    for p in (raw / "Training" / "img").iterdir():
        p.unlink()
    return FileNotFoundError, ["Training/img", "img00XX.nii.gz"]


@pytest.mark.parametrize("damage", [_label_14, _negative_label, _bad_shape, _bad_affine, _truncated,
                                    _nan, _missing_label, _no_label_folder, _empty_img_folder])
def test_bad_inputs_fail_cleanly(tmp_path, damage):
    raw, out = tmp_path / "raw", tmp_path / "prep"
    make_btcv(raw)
    exc, names = damage(raw)
    assert_fails("btcv", ["--src", raw, "--out", out, "--size", 8, "--no-progress"], raw, out,
                 exc, *names)


def test_missing_src(tmp_path):
    raw, out = tmp_path / "raw", tmp_path / "prep"
    assert_fails("btcv", ["--src", raw, "--out", out], raw, out, FileNotFoundError, raw, "--src")


def test_cli_exit_codes(tmp_path, capsys):
    raw, out = tmp_path / "raw", tmp_path / "prep"
    make_btcv(raw)
    assert run_main("btcv", "--src", raw, "--out", out, "--size", 8, "--no-progress") == 0
    assert sorted(p.name for p in out.iterdir()) == ["btcv_0001.npz", "btcv_0002.npz",
                                                     "manifest.json"]
    assert run_main("btcv", "--src", raw, "--out", out, "--size", 8, "--no-progress") == 2
    assert "pass --overwrite" in capsys.readouterr().err
    assert run_main("btcv", "--src", raw, "--out", out, "--size", 8, "--no-progress",
                    "--overwrite") == 0
    truncate(raw / "Training" / "label" / "label0001.nii.gz", 0.5)
    assert run_main("btcv", "--src", raw, "--out", tmp_path / "prep2", "--no-progress") == 2
    assert "label0001.nii.gz" in capsys.readouterr().err and not (tmp_path / "prep2").exists()
