"""A trained local run's masks, and target slices to look at them on (chapter 3).

:func:`target_slices` (target slices with their gap maps and labels).

The authors' local step (:mod:`glua_lib.local.attention_methods`): :func:`load_attention_run`
(segmenter, ``D1``, ``D2`` and settings of a run, at the end or a snapshot step),
:func:`attention_masks` (``D1(f)`` and the mask at a step) and :func:`attention_view` (on target
images: ``D1(f)``, the mask ``m = |tanh(D1(f))|``, the features before and after ``f + m ⊙ f``,
the predictions with and without the mask and ``D2``'s view of each).

The first version's loss-weight mask (:mod:`glua_lib.local.methods`): :func:`compute_masks`
(``P(source)``, the gap score and the mask per watched level, from the run's latest checkpoint or a
training snapshot), :func:`mask_auc_over_training` (the AUC of :mod:`glua_lib.local.measure` at
every snapshot and at the end), :func:`load_local_run` and :func:`snapshot_steps`.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from glua_lib.checkpoint import load_checkpoint
from glua_lib.data import list_subjects, load_extra, load_volume
from glua_lib.local.attention import FeatureMask, OutputDiscriminator
from glua_lib.local.attention_methods import AttentionConfig
from glua_lib.local.discriminator import FeatureDiscriminator
from glua_lib.local.mask import gap_score, local_mask, source_probability
from glua_lib.local.measure import mask_gap_auc
from glua_lib.local.methods import LocalConfig
from glua_lib.seg.deeplab import DeepLabV2
from glua_lib.seg.unet import UNet


# ---------------------------------------------------------------------------------------------
# masks of a trained run


def target_slices(target_dir: str | os.PathLike, split: str = "test", n: int = 8,
                  context: int = 0, subjects: Sequence[str] | None = None,
                  foreground_only: bool = True) -> dict:
    """``n`` evenly spaced target slices with their true gap maps and labels (for overlays).

    Slices are taken from the subjects of ``split`` (or ``subjects``) in order, restricted to
    slices that contain some foreground when ``foreground_only``. Returns a dict: ``image``
    float32 tensor ``n×(2·context+1)×H×W`` (neighbours as channels, as in training), ``gap``
    float32 ``n×H×W``, ``label`` uint8 ``n×H×W``, ``subject`` and ``slice`` lists.
    The folder must carry ``gap`` maps (the phantoms do).
    """
    target_dir = Path(target_dir)
    names = list(subjects) if subjects is not None else list_subjects(target_dir, split)
    if not names:
        raise ValueError(f"{target_dir}: no subjects in split {split!r}")
    candidates = []
    vols = {}
    for name in names:
        path = target_dir / f"{name}.npz"
        vol = load_volume(path)
        vols[name] = (vol, load_extra(path, "gap"))
        candidates += [(name, z) for z in range(len(vol.image))
                       if not foreground_only or vol.label[z].any()]
    if not candidates:
        raise ValueError(f"{target_dir}: no slices with foreground in {names}")
    pick = np.unique(np.linspace(0, len(candidates) - 1, min(n, len(candidates))).round()
                     .astype(int))
    images, gaps, labels, subj, zs = [], [], [], [], []
    for i in pick:
        name, z = candidates[i]
        vol, gap = vols[name]
        idx = np.clip(np.arange(z - context, z + context + 1), 0, len(vol.image) - 1)
        images.append(vol.image[idx])
        gaps.append(gap[z])
        labels.append(vol.label[z])
        subj.append(name)
        zs.append(int(z))
    return {"image": torch.from_numpy(np.stack(images).astype(np.float32)),
            "gap": np.stack(gaps).astype(np.float32), "label": np.stack(labels),
            "subject": subj, "slice": zs}


@dataclass
class LocalMaps:
    """One encoder level's maps for a batch, each ``B×1×h×w`` float32 arrays."""

    level: int
    prob: np.ndarray  # P(source) from the feature discriminator
    score: np.ndarray  # the local gap score g (LocalConfig.score)
    mask: np.ndarray  # the local feature mask M (as the masked method computes it)


