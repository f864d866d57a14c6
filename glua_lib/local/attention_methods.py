"""GLUA's local step as its authors built it, as training methods: ``local``, ``glua`` and kin.

=========================  =======================================  ====================
method                     labelled images the segmenter fits       target path
=========================  =======================================  ====================
``local``                  source images, source labels             ``f + m ⊙ f``
``local-unmasked``         as ``local``                             ``f`` (no attention)
``local-every-level``      as ``local``                             ``f + m ⊙ f`` at every
                                                                    U-Net level
``local-detached``         as ``local``                             ``f + m ⊙ f``, ``m``
                                                                    without gradient
``glua``                   source translated to target style        ``f + m ⊙ f``
                           (``--style-run``, as ``global``)
``glua-unmasked``          as ``glua``                              ``f`` (no attention)
=========================  =======================================  ====================

All train the same two discriminators with the same losses (:mod:`glua_lib.local.attention`
has the equations); the ``-unmasked`` twins differ only in never applying the mask, so
``glua`` − ``glua-unmasked`` measures the attention itself. The masked methods keep ``D1`` in
``model.pt`` and mask target images at test time too
(:func:`glua_lib.seg.predict.load_feature_mask`).

**Snapshots** (chapter 3 follows the mask through training, :mod:`glua_lib.local.runs`): at
``AttentionConfig.snapshots`` evenly spaced steps ``0, steps/n, …`` the hook keeps a copy of the
encoder layers up to the masked level and of ``D1`` (a few MB in ``checkpoint.pt``); the end of
training is the checkpoint itself. Taking them reads no random numbers.

**One training step** (:class:`FeatureAttentionHook`; the trainer runs the forward passes): the
target batch goes through the segmenter with :meth:`~FeatureAttentionHook.target_feature_mask`,
which computes ``D1(f)`` (``D1`` frozen) and returns ``m = |tanh(D1(f))|`` at each watched
level; the segmenter's loss gets ``λ · [Σ_levels MSE(D1(f_t), 0) + MSE(D2(softmax(p_t)), 0)]``
(the ``D1`` outputs of the mask reused: the same values and graph as calling ``D1`` again); after
the segmenter's optimiser step, ``D1`` and ``D2`` take one Adam step on ``MSE(D(source), 0) +
MSE(D(target), 1)`` of this step's detached features and softmax predictions.

The segmenter keeps the book's loss and optimiser for every method (cross-entropy + Dice, Adam
with polynomial decay; the authors use ``0.5·CE + 0.5·Dice`` and SGD for DeepLab-v2): all methods
of one ablation share one segmenter and one recipe. The discriminators follow the authors: Adam,
lr ``1e-4``, betas ``(0.9, 0.99)``, the segmenter's polynomial decay; ``λ = 0.01``.

Its methods are entries of the table :data:`glua_lib.methods.METHODS`, built by
:func:`attention_method`.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import torch

from glua_lib.local.attention import (SOURCE, FeatureMask, OutputDiscriminator,
                                      discriminator_step_loss, lsgan_loss)
from glua_lib.runtime import amp_enabled, autocast, diverged_advice
from glua_lib.local.methods import paper_sized
from glua_lib.method import Batch, Method, StepHook, TrainContext, check_same_settings
from glua_lib.runfolder import TrainingDiverged

if TYPE_CHECKING:  # types only: the trainer imports the table of methods, which imports this
    from glua_lib.seg.train import SegConfig


def _deepest(config: SegConfig) -> int:
    """The deepest watched level: the U-Net's bottleneck ``depth``; DeepLab-v2 has one, 0
    (``layer4``)."""
    return 0 if config.backbone == "deeplab" else config.depth


@dataclass(frozen=True)
class AttentionConfig:
    """Settings of the authors' local step (``None`` fields are derived by :meth:`for_run`)."""

    masked: bool = True  # False: D1 and D2 train, but the target path is never masked (twin)
    where: str = "deepest"  # levels masked when `levels` is None: "deepest" or "every" level
    levels: tuple[int, ...] | None = None  # encoder levels masked and judged by D1; None: where
    detach_mask: bool = False  # True: no gradient through m (the authors let it flow)
    adv_weight: float = 0.01  # λ of the segmenter's two adversarial terms (the authors' 0.01)
    output_disc: bool = True  # the output-space discriminator D2 (False: D1 alone)
    d2_width: int | None = None  # channels of D2's first layer; None: 64 full, 16 demo
    d_lr: float = 1e-4  # Adam learning rate of D1 and D2 at step 0 (the authors'), poly-decayed
    d_betas: tuple[float, float] = (0.9, 0.99)  # Adam betas of D1 and D2 (the authors')
    explode_limit: float = 1e3  # an adversarial loss above this stops training (it diverged)
    snapshots: int | None = None  # evenly spaced (encoder, D1) snapshots; None: 4 demo, 2 full

    @classmethod
    def for_run(cls, config: SegConfig, **overrides) -> "AttentionConfig":
        """The settings for a segmenter run with ``config``: ``levels`` from ``where``,
        ``"deepest"``: ``(depth,)``, the U-Net's bottleneck, its deepest features (the authors
        mask DeepLab-v2's deepest, ``layer4``, all the classifier sees; in a U-Net the skip
        connections carry the other levels around it), ``"every"``: ``0 … depth``, every level
        that reaches the decoder; ``d2_width`` 64 at the paper's sizes (``gpu16``, ``full``), 16 in
        ``demo``; ``snapshots`` likewise 2 and 4 (chapter 3 follows the mask through training).
        Not tuned on target labels."""
        unknown = set(overrides) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown AttentionConfig fields {sorted(unknown)}")
        cfg = cls(**overrides)
        fill = {}
        if cfg.where not in ("deepest", "every"):
            raise ValueError(f"AttentionConfig.where must be 'deepest' or 'every', "
                             f"got {cfg.where!r}")
        deepest = _deepest(config)
        if cfg.levels is None:
            fill["levels"] = ((deepest,) if cfg.where == "deepest"
                              else tuple(range(deepest + 1)))
        if cfg.d2_width is None:
            fill["d2_width"] = 64 if paper_sized(config) else 16
        if cfg.snapshots is None:
            fill["snapshots"] = 2 if paper_sized(config) else 4
        cfg = dataclasses.replace(cfg, **fill)
        return dataclasses.replace(cfg, levels=tuple(int(x) for x in cfg.levels),
                                   d_betas=tuple(float(x) for x in cfg.d_betas)).validate(config)

    def validate(self, config: SegConfig | None = None) -> "AttentionConfig":
        if self.levels is None or self.d2_width is None or self.snapshots is None:
            raise ValueError("AttentionConfig has unset fields; build it with "
                             "AttentionConfig.for_run")
        if not self.levels or len(set(self.levels)) != len(self.levels):
            raise ValueError(f"AttentionConfig.levels must be distinct levels, got {self.levels}")
        if config is not None and not all(0 <= lv <= _deepest(config) for lv in self.levels):
            raise ValueError(f"AttentionConfig.levels {self.levels} must lie in "
                             f"0..{_deepest(config)} (the segmenter's watched levels)")
        if not (self.adv_weight >= 0 and self.d_lr > 0 and self.d2_width >= 1
                and self.explode_limit > 0 and self.snapshots >= 0):
            raise ValueError(f"AttentionConfig has an out-of-range value: {self}")
        return self

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v
                for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict) -> "AttentionConfig":
        return cls(**{k: tuple(v) if isinstance(v, list) else v
                      for k, v in data.items()}).validate()


