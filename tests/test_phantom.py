"""Synthetic MR/CT phantoms: determinism, anatomy, contrasts, the gap, the prepared folder, CLI."""
from __future__ import annotations

import json

import numpy as np
import pytest

from glua_lib import phantoms as phantom
from glua_lib.phantoms import (class_gap, gap_map, generate_subject, ideal_translations,
                               label_lut, tissue_gap_table, tissue_ids, tissue_names,
                               write_phantoms)
from glua_lib.data.prepared import (PreparedDataError, list_subjects, load_extra, load_volume,
                                    read_manifest)
from glua_lib.data.tasks import get_task

TASKS = ("cardiac", "abdominal")
SMALL = dict(size=32, n_slices=8)


def _tissue_mean(s, name):
    mask = s.tissue == tissue_ids(s.task)[name]
    assert mask.any(), f"{s.subject}: no {name}"
    return float(s.image[mask].mean())


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("modality", ("mr", "ct"))
def test_same_arguments_give_bit_identical_arrays(task, modality):
    a = generate_subject(task, modality, 1, seed=7, **SMALL)
    b = generate_subject(task, modality, 1, seed=7, **SMALL)
    for key in ("image", "label", "tissue", "gap", "raw"):
        x, y = getattr(a, key), getattr(b, key)
        assert x.dtype == y.dtype and x.tobytes() == y.tobytes(), key
    assert a.params == b.params
    c = generate_subject(task, modality, 1, seed=8, **SMALL)
    assert not np.array_equal(a.tissue, c.tissue), "another seed must give another anatomy"


@pytest.mark.parametrize("task", TASKS)
def test_shapes_dtypes_range_and_spacing(task):
    s = generate_subject(task, "ct", 0, size=40, n_slices=10)
    for key, dtype in (("image", np.float32), ("label", np.uint8), ("tissue", np.uint8),
                       ("gap", np.float32), ("raw", np.float32)):
        arr = getattr(s, key)
        assert arr.shape == (10, 40, 40), key
        assert arr.dtype == dtype, key
    assert np.isfinite(s.image).all()
    assert s.image.min() >= -1.0 and s.image.max() <= 1.0
    assert s.image.min() == -1.0 and s.image.max() == 1.0  # air and bone reach the window ends
    slab = {"cardiac": 128.0, "abdominal": 160.0}[task]
    assert s.spacing == pytest.approx((slab / 10, 300.0 / 40, 300.0 / 40))
    assert s.subject == f"{task}-ct-000"
    s.to_volume().validate()  # passes the prepared format's checks


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("modality", ("mr", "ct"))
def test_labels_come_from_tissues_and_every_class_is_present(task, modality):
    n_classes = get_task(task).n_classes
    for index in range(2):
        s = generate_subject(task, modality, index, size=48, n_slices=16, with_gap=False)
        assert set(np.unique(s.label).tolist()) == set(range(n_classes)), s.subject
        np.testing.assert_array_equal(s.label, label_lut(task)[s.tissue])
        counts = np.bincount(s.label.ravel(), minlength=n_classes)
        assert counts[1:].min() >= 40, f"{s.subject}: a class is too small to see: {counts}"


@pytest.mark.parametrize("task", TASKS)
def test_distractors_are_unlabelled_tissues(task):
    s = generate_subject(task, "mr", 0, size=48, n_slices=16, with_gap=False)
    present = set(np.unique(s.tissue).tolist())
    names = tissue_names(task)
    distractors = {i for i in present if label_lut(task)[i] == 0}
    assert len(present) > 2 * get_task(task).n_classes
    must = ["lung", "subcutaneous fat", "skeletal muscle", "cortical bone", "bone marrow"]
    must += (["RV blood", "RA blood", "pulmonary artery blood", "descending aorta blood",
              "mediastinal/epicardial fat"] if task == "cardiac" else
             ["stomach wall", "bowel wall", "pancreas", "aorta blood", "IVC blood", "visceral fat"])
    ids = tissue_ids(task)
    missing = [m for m in must if ids[m] not in distractors]
    assert not missing, f"distractors missing or labelled: {missing}"
    assert len(names) == len(ids)


@pytest.mark.parametrize("task", TASKS)
def test_mr_and_ct_subjects_are_different_anatomies(task):
    mr = generate_subject(task, "mr", 0, **SMALL, with_gap=False)
    ct = generate_subject(task, "ct", 0, **SMALL, with_gap=False)
    assert mr.params["anatomy"] != ct.params["anatomy"]
    fg_mr, fg_ct = mr.label > 0, ct.label > 0
    dice = 2 * (fg_mr & fg_ct).sum() / (fg_mr.sum() + fg_ct.sum())
    assert dice < 0.9, f"MR and CT index 0 look paired (foreground Dice {dice:.2f})"
    assert (mr.tissue != ct.tissue).mean() > 0.05