def _run_state(run_dir: Path, device: torch.device) -> tuple[dict, dict, dict]:
    """A segmenter run's ``run.json``, latest checkpoint and its method hook's state."""
    info_path = run_dir / "run.json"
    if not info_path.is_file():
        raise FileNotFoundError(f"{info_path}: not a segmenter run folder")
    info = json.loads(info_path.read_text())
    ckpt = load_checkpoint(run_dir / "checkpoint.pt", map_location=device)
    return info, ckpt, ckpt.get("hook") or {}


def _run_parts(run_dir: Path, device: torch.device):
    info, ckpt, hook = _run_state(run_dir, device)
    if "local_config" not in hook:
        raise ValueError(f"{run_dir / 'checkpoint.pt'}: not a local-alignment run (method "
                         f"{info.get('method')!r} has no feature discriminator)")
    return info, ckpt, hook


def snapshot_steps(run_dir: str | os.PathLike) -> list[int]:
    """Steps at which a local run (either mechanism) has (encoder, discriminator) states: its
    snapshots and the step of its latest checkpoint (the end, for a finished run)."""
    run_dir = Path(run_dir)
    info, ckpt, hook = _run_state(run_dir, torch.device("cpu"))
    if "local_config" not in hook and "attention_config" not in hook:
        raise ValueError(f"{run_dir / 'checkpoint.pt'}: not a local-alignment run (method "
                         f"{info.get('method')!r} has no feature discriminator)")
    return sorted({int(s["step"]) for s in hook.get("snapshots", [])} | {int(ckpt["step"])})


def _load_snapshot(run_dir: Path, hook: dict, step: int, model) -> dict:
    """Load the encoder of the snapshot at ``step`` into ``model`` (the decoder stays the
    latest) and return the snapshot, whose discriminator the caller loads.

    Raises:
        ValueError: no snapshot at ``step`` (the message lists the steps with one), or one that
            does not fit the model.
    """
    snaps = {int(s["step"]): s for s in hook.get("snapshots", [])}
    if step not in snaps:
        raise ValueError(f"{run_dir}: no snapshot at step {step}; steps with one: "
                         f"{snapshot_steps(run_dir)}")
    result = model.load_state_dict(snaps[step]["encoder"], strict=False)
    if result.unexpected_keys:
        raise ValueError(f"{run_dir}: snapshot {step} does not fit the model "
                         f"({result.unexpected_keys[:3]} …)")
    return snaps[step]


def load_local_run(run_dir: str | os.PathLike, step: int | None = None,
                   device: torch.device | str = "cpu"):
    """The segmenter, the feature discriminator and the ``LocalConfig`` of a local-alignment run.

    ``step=None``: the latest checkpoint (the end of a finished run); otherwise a step of
    :func:`snapshot_steps`, whose encoder levels ``0 … max(levels)`` come from the snapshot (the
    decoder is the latest one; it plays no part in the masks). Both nets are in eval mode.
    """

    run_dir, device = Path(run_dir), torch.device(device)
    info, ckpt, hook = _run_parts(run_dir, device)
    local = LocalConfig.from_dict(hook["local_config"])
    model = UNet(**info["model"]).to(device)
    model.load_state_dict(ckpt["model"])
    disc = FeatureDiscriminator(hook["disc_config"]["in_channels"],
                                hook["disc_config"]["width"]).to(device)
    disc.load_state_dict(hook["disc"])
    if step is not None and step != int(ckpt["step"]):
        disc.load_state_dict(_load_snapshot(run_dir, hook, step, model)["disc"])
    return model.eval(), disc.eval(), local


