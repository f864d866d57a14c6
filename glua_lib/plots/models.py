"""Pictures of a model: the two translators' architectures, and a decoded style mix."""
from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from glua_lib.plots.volumes import image_grid
from glua_lib.style.translate import style_walk


class _Schematic:
    """A 10×5 axis without ticks, with rounded text boxes and arrows (the architecture figures)."""

    def __init__(self, fig: Figure | None):
        self.fig = fig or Figure(figsize=(7.6, 3.4))
        self.ax = self.fig.add_subplot(1, 1, 1)
        self.ax.set_xlim(0, 10)
        self.ax.set_ylim(0, 5)
        self.ax.set_axis_off()

    def box(self, x, y, text, colour):
        self.ax.text(x, y, text, ha="center", va="center", fontsize=7.5,
                     bbox=dict(boxstyle="round,pad=0.35", fc=colour, ec="0.3", lw=0.8))

    def arrow(self, x0, y0, x1, y1, colour="0.25"):
        self.ax.annotate("", xy=(x1, y1), xytext=(x0, y0),
                         arrowprops=dict(arrowstyle="-|>", color=colour, lw=0.9))


def style_architecture(arch: str = "domain", fig: Figure | None = None) -> Figure:
    """A schematic of a global-alignment model (``StyleConfig.arch``): ``"domain"``, the
    authors' translator (one encoder and one decoder told the domain by a label, one
    domain-conditional critic, image pools), or ``"munit"``, the MUNIT-like one (shared content
    encoder, per-domain style encoders and AdaIN decoders, image and content critics).

    Raises:
        ValueError: another ``arch``.
    """
    if arch == "domain":
        return _domain_architecture(fig)
    if arch != "munit":
        raise ValueError(f"unknown translator arch {arch!r}; choose 'domain' or 'munit'")
    sketch = _Schematic(fig)
    fig, ax, box, arrow = sketch.fig, sketch.ax, sketch.box, sketch.arrow

    box(0.8, 3.9, "source image\n$x_s$ (MR)", "#dbe9f6")
    box(0.8, 1.1, "target image\n$x_t$ (CT)", "#fde3cf")
    box(3.0, 2.5, "shared content\nencoder $E_c$", "#e5e5e5")
    box(3.0, 4.5, "style encoder\n$E_s^{src}$", "#dbe9f6")
    box(3.0, 0.5, "style encoder\n$E_s^{tgt}$", "#fde3cf")
    box(5.2, 2.5, "content code $c$\n(spatial map)", "white")
    box(5.2, 4.5, "style $s_s$ (8-d)", "white")
    box(5.2, 0.5, "style $s_t$ (8-d),\nk-means bank", "white")
    box(7.4, 3.6, "AdaIN decoder\n$G_{tgt}$", "#fde3cf")
    box(7.4, 1.4, "AdaIN decoder\n$G_{src}$", "#dbe9f6")
    box(9.2, 3.6, "$x_{s\\to t}$: source anatomy,\ntarget style", "#fff2b3")
    box(9.2, 1.4, "$x_{t\\to s}$", "#f0f0f0")
    box(5.2, 3.5, "content critic\n(domain-invariant $c$)", "#f4d6e4")
    box(9.2, 4.7, "image critics\n(multi-scale LSGAN)", "#f4d6e4")
    for y in (3.9, 1.1):
        arrow(1.5, y, 2.3, 2.5)
    arrow(1.5, 3.9, 2.3, 4.5)
    arrow(1.5, 1.1, 2.3, 0.5)
    arrow(3.7, 2.5, 4.3, 2.5)
    arrow(3.75, 4.5, 4.5, 4.5)
    arrow(3.75, 0.5, 4.3, 0.5)
    arrow(6.1, 2.6, 6.75, 3.5)
    arrow(6.1, 2.4, 6.75, 1.5)
    arrow(6.1, 0.6, 6.75, 3.4)
    arrow(5.9, 4.4, 6.75, 1.6)
    arrow(5.2, 2.9, 5.2, 3.1, colour="#b0507a")
    arrow(8.1, 3.6, 8.4, 3.6)
    arrow(8.1, 1.4, 8.4, 1.4)
    arrow(9.2, 4.0, 9.2, 4.35, colour="#b0507a")
    ax.text(5.0, -0.1, "losses: image and cycle reconstruction, content/style code "
            "reconstruction,\nLSGAN on images, content adversarial, style prior, MIND structure,"
            "\n(optional) class-wise appearance of $x_{s\\to t}$ against pseudo-labelled $x_t$",
            ha="center", va="top", fontsize=7)
    return fig


def _domain_architecture(fig: Figure | None) -> Figure:
    sketch = _Schematic(fig)
    fig, ax, box, arrow = sketch.fig, sketch.ax, sketch.box, sketch.arrow

    box(0.8, 3.9, "source image\n$x_s$ (MR)", "#dbe9f6")
    box(0.8, 1.1, "target image\n$x_t$ (CT)", "#fde3cf")
    box(2.9, 2.5, "one encoder $E$\n(image ‖ one-hot\nplanes of its domain)", "#e5e5e5")
    box(5.0, 2.5, "content code $c$\n(spatial map)", "white")
    box(3.2, 0.45, "domain label $d'$\n(one-hot, 2)", "white")
    box(5.5, 0.45, "MLP → AdaIN\nparameters of $d'$", "#e5e5e5")
    box(7.1, 2.5, "one decoder $G$\n(AdaIN ResBlocks)", "#e5e5e5")
    box(9.0, 3.5, "$x_{s\\to t}$: source\nanatomy, target look", "#fff2b3")
    box(9.0, 1.5, "$x_{t\\to s}$", "#f0f0f0")
    box(6.6, 4.55, "one critic $D(\\cdot, d)$: a score map per domain,\nfed past "
        "translations from image pools", "#f4d6e4")
    for y in (3.9, 1.1):
        arrow(1.5, y, 2.1, 2.5)
    arrow(3.75, 2.5, 4.3, 2.5)
    arrow(5.7, 2.5, 6.35, 2.5)
    arrow(4.0, 0.45, 4.75, 0.45)
    arrow(6.3, 0.6, 6.9, 2.05)
    arrow(7.85, 2.7, 8.3, 3.3)
    arrow(7.85, 2.3, 8.6, 1.6)
    arrow(9.0, 3.95, 8.6, 4.3, colour="#b0507a")
    ax.text(5.0, -0.1, "losses: same-domain reconstruction ×20, cycle ×20, content consistency "
            "×1,\nleast-squares adversarial ×1 (the critic also sees past translations)",
            ha="center", va="top", fontsize=7)
    return fig


def style_mix(model, image: np.ndarray, style_a, style_b, t: float,
              fig: Figure | None = None) -> Figure:
    """A source slice ``H×W`` and its translation with the style ``(1 − t)·a + t·b`` (the live
    style slider's callback; ``model`` is a trained ``StyleTransfer``)."""

    out = style_walk(model, image, style_a, style_b, ts=[t])[0]
    return image_grid({f"t = {t:.2f}": [image, out]}, fig=fig)
