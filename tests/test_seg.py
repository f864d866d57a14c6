"""The segmenter: U-Net shapes, Dice+CE by hand, tiny training, checkpoints, exact resume."""
from __future__ import annotations

import dataclasses
import json
import warnings

import numpy as np
import pytest
import torch

from glua_lib.checkpoint import load_checkpoint
from glua_lib.config import DEMO, FULL, load_config
from glua_lib.data import Volume, make_manifest, save_volume, write_manifest
from glua_lib.method import Method, StepHook
from glua_lib.methods import METHODS
from glua_lib.seg import DiceCELoss, UNet, soft_dice_loss
from glua_lib.runfolder import TrainingDiverged, read_log
from glua_lib.seg.train import SegConfig, train_seg

# ---------------------------------------------------------------------------------------------
# tiny prepared folders (also used by test_eval_cli.py)


def tiny_volume(subject: str, modality: str, seed: int, depth: int = 6, size: int = 16,
                spacing=(2.0, 1.0, 1.0)) -> Volume:
    """Boxes of the 4 cardiac classes at jittered places; intensity = class (inverted for CT)."""
    rng = np.random.default_rng(seed)
    label = np.zeros((depth, size, size), np.uint8)
    for c in range(1, 5):
        y = 2 + 7 * ((c - 1) // 2) + rng.integers(0, 2)
        x = 2 + 7 * ((c - 1) % 2) + rng.integers(0, 2)
        label[1:depth - 1, y:y + 5, x:x + 5] = c
    level = label.astype(np.float32) / 4
    if modality == "ct":
        level = 1 - level
    image = (level + rng.normal(0, 0.05, label.shape)).astype(np.float32)
    return Volume(image=image, label=label, spacing=spacing, modality=modality, task="cardiac",
                  subject=subject)


def make_prepared(path, modality: str = "mr", n_train: int = 2, n_test: int = 2, seed: int = 0,
                  **kwargs):
    """A prepared folder of ``n_train`` + ``n_test`` tiny cardiac volumes."""
    path.mkdir(parents=True, exist_ok=True)
    splits = {}
    for i in range(n_train + n_test):
        subject = f"{modality}{i:02d}"
        save_volume(path / f"{subject}.npz", tiny_volume(subject, modality, seed + i, **kwargs))
        splits[subject] = "train" if i < n_train else "test"
    write_manifest(path, make_manifest(dataset="tiny", task="cardiac", modality=modality,
                                       normalisation={"kind": "none"}, splits=splits,
                                       command="tests"))
    return path


def tiny_config(**overrides) -> SegConfig:
    base = dict(steps=6, batch_size=4, width=4, depth=2, lr=1e-2, log_every=1, checkpoint_every=2,
                augment=True, num_workers=0)
    base.update(overrides)
    return SegConfig(**base)


@pytest.fixture
def folders(tmp_path):
    return make_prepared(tmp_path / "src", "mr"), make_prepared(tmp_path / "tgt", "ct", seed=10)


# ---------------------------------------------------------------------------------------------
# U-Net


@pytest.mark.parametrize("norm", ["instance", "batch"])
def test_unet_logits_and_feature_shapes(norm):
    model = UNet(in_channels=3, n_classes=5, width=4, depth=3, norm=norm)
    x = torch.randn(2, 3, 32, 32)
    logits, feats = model(x, return_features=True)
    assert logits.shape == (2, 5, 32, 32)
    assert [tuple(f.shape) for f in feats] == [(2, 4, 32, 32), (2, 8, 16, 16), (2, 16, 8, 8),
                                               (2, 32, 4, 4)]
    assert model.feature_channels == [4, 8, 16, 32]
    assert torch.equal(model(x), logits) if norm == "instance" else model(x).shape == logits.shape


def test_unet_rejects_sizes_not_divisible_by_its_depth():
    with pytest.raises(ValueError, match="divisible by 2\\^depth = 8"):
        UNet(1, 5, width=4, depth=3)(torch.zeros(1, 1, 20, 20))
    with pytest.raises(ValueError, match="unknown norm"):
        UNet(1, 5, norm="group")


# ---------------------------------------------------------------------------------------------
# Dice + CE by hand


def test_soft_dice_perfect_prediction_is_zero_and_disjoint_is_one():
    target = torch.tensor([[[0, 1], [1, 2]]])
    onehot = torch.nn.functional.one_hot(target, 3).permute(0, 3, 1, 2).float()
    assert soft_dice_loss(onehot, target).item() == pytest.approx(0.0, abs=1e-6)
    shifted = onehot.roll(1, dims=1)  # every pixel predicts a wrong class
    assert soft_dice_loss(shifted, target).item() == pytest.approx(1.0, abs=1e-4)


def test_soft_dice_two_by_two_by_hand():
    # 2 classes, target [[0,1],[1,1]]; foreground probabilities [[0.5,1],[0,1]].
    target = torch.tensor([[[0, 1], [1, 1]]])
    p1 = torch.tensor([[0.5, 1.0], [0.0, 1.0]])
    probs = torch.stack([1 - p1, p1])[None]
    # foreground: intersection 1+0+1 = 2, sum p = 2.5, sum g = 3 -> dice = 4 / 5.5
    assert soft_dice_loss(probs, target).item() == pytest.approx(1 - 4 / 5.5, abs=1e-4)
    # with background: intersection 0.5, sum p 1.5, sum g 1 -> dice 1/2.5 = 0.4
    both = soft_dice_loss(probs, target, include_background=True).item()
    assert both == pytest.approx(1 - (4 / 5.5 + 0.4) / 2, abs=1e-4)


def test_dice_ce_loss_adds_the_two_terms():
    target = torch.tensor([[[0, 1], [1, 1]]])
    logits = torch.tensor([[[[0.0, 0.0], [2.0, 0.0]], [[0.0, 1.0], [0.0, 3.0]]]])
    ce = torch.nn.functional.cross_entropy(logits, target)
    # CE by hand: pixels (p_true): sigmoid-like softmax of two logits
    by_hand = -np.mean([np.log(0.5), np.log(np.e / (1 + np.e)), np.log(1 / (1 + np.e ** 2)),
                        np.log(np.e ** 3 / (1 + np.e ** 3))])
    assert ce.item() == pytest.approx(by_hand, rel=1e-5)
    loss = DiceCELoss(ce_weight=2.0, dice_weight=0.5)
    total, parts = loss.parts(logits, target)
    dice = soft_dice_loss(logits.softmax(1), target)
    assert total.item() == pytest.approx(2 * by_hand + 0.5 * dice.item(), rel=1e-5)
    assert parts["ce"].item() == pytest.approx(by_hand, rel=1e-5)


# ---------------------------------------------------------------------------------------------
# config, data order


def test_config_from_profile_and_round_trip(tmp_path):
    demo = SegConfig.from_profile(DEMO, method="oracle", steps=7)
    assert (demo.steps, demo.batch_size, demo.profile, demo.uses_target_labels) == \
        (7, DEMO.batch_size, "demo", True)
    full = SegConfig.from_profile(FULL)
    assert full.steps == FULL.seg_steps and full.amp and full.depth == 5
    from glua_lib.config import save_config
    save_config(demo, tmp_path / "c.json")
    assert load_config(SegConfig, tmp_path / "c.json") == demo
    with pytest.raises(ValueError, match="unknown SegConfig fields"):
        SegConfig.from_profile(DEMO, widht=3)
    # a stored config from before the two trainers' checkpoint intervals had one name: read
    # by from_dict; a run folder's config.json of that age is refused, naming file and field
    old = json.loads((tmp_path / "c.json").read_text())
    old["ckpt_every"] = old.pop("checkpoint_every")
    assert SegConfig.from_dict(old) == demo
    (tmp_path / "old.json").write_text(json.dumps(old))
    with pytest.raises(ValueError, match=r"old.json: fields \['ckpt_every'\] are not in SegConfig"):
        load_config(SegConfig, tmp_path / "old.json")


def test_augmentation_settings_are_in_the_config_and_name_the_cached_run(tmp_path):
    from glua_lib.config import config_to_dict, save_config
    from glua_lib.data import Augment
    from glua_lib.pipeline import fingerprint

    cfg = SegConfig.from_profile(DEMO)
    assert cfg.augmentation() == Augment()  # the defaults are Augment's
    assert dataclasses.replace(cfg, aug_rotate_deg=0.0).augmentation().rotate_deg == 0.0
    assert dataclasses.replace(cfg, augment=False).augmentation() is None
    # a config.json written before the aug_* fields existed loads with what its run used,
    # and names the same cached run
    stored = {k: v for k, v in config_to_dict(cfg).items() if not k.startswith("aug_")}
    (tmp_path / "old.json").write_text(json.dumps(stored))
    old = load_config(SegConfig, tmp_path / "old.json")
    assert old == cfg and fingerprint(old) == fingerprint(cfg)
    save_config(cfg, tmp_path / "new.json")
    assert json.loads((tmp_path / "new.json").read_text())["aug_gamma"] == Augment().gamma
    # a changed augmentation is another run; with augmentation off its settings do not matter
    changed = [dataclasses.replace(cfg, **{name: 0.0}) for name in
               ("aug_rotate_deg", "aug_scale", "aug_shift", "aug_gamma", "aug_noise")]
    assert len({fingerprint(c) for c in [cfg, *changed]}) == 6
    off = dataclasses.replace(cfg, augment=False)
    assert fingerprint(off) != fingerprint(cfg)
    assert fingerprint(dataclasses.replace(off, aug_gamma=0.5)) == fingerprint(off)
    for bad, match in (({"aug_scale": 1.0}, "aug_scale must be < 1"),
                       ({"aug_noise": -0.1}, "aug_noise must be a number >= 0"),
                       ({"aug_gamma": float("nan")}, "aug_gamma must be a number >= 0")):
        with pytest.raises(ValueError, match=match):
            dataclasses.replace(cfg, **bad).validate()


def test_styles_name_the_cached_run_only_when_not_the_kmeans_default(tmp_path):
    from glua_lib.config import config_to_dict
    from glua_lib.pipeline import fingerprint

    cfg = SegConfig.from_profile(DEMO, method="global")
    assert cfg.styles == "kmeans" and "styles" not in cfg.identity()
    # a config.json written before the field existed: the k-means styles, the same cached run
    stored = {k: v for k, v in config_to_dict(cfg).items() if k != "styles"}
    (tmp_path / "old.json").write_text(json.dumps(stored))
    old = load_config(SegConfig, tmp_path / "old.json")
    assert old == cfg and fingerprint(old) == fingerprint(cfg)
    rnd = dataclasses.replace(cfg, styles="random").validate()
    assert rnd.identity()["styles"] == "random" and fingerprint(rnd) != fingerprint(cfg)
    with pytest.raises(ValueError, match="styles must be 'kmeans' or 'random', got 'kmean'"):
        dataclasses.replace(cfg, styles="kmean").validate()
    with pytest.raises(ValueError, match="only used by methods that translate .* not 'local'"):
        SegConfig.from_profile(DEMO, method="local", styles="random").validate()


# ---------------------------------------------------------------------------------------------
# training


def _weights(run):
    return load_checkpoint(run / "model.pt")["model"]


def test_tiny_training_writes_run_folder(folders, tmp_path):
    src, tgt = folders
    run = train_seg("none", src, tgt, tmp_path / "run", tiny_config(), "cpu", progress=False)
    assert {p.name for p in run.iterdir()} >= {"config.json", "run.json", "log.jsonl",
                                               "checkpoint.pt", "model.pt"}
    cfg = load_config(SegConfig, run / "config.json")
    assert cfg.method == "none" and not cfg.uses_target_labels
    info = json.loads((run / "run.json").read_text())
    assert info["train_dir"] == str(src.resolve()) and info["in_channels"] == 1
    log = read_log(run)
    steps = [r["step"] for r in log if "loss" in r]
    assert steps == [1, 2, 3, 4, 5, 6] and all(np.isfinite(r["loss"]) for r in log if "loss" in r)
    assert log[0]["event"] == "start" and log[-1]["event"] == "done"
    final = load_checkpoint(run / "model.pt")
    assert final["step"] == 6 and final["classes"][1] == "MYO"
    # a second call with the same config returns the finished run untouched
    before = (run / "model.pt").stat().st_mtime_ns
    assert train_seg("none", src, tgt, run, tiny_config(), "cpu", progress=False) == run
    assert (run / "model.pt").stat().st_mtime_ns == before
    with pytest.raises(ValueError, match=r"config.json: this run folder holds a run with other "
                                         r"settings \(differs in steps\)"):
        train_seg("none", src, tgt, run, tiny_config(steps=8), "cpu", progress=False)


def test_exact_resume_matches_uninterrupted_run(folders, tmp_path):
    src, tgt = folders
    straight = train_seg("none", src, tgt, tmp_path / "a", tiny_config(), "cpu", progress=False)
    split = tmp_path / "b"
    train_seg("none", src, tgt, split, tiny_config(), "cpu", progress=False, stop_after=3)
    assert not (split / "model.pt").exists()
    assert load_checkpoint(split / "checkpoint.pt")["step"] == 3
    train_seg("none", src, tgt, split, tiny_config(), "cpu", progress=False)
    wa, wb = _weights(straight), _weights(split)
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    losses = lambda run: [r["loss"] for r in read_log(run) if "loss" in r]  # noqa: E731
    assert losses(straight) == losses(split)
    assert [r["event"] for r in read_log(split) if "event" in r] == ["start", "resume", "done"]


def test_the_trainer_uses_the_configs_augmentation(folders, tmp_path):
    src, tgt = folders
    runs = [train_seg("none", src, tgt, tmp_path / name, tiny_config(steps=2, **cfg), "cpu",
                      progress=False)
            for name, cfg in (("a", {}), ("b", {}), ("c", {"aug_noise": 0.5}))]
    wa, wb, wc = map(_weights, runs)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)  # same config: same draws
    assert not all(torch.equal(wa[k], wc[k]) for k in wa)  # other noise: other training
    assert load_config(SegConfig, runs[2] / "config.json").aug_noise == 0.5


