"""Chapter 2 training: exact resume, checkpoints, divergence, translate_folder, command line."""
import dataclasses
import json

import numpy as np
import pytest
import torch

from glua_lib import DEMO, load_config, pipeline, save_config
from glua_lib.config import config_to_dict
from glua_lib.cli import main
from glua_lib.checkpoint import load_checkpoint
from glua_lib.data import (Volume, load_volumes, make_manifest, read_manifest, save_volume,
                           staged_output, write_manifest)
from glua_lib.style import losses
from glua_lib.style.models import DomainTranslator
from glua_lib.runfolder import ELAPSED, TrainingDiverged
from glua_lib.style.train import (STYLE_ARCHS, ImagePool, StyleConfig, StyleTrainer, _mix_styles,
                                  train_style)
from glua_lib.style.translate import load_style_model, translate_folder

TINY = StyleConfig(dim=4, n_res=1, mlp_dim=8, dis_dim=4, dis_layers=2, dis_scales=2,
                   image_size=16, batch_size=2, steps=6, amp=False, log_every=1,
                   sample_every=2, checkpoint_every=2, num_workers=0)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny tensors gain nothing from threads, and spinning OpenMP threads stall badly when
    other processes share the cores."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _prepared(path, modality, task="cardiac", n=3, size=16, depth=4):
    """A prepared folder of ``n`` tiny volumes (last one ``test``): a bright or dark square."""
    rng = np.random.default_rng(len(modality) + n)
    splits = {}
    with staged_output(path) as stage:
        for i in range(n):
            label = np.zeros((depth, size, size), np.uint8)
            label[:, 4 + i:10 + i, 3:9] = 1
            label[:, 2:5, 10:14] = 2
            fg = {"mr": 0.8, "ct": -0.6}[modality]
            image = np.where(label == 1, fg, np.where(label == 2, -fg / 2, -0.9))
            image = (image + rng.normal(0, 0.05, image.shape)).astype(np.float32)
            subject = f"{modality}{i}"
            save_volume(stage / f"{subject}.npz",
                        Volume(image, label, (2.0, 1.5, 1.5), modality, task, subject))
            splits[subject] = "test" if i == n - 1 else "train"
        write_manifest(stage, make_manifest(dataset="tiny", task=task, modality=modality,
                                            normalisation={"range": [-1, 1]}, splits=splits,
                                            command="test"))
    return path


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("style-data")
    return {"mr": _prepared(root / "mr", "mr"), "ct": _prepared(root / "ct", "ct"),
            "abd": _prepared(root / "abd", "ct", task="abdominal")}


@pytest.fixture(scope="module")
def run_ct_mr(data, tmp_path_factory):
    """A 2-step run in the CT -> MR direction."""
    out = tmp_path_factory.mktemp("run") / "ct2mr"
    return train_style(data["ct"], data["mr"], out, dataclasses.replace(TINY, steps=2),
                       device="cpu", progress=False)


def _params(path):
    state = load_checkpoint(path)
    return {**{f"model.{k}": v for k, v in state["model"].items()},
            **{f"dis.{k}": v for k, v in state["dis"].items()}}


def _log(path):
    return [{k: v for k, v in json.loads(ln).items() if k != ELAPSED}
            for ln in path.read_text().splitlines()]


def test_config_from_profile_and_json_round_trip(tmp_path):
    default = StyleConfig.from_profile(DEMO)  # the authors' translator and loss weights
    assert (default.arch, default.w_image, default.w_cycle, default.w_content, default.w_style,
            default.w_adv) == ("domain", 20, 20, 1, 0, 1)
    cfg = StyleConfig.from_profile(DEMO, arch="munit", steps=5)  # the MUNIT-like one, beside it
    assert (cfg.steps, cfg.image_size) == (5, DEMO.slice_size)
    assert (cfg.batch_size, default.steps) == (
        DEMO.style_batch, DEMO.style_steps)  # demo: 1200 steps of 4 slices a domain
    assert (cfg.w_image, cfg.w_cycle, cfg.w_content, cfg.w_style, cfg.w_adv) == (10, 10, 1, 1, 1)
    assert load_config(StyleConfig, save_config(cfg, tmp_path / "c.json")) == cfg
    stored = {k: v for k, v in config_to_dict(cfg).items() if k != "w_structure"}
    old = StyleConfig.from_dict(stored)  # a checkpoint from before the structure loss existed
    assert old.w_structure == 0 and cfg.w_structure > 0 and cfg.w_class == 0  # class term: off
    with pytest.raises(ValueError, match="labeller_depth 4 needs a multiple of 16, at least 32"):
        dataclasses.replace(TINY, w_class=5.0).validate()  # 16 px: too small for the labeller
    with pytest.raises(ValueError, match="divisible"):
        dataclasses.replace(cfg, image_size=60).validate()


