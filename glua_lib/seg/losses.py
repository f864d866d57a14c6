"""The segmentation loss: cross-entropy + soft Dice.

Soft Dice of class ``c`` over the whole batch (all pixels of all slices together, so a class
absent from one slice does not make that slice's term explode)::

    dice_c = (2·Σ p_c·g_c + ε) / (Σ p_c + Σ g_c + ε),      loss_dice = 1 − mean_c dice_c

with ``p`` the softmax probabilities, ``g`` the one-hot target and ``ε = 1e-5``. A class absent
from both target and prediction gets ``dice_c = 1`` (no penalty). By default the mean runs over
the foreground classes only (the background is left to the cross-entropy term, and would
otherwise dominate). Total: ``ce_weight · CE + dice_weight · loss_dice``.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

SMOOTH = 1e-5


def soft_dice_loss(probs: torch.Tensor, target: torch.Tensor, include_background: bool = False,
                   smooth: float = SMOOTH) -> torch.Tensor:
    """``1 − mean_c dice_c`` of probabilities ``B×K×H×W`` against class indices ``B×H×W``."""
    if probs.ndim != 4 or target.shape != (probs.shape[0], *probs.shape[2:]):
        raise ValueError(f"probs B×K×H×W and target B×H×W expected, got {tuple(probs.shape)} "
                         f"and {tuple(target.shape)}")
    onehot = F.one_hot(target.long(), probs.shape[1]).permute(0, 3, 1, 2).to(probs.dtype)
    dims = (0, 2, 3)
    inter = (probs * onehot).sum(dims)
    denom = probs.sum(dims) + onehot.sum(dims)
    dice = (2 * inter + smooth) / (denom + smooth)
    if not include_background:
        dice = dice[1:]
    return 1 - dice.mean()


class DiceCELoss(nn.Module):
    """``ce_weight · CE(logits, target) + dice_weight · soft_dice_loss(softmax(logits), target)``.

    Computed in float32 even under autocast. ``forward`` returns the total; :meth:`parts` also
    returns the two terms (detached tensors) for logging.
    """

    def __init__(self, ce_weight: float = 1.0, dice_weight: float = 1.0,
                 include_background: bool = False):
        super().__init__()
        self.ce_weight, self.dice_weight = ce_weight, dice_weight
        self.include_background = include_background

    def parts(self, logits: torch.Tensor, target: torch.Tensor):
        logits = logits.float()
        ce = F.cross_entropy(logits, target.long())
        dice = soft_dice_loss(logits.softmax(1), target, self.include_background)
        total = self.ce_weight * ce + self.dice_weight * dice
        return total, {"ce": ce.detach(), "dice_loss": dice.detach()}

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.parts(logits, target)[0]