def test_anatomy_does_not_depend_on_grid_size():
    a = generate_subject("cardiac", "mr", 3, size=32, n_slices=8, with_gap=False)
    b = generate_subject("cardiac", "mr", 3, size=64, n_slices=16, with_gap=False)
    assert a.params["anatomy"] == b.params["anatomy"]
    # the coarse label map agrees with the fine one sampled at the coarse voxel centres (mostly)
    fine = b.label[1::2, 1::2, 1::2]
    assert (fine == a.label).mean() > 0.95


def test_contrast_inversions_between_modalities():
    card = {m: generate_subject("cardiac", m, 0, size=48, n_slices=16) for m in ("mr", "ct")}
    abd = {m: generate_subject("abdominal", m, 0, size=48, n_slices=16) for m in ("mr", "ct")}
    mr, ct = card["mr"], card["ct"]
    # fat bright in bSSFP, dark in CT (relative to muscle, too); bone dark in MR, bright in CT
    fat = "mediastinal/epicardial fat"
    assert _tissue_mean(mr, fat) > _tissue_mean(ct, fat) + 0.8
    assert _tissue_mean(mr, fat) > _tissue_mean(mr, "skeletal muscle")
    assert _tissue_mean(ct, fat) < _tissue_mean(ct, "skeletal muscle")
    assert _tissue_mean(ct, "cortical bone") > 0.5 > _tissue_mean(mr, "cortical bone")
    # bSSFP: myocardium darker than fat; CT: myocardium brighter than fat
    assert _tissue_mean(mr, "LV myocardium") < _tissue_mean(mr, fat) - 0.2
    assert _tissue_mean(ct, "LV myocardium") > _tissue_mean(ct, fat) + 0.5
    # contrast-enhanced blood brightest soft tissue in CTA
    assert _tissue_mean(ct, "LV blood") > _tissue_mean(ct, "LV myocardium") + 0.4
    mr, ct = abd["mr"], abd["ct"]
    # T2-SPIR: fat suppressed (darker than liver); kidneys brightest organ, liver darkest
    assert _tissue_mean(mr, "subcutaneous fat") < _tissue_mean(mr, "liver")
    assert (_tissue_mean(mr, "right kidney medulla") > _tissue_mean(mr, "spleen")
            > _tissue_mean(mr, "liver"))
    # vessels: flow void on T2, enhanced on CT; kidney cortex/medulla order inverts
    assert _tissue_mean(mr, "aorta blood") < _tissue_mean(mr, "liver")
    assert _tissue_mean(ct, "aorta blood") > _tissue_mean(ct, "liver")
    assert _tissue_mean(mr, "left kidney medulla") > _tissue_mean(mr, "left kidney cortex")
    assert _tissue_mean(ct, "left kidney medulla") < _tissue_mean(ct, "left kidney cortex")


def test_mr_has_bias_and_rician_noise_ct_has_gaussian_noise():
    mr = generate_subject("cardiac", "mr", 2, size=48, n_slices=16)
    ct = generate_subject("cardiac", "ct", 2, size=48, n_slices=16)
    air_mr = mr.raw[:, :4, :4]  # corners of the field of view: air only
    air_ct = ct.raw[:, :4, :4]
    assert (mr.tissue[:, :4, :4] == 0).all()
    assert air_mr.min() >= 0 and air_mr.mean() > 0.005  # magnitude noise floor: positive
    assert air_ct.mean() == pytest.approx(-1000, abs=5) and air_ct.std() > 5  # zero-mean noise
    # the MR bias field makes the same tissue differ across the volume
    blood = mr.raw[(mr.tissue == tissue_ids("cardiac")["LV blood"])]
    assert blood.std() > 0.02
    assert mr.params["render"]["p98"] > mr.params["render"]["p2"] > 0


@pytest.mark.parametrize("task", TASKS)
def test_gap_map_is_nonnegative_and_follows_the_tissue_gaps(task):
    s = generate_subject(task, "ct", 1, size=48, n_slices=16)
    g = s.gap
    assert g.dtype == np.float32 and g.shape == s.image.shape
    assert g.min() >= 0 and g.max() <= 3
    np.testing.assert_array_equal(gap_map(task, s), g)
    ids = tissue_ids(task)
    hi, lo = (("LV myocardium", "LV blood") if task == "cardiac" else
              ("liver", "spleen"))
    assert g[s.tissue == ids[hi]].mean() > 1.5 * g[s.tissue == ids[lo]].mean()
    assert g[s.tissue == ids["cortical bone"]].mean() > g[s.tissue == ids[hi]].mean()
    table = {r["tissue"]: r["gap"] for r in tissue_gap_table(task, s.tissue)}
    assert table[hi] > 2 * table[lo]
    assert table["air"] == 0.0