def test_identity_leaves_out_only_what_cannot_change_the_run():
    # cached runs are named after identity(): a run trained before the class-wise term existed
    # (its config lacks the term's six fields) must keep its name while the term is off
    # (and one trained before the authors' translator and the semantic term: four more fields)
    cfg = StyleConfig.from_profile(DEMO, arch="munit")
    later = ("arch", "pool_size", "w_sem", "sem_start")
    before_term = {k: v for k, v in config_to_dict(cfg).items()
                   if k not in ("w_class", "class_start", "class_conf", "labeller_width",
                                "labeller_depth", "labeller_lr", *later)}
    assert cfg.identity() == before_term
    assert pipeline.fingerprint(cfg) == pipeline.fingerprint(
        dataclasses.replace(cfg, class_start=7, labeller_width=4, pool_size=3,
                            sem_start=9))  # inert while w_class, w_sem are 0 and arch is munit
    on = dataclasses.replace(cfg, w_class=5.0)
    assert on.identity() == {k: v for k, v in config_to_dict(on).items() if k not in later}
    sem = dataclasses.replace(cfg, w_sem=1.0)  # the semantic term needs the labeller's settings
    assert {"w_sem", "sem_start", "labeller_width"} <= set(sem.identity())
    assert "class_conf" not in sem.identity() and "pool_size" not in sem.identity()
    domain = StyleConfig.from_profile(DEMO, arch="domain")
    assert {"arch", "pool_size"} <= set(domain.identity())
    assert pipeline.fingerprint(domain) != pipeline.fingerprint(
        dataclasses.replace(domain, pool_size=3))
    assert len({pipeline.fingerprint(c) for c in (cfg, on, dataclasses.replace(on, class_start=7),
                                                  dataclasses.replace(cfg, w_structure=0.0),
                                                  dataclasses.replace(cfg, lr=1e-3))}) == 5
    assert "w_structure" not in dataclasses.replace(cfg, w_structure=0.0).identity()


def test_trainer_step_reports_finite_terms():
    torch.manual_seed(0)
    trainer = StyleTrainer(TINY, "cpu")
    before = [p.clone() for p in trainer.model.parameters()]
    x = torch.rand(2, 1, 16, 16) * 2 - 1
    values = trainer.step(x, -x)
    assert set(values) >= {"image", "cycle", "content", "style", "adv", "content_adv",
                           "style_prior", "structure", "g_total", "d_image", "d_content",
                           "d_total"}
    assert all(np.isfinite(v) for v in values.values()) and trainer.step_count == 1
    assert any(not torch.equal(a, b) for a, b in zip(before, trainer.model.parameters()))
    assert not trainer.amp and not trainer.scaler.is_enabled()  # AMP only on CUDA
    ref = StyleTrainer(dataclasses.replace(TINY, ref_styles=True), "cpu")
    assert all(np.isfinite(v) for v in ref.step(x, -x).values())


class _Oracle(torch.nn.Module):
    """A stand-in labeller that always predicts ``labels`` (B×H×W), confidently."""

    def __init__(self, labels, n_classes):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor(10.0))
        self.onehot = torch.nn.functional.one_hot(labels, n_classes).permute(0, 3, 1, 2).float()

    def forward(self, x):
        return self.scale * self.onehot


