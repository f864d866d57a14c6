"""Shared converter steps: orientation, resampling, normalisation, label mapping, checks."""
from __future__ import annotations

import numpy as np
import pytest
from _raw_layouts import lps_affine, permuted_affine, truncate, write_nifti

from data_prep.common import (Preprocessing, check_pair, check_src_out, map_labels, natural_key,
                              read_nifti, resample_inplane, to_dhw)
from glua_lib.data.prepared import PreparedDataError

X, Y, Z = 4, 5, 3  # distinct sizes so that any axis mix-up changes the shape


def ramp(shape) -> np.ndarray:
    return np.arange(np.prod(shape), dtype=np.float32).reshape(shape)


def test_lps_axial_is_a_plain_transpose():
    # LPS voxel axes (i→L, j→P, k→S): axial D×H×W = (S, A→P, R→L) = (k, j, i) without flips.
    a = ramp((X, Y, Z))
    out, spacing = to_dhw(a, lps_affine((0.8, 0.9, 2.5)), "axial")
    assert np.array_equal(out, a.transpose(2, 1, 0))
    assert spacing == pytest.approx((2.5, 0.9, 0.8))


def test_ras_axial_flips_rows_and_columns():
    a = ramp((X, Y, Z))  # RAS: i→R, j→A, k→S
    out, spacing = to_dhw(a, np.diag([1.5, 1.0, 3.0, 1.0]), "axial")
    d, h, w = np.indices(out.shape)
    assert out.shape == (Z, Y, X)
    assert np.array_equal(out, a[X - 1 - w, Y - 1 - h, d])
    assert spacing == pytest.approx((3.0, 1.0, 1.5))


def test_permuted_axes_axial():
    # voxel axis 0 → S, 1 → R, 2 → A: out[d, h, w] = a[d, X-1-w, Y-1-h]
    a = ramp((Z, X, Y))
    out, spacing = to_dhw(a, permuted_affine((0.8, 0.9, 2.5)), "axial")
    d, h, w = np.indices(out.shape)
    assert out.shape == (Z, Y, X)
    assert np.array_equal(out, a[d, X - 1 - w, Y - 1 - h])
    assert spacing == pytest.approx((2.5, 0.9, 0.8))


def test_lps_coronal():
    # coronal: D posterior→anterior, H superior→inferior, W right→left
    a = ramp((X, Y, Z))
    out, spacing = to_dhw(a, lps_affine((0.8, 0.9, 2.5)), "coronal")
    d, h, w = np.indices(out.shape)
    assert out.shape == (Y, Z, X)
    assert np.array_equal(out, a[w, Y - 1 - d, Z - 1 - h])
    assert spacing == pytest.approx((0.9, 2.5, 0.8))


def test_resample_keeps_field_of_view_and_never_interpolates_labels():
    image = ramp((2, 3, 4))
    label = np.array([[[0, 1, 2, 3], [4, 0, 1, 2], [3, 4, 0, 1]]] * 2, dtype=np.uint8)
    img, lab, spacing = resample_inplane(image, label, (2.0, 1.2, 0.9), 8)
    assert img.shape == lab.shape == (2, 8, 8) and lab.dtype == np.uint8
    assert spacing == pytest.approx((2.0, 1.2 * 3 / 8, 0.9 * 4 / 8))
    assert set(np.unique(lab)) <= set(np.unique(label))
    assert image.min() <= img.min() and img.max() <= image.max()
    # an exact factor 2 duplicates each label pixel 2×2
    _, lab2, _ = resample_inplane(image[:, :, :3], label[:, :, :3], (1, 1, 1), 6)
    assert np.array_equal(lab2, label[:, :, :3].repeat(2, 1).repeat(2, 2))


def test_resample_is_identity_at_target_size():
    image, label = ramp((2, 6, 6)), np.zeros((2, 6, 6), np.uint8)
    img, lab, spacing = resample_inplane(image, label, (1.0, 2.0, 3.0), 6)
    assert img is image and lab is label and spacing == (1.0, 2.0, 3.0)


def test_ct_window_scales_to_minus_one_one():
    prep = Preprocessing(modality="ct", plane="axial", size=4, ct_window=(-350, 350))
    out, params = prep.normalise(np.array([-1000, -350, 0, 175, 350, 3000], np.int16), "x")
    assert out.dtype == np.float32 and params is None
    assert np.allclose(out, [-1, -1, 0, 0.5, 1, 1])
    assert prep.describe()["window_hu"] == [-350, 350]


