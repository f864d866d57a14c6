"""CHAOS converter on tiny DICOM series written out of order, with PNG masks, in the real layout."""
from __future__ import annotations

import numpy as np
import pytest
from _raw_layouts import (assert_fails, command, convert, run_main, snapshot, truncate, write_dicom,
                          write_png)

from glua_lib.data.prepared import PreparedDataError, load_volume, read_manifest

N, ROWS, COLS = 5, 8, 8
STEP = 6.0  # mm between slices
PIXEL_SPACING = (1.5, 1.4)  # DICOM (between rows, between columns)
GRAYS = [0, 55, 63, 70, 110, 126, 135, 175, 189, 200, 240, 252, 255]


def classes(gray):
    lut = np.zeros(256, np.uint8)
    lut[55:71], lut[110:136], lut[175:201], lut[240:256] = 1, 2, 3, 4
    return lut[gray]


def series_dir(raw, sid):
    return raw / "Train_Sets" / "MR" / sid / "T2SPIR"


def make_chaos(raw):
    """Subject 1 (test): standard axial slices whose file names are shuffled w.r.t. position, masks
    named like the DICOMs. Subject 2 (train): rows run toward the patient's right, positions fall
    with InstanceNumber, DICOM names unrelated to both, masks ``mask_<k>.png`` in InstanceNumber
    order. Returns, per subject, slices (pixels, mask) in ascending z order (inferior→superior)."""
    rng, out = np.random.default_rng(7), {}
    # subject 1: file number n sits at position rank order[n-1]; InstanceNumbers run against the
    # names, so only matching by stem pairs the masks right
    order = [3, 0, 4, 1, 2]
    slices = [(rng.integers(0, 1000, (ROWS, COLS)), rng.choice(GRAYS, (ROWS, COLS)))
              for _ in range(N)]
    for n, rank in enumerate(order, start=1):
        pix, gray = slices[rank]
        stem = f"IMG-0002-{n:05d}"
        write_dicom(series_dir(raw, "1") / "DICOM_anon" / f"{stem}.dcm", pix,
                    position=(-60.0, -80.0, -30.0 + STEP * rank), spacing=PIXEL_SPACING,
                    instance=N + 1 - n)
        write_png(series_dir(raw, "1") / "Ground" / f"{stem}.png", gray)
    out["1"] = slices
    # subject 2: InstanceNumber i at z = 100 - STEP*i (descending), names shuffled letters
    slices2 = [(rng.integers(0, 1000, (ROWS, COLS)), rng.choice(GRAYS, (ROWS, COLS)))
               for _ in range(N)]
    names = ["e", "b", "d", "a", "c"]
    for i in range(1, N + 1):
        pix, gray = slices2[N - i]  # ascending z: slice N - i has the i-th highest position
        write_dicom(series_dir(raw, "2") / "DICOM_anon" / f"{names[i - 1]}.dcm", pix,
                    position=(60.0, -80.0, 100.0 - STEP * i), orientation=(-1, 0, 0, 0, 1, 0),
                    spacing=PIXEL_SPACING, instance=i)
        write_png(series_dir(raw, "2") / "Ground" / f"mask_{i}.png", gray)
    out["2"] = slices2
    return out


def mr_norm(a):
    c = np.minimum(a, np.percentile(a, 98))
    return (c - c.mean()) / c.std()


def test_series_sorted_by_position_and_masks_matched(tmp_path):
    raw, out = tmp_path / "raw", tmp_path / "prep"
    subjects = make_chaos(raw)
    before = snapshot(raw)
    argv = ["--src", raw, "--out", out, "--size", 8, "--no-progress"]
    convert("chaos", *argv)
    assert snapshot(raw) == before
    manifest = read_manifest(out)
    assert manifest["task"] == "abdominal" and manifest["modality"] == "mr"
    assert {s: e["split"] for s, e in manifest["subjects"].items()} == {"chaos_1": "test",
                                                                        "chaos_2": "train"}
    assert manifest["command"] == command("chaos", *argv)
    assert set(manifest["normalisation"]["per_volume"]) == {"chaos_1", "chaos_2"}

    # subject 1: standard orientation, so D×H×W = ascending z × rows × columns
    pix = np.stack([p for p, _ in subjects["1"]]).astype(np.float32)
    gray = np.stack([g for _, g in subjects["1"]])
    vol = load_volume(out / "chaos_1.npz")
    assert vol.image.shape == (N, ROWS, COLS) and vol.task == "abdominal"
    assert vol.spacing == pytest.approx((STEP, 1.5, 1.4))
    assert np.array_equal(vol.label, classes(gray))
    assert np.allclose(vol.image, mr_norm(pix), atol=1e-5)
    # subject 2: columns run toward the patient's right, so W (right→left) reverses them
    pix = np.stack([p for p, _ in subjects["2"]]).astype(np.float32)
    gray = np.stack([g for _, g in subjects["2"]])
    vol = load_volume(out / "chaos_2.npz")
    assert vol.spacing == pytest.approx((STEP, 1.5, 1.4))
    assert np.array_equal(vol.label, classes(gray)[:, :, ::-1])
    assert np.allclose(vol.image, mr_norm(pix)[:, :, ::-1], atol=1e-5)
    assert set(np.unique(vol.label)) == {0, 1, 2, 3, 4}