class FeatureAttentionHook(StepHook):
    """The authors' local step for one run (module docstring).

    Args:
        model: the segmenter (``feature_channels`` and ``config["n_classes"]`` size ``D1``, ``D2``).
        config: the run's :class:`SegConfig` (``steps``, ``lr_power``, ``amp``, ``lr``).
        device: where the discriminators live.
        att: the :class:`AttentionConfig` (``AttentionConfig.for_run(config)`` if ``None``).
    """

    def __init__(self, model, config: SegConfig, device: torch.device,
                 att: AttentionConfig | None = None):
        self.att = (att or AttentionConfig.for_run(config)).validate(config)
        self.device = torch.device(device)
        self.steps, self.power, self.seg_lr = config.steps, config.lr_power, config.lr
        self.feature_levels = tuple(self.att.levels)
        self.d1 = FeatureMask({lv: model.feature_channels[lv] for lv in self.feature_levels}
                              ).to(self.device)
        self.d2 = (OutputDiscriminator(model.config["n_classes"], self.att.d2_width)
                   .to(self.device) if self.att.output_disc else None)
        params = [*self.d1.parameters(), *(self.d2.parameters() if self.d2 else [])]
        self.optimizer = torch.optim.Adam(params, lr=self.att.d_lr, betas=self.att.d_betas)
        self.scaler = torch.amp.GradScaler(self.device.type,
                                           enabled=amp_enabled(config.amp, self.device))
        self._scores: dict[int, torch.Tensor] = {}  # D1(f_t) of this step's target forward
        self._masks: dict[int, torch.Tensor] = {}  # m of this step (detached, for the log)
        self.model = model  # read by the snapshots only
        n = self.att.snapshots
        self.snapshot_steps = sorted({round(i * self.steps / n) for i in range(n)}) if n else []
        self.snapshots: list[dict] = []  # {"step", "encoder", "d1"}: the mask as it was then
        if 0 in self.snapshot_steps:
            self._snapshot(0)

    def _discriminators(self) -> list[torch.nn.Module]:
        return [self.d1, *([self.d2] if self.d2 is not None else [])]

    def _freeze(self, frozen: bool) -> None:
        for d in self._discriminators():
            d.requires_grad_(not frozen)

    # -- the segmenter's side ------------------------------------------------------------------

    def target_feature_mask(self):
        self._scores, self._masks = {}, {}
        self._freeze(True)  # the segmenter's backward leaves D1 and D2 alone; loss() undoes it
        return self._mask if self.att.masked else None

    def _mask(self, level: int, f: torch.Tensor) -> torch.Tensor | None:
        if level not in self.feature_levels:
            return None
        score = self.d1.score(level, f.detach() if self.att.detach_mask else f)
        m = torch.tanh(score).abs()  # attention_mask(score), kept in the autograd graph
        if self.att.detach_mask:
            m = m.detach()
        else:
            self._scores[level] = score  # reused by the adversarial term: same values and graph
        self._masks[level] = m.detach()
        return m

    def loss(self, step: int, source: Batch, target: Batch | None):
        if target is None or target.features is None:
            raise RuntimeError("the attention hook needs target features every step "
                               "(a Method with uses_target_images=True)")
        try:
            self._freeze(True)
            feat = [lsgan_loss(self._scores.get(lv) if lv in self._scores
                               else self.d1.score(lv, target.features[lv]), SOURCE)
                    for lv in self.feature_levels]
            adv_f = torch.stack(feat).sum()
            adv_p = (lsgan_loss(self.d2(torch.softmax(target.logits.float(), 1)), SOURCE)
                     if self.d2 is not None else adv_f.new_zeros(()))
        finally:
            self._freeze(False)
        adv = adv_f + adv_p
        value = float(adv.detach())
        logs = {"adv_feature": float(adv_f.detach()), "adv_output": float(adv_p.detach()),
                "adv_w": self.att.adv_weight}
        logs.update({f"mask_mean_L{lv}": float(m.float().mean()) for lv, m in self._masks.items()})
        if not math.isfinite(value) or value > self.att.explode_limit:
            logs.update(adv_exploded=value, adv_limit=self.att.explode_limit)
            return adv.new_tensor(float("inf")), logs  # the trainer stops and names these logs
        return self.att.adv_weight * adv, logs

    # -- the discriminators' side --------------------------------------------------------------

    def after_step(self, step: int, source: Batch, target: Batch | None,
                   scaler: torch.amp.GradScaler) -> dict[str, float]:
        lr = self.att.d_lr * (1 - step / self.steps) ** self.power
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        with autocast(self.device, self.scaler.is_enabled()):
            d1 = torch.stack([discriminator_step_loss(
                self.d1.score(lv, source.features[lv].detach()),
                self.d1.score(lv, target.features[lv].detach()))
                for lv in self.feature_levels]).sum()
            d2 = (discriminator_step_loss(
                self.d2(torch.softmax(source.logits.detach().float(), 1)),
                self.d2(torch.softmax(target.logits.detach().float(), 1)))
                if self.d2 is not None else d1.new_zeros(()))
            d_loss = d1 + d2
        if not bool(torch.isfinite(d_loss)):
            raise TrainingDiverged(
                f"step {step}: the discriminators' loss is {float(d_loss.detach())}; training "
                "stopped and the last good checkpoint is kept. "
                + diverged_advice("train-seg", self.scaler.is_enabled(), self.seg_lr)
                + f" The discriminators' own learning rate is AttentionConfig.d_lr "
                  f"({self.att.d_lr:g}).")
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(d_loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self._scores = {}
        if step + 1 in self.snapshot_steps:
            self._snapshot(step + 1)
        return {"d1_loss": float(d1.detach()), "d2_loss": float(d2.detach())}

    # -- state ---------------------------------------------------------------------------------

    def _snapshot(self, step: int) -> None:
        """Keep a copy of what computes the mask after ``step`` steps: the encoder layers up to
        the deepest masked level and ``D1`` (the decoder is not kept; the mask does not use it)."""
        prefixes = self.model.feature_prefixes(max(self.feature_levels))
        encoder = {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()
                   if k.startswith(prefixes)}
        d1 = {k: v.detach().cpu().clone() for k, v in self.d1.state_dict().items()}
        self.snapshots = [s for s in self.snapshots if s["step"] != step]
        self.snapshots.append({"step": int(step), "encoder": encoder, "d1": d1})

    def final_state(self) -> dict:
        """``D1``, which a masked run needs at test time; nothing for an unmasked twin."""
        return {"attention_config": self.att.to_dict(), **self.d1.to_state()} \
            if self.att.masked else {}

    def state_dict(self) -> dict:
        return {"attention_config": self.att.to_dict(), "d1": self.d1.state_dict(),
                "d2": self.d2.state_dict() if self.d2 is not None else {},
                "optimizer": self.optimizer.state_dict(), "scaler": self.scaler.state_dict(),
                "snapshots": list(self.snapshots)}

    def load_state_dict(self, state: dict) -> None:
        check_same_settings(AttentionConfig.from_dict(state["attention_config"]), self.att,
                            "attention")
        self.d1.load_state_dict(state["d1"])
        if self.d2 is not None:
            self.d2.load_state_dict(state["d2"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scaler.is_enabled() and state["scaler"]:  # empty if saved without AMP
            self.scaler.load_state_dict(state["scaler"])
        self.snapshots = list(state["snapshots"])


def load_feature_mask(state: dict, device: torch.device) -> FeatureMask:
    """A masked run's test-time ``feature_mask`` from its ``model.pt`` state
    (:meth:`FeatureAttentionHook.final_state`)."""
    return FeatureMask.from_state(state, device)


def attention_method(name: str, description: str,
                     labelled_data: Callable[[TrainContext], Path],
                     needs_style_run: bool = False, **overrides) -> Method:
    """A method with the authors' local step, for the table of methods.

    ``labelled_data``: the folder the segmenter fits (:func:`glua_lib.methods.source_images`, or
    :func:`glua_lib.methods.translated_source` with ``needs_style_run=True``). ``overrides``:
    :class:`AttentionConfig` fields fixed for this name (``masked=False``, …).
    """
    unknown = set(overrides) - {f.name for f in dataclasses.fields(AttentionConfig)}
    if unknown:
        raise ValueError(f"unknown AttentionConfig fields {sorted(unknown)}")
    masked = overrides.get("masked", True)

    def make_hook(model, config: SegConfig, device: torch.device) -> FeatureAttentionHook:
        return FeatureAttentionHook(model, config, device,
                                    AttentionConfig.for_run(config, **overrides))

    return Method(
        name, description, labelled_data=labelled_data, needs_style_run=needs_style_run,
        uses_target_images=True, make_hook=make_hook,
        settings=lambda config: {"local_step": "attention",
                                 **AttentionConfig.for_run(config, **overrides).to_dict()},
        load_feature_mask=load_feature_mask if masked else None)


__all__ = ["AttentionConfig", "FeatureAttentionHook", "attention_method", "load_feature_mask"]