@torch.no_grad()
def compute_masks(run_dir: str | os.PathLike, images, step: int | None = None,
                  device: torch.device | str = "cpu") -> dict[int, LocalMaps]:
    """Per watched level, ``P(source)``, the gap score and the mask for target ``images``.

    Args:
        run_dir: a ``local``/``glua`` (or ``-unmasked``) run folder.
        images: ``B×C×H×W`` (tensor or array; ``C = 2·context + 1``), e.g.
            ``target_slices(...)["image"]``.
        step: ``None`` for the latest checkpoint, or a snapshot step (:func:`snapshot_steps`).

    The mask is computed with the run's ``LocalConfig`` (score, normalisation, temperature,
    top-k) even for an ``-unmasked`` run, whose training did not use it: it shows what the
    discriminator would have prioritised.
    """
    model, disc, local = load_local_run(run_dir, step, device)
    x = torch.as_tensor(np.asarray(images) if not isinstance(images, torch.Tensor) else images,
                        dtype=torch.float32).to(device)
    if x.ndim != 4:
        raise ValueError(f"images must be B×C×H×W, got shape {tuple(x.shape)}")
    _, feats = model(x, return_features=True)
    out = {}
    for j, lv in enumerate(local.levels):
        d = disc.head(j, feats[lv])
        score = gap_score(d, local.score, local.gan)
        mask = local_mask(score, local.norm, local.temperature, local.top_k)
        out[lv] = LocalMaps(lv, source_probability(d, local.gan).cpu().numpy(),
                            score.cpu().numpy(), mask.cpu().numpy())
    return out


def mask_auc_over_training(run_dir: str | os.PathLike, slices: dict, quantile: float = 0.8,
                           threshold: float | None = None, at: str = "feature",
                           device: torch.device | str = "cpu") -> list[dict]:
    """The mask-vs-gap AUC (:func:`mask_gap_auc`) at every snapshot step and at the end, for a
    run of either mechanism.

    ``slices``: :func:`target_slices` output (``image`` and ``gap``). Returns one record per
    (step, level): ``{"step", "level", "auc_mask", "auc_score", "mask_mean"}`` — the AUC of the
    mask and of the discriminator's raw output. For the authors' step (:func:`attention_masks`)
    the score is ``D1(f)`` and the mask ``|tanh(D1(f))|``, which ranks locations by how far
    ``D1(f)`` is from 0 (either sign); for the loss weight (:func:`compute_masks`) the mask is the
    gap score normalised per image and cut by top-k.
    """
    records = []
    attention = "attention_config" in _run_state(Path(run_dir), torch.device("cpu"))[2]
    for step in snapshot_steps(run_dir):
        maps = (attention_masks if attention else compute_masks)(run_dir, slices["image"], step,
                                                                  device)
        for lv, m in maps.items():
            records.append({"step": step, "level": lv,
                            "auc_mask": mask_gap_auc(m.mask, slices["gap"], quantile, threshold,
                                                     at),
                            "auc_score": mask_gap_auc(m.score, slices["gap"], quantile,
                                                      threshold, at),
                            "mask_mean": float(m.mask.mean())})
    return records


# ---------------------------------------------------------------------------------------------
# the authors' local step: D1, the mask as attention, D2


@dataclass
class AttentionMaps:
    """One masked level's maps for a batch of target images, each ``B×1×h×w`` float32."""

    level: int
    score: np.ndarray  # D1(f): ≈ 1 where D1 recognises a target feature, ≈ 0 a source-like one
    mask: np.ndarray  # m = |tanh(D1(f))|, in [0, 1)
    feature: np.ndarray  # mean |f| over channels, the unmasked features D1 judges
    boosted: np.ndarray  # mean |f + m ⊙ f| over channels, what goes on through the network


@dataclass
class AttentionView:
    """What the authors' local step does to a batch of target images (:func:`attention_view`)."""

    maps: dict[int, AttentionMaps]  # per masked level
    prob: np.ndarray  # B×K×H×W softmax predictions with the mask (the run's test-time output)
    prob_unmasked: np.ndarray  # B×K×H×W the same network without the mask
    d2: np.ndarray | None  # B×1×h'×w' D2(prob): ≈ 1 "looks like a target prediction"
    d2_unmasked: np.ndarray | None  # D2 on the unmasked predictions