def test_class_term_needs_labels_and_starts_after_class_start():
    cfg = dataclasses.replace(TINY, w_class=1.0, class_start=2, steps=4, labeller_width=4,
                              labeller_depth=2)
    with pytest.raises(ValueError, match="n_classes"):
        StyleTrainer(cfg, "cpu")
    assert StyleTrainer(TINY, "cpu").labeller is None  # w_class = 0 (default): no labeller
    torch.manual_seed(0)
    trainer = StyleTrainer(cfg, "cpu", n_classes=3)
    y = torch.zeros(2, 16, 16, dtype=torch.long)
    y[:, 2:10, 2:10], y[:, 10:, 10:] = 1, 2
    x = torch.where(y == 1, 0.8, torch.where(y == 2, -0.4, -0.9))[:, None]
    with pytest.raises(ValueError, match="y_s"):
        trainer.step(x, -x)
    first = trainer.step(x, -x, y)
    assert first["class"] == 0 and first["labeller"] > 0  # before step class_start = 2: off
    trainer.labeller = _Oracle(y, 3)  # pseudo-labels = the true labels of the target batch
    trainer.step(x, -x, y)
    third = trainer.step(x, -x, y)
    assert third["class"] > 0 and np.isfinite(list(third.values())).all()


def test_mix_styles_replaces_the_first_half_with_real_styles():
    z, real = torch.zeros(5, 2), torch.tensor([[1.0, 1.0], [2.0, 2.0]])
    mixed = _mix_styles(z, real)  # half = 2 of 5, real styles cycled
    assert mixed[:, 0].tolist() == [1.0, 2.0, 0.0, 0.0, 0.0]


def test_interrupted_run_resumes_to_identical_weights(data, tmp_path):
    straight = train_style(data["mr"], data["ct"], tmp_path / "a", TINY, "cpu", progress=False)
    part = train_style(data["mr"], data["ct"], tmp_path / "b", dataclasses.replace(TINY, steps=3),
                       "cpu", progress=False)
    assert load_checkpoint(part / "checkpoint.pt")["step"] == 3
    with open(part / "log.jsonl", "a") as f:  # an interrupted run logged past its checkpoint
        f.write(json.dumps({"step": 4, "g_total": 99.0}) + "\n")
    resumed = train_style(data["mr"], data["ct"], part, TINY, "cpu", progress=False)
    a, b = _params(straight / "checkpoint.pt"), _params(resumed / "checkpoint.pt")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert _log(straight / "log.jsonl") == _log(resumed / "log.jsonl")
    assert [r["step"] for r in _log(resumed / "log.jsonl")] == [1, 2, 3, 4, 5, 6]
    # outputs next to the checkpoint
    assert load_config(StyleConfig, straight / "config.json") == TINY
    assert json.loads((straight / "run.json").read_text())["target_modality"] == "ct"
    assert sorted(p.name for p in (straight / "samples").iterdir()) == \
        ["step0000002.png", "step0000004.png", "step0000006.png"]
    from PIL import Image  # 5 rows × 6 columns of 16 px images with 2 px gaps
    assert Image.open(straight / "samples" / "step0000006.png").size == (6 * 18 - 2, 5 * 18 - 2)
    # a resumed run must keep its settings (steps may grow)
    with pytest.raises(ValueError, match=r"other settings \(differs in lr\)"):
        train_style(data["mr"], data["ct"], part, dataclasses.replace(TINY, lr=1.0), "cpu",
                    progress=False)


def test_run_json_names_the_machine_of_each_stretch(data, tmp_path, other_threads):
    part = train_style(data["mr"], data["ct"], tmp_path / "b", dataclasses.replace(TINY, steps=3),
                       "cpu", progress=False)
    with other_threads() as (threads, other):
        with pytest.warns(UserWarning, match=rf"trained up to step 3 on cpu .*{threads} threads"
                                             rf".*resumed on cpu .*{other} threads"):
            train_style(data["mr"], data["ct"], part, TINY, "cpu", progress=False)
    stretches = json.loads((part / "run.json").read_text())["trained_on"]
    assert [(s["from_step"], s["threads"]) for s in stretches] == [(0, threads), (3, other)]
    assert load_checkpoint(part / "checkpoint.pt")["machines"] == stretches
    # reopening a finished run trains nothing and adds no stretch
    train_style(data["mr"], data["ct"], part, TINY, "cpu", progress=False)
    assert json.loads((part / "run.json").read_text())["trained_on"] == stretches


