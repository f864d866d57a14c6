"""Training the segmenter: the ``none``, ``global`` and ``oracle`` methods, and hooks for more.

``train_seg(method, source_dir, target_dir, out_dir, config, device)`` trains a 2D U-Net for a
fixed number of steps and writes into ``out_dir`` (the *run folder*):

================  =================================================================
``config.json``   the :class:`SegConfig` (a rerun must match it, except ``amp`` (a run
                  that diverged in float16 may go on in float32) and ``num_workers``)
``run.json``      what was trained on what (folders, method, task, classes) and
                  ``trained_on``: the machine of each training stretch (device, torch,
                  CPU threads, ``amp``, first step)
``log.jsonl``     one JSON line per logged step (loss terms, lr, time) and events
``checkpoint.pt`` the latest training state (model, optimiser, scaler, hook, RNG, step)
``model.pt``      the final model (written when the run completes); ``predict`` reads it
``translated/``   ``global`` only: the source volumes rendered in target style
================  =================================================================

Methods (the table :data:`glua_lib.methods.METHODS`; the trainer knows them through the contract of
:mod:`glua_lib.method`):

``none`` (source images, no adaptation), ``global`` (source translated to target style by the
style model, ``--style-run``), the local and GLUA methods, and ``oracle``: **target images with
target labels**, which the unsupervised setting does not have, the supervised upper bound, marked
``uses_target_labels`` in the config, the run info and the log.

**No checkpoint selection.** Every method trains for ``config.steps`` steps and the final model
is the result; target labels are never looked at during training (except by ``oracle``, whose
whole point is to use them). An optional *source* validation curve (``val_every``) reads the
``val`` split of the labelled training folder, only for plotting.

**Exact resume.** Rerunning into the same folder with the same config continues from
``checkpoint.pt``: the data order and augmentation draws are functions of (seed, step), and the
model, optimiser, AMP scaler, hook state and RNG states are restored, so 3 steps + resume 3
steps gives the same weights as 6 steps straight (bit for bit on a CPU with the same thread count;
on CUDA up to cuDNN's nondeterministic kernels). The learning rate is a function of the step, so
it needs no state. A CPU with another thread count sums floats in another order: a resume on
another machine warns, and ``run.json`` names the machine of every stretch.

**Extending.** A :class:`~glua_lib.method.Method` says which labelled folder the segmenter trains
on, whether it also needs unlabelled target batches, and builds a
:class:`~glua_lib.method.StepHook`, which each step receives the source and target
:class:`~glua_lib.method.Batch` (images, logits, encoder features), returns an extra loss for the
segmenter and may update its own networks afterwards; its state is checkpointed with the rest. A
new method is one more entry of :data:`glua_lib.methods.METHODS`.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
from tqdm.auto import tqdm

from glua_lib.checkpoint import (kept_checkpoint, load_checkpoint, rng_state, save_checkpoint,
                                 set_rng_state)
from glua_lib.config import Profile, config_to_dict, get_profile, load_config, save_config
from glua_lib.data import (Augment, SliceDataset, check_slice_size, get_task, list_subjects,
                           load_volumes, read_manifest)
from glua_lib.data.prepared import MANIFEST
from glua_lib.io import atomic_write_text
from glua_lib.method import Batch, StepHook, TrainContext
from glua_lib.methods import get_method
from glua_lib.metrics import MetricAccumulator
from glua_lib.runfolder import (ELAPSED, LOG, TrainingDiverged, append_log, check_resume,
                                step_loader, trim_log)
from glua_lib.runtime import (amp_enabled, autocast, device_description, diverged_advice,
                              get_device, out_of_memory, set_seed)
from glua_lib.seg.deeplab import DeepLabV2
from glua_lib.seg.losses import DiceCELoss
from glua_lib.seg.predict import predict_volume
from glua_lib.seg.unet import UNet, count_parameters

BACKBONES = ("unet", "deeplab")
# The augmentation every run used before the aug_* fields existed (their config.json lacks them):
# a run with these values is named as before (SegConfig.identity), so it is still found.
_AUG_BEFORE = {"aug_rotate_deg": 10.0, "aug_scale": 0.1, "aug_shift": 0.05, "aug_gamma": 0.2,
               "aug_noise": 0.02}

CHECKPOINT, FINAL, CONFIG, RUN_INFO = "checkpoint.pt", "model.pt", "config.json", "run.json"
METHOD_SETTINGS = "method.json"  # the method's own settings (e.g. LocalConfig), when it has any
ORACLE_NOTE = ("ORACLE: trained on TARGET labels, which the unsupervised setting does not have; "
               "a supervised upper bound, not an adaptation method")


# The segmenter's sizes a profile picks by name (Profile.seg_size): SegConfig fields of the U-Net
# and, with backbone="deeplab", of DeepLab-v2.
SEG_SIZES: dict[str, dict[str, dict]] = {
    "small": {"unet": dict(width=16, depth=4, lr=2e-3, log_every=10, checkpoint_every=100),
              "deeplab": dict(width=16, blocks=(1,) * 5)},
    "paper": {"unet": dict(width=32, depth=5, lr=1e-3, log_every=50, checkpoint_every=1000),
              "deeplab": dict(width=64, blocks=(3, 4, 23, 2, 1))},
}


@dataclass(frozen=True)
class SegConfig:
    """Everything that decides a segmenter run (saved as ``config.json`` in the run folder)."""

    method: str = "none"  # a key of METHODS: none, global, local, glua (+ -unmasked), oracle
    seed: int = 0  # seeds weights, data order and augmentation draws
    steps: int = 600  # fixed optimisation budget; the final model is the result (no selection)
    batch_size: int = 8  # 2D slices per step (per domain for methods that also see the target)
    lr: float = 2e-3  # Adam learning rate at step 0, decayed polynomially to 0 at `steps`
    lr_power: float = 0.9  # exponent of the decay: lr · (1 − step/steps) ** lr_power
    weight_decay: float = 1e-5  # Adam L2 weight decay
    backbone: str = "unet"  # "unet" (glua_lib.seg.unet) or "deeplab" (the authors' DeepLab-v2)
    width: int = 16  # U-Net channels of the first level (level i has width · 2^i); DeepLab's stem
    depth: int = 4  # U-Net downsamplings; the slice size must be divisible by 2^depth
    blocks: tuple[int, ...] = (1, 1, 1, 1, 1)  # "deeplab": bottlenecks of layer1 … layer5
    norm: str = "instance"  # "instance" or "batch" normalisation (see glua_lib.seg.unet)
    context: int = 0  # neighbouring slices on each side fed as extra input channels
    augment: bool = True  # seeded rotation/scale/shift/gamma/noise (the aug_* fields below)
    aug_rotate_deg: float = Augment.rotate_deg  # rotation drawn uniformly from ± this (degrees)
    aug_scale: float = Augment.scale  # zoom factor drawn uniformly from 1 ± aug_scale
    aug_shift: float = Augment.shift  # translation drawn uniformly from ± aug_shift × slice size
    aug_gamma: float = Augment.gamma  # intensity gamma exp(U(± aug_gamma)), [0, 1]-rescaled slice
    aug_noise: float = Augment.noise  # Gaussian noise std, relative to the slice's intensity range
    aug_class_offset: float = 0.0  # labelled images: offset std per label class (SynthSeg)
    labelled_only: bool = False  # train only on slices containing some foreground
    ce_weight: float = 1.0  # weight of the cross-entropy term
    dice_weight: float = 1.0  # weight of the soft-Dice term (foreground classes)
    amp: bool = False  # mixed precision (float16 autocast + GradScaler); only takes effect on CUDA
    n_styles: int = 3  # "global": target styles each source volume is rendered in
    styles: str = "kmeans"  # "global": "kmeans" of the real target's style codes or "random" N(0,I)
    train_split: str = "train"  # split of the labelled folder the segmenter trains on
    log_every: int = 10  # steps between log.jsonl lines
    checkpoint_every: int = 100  # steps between checkpoints (and one at the end / on stop)
    val_every: int = 0  # steps between source-validation Dice points (0: off; needs a val split)
    num_workers: int = 0  # DataLoader worker processes
    profile: str = "demo"  # the profile the defaults came from (recorded, not used)
    uses_target_labels: bool = False  # set from the method: True only for "oracle"

    @classmethod
    def from_profile(cls, profile: Profile | str | None = None, **overrides) -> "SegConfig":
        """Defaults sized for a :class:`~glua_lib.config.Profile`, then ``overrides``.

        The profile gives the budget (``seg_steps`` of ``batch_size`` slices), AMP and the
        widths' name (:data:`SEG_SIZES`): ``small`` (``demo``, 64² slices on 2 CPU cores): U-Net
        width 16, depth 4; ``paper`` (``gpu16``, ``full``; 256² on a GPU): width 32, depth 5.
        With ``backbone="deeplab"``: width 16 and one bottleneck per layer (``small``), the
        authors' width 64 and ResNet-101 layout ``(3, 4, 23, 2, 1)`` (``paper``).
        """
        if not isinstance(profile, Profile):
            profile = get_profile(profile)
        try:
            sized = SEG_SIZES[profile.seg_size]
        except KeyError:
            raise ValueError(f"profile {profile.name!r}: unknown seg_size {profile.seg_size!r}; "
                             f"choose one of {sorted(SEG_SIZES)}") from None
        base = dict(
            steps=profile.seg_steps, batch_size=profile.batch_size, n_styles=profile.n_styles,
            num_workers=profile.num_workers, amp=profile.amp, profile=profile.name,
            **sized["unet"],
        )
        if overrides.get("backbone") == "deeplab":
            base.update(sized["deeplab"])
        base.update(overrides)
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = set(base) - fields
        if unknown:
            raise ValueError(f"unknown SegConfig fields {sorted(unknown)}")
        cfg = cls(**base)
        if "method" in overrides:
            cfg = dataclasses.replace(cfg, uses_target_labels=get_method(cfg.method)
                                      .uses_target_labels)
        return cfg

    @classmethod
    def from_dict(cls, data: dict) -> "SegConfig":
        """Inverse of ``config_to_dict`` (``config.json``, checkpoints). A config written before
        the ``aug_*`` fields existed gets the augmentation its run was trained with."""
        data = {**_AUG_BEFORE, **{k: v for k, v in data.items() if k != "_type"}}
        if "ckpt_every" in data:  # its name before the two trainers' names were made one
            data["checkpoint_every"] = data.pop("ckpt_every")
        if "blocks" in data:
            data["blocks"] = tuple(int(b) for b in data["blocks"])
        return cls(**data)

    def augmentation(self) -> Augment | None:
        """The :class:`~glua_lib.data.Augment` this config trains with (``None``: off)."""
        if not self.augment:
            return None
        return Augment(self.aug_rotate_deg, self.aug_scale, self.aug_shift, self.aug_gamma,
                       self.aug_noise, self.aug_class_offset)

    def identity(self) -> dict:
        """``config_to_dict`` without what cannot change the run: the ``aug_*`` fields when
        augmentation is off, or when they are what every run used before they existed. Cached
        runs are named after it (:func:`glua_lib.pipeline.fingerprint`), so a changed
        augmentation trains a new run and an old run is still found. Likewise ``styles`` when
        it is ``"kmeans"``, the only styles before the field existed."""
        data = config_to_dict(self)
        if not self.augment or all(data[k] == v for k, v in _AUG_BEFORE.items()):
            for key in _AUG_BEFORE:
                del data[key]
        if data["aug_class_offset"] == 0:  # off: every run before the field existed
            del data["aug_class_offset"]
        if data["styles"] == "kmeans":
            del data["styles"]
        if data["backbone"] == "unet":  # every run before the field existed was a U-Net
            del data["backbone"], data["blocks"]
        return data

    def validate(self) -> "SegConfig":
        method = get_method(self.method)
        for name in ("steps", "batch_size", "width", "depth", "log_every", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"SegConfig.{name} must be >= 1, got {getattr(self, name)}")
        for name in (*_AUG_BEFORE, "aug_class_offset"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"SegConfig.{name} must be a number >= 0, got {value}")
        if self.aug_scale >= 1:
            raise ValueError(f"SegConfig.aug_scale must be < 1 (zoom 1 ± aug_scale), "
                             f"got {self.aug_scale}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"SegConfig.lr must be a positive number, got {self.lr}")
        if self.backbone not in BACKBONES:
            raise ValueError(f"SegConfig.backbone must be one of {BACKBONES}, "
                             f"got {self.backbone!r}")
        if len(self.blocks) != 5 or any(int(b) < 1 for b in self.blocks):
            raise ValueError(f"SegConfig.blocks must be 5 counts >= 1 (DeepLab's layer1 … "
                             f"layer5), got {self.blocks}")
        if self.norm not in ("instance", "batch"):
            raise ValueError(f"SegConfig.norm must be 'instance' or 'batch', got {self.norm!r}")
        if self.styles not in ("kmeans", "random"):
            raise ValueError(f"SegConfig.styles must be 'kmeans' or 'random', got {self.styles!r}")
        if self.styles != "kmeans" and not method.needs_style_run:
            raise ValueError(f"SegConfig.styles={self.styles!r} is only used by methods that "
                             f"translate the source (global, glua, ...), not {self.method!r}")
        if self.uses_target_labels != method.uses_target_labels:
            raise ValueError(f"SegConfig.uses_target_labels={self.uses_target_labels} contradicts "
                             f"method {self.method!r}")
        return self


# ---------------------------------------------------------------------------------------------
# Data order: a function of (seed, step), so that resuming replays the same batches


# ---------------------------------------------------------------------------------------------
# The training loop


def build_model(config: SegConfig, in_channels: int, n_classes: int) -> UNet | DeepLabV2:
    """The segmenter ``config.backbone`` names, sized by ``config``."""
    if config.backbone == "deeplab":
        return DeepLabV2(in_channels=in_channels, n_classes=n_classes, width=config.width,
                         blocks=tuple(config.blocks), norm=config.norm)
    return UNet(in_channels=in_channels, n_classes=n_classes, width=config.width,
                depth=config.depth, norm=config.norm)


def _check_folder(path: Path, what: str) -> dict:
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: {what} folder does not exist")
    return read_manifest(path)


def _check_settings(path: Path, method: str, settings: dict) -> None:
    """Write the method's settings to ``path``, or refuse a folder whose saved settings differ."""
    if path.is_file():
        try:
            old = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(f"{path}: unreadable method settings ({err}); delete the run "
                             "folder and train again") from None
        if old != settings:
            diff = sorted(k for k in set(old) | set(settings) if old.get(k) != settings.get(k))
            raise ValueError(f"{path}: this run folder holds a {method!r} run with other method "
                             f"settings (differs in {diff}); use another --out or delete it")
    else:
        atomic_write_text(path, json.dumps(settings, indent=2, sort_keys=True) + "\n")