def test_run_json_names_the_machine_of_each_stretch(folders, tmp_path, other_threads):
    src, tgt = folders
    run = tmp_path / "run"
    train_seg("none", src, tgt, run, tiny_config(), "cpu", progress=False, stop_after=2)
    with other_threads() as (threads, other):
        with pytest.warns(UserWarning, match=rf"trained up to step 2 on cpu .*{threads} threads"
                                             rf".*resumed on cpu .*{other} threads"):
            train_seg("none", src, tgt, run, tiny_config(), "cpu", progress=False, stop_after=4)
    with pytest.warns(UserWarning, match=rf"resumed on cpu .*{threads} threads"):  # and back
        train_seg("none", src, tgt, run, tiny_config(), "cpu", progress=False)
    stretches = json.loads((run / "run.json").read_text())["trained_on"]
    assert [(s["from_step"], s["threads"]) for s in stretches] == \
        [(0, threads), (2, other), (4, threads)]
    assert load_checkpoint(run / "checkpoint.pt")["machines"] == stretches
    assert [r["device"] for r in read_log(run) if r.get("event") in ("start", "resume")] == \
        [s["device"] for s in stretches]
    # reopening a finished run trains nothing and adds no stretch
    train_seg("none", src, tgt, run, tiny_config(), "cpu", progress=False)
    assert json.loads((run / "run.json").read_text())["trained_on"] == stretches