def test_resume_is_exact_with_the_class_term(data, tmp_path):
    cfg = dataclasses.replace(TINY, w_class=1.0, class_start=2, class_conf=0.0,
                              labeller_width=4, labeller_depth=2)
    straight = train_style(data["mr"], data["ct"], tmp_path / "a", cfg, "cpu", progress=False)
    part = train_style(data["mr"], data["ct"], tmp_path / "b", dataclasses.replace(cfg, steps=3),
                       "cpu", progress=False)
    resumed = train_style(data["mr"], data["ct"], part, cfg, "cpu", progress=False)
    a, b = load_checkpoint(straight / "checkpoint.pt"), load_checkpoint(resumed / "checkpoint.pt")
    assert a["n_classes"] == 5 and a["labeller"].keys() == b["labeller"].keys()
    for part_name in ("model", "dis", "labeller"):
        assert all(torch.equal(v, b[part_name][k]) for k, v in a[part_name].items())
    log = _log(straight / "log.jsonl")
    assert log == _log(resumed / "log.jsonl")
    assert all(r["labeller"] > 0 for r in log) and log[0]["class"] == 0  # on from step 3 of 6


def test_checkpoint_round_trip_and_target_styles(run_ct_mr):
    model, config = load_style_model(run_ct_mr, "cpu")
    state = load_checkpoint(run_ct_mr / "checkpoint.pt")
    assert config == dataclasses.replace(TINY, steps=2) and state["step"] == 2
    assert all(torch.equal(v, state["model"][k]) for k, v in model.state_dict().items())
    assert not model.training
    # style codes of the 2 real target (MR) training volumes × 4 slices
    assert state["target_styles"].shape == (8, TINY.style_dim)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_style_model(run_ct_mr / "samples", "cpu")


def test_diverging_run_stops_and_keeps_the_last_good_checkpoint(data, tmp_path, monkeypatch):
    calls = {"n": 0}
    real = losses.cycle_loss

    def poisoned(x_cycle, x):  # cycle_loss runs twice per step: NaN from step 5 on
        calls["n"] += 1
        return real(x_cycle, x) * (float("nan") if calls["n"] > 8 else 1.0)

    monkeypatch.setattr(losses, "cycle_loss", poisoned)
    with pytest.raises(TrainingDiverged, match=r"non-finite loss at step 5.*step 4"):
        train_style(data["mr"], data["ct"], tmp_path / "nan", TINY, "cpu", progress=False)
    state = load_checkpoint(tmp_path / "nan" / "checkpoint.pt")
    assert state["step"] == 4
    assert all(torch.isfinite(v).all() for v in state["model"].values())


def test_out_of_memory_names_the_batch_and_what_to_do(data, tmp_path, monkeypatch, capsys):
    real = StyleTrainer.step

    def step(self, *args):  # a GPU that runs out of memory at step 3
        if self.step_count == 2:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(self, *args)

    monkeypatch.setattr(StyleTrainer, "step", step)
    with pytest.raises(torch.OutOfMemoryError,
                       match=r"oom: out of memory on cpu .* at step 3, with batch_size 2 slices "
                             r"of 16×16 .*checkpoint of step 2 .* is kept.*--batch-size.*"
                             r"Tried to allocate 2.00 GiB"):
        train_style(data["mr"], data["ct"], tmp_path / "oom", TINY, "cpu", progress=False)
    assert load_checkpoint(tmp_path / "oom" / "checkpoint.pt")["step"] == 2
    # the command line says it in one line and exits with 1; --batch-size reaches the config
    code, err = _cli(["train-style", "--source", str(data["mr"]), "--target", str(data["ct"]),
                      "--out", str(tmp_path / "cli"), "--profile", "demo", "--steps", "4",
                      "--batch-size", "1", "--device", "cpu", "--no-progress"], capsys)
    assert code == 1 and err.startswith("error: ") and "batch_size 1 slices of 16×16" in err
    assert load_config(StyleConfig, tmp_path / "cli" / "config.json").batch_size == 1


