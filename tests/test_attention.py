"""GLUA's local step as its authors built it: the mask as attention on the target path
(glua_lib.local.attention and attention_methods), from hand-computed tensors to tiny runs,
resume, prediction with the mask and the refusal of a model saved without it."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from test_seg import make_prepared, tiny_config

from glua_lib.checkpoint import load_checkpoint, save_checkpoint
from glua_lib.local import (AttentionConfig, FeatureAttentionHook, FeatureMask, attention_masks,
                            attention_view, load_attention_run, mask_auc_over_training,
                            snapshot_steps, MaskDiscriminator, OutputDiscriminator, apply_mask, attention_mask,
                            discriminator_step_loss, lsgan_loss)
from glua_lib.method import Batch
from glua_lib.methods import METHODS
from glua_lib.runfolder import read_log
from glua_lib.seg.train import train_seg
from glua_lib.seg.unet import UNet
from glua_lib.data import load_volume
from glua_lib.seg.predict import load_feature_mask, load_model, predict_folder, predict_volume

# ---------------------------------------------------------------------------------------------
# the equations, on tensors small enough to check by hand


def test_mask_is_the_absolute_tanh_of_the_discriminator():
    d = torch.tensor([0.0, 0.5, -0.5, 20.0]).view(1, 1, 2, 2)
    m = attention_mask(d)
    t = math.tanh(0.5)
    assert torch.allclose(m.flatten(), torch.tensor([0.0, t, t, 1.0]))
    with pytest.raises(ValueError, match="B×1×h×w"):
        attention_mask(torch.zeros(1, 2, 2, 2))


def test_apply_mask_is_f_plus_m_f_over_every_channel():
    f = torch.tensor([[[1.0, 2.0], [3.0, 4.0]], [[-1.0, 0.0], [10.0, 1.0]]]).unsqueeze(0)
    m = torch.tensor([[0.0, 1.0], [0.5, 0.25]]).view(1, 1, 2, 2)
    want = torch.tensor([[[1.0, 4.0], [4.5, 5.0]], [[-1.0, 0.0], [15.0, 1.25]]]).unsqueeze(0)
    assert torch.equal(apply_mask(f, m), want)
    with pytest.raises(ValueError, match="does not fit"):
        apply_mask(f, torch.zeros(1, 1, 3, 3))


def test_least_squares_losses_with_source_0_and_target_1():
    d = torch.tensor([0.5, 1.5]).view(1, 1, 1, 2)
    assert lsgan_loss(d, 1.0).item() == pytest.approx(0.25)  # ((−½)² + (½)²) / 2
    assert lsgan_loss(d, 0.0).item() == pytest.approx(1.25)  # (¼ + 9/4) / 2
    zero, one = torch.zeros(1, 1, 2, 2), torch.ones(1, 1, 2, 2)
    assert discriminator_step_loss(zero, one).item() == 0.0  # a perfect discriminator
    assert discriminator_step_loss(one, zero).item() == 2.0  # the authors sum the two terms


def test_discriminator_shapes_follow_the_authors_layout():
    d1 = MaskDiscriminator(64)
    convs = [m for m in d1.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.stride) for c in convs] == [
        (64, 32, (3, 3), (1, 1)), (32, 16, (3, 3), (1, 1)), (16, 8, (3, 3), (1, 1)),
        (8, 1, (3, 3), (1, 1))]
    assert d1(torch.zeros(2, 64, 5, 7)).shape == (2, 1, 5, 7)  # one score per location
    d2 = OutputDiscriminator(5, width=4)
    assert [c.out_channels for c in d2.modules() if isinstance(c, torch.nn.Conv2d)] == \
        [4, 8, 16, 32, 1]
    assert d2(torch.zeros(2, 5, 64, 64)).shape == (2, 1, 2, 2)
    with pytest.raises(ValueError, match="at least 32"):
        d2(torch.zeros(1, 5, 16, 16))
    with pytest.raises(ValueError, match="at least 8 input channels"):
        MaskDiscriminator(4)


def test_unet_masks_the_path_but_returns_the_unmasked_features():
    torch.manual_seed(0)
    net = UNet(1, 3, width=2, depth=2).eval()
    x = torch.randn(2, 1, 16, 16)
    plain, feats = net(x, return_features=True)
    zero, _ = net(x, return_features=True, feature_mask=lambda lv, f: torch.zeros_like(f[:, :1]))
    assert torch.equal(plain, zero)  # m = 0: f + 0·f = f
    seen = []

    def ones_at_bottleneck(level, f):
        seen.append(level)
        return torch.ones_like(f[:, :1]) if level == 2 else None

    doubled, feats_m = net(x, return_features=True, feature_mask=ones_at_bottleneck)
    assert seen == [0, 1, 2] and torch.equal(feats_m[2], feats[2])  # D1 judges unmasked f
    assert not torch.allclose(doubled, plain)
    # by hand: the decoder fed 2·f at the bottleneck
    h = net.reduce[1](torch.nn.functional.interpolate(2 * feats[2], scale_factor=2))
    h = net.up[1](torch.cat([feats[1], h], 1))
    h = net.reduce[0](torch.nn.functional.interpolate(h, scale_factor=2))
    assert torch.allclose(net.head(net.up[0](torch.cat([feats[0], h], 1))), doubled, atol=1e-6)


def test_feature_mask_round_trips_and_masks_only_its_levels():
    mask = FeatureMask({2: 16})
    f = torch.randn(1, 16, 4, 4)
    assert mask(1, torch.randn(1, 8, 8, 8)) is None
    m = mask(2, f)
    assert m.shape == (1, 1, 4, 4) and bool((m >= 0).all() and (m < 1).all())
    again = FeatureMask.from_state(mask.to_state())
    assert torch.equal(again(2, f), m) and not again.training


# ---------------------------------------------------------------------------------------------
# the hook: D1 frozen in the segmenter's step, gradient through the mask, D step


def _hook_step(detach: bool):
    torch.manual_seed(0)
    config = tiny_config(steps=4, depth=2, width=4)
    model = UNet(1, 5, width=4, depth=2)
    hook = FeatureAttentionHook(model, config, torch.device("cpu"),
                                AttentionConfig.for_run(config, detach_mask=detach))
    x_s, x_t = torch.randn(2, 1, 32, 32), torch.randn(2, 1, 32, 32)
    logits_s, f_s = model(x_s, return_features=True)
    logits_t, f_t = model(x_t, return_features=True, feature_mask=hook.target_feature_mask())
    extra, logs = hook.loss(0, Batch(x_s, None, logits_s, f_s), Batch(x_t, None, logits_t, f_t))
    extra.backward()
    return model, hook, extra, logs, (x_s, x_t, logits_s, f_s, logits_t, f_t)


def test_segmenter_step_leaves_the_discriminators_alone_and_backpropagates_through_the_mask():
    model, hook, extra, logs, _ = _hook_step(detach=False)
    assert all(p.grad is None for p in [*hook.d1.parameters(), *hook.d2.parameters()])
    assert all(p.requires_grad for p in hook.d1.parameters())  # unfrozen for its own step
    assert set(logs) >= {"adv_feature", "adv_output", "adv_w", "mask_mean_L2"}
    assert extra.item() == pytest.approx(0.01 * (logs["adv_feature"] + logs["adv_output"]))
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    detached_model, *_ = _hook_step(detach=True)
    other = {n: p.grad for n, p in detached_model.named_parameters() if p.grad is not None}
    # the encoder's gradient differs when the mask's own path is cut
    assert not all(torch.allclose(grads[n], other[n]) for n in grads if n.startswith("down."))


def test_discriminator_step_moves_only_the_discriminators():
    model, hook, _, _, (x_s, x_t, logits_s, f_s, logits_t, f_t) = _hook_step(detach=False)
    before = [p.detach().clone() for p in hook.d1.parameters()]
    weights = [p.detach().clone() for p in model.parameters()]
    logs = hook.after_step(0, Batch(x_s, None, logits_s, f_s), Batch(x_t, None, logits_t, f_t),
                           None)
    assert set(logs) == {"d1_loss", "d2_loss"} and all(math.isfinite(v) for v in logs.values())
    assert any(not torch.equal(a, p) for a, p in zip(before, hook.d1.parameters()))
    assert all(torch.equal(a, p) for a, p in zip(weights, model.parameters()))


def test_attention_config_defaults_and_checks():
    cfg = AttentionConfig.for_run(tiny_config(depth=3))
    assert cfg.levels == (3,) and cfg.adv_weight == 0.01 and cfg.d2_width == 16
    assert cfg.d_lr == 1e-4 and cfg.d_betas == (0.9, 0.99) and not cfg.detach_mask
    with pytest.raises(ValueError, match="unknown AttentionConfig fields"):
        AttentionConfig.for_run(tiny_config(), top_k=0.5)
    with pytest.raises(ValueError, match="must lie in 0..2"):
        AttentionConfig.for_run(tiny_config(depth=2), levels=(3,))
    assert AttentionConfig.from_dict(cfg.to_dict()) == cfg


# ---------------------------------------------------------------------------------------------
# tiny runs


@pytest.fixture
def folders(tmp_path):
    return (make_prepared(tmp_path / "src", "mr", size=32),
            make_prepared(tmp_path / "tgt", "ct", seed=10, size=32))


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_methods_are_registered_with_their_data_and_test_time_mask():
    for name, translated, masked in (("local", False, True),
                                     ("local-unmasked", False, False),
                                     ("glua", True, True),
                                     ("glua-unmasked", True, False)):
        m = METHODS[name]
        assert m.needs_style_run is translated and m.uses_target_images
        assert (m.load_feature_mask is not None) is masked
        assert m.settings_for(tiny_config())["masked"] is masked


def test_tiny_run_resumes_exactly_and_keeps_d1_for_the_test(folders, tmp_path):
    src, tgt = folders
    cfg = tiny_config(steps=4, depth=2)
    straight = train_seg("local", src, tgt, tmp_path / "a", cfg, "cpu", progress=False)
    log = [r for r in read_log(straight) if "loss" in r]
    assert all({"adv_feature", "adv_output", "d1_loss", "d2_loss", "mask_mean_L2"} <= set(r)
               for r in log)
    split = tmp_path / "b"
    train_seg("local", src, tgt, split, cfg, "cpu", progress=False, stop_after=2)
    train_seg("local", src, tgt, split, cfg, "cpu", progress=False)
    final_a, final_b = (load_checkpoint(r / "model.pt") for r in (straight, split))
    assert _same(final_a["model"], final_b["model"])
    assert _same(final_a["feature_mask"]["weights"], final_b["feature_mask"]["weights"])
    assert final_a["target_modality"] == "ct" and final_a["source_modality"] == "mr"
    twin = train_seg("local-unmasked", src, tgt, tmp_path / "u", cfg, "cpu",
                     progress=False)
    assert "feature_mask" not in load_checkpoint(twin / "model.pt")
    first = [next(r for r in read_log(run) if "loss" in r) for run in (straight, twin)]
    assert first[0]["adv_feature"] == first[1]["adv_feature"]  # same D1 on the same features
    assert first[0]["ce"] == first[1]["ce"]  # same source batch, same initial weights
    assert first[0]["adv_output"] != first[1]["adv_output"]  # D2 sees the masked prediction


def test_prediction_masks_target_images_and_refuses_a_model_without_its_mask(folders, tmp_path):
    src, tgt = folders
    run = train_seg("local", src, tgt, tmp_path / "r", tiny_config(steps=3, depth=2),
                    "cpu", progress=False)
    on_target = predict_folder(run, tgt, tmp_path / "pt", "cpu", split="test", progress=False)
    on_source = predict_folder(run, src, tmp_path / "ps", "cpu", split="test", progress=False)
    forced = predict_folder(run, tgt, tmp_path / "pf", "cpu", split="test", progress=False,
                            domain="source")

    def masked(folder):
        return json.loads((folder / "manifest.json").read_text())["prediction"][
            "target_features_masked"]

    assert (masked(on_target), masked(on_source), masked(forced)) == (True, False, False)
    model, ckpt = load_model(run, "cpu")
    mask = load_feature_mask(ckpt, "cpu")
    x = torch.randn(1, 1, 32, 32)
    with torch.no_grad():
        assert not torch.allclose(model(x, feature_mask=mask), model(x))
    # the target's predictions are the masked model's, the source's the unmasked model's
    for folder, pred_dir, m in ((tgt, on_target, mask), (src, on_source, None)):
        for subject in ("ct02", "ct03") if folder == tgt else ("mr02", "mr03"):
            vol = load_volume(folder / f"{subject}.npz")
            want = predict_volume(model, vol.image, 0, torch.device("cpu"), feature_mask=m)
            assert np.array_equal(load_volume(pred_dir / f"{subject}.npz").label, want)
    # a model.pt of a masked method saved without its mask (trained before this change)
    del ckpt["feature_mask"]
    save_checkpoint(run / "model.pt", ckpt)
    with pytest.raises(ValueError, match=r"model\.pt: a 'local' run masks target features "
                                         r"at test time.*train it again"):
        predict_folder(run, tgt, tmp_path / "p2", "cpu", split="test", progress=False)


def test_glua_attn_trains_on_the_translated_source(folders, tmp_path, fake_translator):
    src, tgt = folders
    style = tmp_path / "style"
    style.mkdir()
    run = train_seg("glua", src, tgt, tmp_path / "g", tiny_config(steps=2, depth=2), "cpu",
                    style_run=style, progress=False)
    info = json.loads((run / "run.json").read_text())
    assert info["train_dir"] == str((run / "translated").resolve())
    assert "feature_mask" in load_checkpoint(run / "model.pt")
    assert [c[:2] for c in fake_translator] == [(style, src)]


def test_the_authors_deeplab_backbone_trains_masks_and_predicts(folders, tmp_path):
    src, tgt = folders
    cfg = tiny_config(steps=2, backbone="deeplab", width=2, norm="instance")
    assert AttentionConfig.for_run(cfg).levels == (0,)  # layer4, its one watched level
    assert "backbone" not in tiny_config().identity()  # U-Net runs keep their names
    assert cfg.identity()["backbone"] == "deeplab"
    run = train_seg("local", src, tgt, tmp_path / "d", cfg, "cpu", progress=False)
    model, ckpt = load_model(run, "cpu")
    assert type(model).__name__ == "DeepLabV2" and "feature_mask" in ckpt
    pred = predict_folder(run, tgt, tmp_path / "p", "cpu", split="test", progress=False)
    assert json.loads((pred / "manifest.json").read_text())["prediction"][
        "target_features_masked"]
    with pytest.raises(ValueError, match="loss-weighting local methods watch U-Net"):
        train_seg("local-lossweight", src, tgt, tmp_path / "l", cfg, "cpu", progress=False)


def test_attention_view_shows_d1_the_mask_the_boost_and_d2(folders, tmp_path):
    src, tgt = folders
    cfg = tiny_config(steps=3, depth=2)
    run = train_seg("local", src, tgt, tmp_path / "r", cfg, "cpu", progress=False)
    images = torch.from_numpy(load_volume(tgt / "ct02.npz").image[:4, None])
    view = attention_view(run, images)
    maps = view.maps[2]  # the bottleneck of a depth-2 U-Net, 32 px → 8×8
    assert list(view.maps) == [2] and maps.mask.shape == (4, 1, 8, 8)
    assert np.allclose(maps.mask, np.abs(np.tanh(maps.score)), atol=1e-6)
    assert np.allclose(maps.boosted, (1 + maps.mask) * maps.feature, atol=1e-5)  # m ≥ 0
    model, ckpt = load_model(run, "cpu")
    with torch.no_grad():  # the masked predictions are the run's test-time predictions
        want = model(images, feature_mask=load_feature_mask(ckpt, "cpu")).softmax(1)
    assert np.allclose(view.prob, want.numpy(), atol=1e-6)
    assert not np.allclose(view.prob, view.prob_unmasked)
    assert view.d2.shape == view.d2_unmasked.shape == (4, 1, 1, 1)
    twin = train_seg("local-unmasked", src, tgt, tmp_path / "u", cfg, "cpu",
                     progress=False)
    assert attention_view(twin, images).maps[2].mask.shape == (4, 1, 8, 8)
    none = train_seg("none", src, tgt, tmp_path / "n", cfg, "cpu", progress=False)
    with pytest.raises(ValueError, match="not a run of the authors' local step"):
        attention_view(none, images)


def test_snapshots_follow_the_mask_through_training_and_resume_exactly(folders, tmp_path):
    src, tgt = folders
    cfg = tiny_config(steps=4, depth=2)
    assert AttentionConfig.for_run(cfg).snapshots == 4  # demo sizes: steps 0, 1, 2, 3
    run = train_seg("local", src, tgt, tmp_path / "r", cfg, "cpu", progress=False)
    split = tmp_path / "s"
    train_seg("local", src, tgt, split, cfg, "cpu", progress=False, stop_after=2)
    train_seg("local", src, tgt, split, cfg, "cpu", progress=False)
    snaps = [load_checkpoint(r / "checkpoint.pt")["hook"]["snapshots"] for r in (run, split)]
    assert [s["step"] for s in snaps[0]] == [s["step"] for s in snaps[1]] == [0, 1, 2, 3]
    assert all(_same(a["encoder"], b["encoder"]) and _same(a["d1"], b["d1"])
               for a, b in zip(*snaps))
    assert all(k.startswith(("down.0.", "down.1.", "down.2.")) for k in snaps[0][0]["encoder"])
    assert snapshot_steps(run) == [0, 1, 2, 3, 4]
    images = torch.from_numpy(load_volume(tgt / "ct02.npz").image[:4, None])
    gap = np.random.default_rng(0).random((4, 32, 32)).astype(np.float32)  # any map will do
    slices = {"image": images, "gap": gap}
    end, start = attention_masks(run, slices["image"]), attention_masks(run, slices["image"], 0)
    assert np.allclose(end[2].mask, attention_view(run, slices["image"]).maps[2].mask)
    assert not np.allclose(start[2].score, end[2].score)  # D1 and the encoder have moved
    assert np.allclose(start[2].mask, np.abs(np.tanh(start[2].score)), atol=1e-6)
    records = mask_auc_over_training(run, slices)
    assert [(r["step"], r["level"]) for r in records] == [(s, 2) for s in range(5)]
    assert all(0 <= r["auc_mask"] <= 1 and 0 <= r["mask_mean"] < 1 for r in records)
    with pytest.raises(ValueError, match="no snapshot at step 7"):
        load_attention_run(run, step=7)
