"""The segmenter: a 2D U-Net that can also hand out its encoder features.

Architecture (``depth = L``, ``width = C``)::

    level 0  H×W        conv block  C        ───────────── skip ──────────┐
    level 1  H/2×W/2    conv block  2C       ──── skip ──────┐            │
    ...                                                      │            │
    level L  H/2^L      conv block  C·2^L   (bottleneck) → up + concat → ... → 1×1 conv → K logits

A conv block is two ``3×3 conv → norm → LeakyReLU(0.01)``; going down is a 2×2 max-pool, going
up a nearest-neighbour ×2 upsampling followed by a ``1×1`` conv that halves the channels.

Normalisation: ``"instance"`` (default, affine ``InstanceNorm2d``) or ``"batch"``. Instance norm
is the default because (i) its statistics are per image, so a segmenter behaves identically in
training and at test time whatever the batch mixes, which matters once the adversarial methods
(``local``, ``glua``) push source and target batches through the same network, and (ii) it
works with the small batches of the CPU demo. It also removes per-image intensity offsets and
scales, which narrows the *global* intensity gap a little for every method (the ``none``
baseline included), but not contrast inversions, which are what the modalities differ by.

Features: ``forward(x, return_features=True)`` returns ``(logits, feats)`` where ``feats[i]`` is
the output of encoder level ``i`` (after its conv block, before pooling), shape
``B × C·2^i × H/2^i × W/2^i`` for ``i = 0 … L``; ``feats[L]`` is the bottleneck.
:attr:`UNet.feature_channels` lists the channel counts, for a feature discriminator.

Feature mask (GLUA's local step, :mod:`glua_lib.local.attention`): ``forward(x,
feature_mask=fn)`` calls ``fn(i, f_i)`` on each encoder level's output; where it returns a mask
``m`` (``B×1×h×w``), ``f_i + m ⊙ f_i`` is what goes on, down the encoder and across the skip
connection, while ``feats[i]`` stays the unmasked ``f_i`` (what the discriminator judges).
"""
from __future__ import annotations

import torch
from torch import nn

NORMS = ("instance", "batch")


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    raise ValueError(f"unknown norm {kind!r}; choose one of {NORMS}")


class ConvBlock(nn.Sequential):
    """Two ``3×3 conv → norm → LeakyReLU`` layers."""

    def __init__(self, c_in: int, c_out: int, norm: str):
        super().__init__(
            nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), _norm(norm, c_out),
            nn.LeakyReLU(0.01, inplace=True),
            nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), _norm(norm, c_out),
            nn.LeakyReLU(0.01, inplace=True),
        )


class UNet(nn.Module):
    """2D U-Net returning logits ``B×K×H×W`` (and optionally the encoder features).

    Args:
        in_channels: input channels (``2·context + 1`` adjacent slices).
        n_classes: output classes ``K``, background included.
        width: channels ``C`` of the first level; level ``i`` has ``C·2^i``.
        depth: number of 2× downsamplings ``L``; ``H`` and ``W`` must be divisible by ``2^L``.
        norm: ``"instance"`` or ``"batch"`` (see the module docstring).
    """

    def __init__(self, in_channels: int = 1, n_classes: int = 5, width: int = 16,
                 depth: int = 4, norm: str = "instance"):
        super().__init__()
        if in_channels < 1 or n_classes < 2 or width < 1 or depth < 1:
            raise ValueError(f"bad U-Net sizes: in_channels={in_channels}, n_classes={n_classes}, "
                             f"width={width}, depth={depth}")
        _norm(norm, 1)  # validates the name
        self.config = {"in_channels": in_channels, "n_classes": n_classes, "width": width,
                       "depth": depth, "norm": norm}
        chans = [width * 2 ** i for i in range(depth + 1)]
        self.feature_channels: list[int] = chans
        self.down = nn.ModuleList(
            [ConvBlock(in_channels if i == 0 else chans[i - 1], chans[i], norm)
             for i in range(depth + 1)])
        self.pool = nn.MaxPool2d(2)
        self.reduce = nn.ModuleList([nn.Conv2d(chans[i + 1], chans[i], 1) for i in range(depth)])
        self.up = nn.ModuleList([ConvBlock(2 * chans[i], chans[i], norm) for i in range(depth)])
        self.head = nn.Conv2d(chans[0], n_classes, 1)

    @property
    def depth(self) -> int:
        return self.config["depth"]

    def feature_prefixes(self, level: int) -> tuple[str, ...]:
        """The ``state_dict`` key prefixes of the layers that compute the features of ``level``
        (``down.0`` … ``down.level``): what a snapshot of the local step keeps."""
        return tuple(f"down.{i}." for i in range(int(level) + 1))

    def forward(self, x: torch.Tensor, return_features: bool = False, feature_mask=None):
        """Logits ``B×K×H×W`` of ``B×C×H×W`` input (and the unmasked encoder features with
        ``return_features``); ``feature_mask(level, f) -> B×1×h×w mask or None`` masks the
        target path (module docstring)."""
        if x.ndim != 4:
            raise ValueError(f"expected B×C×H×W input, got shape {tuple(x.shape)}")
        k = 2 ** self.depth
        if x.shape[-2] % k or x.shape[-1] % k:
            raise ValueError(f"slice size {tuple(x.shape[-2:])} must be divisible by 2^depth = {k}")
        if self.config["norm"] == "instance" and min(x.shape[-2:]) < 2 * k:
            raise ValueError(f"slice size {tuple(x.shape[-2:])} is too small for depth "
                             f"{self.depth} with instance norm (needs >= {2 * k}: the bottleneck "
                             "must keep 2×2 pixels); lower the depth")
        feats, skips = [], []
        h = x
        for i, block in enumerate(self.down):
            h = block(h if i == 0 else self.pool(h))
            feats.append(h)
            m = feature_mask(i, h) if feature_mask is not None else None
            if m is not None:  # GLUA's attention: f + m ⊙ f, m broadcast over channels
                h = h + m * h
            skips.append(h)
        for i in reversed(range(self.depth)):
            h = self.reduce[i](nn.functional.interpolate(h, scale_factor=2, mode="nearest"))
            h = self.up[i](torch.cat([skips[i], h], dim=1))
        logits = self.head(h)
        return (logits, feats) if return_features else logits


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
