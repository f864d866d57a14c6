"""GLUA-PNG converter on tiny PNG slices in the release's layout (images/ + labels/)."""
from __future__ import annotations

import numpy as np
import pytest
from _raw_layouts import assert_fails, command, convert, run_main, snapshot, truncate, write_png
from PIL import Image

from data_prep.glua_png import find_cases
from glua_lib.data import get_task
from glua_lib.data.prepared import PreparedDataError, load_volume, read_manifest

N = 16  # in-plane size of the tiny slices (the release's are 256×256)
GREYS = [0, 51, 102, 153, 204]
CLASSES = get_task("cardiac").classes
# grey value -> class index, looked up by NAME (the converter must not assume the order)
EXPECTED = {0: CLASSES.index("background"), 51: CLASSES.index("MYO"), 102: CLASSES.index("LAC"),
            153: CLASSES.index("LVC"), 204: CLASSES.index("AA")}
# slice numbers out of string order ("10" < "11" < "9", "100" < "98" < "99"), written shuffled
VOLUMES = {"1003": [10, 9, 11], "1004": [99, 100, 98]}


def slice_pixels(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Slice ``n``: a distinct image (uint8, pixel [0, 0] = n, not symmetric) and a label holding
    all five grey values."""
    rng = np.random.default_rng(n)
    image = rng.integers(0, 256, (N, N)).astype(np.uint8)
    image[0, 0] = n
    label = rng.choice(GREYS, (N, N)).astype(np.uint8)
    label.flat[:5] = GREYS
    return image, label


def make_glua(raw, m="ct", volumes=None):
    """images/image_{m}_<vol>.nii_<n>.png and labels/gth_{m}_<vol>.nii_<n>.png, written in the
    shuffled order of ``volumes``. Returns {subject: (grey D×H×W, label grey D×H×W)} stacked in
    slice-number order."""
    out = {}
    for vol, numbers in (volumes or VOLUMES).items():
        for n in numbers:
            image, label = slice_pixels(n)
            write_png(raw / "images" / f"image_{m}_{vol}.nii_{n}.png", image)
            write_png(raw / "labels" / f"gth_{m}_{vol}.nii_{n}.png", label)
        pairs = [slice_pixels(n) for n in sorted(numbers)]
        out[f"{m}_{vol}"] = (np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs]))
    return out


def classes(grey: np.ndarray) -> np.ndarray:
    return np.vectorize(EXPECTED.get)(grey).astype(np.uint8)


def argv(raw, out, *more):
    return ["--src", raw, "--out", out, "--size", N, *more, "--no-progress"]


def test_ct_stacked_in_slice_number_order_labels_by_name(tmp_path):
    raw, out = tmp_path / "raw", tmp_path / "prep"
    data = make_glua(raw)
    (raw / "images" / "notes.txt").write_text("not a slice")  # files other than .png: ignored
    before = snapshot(raw)
    args = argv(raw, out, "--modality", "ct")
    assert convert("glua-png", *args) == out
    assert snapshot(raw) == before

    manifest = read_manifest(out)
    assert manifest["dataset"] == "glua-png" and manifest["command"] == command("glua-png", *args)
    assert manifest["task"] == "cardiac" and manifest["modality"] == "ct"
    assert manifest["subjects"] == {"ct_1003": {"split": "test", "file": "ct_1003.npz"},
                                    "ct_1004": {"split": "train", "file": "ct_1004.npz"}}
    assert manifest["spacing_mm"] == [1.0, 1.0, 1.0] and manifest["spacing_assumed"] is True
    assert manifest["spacing"].startswith("assumed: 1 mm isotropic")
    assert manifest["normalisation"]["method"] == "ct-window"
    assert manifest["normalisation"]["window_grey"] == [0.0, 255.0]
    assert manifest["slice_numbers"] == {"ct_1003": [9, 11], "ct_1004": [98, 100]}
    assert manifest["label_mapping"] == {"0": "background", "51": "MYO", "102": "LAC",
                                         "153": "LVC", "204": "AA"}
    assert manifest["converted_to_grey"] == {}

    for subject, numbers in (("ct_1003", [9, 10, 11]), ("ct_1004", [98, 99, 100])):
        grey, label = data[subject]
        vol = load_volume(out / f"{subject}.npz")
        assert vol.image.shape == (3, N, N) and vol.spacing == (1.0, 1.0, 1.0)
        assert vol.modality == "ct" and vol.task == "cardiac" and vol.subject == subject
        assert np.allclose(vol.image, grey / 127.5 - 1, atol=1e-6)
        # integer order, not string order: pixel [0, 0] of slice n was set to n
        assert np.round((vol.image[:, 0, 0] + 1) * 255 / 2).astype(int).tolist() == numbers
        assert np.array_equal(vol.label, classes(label))
        assert sorted(np.unique(vol.label).tolist()) == [0, 1, 2, 3, 4]


def test_mr_zscore_spacing_option_and_resampling(tmp_path):
    raw, out = tmp_path / "raw", tmp_path / "prep"
    data = make_glua(raw, "mr", {"1007": [2, 0, 1], "1010": [5, 4]})
    args = ["--src", raw, "--out", out, "--spacing", "2.5", "0.7", "0.9", "--size", 2 * N,
            "--no-progress"]
    convert("glua-png", *args)  # --modality left out: the folder holds only MR
    manifest = read_manifest(out)
    assert manifest["modality"] == "mr"
    assert {s: e["split"] for s, e in manifest["subjects"].items()} == {"mr_1007": "test",
                                                                        "mr_1010": "train"}
    assert manifest["spacing_mm"] == [2.5, 0.7, 0.9] and manifest["spacing_assumed"] is False
    assert manifest["normalisation"]["method"] == "mr-percentile-zscore"
    assert set(manifest["normalisation"]["per_volume"]["mr_1007"]) == {"clip_at", "mean", "std"}
    grey, label = data["mr_1007"]
    vol = load_volume(out / "mr_1007.npz")
    assert vol.image.shape == (3, 2 * N, 2 * N)
    assert vol.spacing == pytest.approx((2.5, 0.35, 0.45))
    assert np.array_equal(vol.label, classes(label).repeat(2, 1).repeat(2, 2))  # nearest
    clipped = np.minimum(grey.astype(np.float64), np.percentile(grey, 98))
    expected = (clipped - clipped.mean()) / clipped.std()
    assert expected.min() - 1e-5 <= vol.image.min() and vol.image.max() <= expected.max() + 1e-5

    # one value means isotropic; at the slices' own size nothing is resampled
    convert("glua-png", "--src", raw, "--out", tmp_path / "p2", "--spacing", "0.8", "--size", N,
            "--no-progress")
    vol = load_volume(tmp_path / "p2" / "mr_1007.npz")
    assert vol.spacing == pytest.approx((0.8, 0.8, 0.8))
    assert np.allclose(vol.image, expected, atol=1e-5)
    assert np.array_equal(vol.label, classes(label))


def test_modality_option_filters(tmp_path):
    raw = tmp_path / "raw"
    make_glua(raw, "ct", {"1003": [0, 1]})
    make_glua(raw, "mr", {"1001": [0, 1, 2]})
    assert_fails("glua-png", argv(raw, tmp_path / "p"), raw, tmp_path / "p", PreparedDataError,
                 raw / "images", "both CT and MR", "--modality")
    for m, subject, depth in (("ct", "ct_1003", 2), ("mr", "mr_1001", 3)):
        convert("glua-png", *argv(raw, tmp_path / m, "--modality", m))
        assert list(read_manifest(tmp_path / m)["subjects"]) == [subject]
        assert load_volume(tmp_path / m / f"{subject}.npz").image.shape == (depth, N, N)


def test_modality_that_filters_out_everything(tmp_path):
    raw, out = tmp_path / "raw", tmp_path / "prep"
    make_glua(raw, "mr")
    assert_fails("glua-png", argv(raw, out, "--modality", "ct"), raw, out, FileNotFoundError,
                 raw / "images", "no ct slices", "only mr", "--modality ct")


def _save(path, array, mode):
    Image.fromarray(array, mode=mode).save(path)


def test_grey_rgb_and_palette_are_converted_and_recorded(tmp_path):
    raw, out = tmp_path / "raw", tmp_path / "prep"
    data = make_glua(raw)
    grey, label = slice_pixels(10)
    _save(raw / "images" / "image_ct_1003.nii_10.png", np.repeat(grey[..., None], 3, 2), "RGB")
    rgba = np.concatenate([np.repeat(label[..., None], 3, 2), np.full((N, N, 1), 255, np.uint8)],
                          axis=2)
    _save(raw / "labels" / "gth_ct_1003.nii_10.png", rgba, "RGBA")
    Image.fromarray(slice_pixels(99)[0], mode="L").convert("P").save(
        raw / "images" / "image_ct_1004.nii_99.png")
    before = snapshot(raw)
    convert("glua-png", *argv(raw, out))
    assert snapshot(raw) == before
    assert read_manifest(out)["converted_to_grey"] == {"ct_1003": 2, "ct_1004": 1}
    for subject in ("ct_1003", "ct_1004"):
        vol = load_volume(out / f"{subject}.npz")
        assert np.allclose(vol.image, data[subject][0] / 127.5 - 1, atol=1e-6)
        assert np.array_equal(vol.label, classes(data[subject][1]))


def test_published_test_split(tmp_path):
    for m, test_ids in (("mr", {1007, 1009, 1018, 1019}), ("ct", {1003, 1008, 1014, 1019})):
        src = tmp_path / m
        for n in range(1001, 1021):
            for folder, prefix in (("images", "image"), ("labels", "gth")):
                (src / folder).mkdir(parents=True, exist_ok=True)
                (src / folder / f"{prefix}_{m}_{n}.nii_0.png").touch()  # names only, no pixels
        modality, cases = find_cases(src, None)
        assert modality == m and len(cases) == 20
        assert {s for s, split, _ in cases if split == "test"} == {f"{m}_{n}" for n in test_ids}


# ----------------------------------------------------------------------------------- bad inputs
def _missing_label(raw):
    (raw / "labels" / "gth_ct_1004.nii_100.png").unlink()
    return FileNotFoundError, [raw / "labels" / "gth_ct_1004.nii_100.png",
                               raw / "images" / "image_ct_1004.nii_100.png", "missing"]


def _label_without_image(raw):
    (raw / "images" / "image_ct_1003.nii_9.png").unlink()
    return FileNotFoundError, [raw / "images" / "image_ct_1003.nii_9.png",
                               raw / "labels" / "gth_ct_1003.nii_9.png", "missing"]


def _gap(raw):
    for folder, prefix in (("images", "image"), ("labels", "gth")):
        (raw / folder / f"{prefix}_ct_1004.nii_99.png").unlink()
    return PreparedDataError, [raw / "images" / "image_ct_1004.nii_99.png", "ct_1004",
                               "missing 99"]


def _duplicate_number(raw):
    for folder, prefix in (("images", "image"), ("labels", "gth")):
        write_png(raw / folder / f"{prefix}_ct_1003.nii_09.png", np.zeros((N, N)))
    return PreparedDataError, [raw / "images" / "image_ct_1003.nii_09.png",
                               raw / "images" / "image_ct_1003.nii_9.png", "same slice number"]


def _unknown_grey(raw):
    path = raw / "labels" / "gth_ct_1003.nii_11.png"
    label = slice_pixels(11)[1]
    label[3, 4] = 255
    write_png(path, label)
    return PreparedDataError, [path, "label values 255"]


def _slice_size_differs(raw):
    for folder, prefix in (("images", "image"), ("labels", "gth")):
        write_png(raw / folder / f"{prefix}_ct_1004.nii_100.png", np.zeros((N, N + 2)))
    return PreparedDataError, [raw / "images" / "image_ct_1004.nii_100.png",
                               raw / "images" / "image_ct_1004.nii_98.png", "same size"]


def _label_size_differs(raw):
    path = raw / "labels" / "gth_ct_1003.nii_9.png"
    write_png(path, np.zeros((N - 1, N)))
    return PreparedDataError, [path, raw / "images" / "image_ct_1003.nii_9.png", "pixel for pixel"]


def _truncated_png(raw):
    path = raw / "images" / "image_ct_1004.nii_98.png"
    truncate(path, 0.6)
    return PreparedDataError, [path, "not a readable PNG"]


def _garbage_png(raw):
    path = raw / "labels" / "gth_ct_1003.nii_10.png"
    path.write_bytes(b"this is not an image at all")
    return PreparedDataError, [path, "not a readable PNG"]


def _jpeg_named_png(raw):
    path = raw / "images" / "image_ct_1003.nii_10.png"
    Image.fromarray(slice_pixels(10)[0], mode="L").save(path, format="JPEG")
    return PreparedDataError, [path, "JPEG", "not a PNG"]


def _colour_image(raw):
    path = raw / "images" / "image_ct_1003.nii_11.png"
    rgb = np.repeat(slice_pixels(11)[0][..., None], 3, 2)
    rgb[5, 5] = (10, 200, 30)
    _save(path, rgb, "RGB")
    return PreparedDataError, [path, "channels differ"]


def _transparent(raw):
    path = raw / "labels" / "gth_ct_1004.nii_99.png"
    la = np.stack([slice_pixels(99)[1], np.full((N, N), 255, np.uint8)], axis=2)
    la[0, 0, 1] = 0
    _save(path, la, "LA")
    return PreparedDataError, [path, "transparent"]


def _sixteen_bit(raw):
    path = raw / "images" / "image_ct_1004.nii_100.png"
    Image.fromarray(slice_pixels(100)[0].astype(np.uint16) * 200).save(path)
    assert Image.open(path).mode.startswith("I")
    return PreparedDataError, [path, "not 8-bit greyscale"]


def _odd_name(raw):
    path = raw / "images" / "image_ct_1003_10.png"
    write_png(path, slice_pixels(10)[0])
    return PreparedDataError, [path, "image_<modality>_<volume>.nii_<slice>.png"]


def _no_slices(raw):
    for folder in ("images", "labels"):
        for p in (raw / folder).iterdir():
            p.unlink()
    return FileNotFoundError, [raw / "images", "no image_<modality>_<volume>.nii_<slice>.png"]


def _no_labels_folder(raw):
    for p in (raw / "labels").iterdir():
        p.unlink()
    (raw / "labels").rmdir()
    return FileNotFoundError, [raw / "labels", "gth_<modality>"]


@pytest.mark.parametrize("damage", [
    _missing_label, _label_without_image, _gap, _duplicate_number, _unknown_grey,
    _slice_size_differs, _label_size_differs, _truncated_png, _garbage_png, _jpeg_named_png,
    _colour_image, _transparent, _sixteen_bit, _odd_name, _no_slices, _no_labels_folder])
def test_bad_inputs_fail_cleanly(tmp_path, damage):
    raw, out = tmp_path / "raw", tmp_path / "prep"
    make_glua(raw)
    exc, names = damage(raw)
    assert_fails("glua-png", argv(raw, out), raw, out, exc, *names)


def test_existing_out_is_kept_on_failure(tmp_path):
    raw, out = tmp_path / "raw", tmp_path / "prep"
    make_glua(raw)
    convert("glua-png", *argv(raw, out))
    truncate(raw / "labels" / "gth_ct_1004.nii_99.png", 0.5)
    assert_fails("glua-png", argv(raw, out, "--overwrite"), raw, out, PreparedDataError,
                 raw / "labels" / "gth_ct_1004.nii_99.png")
    assert_fails("glua-png", ["--src", raw, "--out", raw / "prep", "--no-progress"], raw,
                 raw / "prep", ValueError, "overlaps")


@pytest.mark.parametrize("spacing", [["1", "2"], ["0"], ["-1", "1", "1"], ["x"]])
def test_bad_spacing_is_a_usage_error(tmp_path, capsys, spacing):
    raw = tmp_path / "raw"
    make_glua(raw)
    with pytest.raises(SystemExit) as info:
        run_main("glua-png", *argv(raw, tmp_path / "p"), "--spacing", *spacing)
    assert info.value.code == 2 and "--spacing" in capsys.readouterr().err
    assert not (tmp_path / "p").exists()


def test_cli_exit_codes(tmp_path, capsys):
    raw, out = tmp_path / "raw", tmp_path / "prep"
    make_glua(raw)
    assert run_main("glua-png", *argv(raw, out)) == 0
    assert len(read_manifest(out)["subjects"]) == 2
    path = raw / "labels" / "gth_ct_1003.nii_10.png"
    write_png(path, np.full((N, N), 7))
    assert run_main("glua-png", "--src", raw, "--out", tmp_path / "p2") == 2
    err = capsys.readouterr().err
    assert "glua-png:" in err  # the progress bar, shown without --no-progress
    assert f"\nerror: {path}" in err and "label values 7" in err
    assert not (tmp_path / "p2").exists()