def load_attention_run(run_dir: str | os.PathLike, device: torch.device | str = "cpu",
                       step: int | None = None):
    """The segmenter, ``D1`` (a :class:`FeatureMask`), ``D2`` (``None`` if the run has none) and
    the :class:`AttentionConfig` of a run of the authors' local step (``local``, ``glua`` and
    their variants and ``-unmasked`` twins, whose ``D1`` trained but never masked), in eval mode.

    ``step=None``: the latest checkpoint (the end of a finished run); otherwise a step of
    :func:`snapshot_steps`, whose encoder (up to the masked level) and ``D1`` come from the
    snapshot; the decoder and ``D2`` are the latest ones (a snapshot shows the mask, not the
    predictions, as it was).

    Raises:
        FileNotFoundError: not a segmenter run folder; ValueError: a run of another method, or
        no snapshot at ``step``.
    """
    run_dir, device = Path(run_dir), torch.device(device)
    info, ckpt, hook = _run_state(run_dir, device)
    if "attention_config" not in hook:
        raise ValueError(f"{run_dir / 'checkpoint.pt'}: not a run of the authors' local step "
                         f"(method {info.get('method')!r} has no D1)")
    att = AttentionConfig.from_dict(hook["attention_config"])
    net = DeepLabV2 if ckpt["config"].get("backbone") == "deeplab" else UNet
    model = net(**info["model"]).to(device)
    model.load_state_dict(ckpt["model"])
    d1 = FeatureMask({lv: model.feature_channels[lv] for lv in att.levels}).to(device)
    d1.load_state_dict(hook["d1"])
    d2 = None
    if att.output_disc:
        d2 = OutputDiscriminator(model.config["n_classes"], att.d2_width).to(device)
        d2.load_state_dict(hook["d2"])
        d2.eval()
    if step is not None and step != int(ckpt["step"]):
        d1.load_state_dict(_load_snapshot(run_dir, hook, step, model)["d1"])
    return model.eval(), d1.eval(), d2, att


def _maps(d1: FeatureMask, level: int, f: torch.Tensor) -> AttentionMaps:
    score = d1.score(level, f)
    m = torch.tanh(score).abs()
    return AttentionMaps(level, score.cpu().numpy(), m.cpu().numpy(),
                         f.abs().mean(1, keepdim=True).cpu().numpy(),
                         (f + m * f).abs().mean(1, keepdim=True).cpu().numpy())


def _as_batch(images, device: torch.device) -> torch.Tensor:
    x = torch.as_tensor(np.asarray(images) if not isinstance(images, torch.Tensor) else images,
                        dtype=torch.float32).to(device)
    if x.ndim != 4:
        raise ValueError(f"images must be B×C×H×W, got shape {tuple(x.shape)}")
    return x


@torch.no_grad()
def attention_masks(run_dir: str | os.PathLike, images, step: int | None = None,
                    device: torch.device | str = "cpu") -> dict[int, AttentionMaps]:
    """Per masked level, ``D1(f)``, the mask and the features before and after ``f + m ⊙ f`` for
    target ``images`` (``B×C×H×W``), at the end of training (``step=None``) or at a snapshot step
    (:func:`snapshot_steps`): how the mask looked then."""
    model, d1, _, att = load_attention_run(run_dir, device, step)
    _, feats = model(_as_batch(images, torch.device(device)), return_features=True)
    return {lv: _maps(d1, lv, feats[lv]) for lv in att.levels}


@torch.no_grad()
def attention_view(run_dir: str | os.PathLike, images,
                   device: torch.device | str = "cpu") -> AttentionView:
    """The authors' local step on target ``images`` (``B×C×H×W``, e.g.
    ``target_slices(...)["image"]``), as a trained run applies it: per masked level ``D1(f)``,
    ``m`` and the features before and after ``f + m ⊙ f``; the predictions with the mask (what
    ``predict`` gives on the target) and without it; and ``D2``'s view of both. For an
    ``-unmasked`` twin the mask is what its ``D1`` would have applied."""
    model, d1, d2, att = load_attention_run(run_dir, device)
    x = _as_batch(images, torch.device(device))
    logits, feats = model(x, return_features=True, feature_mask=d1)
    plain = model(x)
    maps = {lv: _maps(d1, lv, feats[lv]) for lv in att.levels}
    prob, prob_plain = logits.softmax(1), plain.softmax(1)
    return AttentionView(maps, prob.cpu().numpy(), prob_plain.cpu().numpy(),
                         d2(prob).cpu().numpy() if d2 is not None else None,
                         d2(prob_plain).cpu().numpy() if d2 is not None else None)


__all__ = ["AttentionMaps", "AttentionView", "LocalMaps", "attention_masks", "attention_view",
           "compute_masks", "load_attention_run", "load_local_run", "mask_auc_over_training",
           "snapshot_steps", "target_slices"]