@pytest.mark.filterwarnings("ignore::glua_lib.style.translate.CollapsedStylesWarning")
def test_translate_folder_writes_prepared_volumes_with_source_labels(data, run_ct_mr, tmp_path):
    out = translate_folder(run_ct_mr, data["ct"], tmp_path / "ct-as-mr", n_styles=2,
                           device="cpu", seed=0, progress=False)
    manifest = read_manifest(out)
    assert manifest["modality"] == "mr" and manifest["task"] == "cardiac"
    assert manifest["subjects"]["ct2_style1"]["split"] == "test"  # splits copied
    assert manifest["subjects"]["ct0_style0"]["split"] == "train"
    info = manifest["style_transfer"]
    assert info["styles"] == "kmeans" and len(info["style_codes"]) == 2
    assert info["source_subject"]["ct1_style1"] == "ct1"
    sources = {v.subject: v for v in load_volumes(data["ct"])}
    outs = load_volumes(out)
    assert sorted(v.subject for v in outs) == [f"ct{i}_style{k}" for i in range(3)
                                               for k in range(2)]
    for v in outs:
        src = sources[v.subject.split("_")[0]]
        assert np.array_equal(v.label, src.label) and v.spacing == src.spacing
        assert v.modality == "mr" and v.image.shape == src.image.shape
        assert np.abs(v.image).max() <= 1 and not np.array_equal(v.image, src.image)
    # two styles of one subject differ; the result is reproducible
    by = {v.subject: v.image for v in outs}
    assert not np.array_equal(by["ct0_style0"], by["ct0_style1"])
    again = translate_folder(run_ct_mr, data["ct"], tmp_path / "again", n_styles=2, device="cpu",
                             seed=0, progress=False)
    assert all(np.array_equal(by[v.subject], v.image) for v in load_volumes(again))
    with pytest.raises(FileExistsError, match="not empty"):
        translate_folder(run_ct_mr, data["ct"], out, n_styles=2, device="cpu", progress=False)
    rnd = translate_folder(run_ct_mr, data["ct"], out, n_styles=1, device="cpu", seed=3,
                           overwrite=True, progress=False, styles="random")
    assert read_manifest(rnd)["style_transfer"]["styles"] == "random"
    assert len(load_volumes(rnd)) == 3
    with pytest.raises(ValueError, match="translates cardiac ct -> mr"):
        translate_folder(run_ct_mr, data["mr"], tmp_path / "wrong", device="cpu",
                         progress=False)
    small = _prepared(tmp_path / "ct8", "ct", size=8)  # converted with another --size
    with pytest.raises(ValueError, match=r"ct8/ct0.npz: slices are 8×8 but the style run .* was "
                                         r"trained on 16×16; prepare this folder with --size 16"):
        translate_folder(run_ct_mr, small, tmp_path / "scaled", device="cpu", progress=False)
    assert not (tmp_path / "scaled").exists()


def _cli(argv, capsys):
    code = main(argv)
    return code, capsys.readouterr().err


def test_cli_errors_name_the_folder(data, tmp_path, capsys):
    missing = tmp_path / "nowhere"
    code, err = _cli(["train-style", "--source", str(missing), "--target", str(data["ct"]),
                      "--out", str(tmp_path / "r"), "--device", "cpu"], capsys)
    assert code == 2 and f"{missing}: no such folder" in err
    code, err = _cli(["train-style", "--source", str(data["mr"]), "--target", str(data["abd"]),
                      "--out", str(tmp_path / "r"), "--device", "cpu"], capsys)
    assert code == 2 and "task mismatch" in err and str(data["abd"]) in err
    code, err = _cli(["train-style", "--source", str(data["mr"]), "--target",
                      str(data["mr"]) + "/", "--out", str(tmp_path / "r"), "--device", "cpu"],
                     capsys)
    assert code == 2 and f"{data['mr']}: given as both --source and --target" in err
    small = _prepared(tmp_path / "ct8", "ct", size=8)  # converted with another --size
    code, err = _cli(["train-style", "--source", str(data["mr"]), "--target", str(small),
                      "--out", str(tmp_path / "r"), "--device", "cpu"], capsys)
    assert code == 2 and f"{small}: slices are 8×8 but the config's image_size is 16×16" in err
    assert "the same --size" in err
    code, err = _cli(["translate", "--run", str(missing), "--source", str(data["mr"]),
                      "--out", str(tmp_path / "o"), "--device", "cpu"], capsys)
    assert code == 2 and f"{missing}: no such style-transfer run" in err
    assert not (tmp_path / "r").exists() and not (tmp_path / "o").exists()


