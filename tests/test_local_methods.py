"""The ``local``/``glua`` methods: registry, settings, ramp, hook, tiny runs, resume, divergence,
and the mask measures on a trained run."""
from __future__ import annotations

import json
import math
import sys

import numpy as np
import pytest
import torch
from test_seg import make_prepared, tiny_config, tiny_volume

import glua_lib.local.methods as local_methods
from glua_lib.checkpoint import load_checkpoint
from glua_lib.config import FULL
from glua_lib.data import make_manifest, save_volume, write_manifest
from glua_lib.local import (LocalAlignmentHook, LocalConfig, compute_masks, load_local_run,
                            mask_auc_over_training, masked_adversarial_loss, rampup,
                            snapshot_steps, target_slices)
from glua_lib.method import Batch
from glua_lib.methods import METHODS, source_images
from glua_lib.runfolder import TrainingDiverged, read_log
from glua_lib.seg.train import SegConfig, train_seg
from glua_lib.seg.unet import UNet

# ---------------------------------------------------------------------------------------------
# helpers


def gap_prepared(path, modality="ct", n_train=2, n_test=2, seed=10):
    """Like ``make_prepared`` but every volume carries a ``gap`` map: large on MYO and LVC."""
    path.mkdir(parents=True, exist_ok=True)
    splits = {}
    for i in range(n_train + n_test):
        subject = f"{modality}{i:02d}"
        vol = tiny_volume(subject, modality, seed + i)
        gap = np.where(np.isin(vol.label, (1, 3)), 2.0, 0.2).astype(np.float32)
        save_volume(path / f"{subject}.npz", vol, extras={"gap": gap})
        splits[subject] = "train" if i < n_train else "test"
    write_manifest(path, make_manifest(dataset="tiny", task="cardiac", modality=modality,
                                       normalisation={"kind": "none"}, splits=splits,
                                       command="tests"))
    return path


@pytest.fixture
def folders(tmp_path):
    return make_prepared(tmp_path / "src", "mr"), gap_prepared(tmp_path / "tgt")


def _weights(run, name="model.pt"):
    return load_checkpoint(run / name)["model"]


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# ---------------------------------------------------------------------------------------------
# registry, settings, ramp


def test_methods_are_registered_with_the_right_data():
    for name in ("local-lossweight", "local-lossweight-unmasked", "glua-lossweight",
                 "glua-lossweight-unmasked"):
        spec = METHODS[name]
        assert spec.uses_target_images and not spec.uses_target_labels
        assert spec.needs_style_run == name.startswith("glua-lossweight")
    cfg = SegConfig.from_profile("demo", method="glua-lossweight")
    assert cfg.method == "glua-lossweight" and not cfg.uses_target_labels


