"""The book's first guess at GLUA's local step: the mask as a weight on the adversarial loss.

Written before the authors' code was found (their mask is attention in the forward pass,
:mod:`glua_lib.local.attention_methods`, the methods ``local`` and ``glua``), and kept as a
clearly named variant: it measured no effect (chapter 4 gives the figures in two lines). Its
methods are entries of the table :data:`glua_lib.methods.METHODS`, built by
:func:`lossweight_method`:

==============================  ==========================================  =================
method                          labelled images the segmenter fits           on target
==============================  ==========================================  =================
``local-lossweight``            source images, source labels                 masked (``M``
                                                                             from ``D_f``)
``local-lossweight-unmasked``   source images, source labels                 ``M ≡ 1``
``glua-lossweight``             source translated to target style (needs     masked
                                ``--style-run``, as ``global``)
``glua-lossweight-unmasked``    as ``glua-lossweight``                       ``M ≡ 1``
==============================  ==========================================  =================

The ``-unmasked`` twins differ from their masked method *only* in ``M ≡ 1``: same discriminator,
same data, same weights and ramp, same random draws. So ``local-lossweight`` −
``local-lossweight-unmasked`` measures this mask's own effect.

**One training step** (:class:`LocalAlignmentHook`; the trainer runs the forward passes):

1. the segmenter's loss gets ``w(step) · L_adv``, where ``L_adv`` is the mean over the watched
   levels of :func:`~glua_lib.local.mask.masked_adversarial_loss` of ``D_f`` on the *target*
   features (labelled "source"), weighted by the mask ``M`` computed from the same outputs
   (detached, :func:`~glua_lib.local.mask.local_mask`). ``D_f``'s parameters are frozen here: the
   segmenter's backward pass does not touch them.
2. after the segmenter's optimiser step, ``D_f`` takes one Adam step on
   :func:`~glua_lib.local.mask.discriminator_loss` of the *detached* source and target features of
   this step (source → 1, target → 0), with its own optimiser and AMP scaler.

**Ramp-up.** ``w(step) = adv_weight · exp(−5 (1 − min(step / ramp_steps, 1))²)`` (the sigmoid-
shaped ramp of Laine & Aila, 2017): ≈ 0.7 % of ``adv_weight`` at step 0, all of it from
``ramp_steps`` on, so the discriminator and the segmenter find their feet before the alignment
pulls hard.

**Stability.** A non-finite alignment loss, or one above ``explode_limit``, is handed to the
trainer as ``inf``, which stops with :class:`~glua_lib.runfolder.TrainingDiverged` (its message
lists the hook's logged terms, ``adv`` and ``adv_exploded`` among them) and keeps the last good
checkpoint; a non-finite discriminator loss raises the same error from ``after_step``.

**Exact resume.** The hook's ``state_dict`` holds the discriminator, its optimiser and scaler
states, the :class:`LocalConfig` it ran with (a resumed run with other settings is refused) and
the snapshots below; ``D_f`` is created right after the segmenter, from the seeded RNG, so
``n`` steps + resume ``m`` steps equals ``n + m`` steps straight.

**Snapshots** (for "is the mask right?" over training, :mod:`glua_lib.local.runs`): at
``LocalConfig.snapshots`` evenly spaced steps ``0, steps/n, …`` the hook keeps a copy of the
segmenter's encoder levels ``0 … max(levels)`` and of ``D_f`` (a few MB in ``checkpoint.pt``);
the end of training is the checkpoint itself.

**Settings** live in :class:`LocalConfig` (not in :class:`~glua_lib.seg.train.SegConfig`): its
defaults are derived from the run's ``SegConfig`` (profile, steps, depth), so a method name plus
its ``SegConfig`` still determines a run. :func:`lossweight_method` builds a variant with other
settings under a new name (e.g. ``local-lossweight-top25`` with ``top_k=0.25``); add it to
:data:`glua_lib.methods.METHODS` to train it by name.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import torch

if TYPE_CHECKING:  # types only: the trainer imports the table of methods, which imports this
    from glua_lib.seg.train import SegConfig

from glua_lib.local.discriminator import FeatureDiscriminator
from glua_lib.local.mask import (GANS, NORMS, SCORES, discriminator_loss, gap_score, local_mask,
                                 masked_adversarial_loss, source_probability)
from glua_lib.runtime import amp_enabled, autocast, diverged_advice
from glua_lib.config import PROFILES
from glua_lib.method import Batch, Method, StepHook, TrainContext, check_same_settings
from glua_lib.runfolder import TrainingDiverged
from glua_lib.seg.unet import UNet


@dataclass(frozen=True)
class LocalConfig:
    """Settings of the masked local alignment (``None`` fields are derived by :meth:`for_run`)."""

    masked: bool = True  # False: M ≡ 1 everywhere (the "-unmasked" ablation)
    levels: tuple[int, ...] | None = None  # encoder levels aligned; None: (depth − 2, depth − 1)
    adv_weight: float | None = None  # weight of the alignment loss after the ramp; None: profile
    ramp_steps: int | None = None  # length of the sigmoid ramp-up of the weight; None: steps // 4
    gan: str = "bce"  # "bce" (logits, sigmoid = P(source)) or "lsgan" (least squares on labels)
    score: str = "abs"  # gap score: "abs" |2p − 1| or "adv" per-location adversarial loss
    norm: str = "max"  # per-image normalisation of the score: "max" or "softmax"
    temperature: float = 1.0  # τ of the mask; < 1 sharper, > 1 flatter
    top_k: float = 1.0  # fraction of each image's locations kept by the mask (1: all)
    d_width: int | None = None  # hidden channels of each discriminator head; None: profile
    d_lr: float = 2e-4  # Adam learning rate of the discriminator (constant)
    d_betas: tuple[float, float] = (0.5, 0.999)  # Adam betas of the discriminator
    explode_limit: float = 1e3  # an alignment loss above this stops training (it diverged)
    snapshots: int | None = None  # evenly spaced (encoder, D_f) snapshots; None: profile

    @classmethod
    def for_run(cls, config: SegConfig, **overrides) -> "LocalConfig":
        """The settings for a segmenter run with ``config``; ``None`` fields get defaults.

        Defaults: ``levels = (depth − 2, depth − 1)`` (demo, 64² slices: 16×16×64 and
        8×8×128 features; full, 256²: 32×32×256 and 16×16×512), ``ramp_steps = steps // 4``;
        ``demo``: ``adv_weight = 0.05``, ``d_width = 32``, 4 snapshots; ``full``:
        ``adv_weight = 0.01``, ``d_width = 64``, 2 snapshots. (Chosen before any run, not tuned
        on target labels.)
        """
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = set(overrides) - fields
        if unknown:
            raise ValueError(f"unknown LocalConfig fields {sorted(unknown)}")
        full = paper_sized(config)
        derived = dict(levels=(max(config.depth - 2, 0), config.depth - 1),
                       adv_weight=0.01 if full else 0.05, ramp_steps=config.steps // 4,
                       d_width=64 if full else 32, snapshots=2 if full else 4)
        cfg = cls(**overrides)
        fill = {k: v for k, v in derived.items() if getattr(cfg, k) is None}
        cfg = dataclasses.replace(cfg, **fill)
        return dataclasses.replace(cfg, levels=tuple(int(x) for x in cfg.levels),
                                   d_betas=tuple(float(x) for x in cfg.d_betas)).validate(config)

    def validate(self, config: SegConfig | None = None) -> "LocalConfig":
        if any(getattr(self, k) is None for k in ("levels", "adv_weight", "ramp_steps", "d_width",
                                                  "snapshots")):
            raise ValueError("LocalConfig has unset fields; build it with LocalConfig.for_run")
        if not self.levels or len(set(self.levels)) != len(self.levels):
            raise ValueError(f"LocalConfig.levels must be distinct levels, got {self.levels}")
        if config is not None and config.backbone != "unet":
            raise ValueError(f"the loss-weighting local methods watch U-Net encoder levels; "
                             f"backbone {config.backbone!r} needs the attention methods "
                             "(local, glua)")
        if config is not None and not all(0 <= lv <= config.depth for lv in self.levels):
            raise ValueError(f"LocalConfig.levels {self.levels} must lie in 0..{config.depth} "
                             f"(the U-Net's depth)")
        for name, choices in (("gan", GANS), ("score", SCORES), ("norm", NORMS)):
            if getattr(self, name) not in choices:
                raise ValueError(f"LocalConfig.{name} must be one of {choices}, "
                                 f"got {getattr(self, name)!r}")
        if not (self.adv_weight >= 0 and self.temperature > 0 and 0 < self.top_k <= 1
                and self.d_lr > 0 and self.explode_limit > 0 and self.ramp_steps >= 0
                and self.d_width >= 1 and self.snapshots >= 0):
            raise ValueError(f"LocalConfig has an out-of-range value: {self}")
        return self

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v
                for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict) -> "LocalConfig":
        data = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**data).validate()


def rampup(step: int, ramp_steps: int) -> float:
    """The sigmoid-shaped ramp ``exp(−5 (1 − t)²)``, ``t = min(step / ramp_steps, 1)``; 1 when
    ``ramp_steps`` is 0."""
    if ramp_steps <= 0:
        return 1.0
    t = min(max(step / ramp_steps, 0.0), 1.0)
    return float(math.exp(-5.0 * (1.0 - t) ** 2))


class LocalAlignmentHook(StepHook):
    """The masked (or unmasked) local feature alignment of one run (module docstring).

    Args:
        model: the segmenter (its ``feature_channels`` size the discriminator heads).
        config: the run's :class:`SegConfig` (``steps``, ``amp``).
        device: where the discriminator lives.
        local: the :class:`LocalConfig` (``LocalConfig.for_run(config)`` if ``None``).
    """

    def __init__(self, model: UNet, config: SegConfig, device: torch.device,
                 local: LocalConfig | None = None):
        self.local = (local or LocalConfig.for_run(config)).validate(config)
        self.model, self.steps, self.device = model, config.steps, torch.device(device)
        self.lr = config.lr  # the segmenter's, for the advice when D_f's loss diverges
        self.feature_levels = tuple(self.local.levels)
        self.disc = FeatureDiscriminator([model.feature_channels[lv] for lv in self.feature_levels],
                                         self.local.d_width).to(self.device)
        self.optimizer = torch.optim.Adam(self.disc.parameters(), lr=self.local.d_lr,
                                          betas=self.local.d_betas)
        self.scaler = torch.amp.GradScaler(self.device.type,
                                           enabled=amp_enabled(config.amp, self.device))
        n = self.local.snapshots
        self.snapshot_steps = sorted({round(i * self.steps / n) for i in range(n)}) if n else []
        self.snapshots: list[dict] = []
        if 0 in self.snapshot_steps:
            self._snapshot(0)

    # -- the segmenter's side ------------------------------------------------------------------

    def weight(self, step: int) -> float:
        """``w(step)``: the alignment loss's weight (``adv_weight`` times the ramp)."""
        return self.local.adv_weight * rampup(step, self.local.ramp_steps)

    def masks(self, d_outs: list[torch.Tensor]) -> list[torch.Tensor | None]:
        """The masks ``M`` (``B×1×h×w``, detached) for discriminator outputs on target features;
        ``None`` per level when the run is unmasked."""
        if not self.local.masked:
            return [None] * len(d_outs)
        return [local_mask(gap_score(d, self.local.score, self.local.gan), self.local.norm,
                           self.local.temperature, self.local.top_k) for d in d_outs]

    def loss(self, step: int, source: Batch, target: Batch | None):
        if target is None or target.features is None:
            raise RuntimeError("the local alignment hook needs target features every step "
                               "(a Method with uses_target_images=True)")
        self.disc.requires_grad_(False)  # the segmenter's backward leaves D_f alone
        try:
            outs = [self.disc.head(j, target.features[lv])
                    for j, lv in enumerate(self.feature_levels)]
        finally:
            self.disc.requires_grad_(True)
        masks = self.masks(outs)
        terms = [masked_adversarial_loss(d, m, self.local.gan) for d, m in zip(outs, masks)]
        adv = torch.stack([t.float() for t in terms]).mean()
        w = self.weight(step)
        value = float(adv.detach())
        logs = {"adv": value, "adv_w": w}
        with torch.no_grad():
            for lv, d, m in zip(self.feature_levels, outs, masks):
                logs[f"p_src_tgt_L{lv}"] = float(source_probability(d.float(), self.local.gan)
                                                 .mean())
                if m is not None:
                    logs[f"mask_mean_L{lv}"] = float(m.mean())
        if not math.isfinite(value) or value > self.local.explode_limit:
            logs["adv_exploded"] = value
            logs["adv_limit"] = self.local.explode_limit
            # the trainer stops on a non-finite loss, naming these logs, and keeps the checkpoint
            return adv.new_tensor(float("inf")), logs
        return w * adv, logs

    # -- the discriminator's side --------------------------------------------------------------

    def after_step(self, step: int, source: Batch, target: Batch | None,
                   scaler: torch.amp.GradScaler) -> dict[str, float]:
        src = [source.features[lv].detach() for lv in self.feature_levels]
        tgt = [target.features[lv].detach() for lv in self.feature_levels]
        with autocast(self.device, self.scaler.is_enabled()):
            d_src, d_tgt = self.disc(src), self.disc(tgt)
            losses = [discriminator_loss(s, t, self.local.gan) for s, t in zip(d_src, d_tgt)]
            d_loss = torch.stack([x.float() for x in losses]).mean()
        if not bool(torch.isfinite(d_loss)):
            raise TrainingDiverged(
                f"step {step}: the feature discriminator's loss is {float(d_loss.detach())}; "
                "training stopped and the last good checkpoint is kept. "
                + diverged_advice("train-seg", self.scaler.is_enabled(), self.lr)
                + f" The discriminator's own learning rate is LocalConfig.d_lr "
                  f"({self.local.d_lr:g}).")
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(d_loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        with torch.no_grad():
            p_s = torch.cat([source_probability(d.float(), self.local.gan).flatten()
                             for d in d_src])
            p_t = torch.cat([source_probability(d.float(), self.local.gan).flatten()
                             for d in d_tgt])
            acc = 0.5 * (float((p_s > 0.5).float().mean()) + float((p_t < 0.5).float().mean()))
        done = step + 1
        if done in self.snapshot_steps:
            self._snapshot(done)
        return {"d_loss": float(d_loss.detach()), "d_acc": acc}

    # -- snapshots and state -------------------------------------------------------------------

    def _snapshot(self, step: int) -> None:
        prefixes = tuple(f"down.{i}." for i in range(max(self.feature_levels) + 1))
        encoder = {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()
                   if k.startswith(prefixes)}
        disc = {k: v.detach().cpu().clone() for k, v in self.disc.state_dict().items()}
        self.snapshots = [s for s in self.snapshots if s["step"] != step]
        self.snapshots.append({"step": int(step), "encoder": encoder, "disc": disc})

    def state_dict(self) -> dict:
        return {"local_config": self.local.to_dict(), "disc_config": dict(self.disc.config),
                "disc": self.disc.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scaler": self.scaler.state_dict(), "snapshots": list(self.snapshots)}

    def load_state_dict(self, state: dict) -> None:
        check_same_settings(LocalConfig.from_dict(state["local_config"]), self.local,
                            "local alignment")
        self.disc.load_state_dict(state["disc"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scaler.is_enabled() and state["scaler"]:  # empty if saved without AMP
            self.scaler.load_state_dict(state["scaler"])
        self.snapshots = list(state["snapshots"])


# ---------------------------------------------------------------------------------------------
# registration


def lossweight_method(name: str, description: str,
                      labelled_data: Callable[[TrainContext], Path],
                      needs_style_run: bool = False, **local_overrides) -> Method:
    """A local-alignment method with the mask as a loss weight, for the table of methods.

    ``labelled_data``: the folder the segmenter fits (:func:`glua_lib.methods.source_images`, or
    :func:`glua_lib.methods.translated_source` with ``needs_style_run=True``).
    ``local_overrides``: :class:`LocalConfig` fields (``masked=False``, ``top_k=0.25``, …), fixed
    for this name, so the name identifies the run.
    """
    unknown = set(local_overrides) - {f.name for f in dataclasses.fields(LocalConfig)}
    if unknown:
        raise ValueError(f"unknown LocalConfig fields {sorted(unknown)}")

    def make_hook(model: UNet, config: SegConfig, device: torch.device) -> LocalAlignmentHook:
        return LocalAlignmentHook(model, config, device,
                                  LocalConfig.for_run(config, **local_overrides))

    return Method(
        name, description, labelled_data=labelled_data, needs_style_run=needs_style_run,
        uses_target_images=True, make_hook=make_hook,
        settings=lambda config: LocalConfig.for_run(config, **local_overrides).to_dict())


def paper_sized(config: SegConfig) -> bool:
    """Whether a run's segmenter has the paper's sizes (its profile's ``seg_size``, as ``gpu16``
    and ``full``), which the local step's defaults follow; a profile this library does not know
    gets the ``demo`` defaults."""
    profile = PROFILES.get(config.profile)
    return profile is not None and profile.seg_size == "paper"


__all__ = ["LocalAlignmentHook", "LocalConfig", "lossweight_method", "paper_sized", "rampup"]
