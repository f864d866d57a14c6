"""GLUA's local step as its authors built it: the feature mask as attention on the target path.

Facts from the authors' code (``kiwi12138/GLUA``, ``JBHI_2023``; ``shared/method.md``), written
anew here. Notation: ``f`` = the segmenter's features at a watched level (``B×C×h×w``; in the
authors' DeepLab-v2 the output of ``layer4``, in the book's U-Net the bottleneck by default),
``p`` = its prediction (``B×K×H×W`` logits), ``D1`` the feature discriminator, ``D2`` the
output-space discriminator. Labels: **source = 0, target = 1** (least squares, as theirs).

**The mask**, on a *target* image only, inside the forward pass (:func:`attention_mask`,
:func:`apply_mask`)::

    m  = |tanh(D1(f))|          B×1×h×w, in [0, 1)
    f' = f + m ⊙ f              m broadcast over the C channels

``f'`` goes on through the rest of the network, in training **and at test time**; source images
take ``f`` unchanged. ``D1 → 1`` where it confidently recognises a target feature (a large local
gap): there ``m → tanh(1) ≈ 0.76`` and the feature is boosted up to 1.76×; where the target
feature already looks like source (``D1 → 0``), ``m → 0`` and ``f' = f``. Gradients flow through
``m`` into the features ``D1`` read (``D1``'s own weights are frozen during the segmenter's
step); ``detach=True`` cuts that path, to measure it.

**Losses** (least squares, :func:`lsgan_loss`): the segmenter adds, on the target batch,
``λ · [ MSE(D1(f_t), 0) + MSE(D2(softmax(p_t)), 0) ]`` (``λ = 0.01`` in their code), i.e. it
tries to make target features and predictions pass as source; ``D1`` sees the **unmasked**
``f``. Each discriminator then takes a step on ``MSE(D(source), 0) + MSE(D(target), 1)`` with
detached inputs.

**Networks** (:class:`MaskDiscriminator`, :class:`OutputDiscriminator`): ``D1`` is four 3×3
convolutions, stride 1, ``C → C/2 → C/4 → C/8 → 1`` (2048 → … → 1 in theirs), LeakyReLU 0.2, no
sigmoid: one value per location, so the mask keeps the feature map's resolution. ``D2`` is the
AdaptSegNet discriminator: five 4×4 stride-2 convolutions, ``K → w → 2w → 4w → 8w → 1``
(``w = 64`` in theirs), LeakyReLU 0.2, on ``softmax(p)``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

SOURCE, TARGET = 0.0, 1.0  # the least-squares labels of the two domains (the authors')


class MaskDiscriminator(nn.Module):
    """``D1``: features ``B×C×h×w`` → one score per location ``B×1×h×w`` (no sigmoid).

    Args:
        in_channels: ``C``, the watched features' channels (at least 8).

    Four 3×3 convolutions, stride 1, padding 1, ``C → C/2 → C/4 → C/8 → 1``, LeakyReLU 0.2
    between them; no normalisation layer (it would erase the per-image statistics the domains
    differ by).
    """

    def __init__(self, in_channels: int):
        super().__init__()
        if in_channels < 8:
            raise ValueError(f"MaskDiscriminator needs at least 8 input channels (C → C/8), "
                             f"got {in_channels}")
        c = [in_channels, in_channels // 2, in_channels // 4, in_channels // 8]
        layers: list[nn.Module] = []
        for a, b in zip(c, c[1:]):
            layers += [nn.Conv2d(a, b, 3, padding=1), nn.LeakyReLU(0.2, inplace=True)]
        layers.append(nn.Conv2d(c[-1], 1, 3, padding=1))
        self.net = nn.Sequential(*layers)
        self.config = {"in_channels": in_channels}

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        if f.ndim != 4 or f.shape[1] != self.config["in_channels"]:
            raise ValueError(f"D1 expects B×{self.config['in_channels']}×h×w features, got "
                             f"shape {tuple(f.shape)}")
        return self.net(f)


class OutputDiscriminator(nn.Module):
    """``D2``: class probabilities ``B×K×H×W`` → scores ``B×1×H/32×W/32`` (no sigmoid).

    Args:
        n_classes: ``K`` (background included).
        width: ``w``, channels of the first convolution (64 in the authors' code).

    Five 4×4 convolutions with stride 2 and padding 1, ``K → w → 2w → 4w → 8w → 1``, LeakyReLU
    0.2 between them (AdaptSegNet's output-space discriminator). ``H`` and ``W`` must be at least
    32.
    """

    def __init__(self, n_classes: int, width: int = 64):
        super().__init__()
        if n_classes < 2 or width < 1:
            raise ValueError(f"bad OutputDiscriminator sizes: n_classes={n_classes}, "
                             f"width={width}")
        c = [n_classes, width, 2 * width, 4 * width, 8 * width]
        layers: list[nn.Module] = []
        for a, b in zip(c, c[1:]):
            layers += [nn.Conv2d(a, b, 4, stride=2, padding=1), nn.LeakyReLU(0.2, inplace=True)]
        layers.append(nn.Conv2d(c[-1], 1, 4, stride=2, padding=1))
        self.net = nn.Sequential(*layers)
        self.config = {"n_classes": n_classes, "width": width}

    def forward(self, prob: torch.Tensor) -> torch.Tensor:
        if prob.ndim != 4 or prob.shape[1] != self.config["n_classes"]:
            raise ValueError(f"D2 expects B×{self.config['n_classes']}×H×W probabilities, got "
                             f"shape {tuple(prob.shape)}")
        if min(prob.shape[-2:]) < 32:
            raise ValueError(f"D2 halves the size five times: slices of at least 32×32, got "
                             f"{tuple(prob.shape[-2:])}")
        return self.net(prob)


def attention_mask(d_out: torch.Tensor) -> torch.Tensor:
    """``m = |tanh(D1(f))|``: ``B×1×h×w`` scores → ``B×1×h×w`` mask in ``[0, 1)`` (with its
    gradient)."""
    if d_out.ndim != 4 or d_out.shape[1] != 1:
        raise ValueError(f"D1's output must be B×1×h×w, got shape {tuple(d_out.shape)}")
    return torch.tanh(d_out).abs()


def apply_mask(f: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """``f' = f + m ⊙ f``: features ``B×C×h×w``, mask ``B×1×h×w`` broadcast over channels."""
    if f.ndim != 4 or m.ndim != 4 or m.shape[1] != 1 or m.shape[-2:] != f.shape[-2:] \
            or m.shape[0] != f.shape[0]:
        raise ValueError(f"mask {tuple(m.shape)} does not fit features {tuple(f.shape)} "
                         "(B×1×h×w for B×C×h×w)")
    return f + m * f


def lsgan_loss(d_out: torch.Tensor, label: float) -> torch.Tensor:
    """Least-squares GAN loss ``mean((D − label)²)`` (``label``: :data:`SOURCE` or
    :data:`TARGET`), in float32."""
    d = d_out.float()
    return F.mse_loss(d, torch.full_like(d, float(label)))


def discriminator_step_loss(d_source: torch.Tensor, d_target: torch.Tensor) -> torch.Tensor:
    """A discriminator's loss: ``MSE(D(source), 0) + MSE(D(target), 1)`` (the authors' sum)."""
    return lsgan_loss(d_source, SOURCE) + lsgan_loss(d_target, TARGET)




class FeatureMask(nn.Module):
    """``D1`` for each watched level, usable as the segmenter's ``feature_mask`` callable.

    Args:
        channels: ``{level: C}``, the watched levels and their feature channels.

    ``mask(level, f)`` (also ``self(level, f)``) returns ``m = |tanh(D1(f))|`` (``B×1×h×w``) for
    a watched level and ``None`` for the others, which the segmenter then leaves unmasked; the
    segmenter applies ``f + m ⊙ f`` (``UNet.forward``'s ``feature_mask``). :meth:`score` is
    ``D1(f)`` itself.
    """

    def __init__(self, channels: dict[int, int]):
        super().__init__()
        if not channels:
            raise ValueError("FeatureMask needs at least one watched level")
        self.channels = {int(k): int(v) for k, v in sorted(channels.items())}
        self.heads = nn.ModuleDict({str(lv): MaskDiscriminator(c)
                                    for lv, c in self.channels.items()})

    @property
    def levels(self) -> tuple[int, ...]:
        return tuple(self.channels)

    def score(self, level: int, f: torch.Tensor) -> torch.Tensor:
        """``D1(f)`` at ``level``: ``B×C×h×w`` → ``B×1×h×w``."""
        return self.heads[str(level)](f)

    def forward(self, level: int, f: torch.Tensor) -> torch.Tensor | None:
        if level not in self.channels:
            return None
        return attention_mask(self.score(level, f))

    def to_state(self) -> dict:
        """What a run's final model keeps to mask target images at test time."""
        return {"channels": {str(k): v for k, v in self.channels.items()},
                "weights": self.state_dict()}

    @classmethod
    def from_state(cls, state: dict, device: torch.device | str | None = None) -> "FeatureMask":
        """The inverse of :meth:`to_state`, in eval mode on ``device``."""
        mask = cls({int(k): int(v) for k, v in state["channels"].items()})
        mask.load_state_dict(state["weights"])
        return mask.to(device).eval() if device is not None else mask.eval()


__all__ = ["FeatureMask", "MaskDiscriminator", "OutputDiscriminator", "SOURCE", "TARGET",
           "apply_mask", "attention_mask", "discriminator_step_loss", "lsgan_loss"]
