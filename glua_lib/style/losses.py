"""The loss terms of the style-transfer model, one small function each.

Notation: ``x`` images B×C×H×W, ``c`` content codes B×c×h×w, ``s`` style codes B×S; a
discriminator output is one tensor B×1×h×w or a list of them (one per scale of a
:class:`~glua_lib.style.models.MultiScaleDiscriminator`), and multi-scale terms are **summed over
scales** of the per-scale mean. All functions return a scalar tensor.

Weights (DAR-UNet, MUNIT): image reconstruction 10, cycle 10, content code 1, style code 1,
adversarial 1; content adversarial and style prior are this project's choices (see ``StyleConfig``).
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

Scores = torch.Tensor | Sequence[torch.Tensor]


def _scales(out: Scores) -> list[torch.Tensor]:
    return [out] if isinstance(out, torch.Tensor) else list(out)


def lsgan_d_loss(real: Scores, fake: Scores) -> torch.Tensor:
    """Critic side of the least-squares GAN: Σ_scales mean((D(real) − 1)²) + mean(D(fake)²)."""
    return sum(((r.float() - 1) ** 2).mean() + (f.float() ** 2).mean()
               for r, f in zip(_scales(real), _scales(fake), strict=True))


def lsgan_g_loss(fake: Scores) -> torch.Tensor:
    """Generator side of the least-squares GAN: Σ_scales mean((D(fake) − 1)²)."""
    return sum(((f.float() - 1) ** 2).mean() for f in _scales(fake))


def image_recon_loss(x_rec: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Self-reconstruction ``‖decode_d(encode_d(x)) − x‖₁`` (mean): B×C×H×W, B×C×H×W -> ()."""
    return F.l1_loss(x_rec.float(), x.float())


def cycle_loss(x_cycle: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Cross-domain cycle ``‖decode_s(content(x_s→t), s_s) − x_s‖₁`` (mean): B×C×H×W pairs -> ()."""
    return F.l1_loss(x_cycle.float(), x.float())


def content_recon_loss(c_rec: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """Content code kept through translation ``‖content(x_s→t) − content(x_s)‖₁`` (mean)."""
    return F.l1_loss(c_rec.float(), c.float())


def style_recon_loss(s_rec: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """Style recovered from a translation ``‖style_t(x_s→t) − z_t‖₁`` (mean): B×S, B×S -> ()."""
    return F.l1_loss(s_rec.float(), s.float())


def content_adv_d_loss(d_source: torch.Tensor, d_target: torch.Tensor) -> torch.Tensor:
    """Content critic: source codes -> 1, target codes -> 0 (LSGAN). B×1×h×w each -> ()."""
    return ((d_source.float() - 1) ** 2).mean() + (d_target.float() ** 2).mean()


def content_adv_g_loss(d_source: torch.Tensor, d_target: torch.Tensor) -> torch.Tensor:
    """Content encoder: make the critic undecided, 0.5 on both domains (symmetric confusion)."""
    return ((d_source.float() - 0.5) ** 2).mean() + ((d_target.float() - 0.5) ** 2).mean()


def style_prior_loss(s: torch.Tensor) -> torch.Tensor:
    """Moment matching of encoded style codes B×S to N(0, I): mean over S of μ² + (σ² − 1)².

    μ and σ² are the batch mean and (biased) variance of each style dimension. Keeping encoded
    styles near the prior makes random N(0, I) styles look like real ones. Defined for B = 1
    (σ² = 0 then, a constant 1 per dimension).
    """
    s = s.float()
    mu, var = s.mean(0), s.var(0, unbiased=False)
    return (mu ** 2 + (var - 1) ** 2).mean()