def test_resampling_to_size(tmp_path):
    raw, out = tmp_path / "raw", tmp_path / "prep"
    subjects = make_chaos(raw)
    convert("chaos", "--src", raw, "--out", out, "--size", 16, "--no-progress")
    vol = load_volume(out / "chaos_1.npz")
    assert vol.image.shape == (N, 16, 16) and vol.spacing == pytest.approx((STEP, 0.75, 0.7))
    gray = np.stack([g for _, g in subjects["1"]])
    assert np.array_equal(vol.label, classes(gray).repeat(2, 1).repeat(2, 2))


def _garbage_dicom(raw):
    path = series_dir(raw, "2") / "DICOM_anon" / "c.dcm"
    path.write_bytes(b"this is not a DICOM file" * 20)
    return PreparedDataError, [path, "not a readable DICOM"]


def _truncated_dicom(raw):
    path = series_dir(raw, "1") / "DICOM_anon" / "IMG-0002-00003.dcm"
    truncate(path, 0.7)
    return PreparedDataError, [path]


def _unknown_gray(raw):
    path = series_dir(raw, "1") / "Ground" / "IMG-0002-00004.png"
    write_png(path, np.full((ROWS, COLS), 100))
    return PreparedDataError, [path, "label values 100"]


def _corrupt_png(raw):
    path = series_dir(raw, "2") / "Ground" / "mask_3.png"
    truncate(path, 0.3)
    return PreparedDataError, [path]


def _missing_png(raw):
    (series_dir(raw, "2") / "Ground" / "mask_5.png").unlink()
    return PreparedDataError, [series_dir(raw, "2") / "Ground", "4 PNG masks for 5 DICOM slices"]


def _png_shape(raw):
    path = series_dir(raw, "1") / "Ground" / "IMG-0002-00002.png"
    write_png(path, np.zeros((ROWS, COLS + 1)))
    return PreparedDataError, [path, "IMG-0002-00002.dcm"]


def _missing_slice(raw):
    d = series_dir(raw, "1")
    (d / "DICOM_anon" / "IMG-0002-00001.dcm").unlink()  # rank 3 of 0..4: leaves a gap
    (d / "Ground" / "IMG-0002-00001.png").unlink()
    return PreparedDataError, [d / "DICOM_anon", "not evenly spaced"]


def _duplicate_position(raw):
    path = series_dir(raw, "1") / "DICOM_anon" / "IMG-0002-00005.dcm"
    write_dicom(path, np.zeros((ROWS, COLS)), position=(-60.0, -80.0, -30.0), spacing=PIXEL_SPACING,
                instance=5)
    return PreparedDataError, [series_dir(raw, "1") / "DICOM_anon", "duplicated"]


def _mixed_orientation(raw):
    path = series_dir(raw, "1") / "DICOM_anon" / "IMG-0002-00002.dcm"
    write_dicom(path, np.zeros((ROWS, COLS)), position=(-60.0, -80.0, -24.0),
                orientation=(0, 1, 0, 0, 0, -1), spacing=PIXEL_SPACING, instance=2)
    return PreparedDataError, [path, "orientation"]


def _no_ground(raw):
    d = series_dir(raw, "2") / "Ground"
    for p in d.iterdir():
        p.unlink()
    d.rmdir()
    return FileNotFoundError, [d]


def _no_subjects(raw):
    for sid in ("1", "2"):
        for p in sorted(series_dir(raw, sid).rglob("*"), reverse=True):
            p.unlink() if p.is_file() else p.rmdir()
        series_dir(raw, sid).rmdir()
        (raw / "Train_Sets" / "MR" / sid).rmdir()
    return FileNotFoundError, [raw / "Train_Sets" / "MR", "no subject folders"]


@pytest.mark.parametrize("damage", [_garbage_dicom, _truncated_dicom, _unknown_gray, _corrupt_png,
                                    _missing_png, _png_shape, _missing_slice, _duplicate_position,
                                    _mixed_orientation, _no_ground, _no_subjects])
def test_bad_inputs_fail_cleanly(tmp_path, damage):
    raw, out = tmp_path / "raw", tmp_path / "prep"
    make_chaos(raw)
    exc, names = damage(raw)
    assert_fails("chaos", ["--src", raw, "--out", out, "--size", 8, "--no-progress"], raw, out,
                 exc, *names)


def test_missing_layout(tmp_path):
    raw, out = tmp_path / "raw", tmp_path / "prep"
    raw.mkdir()
    assert_fails("chaos", ["--src", raw, "--out", out], raw, out, FileNotFoundError,
                 raw / "Train_Sets" / "MR")


def test_cli_exit_codes(tmp_path, capsys):
    raw, out = tmp_path / "raw", tmp_path / "prep"
    make_chaos(raw)
    assert run_main("chaos", "--src", raw, "--out", out, "--size", 8, "--no-progress") == 0
    assert read_manifest(out)["subjects"].keys() == {"chaos_1", "chaos_2"}
    bad = series_dir(raw, "2") / "DICOM_anon" / "a.dcm"
    bad.write_bytes(b"\0" * 50)
    assert run_main("chaos", "--src", raw, "--out", tmp_path / "p2", "--no-progress") == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(bad) in err and not (tmp_path / "p2").exists()