def _as_older_trainer_left_it(run, threads: int) -> None:
    """Rewrite ``run`` as the trainer before the stretch list left it: ``run.json`` with one
    ``device``/``threads``, a checkpoint without ``machines``."""
    info = json.loads((run / "run.json").read_text())
    del info["trained_on"]
    (run / "run.json").write_text(json.dumps({**info, "device": "cpu",
                                              "torch": torch.__version__, "threads": threads}))
    ckpt = load_checkpoint(run / "checkpoint.pt")
    del ckpt["machines"]
    torch.save(ckpt, run / "checkpoint.pt")


def test_resume_of_a_run_from_before_the_stretch_list(folders, tmp_path):
    src, tgt = folders
    run = tmp_path / "run"
    train_seg("none", src, tgt, run, tiny_config(), "cpu", progress=False, stop_after=2)
    threads = torch.get_num_threads()
    _as_older_trainer_left_it(run, threads)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # same machine as far as the old file says: no warning
        train_seg("none", src, tgt, run, tiny_config(), "cpu", progress=False, stop_after=4)
    stretches = json.loads((run / "run.json").read_text())["trained_on"]
    assert stretches[0] == {"from_step": 0, "device": "cpu", "torch": torch.__version__,
                            "threads": threads}  # kept as the old file named it
    assert (stretches[1]["from_step"], stretches[1]["threads"]) == (2, threads)
    assert stretches[1]["device"].startswith("cpu (")
    # an old file that names another thread count: the resume warns
    other = tmp_path / "other"
    train_seg("none", src, tgt, other, tiny_config(), "cpu", progress=False, stop_after=2)
    _as_older_trainer_left_it(other, threads + 1)
    with pytest.warns(UserWarning, match=rf"on cpu with torch .*resumed on cpu .*{threads} thr"):
        train_seg("none", src, tgt, other, tiny_config(), "cpu", progress=False)


