"""Plotting functions, and the slider wiring the chapters use.

Every figure the book shows comes from a plain function here that draws into a matplotlib
``Figure`` and returns it, so it can be tested without a notebook. The notebooks only wire those
functions to sliders:

- :func:`frames_slider`: renders one frame per slider value ahead of time and links the slider to
  the frames in the browser (``jslink``), so it works live in Jupyter *and* in the static book,
  with no kernel.
- :func:`live_slider`: an ``ipywidgets.interactive`` over several parameters, recomputed by the
  kernel (Jupyter, Colab, JupyterHub); the static book shows its first frame.
"""
from __future__ import annotations

import io
from typing import Callable, Sequence

import matplotlib
import numpy as np
from matplotlib.figure import Figure

DrawFn = Callable[..., Figure]


def _finish(fig: Figure, ax, ylabel: str, title: str = "", xlabel: str = "",
            legend: bool = False) -> Figure:
    """The book's axis styling: small labels and ticks, optional legend and title."""
    if xlabel:
        ax.set_xlabel(xlabel, fontsize=8)
    ax.set_ylabel(ylabel, fontsize=8)
    ax.tick_params(labelsize=8)
    if legend:
        ax.legend(fontsize=7)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def figure_png(fig: Figure, dpi: int = 80) -> bytes:
    """Render ``fig`` to PNG bytes.

    Figures here are plain ``matplotlib.figure.Figure`` objects, not pyplot figures: nothing is
    registered globally, nothing needs closing, and the importing code's backend is left alone.
    """
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return buf.getvalue()


def label_overlay(ax, image: np.ndarray, label: np.ndarray | None = None,
                  class_names: Sequence[str] | None = None, alpha: float = 0.45,
                  title: str | None = None, cmap: str = "tab10") -> None:
    """Draw a 2D ``H×W`` image in gray with an ``H×W`` integer label map over it (0 = clear)."""
    ax.imshow(image, cmap="gray", interpolation="nearest")
    if label is not None:
        if label.shape != image.shape:
            raise ValueError(f"label shape {label.shape} != image shape {image.shape}")
        colours = matplotlib.colormaps[cmap]
        rgba = np.zeros(label.shape + (4,))
        for k in np.unique(label):
            if k == 0:
                continue
            rgba[label == k] = (*colours((int(k) - 1) % 10)[:3], alpha)
        ax.imshow(rgba, interpolation="nearest")
        if class_names is not None:
            handles = [matplotlib.patches.Patch(color=colours((k - 1) % 10), label=class_names[k])
                       for k in range(1, len(class_names))]
            ax.legend(handles=handles, loc="lower right", fontsize=6, framealpha=0.6)
    if title:
        ax.set_title(title, fontsize=9)
    ax.set_axis_off()


def volume_slice(volume: np.ndarray, index: int, label: np.ndarray | None = None,
                 class_names: Sequence[str] | None = None, title: str = "",
                 fig: Figure | None = None) -> Figure:
    """One slice ``index`` of a ``D×H×W`` volume, with its label overlay if given."""
    if volume.ndim != 3:
        raise ValueError(f"volume must be D×H×W, got shape {volume.shape}")
    if not 0 <= index < volume.shape[0]:
        raise IndexError(f"slice {index} outside 0..{volume.shape[0] - 1}")
    fig = fig or Figure(figsize=(3.2, 3.2))
    ax = fig.add_subplot(1, 1, 1)
    label_overlay(ax, volume[index], None if label is None else label[index], class_names,
                  title=f"{title} slice {index}".strip())
    return fig