def test_local_config_defaults_come_from_the_run():
    demo = LocalConfig.for_run(SegConfig.from_profile("demo"))
    assert (demo.levels, demo.ramp_steps, demo.adv_weight, demo.d_width, demo.snapshots) == \
        ((2, 3), 150, 0.05, 32, 4)
    full = LocalConfig.for_run(SegConfig.from_profile(FULL), top_k=0.5)
    assert (full.levels, full.ramp_steps, full.adv_weight, full.top_k) == \
        ((3, 4), FULL.seg_steps // 4, 0.01, 0.5)
    assert LocalConfig.from_dict(full.to_dict()) == full
    with pytest.raises(ValueError, match="unknown LocalConfig fields"):
        LocalConfig.for_run(SegConfig(), temprature=2)
    with pytest.raises(ValueError, match="levels \\(3, 5\\) must lie in 0..4"):
        LocalConfig.for_run(SegConfig(depth=4), levels=(3, 5))
    with pytest.raises(ValueError, match="norm must be one of"):
        LocalConfig.for_run(SegConfig(), norm="sum")


def test_rampup_is_the_sigmoid_shape():
    assert rampup(0, 100) == pytest.approx(math.exp(-5))
    assert rampup(50, 100) == pytest.approx(math.exp(-1.25))
    assert rampup(100, 100) == rampup(1000, 100) == 1.0
    assert rampup(0, 0) == 1.0
    values = [rampup(s, 10) for s in range(12)]
    assert all(a < b for a, b in zip(values[:10], values[1:11]))


# ---------------------------------------------------------------------------------------------
# the hook on its own


def _hook_and_batches(masked=True, **kw):
    torch.manual_seed(0)
    config = tiny_config(steps=8)
    model = UNet(1, 5, width=4, depth=2)
    hook = LocalAlignmentHook(model, config, torch.device("cpu"),
                              LocalConfig.for_run(config, masked=masked, **kw))
    batches = []
    for _ in range(2):
        x = torch.randn(3, 1, 16, 16)
        logits, feats = model(x, return_features=True)
        batches.append(Batch(x, None, logits, feats))
    return model, hook, batches[0], batches[1]


def test_hook_loss_is_ramped_masked_alignment_and_leaves_the_discriminator_alone():
    model, hook, src, tgt = _hook_and_batches()
    assert hook.feature_levels == (0, 1)
    loss, logs = hook.loss(0, src, tgt)
    outs = [hook.disc.head(j, tgt.features[lv]) for j, lv in enumerate(hook.feature_levels)]
    adv = np.mean([masked_adversarial_loss(d, m).item() for d, m in zip(outs, hook.masks(outs))])
    assert logs["adv"] == pytest.approx(adv, rel=1e-5)
    assert loss.item() == pytest.approx(0.05 * math.exp(-5) * adv, rel=1e-5)
    assert 0 < logs["mask_mean_L0"] <= 1 and 0 < logs["p_src_tgt_L1"] < 1
    loss.backward()
    assert all(p.grad is None for p in hook.disc.parameters())  # D_f is frozen here
    assert all(p.requires_grad for p in hook.disc.parameters())  # and unfrozen afterwards
    assert model.down[0][0].weight.grad is not None
    # the unmasked twin: M ≡ 1, i.e. the plain mean
    _, plain, src2, tgt2 = _hook_and_batches(masked=False)
    _, plain_logs = plain.loss(0, src2, tgt2)
    outs = [plain.disc.head(j, tgt2.features[lv]) for j, lv in enumerate(plain.feature_levels)]
    assert plain_logs["adv"] == pytest.approx(np.mean([masked_adversarial_loss(d).item()
                                                        for d in outs]), rel=1e-5)
    assert "mask_mean_L0" not in plain_logs


def test_after_step_trains_only_the_discriminator_and_snapshots():
    model, hook, src, tgt = _hook_and_batches()
    before_d = {k: v.clone() for k, v in hook.disc.state_dict().items()}
    before_m = {k: v.clone() for k, v in model.state_dict().items()}
    logs = hook.after_step(1, src, tgt, torch.amp.GradScaler("cuda", enabled=False))
    assert set(logs) == {"d_loss", "d_acc"} and 0 <= logs["d_acc"] <= 1
    assert not _same(before_d, hook.disc.state_dict())
    assert _same(before_m, model.state_dict())
    assert hook.snapshot_steps == [0, 2, 4, 6] and [s["step"] for s in hook.snapshots] == [0, 2]
    assert set(hook.snapshots[1]["encoder"]) == {k for k in model.state_dict()
                                                  if k.startswith(("down.0.", "down.1."))}


def test_hook_refuses_other_settings_and_nonfinite_discriminator_loss():
    _, hook, src, tgt = _hook_and_batches()
    _, other, _, _ = _hook_and_batches(top_k=0.5)
    with pytest.raises(ValueError, match="differ in \\['top_k'\\]"):
        other.load_state_dict(hook.state_dict())
    bad = Batch(src.image, None, src.logits, [f.detach() * float("nan") for f in src.features])
    with pytest.raises(TrainingDiverged, match="step 3: the feature discriminator's loss is nan"):
        hook.after_step(3, bad, tgt, None)


# ---------------------------------------------------------------------------------------------
# tiny runs


def test_tiny_local_run_logs_alignment_and_resumes_exactly(folders, tmp_path):
    src, tgt = folders
    cfg = tiny_config(steps=4)
    straight = train_seg("local-lossweight", src, tgt, tmp_path / "a", cfg, "cpu",
                         progress=False)
    log = [r for r in read_log(straight) if "loss" in r]
    assert [r["step"] for r in log] == [1, 2, 3, 4]
    assert all({"adv", "adv_w", "d_loss", "d_acc", "mask_mean_L0", "mask_mean_L1"} <= set(r)
               for r in log)
    assert all(np.isfinite(r["loss"]) and 0 < r["adv_w"] <= 0.05 for r in log)
    assert log[-1]["adv_w"] == pytest.approx(0.05)  # ramp_steps = steps // 4 = 1
    split = tmp_path / "b"
    train_seg("local-lossweight", src, tgt, split, cfg, "cpu", progress=False, stop_after=2)
    train_seg("local-lossweight", src, tgt, split, cfg, "cpu", progress=False)
    assert _same(_weights(straight), _weights(split))
    ha = load_checkpoint(straight / "checkpoint.pt")["hook"]
    hb = load_checkpoint(split / "checkpoint.pt")["hook"]
    assert _same(ha["disc"], hb["disc"])
    assert [s["step"] for s in hb["snapshots"]] == [0, 1, 2, 3]
    assert [r["loss"] for r in log] == [r["loss"] for r in read_log(split) if "loss" in r]


def test_unmasked_twin_differs_only_by_the_mask(folders, tmp_path):
    src, tgt = folders
    cfg = tiny_config(steps=2)
    masked = train_seg("local-lossweight", src, tgt, tmp_path / "m", cfg, "cpu",
                       progress=False)
    plain = train_seg("local-lossweight-unmasked", src, tgt, tmp_path / "u", cfg, "cpu",
                      progress=False)
    first = [next(r for r in read_log(run) if "loss" in r) for run in (masked, plain)]
    assert first[0]["ce"] == first[1]["ce"]  # same data, same initial weights
    assert first[0]["adv"] != first[1]["adv"]  # the weighting is what differs
    assert not _same(_weights(masked), _weights(plain))


def test_method_settings_are_saved_and_a_folder_with_other_settings_is_refused(folders,
                                                                               tmp_path,
                                                                               monkeypatch):
    src, tgt = folders
    cfg = tiny_config(steps=2)
    run = train_seg("local-lossweight-unmasked", src, tgt, tmp_path / "u", cfg, "cpu",
                    progress=False)
    saved = json.loads((run / "method.json").read_text())
    assert saved == LocalConfig.for_run(cfg, masked=False).to_dict() and saved["masked"] is False
    assert METHODS["none"].settings_for(cfg) == {}  # plain methods have no settings file
    # a changed default of the method (here top_k) must not reuse the folder
    name = "local-lossweight-unmasked"
    monkeypatch.setitem(METHODS, name, METHODS[name])  # restored after
    METHODS["local-lossweight-unmasked"] = local_methods.lossweight_method(
        "local-lossweight-unmasked", "changed", source_images, masked=False, top_k=0.5)
    with pytest.raises(ValueError, match=r"method\.json.*differs in \['top_k'\]"):
        train_seg("local-lossweight-unmasked", src, tgt, run, cfg, "cpu", progress=False)


def test_exploding_alignment_loss_stops_and_keeps_the_last_checkpoint(folders, tmp_path,
                                                                      monkeypatch):
    src, tgt = folders
    calls = []
    real = local_methods.masked_adversarial_loss

    def blow_up(d, m=None, gan="bce"):  # two levels per step: explodes from step 2 on
        calls.append(1)
        return real(d, m, gan) * (1e6 if len(calls) > 4 else 1.0)

    monkeypatch.setattr(local_methods, "masked_adversarial_loss", blow_up)
    run = tmp_path / "x"
    with pytest.raises(TrainingDiverged, match="step 2: the loss is inf.*adv_exploded.*the "
                                                 "checkpoint of step 2 in .* is kept"):
        train_seg("local-lossweight", src, tgt, run, tiny_config(steps=6), "cpu",
                  progress=False)
    assert load_checkpoint(run / "checkpoint.pt")["step"] == 2 and not (run / "model.pt").exists()
    assert read_log(run)[-1]["event"] == "stopped"


def test_glua_trains_on_translated_source_with_local_alignment(folders, tmp_path,
                                                                fake_translator):
    src, tgt = folders
    style = tmp_path / "style"
    style.mkdir()
    with pytest.raises(ValueError, match="--style-run"):
        train_seg("glua-lossweight", src, tgt, tmp_path / "g0", tiny_config(steps=2), "cpu",
                  progress=False)
    run = train_seg("glua-lossweight", src, tgt, tmp_path / "g", tiny_config(steps=2), "cpu",
                    style_run=style, progress=False)
    assert [c[:2] for c in fake_translator] == [(style, src)]
    info = json.loads((run / "run.json").read_text())
    assert info["train_dir"] == str((run / "translated").resolve())
    assert all("adv" in r and "d_loss" in r for r in read_log(run) if "loss" in r)


# ---------------------------------------------------------------------------------------------
# measures on a trained run


def test_masks_and_auc_of_a_trained_run(folders, tmp_path):
    src, tgt = folders
    run = train_seg("local-lossweight", src, tgt, tmp_path / "r", tiny_config(steps=4), "cpu",
                    progress=False)
    slices = target_slices(tgt, split="test", n=5)
    assert slices["image"].shape == (5, 1, 16, 16) and slices["gap"].shape == (5, 16, 16)
    assert all(slices["label"][i].any() for i in range(5))
    assert set(slices["subject"]) <= {"ct02", "ct03"}
    maps = compute_masks(run, slices["image"])
    assert sorted(maps) == [0, 1]
    assert maps[0].mask.shape == (5, 1, 16, 16) and maps[1].prob.shape == (5, 1, 8, 8)
    assert np.allclose(maps[1].mask.reshape(5, -1).max(1), 1.0)
    assert np.allclose(maps[1].score, np.abs(2 * maps[1].prob - 1), atol=1e-6)
    assert snapshot_steps(run) == [0, 1, 2, 3, 4]
    start = compute_masks(run, slices["image"], step=0)
    assert not np.allclose(start[1].prob, maps[1].prob)  # D_f and the encoder have moved
    records = mask_auc_over_training(run, slices)
    assert [(r["step"], r["level"]) for r in records] == [(s, lv) for s in range(5)
                                                           for lv in (0, 1)]
    assert all(0 <= r["auc_mask"] <= 1 and 0 <= r["auc_score"] <= 1 for r in records)
    with pytest.raises(ValueError, match="no snapshot at step 7"):
        load_local_run(run, step=7)
    none = train_seg("none", src, tgt, tmp_path / "n", tiny_config(steps=1), "cpu",
                     progress=False)
    with pytest.raises(ValueError, match="not a local-alignment run"):
        compute_masks(none, slices["image"])


def test_cli_knows_the_local_methods(tmp_path):
    """In a fresh interpreter ``train-seg --method local`` reaches the folder checks."""
    import subprocess

    out = subprocess.run([sys.executable, "-m", "glua_lib", "train-seg", "--method",
                          "local-lossweight",
                          "--source", str(tmp_path / "nowhere"), "--target", str(tmp_path),
                          "--out", str(tmp_path / "run"), "--device", "cpu"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "nowhere: source folder does not exist" in out.stderr
    assert "unknown method" not in out.stderr
