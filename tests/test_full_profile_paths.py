"""The code paths only the ``full`` profile takes, run on the CPU: mixed precision (float16
autocast, loss scalers, the scalers' checkpointed state, exact resume, a run that diverged in
float16 going on in float32) and DataLoader workers (``num_workers=4`` there, 0 in ``demo``).

No test needs a GPU: ``glua_lib.runtime.AMP_DEVICE_TYPES`` is ``("cuda",)``, and the tests that
run the AMP path add ``"cpu"`` to it, so ``amp=True`` takes the same branches a CUDA run takes.
"""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from test_local_methods import _same, _weights, gap_prepared
from test_seg import _NaNAtStep2, make_prepared, tiny_config
from test_style_train import TINY, _params, _prepared

import glua_lib.runtime as runtime
import glua_lib.seg.cli as seg_cli
import glua_lib.seg.train as seg_train
import glua_lib.style.cli as style_cli
import glua_lib.style.train as style_train
from glua_lib.checkpoint import load_checkpoint
from glua_lib.cli import main
from glua_lib.config import get_profile
from glua_lib.runtime import amp_enabled, autocast, diverged_advice
from glua_lib.method import Method
from glua_lib.methods import METHODS
from glua_lib.runfolder import TrainingDiverged, read_log
from glua_lib.seg.train import train_seg
from glua_lib.seg.unet import UNet
from glua_lib.seg.predict import predict_volume
from glua_lib.style import losses
from glua_lib.style.train import StyleTrainer, train_style


@pytest.fixture
def amp_on_cpu(monkeypatch):
    monkeypatch.setattr(runtime, "AMP_DEVICE_TYPES", ("cuda", "cpu"))


def test_amp_is_on_only_when_asked_and_on_cuda():
    assert amp_enabled(True, "cuda") and amp_enabled(True, torch.device("cuda", 1))
    assert not amp_enabled(True, "cpu") and not amp_enabled(True, "mps")
    assert not amp_enabled(False, "cuda")
    assert not StyleTrainer(dataclasses.replace(TINY, amp=True), "cpu").scaler.is_enabled()


def test_autocast_is_float16_when_enabled_and_nothing_otherwise():
    a, b = torch.ones(2, 3), torch.ones(3, 4)
    with autocast("cpu", True):
        assert (a @ b).dtype == torch.float16  # CUDA AMP's precision, not CPU's bfloat16
    with autocast("cpu", False):
        assert (a @ b).dtype == torch.float32


def test_style_training_under_amp_resumes_exactly(amp_on_cpu, tmp_path):
    mr, ct = _prepared(tmp_path / "mr", "mr"), _prepared(tmp_path / "ct", "ct")
    cfg = dataclasses.replace(TINY, amp=True)
    assert StyleTrainer(cfg, "cpu").scaler.is_enabled()
    straight = train_style(mr, ct, tmp_path / "a", cfg, "cpu", progress=False)
    part = train_style(mr, ct, tmp_path / "b", dataclasses.replace(cfg, steps=3), "cpu",
                       progress=False)
    resumed = train_style(mr, ct, part, cfg, "cpu", progress=False)
    a, b = _params(straight / "checkpoint.pt"), _params(resumed / "checkpoint.pt")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    scaler = load_checkpoint(straight / "checkpoint.pt")["scaler"]
    assert scaler and scaler == load_checkpoint(resumed / "checkpoint.pt")["scaler"]
    log = [json.loads(ln) for ln in (straight / "log.jsonl").read_text().splitlines()]
    assert len(log) == 6 and all(np.isfinite(r["g_total"]) and np.isfinite(r["d_total"])
                                 for r in log)
    # the weights are float32: autocast changes the arithmetic, not what is stored
    assert all(v.dtype == torch.float32 for v in a.values() if v.is_floating_point())


def test_local_run_under_amp_resumes_exactly(amp_on_cpu, tmp_path):
    src, tgt = make_prepared(tmp_path / "src", "mr"), gap_prepared(tmp_path / "tgt")
    cfg = tiny_config(steps=4, amp=True)
    straight = train_seg("local-lossweight", src, tgt, tmp_path / "a", cfg, "cpu", progress=False)
    split = tmp_path / "b"
    train_seg("local-lossweight", src, tgt, split, cfg, "cpu", progress=False, stop_after=2)
    train_seg("local-lossweight", src, tgt, split, cfg, "cpu", progress=False)
    assert json.loads((straight / "run.json").read_text())["amp"] is True
    assert _same(_weights(straight), _weights(split))
    ca, cb = (load_checkpoint(run / "checkpoint.pt") for run in (straight, split))
    assert ca["scaler"] and ca["scaler"] == cb["scaler"]  # the segmenter's scaler
    assert ca["hook"]["scaler"] and ca["hook"]["scaler"] == cb["hook"]["scaler"]  # D_f's
    assert _same(ca["hook"]["disc"], cb["hook"]["disc"])
    log = [r for r in read_log(straight) if "loss" in r]
    assert len(log) == 4 and all(np.isfinite(r["loss"]) and np.isfinite(r["d_loss"])
                                 for r in log)
    assert [r["loss"] for r in log] == [r["loss"] for r in read_log(split) if "loss" in r]


