"""SIFA-release converter on tiny TFRecords (SIFA schema) and npz test volumes, real layout."""
from __future__ import annotations

import numpy as np
import pytest
from _raw_layouts import (assert_fails, command, convert, frame, run_main, sifa_features, snapshot,
                          truncate)
from tfrecord.writer import TFRecordWriter

from data_prep.sifa import read_records
from glua_lib.data.prepared import PreparedDataError, load_volume, read_manifest

H, W = 6, 5  # in-plane size of the tiny records (the release uses 256×256)
BOUNDS = {"mr": (-1.8, 4.4), "ct": (-2.8, 3.2)}


def record(rng):
    """One SIFA record's volumes: 3 adjacent z-scored slices and their labels (0..5, float32)."""
    return (rng.normal(0.5, 1.5, (H, W, 3)).astype(np.float32),
            rng.integers(0, 6, (H, W, 3)).astype(np.float32))


def write_tfrecords(path, records, by_hand=False):
    path.parent.mkdir(parents=True, exist_ok=True)
    if by_hand:  # framing written in the test, CRCs computed independently of the package
        path.write_bytes(b"".join(frame(TFRecordWriter.serialize_tf_example(sifa_features(*r)))
                                  for r in records))
        return
    writer = TFRecordWriter(str(path))
    for r in records:
        writer.write(sifa_features(*r))
    writer.close()


def make_sifa(raw, m="mr"):
    """training_{m}: slice0, slice2, slice10 (one record each, package writer) and slice11 (two
    records, framed by hand); validation_{m}: one file; test_{m}: one npz (H×W×4).
    Returns the records in the expected stacking order per split, and the test arrays."""
    rng = np.random.default_rng(11)
    train = {name: [record(rng)] for name in ("slice0", "slice2", "slice10")}
    train["slice11"] = [record(rng), record(rng)]
    for name, recs in train.items():
        write_tfrecords(raw / f"training_{m}" / f"{m}_train_{name}.tfrecords", recs,
                        by_hand=name == "slice11")
    val = [record(rng)]
    write_tfrecords(raw / f"validation_{m}" / f"{m}_val_slice0.tfrecords", val)
    image = rng.normal(0, 1, (H, W, 4)).astype(np.float32)
    label = rng.integers(0, 6, (H, W, 4)).astype(np.float32)
    label[0, 0, :] = 5
    (raw / f"test_{m}").mkdir()
    np.savez(raw / f"test_{m}" / f"{m}_1003.npz", image, label)  # saved as arr_0, arr_1
    order = [*train["slice0"], *train["slice2"], *train["slice10"], *train["slice11"]]
    return {"train": order, "val": val, "test": (image, label)}


def mapped(x, m):
    lo, hi = BOUNDS[m]
    return 2 * (x - lo) / (hi - lo) - 1


def classes(label):
    return np.where(label == 5, 0, label).astype(np.uint8)


@pytest.mark.parametrize("m", ["mr", "ct"])
def test_records_grouped_middle_slices_and_test_flip(tmp_path, m):
    raw, out = tmp_path / "raw", tmp_path / "prep"
    data = make_sifa(raw, m)
    before = snapshot(raw)
    argv = ["--src", raw, "--out", out, "--modality", m, "--files-per-volume", 2, "--no-progress"]
    convert("sifa", *argv)
    assert snapshot(raw) == before
    manifest = read_manifest(out)
    assert manifest["task"] == "cardiac" and manifest["modality"] == m
    assert {s: e["split"] for s, e in manifest["subjects"].items()} == {
        "train_000": "train", "train_001": "train", "val_000": "val", f"test_{m}_1003": "test"}
    assert manifest["command"] == command("sifa", *argv)
    assert manifest["spacing"] == "spacing unknown (voxels)"
    assert manifest["normalisation"]["bounds"] == list(BOUNDS[m])

    # natural file order (slice2 before slice10), records in file order, middle slice only
    train = data["train"]
    groups = (("train_000", train[:2]), ("train_001", train[2:]), ("val_000", data["val"]))
    for subject, recs in groups:
        vol = load_volume(out / f"{subject}.npz")
        assert vol.image.shape == (len(recs), H, W) and vol.spacing == (1.0, 1.0, 1.0)
        middle = np.stack([img[:, :, 1] for img, _ in recs])
        assert np.allclose(vol.image, mapped(middle, m), atol=1e-6)
        assert np.array_equal(vol.label, classes(np.stack([lab[:, :, 1] for _, lab in recs])))

    # test volume: flip axes 0 and 1 of H×W×slices, then slices first
    image, label = data["test"]
    vol = load_volume(out / f"test_{m}_1003.npz")
    d, h, w = np.indices((4, H, W))
    assert vol.image.shape == (4, H, W)
    assert np.allclose(vol.image, mapped(image[H - 1 - h, W - 1 - w, d], m), atol=1e-6)
    assert np.array_equal(vol.label, classes(label[H - 1 - h, W - 1 - w, d]))
    assert vol.label[:, -1, -1].tolist() == [0, 0, 0, 0]  # the 5s at raw (0, 0) became background


