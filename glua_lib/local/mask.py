"""The local feature mask and the masked adversarial alignment loss (the heart of GLUA's step 2).

Notation: ``ℓ = D_f(f)`` is the feature discriminator's output at one location (a logit,
``B×1×h×w``; :mod:`glua_lib.local.discriminator`), ``p = P(source)`` the probability it implies.

**Local gap score** (:func:`gap_score`), per location, detached:

* ``"abs"`` (default, the working definition): ``g = |2p − 1|`` — how *confidently* the
  discriminator assigns the location to a domain. 0 where it cannot tell (chance, ``p = ½``),
  → 1 where it separates the domains perfectly. With BCE logits ``g = |tanh(ℓ/2)|``, DAR-UNet's
  ``|tanh(D(f))|`` up to the factor ½.
* ``"adv"``: the segmenter's per-location adversarial loss of a *target* feature labelled as
  source (``−log p`` for BCE, ``(ℓ − 1)²`` for LSGAN): high where the target feature still looks
  like target, ≈ 0 where it already passes as source. Unlike ``"abs"`` it does not count a
  location the discriminator confidently gets *wrong* as a gap. Only meaningful on target features.

**Mask** (:func:`local_mask`): ``g`` normalised per image so that its maximum is 1, hence
``M ∈ [0, 1]`` (which the attention variant ``f + f·M`` needs):

* ``norm="max"``: ``M = ((g + ε) / (max g + ε)) ** (1/τ)``;
* ``norm="softmax"``: the softmax of ``g/τ`` over the image's locations, rescaled by its maximum,
  i.e. ``M = exp((g − max g) / τ)``.

The temperature ``τ`` sharpens (``τ < 1``; ``τ → 0`` keeps only the maximum) or flattens
(``τ > 1``; ``τ → ∞`` gives ``M ≡ 1``, the unmasked loss). ``top_k = k ∈ (0, 1]`` then keeps the
``round(k·N)`` largest values of each image's ``N = h·w`` locations (at least one; exactly that
many, ties broken arbitrarily) and sets the rest to 0; the kept locations keep their values.
``ε`` keeps ``M > 0`` everywhere before top-k and makes a discriminator that is at chance
everywhere (``g ≡ 0``) give the uniform mask ``M ≡ 1``.
``M`` is computed under ``torch.no_grad`` and detached: **no gradient flows through the mask**;
it only says where the alignment effort goes.

**Masked adversarial loss** (:func:`masked_adversarial_loss`) on target features, labelled
"source" for the segmenter: per location ``a = softplus(−ℓ) = −log p`` (BCE) or ``(ℓ − 1)²``
(LSGAN), weighted by ``M`` and **normalised by the mask's sum per image**::

    L = mean over images b of  Σ_i M_bi · a_bi / Σ_i M_bi

a weighted mean, so a uniform mask (any constant ``M ≡ c > 0``, in particular ``M ≡ 1``) gives
exactly the unmasked loss ``mean(a)``; the mask moves the effort between locations without
changing the loss's scale (the same adversarial weight works for masked and unmasked runs).

**Attention variant** (:func:`attend`): ``f + f·M``, with ``M`` resized to ``f``'s resolution and
broadcast over channels: ``f`` where ``M = 0``, ``2f`` where ``M = 1``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

GANS = ("bce", "lsgan")
SCORES = ("abs", "adv")
NORMS = ("max", "softmax")


def _check(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}; choose one of {choices}")


def _check_map(x: torch.Tensor, what: str) -> None:
    if x.ndim != 4 or x.shape[1] != 1:
        raise ValueError(f"{what} must be B×1×h×w, got shape {tuple(x.shape)}")


def source_probability(d_out: torch.Tensor, gan: str = "bce") -> torch.Tensor:
    """``P(source)`` per location from discriminator outputs ``B×1×h×w`` (same shape).

    BCE: ``sigmoid(ℓ)``. LSGAN regresses the label (1 source, 0 target), so its output clamped
    to ``[0, 1]`` plays the probability.
    """
    _check("gan", gan, GANS)
    return torch.sigmoid(d_out) if gan == "bce" else d_out.clamp(0.0, 1.0)


def adversarial_map(d_out: torch.Tensor, real: bool, gan: str = "bce") -> torch.Tensor:
    """Per-location GAN loss ``B×1×h×w`` for outputs ``d_out`` labelled source (``real=True``)
    or target (``False``): BCE ``softplus(∓ℓ)``, LSGAN ``(ℓ − 1)²`` or ``ℓ²``."""
    _check("gan", gan, GANS)
    if gan == "bce":
        return F.softplus(-d_out) if real else F.softplus(d_out)
    return (d_out - 1.0) ** 2 if real else d_out ** 2


@torch.no_grad()
def gap_score(d_out: torch.Tensor, score: str = "abs", gan: str = "bce") -> torch.Tensor:
    """The local gap ``g`` per location, ``B×1×h×w`` → ``B×1×h×w``, detached (module docstring).

    ``"abs"``: ``|2·P(source) − 1| ∈ [0, 1]``; ``"adv"``: the per-location adversarial loss of a
    target feature labelled source (``≥ 0``).
    """
    _check_map(d_out, "discriminator output")
    _check("score", score, SCORES)
    d_out = d_out.detach().float()
    if score == "abs":
        return (2 * source_probability(d_out, gan) - 1).abs()
    return adversarial_map(d_out, real=True, gan=gan)


@torch.no_grad()
def local_mask(score: torch.Tensor, norm: str = "max", temperature: float = 1.0,
               top_k: float = 1.0, eps: float = 1e-6) -> torch.Tensor:
    """The local feature mask ``M ∈ [0, 1]``, ``B×1×h×w`` → ``B×1×h×w``, per-image max 1, detached.

    Args:
        score: the gap score ``g ≥ 0`` (:func:`gap_score`), ``B×1×h×w``.
        norm: ``"max"`` (``((g+ε)/(max g+ε))^(1/τ)``) or ``"softmax"`` (``exp((g − max g)/τ)``,
            the softmax over locations rescaled by its maximum).
        temperature: ``τ > 0``; smaller is sharper.
        top_k: fraction ``k ∈ (0, 1]`` of each image's locations kept (``round(k·h·w)``, at least
            1, exactly that many, ties broken arbitrarily); the others are set to 0. 1 keeps all.
        eps: keeps ``M > 0`` before top-k; ``g ≡ 0`` gives ``M ≡ 1``.
    """
    _check_map(score, "gap score")
    _check("norm", norm, NORMS)
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if not 0 < top_k <= 1:
        raise ValueError(f"top_k must be a fraction in (0, 1], got {top_k}")
    g = score.detach().float()
    b = g.shape[0]
    flat = g.reshape(b, -1)
    g_max = flat.max(dim=1).values.view(b, 1, 1, 1)
    if norm == "max":
        mask = ((g + eps) / (g_max + eps)) ** (1.0 / temperature)
    else:
        mask = torch.exp((g - g_max) / temperature)
    n = flat.shape[1]
    k = max(1, int(round(top_k * n)))
    if k < n:
        flat_mask = mask.reshape(b, -1)
        keep = torch.zeros_like(flat_mask)
        keep.scatter_(1, flat_mask.topk(k, dim=1).indices, 1.0)
        mask = (flat_mask * keep).view_as(mask)
    return mask.detach()


def masked_adversarial_loss(d_out: torch.Tensor, mask: torch.Tensor | None = None,
                            gan: str = "bce", eps: float = 1e-8) -> torch.Tensor:
    """The segmenter's alignment loss on *target* features labelled "source", weighted by ``M``.

    Args:
        d_out: discriminator outputs on target features, ``B×1×h×w`` (gradient flows to the
            segmenter through them).
        mask: ``M``, ``B×1×h×w`` (or broadcastable); detached here. ``None``: unmasked.
        gan: ``"bce"`` (``softplus(−ℓ)``) or ``"lsgan"`` (``(ℓ − 1)²``).

    Returns:
        A scalar: the per-image ``M``-weighted mean of the per-location loss, averaged over
        images (module docstring); equal to the unmasked mean when ``M`` is constant.
    """
    _check_map(d_out, "discriminator output")
    per_loc = adversarial_map(d_out, real=True, gan=gan)
    if mask is None:
        return per_loc.mean()
    m = mask.detach().to(per_loc.dtype).expand_as(per_loc)
    num = (m * per_loc).flatten(1).sum(1)
    den = m.flatten(1).sum(1).clamp_min(eps)
    return (num / den).mean()


def discriminator_loss(d_source: torch.Tensor, d_target: torch.Tensor,
                       gan: str = "bce") -> torch.Tensor:
    """The discriminator's loss: ``½ (mean loss(source → 1) + mean loss(target → 0))``.

    ``d_source``/``d_target``: its outputs ``B×1×h×w`` on (detached) source/target features.
    """
    return 0.5 * (adversarial_map(d_source, True, gan).mean()
                  + adversarial_map(d_target, False, gan).mean())


def resize_mask(mask: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``B×1×h×w`` → ``B×1×H×W``: nearest-neighbour when enlarging (each location becomes a
    block), area averaging when shrinking; unchanged when the size already matches."""
    _check_map(mask, "mask")
    size = tuple(int(s) for s in size)
    if tuple(mask.shape[-2:]) == size:
        return mask
    if size[0] >= mask.shape[-2] and size[1] >= mask.shape[-1]:
        return F.interpolate(mask, size=size, mode="nearest")
    return F.adaptive_avg_pool2d(mask, size)


def attend(feature: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The attention variant ``f + f·M``: ``B×C×h×w`` features, ``B×1×h'×w'`` mask → ``B×C×h×w``.

    ``M`` is resized to the features' resolution (:func:`resize_mask`), broadcast over channels
    and detached: ``f`` where ``M = 0``, ``2f`` where ``M = 1``.
    """
    if feature.ndim != 4:
        raise ValueError(f"features must be B×C×h×w, got shape {tuple(feature.shape)}")
    m = resize_mask(mask.detach(), feature.shape[-2:]).to(feature.dtype)
    return feature + feature * m


__all__ = ["GANS", "NORMS", "SCORES", "adversarial_map", "attend", "discriminator_loss",
           "gap_score", "local_mask", "masked_adversarial_loss", "resize_mask",
           "source_probability"]
