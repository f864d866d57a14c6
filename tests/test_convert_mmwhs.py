"""MM-WHS converter on tiny NIfTI files in the real layout, with non-canonical orientations."""
from __future__ import annotations

import json

import numpy as np
import pytest
from _raw_layouts import (assert_fails, command, convert, labels_with, lps_affine, permuted_affine,
                          run_main, snapshot, truncate, write_nifti)

from data_prep.mmwhs import find_cases
from glua_lib.data.prepared import PreparedDataError, load_volume, read_manifest

X, Y, Z = 10, 7, 10  # coronal D×H×W = Y×Z×X = 7×10×10 (square slices: --size 10 keeps them)
SPACING = (0.8, 0.9, 2.5)  # mm along x, y, z
RAW_LABELS = [0, 205, 420, 421, 500, 550, 600, 820, 850]
EXPECTED_CLASS = {0: 0, 205: 1, 420: 2, 421: 2, 500: 3, 550: 0, 600: 0, 820: 4, 850: 0}


def classes(raw: np.ndarray) -> np.ndarray:
    return np.vectorize(EXPECTED_CLASS.get)(raw).astype(np.uint8)


def mr_norm(a: np.ndarray) -> np.ndarray:
    c = np.minimum(a, np.percentile(a, 98))
    return (c - c.mean()) / c.std()


def make_mr(raw):
    """mr_1001 (train) with an LPS affine, mr_1007 (test) with permuted axes; returns the arrays."""
    rng, arrays = np.random.default_rng(1), {}
    for num, shape, affine, seed in (("1001", (X, Y, Z), lps_affine(SPACING), 1),
                                     ("1007", (Z, X, Y), permuted_affine(SPACING), 2)):
        image = rng.gamma(2.0, 100.0, size=shape).astype(np.float32)
        label = labels_with(RAW_LABELS, shape, seed)
        write_nifti(raw / f"mr_train_{num}_image.nii.gz", image, affine)
        write_nifti(raw / f"mr_train_{num}_label.nii.gz", label, affine)
        arrays[num] = (image, label)
    return arrays


def coronal_lps(a):  # LPS (i→L, j→P, k→S) → D=P→A, H=S→I, W=R→L
    d, h, w = np.indices((Y, Z, X))
    return a[w, Y - 1 - d, Z - 1 - h]


def coronal_permuted(a):  # axes (S, R, A) → D=P→A, H=S→I, W=R→L
    d, h, w = np.indices((Y, Z, X))
    return a[Z - 1 - h, X - 1 - w, d]


def test_mr_is_reoriented_to_coronal_and_labels_mapped(tmp_path):
    raw, out = tmp_path / "raw", tmp_path / "prep"
    arrays = make_mr(raw)
    before = snapshot(raw)
    argv = ["--src", raw, "--out", out, "--modality", "mr", "--size", 10, "--no-progress"]
    assert convert("mmwhs", *argv) == out
    assert snapshot(raw) == before

    manifest = read_manifest(out)
    assert manifest["task"] == "cardiac" and manifest["modality"] == "mr"
    assert manifest["subjects"] == {"mr_1001": {"split": "train", "file": "mr_1001.npz"},
                                    "mr_1007": {"split": "test", "file": "mr_1007.npz"}}
    assert manifest["command"] == command("mmwhs", *argv)
    assert manifest["plane"] == "coronal" and manifest["axes"].startswith("D posterior->anterior")
    assert manifest["normalisation"]["method"] == "mr-percentile-zscore"
    assert set(manifest["normalisation"]["per_volume"]["mr_1001"]) == {"clip_at", "mean", "std"}

    for num, reorient in (("1001", coronal_lps), ("1007", coronal_permuted)):
        image, label = arrays[num]
        vol = load_volume(out / f"mr_{num}.npz")
        assert vol.image.shape == (Y, Z, X) and vol.modality == "mr" and vol.task == "cardiac"
        assert vol.spacing == pytest.approx((0.9, 2.5, 0.8))
        assert np.array_equal(vol.label, classes(reorient(label)))
        assert np.allclose(vol.image, reorient(mr_norm(image)), atol=1e-5)
    assert set(np.unique(vol.label)) == {0, 1, 2, 3, 4}


def test_ct_axial_in_subfolder_with_cardiac_window(tmp_path):
    raw, out = tmp_path / "raw", tmp_path / "prep"
    rng = np.random.default_rng(3)
    shape = (6, 6, 4)  # LPS; axial D×H×W = 4×6×6
    image = rng.integers(-1000, 1500, size=shape).astype(np.int16)
    label = labels_with(RAW_LABELS, shape, 4)
    for num in ("1003", "1004"):
        write_nifti(raw / "ct_train" / f"ct_train_{num}_image.nii.gz", image, lps_affine(SPACING))
        write_nifti(raw / "ct_train" / f"ct_train_{num}_label.nii.gz", label, lps_affine(SPACING))
    convert("mmwhs", "--src", raw, "--out", out, "--modality", "ct", "--plane", "axial",
            "--size", 6, "--no-progress")
    manifest = json.loads((out / "manifest.json").read_text())
    assert {s: e["split"] for s, e in manifest["subjects"].items()} == {"ct_1003": "test",
                                                                        "ct_1004": "train"}
    assert manifest["normalisation"]["window_hu"] == [-200, 600]
    vol = load_volume(out / "ct_1003.npz")
    expected = 2 * (np.clip(image, -200, 600) + 200) / 800 - 1
    assert vol.spacing == pytest.approx((2.5, 0.9, 0.8))
    assert np.allclose(vol.image, expected.transpose(2, 1, 0), atol=1e-6)  # LPS axial: (k, j, i)
    assert np.array_equal(vol.label, classes(label).transpose(2, 1, 0))


