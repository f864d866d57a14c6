"""The contract between the segmenter's trainer and a training method: what a method is.

A :class:`Method` says which labelled folder the segmenter trains on, whether it also draws
unlabelled target batches, and builds a :class:`StepHook`, which each step receives the source
and target :class:`Batch` (images, logits, encoder features), returns an extra loss for the
segmenter and may update its own networks afterwards; its state is checkpointed with the rest.
The trainer (:func:`glua_lib.seg.train.train_seg`) knows only this contract; the methods
themselves are one explicit table, :data:`glua_lib.methods.METHODS`.

This module imports nothing of the library, so the trainer, the local step and the table of
methods can all import it.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

import torch

if TYPE_CHECKING:  # types only: the trainer imports the table of methods, which imports this
    from glua_lib.seg.train import SegConfig


@dataclass
class Batch:
    """One domain's part of a training step, as a :class:`StepHook` sees it."""

    image: torch.Tensor  # B×C×H×W on the device
    label: torch.Tensor | None  # B×H×W class indices; None for unlabelled (target) batches
    logits: torch.Tensor  # B×K×H×W
    features: list[torch.Tensor] | None  # encoder features (UNet.forward docs), if requested


class StepHook:
    """Extra per-step behaviour of a method (the base class adds nothing).

    ``feature_levels``: encoder levels the hook needs; when non-empty the batches carry
    ``features``. ``target_feature_mask`` gives the ``feature_mask`` callable of the target
    images' forward pass (``UNet.forward``; ``None``: unmasked). ``loss`` runs inside the
    autocast region after the forward passes and returns a term added to the segmenter loss plus
    loggable floats; ``after_step`` runs after the segmenter's optimiser step (e.g. a
    discriminator update on detached features). ``final_state`` is kept in the final model
    (``model.pt``, key ``feature_mask``) when not empty: what the method needs at test time.
    """

    feature_levels: Sequence[int] = ()

    def target_feature_mask(self):
        return None

    def final_state(self) -> dict:
        return {}

    def loss(self, step: int, source: Batch, target: Batch | None
             ) -> tuple[torch.Tensor | float, dict[str, float]]:
        return 0.0, {}

    def after_step(self, step: int, source: Batch, target: Batch | None,
                   scaler: torch.amp.GradScaler) -> dict[str, float]:
        return {}

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


def check_same_settings(saved, current, what: str) -> None:
    """Refuse a hook state saved with other settings: a ``ValueError`` naming the fields in which
    ``saved`` (the settings dataclass read back from a checkpoint) differs from ``current`` (this
    method's, of the same dataclass); ``what`` names the settings in the message (``"attention"``).
    """
    if saved != current:
        diff = [f.name for f in dataclasses.fields(current)
                if getattr(saved, f.name) != getattr(current, f.name)]
        raise ValueError(f"the checkpoint's {what} settings differ in {diff} from this method's; "
                         "use another run folder")


@dataclass
class TrainContext:
    """What a method's data function gets to decide on its labelled training folder."""

    source_dir: Path
    target_dir: Path
    out_dir: Path
    config: SegConfig
    device: torch.device
    style_run: Path | None
    progress: bool


@dataclass(frozen=True)
class Method:
    """A training method: its labelled data, whether it sees the target, and its step hook."""

    name: str
    description: str
    labelled_data: Callable[[TrainContext], Path]  # the folder with labels the segmenter fits
    uses_target_labels: bool = False  # True only for the oracle: flagged everywhere
    needs_style_run: bool = False  # needs --style-run (a trained global style model)
    uses_target_images: bool = False  # also draws unlabelled target batches every step
    # builds the step hook from the segmenter (UNet or DeepLabV2), its config and the device
    make_hook: Callable[[torch.nn.Module, SegConfig, torch.device], StepHook] | None = None
    settings: Callable[[SegConfig], dict] | None = None  # the hook's own settings for a run
    # masks target images at test time too: builds the model's feature_mask callable from the
    # final model's "feature_mask" state (a model.pt without it is refused: retrain)
    load_feature_mask: Callable[[dict, torch.device], Callable] | None = None

    def settings_for(self, config: SegConfig) -> dict:
        """The method's own settings for a run with ``config`` (JSON-ready; ``{}`` if none):
        saved as ``method.json`` next to the run and part of the pipeline's folder names, so a
        changed method default trains a new run instead of reusing a stale one."""
        return dict(self.settings(config)) if self.settings else {}


__all__ = ["Batch", "Method", "StepHook", "TrainContext", "check_same_settings"]