def test_mr_percentile_clip_then_zscore():
    rng = np.random.default_rng(0)
    image = rng.gamma(2.0, 100.0, size=(6, 7, 8)).astype(np.float32)
    image[0, 0, 0] = 1e6  # a bright outlier, removed by the clip
    prep = Preprocessing(modality="mr", plane="axial", size=4, mr_percentile=98)
    out, params = prep.normalise(image, "x")
    clipped = np.minimum(image, np.percentile(image, 98))
    assert params["clip_at"] == pytest.approx(np.percentile(image, 98))
    assert np.allclose(out, (clipped - clipped.mean()) / clipped.std(), atol=1e-5)
    assert abs(out.mean()) < 1e-5 and out.std() == pytest.approx(1, abs=1e-4)
    with pytest.raises(PreparedDataError, match="vol.nii.gz.*constant"):
        prep.normalise(np.ones((2, 2, 2)), "vol.nii.gz")


def test_nan_intensities_are_refused_naming_the_file():
    prep = Preprocessing(modality="ct", plane="axial", size=4)
    image = np.zeros((3, 3, 3), np.float32)
    image[1, 1, 1] = np.nan
    with pytest.raises(PreparedDataError, match=r"img0007\.nii\.gz.*1 NaN/inf"):
        prep.apply(image, np.zeros((3, 3, 3), np.uint8), np.eye(4), "img0007.nii.gz")


def test_map_labels_maps_and_lists_unknown_values():
    table = {0: 0, 205: 1, 421: 2, 850: 0}
    raw = np.array([[0, 205], [421, 850]], np.int16)
    out = map_labels(raw, table, "lab.nii.gz", "MM-WHS")
    assert out.dtype == np.uint8 and out.tolist() == [[0, 1], [2, 0]]
    with pytest.raises(PreparedDataError) as info:
        map_labels(np.array([0, 205, 7, 300.5]), table, "lab.nii.gz", "MM-WHS")
    assert "lab.nii.gz" in str(info.value) and "7, 300.5" in str(info.value)
    assert "0, 205, 421, 850" in str(info.value)


def test_check_pair_names_both_files(tmp_path):
    a, b = tmp_path / "img.nii.gz", tmp_path / "lab.nii.gz"
    shape_msg = r"img\.nii\.gz.*\(2, 3, 4\).*lab\.nii\.gz.*\(2, 3, 5\)"
    with pytest.raises(PreparedDataError, match=shape_msg):
        check_pair(np.zeros((2, 3, 4)), np.zeros((2, 3, 5)), np.eye(4), np.eye(4), a, b)
    shifted = np.eye(4)
    shifted[0, 3] = 0.5
    affine_msg = r"img\.nii\.gz and .*lab\.nii\.gz have different affines"
    with pytest.raises(PreparedDataError, match=affine_msg):
        check_pair(np.zeros((2, 3, 4)), np.zeros((2, 3, 4)), np.eye(4), shifted, a, b)


def test_read_nifti_squeezes_singleton_4d_and_names_corrupt_files(tmp_path):
    data = ramp((X, Y, Z, 1))
    path = write_nifti(tmp_path / "v.nii.gz", data, lps_affine())
    arr, aff = read_nifti(path)
    assert arr.shape == (X, Y, Z) and np.allclose(aff, lps_affine())
    write_nifti(tmp_path / "t.nii.gz", ramp((X, Y, Z, 2)), np.eye(4))
    with pytest.raises(PreparedDataError, match=r"t\.nii\.gz: expected a 3D volume"):
        read_nifti(tmp_path / "t.nii.gz")
    truncate(path, 0.6)
    with pytest.raises(PreparedDataError, match=r"v\.nii\.gz: not a readable NIfTI"):
        read_nifti(path)


def test_src_and_out_must_not_overlap(tmp_path):
    (tmp_path / "raw").mkdir()
    with pytest.raises(FileNotFoundError, match="nope"):
        check_src_out(tmp_path / "nope", tmp_path / "out")
    for out in (tmp_path / "raw", tmp_path / "raw" / "prep", tmp_path):
        with pytest.raises(ValueError, match="overlaps --src"):
            check_src_out(tmp_path / "raw", out)
    assert check_src_out(tmp_path / "raw", tmp_path / "prep") == (tmp_path / "raw").resolve()


def test_natural_key_orders_numbers_numerically():
    names = ["slice10.tfrecords", "slice2.tfrecords", "slice1.tfrecords"]
    assert sorted(names, key=natural_key) == ["slice1.tfrecords", "slice2.tfrecords",
                                              "slice10.tfrecords"]