def test_predict_volume_runs_the_model_in_float16_only_under_amp(amp_on_cpu):
    torch.manual_seed(0)
    model = UNet(3, 5, width=4, depth=2)
    seen = []
    model.register_forward_hook(lambda module, args, out: seen.append(out.dtype))
    image = np.random.default_rng(0).normal(size=(5, 16, 16)).astype(np.float32)
    plain = predict_volume(model, image, context=1, device=torch.device("cpu"), batch_size=2)
    mixed = predict_volume(model, image, context=1, device=torch.device("cpu"), batch_size=2,
                           amp=True)
    assert seen == [torch.float32] * 3 + [torch.float16] * 3
    assert plain.shape == mixed.shape == (5, 16, 16) and mixed.dtype == np.uint8


def test_the_number_of_workers_does_not_change_a_run(tmp_path):
    """Batches and augmentations are functions of (seed, step), not of which process drew them:
    a run with 2 workers ends with the weights of a run with none."""
    src, tgt = make_prepared(tmp_path / "src", "mr"), gap_prepared(tmp_path / "tgt")
    method = "local-lossweight"  # a method with a hook and target batches
    seg = [train_seg(method, src, tgt, tmp_path / f"seg{w}", tiny_config(steps=4, num_workers=w),
                     "cpu", progress=False) for w in (0, 2)]
    assert _same(_weights(seg[0]), _weights(seg[1]))
    # so a run may resume with another worker count (a machine with fewer cores)
    train_seg(method, src, tgt, tmp_path / "resumed", tiny_config(steps=4, num_workers=2), "cpu",
              progress=False, stop_after=2)
    train_seg(method, src, tgt, tmp_path / "resumed", tiny_config(steps=4, num_workers=0), "cpu",
              progress=False)
    assert _same(_weights(seg[0]), _weights(tmp_path / "resumed"))
    mr, ct = _prepared(tmp_path / "mr", "mr"), _prepared(tmp_path / "ct", "ct")
    style = [_params(train_style(mr, ct, tmp_path / f"style{w}",
                                 dataclasses.replace(TINY, steps=3, num_workers=w), "cpu",
                                 progress=False) / "checkpoint.pt") for w in (0, 2)]
    assert all(torch.equal(style[0][k], style[1][k]) for k in style[0])


# ---------------------------------------------------------------------------------------------
# a run that diverged in float16


def _stretches(run):
    return [(s["from_step"], s["amp"]) for s in json.loads((run / "run.json").read_text())
            ["trained_on"]]


def test_the_advice_after_a_divergence():
    amp = diverged_advice("train-style", True, 1e-4)
    assert "rerun train-style with --no-amp (amp=False in Python) on the same folder" in amp
    assert "lower learning rate (train-style --lr, below 0.0001" in amp
    plain = diverged_advice("train-seg", False, 2e-3)
    assert plain.startswith("Start over in a new run folder with a lower learning rate "
                            "(train-seg --lr, below 0.002") and "amp" not in plain