def test_resampling_to_size(tmp_path):
    raw, out = tmp_path / "raw", tmp_path / "prep"
    arrays = make_mr(raw)
    convert("mmwhs", "--src", raw, "--out", out, "--modality", "mr", "--size", 20, "--no-progress")
    vol = load_volume(out / "mr_1001.npz")
    assert vol.image.shape == (Y, 20, 20)
    assert vol.spacing == pytest.approx((0.9, 2.5 * Z / 20, 0.8 * X / 20))
    expected = classes(coronal_lps(arrays["1001"][1]))
    assert np.array_equal(vol.label, expected.repeat(2, 1).repeat(2, 2))  # nearest neighbour
    assert read_manifest(out)["size"] == 20


def test_published_test_split(tmp_path):
    for modality, test_ids in (("mr", {1007, 1009, 1018, 1019}), ("ct", {1003, 1008, 1014, 1019})):
        for n in range(1001, 1021):
            for kind in ("image", "label"):
                (tmp_path / f"{modality}_train_{n}_{kind}.nii.gz").touch()
        cases = find_cases(tmp_path, modality)
        assert len(cases) == 20
        tests = {s for s, split, _ in cases if split == "test"}
        assert tests == {f"{modality}_{n}" for n in test_ids}


def _bad_shape(raw):
    write_nifti(raw / "mr_train_1001_label.nii.gz", np.zeros((X, Y, Z + 1), np.int16),
                lps_affine(SPACING))
    return ["mr_train_1001_image.nii.gz", "mr_train_1001_label.nii.gz"]


def _bad_affine(raw):
    write_nifti(raw / "mr_train_1001_label.nii.gz", np.zeros((X, Y, Z), np.int16),
                lps_affine((1, 1, 1)))
    return ["mr_train_1001_image.nii.gz", "mr_train_1001_label.nii.gz", "different affines"]


def _unknown_label(raw):
    label = labels_with([0, 205, 300], (Z, X, Y))
    write_nifti(raw / "mr_train_1007_label.nii.gz", label, permuted_affine(SPACING))
    return ["mr_train_1007_label.nii.gz", "label values 300"]


def _truncated_gzip(raw):
    truncate(raw / "mr_train_1007_image.nii.gz", 0.5)
    return ["mr_train_1007_image.nii.gz", "not a readable NIfTI"]


def _nan_image(raw):
    image = np.ones((X, Y, Z), np.float32)
    image[2, 3, 4] = np.nan
    write_nifti(raw / "mr_train_1001_image.nii.gz", image, lps_affine(SPACING))
    return ["mr_train_1001_image.nii.gz", "NaN"]


def _missing_label(raw):
    (raw / "mr_train_1007_label.nii.gz").unlink()
    return ["mr_train_1007_label.nii.gz", "missing"]


@pytest.mark.parametrize("damage", [_bad_shape, _bad_affine, _unknown_label, _truncated_gzip,
                                    _nan_image, _missing_label])
def test_bad_inputs_fail_cleanly(tmp_path, damage):
    raw, out = tmp_path / "raw", tmp_path / "prep"
    make_mr(raw)
    names = damage(raw)
    exc = FileNotFoundError if damage is _missing_label else PreparedDataError
    assert_fails("mmwhs", ["--src", raw, "--out", out, "--modality", "mr", "--size", 10,
                           "--no-progress"], raw, out, exc, *names)


def test_missing_empty_and_overlapping_folders(tmp_path):
    raw, out = tmp_path / "raw", tmp_path / "prep"
    args = ["--modality", "mr", "--no-progress"]
    assert_fails("mmwhs", ["--src", raw, "--out", out, *args], raw, out, FileNotFoundError, raw)
    raw.mkdir()
    assert_fails("mmwhs", ["--src", raw, "--out", out, *args], raw, out, FileNotFoundError,
                 raw, "mr_train_10XX_image.nii.gz")
    make_mr(raw)
    assert_fails("mmwhs", ["--src", raw, "--out", raw / "prep", *args], raw, raw / "prep",
                 ValueError, "overlaps --src")


def test_existing_out_needs_overwrite(tmp_path):
    raw, out = tmp_path / "raw", tmp_path / "prep"
    make_mr(raw)
    out.mkdir()
    (out / "keep.txt").write_text("old")
    argv = ["--src", raw, "--out", out, "--modality", "mr", "--size", 10, "--no-progress"]
    assert_fails("mmwhs", argv, raw, out, FileExistsError, "--overwrite")
    convert("mmwhs", *argv, "--overwrite")
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "mr_1001.npz", "mr_1007.npz"]


def test_cli_exit_codes(tmp_path, capsys):
    raw, out = tmp_path / "raw", tmp_path / "prep"
    make_mr(raw)
    argv = ["--src", raw, "--out", out, "--modality", "mr", "--size", 10, "--no-progress"]
    assert run_main("mmwhs", *argv) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    truncate(raw / "mr_train_1001_label.nii.gz", 0.5)
    assert run_main("mmwhs", *argv[:3], tmp_path / "prep2", *argv[4:]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "mr_train_1001_label.nii.gz" in err
    assert not (tmp_path / "prep2").exists()