def test_cli_trains_and_translates(data, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train-style", "--source", str(data["mr"]), "--target", str(data["ct"]),
                 "--out", str(run), "--profile", "demo", "--steps", "1", "--device", "cpu",
                 "--no-progress"]) == 0
    cfg = load_config(StyleConfig, run / "config.json")
    assert (cfg.steps, cfg.image_size, cfg.dim) == (1, 16, StyleConfig.from_profile(DEMO).dim)
    out = tmp_path / "translated"
    assert main(["translate", "--run", str(run), "--source", str(data["mr"]), "--out", str(out),
                 "--styles", "1", "--device", "cpu", "--no-progress"]) == 0
    assert read_manifest(out)["modality"] == "ct" and len(load_volumes(out)) == 3
    code, err = _cli(["translate", "--run", str(run), "--source", str(data["mr"]),
                      "--out", str(out), "--device", "cpu", "--no-progress"], capsys)
    assert code == 2 and "--overwrite" in err
    domain = tmp_path / "domain"  # the authors' translator
    assert main(["train-style", "--source", str(data["mr"]), "--target", str(data["ct"]),
                 "--out", str(domain), "--profile", "demo", "--arch", "domain", "--steps", "1",
                 "--device", "cpu", "--no-progress"]) == 0
    cfg = load_config(StyleConfig, domain / "config.json")
    assert (cfg.arch, cfg.w_cycle, cfg.w_sem) == ("domain", 20.0, 0.0)
    code, err = _cli(["train-style", "--source", str(data["mr"]), "--target", str(data["ct"]),
                      "--out", str(tmp_path / "sem"), "--profile", "demo", "--semantic", "1",
                      "--device", "cpu", "--no-progress"], capsys)  # 16 px: no room
    assert code == 2 and "too small or not divisible for the labeller" in err


def _with_target_styles(run, codes, out):
    """A copy of a run folder whose stored target style codes are ``codes``."""
    import shutil

    from glua_lib.checkpoint import save_checkpoint
    from glua_lib.style.train import CHECKPOINT
    shutil.copytree(run, out)
    state = load_checkpoint(out / CHECKPOINT)
    state["target_styles"] = codes
    save_checkpoint(out / CHECKPOINT, state)
    return out


def test_translate_warns_when_the_kmeans_styles_are_one(data, run_ct_mr, tmp_path, capsys):
    import warnings

    from glua_lib.style.translate import CollapsedStylesWarning
    s = TINY.style_dim
    one = _with_target_styles(run_ct_mr, torch.full((12, s), 0.3), tmp_path / "one")
    with pytest.warns(CollapsedStylesWarning, match=r"3 k-means target styles render nearly one "
                                                    r"image .* of ct0 .*--random-styles"):
        out = translate_folder(one, data["ct"], tmp_path / "t1", n_styles=3, device="cpu",
                               progress=False)
    effect = read_manifest(out)["style_transfer"]["style_effect"]
    assert effect["styles"] == 0 and effect["random"] > 0 and effect["collapsed"] is True
    # codes as spread as the prior's, or random styles: no warning, and recorded as such
    spread = _with_target_styles(run_ct_mr, torch.randn(12, s, generator=torch.Generator()
                                                         .manual_seed(0)), tmp_path / "spread")
    with warnings.catch_warnings():
        warnings.simplefilter("error", CollapsedStylesWarning)
        out = translate_folder(spread, data["ct"], tmp_path / "t2", n_styles=3, device="cpu",
                               progress=False)
        rnd = translate_folder(one, data["ct"], tmp_path / "t3", n_styles=3, device="cpu",
                               progress=False, styles="random")
    assert read_manifest(out)["style_transfer"]["style_effect"]["collapsed"] is False
    assert read_manifest(rnd)["style_transfer"]["style_effect"]["collapsed"] is False
    # one style: nothing to compare
    out = translate_folder(one, data["ct"], tmp_path / "t4", n_styles=1, device="cpu",
                           progress=False)
    assert read_manifest(out)["style_transfer"]["style_effect"] is None
    # the command line prints the advice as one plain line and still writes the folder
    code, err = _cli(["translate", "--run", str(one), "--source", str(data["ct"]),
                      "--out", str(tmp_path / "t5"), "--device", "cpu", "--no-progress"], capsys)
    assert code == 0 and err.startswith("warning: ") and "--random-styles" in err
    assert len(load_volumes(tmp_path / "t5")) == 9