def frames_slider(draw: DrawFn, name: str, values: Sequence, dpi: int = 80,
                  description: str | None = None, start: int = 0):
    """A slider over ``values`` showing ``draw(**{name: v})`` that works without a kernel.

    Every frame is rendered ahead of time to a PNG ``ipywidgets.Image``; the frames sit in a
    ``Stack`` whose ``selected_index`` is linked to the slider in the browser (``jslink``). The
    embedded widget state therefore keeps working in the static HTML book. ``start`` is the
    position (index into ``values``) shown first.

    Returns:
        ``ipywidgets.VBox`` (slider above, frames below); its ``link`` attribute is the ``jslink``.
    """
    import ipywidgets as widgets

    values = list(values)
    if not values:
        raise ValueError("frames_slider needs at least one value")
    frames = [widgets.Image(value=figure_png(draw(**{name: v}), dpi=dpi), format="png")
              for v in values]
    if not 0 <= start < len(values):
        raise ValueError(f"start {start} outside 0..{len(values) - 1}")
    stack = widgets.Stack(children=frames, selected_index=start)
    slider = widgets.IntSlider(value=start, min=0, max=len(values) - 1,
                               description=description or name, continuous_update=True)
    box = widgets.VBox([slider, stack])
    box.add_class("glua-frames-slider")
    box.link = widgets.jslink((slider, "value"), (stack, "selected_index"))
    return box


def live_slider(draw: DrawFn, **params):
    """``ipywidgets.interactive`` over ``draw``: each keyword is a widget abbreviation.

    Recomputed by the kernel on every change (Jupyter, Colab, JupyterHub). Example::

        live_slider(plots.volume_slice, volume=fixed(vol), index=(0, len(vol) - 1))
    """
    import ipywidgets as widgets
    from IPython.display import display

    def _show(**kwargs):
        display(draw(**kwargs))

    return widgets.interactive(_show, **params)


def modality_pair(mr: np.ndarray, ct: np.ndarray, index: int, mr_label: np.ndarray | None = None,
                  ct_label: np.ndarray | None = None, class_names: Sequence[str] | None = None,
                  overlay: bool = True, fig: Figure | None = None) -> Figure:
    """Slice ``index`` of an MR and a CT volume (each ``D×H×W``) side by side.

    With ``overlay`` the labels are drawn over the images; without, the images alone (the
    unpaired subjects of the two modalities are different anatomies, as in the real setting).
    """
    fig = fig or Figure(figsize=(6.4, 3.4))
    axes = fig.subplots(1, 2)
    for ax, name, vol, lab in ((axes[0], "MR", mr, mr_label), (axes[1], "CT", ct, ct_label)):
        index_here = min(index, vol.shape[0] - 1)
        label_overlay(ax, vol[index_here], lab[index_here] if overlay and lab is not None else None,
                      class_names if ax is axes[1] else None, title=f"{name}, slice {index_here}")
    return fig