def test_oracle_trains_on_target_and_is_flagged(folders, tmp_path):
    src, tgt = folders
    run = train_seg("oracle", src, tgt, tmp_path / "o", tiny_config(steps=2, amp=True), "cpu",
                    progress=False)
    info = json.loads((run / "run.json").read_text())
    assert info["amp"] is False  # AMP is requested but only takes effect on CUDA
    assert info["train_dir"] == str(tgt.resolve()) and info["uses_target_labels"] is True
    assert "TARGET labels" in info["note"]
    assert load_config(SegConfig, run / "config.json").uses_target_labels is True
    assert read_log(run)[0]["uses_target_labels"] is True


def test_global_needs_a_style_run_and_unknown_method_fails(folders, tmp_path):
    src, tgt = folders
    with pytest.raises(ValueError, match="--style-run"):
        train_seg("global", src, tgt, tmp_path / "g", tiny_config(), "cpu", progress=False)
    assert not (tmp_path / "g").exists()  # refused before anything was written
    with pytest.raises(ValueError, match="unknown method 'glue'.*'none'"):
        train_seg("glue", src, tgt, tmp_path / "x", tiny_config(), "cpu", progress=False)
    with pytest.raises(FileNotFoundError, match="nowhere: source folder does not exist"):
        train_seg("none", tmp_path / "nowhere", tgt, tmp_path / "y", tiny_config(), "cpu")