def test_train_seg_takes_the_warnings_advice(tmp_path, capsys):
    """train-seg translates for itself: on collapsed styles it warns like translate, and its
    --random-styles renders the source in prior draws instead (recorded in the run's config and
    in the manifest of the translations it trains on)."""
    # the demo segmenter (depth 4) needs 32² slices
    ct, mr = _prepared(tmp_path / "ct", "ct", size=32), _prepared(tmp_path / "mr", "mr", size=32)
    run = train_style(ct, mr, tmp_path / "ct2mr", dataclasses.replace(TINY, image_size=32,
                                                                       steps=1), "cpu", False)
    one = _with_target_styles(run, torch.full((12, TINY.style_dim), 0.3), tmp_path / "one")
    argv = ["train-seg", "--method", "global", "--source", str(ct), "--target", str(mr),
            "--style-run", str(one), "--profile", "demo", "--steps", "2", "--batch-size", "2",
            "--device", "cpu", "--no-progress"]
    code, err = _cli(argv + ["--out", str(tmp_path / "kmeans")], capsys)
    assert code == 0 and "warning: " in err and "train-seg --random-styles" in err, err
    code, err = _cli(argv + ["--out", str(tmp_path / "random"), "--random-styles"], capsys)
    assert code == 0 and "warning" not in err
    for name, styles in (("kmeans", "kmeans"), ("random", "random")):
        run = tmp_path / name
        assert json.loads((run / "config.json").read_text())["styles"] == styles
        record = read_manifest(run / "translated")["style_transfer"]
        assert record["styles"] == styles and record["style_effect"]["collapsed"] is (
            styles == "kmeans")
    # the same folder resumed with the other styles is refused, naming the difference
    code, err = _cli(argv + ["--out", str(tmp_path / "random")], capsys)
    assert code != 0 and "differs in styles)" in err
    # no translation, nothing to draw: refused before anything is read
    code, err = _cli(["train-seg", "--method", "none", "--source", str(ct), "--target", str(mr),
                      "--out", str(tmp_path / "none"), "--random-styles", "--device", "cpu"],
                     capsys)
    assert code != 0 and "only used by methods that translate" in err
    assert not (tmp_path / "none").exists()


# ----------------------------------------------------------------------------------------------
# the authors' translator (arch="domain"), its image pools and the semantic term

DOMAIN = dataclasses.replace(TINY, **STYLE_ARCHS["domain"], pool_size=3)


def test_domain_config_takes_the_authors_weights_and_refuses_munit_terms():
    cfg = StyleConfig.from_profile(DEMO, arch="domain")
    assert (cfg.arch, cfg.w_image, cfg.w_cycle, cfg.w_content, cfg.w_adv) == \
        ("domain", 20.0, 20.0, 1.0, 1.0)
    assert cfg.w_style == cfg.w_content_adv == cfg.w_structure == 0 and not cfg.ref_styles
    assert StyleConfig.from_profile(DEMO, arch="domain", w_cycle=5.0).w_cycle == 5.0
    assert StyleConfig.from_profile(dataclasses.replace(DEMO, style_arch="domain")).arch \
        == "domain"
    with pytest.raises(ValueError, match="no style codes"):
        dataclasses.replace(cfg, w_style=1.0).validate()
    with pytest.raises(ValueError, match="unknown translator arch 'cyclegan'"):
        StyleConfig.from_profile(DEMO, arch="cyclegan")


def test_domain_trainer_step_has_the_authors_terms():
    torch.manual_seed(0)
    trainer = StyleTrainer(DOMAIN, "cpu")
    x = torch.rand(2, 1, 16, 16) * 2 - 1
    values = trainer.step(x, -x)
    assert set(values) == {"image", "cycle", "content", "adv", "g_total", "d_image", "d_total"}
    assert values["g_total"] == pytest.approx(20 * values["image"] + 20 * values["cycle"]
                                              + values["content"] + values["adv"], rel=1e-5)
    assert len(trainer.pools["source"].images) == 2  # the pool fills with the translations
    assert all(np.isfinite(v) for v in values.values())