# config fields a run may be resumed with changed: neither changes what it learns from
# (``run.json`` records each stretch's ``amp``; the worker count does not change a batch)
_RESUMABLE = {"amp", "num_workers"}


def train_seg(method: str, source_dir: str | os.PathLike, target_dir: str | os.PathLike,
              out_dir: str | os.PathLike, config: SegConfig | None = None,
              device: torch.device | str | None = None, style_run: str | os.PathLike | None = None,
              progress: bool = True, stop_after: int | None = None) -> Path:
    """Train a segmenter with ``method`` and return the run folder ``out_dir``.

    Args:
        method: ``none``, ``global`` or ``oracle`` (or a registered method).
        source_dir, target_dir: prepared folders of the labelled source modality and of the
            target modality (``oracle`` trains on the target's ``train`` split *with labels*;
            the others never read target labels).
        out_dir: the run folder; an existing one with the same config is resumed (or returned
            as is when complete), one with another config is an error.
        config: a :class:`SegConfig` (default ``SegConfig.from_profile()``); its ``method`` and
            ``uses_target_labels`` are set from ``method``.
        device: a ``torch.device`` or a name for :func:`glua_lib.runtime.get_device`.
        style_run: the trained style model's run folder (``global``, later ``glua``).
        stop_after: checkpoint and return after this global step (for tests and runs split into
            several sessions); the next call resumes.

    Raises:
        ValueError / FileNotFoundError: unknown method, missing folders, mismatched tasks,
            target slices of another size than the training slices (methods that see target
            images), a run folder holding another config; the message names the file.
        TrainingDiverged: the loss became NaN/inf (the last good checkpoint is kept).
        torch.OutOfMemoryError: the device ran out of memory; the message names the batch, the
            checkpoint kept and what to do (:func:`~glua_lib.runtime.out_of_memory`).
    """
    spec = get_method(method)
    config = config if config is not None else SegConfig.from_profile()
    config = dataclasses.replace(config, method=method,
                                 uses_target_labels=spec.uses_target_labels).validate()
    if not isinstance(device, torch.device):
        device = get_device(device)
    source_dir, target_dir, out_dir = Path(source_dir), Path(target_dir), Path(out_dir)
    src_manifest = _check_folder(source_dir, "source")
    tgt_manifest = _check_folder(target_dir, "target")
    if src_manifest["task"] != tgt_manifest["task"]:
        raise ValueError(f"{source_dir} holds task {src_manifest['task']!r} but {target_dir} "
                         f"holds {tgt_manifest['task']!r}")
    if style_run is None and spec.needs_style_run:
        raise ValueError(f"method {method!r} trains on source images translated by a style "
                         "model: pass --style-run RUN_DIR (a trained global style model)")
    if style_run is not None and not spec.needs_style_run:
        raise ValueError(f"--style-run is not used by method {method!r}; leave it out")
    if style_run is not None and not Path(style_run).is_dir():
        raise FileNotFoundError(f"{style_run}: style run folder does not exist")
    task = get_task(src_manifest["task"])

    out_dir.mkdir(parents=True, exist_ok=True)
    old = load_config(SegConfig, out_dir / CONFIG) if (out_dir / CONFIG).is_file() else None
    if old is not None:
        check_resume(out_dir / CONFIG, config_to_dict(old), config_to_dict(config), _RESUMABLE)
    else:
        save_config(config, out_dir / CONFIG)
    settings = spec.settings_for(config)
    if settings:
        _check_settings(out_dir / METHOD_SETTINGS, method, settings)
    if (out_dir / FINAL).is_file():
        final = load_checkpoint(out_dir / FINAL)
        if final.get("step") == config.steps:
            return out_dir
    if old is not None and old != config:  # resumed with other _RESUMABLE fields: the latest
        save_config(config, out_dir / CONFIG)

    ctx = TrainContext(source_dir, target_dir, out_dir, config, device,
                       Path(style_run) if style_run is not None else None, progress)
    train_dir = Path(spec.labelled_data(ctx))
    train_manifest = _check_folder(train_dir, "training")
    if train_manifest["task"] != task.name:
        raise ValueError(f"{train_dir} holds task {train_manifest['task']!r}, not {task.name!r}")
    if not list_subjects(train_dir, config.train_split):
        raise ValueError(f"{train_dir / MANIFEST}: no subjects in split {config.train_split!r}")

    set_seed(config.seed)
    augment = config.augmentation()
    data = SliceDataset(train_dir, split=config.train_split, context=config.context,
                        augment=augment, seed=config.seed, labelled_only=config.labelled_only)
    size = data.volumes[0].image.shape[1:]
    try:  # fail before any training on a slice size the segmenter cannot take
        build_model(dataclasses.replace(config, width=1), 1, 2).eval()(torch.zeros(1, 1, *size))
    except ValueError as err:
        raise ValueError(f"{train_dir}: {err}") from None
    target_data = None
    if spec.uses_target_images:  # unlabelled: the batches' labels are dropped below
        target_data = SliceDataset(  # no class offsets: they would read the target's labels
            target_dir, split="train", context=config.context,
            augment=augment and dataclasses.replace(augment, class_offset=0.0),
            seed=config.seed + 1)
        check_slice_size(target_dir, target_data.volumes[0].image.shape[1:], size,
                         f"the training slices ({train_dir}) are",
                         "prepare source and target with the same --size")

    in_channels = 2 * config.context + 1
    model = build_model(config, in_channels, task.n_classes).to(device)
    hook = spec.make_hook(model, config, device) if spec.make_hook else StepHook()
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr,
                                 weight_decay=config.weight_decay)
    use_amp = amp_enabled(config.amp, device)
    scaler = torch.amp.GradScaler(device.type, enabled=use_amp)
    criterion = DiceCELoss(config.ce_weight, config.dice_weight)

    info = {"method": method, "description": spec.description,
            "uses_target_labels": spec.uses_target_labels,
            **({"note": ORACLE_NOTE} if spec.uses_target_labels else {}),
            "source_dir": str(source_dir.resolve()), "target_dir": str(target_dir.resolve()),
            "train_dir": str(train_dir.resolve()), "train_split": config.train_split,
            "style_run": str(Path(style_run).resolve()) if style_run else None,
            "task": task.name, "classes": list(task.classes), "in_channels": in_channels,
            "model": model.config, "parameters": count_parameters(model),
            "n_train_slices": len(data), "slice_size": list(size), "amp": use_amp}

    start = 0
    machines: list[dict] = []  # the machine of each training stretch, oldest first
    log_path = out_dir / LOG
    if (out_dir / CHECKPOINT).is_file():
        # on the CPU: load_state_dict moves weights and optimiser state to the device (Adam's
        # step counts stay on the CPU, where it reads them), RNG states must be CPU tensors
        ckpt = load_checkpoint(out_dir / CHECKPOINT)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        if use_amp and ckpt["scaler"]:  # empty when the stretch before trained without AMP
            scaler.load_state_dict(ckpt["scaler"])
        hook.load_state_dict(ckpt["hook"])
        set_rng_state(ckpt["rng"])
        start = int(ckpt["step"])
        machines = list(ckpt.get("machines") or _machines_before(out_dir / RUN_INFO))
        trim_log(log_path, start)
    here = {"device": device_description(device), "torch": str(torch.__version__),
            "threads": torch.get_num_threads(), "amp": use_amp}
    if start < config.steps:
        was = machines[-1] if machines else None
        if was is not None and _other_machine(was, here):
            warnings.warn(f"{out_dir / CHECKPOINT}: trained up to step {start} on "
                          f"{was['device']} with torch {was['torch']}, resumed on "
                          f"{here['device']} with torch {here['torch']}; the result will differ "
                          "from an uninterrupted run (floats summed in another order)",
                          stacklevel=2)
        elif was is not None and was.get("amp", use_amp) != use_amp:
            warnings.warn(f"{out_dir / CHECKPOINT}: trained up to step {start} with "
                          f"amp={was['amp']}, resumed with amp={use_amp}; the result will differ "
                          "from an uninterrupted run", stacklevel=2)
        machines.append({"from_step": start, **here})
    atomic_write_text(out_dir / RUN_INFO,
                      json.dumps({**info, "trained_on": machines}, indent=2) + "\n")
    append_log(log_path, {"event": "resume" if start else "start", "at_step": start,
                           "method": method, "uses_target_labels": spec.uses_target_labels,
                           **({"note": ORACLE_NOTE} if spec.uses_target_labels else {}),
                           "device": here["device"], "time": time.time()})

    def save(step: int) -> None:
        save_checkpoint(out_dir / CHECKPOINT, {
            "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "scaler": scaler.state_dict(), "hook": hook.state_dict(), "step": step,
            "rng": rng_state(), "config": config_to_dict(config), "machines": machines})

    stop = config.steps if stop_after is None else min(config.steps, stop_after)
    loader = iter(step_loader(data, config.batch_size, config.seed, start, config.steps,
                              config.num_workers, device))
    tgt_loader = (iter(step_loader(target_data, config.batch_size, config.seed + 1, start,
                                   config.steps, config.num_workers, device))
                  if target_data is not None else None)
    val_vols = _val_volumes(train_dir, config)
    need_feats = bool(hook.feature_levels)
    desc = f"{method} (TARGET LABELS)" if spec.uses_target_labels else method
    bar = tqdm(total=config.steps, initial=start, desc=f"train-seg {desc}", disable=not progress)
    model.train()
    t0, step = time.time(), start
    try:
        for step in range(start, stop):
            lr = config.lr * (1 - step / config.steps) ** config.lr_power
            for group in optimizer.param_groups:
                group["lr"] = lr
            batch = next(loader)
            image = batch["image"].to(device, non_blocking=True)
            label = batch["label"].to(device, non_blocking=True)
            with autocast(device, use_amp):
                out = model(image, return_features=need_feats)
                src = Batch(image, label, *(out if need_feats else (out, None)))
                tgt = None
                if tgt_loader is not None:
                    t_image = next(tgt_loader)["image"].to(device, non_blocking=True)
                    t_out = model(t_image, return_features=need_feats,
                                  feature_mask=hook.target_feature_mask())
                    tgt = Batch(t_image, None, *(t_out if need_feats else (t_out, None)))
                loss, parts = criterion.parts(src.logits, label)
                extra, extra_logs = hook.loss(step, src, tgt)
                loss = loss + extra
            if not bool(torch.isfinite(loss)):
                msg = (f"step {step}: the loss is {float(loss.detach())} (cross-entropy "
                       f"{float(parts['ce'])}, Dice loss {float(parts['dice_loss'])}, extra "
                       f"{extra_logs}); training stopped; "
                       f"{kept_checkpoint(out_dir / CHECKPOINT)}. "
                       + diverged_advice("train-seg", use_amp, config.lr))
                append_log(log_path, {"event": "stopped", "step": step, "reason": msg})
                raise TrainingDiverged(msg)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            hook_logs = hook.after_step(step, src, tgt, scaler)
            done = step + 1
            bar.update(1)
            if done % config.log_every == 0 or done == stop:
                record = {"step": done, "loss": float(loss.detach()), "ce": float(parts["ce"]),
                          "dice_loss": float(parts["dice_loss"]), "lr": lr,
                          ELAPSED: round(time.time() - t0, 3),
                          **{k: float(v) for k, v in {**extra_logs, **hook_logs}.items()}}
                if val_vols and config.val_every and (done % config.val_every == 0
                                                      or done == config.steps):
                    record["source_val_dice"] = _val_dice(model, val_vols, task.classes,
                                                          config, device)
                    model.train()
                append_log(log_path, record)
                bar.set_postfix(loss=f"{record['loss']:.3f}")
            if done % config.checkpoint_every == 0 or done == stop:
                save(done)
    except torch.OutOfMemoryError as err:
        error = out_of_memory(
            err, out_dir, here["device"], step + 1,
            f"batch_size {config.batch_size} slices of {size[0]}×{size[1]}"
            + (" per domain" if tgt_loader is not None else ""),
            kept_checkpoint(out_dir / CHECKPOINT), "train-seg", "seg_cost.py")
        append_log(log_path, {"event": "stopped", "step": step, "reason": str(error)})
        raise error from None
    finally:
        bar.close()
    if stop < config.steps:
        return out_dir
    save_checkpoint(out_dir / FINAL, {
        "model": model.state_dict(), "model_config": dict(model.config), "step": config.steps,
        "config": config_to_dict(config), "backbone": config.backbone,
        "task": task.name, "classes": list(task.classes),
        "context": config.context, "method": method,
        "uses_target_labels": spec.uses_target_labels, "slice_size": list(size),
        "source_modality": src_manifest.get("modality"),
        "target_modality": tgt_manifest.get("modality"),
        **({"feature_mask": hook.final_state()} if hook.final_state() else {})})
    append_log(log_path, {"event": "done", "step": config.steps,
                           ELAPSED: round(time.time() - t0, 3)})
    return out_dir