def test_class_gap_ordering_matches_the_design():
    card = class_gap("cardiac", n_subjects=2, size=64, n_slices=32)
    abd = class_gap("abdominal", n_subjects=2, size=64, n_slices=32)
    assert list(card) == list(get_task("cardiac").classes)
    assert all(v >= 0 for v in list(card.values()) + list(abd.values()))
    # cardiac: the myocardium's contrast flips; blood pools are bright in both modalities
    assert card["MYO"] > 2 * max(card["LAC"], card["AA"])
    assert card["MYO"] > card["LVC"] > min(card["LAC"], card["AA"])
    # abdominal: liver (darkest T2 organ) > kidneys (cortex/medulla inversion) > spleen
    assert abd["liver"] > max(abd["right kidney"], abd["left kidney"])
    assert min(abd["right kidney"], abd["left kidney"]) > abd["spleen"]


def test_prepared_folder_round_trip(tmp_path):
    out = tmp_path / "prep"
    got = write_phantoms(out, "abdominal", "ct", n=3, seed=5, size=32, n_slices=8, n_test=1,
                         progress=False, command="test")
    assert got == out.resolve()
    manifest = read_manifest(out)
    assert manifest["dataset"] == "phantom" and manifest["modality"] == "ct"
    assert manifest["classes"] == list(get_task("abdominal").classes)
    assert manifest["normalisation"]["method"] == "hu_window"
    rec = manifest["phantom"]
    assert rec["seed"] == 5 and rec["size"] == 32 and rec["n_slices"] == 8
    assert rec["tissues"] == tissue_names("abdominal")
    assert "gap_definition" in rec and len(rec["tissue_gap"]) == len(rec["tissues"])
    assert list_subjects(out, "test") == ["abdominal-ct-002"]
    assert list_subjects(out, "train") == ["abdominal-ct-000", "abdominal-ct-001"]
    path = out / "abdominal-ct-001.npz"
    vol = load_volume(path)
    ref = generate_subject("abdominal", "ct", 1, seed=5, size=32, n_slices=8)
    np.testing.assert_array_equal(vol.image, ref.image)
    np.testing.assert_array_equal(vol.label, ref.label)
    np.testing.assert_array_equal(load_extra(path, "gap"), ref.gap)
    np.testing.assert_array_equal(load_extra(path, "tissue"), ref.tissue)
    assert vol.spacing == pytest.approx(ref.spacing) and vol.task == "abdominal"
    json.dumps(manifest)
    with pytest.raises(FileExistsError):
        write_phantoms(out, "abdominal", "ct", n=1, size=32, n_slices=8, n_test=0,
                       progress=False)


def test_ideal_translation_renders_the_same_anatomy_in_the_other_modality(tmp_path):
    out = write_phantoms(tmp_path / "mr", "cardiac", "mr", n=2, seed=5, size=32, n_slices=8,
                         n_test=1, progress=False)
    source = load_volume(out / "cardiac-mr-001.npz")
    tissue = load_extra(out / "cardiac-mr-001.npz", "tissue")
    ideal = ideal_translations(out, "ct", "test", n_styles=2)
    assert [v.subject for v in ideal] == ["cardiac-mr-001_style0", "cardiac-mr-001_style1"]
    ids = tissue_ids("cardiac")
    for v in ideal:
        assert v.modality == "ct" and v.task == "cardiac" and v.spacing == source.spacing
        np.testing.assert_array_equal(v.label, source.label)  # the labels hold exactly
        v.validate()
        # CT contrasts on the MR anatomy: fat bright in bSSFP turns dark, the contrast-filled
        # blood pool stays at the top of the window
        fat = tissue == ids["subcutaneous fat"]
        assert source.image[fat].mean() > 0
        assert v.image[fat].mean() < -0.4
        assert v.image[source.label == 2].mean() > 0.8  # LAC
    # two styles are independent draws; the same call gives the same arrays, another draw others
    assert not np.array_equal(ideal[0].image, ideal[1].image)
    again = ideal_translations(out, "ct", "test", n_styles=2)
    np.testing.assert_array_equal(again[1].image, ideal[1].image)
    other = ideal_translations(out, "ct", "test", n_styles=1, draw=1)
    assert not np.array_equal(other[0].image, ideal[0].image)
    assert len(ideal_translations(out, "ct", None, n_styles=1)) == 2  # both splits
    # written as a prepared folder: the source's splits, CT's normalisation
    folder = phantom.write_ideal_translations(out, "ct", tmp_path / "ideal", n_styles=2)
    manifest = read_manifest(folder)
    assert manifest["dataset"] == "phantom-ideal" and manifest["modality"] == "ct"
    assert manifest["normalisation"]["method"] == "hu_window"
    assert list_subjects(folder, "test") == [v.subject for v in ideal]
    np.testing.assert_array_equal(load_volume(folder / "cardiac-mr-001_style1.npz").image,
                                  ideal[1].image)