def test_default_grouping_and_hand_framed_records(tmp_path):
    raw, out = tmp_path / "raw", tmp_path / "prep"
    data = make_sifa(raw)
    payloads = list(read_records(raw / "training_mr" / "mr_train_slice11.tfrecords"))
    assert len(payloads) == 2
    convert("sifa", "--src", raw, "--out", out, "--modality", "mr", "--no-progress")
    vol = load_volume(out / "train_000.npz")  # default 64 files per volume: all 5 records
    assert vol.image.shape == (5, H, W)
    assert np.array_equal(vol.label, classes(np.stack([lab[:, :, 1] for _, lab in data["train"]])))


def _flip_payload_byte(raw):
    path = raw / "training_mr" / "mr_train_slice2.tfrecords"
    buf = bytearray(path.read_bytes())
    buf[len(buf) // 2] ^= 0xFF
    path.write_bytes(bytes(buf))
    return PreparedDataError, [path, "data CRC mismatch"]


def _flip_length_byte(raw):
    path = raw / "validation_mr" / "mr_val_slice0.tfrecords"
    buf = bytearray(path.read_bytes())
    buf[0] ^= 0x01
    path.write_bytes(bytes(buf))
    return PreparedDataError, [path, "length CRC mismatch"]


def _truncated_record(raw):
    path = raw / "training_mr" / "mr_train_slice11.tfrecords"
    truncate(path, 0.75)  # the second record is cut short
    return PreparedDataError, [path, "record 1", "truncated"]


def _not_an_example(raw):
    path = raw / "training_mr" / "mr_train_slice0.tfrecords"
    path.write_bytes(frame(b"\x0a\xff\xff\xff\xff\x0f"))
    return PreparedDataError, [path, "not a tf.train.Example"]


def _wrong_size(raw):
    path = raw / "training_mr" / "mr_train_slice10.tfrecords"
    feats = sifa_features(*record(np.random.default_rng(0)))
    feats["dsize_dim0"] = (H + 1, "int")
    path.write_bytes(frame(TFRecordWriter.serialize_tf_example(feats)))
    return PreparedDataError, [path, "data_vol"]


def _unknown_label(raw):
    path = raw / "training_mr" / "mr_train_slice2.tfrecords"
    image, label = record(np.random.default_rng(0))
    label[2, 2, 1] = 7
    write_tfrecords(path, [(image, label)])
    return PreparedDataError, [path, "label values 7"]


def _nan_image(raw):
    path = raw / "validation_mr" / "mr_val_slice0.tfrecords"
    image, label = record(np.random.default_rng(0))
    image[1, 1, 1] = np.nan
    write_tfrecords(path, [(image, label)])
    return PreparedDataError, [path, "NaN"]


def _truncated_npz(raw):
    path = raw / "test_mr" / "mr_1003.npz"
    truncate(path, 0.5)
    return PreparedDataError, [path]


def _npz_without_label(raw):
    path = raw / "test_mr" / "mr_1003.npz"
    np.savez(path, np.zeros((H, W, 2), np.float32))
    return PreparedDataError, [path, "arr_1"]


def _npz_shape_mismatch(raw):
    path = raw / "test_mr" / "mr_1003.npz"
    np.savez(path, np.zeros((H, W, 2), np.float32), np.zeros((H, W, 3), np.float32))
    return PreparedDataError, [path, "same H×W×slices shape"]


def _no_validation(raw):
    for p in (raw / "validation_mr").iterdir():
        p.unlink()
    (raw / "validation_mr").rmdir()
    return FileNotFoundError, [raw / "validation_mr"]


def _empty_training(raw):
    for p in (raw / "training_mr").iterdir():
        p.unlink()
    return FileNotFoundError, [raw / "training_mr", "no .tfrecords"]


def _no_test(raw):
    (raw / "test_mr" / "mr_1003.npz").unlink()
    return FileNotFoundError, [raw / "test_mr", "no .npz"]


@pytest.mark.parametrize("damage", [
    _flip_payload_byte, _flip_length_byte, _truncated_record, _not_an_example, _wrong_size,
    _unknown_label, _nan_image, _truncated_npz, _npz_without_label, _npz_shape_mismatch,
    _no_validation, _empty_training, _no_test])
def test_bad_inputs_fail_cleanly(tmp_path, damage):
    raw, out = tmp_path / "raw", tmp_path / "prep"
    make_sifa(raw)
    exc, names = damage(raw)
    assert_fails("sifa", ["--src", raw, "--out", out, "--modality", "mr", "--no-progress"],
                 raw, out, exc, *names)


def test_cli_exit_codes(tmp_path, capsys):
    raw, out = tmp_path / "raw", tmp_path / "prep"
    make_sifa(raw)
    assert run_main("sifa", "--src", raw, "--out", out, "--modality", "mr", "--no-progress") == 0
    assert len(read_manifest(out)["subjects"]) == 3
    path = raw / "training_mr" / "mr_train_slice10.tfrecords"
    truncate(path, 0.9)
    assert run_main("sifa", "--src", raw, "--out", tmp_path / "p2", "--modality", "mr") == 2
    err = capsys.readouterr().err
    assert "sifa:" in err  # the progress bar, shown without --no-progress
    assert f"\nerror: {path}" in err and not (tmp_path / "p2").exists()
