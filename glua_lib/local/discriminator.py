"""The feature-level discriminator ``D_f``: per location, "did this feature come from the source?".

``FeatureDiscriminator(in_channels, width)`` holds one small fully-convolutional head per encoder
level it watches (``in_channels`` lists the channel counts of those levels, e.g.
``[unet.feature_channels[l] for l in levels]``). A head is::

    3×3 conv (c_l → width) → LeakyReLU(0.2) → 3×3 conv (width → width) → LeakyReLU(0.2)
        → 1×1 conv (width → 1)

with stride 1 and padding 1, so its output keeps the feature map's resolution: a *logit* per
location, ``B×1×h×w`` for features ``B×c_l×h×w``; ``sigmoid(logit)`` is the probability that the
feature at that location came from the **source** domain. Each output location sees a 5×5 window
of the feature map (a small receptive field, so the verdict stays *local*). There is no
normalisation layer: instance norm would erase exactly the per-image statistics the domains differ
by, and batch norm would mix the source and target batches.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn


class FeatureHead(nn.Sequential):
    """One level's head: features ``B×c×h×w`` → logits ``B×1×h×w`` (see the module docstring)."""

    def __init__(self, in_channels: int, width: int):
        super().__init__(
            nn.Conv2d(in_channels, width, 3, padding=1), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(width, width, 3, padding=1), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(width, 1, 1),
        )


class FeatureDiscriminator(nn.Module):
    """Per-location domain discriminator on encoder features, one head per watched level.

    Args:
        in_channels: channel counts of the watched feature levels, in order (an ``int`` for a
            single level).
        width: hidden channels of each head.

    ``forward(feats)`` takes a list of feature maps, ``feats[j]`` of shape
    ``B×in_channels[j]×h_j×w_j`` (a single tensor for a single head), and returns the matching
    list of logits ``B×1×h_j×w_j`` (a single tensor for a single tensor); ``sigmoid`` of a logit
    is ``P(source)``.
    """

    def __init__(self, in_channels: int | Sequence[int], width: int = 32):
        super().__init__()
        channels = [in_channels] if isinstance(in_channels, int) else list(in_channels)
        if not channels or width < 1 or any(c < 1 for c in channels):
            raise ValueError(f"bad discriminator sizes: in_channels={in_channels}, width={width}")
        self.config = {"in_channels": channels, "width": width}
        self.heads = nn.ModuleList([FeatureHead(c, width) for c in channels])

    def head(self, j: int, feature: torch.Tensor) -> torch.Tensor:
        """Logits ``B×1×h×w`` of head ``j`` for one feature map ``B×c_j×h×w``."""
        if feature.ndim != 4 or feature.shape[1] != self.config["in_channels"][j]:
            raise ValueError(f"head {j} expects B×{self.config['in_channels'][j]}×h×w features, "
                             f"got shape {tuple(feature.shape)}")
        return self.heads[j](feature)

    def forward(self, feats: torch.Tensor | Sequence[torch.Tensor]):
        if isinstance(feats, torch.Tensor):
            if len(self.heads) != 1:
                raise ValueError(f"this discriminator has {len(self.heads)} heads; pass a list")
            return self.head(0, feats)
        if len(feats) != len(self.heads):
            raise ValueError(f"expected {len(self.heads)} feature maps, got {len(feats)}")
        return [self.head(j, f) for j, f in enumerate(feats)]


__all__ = ["FeatureDiscriminator", "FeatureHead"]
