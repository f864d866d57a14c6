"""The GLUA authors' segmenter: a DeepLab-v2 (dilated ResNet + ASPP), with the U-Net's interface.

The GLUA paper's code (``kiwi12138/GLUA``, ``JBHI_2023/model/deeplab_multi.py``) segments with
a ResNet-101 DeepLab-v2 of output stride 8. This is the same network written in this library's
style, from scratch, so that it can stand in for :class:`~glua_lib.seg.unet.UNet` anywhere.

Architecture (``width = C``, ``blocks = (n1, …, n5)``, input ``B×in_channels×H×W``)::

    stem    7×7 conv /2 (C) → norm → ReLU → 3×3 max-pool /2          H/4×W/4
    layer1  n1 bottlenecks, planes C,   stride 1                     H/4   → 4C
    layer2  n2 bottlenecks, planes 2C,  stride 2                     H/8   → 8C
    layer3  n3 bottlenecks, planes 4C,  dilation 2                   H/8   → 16C
    layer4  n4 bottlenecks, planes 8C,  dilation 4                   H/8   → 32C  = f  (watched)
              │
              ├── feature_mask(0, f) = m ?  →  f' = f + m ⊙ f        (else f' = f)
              ▼
    layer5  n5 bottlenecks, planes 8C,  dilation 4                   H/8   → 32C
    ASPP    Σ of four 3×3 convs 32C → K, dilation = padding = 6, 12, 18, 24     H/8 × W/8
    upsample bilinear (align_corners=False) to H×W                   → logits B×K×H×W

A bottleneck is ``1×1 conv → norm → ReLU → 3×3 conv (dilated) → norm → ReLU → 1×1 conv (×4
channels) → norm``, added to its input (through a ``1×1 conv → norm`` when the first block of a
layer changes the stride, the channels or the dilation) and passed through a ReLU. As in the
authors' (Caffe-derived) code, a layer's stride sits on the first ``1×1`` conv.

The authors' sizes are ``width=64, blocks=(3, 4, 23, 2, 1)`` (the default here: ResNet-101's
3-4-23, then 2 blocks in ``layer4`` and the extra one-block ``layer5``; 47.1 M parameters with
1 input channel and 5 classes).
:data:`DEMO_DEEPLAB` is a small variant for 64×64 training on a CPU.

Where this differs from the authors' code, on purpose:

* **The ASPP sums all four branches.** Their ``Classifier_Module.forward`` has its ``return``
  inside the loop, so only the first two branches (dilations 6 and 12) are ever summed and the
  other two get no gradient. We sum all four, as DeepLab-v2 describes.
* **The feature mask is a callable.** Their ``forward(x, D, domain)`` computes, for target
  images only, ``a = |tanh(D1(f))|`` from a discriminator ``D`` and continues with ``f + a ⊙ f``.
  Here ``forward`` takes ``feature_mask(level, f) -> m | None`` instead, so the caller (the
  ``glua`` method) decides per batch whether to mask and with what; ``level`` is always 0, the
  only watched level (:attr:`DeepLabV2.feature_channels`). Nothing is detached: gradients flow
  through ``m`` into whatever produced it.
* **Input channels are taken as they come** (their pipeline copies a grey slice to 3 channels
  for the ImageNet weights); we train from scratch, so ``in_channels`` is the slice count.
* **Trained from scratch, normalisation learnable.** They start from ImageNet weights and
  freeze every BatchNorm's affine parameters; here ``norm="batch"`` (theirs) or ``"instance"``
  (affine ``InstanceNorm2d``, the U-Net's default, see :mod:`glua_lib.seg.unet`) and all
  parameters train. Backbone convs get Kaiming-normal weights (``fan_out``, ReLU gain, as in
  torchvision's ResNet), norms weight 1 and bias 0; the ASPP convs get weights ``N(0, 0.01)`` as
  theirs, with PyTorch's default bias initialisation.
* **Exact output stride 8.** Their max-pool is ``3×3 /2, padding 1, ceil_mode=True``, which on
  an even-sized map gives one extra row and column (a 32×32 slice would give a 5×5 ``f``). We
  use ``floor`` rounding (torchvision's), which gives the same sizes as theirs on odd inputs
  (their 321×321 crops: 41×41) and exactly ``H/8×W/8`` on the sizes allowed here.

Sizes: ``H`` and ``W`` must be multiples of 8 and at least 16 (``f`` keeps >= 2×2 pixels).
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F

from glua_lib.seg.unet import NORMS, _norm

#: Output stride: ``f`` and the ASPP logits are ``H/8 × W/8``.
OUTPUT_STRIDE = 8
#: Dilations (= paddings) of the four ASPP branches.
ASPP_DILATIONS = (6, 12, 18, 24)
#: Small sizes for 64×64 slices on a CPU: one bottleneck per layer, 1.14 M parameters (1-slice
#: input, 5 classes; the demo U-Net, ``width=16, depth=4``, has 1.81 M), watched feature ``f``
#: of 512 channels at 8×8. A training step (forward + backward, batch 8, 64×64, one CPU thread)
#: takes about half the demo U-Net's time. (On an 8×8 map the ASPP branches of dilation >= 8 only
#: see their centre tap, so three of the four act as ``1×1`` convs; at this size that is the
#: price of the authors' output stride.)
DEMO_DEEPLAB = dict(width=16, blocks=(1, 1, 1, 1, 1))

FeatureMask = Callable[[int, torch.Tensor], "torch.Tensor | None"]


def _is_int(n) -> bool:
    return isinstance(n, int) and not isinstance(n, bool)


class Bottleneck(nn.Module):
    """``1×1 → 3×3 (dilated) → 1×1`` residual block, ``planes → 4·planes`` channels out."""

    expansion = 4

    def __init__(self, c_in: int, planes: int, norm: str, stride: int = 1, dilation: int = 1,
                 project: bool = False):
        super().__init__()
        c_out = planes * self.expansion
        self.conv1 = nn.Conv2d(c_in, planes, 1, stride=stride, bias=False)
        self.norm1 = _norm(norm, planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=dilation, dilation=dilation, bias=False)
        self.norm2 = _norm(norm, planes)
        self.conv3 = nn.Conv2d(planes, c_out, 1, bias=False)
        self.norm3 = _norm(norm, c_out)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = (nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False),
                                       _norm(norm, c_out)) if project else nn.Identity())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.norm1(self.conv1(x)))
        out = self.relu(self.norm2(self.conv2(out)))
        out = self.norm3(self.conv3(out))
        # not in place on ``x``: the block input may be the watched feature ``f``
        return self.relu(out + self.shortcut(x))


def _layer(c_in: int, planes: int, n: int, norm: str, stride: int = 1,
           dilation: int = 1) -> nn.Sequential:
    """``n`` bottlenecks; the first one projects its input when stride, width or dilation
    change (the authors' rule)."""
    c_out = planes * Bottleneck.expansion
    project = stride != 1 or c_in != c_out or dilation != 1
    return nn.Sequential(
        Bottleneck(c_in, planes, norm, stride, dilation, project),
        *[Bottleneck(c_out, planes, norm, dilation=dilation) for _ in range(n - 1)])


class ASPP(nn.Module):
    """DeepLab-v2's classifier: the **sum** of four dilated ``3×3`` convs ``C → K``."""

    def __init__(self, c_in: int, n_classes: int, dilations: tuple[int, ...] = ASPP_DILATIONS):
        super().__init__()
        self.branches = nn.ModuleList(
            [nn.Conv2d(c_in, n_classes, 3, padding=d, dilation=d) for d in dilations])
        for conv in self.branches:
            nn.init.normal_(conv.weight, 0.0, 0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.branches[0](x)
        for conv in self.branches[1:]:
            out = out + conv(x)
        return out


class DeepLabV2(nn.Module):
    """DeepLab-v2 returning logits ``B×K×H×W`` (and optionally the watched feature).

    Args:
        in_channels: input channels (``2·context + 1`` adjacent slices).
        n_classes: output classes ``K``, background included.
        width: the stem's channels ``C``, also ``layer1``'s planes; ``layer k`` (k = 1…4) has
            planes ``C·2^(k-1)`` and ``layer5`` ``8C``; a layer outputs ``4 × planes`` channels.
            The authors' value is 64.
        blocks: bottleneck counts of ``layer1`` … ``layer5``; the authors' ``(3, 4, 23, 2, 1)``.
        norm: ``"batch"`` (the authors') or ``"instance"`` (see the module docstring).

    ``forward(x, return_features=False, feature_mask=None)``:

    * ``x``: ``B×in_channels×H×W``, ``H`` and ``W`` multiples of 8 and >= 16.
    * returns the logits ``B×K×H×W`` (the ``H/8×W/8`` ASPP output, upsampled bilinearly), or with
      ``return_features=True`` the pair ``(logits, [f])``, ``f`` being ``layer4``'s output
      ``B×32C×H/8×W/8`` *before* the mask (:attr:`feature_channels` ``= [32C]``).
    * ``feature_mask``: ``None``, or a callable ``(level, f) -> m | None`` called once with
      ``level = 0``. A tensor ``m`` of shape ``B×1×H/8×W/8`` (broadcast over channels; ``B×32C×…``
      is accepted too), values meant to be >= 0, makes ``layer5`` see ``f + m ⊙ f``; ``None``
      leaves ``f`` as is.
    """

    def __init__(self, in_channels: int = 1, n_classes: int = 5, width: int = 64,
                 blocks: tuple[int, ...] = (3, 4, 23, 2, 1), norm: str = "batch"):
        super().__init__()
        blocks = tuple(blocks)
        if (in_channels < 1 or n_classes < 2 or width < 1 or len(blocks) != 5
                or not all(_is_int(n) and n >= 1 for n in blocks)):
            raise ValueError(
                f"bad DeepLab sizes: in_channels={in_channels}, n_classes={n_classes}, "
                f"width={width}, blocks={blocks} (need in_channels >= 1, n_classes >= 2, "
                "width >= 1 and blocks = 5 positive ints for layer1 … layer5)")
        if norm not in NORMS:
            raise ValueError(f"unknown norm {norm!r}; choose one of {NORMS}")
        self.config = {"in_channels": in_channels, "n_classes": n_classes, "width": width,
                       "blocks": list(blocks), "norm": norm}
        c, e = width, Bottleneck.expansion
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, c, 7, stride=2, padding=3, bias=False), _norm(norm, c),
            nn.ReLU(inplace=True), nn.MaxPool2d(3, stride=2, padding=1))
        self.layer1 = _layer(c, c, blocks[0], norm)
        self.layer2 = _layer(e * c, 2 * c, blocks[1], norm, stride=2)
        self.layer3 = _layer(e * 2 * c, 4 * c, blocks[2], norm, dilation=2)
        self.layer4 = _layer(e * 4 * c, 8 * c, blocks[3], norm, dilation=4)
        self.layer5 = _layer(e * 8 * c, 8 * c, blocks[4], norm, dilation=4)
        self.classifier = ASPP(e * 8 * c, n_classes)
        self.feature_channels: list[int] = [e * 8 * c]
        for m in self.modules():
            if isinstance(m, nn.Conv2d) and not any(m is b for b in self.classifier.branches):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, (nn.BatchNorm2d, nn.InstanceNorm2d)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def feature_prefixes(self, level: int = 0) -> tuple[str, ...]:
        """The ``state_dict`` key prefixes of the layers that compute the watched feature
        (``stem`` … ``layer4``): what a snapshot of the local step keeps."""
        if level != 0:
            raise ValueError(f"DeepLab-v2 has one watched level, 0 (layer4); got {level}")
        return ("stem.", "layer1.", "layer2.", "layer3.", "layer4.")

    def _check_input(self, x: torch.Tensor) -> None:
        if x.ndim != 4:
            raise ValueError(f"expected B×C×H×W input, got shape {tuple(x.shape)}")
        if x.shape[1] != self.config["in_channels"]:
            raise ValueError(f"expected {self.config['in_channels']} input channel(s), got "
                             f"{x.shape[1]} (shape {tuple(x.shape)})")
        h, w = x.shape[-2:]
        if h % OUTPUT_STRIDE or w % OUTPUT_STRIDE or min(h, w) < 2 * OUTPUT_STRIDE:
            raise ValueError(f"slice size {(h, w)} must be a multiple of the output stride "
                             f"{OUTPUT_STRIDE} and at least {2 * OUTPUT_STRIDE} on each side")

    def forward(self, x: torch.Tensor, return_features: bool = False,
                feature_mask: FeatureMask | None = None):
        """Logits ``B×K×H×W`` (and ``[f]``, unmasked, with ``return_features``);
        ``feature_mask(0, f) -> B×1×h×w mask or None`` masks what ``layer5`` sees (GLUA's local
        step, :mod:`glua_lib.local.attention`; see the class docstring)."""
        self._check_input(x)
        f = self.layer4(self.layer3(self.layer2(self.layer1(self.stem(x)))))
        g = f
        if feature_mask is not None:
            m = feature_mask(0, f)
            if m is not None:
                ok = (isinstance(m, torch.Tensor) and m.ndim == 4 and m.shape[0] == f.shape[0]
                      and m.shape[1] in (1, f.shape[1]) and m.shape[2:] == f.shape[2:])
                if not ok:
                    got = tuple(m.shape) if isinstance(m, torch.Tensor) else type(m).__name__
                    raise ValueError(f"feature_mask must return None or a B×1×h×w tensor "
                                     f"matching f {tuple(f.shape)}; got {got}")
                g = f + m * f
        logits = self.classifier(self.layer5(g))
        logits = F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return (logits, [f]) if return_features else logits