class _NaNAtStep2(StepHook):
    """A method hook that sees target features and poisons the loss at step 2."""

    feature_levels = (1,)

    def __init__(self):
        self.seen = []

    def loss(self, step, source, target):
        self.seen.append((tuple(source.features[1].shape), tuple(target.features[1].shape),
                          target.label))
        return (float("nan") if step == 2 else 0.0), {"hook": 1.0}


def test_hook_gets_target_features_and_nan_loss_stops_keeping_checkpoint(folders, tmp_path,
                                                                         monkeypatch):
    src, tgt = folders
    hooks = []

    def make(model, config, device):
        hooks.append(_NaNAtStep2())
        return hooks[-1]

    monkeypatch.setitem(METHODS, "nan-test", Method(  # a test-only method, removed afterwards
        "nan-test", "test only", labelled_data=lambda ctx: ctx.source_dir,
        uses_target_images=True, make_hook=make))
    run = tmp_path / "nan"
    with pytest.raises(TrainingDiverged, match="step 2: the loss is nan.*the checkpoint "
                                                 "of step 2 in .*checkpoint.pt is kept"):
        train_seg("nan-test", src, tgt, run, tiny_config(), "cpu", progress=False)
    # level-1 features of 4 source and 4 target slices; target batches carry no labels
    assert hooks[0].seen[0] == ((4, 8, 8, 8), (4, 8, 8, 8), None)
    assert load_checkpoint(run / "checkpoint.pt")["step"] == 2 and not (run / "model.pt").exists()
    assert read_log(run)[-1]["event"] == "stopped"


def test_target_slices_of_another_size_are_refused(tmp_path, monkeypatch):
    src = make_prepared(tmp_path / "src", "mr")
    tgt = make_prepared(tmp_path / "tgt", "ct", seed=10, size=32)  # another --size
    monkeypatch.setitem(METHODS, "target-test", Method(  # a test-only method, removed afterwards
        "target-test", "test only", labelled_data=lambda ctx: ctx.source_dir,
        uses_target_images=True))
    with pytest.raises(ValueError, match=r"tgt: slices are 32×32 but the training slices "
                                         r"\(.*src\) are 16×16; prepare source and target "
                                         r"with the same --size"):
        train_seg("target-test", src, tgt, tmp_path / "run", tiny_config(), "cpu",
                  progress=False)
    assert not (tmp_path / "run" / "checkpoint.pt").exists()
    # methods that never see target images do not care
    train_seg("none", src, tgt, tmp_path / "none", tiny_config(steps=1), "cpu", progress=False)


class _OutOfMemoryAtStep2(StepHook):
    """A method hook whose third step runs out of device memory."""

    def loss(self, step, source, target):
        if step == 2:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 1.00 GiB")
        return 0.0, {}