def test_ideal_translation_refuses_folders_without_true_tissue_maps(tmp_path):
    import shutil

    out = write_phantoms(tmp_path / "ct", "abdominal", "ct", n=1, seed=1, size=32, n_slices=8,
                         n_test=1, progress=False)
    with pytest.raises(ValueError, match="modality"):
        ideal_translations(out, "pet")
    # a tissue map changed after generation no longer gives the labels: the file is named
    bad = tmp_path / "bad"
    shutil.copytree(out, bad)
    path = bad / "abdominal-ct-000.npz"
    with np.load(path) as z:
        arrays = dict(z)
    arrays["tissue"] = np.zeros_like(arrays["tissue"])
    np.savez_compressed(path, **arrays)
    with pytest.raises(PreparedDataError, match="abdominal-ct-000.npz: its tissue map"):
        ideal_translations(bad, "mr")
    # a folder of another generator version would be rendered by other rules
    manifest = read_manifest(out)
    (out / "manifest.json").write_text(json.dumps({**manifest, "phantom": {
        **manifest["phantom"], "generator_version": phantom.GENERATOR_VERSION + 1}}))
    version = phantom.GENERATOR_VERSION
    with pytest.raises(PreparedDataError,
                       match=f"generator version {version + 1}, this is version {version}"):
        ideal_translations(out, "mr")
    # a prepared folder that is not a phantom folder (a converter's) has no tissue maps
    del manifest["phantom"]
    (out / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(PreparedDataError, match="manifest.json: not a phantom folder"):
        ideal_translations(out, "mr")


def test_bad_arguments_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="n_test"):
        write_phantoms(tmp_path / "x", "cardiac", "mr", n=2, n_test=3, size=32, n_slices=4,
                       progress=False)
    with pytest.raises(ValueError, match="task"):
        generate_subject("brain", "mr", 0)
    with pytest.raises(ValueError, match="modality"):
        generate_subject("cardiac", "pet", 0)
    with pytest.raises(ValueError, match="size"):
        generate_subject("cardiac", "mr", 0, size=8)
    assert not (tmp_path / "x").exists()


def test_cli_writes_a_prepared_folder(tmp_path, capsys):
    from data_prep.__main__ import main

    out = tmp_path / "cli"
    rc = main(["phantom", "--task", "cardiac", "--modality", "mr", "--n", "2", "--seed", "3",
               "--size", "32", "--slices", "8", "--n-test", "1", "--out", str(out),
               "--no-progress"])
    assert rc == 0
    manifest = read_manifest(out)
    assert manifest["command"].startswith("python -m data_prep phantom --task cardiac")
    assert manifest["normalisation"]["method"] == "percentile_window"
    assert list_subjects(out) == ["cardiac-mr-000", "cardiac-mr-001"]
    vol = load_volume(out / "cardiac-mr-000.npz")
    assert vol.image.shape == (8, 32, 32)
    np.testing.assert_array_equal(
        vol.image, phantom.generate_subject("cardiac", "mr", 0, seed=3, size=32, n_slices=8).image)
    assert "wrote" in capsys.readouterr().out
    rc = main(["phantom", "--task", "cardiac", "--modality", "mr", "--n", "1", "--n-test", "2",
               "--out", str(tmp_path / "bad"), "--no-progress"])
    assert rc == 2 and not (tmp_path / "bad").exists()


def test_class_mean_gap_by_hand():
    from glua_lib.phantoms import class_mean_gap

    labels = [np.array([[0, 1], [1, 1]], np.uint8)]
    gaps = [np.array([[0.5, 1.0], [2.0, 3.0]], np.float32)]
    out = class_mean_gap("cardiac", labels, gaps)
    assert out["background"] == 0.5 and out["MYO"] == 2.0
    assert np.isnan(out["AA"])
    with pytest.raises(ValueError, match="1 label volumes but 0 gap maps"):
        class_mean_gap("cardiac", labels, [])
