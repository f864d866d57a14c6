import numpy as np
import pytest
import torch

from glua_lib.data import (Augment, SliceDataset, Volume, make_manifest, save_volume,
                           staged_output, write_manifest)
from glua_lib.seg.train import SegConfig


def _vol(subject, d=4, fg_slices=(1, 2)):
    image = np.stack([np.full((6, 6), z, np.float32) for z in range(d)])  # slice z holds value z
    label = np.zeros((d, 6, 6), np.uint8)
    for z in fg_slices:
        label[z, 2:4, 2:4] = 1
    return Volume(image, label, (2.0, 1.0, 1.0), "mr", "cardiac", subject)


def test_slices_and_context_channels_repeat_edges():
    ds = SliceDataset([_vol("a")], context=1)
    assert len(ds) == 4
    item = ds[0]
    assert item["image"].shape == (3, 6, 6) and item["image"].dtype == torch.float32
    assert item["image"][:, 0, 0].tolist() == [0.0, 0.0, 1.0]  # slice -1 repeats slice 0
    assert ds[3]["image"][:, 0, 0].tolist() == [2.0, 3.0, 3.0]
    assert item["label"].dtype == torch.int64 and (item["subject"], item["slice"]) == ("a", 0)


def test_labelled_only_and_errors():
    assert [ds["slice"] for ds in SliceDataset([_vol("a")], labelled_only=True)] == [1, 2]
    with pytest.raises(ValueError, match="no volumes"):
        SliceDataset([])
    small = _vol("b")
    small.image, small.label = small.image[:, :4, :4], small.label[:, :4, :4]
    with pytest.raises(ValueError, match="different slice sizes"):
        SliceDataset([_vol("a"), small])
    with pytest.raises(ValueError, match="pass a folder"):
        SliceDataset([_vol("a")], split="train")


def test_reads_a_prepared_folder_by_split(tmp_path):
    with staged_output(tmp_path / "prep") as stage:
        for s in ("a", "b"):
            save_volume(stage / f"{s}.npz", _vol(s))
        write_manifest(stage, make_manifest(dataset="t", task="cardiac", modality="mr",
                                            normalisation={}, splits={"a": "train", "b": "test"},
                                            command=""))
    ds = SliceDataset(tmp_path / "prep", split="test")
    assert {ds[i]["subject"] for i in range(len(ds))} == {"b"}


def test_augmentation_is_seeded_per_item_and_epoch_and_keeps_labels_integer():
    vol = _vol("a")
    vol.image = np.random.default_rng(0).random(vol.image.shape).astype(np.float32)
    ds = SliceDataset([vol], augment=Augment(), seed=3)
    first = ds[1]["image"]
    assert torch.equal(first, ds[1]["image"])  # same item, same epoch: same draw
    assert not torch.equal(first, torch.from_numpy(vol.image[1:2]))  # it did change
    ds.set_epoch(1)
    assert not torch.equal(first, ds[1]["image"])
    assert set(ds[1]["label"].unique().tolist()) <= {0, 1}
    other = SliceDataset([vol], augment=Augment(), seed=4)
    assert not torch.equal(first, other[1]["image"])


def test_augment_off_is_identity_for_geometry():
    vol = _vol("a")
    ds = SliceDataset([vol], augment=Augment(0, 0, 0, 0, 0))
    assert torch.equal(ds[2]["label"], torch.from_numpy(vol.label[2].astype(np.int64)))
    np.testing.assert_allclose(ds[2]["image"][0].numpy(), vol.image[2], atol=1e-5)


def test_class_offset_shifts_each_label_class_by_its_own_draw():
    vol = _vol("a")
    vol.label[:] = 0
    vol.label[:, :4, :4], vol.label[:, 4:, 4:] = 1, 2
    ds = SliceDataset([vol], augment=Augment(0, 0, 0, 0, 0, class_offset=0.5), seed=3)
    moved = ds[2]["image"][0].numpy() - vol.image[2]
    label = vol.label[2]
    per_class = [np.unique(moved[label == c].round(5)) for c in (0, 1, 2)]
    assert all(len(u) == 1 for u in per_class)  # one offset per class on the whole slice
    assert len({float(u[0]) for u in per_class}) == 3  # and three different ones
    assert torch.equal(ds[2]["label"], torch.from_numpy(label.astype(np.int64)))
    other = ds[1]["image"][0].numpy() - vol.image[1]  # another slice, another draw
    assert not np.allclose(other[label == 1][0], per_class[1][0])
    with pytest.raises(ValueError, match="aug_class_offset must be a number >= 0"):
        SegConfig(aug_class_offset=-1.0).validate()
    assert "aug_class_offset" not in SegConfig().identity()  # off: the name of older runs
    assert SegConfig(aug_class_offset=0.1).identity()["aug_class_offset"] == 0.1