def class_histograms(mr_images: Sequence[np.ndarray], mr_labels: Sequence[np.ndarray],
                     ct_images: Sequence[np.ndarray], ct_labels: Sequence[np.ndarray],
                     class_names: Sequence[str], bins: int = 60,
                     fig: Figure | None = None) -> Figure:
    """Per-class histograms of normalised intensity, MR against CT (one panel per class).

    Images and labels are matching lists of arrays of any shape; intensities are pooled over
    all voxels of each class. Densities, so the two modalities compare whatever their voxel counts.
    """
    n = len(class_names)
    cols = min(n, 3)  # at most three panels a row: readable at the book's column width
    rows = -(-n // cols)
    fig = fig or Figure(figsize=(3.1 * cols, 2.3 * rows))
    axes = np.atleast_1d(fig.subplots(rows, cols, sharey=False)).ravel()
    for ax in axes[n:]:
        ax.set_visible(False)
    for k, (ax, name) in enumerate(zip(axes, class_names)):
        mr = np.concatenate([im[lb == k] for im, lb in zip(mr_images, mr_labels)])
        ct = np.concatenate([im[lb == k] for im, lb in zip(ct_images, ct_labels)])
        both = np.concatenate([mr, ct]) if mr.size + ct.size else np.zeros(1)
        edges = np.linspace(np.percentile(both, 0.5), np.percentile(both, 99.5) + 1e-6, bins + 1)
        for values, colour, label in ((mr, "tab:blue", "MR"), (ct, "tab:orange", "CT")):
            if values.size:
                ax.hist(values, bins=edges, density=True, alpha=0.55, color=colour, label=label)
        ax.set_title(name, fontsize=10)
        ax.set_yticks([])
        ax.tick_params(labelsize=9)
    axes[0].legend(fontsize=9)
    fig.supxlabel("normalised intensity", fontsize=10)
    fig.tight_layout()
    return fig


def bar_per_class(values: dict[str, float], ylabel: str, title: str = "",
                  errors: dict[str, float] | None = None, fig: Figure | None = None) -> Figure:
    """One bar per class (for example the per-class domain gap), with optional error bars."""
    fig = fig or Figure(figsize=(4.2, 2.6))
    ax = fig.add_subplot(1, 1, 1)
    names = list(values)
    err = [errors[n] for n in names] if errors else None
    ax.bar(names, [values[n] for n in names], yerr=err, color="tab:purple", alpha=0.8, capsize=3)
    return _finish(fig, ax, ylabel, title)


def heat_overlay(image: np.ndarray, heat: np.ndarray, index: int, title: str = "",
                 heat_label: str = "", alpha: float = 0.55, cmap: str = "magma",
                 vmax: float | None = None, fig: Figure | None = None) -> Figure:
    """Slice ``index`` of a ``D×H×W`` image with a ``D×H×W`` heat map (gap map, mask) beside it
    and over it."""
    if image.shape != heat.shape:
        raise ValueError(f"heat shape {heat.shape} != image shape {image.shape}")
    fig = fig or Figure(figsize=(6.4, 3.2))
    axes = fig.subplots(1, 2)
    vmax = float(heat.max()) if vmax is None else vmax
    label_overlay(axes[0], image[index], title=f"{title} slice {index}".strip())
    axes[1].imshow(image[index], cmap="gray", interpolation="nearest")
    shown = axes[1].imshow(heat[index], cmap=cmap, alpha=alpha, vmin=0, vmax=vmax or 1,
                           interpolation="nearest")
    axes[1].set_axis_off()
    axes[1].set_title(heat_label, fontsize=9)
    fig.colorbar(shown, ax=axes[1], fraction=0.046, pad=0.04)
    return fig


def prediction_row(image: np.ndarray, label: np.ndarray, predictions: dict[str, np.ndarray],
                   index: int, class_names: Sequence[str] | None = None,
                   fig: Figure | None = None) -> Figure:
    """Slice ``index`` of a ``D×H×W`` image: ground truth, then each method's prediction.

    ``predictions`` maps a method name to its ``D×H×W`` label volume (same shape as ``label``).
    """
    for name, pred in predictions.items():
        if pred.shape != label.shape:
            raise ValueError(f"prediction {name!r} shape {pred.shape} != label {label.shape}")
    n = 1 + len(predictions)
    cols = min(n, 3)  # at most three panels a row: about 250 px each at the book's column width
    rows = -(-n // cols)
    fig = fig or Figure(figsize=(2.6 * cols, 2.6 * rows + 0.3))
    axes = np.atleast_1d(fig.subplots(rows, cols)).ravel()
    for ax in axes[n:]:
        ax.set_visible(False)
    label_overlay(axes[0], image[index], label[index], title=f"ground truth, slice {index}")
    for ax, (name, pred) in zip(axes[1:], predictions.items()):
        label_overlay(ax, image[index], pred[index], title=name)
    if class_names is not None:
        colours = matplotlib.colormaps["tab10"]
        handles = [matplotlib.patches.Patch(color=colours((k - 1) % 10), label=class_names[k])
                   for k in range(1, len(class_names))]
        fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=9,
                   frameon=False)
    # panels fill the width; the legend keeps a strip of its own below them, off the anatomy
    fig.tight_layout(rect=(0, 0.3 / fig.get_size_inches()[1], 1, 1), w_pad=0.3, h_pad=1.8)
    return fig


def curves(series: dict[str, tuple[Sequence[float], Sequence[float]]], xlabel: str, ylabel: str,
           title: str = "", fig: Figure | None = None) -> Figure:
    """Line plot of named ``(x, y)`` series (training losses, for example)."""
    fig = fig or Figure(figsize=(4.6, 2.8))
    ax = fig.add_subplot(1, 1, 1)
    for name, (x, y) in series.items():
        ax.plot(x, y, label=name, lw=1.2)
    return _finish(fig, ax, ylabel, title, xlabel=xlabel, legend=True)


def _upsample_nearest(maps: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``…×h×w`` → ``…×H×W`` by nearest neighbour, source index ``floor(i·h/H)`` (the rule of
    ``torch.nn.functional.interpolate(mode="nearest")``, so masks here match
    :func:`glua_lib.local.mask.resize_mask` when enlarging)."""
    h, w = maps.shape[-2:]
    big_h, big_w = size
    rows = (np.arange(big_h) * h) // big_h
    cols = (np.arange(big_w) * w) // big_w
    return maps[..., rows[:, None], cols[None, :]]


def _class_index(class_filter, class_names: Sequence[str] | None) -> int | None:
    if class_filter is None or isinstance(class_filter, (int, np.integer)):
        return None if class_filter is None else int(class_filter)
    if class_names is None or class_filter not in class_names:
        raise ValueError(f"unknown class {class_filter!r}; pass its index or class_names "
                         "that contain it")
    return list(class_names).index(class_filter)


def mask_overlay(image: np.ndarray, mask: np.ndarray, index: int, label: np.ndarray | None = None,
                 class_filter: int | str | None = None, alpha: float = 1.0,
                 class_names: Sequence[str] | None = None, gap: np.ndarray | None = None,
                 title: str = "", mask_label: str = "local feature mask M", cmap: str = "magma",
                 gap_vmax: float | None = None, fig: Figure | None = None) -> Figure:
    """Image ``index`` of a stack with its local feature mask drawn over it.

    Args:
        image: ``B×H×W`` (or ``B×1×H×W``, the first channel is shown) images.
        mask: ``B×h×w`` or ``B×1×h×w`` mask on a feature grid (``h ≤ H``), values in ``[0, 1]``;
            enlarged to ``H×W`` by nearest neighbour, so each feature location is a block.
        index: which image of the stack.
        label: ``B×H×W`` class indices, drawn over the image in the first panel.
        class_filter: a class (index, or name in ``class_names``): the mask is shown only on that
            class's pixels (0 elsewhere) and the panel title gives its mean there. Needs ``label``.
        alpha: opacity of the mask over the image (1, the default: the mask alone, so its
            colours are the colour bar's; below 1 the grey image shows through and shifts them).
        gap: ``B×H×W`` true gap maps; if given, a third panel shows the map for comparison.

    Panels: the image (with the labels), the image with the (filtered) mask over it and a colour
    bar, then the gap map if given. ``fig.axes[1].images[1]`` holds the drawn ``H×W`` mask. With
    ``label``, the mask and gap panels get each class's outline in its label colour (thin lines
    that leave the mask's colours readable), so the anatomy is found there too.
    """
    img = np.asarray(image)
    if img.ndim == 4:
        img = img[:, 0]
    m = np.asarray(mask, dtype=np.float32)
    if m.ndim == 4:
        if m.shape[1] != 1:
            raise ValueError(f"mask must be B×1×h×w or B×h×w, got shape {m.shape}")
        m = m[:, 0]
    if img.ndim != 3 or m.ndim != 3:
        raise ValueError(f"image must be B×H×W and mask B×h×w, got shapes {img.shape}, {m.shape}")
    if img.shape[0] != m.shape[0]:
        raise ValueError(f"{img.shape[0]} images but {m.shape[0]} masks")
    if m.shape[1] > img.shape[1] or m.shape[2] > img.shape[2]:
        raise ValueError(f"mask grid {m.shape[1:]} is larger than the image {img.shape[1:]}")
    if not 0 <= index < img.shape[0]:
        raise IndexError(f"image {index} outside 0..{img.shape[0] - 1}")
    for name, arr in (("label", label), ("gap", gap)):
        if arr is not None and np.shape(arr) != img.shape:
            raise ValueError(f"{name} shape {np.shape(arr)} != image shape {img.shape}")
    cls = _class_index(class_filter, class_names)
    if cls is not None and label is None:
        raise ValueError("class_filter needs the label")
    shown = _upsample_nearest(m[index], img.shape[1:])
    where = ""
    if cls is not None:
        inside = np.asarray(label[index]) == cls
        name = class_names[cls] if class_names is not None else f"class {cls}"
        mean = float(shown[inside].mean()) if inside.any() else float("nan")
        shown = np.where(inside, shown, 0.0)
        where = f"\ninside {name} (mean {mean:.2f})" if inside.any() else f"\n(no {name} here)"
    n = 3 if gap is not None else 2
    fig = fig or Figure(figsize=(3.2 * n + 0.4, 3.3))
    axes = fig.subplots(1, n)
    label_overlay(axes[0], img[index], None if label is None else np.asarray(label[index]),
                  class_names, title=f"{title} image {index}".strip())
    axes[1].imshow(img[index], cmap="gray", interpolation="nearest")
    drawn = axes[1].imshow(shown, cmap=cmap, alpha=alpha, vmin=0.0, vmax=1.0,
                           interpolation="nearest")
    axes[1].set_title(f"{mask_label}{where}", fontsize=8)
    axes[1].set_axis_off()
    fig.colorbar(drawn, ax=axes[1], fraction=0.046, pad=0.04)
    if gap is not None:
        g = np.asarray(gap[index])
        vmax = float(np.max(gap)) if gap_vmax is None else gap_vmax
        heat = axes[2].imshow(g, cmap=cmap, vmin=0.0, vmax=vmax or 1.0, interpolation="nearest")
        axes[2].set_title("true gap map", fontsize=8)
        axes[2].set_axis_off()
        fig.colorbar(heat, ax=axes[2], fraction=0.046, pad=0.04)
    if label is not None:
        for ax in axes[1:]:
            _outline_classes(ax, np.asarray(label[index]))
    return fig


def _outline_classes(ax, label: np.ndarray) -> None:
    """Each foreground class of an ``H×W`` label map outlined in its :func:`label_overlay`
    colour (tab10, class ``k`` → colour ``k − 1``)."""
    colours = matplotlib.colormaps["tab10"]
    for k in np.unique(label):
        if k > 0:
            ax.contour(label == k, levels=[0.5], colors=[colours((int(k) - 1) % 10)],
                       linewidths=1.2)


def mask_explorer(image: np.ndarray, scores: dict, index: int, level: int,
                  temperature: float = 1.0, top_k: float = 1.0, alpha: float = 0.5,
                  class_filter: int | str | None = None, label: np.ndarray | None = None,
                  class_names: Sequence[str] | None = None, gap: np.ndarray | None = None,
                  norm: str = "max", fig: Figure | None = None) -> Figure:
    """:func:`mask_overlay` of the mask recomputed from gap scores with other settings.

    ``scores`` maps an encoder level to its gap scores ``g`` (``B×1×h×w``, e.g.
    ``compute_masks(...)[level].score``); the mask of image ``index`` is
    :func:`glua_lib.local.mask.local_mask` of its score with ``norm``, ``temperature`` and
    ``top_k`` (the mask is normalised per image, so one image gives the same mask as its batch).
    The remaining arguments go to :func:`mask_overlay`.
    """
    import torch

    from glua_lib.local.mask import local_mask

    if level not in scores:
        raise ValueError(f"no scores for level {level}; levels: {sorted(scores)}")
    g = np.asarray(scores[level], dtype=np.float32)
    if g.ndim == 3:
        g = g[:, None]
    if not 0 <= index < g.shape[0]:
        raise IndexError(f"image {index} outside 0..{g.shape[0] - 1}")
    m = local_mask(torch.from_numpy(np.ascontiguousarray(g[index:index + 1])), norm,
                   temperature, top_k).numpy()
    full = np.zeros((g.shape[0],) + m.shape[1:], np.float32)
    full[index] = m[0]
    grid = "×".join(map(str, g.shape[-2:]))
    return mask_overlay(image, full, index, label, class_filter, alpha, class_names, gap,
                        mask_label=f"M, level {level} ({grid}), τ={temperature:g}, "
                                   f"top-k={top_k:g}", fig=fig)


def class_scatter(x: dict[str, float], series: dict[str, dict[str, float]], xlabel: str,
                  ylabel: str, title: str = "", fig: Figure | None = None) -> Figure:
    """Per-class points: ``x[class]`` against ``series[name][class]`` for each named series.

    One marker colour per series (e.g. one per training snapshot and level), each point labelled
    with its class name; classes missing from a series, or ``nan``, are skipped. Use it to ask
    whether a per-class quantity (the mean mask) follows another (the mean true gap).
    """
    fig = fig or Figure(figsize=(5.8, 3.2))
    ax = fig.add_subplot(1, 1, 1)
    for k, (name, ys) in enumerate(series.items()):
        names = [c for c in x if c in ys and np.isfinite(ys[c]) and np.isfinite(x[c])]
        ax.plot([x[c] for c in names], [ys[c] for c in names], "o", ms=5, alpha=0.8,
                color=f"C{k % 10}", label=name)
        for c in names:
            ax.annotate(c, (x[c], ys[c]), fontsize=6, xytext=(3, 2), textcoords="offset points")
    ax.set_xlabel(xlabel, fontsize=8)
    ax.set_ylabel(ylabel, fontsize=8)
    ax.tick_params(labelsize=8)
    if series:  # beside the axes, where it hides no point
        ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def style_architecture(fig: Figure | None = None) -> Figure:
    """A schematic of the global-alignment model (MUNIT-like): shared content encoder,
    per-domain style encoders and AdaIN decoders, image and content critics."""
    fig = fig or Figure(figsize=(7.6, 3.4))
    ax = fig.add_subplot(1, 1, 1)
    ax.set_xlim(0, 10)
    ax.set_ylim(0, 5)
    ax.set_axis_off()

    def box(x, y, text, colour):
        ax.text(x, y, text, ha="center", va="center", fontsize=7.5,
                bbox=dict(boxstyle="round,pad=0.35", fc=colour, ec="0.3", lw=0.8))

    def arrow(x0, y0, x1, y1, style="-|>", colour="0.25"):
        ax.annotate("", xy=(x1, y1), xytext=(x0, y0),
                    arrowprops=dict(arrowstyle=style, color=colour, lw=0.9))

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


def image_grid(rows: dict[str, Sequence[np.ndarray]], cell: float = 2.4,
               fig: Figure | None = None) -> Figure:
    """A grid of 2D ``H×W`` images: one row per named list (source / translated / target...).
    Each image is shown with its own gray range; row names label the first column."""
    n_rows, n_cols = len(rows), max(len(v) for v in rows.values())
    fig = fig or Figure(figsize=(cell * n_cols, cell * n_rows))
    axes = np.asarray(fig.subplots(n_rows, n_cols, squeeze=False))
    for r, (name, images) in enumerate(rows.items()):
        for c in range(n_cols):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if c < len(images):
                ax.imshow(images[c], cmap="gray", interpolation="nearest")
        axes[r, 0].set_ylabel(name, fontsize=8)
    fig.tight_layout(pad=0.3)
    return fig


def bars_compared(series: dict[str, dict[str, float]], ylabel: str, title: str = "",
                  ranges: dict[str, tuple[dict[str, float], dict[str, float]]] | None = None,
                  fig: Figure | None = None) -> Figure:
    """Grouped bars: one group per class, one bar per named series (e.g. before / after).

    ``ranges`` maps a series' name to ``(low, high)`` (``{class: value}`` each), drawn as a
    vertical line over that series' bars (e.g. the 5–95 % range of the ideal translations).
    """
    fig = fig or Figure(figsize=(5.0, 2.8))
    ax = fig.add_subplot(1, 1, 1)
    names = list(next(iter(series.values())))
    width = 0.8 / len(series)
    for k, (label, values) in enumerate(series.items()):
        x = np.arange(len(names)) + (k - (len(series) - 1) / 2) * width
        ax.bar(x, [values[n] for n in names], width, label=label)
        if ranges and label in ranges:
            low, high = ranges[label]
            ax.vlines(x, [low[n] for n in names], [high[n] for n in names], color="black",
                      linewidth=1.2)
    ax.set_xticks(np.arange(len(names)), names)
    return _finish(fig, ax, ylabel, title, legend=True)


def style_mix(model, image: np.ndarray, style_a, style_b, t: float,
              fig: Figure | None = None) -> Figure:
    """A source slice ``H×W`` and its translation with the style ``(1 − t)·a + t·b`` (the live
    style slider's callback; ``model`` is a trained ``StyleTransfer``)."""
    from glua_lib.style.translate import style_walk

    out = style_walk(model, image, style_a, style_b, ts=[t])[0]
    return image_grid({f"t = {t:.2f}": [image, out]}, fig=fig)