def _machines_before(info_path: Path) -> list[dict]:
    """The one stretch an older ``run.json`` (``device``/``torch``/``threads`` keys, no
    ``trained_on``) names, as it names it; empty if it names none."""
    info = json.loads(info_path.read_text()) if info_path.is_file() else {}
    if "trained_on" in info or "device" not in info:
        return list(info.get("trained_on", []))
    return [{"from_step": 0, "device": info["device"], "torch": info.get("torch"),
             "threads": info.get("threads")}]


def _other_machine(was: dict, here: dict) -> bool:
    """Would a stretch on ``here`` differ from one on ``was``? An older ``run.json`` names the
    device only as ``cpu``/``cuda:0``: then its kind, and for a CPU the thread count, decide."""
    if was.get("torch") != here["torch"]:
        return True
    if "(" in str(was["device"]):
        return was["device"] != here["device"]
    kind = here["device"].split(" ")[0]
    return was["device"] != kind or (kind == "cpu" and was.get("threads") != here["threads"])


def _val_volumes(train_dir: Path, config: SegConfig) -> list:
    if not config.val_every or not list_subjects(train_dir, "val"):
        return []

    return load_volumes(train_dir, "val")


@torch.no_grad()
def _val_dice(model: UNet, volumes: list, classes: Sequence[str], config: SegConfig,
              device: torch.device) -> float:
    """Mean foreground 3D Dice on the *source* val split (a curve to plot; never for selection)."""

    acc = MetricAccumulator(classes)
    for vol in volumes:
        pred = predict_volume(model, vol.image, config.context, device, amp=config.amp)
        acc.add(vol.subject, pred, vol.label, vol.spacing)
    return float(acc.aggregate()["dice"]["average"]["mean"])