def test_image_pool_returns_new_or_stored_images_and_resumes():
    pool = ImagePool(2, seed=0)
    a, b = torch.full((2, 1, 2, 2), 1.0), torch.full((3, 1, 2, 2), 2.0)
    assert torch.equal(pool.query(a), a)  # filling: each image stored and returned
    twin = ImagePool(2, seed=5)
    twin.load_state_dict(pool.state_dict(), torch.device("cpu"))
    out = pool.query(b)  # full: each image returned as it is or swapped for a stored 1.0
    assert set(out.flatten().tolist()) <= {1.0, 2.0} and out.shape == b.shape
    held = sorted(t.flatten()[0].item() for t in pool.images)
    assert held.count(1.0) == 2 - int((out == 1.0).flatten(1).all(1).sum())  # swaps conserve
    assert torch.equal(twin.query(b), out)  # a resumed pool draws the same
    assert torch.equal(ImagePool(0, seed=0).query(b), b)  # size 0: off


def test_semantic_term_reaches_the_generator_not_the_labeller():
    cfg = dataclasses.replace(DOMAIN, w_sem=1.0, sem_start=1, labeller_width=4,
                              labeller_depth=2)
    with pytest.raises(ValueError, match="n_classes"):
        StyleTrainer(cfg, "cpu")
    torch.manual_seed(0)
    trainer = StyleTrainer(cfg, "cpu", n_classes=3)
    y = torch.zeros(2, 16, 16, dtype=torch.long)
    y[:, 2:10, 2:10] = 1
    x = torch.where(y == 1, 0.8, -0.9)[:, None]
    first = trainer.step(x, -x, y)
    assert first["sem"] == 0 and first["labeller"] > 0  # off before sem_start
    # the term alone: its gradient reaches the translator's weights, while the labeller's own
    # update comes from its separate loss on the detached translation
    trainer.weights = {k: 0.0 for k in trainer.weights} | {"sem": 1.0}
    lab = [p.clone() for p in trainer.labeller.parameters()]
    gen = [p.clone() for p in trainer.model.decoder.parameters()]
    trainer.opt_l.param_groups[0]["lr"] = 0.0
    second = trainer.step(x, -x, y)
    assert second["sem"] > 0
    assert any(not torch.equal(a, b) for a, b in zip(gen, trainer.model.decoder.parameters()))
    assert all(torch.equal(a, b) for a, b in zip(lab, trainer.labeller.parameters()))


def test_domain_run_resumes_exactly_and_translates_once_per_volume(data, tmp_path):
    straight = train_style(data["mr"], data["ct"], tmp_path / "a", DOMAIN, "cpu",
                           progress=False)
    part = train_style(data["mr"], data["ct"], tmp_path / "b",
                       dataclasses.replace(DOMAIN, steps=3), "cpu", progress=False)
    resumed = train_style(data["mr"], data["ct"], part, DOMAIN, "cpu", progress=False)
    a, b = load_checkpoint(straight / "checkpoint.pt"), load_checkpoint(resumed / "checkpoint.pt")
    for name in ("model", "dis"):
        assert all(torch.equal(v, b[name][k]) for k, v in a[name].items())
    assert all(torch.equal(u, v) for u, v in zip(a["pools"]["target"]["images"],
                                                 b["pools"]["target"]["images"]))
    assert "target_styles" not in a  # no style encoder, no k-means styles
    assert _log(straight / "log.jsonl") == _log(resumed / "log.jsonl")
    model, config = load_style_model(straight, "cpu")
    assert isinstance(model, DomainTranslator) and config.arch == "domain"
    out = translate_folder(straight, data["mr"], tmp_path / "mr-as-ct", n_styles=3,
                           device="cpu", progress=False)
    info = read_manifest(out)["style_transfer"]
    assert info["n_styles"] == 1 and info["styles"] == "domain"
    vols = load_volumes(out)
    assert sorted(v.subject for v in vols) == ["mr0_style0", "mr1_style0", "mr2_style0"]
    src = {v.subject: v for v in load_volumes(data["mr"])}
    with torch.no_grad():
        first = model.translate(torch.from_numpy(src["mr0"].image[:, None]), to="target")
    by = {v.subject: v for v in vols}
    assert np.allclose(by["mr0_style0"].image, first[:, 0].numpy(), atol=1e-6)
    assert np.array_equal(by["mr0_style0"].label, src["mr0"].label)