def test_out_of_memory_names_the_batch_and_what_to_do(folders, tmp_path, capsys, monkeypatch):
    from glua_lib.cli import main

    src, tgt = folders
    monkeypatch.setitem(METHODS, "oom-test", Method(  # a test-only method, removed afterwards
        "oom-test", "test only", labelled_data=lambda ctx: ctx.source_dir,
        uses_target_images=True, make_hook=lambda *a: _OutOfMemoryAtStep2()))
    run = tmp_path / "oom"
    with pytest.raises(torch.OutOfMemoryError,
                       match=r"oom: out of memory on cpu .* at step 3, with batch_size 4 "
                             r"slices of 16×16 per domain .*checkpoint of step 2 .* is kept"
                             r".*batch_size parameter.*train-seg --batch-size.*"
                             r"Tried to allocate 1.00 GiB"):
        train_seg("oom-test", src, tgt, run, tiny_config(), "cpu", progress=False)
    assert load_checkpoint(run / "checkpoint.pt")["step"] == 2
    assert not (run / "model.pt").exists()
    stopped = read_log(run)[-1]
    assert stopped["event"] == "stopped" and "out of memory" in stopped["reason"]
    # the command line says it in one line and exits with 1; --batch-size reaches the config
    big_src = make_prepared(tmp_path / "src32", "mr", size=32)  # the demo U-Net needs 32²
    big_tgt = make_prepared(tmp_path / "tgt32", "ct", size=32, seed=10)
    code = main(["train-seg", "--method", "oom-test", "--source", str(big_src), "--target",
                 str(big_tgt), "--out", str(tmp_path / "cli"), "--profile", "demo",
                 "--steps", "4", "--batch-size", "2", "--device", "cpu", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("error: ") and "batch_size 2 slices of 32×32" in err
    assert load_config(SegConfig, tmp_path / "cli" / "config.json").batch_size == 2


def test_config_mismatch_between_method_and_label_flag_is_refused():
    with pytest.raises(ValueError, match="contradicts method 'none'"):
        dataclasses.replace(tiny_config(), uses_target_labels=True).validate()


def test_global_trains_on_the_translated_source(folders, tmp_path, fake_translator):
    """``global`` calls translate_folder once (faked here: relabels the source as target-like)."""
    src, tgt = folders
    calls = fake_translator
    style_run = tmp_path / "style"
    style_run.mkdir()
    cfg = tiny_config(steps=2, n_styles=2)
    run = train_seg("global", src, tgt, tmp_path / "g", cfg, "cpu", style_run=style_run,
                    progress=False)
    assert calls == [(style_run, src, 2, 0, "kmeans")]
    info = json.loads((run / "run.json").read_text())
    assert info["train_dir"] == str((run / "translated").resolve())
    assert info["style_run"] == str(style_run.resolve()) and not info["uses_target_labels"]
    with pytest.raises(ValueError, match="--style-run is not used by method 'none'"):
        train_seg("none", src, tgt, tmp_path / "n", cfg, "cpu", style_run=style_run)


def test_context_channels_and_source_validation_curve(folders, tmp_path):
    src, tgt = folders
    manifest = json.loads((src / "manifest.json").read_text())
    manifest["subjects"]["mr03"]["split"] = "val"
    (src / "manifest.json").write_text(json.dumps(manifest))
    run = train_seg("none", src, tgt, tmp_path / "v", tiny_config(steps=4, context=1,
                                                                    val_every=2), "cpu",
                    progress=False)
    assert json.loads((run / "run.json").read_text())["in_channels"] == 3
    curve = [(r["step"], r["source_val_dice"]) for r in read_log(run) if "source_val_dice" in r]
    assert [s for s, _ in curve] == [2, 4] and all(0 <= d <= 1 for _, d in curve)


def test_class_offsets_reach_the_labelled_images_only(folders, tmp_path, monkeypatch):
    # the offset reads the labels: the target's, unlabelled in this setting, must not be read
    from glua_lib.seg import train as seg_train
    seen = []

    class Recording(seg_train.SliceDataset):
        def __init__(self, folder, *args, augment=None, **kwargs):
            seen.append((str(folder), augment))
            super().__init__(folder, *args, augment=augment, **kwargs)

    monkeypatch.setattr(seg_train, "SliceDataset", Recording)
    src, tgt = folders
    train_seg("local-lossweight", src, tgt, tmp_path / "run", tiny_config(steps=1,
              aug_class_offset=0.1), "cpu", progress=False)
    offsets = {folder: aug.class_offset for folder, aug in seen}
    assert offsets == {str(src): 0.1, str(tgt): 0.0}