def test_style_run_that_diverged_in_float16_goes_on_in_float32(amp_on_cpu, tmp_path,
                                                               monkeypatch):
    mr, ct = _prepared(tmp_path / "mr", "mr"), _prepared(tmp_path / "ct", "ct")
    cfg, run = dataclasses.replace(TINY, amp=True), tmp_path / "run"
    calls, real = {"n": 0}, losses.cycle_loss

    def poisoned(x_cycle, x):  # cycle_loss runs twice per step: NaN from step 5 on
        calls["n"] += 1
        return real(x_cycle, x) * (float("nan") if calls["n"] > 8 else 1.0)

    monkeypatch.setattr(losses, "cycle_loss", poisoned)
    with pytest.raises(TrainingDiverged, match=r"step 5.*checkpoint of step 4 .* is kept\. It "
                                               r"trained in mixed precision.*--no-amp"):
        train_style(mr, ct, run, cfg, "cpu", progress=False)
    monkeypatch.setattr(losses, "cycle_loss", real)
    with pytest.warns(UserWarning, match="trained up to step 4 with amp=True, resumed with "
                                         "amp=False"):
        train_style(mr, ct, run, dataclasses.replace(cfg, amp=False), "cpu", progress=False)
    state = load_checkpoint(run / "checkpoint.pt")
    assert state["step"] == 6 and state["scaler"] == {}  # the float32 stretch has no scaler
    assert _stretches(run) == [(0, True), (4, False)]
    assert json.loads((run / "config.json").read_text())["amp"] is False
    train_style(mr, ct, run, cfg, "cpu", progress=False)  # finished: nothing trains or changes
    assert json.loads((run / "config.json").read_text())["amp"] is False
    assert _stretches(run) == [(0, True), (4, False)]
    # the learning rate is part of the run: another one needs another folder
    with pytest.raises(ValueError, match=r"other settings \(differs in lr\)"):
        train_style(mr, ct, run, dataclasses.replace(cfg, amp=False, lr=1e-5, steps=8), "cpu",
                    progress=False)


def test_seg_run_resumes_with_amp_switched_off_and_on(amp_on_cpu, tmp_path, monkeypatch):
    src, tgt = make_prepared(tmp_path / "src", "mr"), gap_prepared(tmp_path / "tgt")
    on, off, run = tiny_config(steps=6, amp=True), tiny_config(steps=6, amp=False), tmp_path / "r"
    train_seg("local-lossweight", src, tgt, run, on, "cpu", progress=False, stop_after=2)
    with pytest.warns(UserWarning, match="step 2 with amp=True, resumed with amp=False"):
        train_seg("local-lossweight", src, tgt, run, off, "cpu", progress=False, stop_after=4)
    assert json.loads((run / "config.json").read_text())["amp"] is False
    ckpt = load_checkpoint(run / "checkpoint.pt")
    assert ckpt["scaler"] == {} and ckpt["hook"]["scaler"] == {}
    with pytest.warns(UserWarning, match="step 4 with amp=False, resumed with amp=True"):
        train_seg("local-lossweight", src, tgt, run, on, "cpu", progress=False)  # fresh scalers
    assert _stretches(run) == [(0, True), (2, False), (4, True)]
    ckpt = load_checkpoint(run / "model.pt")
    assert ckpt["step"] == 6 and ckpt["config"]["amp"] is True
    assert all(np.isfinite(r["loss"]) for r in read_log(run) if "loss" in r)
    with pytest.raises(ValueError, match=r"other settings \(differs in lr\)"):
        train_seg("local-lossweight", src, tgt, tmp_path / "r",
                  tiny_config(steps=6, amp=True, lr=1e-4), "cpu", progress=False)
    # a divergence in float16 names the way out
    monkeypatch.setitem(METHODS, "nan-test", Method(  # a test-only method, removed afterwards
        "nan-test", "test only", labelled_data=lambda ctx: ctx.source_dir,
        uses_target_images=True, make_hook=lambda model, config, device: _NaNAtStep2()))
    with pytest.raises(TrainingDiverged, match=r"step 2: the loss is nan.*is kept\. It trained "
                                                 r"in mixed precision.*train-seg with --no-amp"):
        train_seg("nan-test", src, tgt, tmp_path / "nan", on, "cpu", progress=False)


def test_lr_and_no_amp_on_the_command_line(tmp_path, monkeypatch):
    """``--lr`` and ``--no-amp`` of train-style and train-seg reach the run's config."""
    mr, ct = _prepared(tmp_path / "mr", "mr"), _prepared(tmp_path / "ct", "ct")
    seen = []
    monkeypatch.setattr(style_cli, "train_style", lambda *a, **k: seen.append(a[3]) or a[2])
    monkeypatch.setattr(seg_cli, "train_seg", lambda *a, **k: seen.append(a[4]) or a[3])
    common = ["--source", str(mr), "--target", str(ct), "--profile", "full", "--device", "cpu"]
    for command in (["train-style"], ["train-seg", "--method", "none"]):
        assert main([*command, *common, "--out", str(tmp_path / "a")]) == 0
        assert main([*command, *common, "--out", str(tmp_path / "b"), "--lr", "3e-5",
                     "--no-amp"]) == 0
    full = {"train-style": style_train.StyleConfig.from_profile(get_profile("full")),
            "train-seg": seg_train.SegConfig.from_profile("full")}
    assert [(c.lr, c.amp) for c in seen] == [
        (full["train-style"].lr, True), (3e-5, False), (full["train-seg"].lr, True),
        (3e-5, False)]
