import json

import numpy as np
import pytest

from glua_lib.data import (PreparedDataError, Volume, list_subjects, load_extra, load_volume,
                           load_volumes, make_manifest, read_manifest, save_volume, staged_output,
                           write_manifest)


def _vol(subject="s1", d=2, label_max=4):
    image = np.arange(d * 3 * 4, dtype=np.float32).reshape(d, 3, 4) / 10
    label = (np.arange(d * 3 * 4).reshape(d, 3, 4) % (label_max + 1)).astype(np.uint8)
    return Volume(image, label, (2.5, 0.8, 0.8), "ct", "cardiac", subject)


def test_round_trip_with_extras(tmp_path):
    vol = _vol()
    gap = np.full(vol.image.shape, 0.5, np.float32)
    save_volume(tmp_path / "s1.npz", vol, extras={"gap": gap})
    back = load_volume(tmp_path / "s1.npz")
    np.testing.assert_array_equal(back.image, vol.image)
    np.testing.assert_array_equal(back.label, vol.label)
    assert (back.spacing, back.modality, back.task, back.subject) == ((2.5, 0.8, 0.8), "ct", "cardiac", "s1")
    np.testing.assert_array_equal(load_extra(tmp_path / "s1.npz", "gap"), gap)
    with pytest.raises(PreparedDataError, match="s1.npz: has no 'tissue'"):
        load_extra(tmp_path / "s1.npz", "tissue")
    with pytest.raises(ValueError, match="reserved"):
        save_volume(tmp_path / "s2.npz", vol, extras={"label": gap})


@pytest.mark.parametrize("change, message", [
    (lambda v: setattr(v, "label", v.label[:1]), "image shape .* != label shape"),
    (lambda v: setattr(v, "image", v.image.astype(np.float64)), "image dtype float64"),
    (lambda v: setattr(v, "label", v.label.astype(np.int64)), "label dtype int64"),
    (lambda v: v.image.__setitem__((0, 0, 0), np.nan), "1 non-finite"),
    (lambda v: v.label.__setitem__((0, 0, 0), 7), r"label values \[7\] outside 0..4"),
    (lambda v: setattr(v, "spacing", (1.0, 0.0, 1.0)), "spacing"),
    (lambda v: setattr(v, "task", "brain"), "unknown task 'brain'"),
    (lambda v: setattr(v, "modality", "pet"), "modality 'pet'"),
    (lambda v: setattr(v, "image", v.image[0]), "D×H×W"),
])
def test_bad_volumes_are_refused_naming_the_file(tmp_path, change, message):
    vol = _vol()
    change(vol)
    with pytest.raises(PreparedDataError, match=message) as err:
        save_volume(tmp_path / "bad.npz", vol)
    assert "bad.npz" in str(err.value)
    assert not list(tmp_path.iterdir())  # nothing written


def test_corrupt_or_missing_npz_names_the_file(tmp_path):
    (tmp_path / "c.npz").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(PreparedDataError, match=r"c.npz: not a readable .npz"):
        load_volume(tmp_path / "c.npz")
    with pytest.raises(PreparedDataError, match="m.npz: no such prepared volume"):
        load_volume(tmp_path / "m.npz")
    np.savez(tmp_path / "k.npz", image=np.zeros((1, 1, 1), np.float32))
    with pytest.raises(PreparedDataError, match="k.npz: missing keys"):
        load_volume(tmp_path / "k.npz")


def test_staged_output_is_all_or_nothing(tmp_path):
    out = tmp_path / "prep"
    with pytest.raises(RuntimeError):
        with staged_output(out) as stage:
            save_volume(stage / "s1.npz", _vol())
            raise RuntimeError("converter died half-way")
    assert not out.exists() and not list(tmp_path.iterdir())

    with staged_output(out) as stage:
        save_volume(stage / "s1.npz", _vol())
        save_volume(stage / "s2.npz", _vol("s2"))
        write_manifest(stage, make_manifest(dataset="t", task="cardiac", modality="ct",
                                            normalisation={"kind": "none"},
                                            splits={"s1": "train", "s2": "test"}, command="x"))
    assert list_subjects(out) == ["s1", "s2"] and list_subjects(out, "test") == ["s2"]
    assert [v.subject for v in load_volumes(out, "train")] == ["s1"]

    with pytest.raises(FileExistsError, match="--overwrite"):
        with staged_output(out):
            pass
    with staged_output(out, overwrite=True) as stage:
        save_volume(stage / "s3.npz", _vol("s3"))
        write_manifest(stage, make_manifest(dataset="t", task="cardiac", modality="ct",
                                            normalisation={}, splits={"s3": "train"}, command="y"))
    assert list_subjects(out) == ["s3"] and sorted(p.name for p in tmp_path.iterdir()) == ["prep"]


def test_manifest_checks(tmp_path):
    with pytest.raises(PreparedDataError, match="no manifest"):
        read_manifest(tmp_path)
    man = make_manifest(dataset="t", task="abdominal", modality="mr", normalisation={},
                        splits={"a": "train"}, command="python -m data_prep ...")
    assert man["classes"] == ["background", "liver", "right kidney", "left kidney", "spleen"]
    write_manifest(tmp_path, man)
    with pytest.raises(PreparedDataError, match=r"files are missing: \['a'\]"):
        read_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(PreparedDataError, match="not valid JSON"):
        read_manifest(tmp_path)
    with pytest.raises(ValueError, match="unknown splits"):
        make_manifest(dataset="t", task="cardiac", modality="mr", normalisation={},
                      splits={"a": "training"}, command="")
    assert json.loads(json.dumps(man)) == man


def test_check_slice_size_names_the_file_whose_size_and_fix():
    from glua_lib.data import check_slice_size

    check_slice_size("a.npz", (16, 16), [16, 16], "the model was trained on", "fix")  # same: quiet
    with pytest.raises(ValueError, match=r"^a.npz: slices are 8×16 but the model was trained on "
                                         r"16×16; prepare it with --size 16$"):
        check_slice_size("a.npz", (8, 16), (16, 16), "the model was trained on",
                         "prepare it with --size 16")
