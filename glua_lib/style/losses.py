"""The loss terms of the style-transfer model, one small function each.

Notation: ``x`` images B×C×H×W, ``c`` content codes B×c×h×w, ``s`` style codes B×S; a
discriminator output is one tensor B×1×h×w or a list of them (one per scale of a
:class:`~glua_lib.style.models.MultiScaleDiscriminator`), and multi-scale terms are **summed over
scales** of the per-scale mean. All functions return a scalar tensor.

Weights (DAR-UNet, MUNIT): image reconstruction 10, cycle 10, content code 1, style code 1,
adversarial 1; content adversarial, style prior, the structure term and the class-wise appearance
term are this project's choices (see ``StyleConfig``).
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


_NEIGHBOURS = ((0, 1), (1, 0), (0, -1), (-1, 0))  # (dy, dx): right, down, left, up


def mind(x: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """MIND, the modality-independent neighbourhood descriptor (Heinrich et al., MedIA 2012), 2-D:
    images B×C×H×W -> descriptors B×4×H×W in [0, 1].

    For each of the four neighbours ``r`` (right, down, left, up), ``D_r`` is the 3×3 box mean
    of ``(x − x shifted by r)²`` (a patch distance, averaged over channels; borders replicated);
    ``V`` is the mean of the four ``D_r``, at least ``eps`` (in squared intensity units: flat
    regions with noise below ``√eps`` count as flat); the descriptor is ``exp(−D_r / V)`` divided
    by its maximum over ``r``. It says *which neighbours look alike*, not how bright anything is,
    so an image and its faithful rendering in another modality, contrast inversions included,
    have the same descriptor; an edge added or lost by a translation changes it.
    """
    x = x.float()
    h, w = x.shape[-2:]
    padded = F.pad(x, (1, 1, 1, 1), mode="replicate")
    dist = []
    for dy, dx in _NEIGHBOURS:
        shifted = padded[:, :, 1 + dy:1 + dy + h, 1 + dx:1 + dx + w]
        d = ((x - shifted) ** 2).mean(1, keepdim=True)
        dist.append(F.avg_pool2d(F.pad(d, (1, 1, 1, 1), mode="replicate"), 3, stride=1))
    d = torch.cat(dist, 1)
    m = torch.exp(-d / d.mean(1, keepdim=True).clamp_min(eps))
    return m / m.amax(1, keepdim=True)


def structure_loss(x_translated: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Anatomy kept through translation: ``‖MIND(x_s→t) − MIND(x_s)‖₁`` (mean), B×C×H×W pairs -> ().

    The structure constraint of structure-constrained CycleGAN (Yang et al., DLMIA 2018), here
    between each image and its translation. Unlike the cycle loss it asks the translation itself,
    not its way back, to keep the source's edges and to add none (a dark patch inside a bright
    blood pool is an added edge).
    """
    return F.l1_loss(mind(x_translated), mind(x))


def class_appearance_loss(x: torch.Tensor, y: torch.Tensor, x_ref: torch.Tensor,
                          y_ref: torch.Tensor, n_classes: int, n_quantiles: int = 33,
                          min_pixels: int = 20) -> torch.Tensor:
    """Per-class 1-D Wasserstein distance between the intensities of ``x`` and of ``x_ref``.

    ``x`` B×1×H×W (translated source) with labels ``y`` B×H×W; ``x_ref`` B'×1×H×W (real target)
    with labels ``y_ref`` B'×H×W (pseudo-labels; −1 = ignore). For each foreground class
    ``k = 1 .. n_classes−1`` with at least ``min_pixels`` pixels on both sides, the distance is
    approximated by the mean absolute difference of ``n_quantiles`` quantiles (2 % to 98 %);
    the loss is the mean over those classes (0 if none). Gradients reach ``x`` only. This is the
    class-wise appearance gap of :func:`~glua_lib.gap.appearance_gap`, made a loss.
    """
    q = torch.linspace(0.02, 0.98, n_quantiles, device=x.device)
    x, x_ref = x.float()[:, 0], x_ref.detach().float()[:, 0]
    gaps = []
    for k in range(1, n_classes):
        a, b = x[y == k], x_ref[y_ref == k]
        if a.numel() >= min_pixels and b.numel() >= min_pixels:
            gaps.append((torch.quantile(a, q) - torch.quantile(b, q)).abs().mean())
    return torch.stack(gaps).mean() if gaps else x.sum().mul(0.0).abs()
